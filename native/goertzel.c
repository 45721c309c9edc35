/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dtmfguard.dsp._native: the Goertzel half-block kernel in C.
 *
 * Why C: one media server carries thousands of calls; the detector's
 * per-sample work is this filter bank, so it must cost a few cycles per
 * sample and frequency, run for many channels in one call, and let other
 * threads (the SIP stack, other calls) run meanwhile (the GIL is released
 * around the loop).
 *
 * Contract (identical to the numpy path of dtmfguard/dsp/goertzel.py):
 *
 *   halfblock_dft(x, half_block, omegas, out, energy) -> None
 *
 *   x       float64, C-contiguous, [channels, nh * half_block]
 *   omegas  float64, C-contiguous, [K]            (radians per sample)
 *   out     float64, C-contiguous, writable, [channels, nh, K, 2]  (re, im)
 *   energy  float64, C-contiguous, writable, [channels, nh]
 *
 *   out[c, h, k] = sum_{n=0}^{H-1} x[c, h*H + n] * exp(-j * omega_k * n)
 *   energy[c, h] = sum_{n=0}^{H-1} x[c, h*H + n]^2
 *
 * The phase is referenced to each half-block's first sample; the recursion
 * and its finishing rotation are native/goertzel_kernel.h's (shared with
 * native/detector.c).
 *
 * Only the buffer protocol is used (no numpy headers): building needs no
 * numpy.  Every argument is validated before any memory is touched, so bad
 * input raises TypeError/ValueError and never reads or writes out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "goertzel_kernel.h"

/* Per-frequency constants (goertzel_kernel.h's order), computed once per call. */
typedef struct {
    double c[DG_BIN_CONSTS];
} bin_consts;

/*
 * Four half-blocks at a time, one per vector lane: their recursions are
 * independent, so a 4-wide vector advances four of them per instruction and
 * the 2K dependency chains (K frequencies x two state rows) keep the
 * pipelines full.  The input is read as four streams, so no transposition
 * is needed.  GCC's vector extensions compile to SSE2 pairs on any x86-64
 * and to AVX2 in the clone selected at load time on CPUs that have it
 * (target_clones, where the toolchain supports ifuncs).
 *
 * With KF > 0 (8 or 16 frequencies: the DTMF fundamentals, with or without
 * their second harmonics) the frequency count is a compile-time constant, so
 * the loops unroll and the state lives in registers/stack; KF == 0 is the
 * generic path with the state in `work`.
 */
typedef dg_v4d v4d;

#define KFIX_MAX 16
#define LANES 4

static inline __attribute__((always_inline)) void
quad_kernel(const double *const xs[LANES], Py_ssize_t H, Py_ssize_t K, const int KF,
            const bin_consts *restrict bins, const v4d *restrict coefv, v4d *restrict work,
            double *const outs[LANES], double *const es[LANES])
{
    v4d s1_fixed[KFIX_MAX], s2_fixed[KFIX_MAX];
    const Py_ssize_t KK = KF > 0 ? KF : K;
    v4d *restrict s1 = KF > 0 ? s1_fixed : work;
    v4d *restrict s2 = KF > 0 ? s2_fixed : work + K;
    const double *restrict x0 = xs[0], *restrict x1 = xs[1], *restrict x2 = xs[2], *restrict x3 = xs[3];
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d energy = zero;
    Py_ssize_t k, n;
    int j;

    for (k = 0; k < KK; k++)
        s1[k] = s2[k] = zero;
    for (n = 0; n < H; n++) {
        const v4d xv = {x0[n], x1[n], x2[n], x3[n]};
        energy += xv * xv;
        for (k = 0; k < KK; k++)
            DG_STEP(xv, coefv[k], s1[k], s2[k]);
    }
    for (k = 0; k < KK; k++)
        for (j = 0; j < LANES; j++)
            dg_finish(bins[k].c, s1[k][j], s2[k][j], outs[j] + 2 * k);
    for (j = 0; j < LANES; j++)
        *es[j] = energy[j];
}

/* KF > 0: fixed variant with KF frequencies; KF == 0: generic. */
static inline __attribute__((always_inline)) void
run_blocks(const double *x, Py_ssize_t blocks, Py_ssize_t H, Py_ssize_t K, const int KF,
           const bin_consts *bins, double *out, double *energy, v4d *work)
{
    /* work: K coefficient vectors, 2K state vectors (generic path), then spare output rows */
    const v4d *coefv = work;
    v4d *state = work + K;
    double *spare_out = (double *)(work + 3 * K); /* LANES rows of 2K doubles */
    double spare_energy[LANES];
    Py_ssize_t m;
    int j;

    for (m = 0; m < blocks; m += LANES) {
        const double *xs[LANES];
        double *outs[LANES];
        double *es[LANES];
        for (j = 0; j < LANES; j++) {
            if (m + j < blocks) {
                xs[j] = x + (m + j) * H;
                outs[j] = out + 2 * K * (m + j);
                es[j] = energy + m + j;
            }
            else { /* fewer than LANES blocks left: repeat the last one, drop the result */
                xs[j] = x + (blocks - 1) * H;
                outs[j] = spare_out + 2 * K * j;
                es[j] = spare_energy + j;
            }
        }
        quad_kernel(xs, H, K, KF, bins, coefv, state, outs, es);
    }
}

