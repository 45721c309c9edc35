/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dtmfguard.dsp._detector_native: the in-band detector's per-frame work in C.
 *
 * Why C: during a payment a live call runs the detector once every 20 ms on
 * pjsua2's clock thread.  The numpy path (dtmfguard/dsp/detector.py, _classify)
 * spends ~60 numpy calls per frame on arrays of 3-4 windows x 8 bins; each is
 * cheap in a tight loop, but with 20 ms of other processes' work in between
 * their dispatch code and data are cold, and the detector cost 290-380 us per
 * frame (benchmarks/pipeline_frame.py) where the arithmetic needs ~2 us.  Here
 * one call does, for every channel, what DetectorBank._advance does before
 * its state machine: buffer the partial half-block, run the Goertzel kernel
 * over the new half-blocks, form the overlapping 12.75 ms windows and apply
 * every window test (level, energy share, purity, phase-advance frequency
 * check, Dirichlet-corrected twist, harmonic guard).  The Python state
 * machine then runs only on channels with a candidate window or a digit in
 * progress.
 *
 * Contract (the numpy path of DetectorBank._advance computes the same thing):
 *
 *   bin_table(omegas, half_block, out) -> None
 *     out[5k .. 5k+4] = 2cos(w), cos(w), sin(w), cos(w(H-1)), sin(w(H-1)) for w = omegas[k]
 *     (the Goertzel constants, computed as native/goertzel.c computes them)
 *
 *   Frames(state, consts, active)       bound to one DetectorBank (holds the three buffers)
 *     state   float64 [C, H + STATE_EXTRA]  per channel, read and updated by both paths:
 *                                          [0, H)        samples of the partial half-block
 *                                          [H, H+2B)     last half-block's DFT (B = NBINS x re, im)
 *                                          [H+2B]        its energy
 *                                          [H+2B+1, H+4B+1)  last window's DFT (NBINS x re, im)
 *                                          [H+4B+1, H+4B+9)  last window's amplitudes (8 fundamentals)
 *     consts  float64 [CONSTS]             see the CONST_* offsets below (built by detector._Tables)
 *     active  1 byte per channel            non-zero while the channel has a digit in progress
 *
 *   Frames.run(x, n_pending, have_half) -> None or [(channel, digits, checked, amps, lr, lc), ...]
 *     x          int16 or float64 [C, m] (or [m] when C == 1), any strides: the new samples
 *     n_pending  samples of the partial half-block in state (0 <= n_pending < H)
 *     have_half  a half-block has been seen (it starts the next window)
 *     With nh = (n_pending + m) / H new half-blocks there are nw = max(0, nh + have_half - 1) new
 *     windows.  None when no channel has a candidate window or is active; else, for each channel that
 *     has, Python lists: digit per window (r*4+c, 16 + that for a weak hit, -1 for none), passed the
 *     phase check per window, nw + 1 rows of 8 amplitudes (row 0: the window before the first),
 *     row and column level in dBm0 per window (-inf when not a candidate), the row and column tones'
 *     relative frequency errors (0 where not measured) and the tones' share of the window's energy
 *     at their measured frequencies (0 where not a candidate).
 *
 *   Frames.process(x) -> None or [(channel, digit index, start, end or None, level), ...]
 *     Everything DetectorBank does for a frame (issue 17): the buffer, an 8-bin kernel (two half-blocks
 *     at a time, in registers), the window tests (the guard bins only for windows that pass the level
 *     and energy-share tests, by direct sums over the window's samples) and the per-window state
 *     machine (DetectorBank._step and what it calls, same decisions and arithmetic).  The stream
 *     position, the runs and each channel's int16 ring of its last samples (450 ms with the
 *     music-context test, else 5 half-blocks: what the tests at confirmation read) live in the Frames
 *     object.
 *   Frames.events(chunk) -> [DigitEvent, ...]   (after bind(factory, fallback, ndarray))
 *     DtmfDetector.process for one channel: int16 frames go straight to process(); other input to the
 *     fallback (the validating Python path).
 *
 * Floating point: the kernel repeats native/goertzel.c's operations in the
 * same order, so its values are bit-identical to the native backend's kernel.
 * The window tests repeat _classify's operations in the same order, with the
 * C library's atan2/log10/sin and sqrt(re^2 + im^2) for |z|, where numpy uses its
 * own SIMD versions (all within an ulp or so).  That is far below the numpy and C kernels' own
 * difference (BLAS sums in another order), which the detector already had to
 * tolerate; tests/test_detector_native.py compares events on both paths and
 * the window tests on identical kernel output.
 *
 * The GIL is kept for one frame (a few us; releasing it would let another
 * Python thread hold it for up to the 5 ms switch interval while the clock
 * thread waits) and released for large banks of channels.
 *
 * Only the buffer protocol is used (no numpy headers).  Every size is
 * validated before any memory is touched; bad arguments raise TypeError or
 * ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "goertzel_kernel.h"
#if defined(__SSE2__)
#include <emmintrin.h> /* the ring's non-temporal stores (ring_store) */
#endif

#define NBINS 24  /* 8 DTMF fundamentals, then 4 sub-row, 4 twice-column, 4 three-times-row and 4 twice-row guard
                    bins */
#define NFUND 8
#define NGUARD (NBINS - NFUND)
#define STATE_LONG (2 * NBINS + 1 + 2 * NBINS + NFUND) /* where the long window's state starts (after H) */
#define STATE_EXTRA (STATE_LONG + 2 * NBINS + 4) /* ... window k-2's DFT, energies of windows k-1 and k-2, the last
                                                  * window's code, windows seen (capped at 2) */

/* consts layout */
#define CONST_BINS 0                         /* NBINS x DG_BIN_CONSTS Goertzel constants (bin_table) */
#define CONST_OMEGA (CONST_BINS + DG_BIN_CONSTS * NBINS) /* NBINS: radians per sample */
#define CONST_ROT (CONST_OMEGA + NBINS)      /* NBINS x (re, im): exp(-j w H) */
#define CONST_ADVANCE (CONST_ROT + 2 * NBINS) /* NBINS: w H, nominal phase advance between windows */
#define CONST_DOUBLE_SKIP (CONST_ADVANCE + NBINS) /* 16: non-zero where a key skips the twice-row guard */
#define CONST_ROT2 (CONST_DOUBLE_SKIP + 16) /* NBINS x (re, im): rot * rot (the long window) */
#define CONST_SCALARS (CONST_ROT2 + 2 * NBINS)
/*
 * The scalars, by the name detector._Tables packs them under (the module exports every name's offset in
 * CONST_LAYOUT, so the Python side fills the table by name and a renamed, added or removed constant
 * fails loudly instead of shifting the others).
 */
#define DG_SCALARS(X)                                                                                    \
    X(HALF, "half") X(WINDOW, "window") X(MIN_AMP, "min_amp") X(MIN_FRACTION, "min_fraction")            \
    X(REL_PEAK_POW, "rel_peak_pow") X(NORMAL_TWIST_DB, "normal_twist_db")                                \
    X(REVERSE_TWIST_DB, "reverse_twist_db") X(FREQ_TOL, "freq_tol") X(FREQ_TOL_MIXED, "freq_tol_mixed")   \
    X(CLEAN_FRACTION, "clean_fraction") X(HARMONIC_GUARD, "harmonic_guard")                              \
    X(HARMONIC_GUARD_MIXED, "harmonic_guard_mixed") X(DBM0_PEAK, "dbm0_peak")                            \
    X(FULL_FRACTION, "full_fraction") X(PAIR_SPREAD, "pair_spread") X(OCTAVE_SPREAD, "octave_spread")    \
    /* the state machine's (DetectorBank._step and what it calls) */                                    \
    X(MIN_TONE, "min_tone") X(CONFIRM_CHECKED, "confirm_checked") X(END_MISSES, "end_misses")            \
    X(EDGE_MIN, "edge_min") X(STEADY_SPREAD, "steady_spread") X(THIRD_GUARD, "third_guard")              \
    X(THIRD_GUARD_MIXED, "third_guard_mixed") X(MIXED_FRACTION, "mixed_fraction")                        \
    X(DOUBLE_GUARD, "double_guard") X(OCTAVE_TONE, "octave_tone") X(MIN_TONE_MIXED, "min_tone_mixed")      \
    X(PRESS_CLEAN_SHARE, "press_clean_share") X(RATE, "rate") X(COMB_RATIO, "comb_ratio")                 \
    X(COMB_F0_MIN, "comb_f0_min") X(COMB_MAX_SHARE, "comb_max_share")                                                                      \
    X(COMB_F0_MAX, "comb_f0_max") X(COMB_TOL, "comb_tol") X(COMB_F_LO, "comb_f_lo") X(COMB_F_HI, "comb_f_hi") \
    X(DRIFT_MAX, "drift_max") X(DRIFT_MAX_SHARE, "drift_max_share")                                      \
    X(NB_MAX_SHARE, "nb_max_share") X(NB_LOW, "nb_low") X(NB_THIRD, "nb_third")                  \
    X(NB_ROW_THIRD, "nb_row_third") X(NB_HIGH, "nb_high")                                               \
    X(CTX_PERSIST, "ctx_persist") X(CTX_MAX_SHARE, "ctx_max_share") X(CTX_SPAN, "ctx_span")              \
    X(CTX_GUARD, "ctx_guard") X(CTX_N, "ctx_n") X(CTX_KLO, "ctx_klo") X(CTX_KHI, "ctx_khi")              \
    X(CTX_SMOOTH, "ctx_smooth") X(CTX_HALVES, "ctx_halves") X(HIST_HALVES, "hist_halves")              \
    X(CTX_PAIRS, "ctx_pairs") X(CTX_ALWAYS_SHARE, "ctx_always_share") X(CTX_OFFSET_MIN, "ctx_offset_min")      \
    X(RATIO_SPREAD, "ratio_spread") X(RATIO_MIN_SHARE, "ratio_min_share") X(RATIO_COVER, "ratio_cover")    \
    X(PRESS_OFFSET, "press_offset") X(PRESS_OFFSET_SHARE, "press_offset_share")    \
    X(PRE_LEVEL, "pre_level") X(PRE_N, "pre_n") X(PRE_GAP, "pre_gap") X(PRE_MIN_SHARE, "pre_min_share")        \
    X(PRE_MAX_SHARE, "pre_max_share") X(LONG_ON, "long_on") X(LONG_REL_PEAK_POW, "long_rel_peak_pow")    \
    X(LONG_AFTER_WEAK, "long_after_weak") X(LONG_CHECKED, "long_checked")    \
    X(LONG_SKIP_MASK, "long_skip_mask") X(LONG_MIN_STRONG, "long_min_strong")                                \
    X(LONG_COMB_RATIO, "long_comb_ratio") X(LONG_COMB_MAX_SHARE, "long_comb_max_share")                                \
    X(LONG_CTX_MAX_SHARE, "long_ctx_max_share") X(LONG_GUARD_MIXED, "long_guard_mixed")                       \
    X(LONG_IN_RATIO, "long_in_ratio")                                                                 \
    X(ENV_SPREAD, "env_spread") X(ENV_MIN_SHARE, "env_min_share")                                            \
    X(ENV_MAX_SHARE, "env_max_share") X(ENV_OFFSET_MIN, "env_offset_min") X(ENV_COVER, "env_cover")             \
    X(ENV_STEP, "env_step") X(GLIDE_LEVEL, "glide_level") X(GLIDE_OFFSET, "glide_offset")                      \
    X(GLIDE_STEP, "glide_step") X(GLIDE_K, "glide_k") X(GLIDE_MAX_SHARE, "glide_max_share")                    \
    X(GLIDE_HOLD, "glide_hold") X(GLIDE_HOP, "glide_hop") X(GLIDE_SEGMENTS, "glide_segments")                 \
    X(GLIDE_SCREEN, "glide_screen") X(TD_ROW_PEAK_POW, "td_row_peak_pow") X(TD_MIN_FRACTION, "td_min_fraction") \
    X(TD_MIN_STRONG, "td_min_strong") X(TD_FREQ_TOL_MIXED, "td_freq_tol_mixed")                             \
    X(TD_COMB_RATIO, "td_comb_ratio") X(TD_COMB_MAX_SHARE, "td_comb_max_share") X(TD_SKIP_MASK, "td_skip_mask") \
    X(TD_GUARD_MIXED, "td_guard_mixed") X(TD_PRESS_OFFSET, "td_press_offset") X(TD_MIN_TONE, "td_min_tone") \
    X(TD_MIN_DENSITY, "td_min_density")
enum {
#define DG_ENUM(id, name) S_##id,
    DG_SCALARS(DG_ENUM)
#undef DG_ENUM
    N_SCALARS
};
#define CONSTS (CONST_SCALARS + N_SCALARS)

#define MAX_HALF 512 /* half-block samples (51 at 8 kHz, 306 at 48 kHz) */
#define NO_DIGIT (-1)
#define WEAK 16
static const double PI = 3.141592653589793;

/* ---- kernel: one half-block, as native/goertzel.c (quad_kernel + finish_bin) per lane ---------- */

/*
 * The 16 recursions run as 4 vectors of 4 frequencies (goertzel.c runs 4 half-blocks per vector
 * instead; a frame of one call has only 3-4).  Each lane does goertzel.c's operations in its order
 * (no fused multiply-add: the AVX2 clone does not enable FMA), so the values are bit-identical.
 */
typedef dg_v4d v4d;
#define NVEC (NBINS / 4)

#include "clones.h"

DTMFGUARD_CLONES static void
half_dft(const double *x, Py_ssize_t H, const double *bins, double *out, double *energy)
{
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d s1[NVEC], s2[NVEC], coef[NVEC];
    double e = 0.0;
    int j, k;
    for (j = 0; j < NVEC; j++) {
        for (k = 0; k < 4; k++)
            coef[j][k] = bins[DG_BIN_CONSTS * (4 * j + k) + DG_COEF];
        s1[j] = s2[j] = zero;
    }
    for (Py_ssize_t n = 0; n < H; n++) {
        const double v = x[n];
        const v4d xv = {v, v, v, v};
        e += v * v;
        for (j = 0; j < NVEC; j++) {
            DG_STEP(xv, coef[j], s1[j], s2[j]);
        }
    }
    for (k = 0; k < NBINS; k++) {
        dg_finish(bins + DG_BIN_CONSTS * k, s1[k / 4][k % 4], s2[k / 4][k % 4], out + 2 * k);
    }
    *energy = e;
}

/*
 * Two half-blocks at once (each lane's operations exactly as half_dft's): a single recursion chain per
 * vector waits on its own multiply-add latency; two independent half-blocks fill the gaps (a 20 ms frame
 * holds three).
 */
DTMFGUARD_CLONES static void
half_dft2(const double *xa, const double *xb, Py_ssize_t H, const double *bins, double *out_a, double *energy_a,
          double *out_b, double *energy_b)
{
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d a1[NVEC], a2[NVEC], b1[NVEC], b2[NVEC], coef[NVEC];
    double ea = 0.0, eb = 0.0;
    int j, k;
    for (j = 0; j < NVEC; j++) {
        for (k = 0; k < 4; k++)
            coef[j][k] = bins[DG_BIN_CONSTS * (4 * j + k) + DG_COEF];
        a1[j] = a2[j] = b1[j] = b2[j] = zero;
    }
    for (Py_ssize_t n = 0; n < H; n++) {
        const double va = xa[n], vb = xb[n];
        const v4d xva = {va, va, va, va}, xvb = {vb, vb, vb, vb};
        ea += va * va;
        eb += vb * vb;
        for (j = 0; j < NVEC; j++) {
            DG_STEP(xva, coef[j], a1[j], a2[j]);
            DG_STEP(xvb, coef[j], b1[j], b2[j]);
        }
    }
    for (k = 0; k < NBINS; k++) {
        dg_finish(bins + DG_BIN_CONSTS * k, a1[k / 4][k % 4], a2[k / 4][k % 4], out_a + 2 * k);
        dg_finish(bins + DG_BIN_CONSTS * k, b1[k / 4][k % 4], b2[k / 4][k % 4], out_b + 2 * k);
    }
    *energy_a = ea;
    *energy_b = eb;
}

/* ---- window tests: detector._classify for one window ---------------------------------------------- */


/* numpy's float remainder (npy_divmod): the result takes the divisor's sign */
static double
py_mod(double a, double b)
{
    double m = fmod(a, b);
    if (m != 0.0) {
        if ((b < 0) != (m < 0))
            m += b;
    }
    else {
        m = copysign(0.0, b);
    }
    return m;
}

/* an off-bin tone's attenuation by the window's Dirichlet kernel, for an offset of dw radians per H */
static double
dirichlet(double dw, double half, double n)
{
    const double x = dw / half;
    double g;
    if (fabs(x) < 1e-9)
        return 1.0;
    g = fabs(sin(n * x / 2) / (n * sin(x / 2)));
    return g < 0.5 ? 0.5 : (g > 1.0 ? 1.0 : g);
}

/*
 * |re + j im|.  Not hypot() alone: 8 per window made it the frame's largest cost.  Samples on the
 * int16 scale keep |re|, |im| below 1e7, where the squares cannot overflow; absurd float input
 * still gets hypot's answer.  Either differs from numpy's abs by an ulp at most.
 */
static inline double
cabs2(double re, double im)
{
    if (fabs(re) > 1e150 || fabs(im) > 1e150)
        return hypot(re, im);
    return sqrt(re * re + im * im);
}

