/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one Goertzel kernel of dtmfguard's C code: per-frequency constants, the recursion step and the
 * finishing rotation.  native/goertzel.c (the filter bank behind dtmfguard.dsp.goertzel) and
 * native/detector.c (the detector's per-frame path) both build their loops from these, so their values
 * are bit-identical by construction (the detector's equivalence tests compare the two).
 *
 * For a block x[0..H-1] and w radians per sample, the recursion s[n] = x[n] + 2cos(w) s[n-1] - s[n-2]
 * gives y = s[H-1] - exp(-jw) s[H-2] = sum_n x[n] exp(jw (H-1-n)), so the DFT value with its phase
 * referenced to the block's first sample, sum_n x[n] exp(-jwn), is exp(-jw (H-1)) * y.
 *
 * Each vector lane runs one recursion with plain multiplies and adds in a fixed order (no fused
 * multiply-add: the AVX2 clones do not enable FMA), so a lane's result does not depend on which
 * loop, lane or clone computed it.
 */
#ifndef DTMFGUARD_GOERTZEL_KERNEL_H
#define DTMFGUARD_GOERTZEL_KERNEL_H

#include <math.h>

typedef double dg_v4d __attribute__((vector_size(32)));

/* the 5 constants of one frequency, in this order (detector.c's consts table stores them so) */
enum { DG_COEF, DG_COS_W, DG_SIN_W, DG_COS_LAST, DG_SIN_LAST, DG_BIN_CONSTS };

/* b[DG_*] for frequency w (radians per sample) and blocks of H samples */
static inline void
dg_bin_consts(double w, long H, double *b)
{
    b[DG_COEF] = 2.0 * cos(w);
    b[DG_COS_W] = cos(w);
    b[DG_SIN_W] = sin(w);
    b[DG_COS_LAST] = cos(w * (double)(H - 1));
    b[DG_SIN_LAST] = sin(w * (double)(H - 1));
}

/* one sample into 4 recursions (one per lane): s1, s2 are s[n-1], s[n-2] and advance by one */
#define DG_STEP(xv, coefv, s1, s2)                                  \
    do {                                                            \
        const dg_v4d dg_t_ = ((xv) - (s2)) + (coefv) * (s1);        \
        (s2) = (s1);                                                \
        (s1) = dg_t_;                                               \
    } while (0)

/* the finished recursion (s1 = s[H-1], s2 = s[H-2]) -> (re, im) of sum_n x[n] exp(-jwn) */
static inline void
dg_finish(const double *b, double s1, double s2, double *out_re_im)
{
    const double yr = s1 - b[DG_COS_W] * s2;
    const double yi = b[DG_SIN_W] * s2;
    out_re_im[0] = yr * b[DG_COS_LAST] + yi * b[DG_SIN_LAST];
    out_re_im[1] = yi * b[DG_COS_LAST] - yr * b[DG_SIN_LAST];
}

#endif