#include "clones.h"

/* The flat layout: [channels, nh, ...] is channels * nh consecutive half-blocks. */
DTMFGUARD_CLONES static void
compute(const double *x, Py_ssize_t blocks, Py_ssize_t H, const double *omegas, Py_ssize_t K,
        double *out, double *energy, bin_consts *bins, v4d *work)
{
    Py_ssize_t k;
    for (k = 0; k < K; k++) {
        dg_bin_consts(omegas[k], (long)H, bins[k].c);
        const double coef = bins[k].c[DG_COEF];
        const v4d c = {coef, coef, coef, coef};
        work[k] = c;
    }
    if (K == 8)
        run_blocks(x, blocks, H, K, 8, bins, out, energy, work);
    else if (K == 16)
        run_blocks(x, blocks, H, K, 16, bins, out, energy, work);
    else
        run_blocks(x, blocks, H, K, 0, bins, out, energy, work);
}

/* ---- argument validation -------------------------------------------------------------------- */

static int
is_native_double(const Py_buffer *view)
{
    const char *f = view->format ? view->format : "B";
    if (view->itemsize != (Py_ssize_t)sizeof(double))
        return 0;
    if (f[0] == '@' || f[0] == '=')
        f++;
#if PY_LITTLE_ENDIAN
    else if (f[0] == '<')
        f++;
#else
    else if (f[0] == '>' || f[0] == '!')
        f++;
#endif
    return f[0] == 'd' && f[1] == '\0';
}

/*
 * Take the buffer with strides and format so every problem can be named:
 * not a buffer / wrong item type / read-only -> TypeError; wrong dimensions /
 * not C-contiguous -> ValueError.
 */
static int
get_view(PyObject *obj, Py_buffer *view, const char *name, int ndim, int writable)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO) != 0) {
        PyObject *type, *value, *tb, *t2, *v2, *tb2;
        if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_BufferError) &&
            !PyErr_ExceptionMatches(PyExc_ValueError))
            return -1; /* e.g. MemoryError: pass it on unchanged */
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyErr_Format(PyExc_TypeError, "halfblock_dft: %s must be a float64 buffer (got %.100s)", name,
                     Py_TYPE(obj)->tp_name);
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        if (value != NULL)
            PyException_SetCause(v2, value); /* steals the reference */
        Py_XDECREF(type);
        Py_XDECREF(tb);
        PyErr_Restore(t2, v2, tb2);
        return -1;
    }
    if (!is_native_double(view)) {
        PyErr_Format(PyExc_TypeError, "halfblock_dft: %s must hold float64 ('d'), got format '%s'", name,
                     view->format ? view->format : "B");
    }
    else if (writable && view->readonly) {
        PyErr_Format(PyExc_TypeError, "halfblock_dft: %s must be writable", name);
    }
    else if (view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "halfblock_dft: %s must be %d-D, got %d-D", name, ndim, view->ndim);
    }
    else if (!PyBuffer_IsContiguous(view, 'C')) {
        PyErr_Format(PyExc_ValueError, "halfblock_dft: %s must be C-contiguous", name);
    }
    else {
        return 0;
    }
    PyBuffer_Release(view);
    return -1;
}

static int
overlaps(const Py_buffer *a, const Py_buffer *b)
{
    const char *a0 = (const char *)a->buf, *b0 = (const char *)b->buf;
    if (a->len == 0 || b->len == 0)
        return 0;
    return a0 < b0 + b->len && b0 < a0 + a->len;
}

PyDoc_STRVAR(halfblock_dft_doc,
"halfblock_dft(x, half_block, omegas, out, energy) -> None\n\n"
"Goertzel DFT values of every half-block of every channel, written in place.\n\n"
"x: float64 C-contiguous [channels, nh*half_block]; omegas: float64 [K] (rad/sample);\n"
"out: writable float64 [channels, nh, K, 2] receives (re, im) of\n"
"sum_n x[n] exp(-j omega n), phase referenced to each half-block's first sample;\n"
"energy: writable float64 [channels, nh] receives sum x**2.\n"
"Releases the GIL while computing.");