/*
 * process()'s kernel: the 8 fundamentals only (2 vectors), two half-blocks at a time, so the state of
 * both recursions stays in registers.  The 8 guard bins are needed only by the few windows that pass
 * the level and energy-share tests: guard_pair() computes the two a window needs from its samples.
 */
DTMFGUARD_CLONES static void
fund_dft(const double *x, Py_ssize_t H, const double *bins, double *out, double *energy)
{
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d a1 = zero, a2 = zero, b1 = zero, b2 = zero, ca, cb;
    double e = 0.0;
    int k;
    for (k = 0; k < 4; k++) {
        ca[k] = bins[DG_BIN_CONSTS * k + DG_COEF];
        cb[k] = bins[DG_BIN_CONSTS * (4 + k) + DG_COEF];
    }
    for (Py_ssize_t n = 0; n < H; n++) {
        const double v = x[n];
        const v4d xv = {v, v, v, v};
        e += v * v;
        DG_STEP(xv, ca, a1, a2);
        DG_STEP(xv, cb, b1, b2);
    }
    for (k = 0; k < NFUND; k++) {
        dg_finish(bins + DG_BIN_CONSTS * k, k < 4 ? a1[k] : b1[k - 4], k < 4 ? a2[k] : b2[k - 4], out + 2 * k);
    }
    *energy = e;
}

DTMFGUARD_CLONES static void
fund_dft2(const double *xa, const double *xb, Py_ssize_t H, const double *bins, double *out_a, double *energy_a,
          double *out_b, double *energy_b)
{
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d p1 = zero, p2 = zero, q1 = zero, q2 = zero; /* half-block a: rows (p), columns (q) */
    v4d u1 = zero, u2 = zero, w1 = zero, w2 = zero; /* half-block b */
    v4d ca, cb;
    double ea = 0.0, eb = 0.0;
    int k;
    for (k = 0; k < 4; k++) {
        ca[k] = bins[DG_BIN_CONSTS * k + DG_COEF];
        cb[k] = bins[DG_BIN_CONSTS * (4 + k) + DG_COEF];
    }
    for (Py_ssize_t n = 0; n < H; n++) {
        const double va = xa[n], vb = xb[n];
        const v4d xva = {va, va, va, va}, xvb = {vb, vb, vb, vb};
        ea += va * va;
        eb += vb * vb;
        DG_STEP(xva, ca, p1, p2);
        DG_STEP(xva, cb, q1, q2);
        DG_STEP(xvb, ca, u1, u2);
        DG_STEP(xvb, cb, w1, w2);
    }
    for (k = 0; k < NFUND; k++) {
        dg_finish(bins + DG_BIN_CONSTS * k, k < 4 ? p1[k] : q1[k - 4], k < 4 ? p2[k] : q2[k - 4], out_a + 2 * k);
        dg_finish(bins + DG_BIN_CONSTS * k, k < 4 ? u1[k] : w1[k - 4], k < 4 ? u2[k] : w2[k - 4], out_b + 2 * k);
    }
    *energy_a = ea;
    *energy_b = eb;
}

/* A window's samples (two half-blocks) and the guard bins' twiddles, for guard_pair(). */
typedef struct {
    const double *xa, *xb;
    Py_ssize_t H;
    const double *cosw, *sinw; /* [NGUARD][2H]: cos(w n), sin(w n) of the guard frequencies */
} guard_src;

/* |DFT| of the window at guard bins ks, ko, kt and kd (0..NGUARD-1), by direct sums over its samples
 * (four partial sums per value, one vector lane each, then added) */
#define LOAD4(dst, p) memcpy(&(dst), (p), sizeof(v4d))

DTMFGUARD_CLONES static void
guard_four(const guard_src *g, const int *ks, double *abs_out)
{
    const Py_ssize_t H = g->H, N = 2 * H;
    const double *cw[4], *sw[4];
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d re[4] = {zero, zero, zero, zero}, im[4] = {zero, zero, zero, zero};
    Py_ssize_t n;
    int j;
    for (j = 0; j < 4; j++) {
        cw[j] = g->cosw + ks[j] * N;
        sw[j] = g->sinw + ks[j] * N;
    }
    for (int half = 0; half < 2; half++) {
        const double *x = half ? g->xb : g->xa;
        const Py_ssize_t off = half ? H : 0;
        for (n = 0; n + 4 <= H; n += 4) {
            v4d v, c, s;
            LOAD4(v, x + n);
            for (j = 0; j < 4; j++) {
                LOAD4(c, cw[j] + off + n);
                LOAD4(s, sw[j] + off + n);
                re[j] += v * c;
                im[j] += v * s;
            }
        }
        for (; n < H; n++) { /* the tail in lane 0 */
            const double v = x[n];
            for (j = 0; j < 4; j++) {
                re[j][0] += v * cw[j][off + n];
                im[j][0] += v * sw[j][off + n];
            }
        }
    }
    for (j = 0; j < 4; j++)
        abs_out[j] = cabs2((re[j][0] + re[j][1]) + (re[j][2] + re[j][3]), (im[j][0] + im[j][1]) + (im[j][2] + im[j][3]));
}

static double
second_largest(const double *v4)
{
    double a[4];
    int i, j;
    memcpy(a, v4, sizeof(a));
    for (i = 1; i < 4; i++) /* insertion sort, ascending */
        for (j = i; j > 0 && a[j - 1] > a[j]; j--) {
            const double t = a[j];
            a[j] = a[j - 1];
            a[j - 1] = t;
        }
    return a[2];
}

static int
argmax4(const double *v)
{
    int i, best = 0;
    for (i = 1; i < 4; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/*
 * One window: win (16 complex), prev (the window before it, 16 complex), energy.
 * Writes the 8 amplitudes; returns the digit code and sets *checked, *lr, *lc.
 */
static inline double
clip01(double v)
{
    return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
}

static int
classify(const double *c, const double *win, const double *prev, double energy, double *amp,
         int *checked_out, double *lr_out, double *lc_out, double *relr_out, double *relc_out, double *share_out,
         const guard_src *g)
{
    const double *sc = c + CONST_SCALARS;
    const double half = sc[S_HALF], n = sc[S_WINDOW];
    const double *omega = c + CONST_OMEGA, *advance = c + CONST_ADVANCE;
    int k;
    {
        /* the 8 amplitudes as cabs2() gives them (sqrt(re^2 + im^2), correctly rounded either way), two
         * vectors at a time; the rare huge value (float input) goes through hypot() */
        v4d sq[2];
        int huge = 0;
        for (k = 0; k < NFUND; k++) {
            const double re = win[2 * k], im = win[2 * k + 1];
            sq[k / 4][k % 4] = re * re + im * im;
            huge |= fabs(re) > 1e150 || fabs(im) > 1e150;
        }
        if (huge) {
            for (k = 0; k < NFUND; k++)
                amp[k] = cabs2(win[2 * k], win[2 * k + 1]) * (2.0 / n);
        }
        else {
            const double scale = 2.0 / n;
            for (k = 0; k < NFUND; k++)
                amp[k] = sqrt(sq[k / 4][k % 4]) * scale;
        }
    }
    const int r = argmax4(amp), cc = argmax4(amp + 4), kc = cc + 4;
    const double ar = amp[r], ac = amp[kc];
    const double fraction = (ar * ar + ac * ac) * (n / 2.0) / (energy > 1e-9 ? energy : 1e-9);
    *checked_out = 0;
    *lr_out = *lc_out = -INFINITY;
    *relr_out = *relc_out = 0.0;
    *share_out = 0.0;
    if (!(ar >= sc[S_MIN_AMP] && ac >= sc[S_MIN_AMP] && fraction >= sc[S_TD_MIN_FRACTION]))
        return NO_DIGIT;

    double rows_sq[4], cols_sq[4];
    for (k = 0; k < 4; k++) {
        rows_sq[k] = amp[k] * amp[k];
        cols_sq[k] = amp[4 + k] * amp[4 + k];
    }
    const double second_row = second_largest(rows_sq), second_col = second_largest(cols_sq);
    const double max_row = rows_sq[r], max_col = cols_sq[cc];

    /* frequency from the phase advance between this window and the previous one */
    const double wr_re = win[2 * r], wr_im = win[2 * r + 1], wc_re = win[2 * kc], wc_im = win[2 * kc + 1];
    const double pr_re = prev[2 * r], pr_im = -prev[2 * r + 1]; /* conj */
    const double pc_re = prev[2 * kc], pc_im = -prev[2 * kc + 1];
    double d_r = atan2(wr_re * pr_im + wr_im * pr_re, wr_re * pr_re - wr_im * pr_im) - advance[r];
    double d_c = atan2(wc_re * pc_im + wc_im * pc_re, wc_re * pc_re - wc_im * pc_im) - advance[kc];
    d_r = py_mod(d_r + PI, 2 * PI) - PI;
    d_c = py_mod(d_c + PI, 2 * PI) - PI;
    const double rel_r = d_r / half / omega[r], rel_c = d_c / half / omega[kc];
    const int checked = cabs2(pr_re, pr_im) >= 0.5 * cabs2(wr_re, wr_im)
                        && cabs2(pc_re, pc_im) >= 0.5 * cabs2(wc_re, wc_im);
    const int clean = fraction >= sc[S_CLEAN_FRACTION];
    const double g_r = dirichlet(d_r, half, n), g_c = dirichlet(d_c, half, n);
    const double q_r = ar / g_r, q_c = ac / g_c;
    const double share = (q_r * q_r + q_c * q_c) * (n / 2.0) / (energy > 1e-9 ? energy : 1e-9);
    const double ramp = clip01((share - sc[S_MIXED_FRACTION]) / (sc[S_FULL_FRACTION] - sc[S_MIXED_FRACTION]));
    const double tol = sc[S_FREQ_TOL_MIXED] + (sc[S_FREQ_TOL] - sc[S_FREQ_TOL_MIXED]) * ramp;
    const int freq_ok = !checked || (fabs(rel_r) <= tol && fabs(rel_c) <= tol);

    const int measured = checked && freq_ok;
    const double gr = ar / (measured ? g_r : 1.0);
    const double gc = ac / (measured ? g_c : 1.0);
    const double lr = 20 * log10((gr > 1e-9 ? gr : 1e-9) / sc[S_DBM0_PEAK]);
    const double lc = 20 * log10((gc > 1e-9 ? gc : 1e-9) / sc[S_DBM0_PEAK]);
    const double twist = lr - lc;

    double sub, over, third, dbl;
    if (g == NULL) {
        sub = cabs2(win[2 * (8 + r)], win[2 * (8 + r) + 1]) * (2.0 / n);
        over = cabs2(win[2 * (12 + cc)], win[2 * (12 + cc) + 1]) * (2.0 / n);
        third = cabs2(win[2 * (16 + r)], win[2 * (16 + r) + 1]) * (2.0 / n);
        dbl = cabs2(win[2 * (20 + r)], win[2 * (20 + r) + 1]) * (2.0 / n);
    }
    else {
        const int ks[4] = {r, 4 + cc, 8 + r, 12 + r};
        double a4[4];
        guard_four(g, ks, a4);
        sub = a4[0] * (2.0 / n);
        over = a4[1] * (2.0 / n);
        third = a4[2] * (2.0 / n);
        dbl = a4[3] * (2.0 / n);
    }
    const double guard = clean ? sc[S_HARMONIC_GUARD] : sc[S_HARMONIC_GUARD_MIXED];
    const int other_guards = third < ar * (clean ? sc[S_THIRD_GUARD] : sc[S_THIRD_GUARD_MIXED])
                             /* a note's 2nd partial (not where the key's column tone leaks into that bin) */
                             && (c[CONST_DOUBLE_SKIP + r * 4 + cc] != 0.0 || dbl < ar * sc[S_DOUBLE_GUARD]);
    const int guard_ok = sub < ar * guard && over < ac * guard && other_guards;

    const int rest_ok = max_col >= sc[S_REL_PEAK_POW] * second_col && twist <= sc[S_NORMAL_TWIST_DB]
                        && twist >= -sc[S_REVERSE_TWIST_DB];
    const int shape_ok = max_row >= sc[S_REL_PEAK_POW] * second_row && rest_ok && fraction >= sc[S_MIN_FRACTION];
    const int ok = shape_ok && freq_ok && guard_ok;
    *checked_out = checked && ok;
    /* the relaxed window (DetectorParams.td_*; detector._td_relaxed) */
    const double td_tol = sc[S_TD_FREQ_TOL_MIXED] + (sc[S_FREQ_TOL] - sc[S_TD_FREQ_TOL_MIXED]) * ramp;
    const double td_guard = clean ? sc[S_HARMONIC_GUARD] : sc[S_TD_GUARD_MIXED];
    if (!ok && checked && fabs(rel_r) <= td_tol && fabs(rel_c) <= td_tol && rest_ok && other_guards
        && sub < ar * td_guard && over < ac * td_guard
        && max_row >= sc[S_TD_ROW_PEAK_POW] * second_row && !(((int64_t)sc[S_TD_SKIP_MASK] >> (r * 4 + cc)) & 1)) {
        *checked_out = 3;
        *lr_out = lr;
        *lc_out = lc;
        *relr_out = rel_r;
        *relc_out = rel_c;
        *share_out = share;
        return r * 4 + cc;
    }
    *lr_out = lr;
    *lc_out = lc;
    *relr_out = checked ? rel_r : 0.0;
    *relc_out = checked ? rel_c : 0.0;
    *share_out = share;
    return ok ? r * 4 + cc : (shape_ok ? WEAK + r * 4 + cc : NO_DIGIT);
}

/* ---- the long window (DetectorParams.long_window): detector._long_test, the same order ------------- */

/* Where the long window's guard bins come from: the two windows' 24-bin DFTs (run()), or the samples of
 * windows k-2 (xa2, xb2: its half-blocks) and k (xak, xbk), summed directly as guard_four() does
 * (process()). */
typedef struct {
    const double *w2, *wk;
    const double *xa2, *xb2, *xak, *xbk;
    Py_ssize_t H;
    const double *cosw, *sinw; /* [NGUARD][2H] */
} long_src;

/* |X(k-2) + rot2 X(k)| at bin kb (>= NFUND): the long window's DFT at a guard frequency */
static double
long_guard(const double *c, const long_src *s, int kb)
{
    const double ar = c[CONST_ROT2 + 2 * kb], ai = c[CONST_ROT2 + 2 * kb + 1];
    double w2r, w2i, br, bi;
    if (s->cosw == NULL) {
        w2r = s->w2[2 * kb];
        w2i = s->w2[2 * kb + 1];
        br = s->wk[2 * kb];
        bi = s->wk[2 * kb + 1];
    }
    else { /* sum x e^{-j w n} over each window's 2H samples */
        const Py_ssize_t H = s->H, N = 2 * H;
        const double *cw = s->cosw + (kb - NFUND) * N, *sw = s->sinw + (kb - NFUND) * N;
        double re2 = 0.0, im2 = 0.0, rek = 0.0, imk = 0.0;
        Py_ssize_t n;
        for (n = 0; n < H; n++) {
            re2 += s->xa2[n] * cw[n];
            im2 += s->xa2[n] * sw[n];
            rek += s->xak[n] * cw[n];
            imk += s->xak[n] * sw[n];
        }
        for (n = 0; n < H; n++) {
            re2 += s->xb2[n] * cw[H + n];
            im2 += s->xb2[n] * sw[H + n];
            rek += s->xbk[n] * cw[H + n];
            imk += s->xbk[n] * sw[H + n];
        }
        w2r = re2;
        w2i = -im2;
        br = rek;
        bi = -imk;
    }
    return cabs2(w2r + (ar * br - ai * bi), w2i + (ar * bi + ai * br));
}

/* long_guard() at the guard bins ks[0..3] at once, for process() (s->cosw set): the two windows' sums over
 * their samples, four partial sums per value (one vector lane each, then added, as guard_four()), the long
 * window's |DFT| into abs_out */
DTMFGUARD_CLONES static void
long_guard_four(const double *c, const long_src *s, const int *ks, double *abs_out)
{
    const Py_ssize_t H = s->H, N = 2 * H;
    const double *cw[4], *sw[4];
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d re2[4] = {zero, zero, zero, zero}, im2[4] = {zero, zero, zero, zero};
    v4d rek[4] = {zero, zero, zero, zero}, imk[4] = {zero, zero, zero, zero};
    Py_ssize_t n;
    int j;
    for (j = 0; j < 4; j++) {
        cw[j] = s->cosw + (ks[j] - NFUND) * N;
        sw[j] = s->sinw + (ks[j] - NFUND) * N;
    }
    for (int half = 0; half < 2; half++) {
        const double *x2 = half ? s->xb2 : s->xa2, *xk = half ? s->xbk : s->xak;
        const Py_ssize_t off = half ? H : 0;
        for (n = 0; n + 4 <= H; n += 4) {
            v4d a, b, cc, ss;
            LOAD4(a, x2 + n);
            LOAD4(b, xk + n);
            for (j = 0; j < 4; j++) {
                LOAD4(cc, cw[j] + off + n);
                LOAD4(ss, sw[j] + off + n);
                re2[j] += a * cc;
                im2[j] += a * ss;
                rek[j] += b * cc;
                imk[j] += b * ss;
            }
        }
        for (; n < H; n++) { /* the tail in lane 0 */
            const double a = x2[n], b = xk[n];
            for (j = 0; j < 4; j++) {
                re2[j][0] += a * cw[j][off + n];
                im2[j][0] += a * sw[j][off + n];
                rek[j][0] += b * cw[j][off + n];
                imk[j][0] += b * sw[j][off + n];
            }
        }
    }
    for (j = 0; j < 4; j++) {
        const double ar = c[CONST_ROT2 + 2 * ks[j]], ai = c[CONST_ROT2 + 2 * ks[j] + 1];
        const double w2r = (re2[j][0] + re2[j][1]) + (re2[j][2] + re2[j][3]);
        const double w2i = -((im2[j][0] + im2[j][1]) + (im2[j][2] + im2[j][3]));
        const double br = (rek[j][0] + rek[j][1]) + (rek[j][2] + rek[j][3]);
        const double bi = -((imk[j][0] + imk[j][1]) + (imk[j][2] + imk[j][3]));
        abs_out[j] = cabs2(w2r + (ar * br - ai * bi), w2i + (ar * bi + ai * br));
    }
}

/*
 * Window k (wk, 2 x NFUND doubles at least), window k-1 (wp) and window k-2 (w2), the energies of windows
 * k-2 and k, window k-1's code: 1 and the hit's values if the long window names the key window k-1 named.
 */
static int
long_test(const double *c, const double *w2, const double *wk, const double *wp, double e2, double ek, int prev_code,
          const long_src *src, int *key_out, double *lr_out, double *lc_out, double *relr_out, double *relc_out,
          double *share_out)
{
    const double *sc = c + CONST_SCALARS, *rot2 = c + CONST_ROT2;
    const double *omega = c + CONST_OMEGA, *advance = c + CONST_ADVANCE;
    const double half = sc[S_HALF], n = sc[S_WINDOW];
    double amp[NFUND];
    int k;
    for (k = 0; k < NFUND; k++) {
        const double ar = rot2[2 * k], ai = rot2[2 * k + 1], br = wk[2 * k], bi = wk[2 * k + 1];
        amp[k] = cabs2(w2[2 * k] + (ar * br - ai * bi), w2[2 * k + 1] + (ar * bi + ai * br)) / n;
    }
    const int r = argmax4(amp), cc = argmax4(amp + 4), kc = cc + 4, key = r * 4 + cc;
    if (((int64_t)sc[S_LONG_SKIP_MASK] >> key) & 1) /* DetectorParams.long_harmonic_* */
        return 0;
    if (prev_code != key && (prev_code != WEAK + key || sc[S_LONG_AFTER_WEAK] == 0.0))
        return 0;
    const double ar = amp[r], ac = amp[kc];
    if (!(ar >= sc[S_MIN_AMP] && ac >= sc[S_MIN_AMP]))
        return 0;
    const double energy = e2 + ek;
    const double frac = (ar * ar + ac * ac) * n / (energy > 1e-9 ? energy : 1e-9);
    if (!(frac >= sc[S_MIN_FRACTION]))
        return 0;
    double rows_sq[4], cols_sq[4];
    for (k = 0; k < 4; k++) {
        rows_sq[k] = amp[k] * amp[k];
        cols_sq[k] = amp[4 + k] * amp[4 + k];
    }
    const double rp = sc[S_LONG_REL_PEAK_POW];
    if (!(ar * ar >= rp * second_largest(rows_sq) && ac * ac >= rp * second_largest(cols_sq)))
        return 0;
    const double twist = 20 * log10(ar / ac);
    if (twist > sc[S_NORMAL_TWIST_DB] || twist < -sc[S_REVERSE_TWIST_DB])
        return 0;
    /* the phase test of the 12.75 ms windows k-1 and k at the key's bins (before the guard bins: it costs
     * two atan2, they up to 4 sums over 4H samples) */
    const double wr_re = wk[2 * r], wr_im = wk[2 * r + 1], wc_re = wk[2 * kc], wc_im = wk[2 * kc + 1];
    const double pr_re = wp[2 * r], pr_im = -wp[2 * r + 1], pc_re = wp[2 * kc], pc_im = -wp[2 * kc + 1];
    if (!(cabs2(pr_re, pr_im) >= 0.5 * cabs2(wr_re, wr_im) && cabs2(pc_re, pc_im) >= 0.5 * cabs2(wc_re, wc_im)))
        return 0;
    const double d_r = py_mod(atan2(wr_re * pr_im + wr_im * pr_re, wr_re * pr_re - wr_im * pr_im) - advance[r] + PI,
                              2 * PI) - PI;
    const double d_c = py_mod(atan2(wc_re * pc_im + wc_im * pc_re, wc_re * pc_re - wc_im * pc_im) - advance[kc] + PI,
                              2 * PI) - PI;
    const double rel_r = d_r / half / omega[r], rel_c = d_c / half / omega[kc];
    const double ramp = clip01((frac - sc[S_MIXED_FRACTION]) / (sc[S_FULL_FRACTION] - sc[S_MIXED_FRACTION]));
    const double tol = sc[S_FREQ_TOL_MIXED] + (sc[S_FREQ_TOL] - sc[S_FREQ_TOL_MIXED]) * ramp;
    if (!(fabs(rel_r) <= tol && fabs(rel_c) <= tol))
        return 0;
    /* the harmonic guards */
    const int clean = frac >= sc[S_CLEAN_FRACTION];
    const double g = clean ? sc[S_HARMONIC_GUARD] : sc[S_LONG_GUARD_MIXED];
    double gb[4];
    if (src->cosw != NULL) { /* process(): the four sums over the samples in one pass */
        const int ks[4] = {8 + r, 12 + cc, 16 + r, 20 + r};
        long_guard_four(c, src, ks, gb);
    }
    else {
        gb[0] = long_guard(c, src, 8 + r);
        gb[1] = long_guard(c, src, 12 + cc);
        gb[2] = long_guard(c, src, 16 + r);
        gb[3] = long_guard(c, src, 20 + r);
    }
    if (!(gb[0] / n < ar * g && gb[1] / n < ac * g
          && gb[2] / n < ar * (clean ? sc[S_THIRD_GUARD] : sc[S_THIRD_GUARD_MIXED])
          && (c[CONST_DOUBLE_SKIP + key] > 0.0 || gb[3] / n < ar * sc[S_DOUBLE_GUARD])))
        return 0;
    *key_out = key;
    *lr_out = 20 * log10(ar / sc[S_DBM0_PEAK]);
    *lc_out = 20 * log10(ac / sc[S_DBM0_PEAK]);
    *relr_out = rel_r;
    *relc_out = rel_c;
    *share_out = frac;
    return 1;
}

/* after classify() at window w: the long window, and its state (state + H + STATE_LONG) moved on */
static inline int
long_step(const double *consts, double *lstate, const double *win, const double *last_win, double win_energy,
          Py_ssize_t w, int d, const long_src *src, double *lr, double *lc, double *relr, double *relc,
          double *share, int8_t *checked, int nbins)
{
    double *last_win2 = lstate, *e1 = lstate + 2 * NBINS, *e2 = e1 + 1, *prev_code = e1 + 2, *seen = e1 + 3;
    const int code = (int)*prev_code;
    if (code >= 0 && !(d >= 0 && d < WEAK) && *seen >= 2.0) {
        int key;
        if (long_test(consts, last_win2, win, last_win, *e2, win_energy, code, src, &key, lr + w, lc + w, relr + w,
                      relc + w, share + w)) {
            d = key;
            checked[w] = consts[CONST_SCALARS + S_LONG_CHECKED] != 0.0 ? 2 : 0; /* 2: a long-window hit */
        }
    }
    memcpy(last_win2, last_win, (size_t)(2 * nbins) * sizeof(double)); /* process(): the fundamentals only */
    *e2 = *e1;
    *e1 = win_energy;
    *prev_code = (double)d;
    if (*seen < 2.0)
        *seen += 1.0;
    return d;
}

/* ---- one channel's new samples ---------------------------------------------------------------- */

typedef struct {
    Py_ssize_t H, m, n_pending, nh, nw;
    int have_half;
} frame_shape;

/* the half-block sources of hops h and h + 1 (fewer at the frame's end): the first starts with the samples buffered
   from the call before (copied with the new ones into ``block``); returns how many */
static int
half_sources(const frame_shape *f, const double *x, const double *pending, Py_ssize_t h, double *block,
             const double *src[2])
{
    const Py_ssize_t H = f->H;
    int q;
    for (q = 0; q < 2 && h + q < f->nh; q++) {
        if (h + q == 0 && f->n_pending > 0) {
            memcpy(block, pending, (size_t)f->n_pending * sizeof(double));
            memcpy(block + f->n_pending, x, (size_t)(H - f->n_pending) * sizeof(double));
            src[q] = block;
        }
        else {
            src[q] = x + (h + q) * H - f->n_pending;
        }
    }
    return q;
}

/* window = previous half + exp(-jwH) * this half, as numpy's complex ops, over ``nbins`` bins */
static inline void
join_halves(double *win, const double *last_half, const double *rot, const double *cur, Py_ssize_t nbins)
{
    Py_ssize_t k;
    for (k = 0; k < nbins; k++) {
        const double ar = rot[2 * k], ai = rot[2 * k + 1], br = cur[2 * k], bi = cur[2 * k + 1];
        win[2 * k] = last_half[2 * k] + (ar * br - ai * bi);
        win[2 * k + 1] = last_half[2 * k + 1] + (ar * bi + ai * br);
    }
}

static int
channel_frames(const frame_shape *f, const double *consts, const double *x, double *state, int64_t *digit,
               int8_t *checked, double *amp, double *lr, double *lc, double *relr, double *relc, double *share)
{
    const Py_ssize_t H = f->H;
    double *pending = state, *last_half = state + H, *last_energy = state + H + 2 * NBINS;
    double *last_win = last_energy + 1, *last_amp = last_win + 2 * NBINS;
    const double *rot = consts + CONST_ROT;
    double block[MAX_HALF], pair[2][2 * NBINS], win[2 * NBINS], pair_energy[2], cur_energy;
    const double *cur;
    int strong = 0, have_half = f->have_half;
    const int long_on = consts[CONST_SCALARS + S_LONG_ON] != 0.0;
    Py_ssize_t h, w = 0, i;

    memcpy(amp, last_amp, NFUND * sizeof(double)); /* row 0: the window before this call's first */
    for (h = 0; h < f->nh; h++) {
        if (h % 2 == 0) { /* the kernel, two half-blocks at a time */
            const double *src[2];
            if (half_sources(f, x, pending, h, block, src) == 2)
                half_dft2(src[0], src[1], H, consts + CONST_BINS, pair[0], pair_energy, pair[1], pair_energy + 1);
            else
                half_dft(src[0], H, consts + CONST_BINS, pair[0], pair_energy);
        }
        cur = pair[h % 2];
        cur_energy = pair_energy[h % 2];
        if (have_half) { /* window = previous half + exp(-jwH) * this half, as numpy's complex ops */
            join_halves(win, last_half, rot, cur, NBINS);
            int chk;
            int d = classify(consts, win, last_win, *last_energy + cur_energy, amp + NFUND * (w + 1),
                             &chk, lr + w, lc + w, relr + w, relc + w, share + w, NULL);
            checked[w] = (int8_t)chk;
            if (long_on) {
                long_src ls = {state + H + STATE_LONG, win, NULL, NULL, NULL, NULL, H, NULL, NULL};
                d = long_step(consts, state + H + STATE_LONG, win, last_win, *last_energy + cur_energy, w, d, &ls,
                              lr, lc, relr, relc, share, checked, NBINS);
            }
            digit[w] = d;
            strong |= d >= 0 && d < WEAK;
            memcpy(last_win, win, sizeof(win));
            w++;
        }
        memcpy(last_half, cur, sizeof(pair[0]));
        *last_energy = cur_energy;
        have_half = 1;
    }
    if (w > 0)
        memcpy(last_amp, amp + NFUND * w, NFUND * sizeof(double));
    /* keep the samples after the last whole half-block */
    {
        const Py_ssize_t total = f->n_pending + f->m, start = f->nh * H;
        for (i = start; i < total; i++)
            pending[i - start] = i < f->n_pending ? pending[i] : x[i - f->n_pending];
    }
    return strong;
}


/*
 * process()'s version of channel_frames: the same windows and results, with the 8-bin kernel and the
 * guard bins computed only for candidate windows (from the samples: prev_x holds the previous call's
 * last half-block).  The guard slots of the state's DFTs are left as they were (unused on this path).
 */
static int
channel_frames_fast(const frame_shape *f, const double *consts, const double *x, double *state, double *prev_x,
                    const double *cosw, const double *sinw, int64_t *digit, int8_t *checked, double *amp,
                    double *lr, double *lc, double *relr, double *relc, double *share)
{
    const Py_ssize_t H = f->H;
    double *pending = state, *last_half = state + H, *last_energy = state + H + 2 * NBINS;
    double *last_win = last_energy + 1, *last_amp = last_win + 2 * NBINS;
    const double *rot = consts + CONST_ROT;
    double block[MAX_HALF], pair[2][2 * NBINS], win[2 * NBINS], pair_energy[2], cur_energy;
    /* prev_x: the previous call's last three whole half-blocks (the oldest first) */
    const double *cur, *src[2] = {NULL, NULL}, *prev_src = prev_x + 2 * H, *src3 = prev_x, *src2 = prev_x + H;
    int strong = 0, have_half = f->have_half;
    const int long_on = consts[CONST_SCALARS + S_LONG_ON] != 0.0;
    Py_ssize_t h, w = 0, i;
    guard_src g;
    g.H = H;
    g.cosw = cosw;
    g.sinw = sinw;

    memcpy(amp, last_amp, NFUND * sizeof(double)); /* row 0: the window before this call's first */
    for (h = 0; h < f->nh; h++) {
        if (h % 2 == 0) { /* the kernel, two half-blocks at a time */
            if (half_sources(f, x, pending, h, block, src) == 2)
                fund_dft2(src[0], src[1], H, consts + CONST_BINS, pair[0], pair_energy, pair[1], pair_energy + 1);
            else
                fund_dft(src[0], H, consts + CONST_BINS, pair[0], pair_energy);
        }
        cur = pair[h % 2];
        cur_energy = pair_energy[h % 2];
        if (have_half) { /* window = previous half + exp(-jwH) * this half, as numpy's complex ops */
            join_halves(win, last_half, rot, cur, NFUND);
            int chk;
            g.xa = prev_src;
            g.xb = src[h % 2];
            int d = classify(consts, win, last_win, *last_energy + cur_energy, amp + NFUND * (w + 1),
                             &chk, lr + w, lc + w, relr + w, relc + w, share + w, &g);
            checked[w] = (int8_t)chk;
            if (long_on) {
                long_src ls = {NULL, NULL, src3, src2, prev_src, src[h % 2], H, cosw, sinw};
                d = long_step(consts, state + H + STATE_LONG, win, last_win, *last_energy + cur_energy, w, d, &ls,
                              lr, lc, relr, relc, share, checked, NFUND);
            }
            digit[w] = d;
            strong |= d >= 0 && d < WEAK;
            memcpy(last_win, win, 2 * NFUND * sizeof(double));
            w++;
        }
        memcpy(last_half, cur, 2 * NFUND * sizeof(double));
        *last_energy = cur_energy;
        have_half = 1;
        src3 = src2;
        src2 = prev_src;
        prev_src = src[h % 2];
    }
    if (f->nh > 0 && long_on) { /* the last three half-blocks (after a short call some are prev_x's own) */
        const double *end = prev_x + 3 * H;
        if ((src3 >= prev_x && src3 < end) || (src2 >= prev_x && src2 < end) || (prev_src >= prev_x && prev_src < end)) {
            double keep[3 * MAX_HALF];
            memcpy(keep, src3, (size_t)H * sizeof(double));
            memcpy(keep + H, src2, (size_t)H * sizeof(double));
            memcpy(keep + 2 * H, prev_src, (size_t)H * sizeof(double));
            memcpy(prev_x, keep, (size_t)(3 * H) * sizeof(double));
        }
        else {
            memcpy(prev_x, src3, (size_t)H * sizeof(double));
            memcpy(prev_x + H, src2, (size_t)H * sizeof(double));
            memcpy(prev_x + 2 * H, prev_src, (size_t)H * sizeof(double));
        }
    }
    else if (f->nh > 0 && prev_src != prev_x + 2 * H)
        memcpy(prev_x + 2 * H, prev_src, (size_t)H * sizeof(double));
    if (w > 0)
        memcpy(last_amp, amp + NFUND * w, NFUND * sizeof(double));
    /* keep the samples after the last whole half-block */
    {
        const Py_ssize_t total = f->n_pending + f->m, start = f->nh * H;
        for (i = start; i < total; i++)
            pending[i - start] = i < f->n_pending ? pending[i] : x[i - f->n_pending];
    }
    return strong;
}

/* ---- the per-window state machine: DetectorBank._step, _maybe_confirm, _onset, _end, _finish ------- */

/*
 * The same decisions and the same arithmetic, in the same order, as the Python state machine (which
 * the numpy backend runs); Python's round() is round-half-even, as nearbyint() in the default mode.
 */
typedef struct {
    int digit; /* NO_DIGIT: none */
    int misses, checked, confirmed;
    int long_hits; /* long-window hits among the checked windows */
    int td_hits;   /* relaxed hits among them (DetectorParams.td_*) */
    int64_t first_w, last_w, onset;
    double a_prev, a_first, a_ref, a_last, a_after, level;
    double r_lo, r_hi, c_lo, c_hi, s_r, s_c;
    int hits;       /* windows that passed every test */
    double s_share; /* the sum of the tones' energy share in them */
    int64_t ctx_onset; /* the onset the music-context value was measured for (INT64_MIN: none) */
    double ctx_value;
    double q_lo, q_hi; /* the row/column amplitude ratio's range over the hit windows after the first */
    int refused;       /* failed a test whose verdict holds for the rest of the press (press_env_*) */
} run_t;

typedef struct {
    run_t run, rival; /* rival: another digit's run started during a miss (digit NO_DIGIT: none) */
    int64_t nlo[2], nhi[2]; /* the windows of the last two breaks (mark_break), inclusive; lo > hi: none */
} chan_t;

/* floor(a / b) for b > 0 (Python's //) */
static inline int64_t
floordiv(int64_t a, int64_t b)
{
    const int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

typedef struct {
    Py_ssize_t ch;
    int digit;
    int64_t start, end; /* end -1: start event */
    double level;
} event_t;

typedef struct {
    event_t *ev;
    Py_ssize_t n, cap;
    int failed;
} event_buf;

static void
emit(event_buf *b, Py_ssize_t ch, int digit, int64_t start, int64_t end, double level)
{
    if (b->n == b->cap) {
        const Py_ssize_t cap = b->cap ? 2 * b->cap : 16;
        event_t *ev = (event_t *)PyMem_RawRealloc(b->ev, (size_t)cap * sizeof(event_t));
        if (ev == NULL) {
            b->failed = 1;
            return;
        }
        b->ev = ev;
        b->cap = cap;
    }
    b->ev[b->n].ch = ch;
    b->ev[b->n].digit = digit;
    b->ev[b->n].start = start;
    b->ev[b->n].end = end;
    b->ev[b->n].level = level;
    b->n++;
}

static inline double
pair_amp(int digit, const double *amp8)
{
    return 0.5 * (amp8[digit / 4] + amp8[4 + digit % 4]);
}

static inline double
min1(double v)
{
    return v < 1.0 ? v : 1.0;
}

static void
new_run(run_t *r, int d, int64_t w, int checked, const double *amp8, const double *prev_amp8, double lr, double lc,
        double rel_r, double rel_c, double share)
{
    r->hits = 1;
    r->s_share = share;
    r->ctx_onset = INT64_MIN;
    r->ctx_value = 0.0;
    r->q_lo = INFINITY;
    r->q_hi = 0.0;
    r->refused = 0;
    r->digit = d;
    r->first_w = r->last_w = w;
    r->a_prev = pair_amp(d, prev_amp8);
    r->a_first = r->a_ref = r->a_last = pair_amp(d, amp8);
    r->a_after = 0.0;
    r->misses = 0;
    r->checked = checked != 0;
    r->long_hits = checked == 2;
    r->td_hits = checked == 3;
    r->confirmed = 0;
    r->onset = 0;
    r->level = 0.5 * (lr + lc);
    if (checked) {
        r->r_lo = r->r_hi = r->s_r = rel_r;
        r->c_lo = r->c_hi = r->s_c = rel_c;
    }
    else {
        r->r_lo = r->c_lo = INFINITY;
        r->r_hi = r->c_hi = -INFINITY;
        r->s_r = r->s_c = 0.0;
    }
}

static int64_t
run_onset(const double *sc, const run_t *r)
{
    const double half = sc[S_HALF], window = sc[S_WINDOW];
    const double c_prev = min1(r->a_prev / r->a_ref);
    if (c_prev >= sc[S_EDGE_MIN])
        return (int64_t)nearbyint((double)((r->first_w - 1) * (int64_t)half) + (1.0 - c_prev) * window);
    const double c_first = min1(r->a_first / r->a_ref);
    return (int64_t)nearbyint((double)(r->first_w * (int64_t)half) + (1.0 - c_first) * window);
}

static int64_t
run_end(const double *sc, const run_t *r, int64_t onset, int64_t w, double a, double a_after)
{
    const int64_t half = (int64_t)sc[S_HALF], window = (int64_t)sc[S_WINDOW];
    const int64_t start_w = w * half;
    double end;
    if (onset > start_w)
        end = (double)(start_w + window);
    else
        end = (double)start_w + min1(a / r->a_ref) * (double)window;
    const double c_after = min1(a_after / r->a_ref);
    if (c_after >= sc[S_EDGE_MIN]) {
        const double e2 = (double)((w + 1) * half) + c_after * (double)window;
        if (e2 > end)
            end = e2;
    }
    return (int64_t)nearbyint(end);
}

/* Where the confirmation tests find a window's last 5 half-blocks: xbuf holds 4H samples (filled on first
 * use from the channel's int16 ring), the partial half-block and the frame's new samples (tail of them in
 * all); global half-block half_index starts at xbuf + 4H.  On first use every sample of xbuf is made what
 * the ring keeps (to_int16: a no-op for int16 input), so the tests see int16 audio whatever the input type
 * (the numpy path rounds its segment the same way).  The ring: the stream's last R H samples before this
 * frame, as int16 (one ring for the partials, long-baseline, neighbours and music-context tests; R >= 5, so
 * it holds the 4 whole half-blocks before the partial one). */
typedef struct {
    double *xbuf;
    int64_t half_index;
    Py_ssize_t H;
    Py_ssize_t tail; /* samples after xbuf + 4H: the partial half-block and the new ones */
    int ready;
    int64_t L; /* the ring's length in samples (>= R H) */
    const int16_t *ring16; /* sample t in slot t mod L, rounded and clipped to int16 (to_int16) */
    const double *ctx_tab; /* the music-context test's Hann window and FFT twiddles (frame_tables) */
} seg_src;

/* a sample as the music-context ring keeps it: rounded half to even (numpy's round) and clipped */
static inline int16_t
to_int16(double v)
{
    const double r = nearbyint(v);
    return r >= 32767.0 ? 32767 : r <= -32768.0 ? -32768 : isnan(r) ? 0 : (int16_t)r;
}

/* n int16 samples from src into the ring at dst; with nt, the whole 64-byte cache lines of dst by
 * non-temporal stores (x86 SSE2), the rest as usual.  The ring is read only when a press is judged
 * (rarely, and long after most samples were written), so for rings larger than a cache (RING_NT_BYTES: a
 * 256-channel bank keeps 1.8 MB of rings at the music-context test's reach) writing them around the cache
 * keeps a bank's other state there; ring_fence() after the frame's stores.  A small ring (one stream) stays
 * cached: there the fence's wait for memory would cost more than the stores save. */
#define RING_NT_BYTES (512 * 1024)
static inline void
ring_store(int16_t *dst, const int16_t *src, Py_ssize_t n, int nt)
{
#if defined(__SSE2__)
    if (!nt) {
        memcpy(dst, src, (size_t)n * sizeof(int16_t));
        return;
    }
    Py_ssize_t head = (Py_ssize_t)((64 - ((uintptr_t)dst & 63)) & 63) / (Py_ssize_t)sizeof(int16_t);
    if (head > n)
        head = n;
    memcpy(dst, src, (size_t)head * sizeof(int16_t));
    Py_ssize_t i = head;
    for (; i + 32 <= n; i += 32) { /* one cache line: 32 samples */
        __m128i *d = (__m128i *)(dst + i);
        const __m128i *q = (const __m128i *)(src + i);
        _mm_stream_si128(d, _mm_loadu_si128(q));
        _mm_stream_si128(d + 1, _mm_loadu_si128(q + 1));
        _mm_stream_si128(d + 2, _mm_loadu_si128(q + 2));
        _mm_stream_si128(d + 3, _mm_loadu_si128(q + 3));
    }
    memcpy(dst + i, src + i, (size_t)(n - i) * sizeof(int16_t));
#else
    (void)nt;
    memcpy(dst, src, (size_t)n * sizeof(int16_t));
#endif
}

static inline void
ring_fence(void)
{
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

static const double *
seg_at(seg_src *s, int64_t w)
{
    if (!s->ready) {
        const int64_t H = s->H, L = s->L, now = s->half_index * H;
        int64_t slot = ((now - 4 * H) % L + L) % L;
        for (Py_ssize_t i = 0; i < 4 * H; i++) {
            s->xbuf[i] = (double)s->ring16[slot];
            if (++slot == L)
                slot = 0;
        }
        for (Py_ssize_t i = 4 * H; i < 4 * H + s->tail; i++)
            s->xbuf[i] = (double)to_int16(s->xbuf[i]);
        s->ready = 1;
    }
    return s->xbuf + (w - s->half_index + 1) * s->H; /* half-blocks w - 3 .. w + 1 */
}

/* in-place radix-2 FFT of n (a power of two) complex values re[], im[]; tw: cos then sin of 2 pi i / n,
 * i < n / 2 (forward transform: exp(-j ...)) */
static void
fft_radix2(double *re, double *im, Py_ssize_t n, const double *tw)
{
    for (Py_ssize_t i = 1, j = 0; i < n; i++) { /* bit reversal */
        Py_ssize_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j];
            re[j] = t;
            t = im[i];
            im[i] = im[j];
            im[j] = t;
        }
    }
    for (Py_ssize_t i = 0; i + 1 < n; i += 2) { /* the first stage: twiddle 1 */
        const double xr = re[i + 1], xi = im[i + 1];
        re[i + 1] = re[i] - xr;
        im[i + 1] = im[i] - xi;
        re[i] += xr;
        im[i] += xi;
    }
    for (Py_ssize_t len = 4; len <= n; len <<= 1) {
        const Py_ssize_t half = len >> 1, step = n / len;
        for (Py_ssize_t k = 0; k < half; k++) { /* one twiddle for every group of the stage */
            const double c = tw[k * step], sn = tw[n / 2 + k * step];
            for (Py_ssize_t a = k; a < n; a += len) {
                const Py_ssize_t b = a + half;
                const double xr = re[b] * c + im[b] * sn, xi = im[b] * c - re[b] * sn;
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
        }
    }
}

/* samples [lo, hi) of the stream, as to_int16 keeps them, into out: those before sample half_index * H
 * from the int16 ring (the caller has checked that they are still there: the ring holds the R H samples
 * before this frame, and lo >= (half_index + 1 - R) H), the rest from xbuf */
static void
seg_copy(seg_src *s, int64_t lo, int64_t hi, double *out)
{
    const int64_t H = s->H, now = s->half_index * H, L = s->L;
    int64_t t = lo, slot = (lo % L + L) % L;
    for (; t < hi && t < now; t++) {
        out[t - lo] = (double)s->ring16[slot];
        if (++slot == L)
            slot = 0;
    }
    for (; t < hi; t++) /* xbuf + 4H: sample now */
        out[t - lo] = (double)to_int16(s->xbuf[4 * H + (t - now)]);
}

/* |sum_i xw[i] exp(-j 2 pi f i / rate)|, by the Goertzel recursion */
static double
comb_amp(const double *xw, Py_ssize_t N, double f, double rate)
{
    const double om = 2.0 * PI * f / rate, coef = 2.0 * cos(om);
    double s1 = 0.0, s2 = 0.0;
    for (Py_ssize_t i = 0; i < N; i++) {
        const double t = xw[i] + coef * s1 - s2;
        s2 = s1;
        s1 = t;
    }
    const double p = s1 * s1 + s2 * s2 - coef * s1 * s2;
    return sqrt(p > 0.0 ? p : 0.0);
}

#define COMB_VECS 8
/* comb_amp at K frequencies f[0..K-1] into out: up to 4 COMB_VECS recursions at a time, vectors of four lanes
 * (independent chains; the same operations per lane as comb_amp) */
DTMFGUARD_CLONES static void
comb_amps(const double *xw, Py_ssize_t N, const double *f, int K, double rate, double *out)
{
    for (int k0 = 0; k0 < K; k0 += 4 * COMB_VECS) {
        dg_v4d coef[COMB_VECS], s1[COMB_VECS], s2[COMB_VECS];
        int j, v;
        for (v = 0; v < COMB_VECS; v++)
            for (j = 0; j < 4; j++) {
                const int q = k0 + 4 * v + j;
                coef[v][j] = 2.0 * cos(2.0 * PI * (q < K ? f[q] : f[k0]) / rate);
                s1[v][j] = s2[v][j] = 0.0;
            }
        const int nv = (K - k0 + 3) / 4 < COMB_VECS ? (K - k0 + 3) / 4 : COMB_VECS;
        if (nv > 4) { /* up to COMB_VECS chains at once: the recursions are latency-bound, more of them overlap */
            for (Py_ssize_t i = 0; i < N; i++) {
                const dg_v4d x = {xw[i], xw[i], xw[i], xw[i]};
                for (v = 0; v < COMB_VECS; v++) {
                    const dg_v4d t = x + coef[v] * s1[v] - s2[v];
                    s2[v] = s1[v];
                    s1[v] = t;
                }
            }
        }
        else {
            for (Py_ssize_t i = 0; i < N; i++) {
                const dg_v4d x = {xw[i], xw[i], xw[i], xw[i]};
                for (v = 0; v < 4; v++) {
                    const dg_v4d t = x + coef[v] * s1[v] - s2[v];
                    s2[v] = s1[v];
                    s1[v] = t;
                }
            }
        }
        for (v = 0; v < nv; v++)
            for (j = 0; j < 4; j++) {
                const int q = k0 + 4 * v + j;
                if (q < K) {
                    const double p = s1[v][j] * s1[v][j] + s2[v][j] * s2[v][j] - coef[v][j] * s1[v][j] * s2[v][j];
                    out[q] = sqrt(p > 0.0 ? p : 0.0);
                }
            }
    }
}

/* detector._comb_ratio: the partials test over seg (N samples, Hann window) for tones fr, fc (Hz) */
static double
comb_ratio(const double *sc, const double *seg, const double *hann, Py_ssize_t N, double fr, double fc)
{
    double xw[5 * MAX_HALF];
    const double rate = sc[S_RATE];
    Py_ssize_t i;
    for (i = 0; i < N; i++)
        xw[i] = seg[i] * hann[i];
    const double ar = comb_amp(xw, N, fr, rate), ac = comb_amp(xw, N, fc, rate);
    const double weaker = ar < ac ? ar : ac;
    double best = 0.0;
    for (int n = 2; fr / n >= sc[S_COMB_F0_MIN]; n++) {
        double f0 = fr / n;
        const double m = nearbyint(fc / f0);
        if (!(f0 <= sc[S_COMB_F0_MAX] && fabs(fc / (m * f0) - 1.0) <= sc[S_COMB_TOL]))
            continue;
        f0 = (fr + fc) / ((double)n + m);
        double top[3] = {0.0, 0.0, 0.0}, fk[64], ak[64];
        int count = 0;
        for (int k = 1; k * f0 <= sc[S_COMB_F_HI] && count < 64; k++)
            if (!(k == n || (double)k == m || k * f0 < sc[S_COMB_F_LO]))
                fk[count++] = k * f0;
        comb_amps(xw, N, fk, count, rate, ak);
        for (int q = 0; q < count; q++) {
            const double v = ak[q];
            if (v > top[2]) { /* keep the 3 largest, descending */
                top[2] = v;
                for (int j = 2; j > 0 && top[j] > top[j - 1]; j--) {
                    const double t = top[j];
                    top[j] = top[j - 1];
                    top[j - 1] = t;
                }
            }
        }
        if (count >= 3) {
            const double mean = (top[0] + top[1] + top[2]) / 3.0;
            if (mean > best)
                best = mean;
        }
    }
    return best / (weaker > 1e-9 ? weaker : 1e-9);
}

/* detector._segment_drift: the tone at w0 (1 + rel) radians per sample over the first and the last
 * L = N / 2 samples of seg (Hann window hann_l each, N - L apart); how far the frequency their phase
 * advance gives lies from rel, relative to w0 */
static double
segment_drift(const double *seg, const double *hann_l, Py_ssize_t N, double w0, double rel)
{
    const Py_ssize_t L = N / 2, lag = N - L;
    const double om = w0 * (1.0 + rel);
    double b[DG_BIN_CONSTS], y1[2], y2[2];
    dg_bin_consts(om, (long)L, b);
    double p1 = 0.0, p2 = 0.0, q1 = 0.0, q2 = 0.0;
    for (Py_ssize_t i = 0; i < L; i++) {
        const double t = (seg[i] * hann_l[i] - p2) + b[DG_COEF] * p1;
        p2 = p1;
        p1 = t;
        const double u = (seg[lag + i] * hann_l[i] - q2) + b[DG_COEF] * q1;
        q2 = q1;
        q1 = u;
    }
    dg_finish(b, p1, p2, y1);
    dg_finish(b, q1, q2, y2);
    /* angle(y2 * conj(y1)) - om * lag, wrapped to [-pi, pi) */
    const double re = y2[0] * y1[0] + y2[1] * y1[1], im = y2[1] * y1[0] - y2[0] * y1[1];
    const double d = py_mod(atan2(im, re) - om * (double)lag + PI, 2.0 * PI) - PI;
    return fabs(d) / (w0 * (double)lag);
}

/* cos(om i) and sin(om i) for i in 0..N-1, from the angle-sum rule over blocks of NEIGH_BLOCK samples (the
 * values at each block's start and at 0..NEIGH_BLOCK-1 from the C library: 2 (N / NEIGH_BLOCK + NEIGH_BLOCK)
 * calls instead of 2 N; each value one complex product of two library values, within a few ulp of them, no
 * error carried from sample to sample) */
#define NEIGH_BLOCK 16
static void
tone_table(double om, Py_ssize_t N, double *cs, double *sn)
{
    double cj[NEIGH_BLOCK], sj[NEIGH_BLOCK];
    Py_ssize_t i0, j;
    for (j = 0; j < NEIGH_BLOCK; j++) {
        cj[j] = cos(om * (double)j);
        sj[j] = sin(om * (double)j);
    }
    for (i0 = 0; i0 < N; i0 += NEIGH_BLOCK) {
        const double c0 = cos(om * (double)i0), s0 = sin(om * (double)i0);
        for (j = 0; j < NEIGH_BLOCK && i0 + j < N; j++) {
            cs[i0 + j] = c0 * cj[j] - s0 * sj[j];
            sn[i0 + j] = s0 * cj[j] + c0 * sj[j];
        }
    }
}

/* detector._neighbours: the tones at fr and fc (Hz) taken out of seg (N samples; each tone's complex
 * amplitude from its Hann-windowed DFT), what remains (Hann window) at half the column frequency (*low),
 * at 1.5 fc (*third: the 3rd partial of a note at fc / 2), the largest of it at 1.5 fr, 1.5 fc, 2/3 fc and
 * 4/3 fc (*high), at fr / 2 (*low_r) and 1.5 fr (*third_r), over the weaker tone's amplitude */
static void
neighbours(const double *sc, const double *seg, const double *hann, Py_ssize_t N, double fr, double fc,
           double *low, double *third, double *high, double *low_r, double *third_r)
{
    double res[N], cs[N], sn[N], mags[2], wsum = 0.0; /* N <= 5 MAX_HALF; 255 at 8 kHz (6 KB of stack) */
    const double rate = sc[S_RATE], f2[2] = {fr, fc};
    Py_ssize_t i;
    for (i = 0; i < N; i++) {
        res[i] = seg[i];
        wsum += hann[i];
    }
    const double g = 2.0 / wsum;
    for (int t = 0; t < 2; t++) {
        const double om = 2.0 * PI * f2[t] / rate;
        double re = 0.0, im = 0.0;
        tone_table(om, N, cs, sn);
        for (i = 0; i < N; i++) {
            const double xw = seg[i] * hann[i];
            re += xw * cs[i];
            im += xw * sn[i];
        }
        im = -im;
        mags[t] = hypot(re, im);
        for (i = 0; i < N; i++)
            res[i] -= (g * re) * cs[i] - (g * im) * sn[i];
    }
    double weaker = mags[0] < mags[1] ? mags[0] : mags[1];
    if (!(weaker > 1e-9))
        weaker = 1e-9;
    for (i = 0; i < N; i++)
        res[i] *= hann[i]; /* what remains, windowed */
    const double fk[6] = {0.5 * fc, 1.5 * fr, 1.5 * fc, fc * 2.0 / 3.0, fc * 4.0 / 3.0, 0.5 * fr};
    double ak[6];
    comb_amps(res, N, fk, 6, rate, ak);
    double hi = ak[1];
    for (int k = 2; k < 5; k++)
        if (ak[k] > hi)
            hi = ak[k];
    *low = ak[0] / weaker;
    *third = ak[2] / weaker;
    *high = hi / weaker;
    *low_r = ak[5] / weaker;
    *third_r = ak[1] / weaker;
}

/* detector._log2_fast: log2(p) for p > 0 normal, from frexp (here: its bits) and the atanh series of the mantissa in
 * [sqrt(1/2), sqrt(2)) (4 terms: within 1e-7 of log2); about 10 times cheaper than the C library's log10,
 * which was most of the music-context test's cost (624 logarithms a measurement) */
static inline double
log2_fast(double p)
{
    /* p = m 2^e, m in [1, 2) (p is positive and normal here): frexp's mantissa times 2, from the bits */
    uint64_t bits;
    memcpy(&bits, &p, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m;
    memcpy(&m, &bits, sizeof m);
    if (m >= 1.4142135623730951) {
        m *= 0.5;
        e += 1;
    }
    const double t = (m - 1.0) / (m + 1.0), t2 = t * t;
    return (double)e + t * (2.8853900817779268 + t2 * (0.9617966939259756 + t2 * (0.5770780163555853
                                                                                  + t2 * 0.4121985831111324)));
}

/* detector._context_persistence: frames of n = CTX_N samples of x[0..len) (Hann window, hop n / 2), each
 * frame's log-magnitude spectrum over bins CTX_KLO .. CTX_KHI - 1 with its mean over +-CTX_SMOOTH bins
 * taken away; the mean Pearson correlation of CTX_PAIRS frames (spread evenly) with the one half the frames
 * later (only those frames are computed; once the mean cannot reach CTX_PERSIST, that bound); -1.0 if out
 * of memory (the test then does not reject) */
static double
context_persistence(const double *sc, const double *tab, seg_src *seg, int64_t lo, Py_ssize_t len)
{
    const Py_ssize_t n = (Py_ssize_t)sc[S_CTX_N], hop = n / 2;
    const int klo = (int)sc[S_CTX_KLO], khi = (int)sc[S_CTX_KHI], k = (int)sc[S_CTX_SMOOTH];
    const int nb = khi - klo, width = nb - 2 * k;
    const Py_ssize_t nf = len >= n ? (len - n) / hop + 1 : 0;
    if (nf < 2 || width < 3)
        return 0.0;
    const Py_ssize_t lag = nf / 2;
    Py_ssize_t npairs = (Py_ssize_t)sc[S_CTX_PAIRS];
    if (npairs > nf - lag)
        npairs = nf - lag;
    if (npairs < 1)
        return 0.0;
    double *mem = (double *)PyMem_RawMalloc(((size_t)n * 4 + (size_t)nb + (size_t)width * 2) * sizeof(double));
    if (mem == NULL)
        return -1.0;
    const double *hw = tab, *tw = tab + n;
    double *fre = mem, *fim = fre + n, *ak = fim + n, *da = ak + nb, *db = da + width;
    double *xa = db + width, *xb = xa + n; /* the pair's frames, read from the ring (seg_copy) */
    double total = 0.0;
    for (Py_ssize_t j = 0; j < npairs; j++) {
        const Py_ssize_t i0 = npairs > 1 ? (j * (nf - lag - 1)) / (npairs - 1) : 0;
        /* both frames of the pair in one complex FFT (frame a real, frame b imaginary) */
        seg_copy(seg, lo + i0 * hop, lo + i0 * hop + n, xa); /* only the frames used: 5 of 17 at 8 kHz */
        seg_copy(seg, lo + (i0 + lag) * hop, lo + (i0 + lag) * hop + n, xb);
        for (Py_ssize_t i = 0; i < n; i++) {
            fre[i] = xa[i] * hw[i];
            fim[i] = xb[i] * hw[i];
        }
        fft_radix2(fre, fim, n, tw);
        for (int side = 0; side < 2; side++) {
            double *d = side ? db : da;
            for (int b = 0; b < nb; b++) {
                const Py_ssize_t q = klo + b, r = (n - q) & (n - 1);
                /* A[q] = (Z[q] + conj Z[n - q]) / 2, B[q] = (Z[q] - conj Z[n - q]) / 2j */
                const double re = side ? fim[q] + fim[r] : fre[q] + fre[r];
                const double im = side ? fre[r] - fre[q] : fim[q] - fim[r];
                /* 20 log10 of the magnitude 0.5 |.| (floor 1e-3), as 10 log10(2) log2 of its square */
                const double p = 0.25 * (re * re + im * im);
                ak[b] = 3.0102999566398120 * log2_fast(p > 1e-6 ? p : 1e-6);
            }
            double acc = 0.0;
            for (int b = 0; b < 2 * k + 1; b++)
                acc += ak[b];
            for (int i = 0; i < width; i++) { /* running sum of ak[i .. i + 2k] */
                if (i > 0)
                    acc += ak[i + 2 * k] - ak[i - 1];
                d[i] = ak[i + k] - acc / (double)(2 * k + 1);
            }
        }
        double ma = 0.0, mb = 0.0, va = 0.0, vb = 0.0, ab = 0.0;
        for (int i = 0; i < width; i++) {
            ma += da[i];
            mb += db[i];
        }
        ma /= width;
        mb /= width;
        for (int i = 0; i < width; i++) {
            va += (da[i] - ma) * (da[i] - ma);
            vb += (db[i] - mb) * (db[i] - mb);
            ab += (da[i] - ma) * (db[i] - mb);
        }
        if (va > 1e-6 * width && vb > 1e-6 * width)
            total += ab / sqrt(va * vb);
        /* decided already: even correlations of 1 for the pairs left stay below the limit (the bound is
         * returned, below it as the mean would be) */
        const double bound = (total + (double)(npairs - 1 - j)) / (double)npairs;
        if (j + 1 < npairs && bound < sc[S_CTX_PERSIST]) {
            PyMem_RawFree(mem);
            return bound;
        }
    }
    PyMem_RawFree(mem);
    return total / (double)npairs;
}

/* the pair-before-the-onset test (detector._pre_onset_level): each tone's amplitude (Hann window, DFT at fr /
 * fc Hz) over samples [lo, lo + n) relative to the same over [plo, plo + n), the smaller ratio; -1.0 if out
 * of memory (the test then does not reject) */
static double
pre_onset_level(const double *sc, seg_src *seg, int64_t lo, int64_t plo, Py_ssize_t n, double fr, double fc)
{
    double *a = (double *)PyMem_RawMalloc((size_t)n * 2 * sizeof(double));
    if (a == NULL)
        return -1.0;
    double *b = a + n;
    seg_copy(seg, lo, lo + n, a);
    seg_copy(seg, plo, plo + n, b);
    const double cd = cos(2.0 * PI / (double)(n - 1)), sd = sin(2.0 * PI / (double)(n - 1));
    double c = 1.0, sn = 0.0; /* cos and sin of 2 pi i / (n - 1), by rotation (within 1e-14 of libm's) */
    for (Py_ssize_t i = 0; i < n; i++) {
        const double hw = 0.5 - 0.5 * c;
        a[i] *= hw;
        b[i] *= hw;
        const double c2 = c * cd - sn * sd;
        sn = sn * cd + c * sd;
        c = c2;
    }
    const double rate = sc[S_RATE];
    const double pr = comb_amp(b, n, fr, rate), pc = comb_amp(b, n, fc, rate);
    const double qr = comb_amp(a, n, fr, rate) / (pr > 1e-9 ? pr : 1e-9);
    const double qc = comb_amp(a, n, fc, rate) / (pc > 1e-9 ? pc : 1e-9);
    PyMem_RawFree(a);
    return qr < qc ? qr : qc;
}

/* the slid-into-the-key test (detector._glided): segments of n samples ending 0, hop, 2 hop ... before the
 * onset (the stream's samples [lo, onset), the latest first); for each tone, in each segment (Hann window)
 * the strongest component on the grid f (1 + glide_step k), k = -glide_k .. glide_k (the first of equal
 * ones), over the tone's amplitude over [plo, plo + n) at f. 1 if for either tone every segment's component
 * lies inside the grid on the same side of f, no nearer to it than the later segment's, the latest at
 * least glide_offset away and glide_level strong, the others glide_hold strong; 0 otherwise or out of
 * memory. */
#define GLIDE_MAX_GRID 129 /* grid points of glided()'s vectorised search (2 glide_k + 1; more: one at a time) */
static int
glided(const double *sc, seg_src *seg, int64_t lo, int64_t onset, int64_t plo, Py_ssize_t n, double fr, double fc)
{
    const Py_ssize_t len = (Py_ssize_t)(onset - lo);
    double *x = (double *)PyMem_RawMalloc((size_t)(len + 3 * n) * sizeof(double));
    if (x == NULL)
        return 0;
    double *b = x + len, *hw = b + n, *fw = hw + n;
    seg_copy(seg, lo, onset, x);
    seg_copy(seg, plo, plo + n, b);
    const double cd = cos(2.0 * PI / (double)(n - 1)), sd = sin(2.0 * PI / (double)(n - 1));
    double c = 1.0, sn = 0.0; /* cos and sin of 2 pi i / (n - 1), by rotation (as pre_onset_level) */
    for (Py_ssize_t i = 0; i < n; i++) {
        hw[i] = 0.5 - 0.5 * c;
        b[i] *= hw[i];
        const double c2 = c * cd - sn * sd;
        sn = sn * cd + c * sd;
        c = c2;
    }
    const double rate = sc[S_RATE], step = sc[S_GLIDE_STEP];
    const int K = (int)sc[S_GLIDE_K], S = (int)sc[S_GLIDE_SEGMENTS];
    const Py_ssize_t hop = (Py_ssize_t)sc[S_GLIDE_HOP];
    int found = 0;
    for (int t = 0; t < 2 && !found; t++) {
        const double f = t ? fc : fr;
        double ref = comb_amp(b, n, f, rate);
        ref = ref > 1e-9 ? ref : 1e-9;
        {
            const double *xs = x + len - n;
            for (Py_ssize_t i = 0; i < n; i++)
                fw[i] = xs[i] * hw[i];
            if (comb_amp(fw, n, f, rate) < sc[S_GLIDE_SCREEN] * ref)
                continue; /* nothing near the tone just before the onset (DetectorParams.glide_screen_db) */
        }
        double last = 0.0;
        int j;
        for (j = 0; j < S; j++) {
            const double *xs = x + len - (Py_ssize_t)j * hop - n;
            for (Py_ssize_t i = 0; i < n; i++)
                fw[i] = xs[i] * hw[i];
            double top = -1.0;
            int at = 0;
            if (2 * K + 1 <= GLIDE_MAX_GRID) { /* the grid's recursions side by side (comb_amps: each lane as comb_amp) */
                double fk[GLIDE_MAX_GRID], ak[GLIDE_MAX_GRID];
                for (int k = -K; k <= K; k++)
                    fk[k + K] = f * (1.0 + step * (double)k);
                comb_amps(fw, n, fk, 2 * K + 1, rate, ak);
                for (int k = -K; k <= K; k++)
                    if (ak[k + K] > top) {
                        top = ak[k + K];
                        at = k;
                    }
            }
            else {
                for (int k = -K; k <= K; k++) {
                    const double v = comb_amp(fw, n, f * (1.0 + step * (double)k), rate);
                    if (v > top) {
                        top = v;
                        at = k;
                    }
                }
            }
            const double rel = step * (double)at, level = top / ref;
            if (at == -K || at == K)
                break;
            if (j == 0) {
                if (fabs(rel) < sc[S_GLIDE_OFFSET] || level < sc[S_GLIDE_LEVEL])
                    break;
            } else if (rel * last <= 0.0 || fabs(rel) < fabs(last) || level < sc[S_GLIDE_HOLD])
                break;
            last = rel;
        }
        found = j == S;
    }
    PyMem_RawFree(x);
    return found;
}

/* the press's sub-window amplitude-ratio test (detector._press_ratio_spread): each tone's amplitude (Hann
 * window of H samples, DFT at fr / fc Hz) in windows every `step` samples over the stream's samples [lo, hi);
 * over the windows whose two amplitudes sum to at least `cover` of the largest sum, the largest row/column
 * ratio over the smallest; 1.0 with fewer than 2 windows or out of memory (the test then does not reject) */
static double
press_ratio_spread(const double *sc, seg_src *seg, int64_t lo, int64_t hi, double fr, double fc)
{
    const Py_ssize_t n = (Py_ssize_t)sc[S_HALF], step = (Py_ssize_t)sc[S_ENV_STEP], len = (Py_ssize_t)(hi - lo);
    const Py_ssize_t count = len >= n ? (len - n) / step + 1 : 0;
    if (count < 2)
        return 1.0;
    double *x = (double *)PyMem_RawMalloc((size_t)(len + 2 * n + 2 * count) * sizeof(double));
    if (x == NULL)
        return 1.0;
    double *hw = x + len, *fw = hw + n, *ar = fw + n, *ac = ar + count;
    seg_copy(seg, lo, hi, x);
    const double cd = cos(2.0 * PI / (double)(n - 1)), sd = sin(2.0 * PI / (double)(n - 1));
    double c = 1.0, sn = 0.0; /* cos and sin of 2 pi i / (n - 1), by rotation (as pre_onset_level) */
    for (Py_ssize_t i = 0; i < n; i++) {
        hw[i] = 0.5 - 0.5 * c;
        const double c2 = c * cd - sn * sd;
        sn = sn * cd + c * sd;
        c = c2;
    }
    const double rate = sc[S_RATE];
    double top = 0.0;
    for (Py_ssize_t k = 0; k < count; k++) {
        const double *xk = x + k * step;
        for (Py_ssize_t i = 0; i < n; i++)
            fw[i] = xk[i] * hw[i];
        ar[k] = comb_amp(fw, n, fr, rate);
        ac[k] = comb_amp(fw, n, fc, rate);
        if (ar[k] + ac[k] > top)
            top = ar[k] + ac[k];
    }
    double q_lo = INFINITY, q_hi = 0.0;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (ar[k] + ac[k] >= sc[S_ENV_COVER] * top) {
            const double q = ar[k] / (ac[k] > 1e-9 ? ac[k] : 1e-9);
            if (q < q_lo)
                q_lo = q;
            if (q > q_hi)
                q_hi = q;
        }
    }
    PyMem_RawFree(x);
    return q_hi / (q_lo > 1e-300 ? q_lo : 1e-300);
}

/* whether window w's last 5 half-blocks (windows w - 3 .. w) hold a break (mark_break) */
static inline int
seg_broken(const chan_t *c, int64_t w)
{
    return (c->nlo[0] <= w && c->nhi[0] >= w - 3) || (c->nlo[1] <= w && c->nhi[1] >= w - 3);
}

/* whether a press the long window helped gets the music-context test at any share and offset
 * (DetectorParams.long_context_max_share; detector._lw_context) */
static inline int
lw_context(const double *sc, const run_t *r)
{
    return r->long_hits > 0 && r->s_share < sc[S_LONG_CTX_MAX_SHARE] * (double)r->hits;
}

static void
maybe_confirm(const double *sc, run_t *r, int64_t w, double a, Py_ssize_t ch, event_buf *ev, seg_src *seg,
              const double *omega, const double *hann, const double *hann_l, int broken)
{
    if (r->checked < (int)sc[S_CONFIRM_CHECKED] || r->refused)
        return;
    if (r->long_hits && r->checked - r->long_hits < (int)sc[S_LONG_MIN_STRONG])
        return; /* DetectorParams.long_min_strong */
    /* a press that needs its relaxed hits to reach confirm_checked (DetectorParams.td_*; detector._td_refused) */
    const int td = r->td_hits > 0 && r->checked - r->td_hits < (int)sc[S_CONFIRM_CHECKED];
    if (td && (r->checked - r->td_hits - r->long_hits < (int)sc[S_TD_MIN_STRONG]
               || (double)r->hits < sc[S_TD_MIN_DENSITY] * (double)(w - r->first_w + 1)
               || fabs(r->s_r / (double)r->checked) >= sc[S_TD_PRESS_OFFSET]
               || fabs(r->s_c / (double)r->checked) >= sc[S_TD_PRESS_OFFSET]))
        return;
    if (r->r_hi - r->r_lo > sc[S_STEADY_SPREAD] || r->c_hi - r->c_lo > sc[S_STEADY_SPREAD])
        return;
    const double spread = (r->s_c - r->s_r) / (double)r->checked; /* see DetectorBank._maybe_confirm */
    if (fabs(spread) > sc[S_PAIR_SPREAD] || (r->digit % 4 == r->digit / 4 + 1 && spread > sc[S_OCTAVE_SPREAD]))
        return;
    if (r->digit % 4 == r->digit / 4 + 1 && spread > 0
        && (-r->s_r / (double)r->checked > sc[S_OCTAVE_TONE] || r->s_c / (double)r->checked > sc[S_OCTAVE_TONE]))
        return;
    /* the pair's amplitude ratio (DetectorParams.pair_ratio_spread_db; DetectorBank._maybe_confirm) */
    if (r->s_share >= sc[S_RATIO_MIN_SHARE] * (double)r->hits && r->q_hi > r->q_lo * sc[S_RATIO_SPREAD])
        return;
    /* a press under other sound: its tones near nominal (DetectorParams.mixed_press_offset_max) */
    if (r->s_share < sc[S_PRESS_OFFSET_SHARE] * (double)r->hits
        && (fabs(r->s_r / (double)r->checked) >= sc[S_PRESS_OFFSET]
            || fabs(r->s_c / (double)r->checked) >= sc[S_PRESS_OFFSET]))
        return;
    const int64_t onset = run_onset(sc, r);
    /* a press shared with other sound must last longer (DetectorParams.press_clean_share) */
    double need = r->s_share >= sc[S_PRESS_CLEAN_SHARE] * (double)r->hits ? sc[S_MIN_TONE] : sc[S_MIN_TONE_MIXED];
    if (td && need < sc[S_TD_MIN_TONE])
        need = sc[S_TD_MIN_TONE];
    if ((double)(run_end(sc, r, onset, w, a, 0.0) - onset) >= need) {
        const double mr = r->s_r / (double)r->checked, mc = r->s_c / (double)r->checked;
        const Py_ssize_t N = 5 * (Py_ssize_t)sc[S_HALF];
        /* the long-baseline frequency test over the last 5 half-blocks (DetectorBank._maybe_confirm) */
        if (isfinite(sc[S_DRIFT_MAX]) && r->s_share < sc[S_DRIFT_MAX_SHARE] * (double)r->hits && !broken) {
            const double *x = seg_at(seg, w);
            if (segment_drift(x, hann_l, N, omega[r->digit / 4], mr) > sc[S_DRIFT_MAX]
                || segment_drift(x, hann_l, N, omega[4 + r->digit % 4], mc) > sc[S_DRIFT_MAX])
                return;
        }
        const double hz = sc[S_RATE] / (2.0 * PI);
        const double fr = omega[r->digit / 4] * hz * (1.0 + mr);
        const double fc = omega[4 + r->digit % 4] * hz * (1.0 + mc);
        /* the harmonic-neighbours test over the last 5 half-blocks (DetectorBank._maybe_confirm) */
        if ((isfinite(sc[S_NB_LOW]) || isfinite(sc[S_NB_HIGH])) && r->s_share < sc[S_NB_MAX_SHARE] * (double)r->hits) {
            double low, third, high, low_r, third_r;
            neighbours(sc, seg_at(seg, w), hann, N, fr, fc, &low, &third, &high, &low_r, &third_r);
            if ((low >= sc[S_NB_LOW] && third >= sc[S_NB_THIRD]) || high >= sc[S_NB_HIGH]
                || (low_r >= sc[S_NB_LOW] && third_r >= sc[S_NB_ROW_THIRD]))
                return;
        }
        /* the partials test over the last 5 half-blocks (detector.DetectorBank._maybe_confirm), for
         * presses shared with other sound */
        double comb = -1.0; /* not measured yet */
        if (isfinite(sc[S_COMB_RATIO]) && r->s_share < sc[S_COMB_MAX_SHARE] * (double)r->hits) {
            comb = comb_ratio(sc, seg_at(seg, w), hann, N, fr, fc);
            if (comb >= sc[S_COMB_RATIO])
                return;
        }
        /* the same, stricter, for a press the long window helped (DetectorParams.long_comb_*; the same value) */
        if (r->long_hits && isfinite(sc[S_LONG_COMB_RATIO]) && r->s_share < sc[S_LONG_COMB_MAX_SHARE] * (double)r->hits) {
            if (comb < 0.0)
                comb = comb_ratio(sc, seg_at(seg, w), hann, N, fr, fc);
            if (comb >= sc[S_LONG_COMB_RATIO])
                return;
        }
        /* ... and for a press with relaxed hits (DetectorParams.td_comb_*) */
        if (td && isfinite(sc[S_TD_COMB_RATIO]) && r->s_share < sc[S_TD_COMB_MAX_SHARE] * (double)r->hits) {
            if (comb_ratio(sc, seg_at(seg, w), hann, N, fr, fc) >= sc[S_TD_COMB_RATIO])
                return;
        }
        /* the music-context test (DetectorBank._maybe_confirm) */
        if (isfinite(sc[S_CTX_PERSIST]) && ((r->s_share < sc[S_CTX_MAX_SHARE] * (double)r->hits
            && (r->s_share < sc[S_CTX_ALWAYS_SHARE] * (double)r->hits || fabs(mr) >= sc[S_CTX_OFFSET_MIN]
                || fabs(mc) >= sc[S_CTX_OFFSET_MIN])) || lw_context(sc, r))) {
            const int64_t H = (int64_t)sc[S_HALF], lo = onset - (int64_t)sc[S_CTX_SPAN];
            const int64_t hi = onset - (int64_t)sc[S_CTX_GUARD];
            if (lo >= (w + 2 - (int64_t)sc[S_CTX_HALVES]) * H && hi > lo) {
                if (r->ctx_onset != onset) { /* measured once per onset estimate (the same samples) */
                    r->ctx_value = context_persistence(sc, seg->ctx_tab, seg, lo, (Py_ssize_t)(hi - lo));
                    r->ctx_onset = onset;
                }
                if (r->ctx_value >= sc[S_CTX_PERSIST])
                    return;
            }
        }
        /* the pair before the onset (DetectorBank._maybe_confirm) */
        if (isfinite(sc[S_PRE_LEVEL]) && isfinite(sc[S_CTX_PERSIST])
            && r->s_share >= sc[S_PRE_MIN_SHARE] * (double)r->hits && r->s_share < sc[S_PRE_MAX_SHARE] * (double)r->hits) {
            const int64_t H = (int64_t)sc[S_HALF], n = (int64_t)sc[S_PRE_N];
            const int64_t lo = onset - (int64_t)sc[S_PRE_GAP] - n, plo = (w + 2) * H - n;
            if (lo >= (w + 2 - (int64_t)sc[S_CTX_HALVES]) * H && plo >= onset
                && pre_onset_level(sc, seg, lo, plo, (Py_ssize_t)n, fr, fc) >= sc[S_PRE_LEVEL])
                return;
        }
        /* a tone that slid into the key (DetectorBank._maybe_confirm) */
        if (isfinite(sc[S_GLIDE_LEVEL]) && isfinite(sc[S_CTX_PERSIST]) && r->s_share < sc[S_GLIDE_MAX_SHARE] * (double)r->hits) {
            const int64_t H = (int64_t)sc[S_HALF], n = (int64_t)sc[S_PRE_N];
            const int64_t lo = onset - n - ((int64_t)sc[S_GLIDE_SEGMENTS] - 1) * (int64_t)sc[S_GLIDE_HOP];
            const int64_t plo = (w + 2) * H - n;
            if (lo >= (w + 2 - (int64_t)sc[S_CTX_HALVES]) * H && plo >= onset
                && glided(sc, seg, lo, onset, plo, (Py_ssize_t)n, fr, fc)) {
                r->refused = 1; /* the note was there before the onset: not judged again */
                return;
            }
        }
        /* the pair's amplitude ratio over the press at sub-window resolution (DetectorBank._maybe_confirm) */
        if (isfinite(sc[S_ENV_SPREAD]) && isfinite(sc[S_CTX_PERSIST])
            && r->s_share >= sc[S_ENV_MIN_SHARE] * (double)r->hits && r->s_share < sc[S_ENV_MAX_SHARE] * (double)r->hits
            && (fabs(mr) >= sc[S_ENV_OFFSET_MIN] || fabs(mc) >= sc[S_ENV_OFFSET_MIN]) && !broken) {
            const int64_t H = (int64_t)sc[S_HALF], hi = (w + 2) * H;
            int64_t lo = (w + 2 - (int64_t)sc[S_CTX_HALVES]) * H;
            if (onset > lo)
                lo = onset;
            if (lo < 0)
                lo = 0;
            if (hi - lo >= H + (int64_t)sc[S_ENV_STEP] && press_ratio_spread(sc, seg, lo, hi, fr, fc) >= sc[S_ENV_SPREAD]) {
                r->refused = 1; /* two envelopes do not become one: not judged again */
                return;
            }
        }
        r->confirmed = 1;
        r->onset = onset;
        emit(ev, ch, r->digit, onset, -1, r->level);
    }
}

static void
finish(const double *sc, chan_t *c, Py_ssize_t ch, event_buf *ev)
{
    run_t *r = &c->run;
    const int was = r->digit;
    r->digit = NO_DIGIT;
    if (was == NO_DIGIT || !r->confirmed)
        return;
    int64_t end = run_end(sc, r, r->onset, r->last_w, r->a_last, r->a_after);
    emit(ev, ch, was, r->onset, end > r->onset ? end : r->onset, r->level);
}

static inline void
wobble(run_t *r, double rel_r, double rel_c)
{
    if (rel_r < r->r_lo)
        r->r_lo = rel_r;
    if (rel_r > r->r_hi)
        r->r_hi = rel_r;
    if (rel_c < r->c_lo)
        r->c_lo = rel_c;
    if (rel_c > r->c_hi)
        r->c_hi = rel_c;
}

static void
step(const double *sc, chan_t *c, Py_ssize_t ch, int64_t w, int d, int checked, const double *amp8,
     const double *prev_amp8, double lr, double lc, double rel_r, double rel_c, double share, event_buf *ev,
     seg_src *seg, const double *omega, const double *hann, const double *hann_l, int measure)
{
    /* measure 0: a hit's frequencies are not measured (a window that holds a break: DetectorBank._step) */
    run_t *r = &c->run;
    if (r->digit != NO_DIGIT) {
        if (d == WEAK + r->digit && r->confirmed) { /* keeps the digit alive; not a frequency check */
            r->misses = 0;
            r->last_w = w;
            r->a_last = pair_amp(r->digit, amp8);
            return;
        }
        if (d == r->digit) {
            const double a = pair_amp(d, amp8);
            r->misses = 0;
            r->last_w = w;
            r->a_last = a;
            r->hits++;
            r->s_share += share;
            if (checked) {
                r->checked++;
                r->long_hits += checked == 2;
                r->td_hits += checked == 3;
                if (measure) {
                    r->s_r += rel_r;
                    r->s_c += rel_c;
                    wobble(r, rel_r, rel_c);
                }
            }
            if (a > r->a_ref) {
                r->a_ref = a;
                r->level = 0.5 * (lr + lc);
            }
            if (!r->confirmed) {
                const double ac = amp8[4 + d % 4];
                if (ac > 0.0 && a >= sc[S_RATIO_COVER] * r->a_ref /* the pair's amplitude ratio (DetectorBank._step) */
                    && (checked != 2 || sc[S_LONG_IN_RATIO] != 0.0)) {
                    const double q = amp8[d / 4] / ac;
                    if (q < r->q_lo)
                        r->q_lo = q;
                    if (q > r->q_hi)
                        r->q_hi = q;
                }
                maybe_confirm(sc, r, w, a, ch, ev, seg, omega, hann, hann_l, seg_broken(c, w));
            }
            return;
        }
        r->misses++;
        if (d == WEAK + r->digit && !r->confirmed && (rel_r != 0.0 || rel_c != 0.0))
            wobble(r, rel_r, rel_c); /* a measured window that failed: see DetectorBank._step */
        if (r->misses == 1)
            r->a_after = pair_amp(r->digit, amp8);
        if (d >= 0 && d < WEAK && checked != 3) { /* a relaxed hit starts nothing (DetectorParams.td_*) */
            if (c->rival.digit == d && c->rival.first_w == w - 1) { /* another digit takes over */
                finish(sc, c, ch, ev);
                c->run = c->rival;
                c->rival.digit = NO_DIGIT;
                step(sc, c, ch, w, d, checked, amp8, prev_amp8, lr, lc, rel_r, rel_c, share, ev, seg, omega, hann,
                     hann_l, 1);
                return;
            }
            new_run(&c->rival, d, w, checked, amp8, prev_amp8, lr, lc, rel_r, rel_c, share);
        }
        if (r->misses >= (int)sc[S_END_MISSES])
            finish(sc, c, ch, ev);
    }
    if (r->digit == NO_DIGIT && d >= 0 && d < WEAK && checked != 3) {
        new_run(r, d, w, checked, amp8, prev_amp8, lr, lc, rel_r, rel_c, share);
        c->rival.digit = NO_DIGIT;
    }
}

/* ---- Python interface ------------------------------------------------------------------------- */

PyDoc_STRVAR(bin_table_doc,
"bin_table(omegas, half_block, out) -> None\n\n"
"Goertzel constants of each frequency (5 per frequency, see native/detector.c).");

static PyObject *
bin_table(PyObject *self, PyObject *args)
{
    Py_buffer om, out;
    Py_ssize_t H;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nw*:bin_table", &om, &H, &out))
        return NULL;
    const Py_ssize_t K = om.len / (Py_ssize_t)sizeof(double);
    if (H < 1 || om.len % (Py_ssize_t)sizeof(double) != 0 || out.len != DG_BIN_CONSTS * K * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "bin_table: need float64 omegas [K], half_block >= 1, out [5K]");
        PyBuffer_Release(&om);
        PyBuffer_Release(&out);
        return NULL;
    }
    const double *w = (const double *)om.buf;
    double *o = (double *)out.buf;
    for (Py_ssize_t k = 0; k < K; k++) /* goertzel_kernel.h's constants, as native/goertzel.c's */
        dg_bin_consts(w[k], (long)H, o + DG_BIN_CONSTS * k);
    PyBuffer_Release(&om);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/*
 * Frames(state, consts, active): bound to one DetectorBank's state arrays, whose buffers it holds
 * for its lifetime (so a frame costs no buffer exports but the samples').
 */
typedef struct {
    PyObject_HEAD
    Py_buffer state, consts, active;
    Py_ssize_t channels, H;
    /* process(): the stream position and every channel's runs live here */
    Py_ssize_t n_pending; /* samples of the partial half-block */
    long long half_index; /* index of the next half-block to complete */
    int have_half;
    chan_t *chans;
    double *prev_x;     /* [C, 3H]: each channel's last three whole half-blocks (process()'s guard bins, the
                         * long window's) */
    int16_t *hist16;    /* [C, L]: each channel's last L >= R H samples, to_int16 (the confirmation tests' ring;
                         * 64-byte aligned, L a multiple of 32: a 20 ms frame fills whole cache lines) */
    void *hist16_mem;   /* hist16's allocation */
    Py_ssize_t L;       /* ring length per channel, samples */
    Py_ssize_t R;       /* hist_halves: 5 (the last 4 whole half-blocks and the partial one) or the
                         * music-context test's reach */
    const double *hann;     /* [5H]: the partials test's window */
    const double *hann_l;   /* [5H / 2]: the long-baseline test's window */
    const double *twiddles; /* cos then sin [NGUARD][2H] of the guard frequencies */
    const double *ctx_tab;  /* the music-context test's Hann window [n] and FFT twiddles [n] */
    Py_buffer tables;   /* hann, hann_l and twiddles live here (frame_tables(): made once per consts table) */
    PyObject *factory, *fallback, *ndarray; /* events(): see bind() */
    /* set while run() or process() works on this object: the GIL is released for large batches and the
     * event factory is Python code, so a second caller (another thread sharing the bank, or a re-entrant
     * call) would interleave with the state; it gets a RuntimeError instead */
    int busy;
} FramesObject;

static int
frames_enter(FramesObject *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "detector in use by another thread (a DetectorBank or DtmfDetector has one owner thread; "
                        "give each thread its own)");
        return -1;
    }
    self->busy = 1;
    return 0;
}

/* events()'s callables may refer back to the detector that owns this object: a cycle the GC must see */
static int
Frames_traverse(FramesObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->factory);
    Py_VISIT(self->fallback);
    Py_VISIT(self->ndarray);
    return 0;
}