static PyObject *
halfblock_dft(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *om_obj, *out_obj, *en_obj;
    Py_ssize_t H;
    Py_buffer xv, ov, outv, ev;
    PyObject *result = NULL;
    (void)self;

    if (!PyArg_ParseTuple(args, "OnOOO:halfblock_dft", &x_obj, &H, &om_obj, &out_obj, &en_obj))
        return NULL;
    if (H < 1) {
        PyErr_Format(PyExc_ValueError, "halfblock_dft: half_block must be >= 1, got %zd", H);
        return NULL;
    }
    if (get_view(x_obj, &xv, "x", 2, 0) < 0)
        return NULL;
    if (get_view(om_obj, &ov, "omegas", 1, 0) < 0)
        goto release_x;
    if (get_view(out_obj, &outv, "out", 4, 1) < 0)
        goto release_om;
    if (get_view(en_obj, &ev, "energy", 2, 1) < 0)
        goto release_out;

    {
        const Py_ssize_t channels = xv.shape[0], n = xv.shape[1], K = ov.shape[0];
        Py_ssize_t nh;
        if (n % H != 0) {
            PyErr_Format(PyExc_ValueError,
                         "halfblock_dft: x has %zd samples per channel, not a multiple of half_block=%zd",
                         n, H);
            goto release_all;
        }
        nh = n / H;
        if (outv.shape[0] != channels || outv.shape[1] != nh || outv.shape[2] != K || outv.shape[3] != 2) {
            PyErr_Format(PyExc_ValueError,
                         "halfblock_dft: out must have shape (%zd, %zd, %zd, 2), got (%zd, %zd, %zd, %zd)",
                         channels, nh, K, outv.shape[0], outv.shape[1], outv.shape[2], outv.shape[3]);
            goto release_all;
        }
        if (ev.shape[0] != channels || ev.shape[1] != nh) {
            PyErr_Format(PyExc_ValueError, "halfblock_dft: energy must have shape (%zd, %zd), got (%zd, %zd)",
                         channels, nh, ev.shape[0], ev.shape[1]);
            goto release_all;
        }
        if (overlaps(&outv, &xv) || overlaps(&outv, &ov) || overlaps(&ev, &xv) || overlaps(&ev, &ov) ||
            overlaps(&outv, &ev)) {
            PyErr_SetString(PyExc_ValueError, "halfblock_dft: out and energy must not share memory with "
                                              "x, omegas or each other");
            goto release_all;
        }
        if (channels * nh > 0 && K > 0) {
            /* bins; then, 32-byte aligned: K coefficient vectors, 2K state vectors, LANES spare rows */
            const size_t bins_bytes = (size_t)K * sizeof(bin_consts);
            const size_t work_bytes = (size_t)K * 3 * sizeof(v4d) + (size_t)LANES * 2 * K * sizeof(double);
            char *mem = (char *)PyMem_RawMalloc(bins_bytes + work_bytes + sizeof(v4d));
            uintptr_t aligned;
            if (mem == NULL) {
                PyErr_NoMemory();
                goto release_all;
            }
            aligned = ((uintptr_t)(mem + bins_bytes) + sizeof(v4d) - 1) & ~(uintptr_t)(sizeof(v4d) - 1);
            Py_BEGIN_ALLOW_THREADS
            compute((const double *)xv.buf, channels * nh, H, (const double *)ov.buf, K, (double *)outv.buf,
                    (double *)ev.buf, (bin_consts *)mem, (v4d *)aligned);
            Py_END_ALLOW_THREADS
            PyMem_RawFree(mem);
        }
        else if (channels * nh > 0) {
            /* No frequencies: only the energies. */
            const double *x = (const double *)xv.buf;
            double *e = (double *)ev.buf;
            Py_ssize_t m, i;
            for (m = 0; m < channels * nh; m++) {
                double acc = 0.0;
                for (i = 0; i < H; i++)
                    acc += x[m * H + i] * x[m * H + i];
                e[m] = acc;
            }
        }
        Py_INCREF(Py_None);
        result = Py_None;
    }

release_all:
    PyBuffer_Release(&ev);
release_out:
    PyBuffer_Release(&outv);
release_om:
    PyBuffer_Release(&ov);
release_x:
    PyBuffer_Release(&xv);
    return result;
}

static PyMethodDef native_methods[] = {
    {"halfblock_dft", halfblock_dft, METH_VARARGS, halfblock_dft_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    "dtmfguard.dsp._native",
    "Goertzel half-block kernel in C (optional speed-up of dtmfguard.dsp.goertzel).",
    -1,
    native_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&native_module);
}