static int
Frames_clear(FramesObject *self)
{
    Py_CLEAR(self->factory);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->ndarray);
    return 0;
}

static void
Frames_dealloc(FramesObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_buffer *all[] = {&self->state, &self->consts, &self->active, &self->tables};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i]->obj != NULL)
            PyBuffer_Release(all[i]);
    Py_CLEAR(self->factory);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->ndarray);
    PyMem_Free(self->chans);
    PyMem_Free(self->prev_x);
    PyMem_Free(self->hist16_mem);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* frame_tables()'s size in doubles for half-blocks of H samples: the partials test's Hann window [5H], the
 * long-baseline test's [5H / 2], then cos and sin [NGUARD][2H] of the guard frequencies */
static Py_ssize_t
tables_len(Py_ssize_t H, Py_ssize_t n_ctx)
{
    return 5 * H + 5 * H / 2 + 2 * NGUARD * 2 * H + 2 * n_ctx;
}

/* the music-context test's frame length from consts (a power of two, 8 .. 65536), or 0 */
static Py_ssize_t
consts_ctx_n(const Py_buffer *consts)
{
    const double n = ((const double *)consts->buf)[CONST_SCALARS + S_CTX_N];
    if (!(n >= 8.0 && n <= 65536.0) || n != (double)(Py_ssize_t)n || ((Py_ssize_t)n & ((Py_ssize_t)n - 1)))
        return 0;
    return (Py_ssize_t)n;
}

/* consts' half-block length, or 0 if consts is not a valid table */
static Py_ssize_t
consts_half(const Py_buffer *consts)
{
    const Py_ssize_t D = (Py_ssize_t)sizeof(double);
    const double H = consts->len == CONSTS * D ? ((const double *)consts->buf)[CONST_SCALARS + S_HALF] : 0.0;
    if (!(H >= 1.0 && H <= MAX_HALF) || H != (double)(Py_ssize_t)H)
        return 0;
    return (Py_ssize_t)H;
}

static PyObject *
make_tables(const Py_buffer *consts)
{
    const Py_ssize_t Hn = consts_half(consts), N = 2 * Hn;
    if (Hn == 0) {
        PyErr_Format(PyExc_ValueError, "frame_tables: need float64 consts [%d] with 1 <= half <= %d", CONSTS,
                     MAX_HALF);
        return NULL;
    }
    const Py_ssize_t nc = consts_ctx_n(consts);
    if (nc == 0) {
        PyErr_SetString(PyExc_ValueError, "frame_tables: ctx_n must be a power of two, 8 .. 65536");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, tables_len(Hn, nc) * (Py_ssize_t)sizeof(double));
    if (out == NULL)
        return NULL;
    double *hann = (double *)PyBytes_AS_STRING(out), *hann_l = hann + 5 * Hn, *tw = hann_l + 5 * Hn / 2;
    const double *omega = (const double *)consts->buf + CONST_OMEGA + NFUND;
    for (Py_ssize_t n = 0; n < 5 * Hn; n++) /* detector._comb_ratio's Hann window */
        hann[n] = 0.5 - 0.5 * cos(2.0 * PI * (double)n / (double)(5 * Hn - 1));
    for (Py_ssize_t n = 0; n < 5 * Hn / 2; n++) /* detector._segment_drift's Hann window */
        hann_l[n] = 0.5 - 0.5 * cos(2.0 * PI * (double)n / (double)(5 * Hn / 2 - 1));
    for (int k = 0; k < NGUARD; k++)
        for (Py_ssize_t n = 0; n < N; n++) {
            tw[k * N + n] = cos(omega[k] * (double)n);
            tw[NGUARD * N + k * N + n] = sin(omega[k] * (double)n);
        }
    double *ctx = tw + 2 * NGUARD * N; /* the music-context test's Hann window [nc], FFT twiddles [nc] */
    for (Py_ssize_t n = 0; n < nc; n++)
        ctx[n] = 0.5 - 0.5 * cos(2.0 * PI * (double)n / (double)(nc - 1));
    for (Py_ssize_t n = 0; n < nc / 2; n++) {
        ctx[nc + n] = cos(2.0 * PI * (double)n / (double)nc);
        ctx[nc + nc / 2 + n] = sin(2.0 * PI * (double)n / (double)nc);
    }
    return out;
}

PyDoc_STRVAR(frame_tables_doc,
"frame_tables(consts) -> bytes\n\n"
"The window and twiddle tables a Frames object built on consts uses (float64; detector._Tables keeps one\n"
"per table and gives it to every Frames, so a new detector computes no cosines).");

static PyObject *
frame_tables(PyObject *self, PyObject *arg)
{
    Py_buffer consts;
    (void)self;
    if (PyObject_GetBuffer(arg, &consts, PyBUF_SIMPLE) != 0)
        return NULL;
    PyObject *out = make_tables(&consts);
    PyBuffer_Release(&consts);
    return out;
}

static int
Frames_init(FramesObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"state", "consts", "active", "tables", NULL};
    Py_buffer state, consts, active;
    PyObject *tables = NULL;
    if (self->state.obj != NULL) {
        PyErr_SetString(PyExc_TypeError, "Frames: already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "w*y*y*|O:Frames", kwlist, &state, &consts, &active, &tables))
        return -1;
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), C = active.len;
    const Py_ssize_t Hn = consts_half(&consts);
    if (Hn == 0 || C < 1 || state.len != C * (Hn + STATE_EXTRA) * D) {
        PyErr_Format(PyExc_ValueError,
                     "Frames: need float64 consts [%d] with 1 <= half <= %d, active [C] (1 byte each) and "
                     "float64 state [C, half + %d]", CONSTS, MAX_HALF, STATE_EXTRA);
        PyBuffer_Release(&state);
        PyBuffer_Release(&consts);
        PyBuffer_Release(&active);
        return -1;
    }
    if (tables == NULL || tables == Py_None) {
        tables = make_tables(&consts);
        if (tables == NULL) {
            PyBuffer_Release(&state);
            PyBuffer_Release(&consts);
            PyBuffer_Release(&active);
            return -1;
        }
    }
    else {
        Py_INCREF(tables);
    }
    const int bad_tables = PyObject_GetBuffer(tables, &self->tables, PyBUF_SIMPLE) != 0;
    Py_DECREF(tables); /* the buffer holds it */
    if (bad_tables || consts_ctx_n(&consts) == 0 || self->tables.len != tables_len(Hn, consts_ctx_n(&consts)) * D) {
        if (!bad_tables) {
            PyBuffer_Release(&self->tables);
            PyErr_SetString(PyExc_ValueError, "Frames: tables must be frame_tables(consts)");
        }
        self->tables.obj = NULL;
        PyBuffer_Release(&state);
        PyBuffer_Release(&consts);
        PyBuffer_Release(&active);
        return -1;
    }
    self->state = state;
    self->consts = consts;
    self->active = active;
    self->channels = C;
    self->H = Hn;
    self->chans = (chan_t *)PyMem_Calloc((size_t)C, sizeof(chan_t));
    if (self->chans == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t ch = 0; ch < C; ch++) {
        self->chans[ch].run.digit = self->chans[ch].rival.digit = NO_DIGIT;
        self->chans[ch].nlo[0] = self->chans[ch].nlo[1] = -1;
        self->chans[ch].nhi[0] = self->chans[ch].nhi[1] = -2;
    }
    self->prev_x = (double *)PyMem_Calloc((size_t)(3 * C * Hn), sizeof(double));
    self->R = (Py_ssize_t)((const double *)self->consts.buf)[CONST_SCALARS + S_HIST_HALVES];
    if (self->R < 5 || self->R > 100000) {
        PyErr_SetString(PyExc_ValueError, "Frames: hist_halves must be >= 5");
        return -1;
    }
    self->L = (self->R * Hn + 31) / 32 * 32;
    self->hist16_mem = PyMem_Calloc((size_t)(self->L * C) * sizeof(int16_t) + 64, 1);
    self->hist16 = (int16_t *)(((uintptr_t)self->hist16_mem + 63) & ~(uintptr_t)63);
    if (self->hist16_mem == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (self->prev_x == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->hann = (const double *)self->tables.buf;
    self->hann_l = self->hann + 5 * Hn;
    self->twiddles = self->hann_l + 5 * Hn / 2;
    self->ctx_tab = self->twiddles + 2 * NGUARD * 2 * Hn;
    self->n_pending = 0;
    self->half_index = 0;
    self->have_half = 0;
    return 0;
}

/* the format of a 16-bit or 64-bit float native-order buffer: 'h', 'd' (or 0 if neither) */
static char
sample_format(const Py_buffer *b)
{
    const char *f = b->format ? b->format : "B";
    if (f[0] == '@' || f[0] == '=' || f[0] == (PY_LITTLE_ENDIAN ? '<' : '>'))
        f++;
    if (f[0] == 'h' && f[1] == '\0' && b->itemsize == 2)
        return 'h';
    if (f[0] == 'd' && f[1] == '\0' && b->itemsize == 8)
        return 'd';
    return 0;
}

/* [digits], [checked], [[8 amplitudes] x (nw + 1)], [lr], [lc] of one channel */
static PyObject *
channel_rows(Py_ssize_t ch, Py_ssize_t nw, const int64_t *digit, const int8_t *checked, const double *amp,
             const double *lr, const double *lc, const double *relr, const double *relc, const double *share)
{
    PyObject *d = PyList_New(nw), *c = PyList_New(nw), *a = PyList_New(nw + 1), *l1 = PyList_New(nw),
             *l2 = PyList_New(nw), *r1 = PyList_New(nw), *r2 = PyList_New(nw), *s1 = PyList_New(nw);
    Py_ssize_t w;
    int k;
    if (d == NULL || c == NULL || a == NULL || l1 == NULL || l2 == NULL || r1 == NULL || r2 == NULL || s1 == NULL)
        goto fail;
    for (w = 0; w <= nw; w++) {
        PyObject *row = PyList_New(NFUND);
        if (row == NULL)
            goto fail;
        PyList_SET_ITEM(a, w, row);
        for (k = 0; k < NFUND; k++) {
            PyObject *v = PyFloat_FromDouble(amp[w * NFUND + k]);
            if (v == NULL)
                goto fail;
            PyList_SET_ITEM(row, k, v);
        }
    }
    for (w = 0; w < nw; w++) {
        PyObject *dv = PyLong_FromLongLong(digit[w]), *v1 = PyFloat_FromDouble(lr[w]),
                 *v2 = PyFloat_FromDouble(lc[w]), *v3 = PyFloat_FromDouble(relr[w]), *v4 = PyFloat_FromDouble(relc[w]),
                 *v5 = PyFloat_FromDouble(share[w]);
        PyList_SET_ITEM(d, w, dv);
        PyList_SET_ITEM(l1, w, v1);
        PyList_SET_ITEM(l2, w, v2);
        PyList_SET_ITEM(r1, w, v3);
        PyList_SET_ITEM(r2, w, v4);
        PyList_SET_ITEM(s1, w, v5);
        PyList_SET_ITEM(c, w, PyLong_FromLong(checked[w])); /* 0, 1, 2: a long-window hit, 3: a relaxed hit */
        if (dv == NULL || v1 == NULL || v2 == NULL || v3 == NULL || v4 == NULL || v5 == NULL)
            goto fail;
    }
    {
        PyObject *t = PyTuple_New(9), *chv = PyLong_FromSsize_t(ch);
        if (t == NULL || chv == NULL) {
            Py_XDECREF(t);
            Py_XDECREF(chv);
            goto fail;
        }
        PyTuple_SET_ITEM(t, 0, chv);
        PyTuple_SET_ITEM(t, 1, d);
        PyTuple_SET_ITEM(t, 2, c);
        PyTuple_SET_ITEM(t, 3, a);
        PyTuple_SET_ITEM(t, 4, l1);
        PyTuple_SET_ITEM(t, 5, l2);
        PyTuple_SET_ITEM(t, 6, r1);
        PyTuple_SET_ITEM(t, 7, r2);
        PyTuple_SET_ITEM(t, 8, s1);
        return t;
    }
fail:
    Py_XDECREF(d);
    Py_XDECREF(c);
    Py_XDECREF(a);
    Py_XDECREF(l1);
    Py_XDECREF(l2);
    Py_XDECREF(r1);
    Py_XDECREF(r2);
    Py_XDECREF(s1);
    return NULL;
}

PyDoc_STRVAR(run_doc,
"run(x, n_pending, have_half) -> None or list\n\n"
"Kernel and window tests on every channel's new samples x (int16 or float64, [C, m], or [m] for one\n"
"channel; any strides); updates the state in place.  Returns None when no channel has a candidate\n"
"window or an active digit (active[ch] != 0), else one tuple per such channel:\n"
"(channel, digits, checked, amplitudes [nw + 1 rows of 8], row levels, column levels, row errors,\n"
"column errors, tone shares).");

static PyObject *
Frames_run(FramesObject *self, PyObject *args)
{
    PyObject *x_obj, *result = NULL;
    Py_ssize_t n_pending;
    int have_half;
    Py_buffer xb;
    frame_shape f;
    char fmt;
    void *mem = NULL;
    double stack_mem[1024];
    if (self->state.obj == NULL) {
        PyErr_SetString(PyExc_TypeError, "Frames: not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "Onp:run", &x_obj, &n_pending, &have_half))
        return NULL;
    if (frames_enter(self) < 0)
        return NULL;
    if (PyObject_GetBuffer(x_obj, &xb, PyBUF_RECORDS_RO) != 0) {
        self->busy = 0;
        return NULL;
    }
    const Py_ssize_t C = self->channels, H = self->H;
    fmt = sample_format(&xb);
    if (fmt == 0) {
        PyErr_SetString(PyExc_TypeError, "run: x must hold native-order int16 or float64 samples");
        goto done;
    }
    if (!((xb.ndim == 1 && C == 1) || (xb.ndim == 2 && xb.shape[0] == C)) || n_pending < 0 || n_pending >= H) {
        PyErr_Format(PyExc_ValueError, "run: x must be [%zd, samples]%s and 0 <= n_pending < %zd", C,
                     C == 1 ? " or [samples]" : "", H);
        goto done;
    }
    f.H = H;
    f.m = xb.shape[xb.ndim - 1];
    f.n_pending = n_pending;
    f.have_half = have_half != 0;
    f.nh = (n_pending + f.m) / H;
    f.nw = f.nh + f.have_half - 1 > 0 ? f.nh + f.have_half - 1 : 0;
    {
        const Py_ssize_t nw = f.nw, m = f.m;
        const Py_ssize_t row_stride = xb.ndim == 2 ? xb.strides[0] : 0, step = xb.strides[xb.ndim - 1];
        /* one allocation: samples of one channel as float64, then every channel's window results */
        const size_t bytes = (size_t)m * sizeof(double)
                             + (size_t)C * ((size_t)nw * (sizeof(int64_t) + 1 + 5 * sizeof(double))
                                            + (size_t)(nw + 1) * NFUND * sizeof(double) + 1) + 64;
        mem = bytes <= sizeof(stack_mem) ? (void *)stack_mem : PyMem_RawMalloc(bytes); /* a frame: stack */
        if (mem == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        double *xd = (double *)mem, *amp = xd + m, *lr = amp + C * (nw + 1) * NFUND, *lc = lr + C * nw;
        double *relr = lc + C * nw, *relc = relr + C * nw, *share = relc + C * nw;
        int64_t *digit = (int64_t *)(share + C * nw);
        int8_t *checked = (int8_t *)(digit + C * nw), *strong = checked + C * nw;
        const double *consts = (const double *)self->consts.buf;
        double *state = (double *)self->state.buf;
        const char *active = (const char *)self->active.buf;
        Py_ssize_t ch, i, busy = 0;
        /* a bank's batch or a whole file: let other threads run meanwhile */
        PyThreadState *ts = C * m >= 16384 ? PyEval_SaveThread() : NULL;
        for (ch = 0; ch < C; ch++) {
            const char *src = (const char *)xb.buf + ch * row_stride;
            if (fmt == 'h')
                for (i = 0; i < m; i++)
                    xd[i] = (double)*(const int16_t *)(src + i * step);
            else
                for (i = 0; i < m; i++)
                    xd[i] = *(const double *)(src + i * step);
            strong[ch] = (int8_t)channel_frames(&f, consts, xd, state + ch * (H + STATE_EXTRA), digit + ch * nw,
                                                checked + ch * nw, amp + ch * (nw + 1) * NFUND, lr + ch * nw,
                                                lc + ch * nw, relr + ch * nw, relc + ch * nw, share + ch * nw);
            busy += nw > 0 && (strong[ch] || active[ch]);
        }
        if (ts != NULL)
            PyEval_RestoreThread(ts);
        if (busy == 0) {
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
        result = PyList_New(0);
        for (ch = 0; result != NULL && ch < C; ch++) {
            if (!(strong[ch] || active[ch]))
                continue;
            PyObject *rows = channel_rows(ch, nw, digit + ch * nw, checked + ch * nw, amp + ch * (nw + 1) * NFUND,
                                          lr + ch * nw, lc + ch * nw, relr + ch * nw, relc + ch * nw,
                                          share + ch * nw);
            if (rows == NULL || PyList_Append(result, rows) < 0)
                Py_CLEAR(result);
            Py_XDECREF(rows);
        }
    }
done:
    if (mem != (void *)stack_mem)
        PyMem_RawFree(mem);
    PyBuffer_Release(&xb);
    self->busy = 0;
    return result;
}


PyDoc_STRVAR(process_doc,
"process(x) -> None or [(channel, digit index, start, end or None, level dBm0), ...]\n\n"
"Everything DetectorBank does for a frame, in C: buffer, kernel, window tests and the per-window state\n"
"machine, for every channel's new samples x (int16 or float64, [C, m], or [m] for one channel; any\n"
"strides).  The stream position and the runs are kept here (not in the state array's Python mirror).\n"
"None when no channel started or ended a digit; digit index = row * 4 + column.");

/* process()'s work; mode 0: tuples (channel, digit, start, end or None, level); mode 1: one channel's
 * DigitEvents made by self->factory(digit index, start, end or None, level), [] when none */
static PyObject *
frames_process(FramesObject *self, Py_buffer *xbp, int mode)
{
    PyObject *result = NULL;
    Py_buffer xb = *xbp; /* the caller's (it releases it) */
    event_buf ev = {NULL, 0, 0, 0};
    char fmt;
    void *mem = NULL;
    double stack_mem[1536];
    if (self->state.obj == NULL || self->chans == NULL) {
        PyErr_SetString(PyExc_TypeError, "Frames: not initialised");
        return NULL;
    }
    if (frames_enter(self) < 0)
        return NULL;
    const Py_ssize_t C = self->channels, H = self->H;
    fmt = sample_format(&xb);
    if (fmt == 0) {
        PyErr_SetString(PyExc_TypeError, "process: x must hold native-order int16 or float64 samples");
        goto done;
    }
    if (!((xb.ndim == 1 && C == 1) || (xb.ndim == 2 && xb.shape[0] == C))) {
        PyErr_Format(PyExc_ValueError, "process: x must be [%zd, samples]%s", C, C == 1 ? " or [samples]" : "");
        goto done;
    }
    {
        frame_shape f;
        f.H = H;
        f.m = xb.shape[xb.ndim - 1];
        f.n_pending = self->n_pending;
        f.have_half = self->have_half;
        f.nh = (f.n_pending + f.m) / H;
        f.nw = f.nh + f.have_half - 1 > 0 ? f.nh + f.have_half - 1 : 0;
        const Py_ssize_t nw = f.nw, m = f.m;
        const Py_ssize_t row_stride = xb.ndim == 2 ? xb.strides[0] : 0, step_b = xb.strides[xb.ndim - 1];
        /* one channel at a time: its samples as float64, then its window results */
        const size_t bytes = (size_t)(4 * H + f.n_pending + m) * sizeof(double)
                             + (size_t)nw * (sizeof(int64_t) + 1 + 5 * sizeof(double))
                             + (size_t)(nw + 1) * NFUND * sizeof(double) + 64;
        mem = bytes <= sizeof(stack_mem) ? (void *)stack_mem : PyMem_RawMalloc(bytes);
        if (mem == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        /* xbuf: the channel's last 4 whole half-blocks, its partial one, then the new samples (xd) */
        double *xbuf = (double *)mem, *xd = xbuf + 4 * H + f.n_pending, *amp = xd + m;
        double *lr = amp + (nw + 1) * NFUND, *lc = lr + nw;
        double *relr = lc + nw, *relc = relr + nw, *share = relc + nw;
        int64_t *digit = (int64_t *)(share + nw);
        int8_t *checked = (int8_t *)(digit + nw);
        const double *consts = (const double *)self->consts.buf, *sc = consts + CONST_SCALARS;
        double *state = (double *)self->state.buf;
        const int64_t first_w = (int64_t)self->half_index - self->have_half; /* window w: half-blocks w, w+1 */
        /* the confirmation tests over the last 5 half-blocks and the music-context test (all off: no ring) */
        const int comb_on = isfinite(sc[S_COMB_RATIO]) || isfinite(sc[S_DRIFT_MAX]) || isfinite(sc[S_CTX_PERSIST])
                            || isfinite(sc[S_NB_LOW]) || isfinite(sc[S_NB_HIGH]) || isfinite(sc[S_LONG_COMB_RATIO]);
        const int ring_nt = (size_t)self->L * (size_t)C * sizeof(int16_t) >= RING_NT_BYTES;
        Py_ssize_t ch, i, k;
        PyThreadState *ts = C * m >= 16384 ? PyEval_SaveThread() : NULL;
        for (ch = 0; ch < C; ch++) {
            const char *src = (const char *)xb.buf + ch * row_stride;
            chan_t *c = self->chans + ch;
            if (fmt == 'h' && step_b == (Py_ssize_t)sizeof(int16_t)) /* a call's frame: contiguous (vectorised) */
                for (i = 0; i < m; i++)
                    xd[i] = (double)((const int16_t *)src)[i];
            else if (fmt == 'h')
                for (i = 0; i < m; i++)
                    xd[i] = (double)*(const int16_t *)(src + i * step_b);
            else
                for (i = 0; i < m; i++)
                    xd[i] = *(const double *)(src + i * step_b);
            int16_t *hist16 = self->hist16 + ch * self->L;
            seg_src seg = {xbuf, (int64_t)self->half_index, H, f.n_pending + m, 0, (int64_t)self->L, hist16,
                           self->ctx_tab};
            memcpy(xbuf + 4 * H, state + ch * (H + STATE_EXTRA), (size_t)f.n_pending * sizeof(double));
            const int strong = channel_frames_fast(&f, consts, xd, state + ch * (H + STATE_EXTRA), self->prev_x + ch * 3 * H,
                                                   self->twiddles, self->twiddles + NGUARD * 2 * H, digit, checked,
                                                   amp, lr, lc, relr, relc, share);
            if (!strong && c->run.digit == NO_DIGIT)
                goto ring; /* no candidate, no digit: nothing to decide */
            for (k = 0; k < nw; k++) {
                const int d = (int)digit[k];
                const int64_t w = first_w + k;
                if (c->run.digit == NO_DIGIT && !(d >= 0 && d < WEAK))
                    continue;
                int measure = 1;
                if ((w >= c->nlo[0] && w <= c->nhi[0]) || (w >= c->nlo[1] && w <= c->nhi[1])) {
                    /* holds a break (mark_break): never a miss; a hit of the run's digit is not measured
                       (see DetectorBank._channel_windows) */
                    if (c->run.digit != NO_DIGIT) {
                        if (d != c->run.digit)
                            continue;
                        measure = 0;
                    }
                }
                step(sc, c, ch, w, d, checked[k], amp + NFUND * (k + 1), amp + NFUND * k, lr[k], lc[k],
                     relr[k], relc[k], share[k], &ev, &seg, consts + CONST_OMEGA, self->hann, self->hann_l, measure);
            }
        ring:
            if (!comb_on)
                continue;
            { /* the frame's samples into the int16 ring (sample t in slot t mod R H) */
                const int64_t L = (int64_t)self->L, t0 = (int64_t)self->half_index * H + f.n_pending;
                for (Py_ssize_t i = m > L ? m - L : 0; i < m;) {
                    const int64_t slot = (t0 + i) % L;
                    Py_ssize_t take = (Py_ssize_t)(L - slot) < m - i ? (Py_ssize_t)(L - slot) : m - i;
                    int16_t *dst = hist16 + slot;
                    if (fmt == 'h' && step_b == (Py_ssize_t)sizeof(int16_t))
                        ring_store(dst, (const int16_t *)src + i, take, ring_nt);
                    else
                        for (Py_ssize_t q = 0; q < take; q++)
                            dst[q] = to_int16(xd[i + q]);
                    i += take;
                }
            }
        }
        if (comb_on && ring_nt)
            ring_fence(); /* the ring's non-temporal stores before anything else reads it */
        if (ts != NULL)
            PyEval_RestoreThread(ts);
        self->half_index += f.nh;
        self->n_pending = (f.n_pending + m) % H;
        if (f.nh)
            self->have_half = 1;
        if (ev.failed) {
            PyErr_NoMemory();
            goto done;
        }
        if (ev.n == 0 && mode == 0) {
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
        result = PyList_New(ev.n);
        for (i = 0; result != NULL && i < ev.n; i++) {
            const event_t *e = ev.ev + i;
            PyObject *t;
            if (mode == 1) {
                if (e->end < 0)
                    t = PyObject_CallFunction(self->factory, "iLOd", e->digit, (long long)e->start, Py_None, e->level);
                else
                    t = PyObject_CallFunction(self->factory, "iLLd", e->digit, (long long)e->start, (long long)e->end,
                                              e->level);
            }
            else if (e->end < 0)
                t = Py_BuildValue("(niLOd)", e->ch, e->digit, (long long)e->start, Py_None, e->level);
            else
                t = Py_BuildValue("(niLLd)", e->ch, e->digit, (long long)e->start, (long long)e->end, e->level);
            if (t == NULL)
                Py_CLEAR(result);
            else
                PyList_SET_ITEM(result, i, t);
        }
    }
done:
    if (mem != (void *)stack_mem)
        PyMem_RawFree(mem);
    PyMem_RawFree(ev.ev);
    self->busy = 0;
    return result;
}

static PyObject *
Frames_process(FramesObject *self, PyObject *x_obj)
{
    Py_buffer xb;
    if (PyObject_GetBuffer(x_obj, &xb, PyBUF_RECORDS_RO) != 0)
        return NULL;
    PyObject *out = frames_process(self, &xb, 0);
    PyBuffer_Release(&xb);
    return out;
}

PyDoc_STRVAR(events_doc,
"events(chunk) -> [DigitEvent, ...]\n\n"
"DtmfDetector.process for one channel in one call: a 1-D native-order int16 numpy array goes straight to\n"
"process(); anything else to the fallback given to bind() (which validates and converts it).  Events\n"
"are made by the factory given to bind().");

static PyObject *
Frames_events(FramesObject *self, PyObject *x_obj)
{
    if (self->factory == NULL || self->channels != 1) {
        PyErr_SetString(PyExc_TypeError, "Frames.events: bind() a one-channel Frames first");
        return NULL;
    }
    if (Py_TYPE(x_obj) == (PyTypeObject *)self->ndarray) {
        /* the common case: a call's frame; a dtype other than native int16 goes to the fallback */
        Py_buffer b;
        if (PyObject_GetBuffer(x_obj, &b, PyBUF_RECORDS_RO) == 0) {
            if (b.ndim == 1 && sample_format(&b) == 'h') { /* one buffer export per frame */
                PyObject *out = frames_process(self, &b, 1);
                PyBuffer_Release(&b);
                return out;
            }
            PyBuffer_Release(&b);
        }
        else {
            PyErr_Clear();
        }
    }
    return PyObject_CallOneArg(self->fallback, x_obj);
}

PyDoc_STRVAR(bind_doc,
"bind(factory, fallback, ndarray) -> None\n\n"
"Set what events() uses: factory(digit index, start, end or None, level) -> event; fallback(chunk) -> list\n"
"for input that is not a 1-D native int16 array; the ndarray type.");

static PyObject *
Frames_bind(FramesObject *self, PyObject *args)
{
    PyObject *factory, *fallback, *ndarray;
    if (!PyArg_ParseTuple(args, "OOO:bind", &factory, &fallback, &ndarray))
        return NULL;
    if (!PyCallable_Check(factory) || !PyCallable_Check(fallback) || !PyType_Check(ndarray)) {
        PyErr_SetString(PyExc_TypeError, "bind: factory and fallback must be callable, ndarray a type");
        return NULL;
    }
    Py_INCREF(factory);
    Py_INCREF(fallback);
    Py_INCREF(ndarray);
    Py_XSETREF(self->factory, factory);
    Py_XSETREF(self->fallback, fallback);
    Py_XSETREF(self->ndarray, ndarray);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(mark_break_doc,
"mark_break(ch, guard) -> None\n\n"
"The next sample of channel ch does not follow the last one: the windows holding the join or the guard\n"
"samples after it neither hit nor miss (DetectorBank.mark_break; detector.neutral_windows computes the same).");

static PyObject *
Frames_mark_break(FramesObject *self, PyObject *args)
{
    Py_ssize_t ch, guard;
    if (!PyArg_ParseTuple(args, "nn:mark_break", &ch, &guard))
        return NULL;
    if (self->chans == NULL || ch < 0 || ch >= self->channels || guard < 0) {
        PyErr_SetString(PyExc_ValueError, "mark_break: channel out of range or negative guard");
        return NULL;
    }
    const int64_t H = (int64_t)self->H, pos = (int64_t)self->half_index * H + (int64_t)self->n_pending;
    const int64_t lo = floordiv(pos - 2 * H, H) + 1, hi = -floordiv(-(pos + (int64_t)guard), H) - 1;
    chan_t *c = self->chans + ch;
    if (c->nlo[1] != lo || c->nhi[1] != hi) {
        c->nlo[0] = c->nlo[1];
        c->nhi[0] = c->nhi[1];
        c->nlo[1] = lo;
        c->nhi[1] = hi;
    }
    Py_RETURN_NONE;
}

static PyObject *
Frames_get_n_pending(FramesObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(self->n_pending);
}

static PyGetSetDef Frames_getset[] = {
    {"n_pending", (getter)Frames_get_n_pending, NULL, "samples of the partial half-block (process())", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Frames_methods[] = {
    {"run", (PyCFunction)Frames_run, METH_VARARGS, run_doc},
    {"process", (PyCFunction)Frames_process, METH_O, process_doc},
    {"events", (PyCFunction)Frames_events, METH_O, events_doc},
    {"bind", (PyCFunction)Frames_bind, METH_VARARGS, bind_doc},
    {"mark_break", (PyCFunction)Frames_mark_break, METH_VARARGS, mark_break_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FramesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dtmfguard.dsp._detector_native.Frames",
    .tp_basicsize = sizeof(FramesObject),
    .tp_dealloc = (destructor)Frames_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Frames_traverse,
    .tp_clear = (inquiry)Frames_clear,
    .tp_doc = "Frames(state, consts, active): the C window tests bound to one DetectorBank's state.",
    .tp_methods = Frames_methods,
    .tp_getset = Frames_getset,
    .tp_init = (initproc)Frames_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef methods[] = {
    {"bin_table", bin_table, METH_VARARGS, bin_table_doc},
    {"frame_tables", frame_tables, METH_O, frame_tables_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "dtmfguard.dsp._detector_native",
    "The in-band detector's kernel and window tests in C (optional speed-up of dtmfguard.dsp.detector).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__detector_native(void)
{
    PyObject *m;
    if (PyType_Ready(&FramesType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    /* the layouts have one home (here); detector.py checks its arrays against these */
    Py_INCREF(&FramesType);
    if (PyModule_AddObject(m, "Frames", (PyObject *)&FramesType) < 0) {
        Py_DECREF(&FramesType);
        Py_DECREF(m);
        return NULL;
    }
    {
        /* CONST_LAYOUT: name -> (offset, length) of every entry of consts */
        PyObject *layout = Py_BuildValue("{s(ii)s(ii)s(ii)s(ii)}", "bins", CONST_BINS, DG_BIN_CONSTS * NBINS,
                                         "omegas", CONST_OMEGA, NBINS, "rot", CONST_ROT, 2 * NBINS, "advance",
                                         CONST_ADVANCE, NBINS);
        if (layout != NULL) {
            PyObject *v = Py_BuildValue("(ii)", CONST_DOUBLE_SKIP, 16);
            if (v == NULL || PyDict_SetItemString(layout, "double_skip", v) < 0)
                Py_CLEAR(layout);
            Py_XDECREF(v);
        }
        if (layout != NULL) {
            PyObject *v = Py_BuildValue("(ii)", CONST_ROT2, 2 * NBINS);
            if (v == NULL || PyDict_SetItemString(layout, "rot2", v) < 0)
                Py_CLEAR(layout);
            Py_XDECREF(v);
        }
        int bad = layout == NULL;
#define DG_ADD(id, name)                                                                                 \
        if (!bad) {                                                                                      \
            PyObject *v = Py_BuildValue("(ii)", CONST_SCALARS + S_##id, 1);                             \
            bad = v == NULL || PyDict_SetItemString(layout, name, v) < 0;                                \
            Py_XDECREF(v);                                                                               \
        }
        DG_SCALARS(DG_ADD)
#undef DG_ADD
        if (bad || PyModule_AddObject(m, "CONST_LAYOUT", layout) < 0) {
            Py_XDECREF(layout);
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddIntConstant(m, "NBINS", NBINS) < 0 || PyModule_AddIntConstant(m, "STATE_EXTRA", STATE_EXTRA) < 0
        || PyModule_AddIntConstant(m, "CONSTS", CONSTS) < 0 || PyModule_AddIntConstant(m, "MAX_HALF", MAX_HALF) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
