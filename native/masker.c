/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dtmfguard._masker_native: the masker's per-hop onset screen in C.
 *
 * Why C: a live call runs the masker once every 20 ms on pjsua2's clock
 * thread.  The numpy path (dtmfguard/masker.py, Masker._fit) spends a few
 * dozen numpy calls per 20 ms frame; each is cheap in a tight loop, but with
 * 20 ms of other processes' work in between, every call's dispatch code and
 * data are cold again, and the frame costs 3x what a benchmark loop shows
 * (benchmarks/pipeline_frame.py).  Here one call does the whole screen for a
 * frame's hops with a few kB of code and data.
 *
 * Contract (the numpy path of Masker._fit computes the same thing):
 *
 *   screen(seg, q_short, rinv_short, q_long, rinv_long, recent,
 *          best_out, coef_out, expl_out, hop,
 *          f_short, f_long, f_persist, min_amp2, twist2, skip_energy) -> int (1 if any hop hit)
 *
 *   seg        float64 [(nh - 1) * hop + L_long]  hop i's long window is seg[i*hop : i*hop + L_long],
 *                                                  its short window the last L_short samples of that
 *   q_*        float64 [L, 64]   orthonormal bases of the 16 key pairs (4 columns each)
 *   rinv_*     float64 [16, 4, 4] R^-1 of each pair's QR: coefficients from projections
 *   recent     int64  [k - 1]    weak-rule pair of the previous hops (persistence rule), updated in place
 *   best_out   int64  [nh]       pair detected at each hop, or -1
 *   coef_out   float64 [nh, 4]   that pair's (row cos, row sin, col cos, col sin) amplitudes, else 0
 *   expl_out   float64 [nh, 16]  energy each pair explains in the long window
 *
 * A window "looks like a key" when it has energy, both fitted tones reach
 * min_amp, the twist is within bounds and the best pair explains at least the
 * window's fraction of the energy.  Rules, in order: short window (f_short),
 * long window (f_long), and the same pair explaining f_persist of the long
 * window in k consecutive hops.
 *
 * Quiet frames: if the energy of all of seg is below skip_energy, no window can
 * pass the amplitude test, so the fits are skipped (best -1, coef 0, expl 0,
 * weak-rule pairs -1: what the fits would give, except expl, which the caller
 * reads only while a press is active and then passes skip_energy = 0).  The
 * caller derives skip_energy from a bound (see Masker._skip_energy), so this
 * never hides a tone the fits would find.  The ~50 kB of basis tables are not
 * even touched then, which matters when every frame starts with cold caches.
 *
 * The GIL is kept: the call takes ~10-20 us, and releasing it would let another
 * Python thread take it for up to the switch interval (5 ms) while pjsua2's
 * clock thread, which calls this, waits for it back.
 *
 * Results equal the numpy path's up to float rounding (the dot products are
 * summed in a different order than BLAS does); tests/test_masker_native.py
 * checks the output audio is identical on presses, speech and noise.
 *
 * Only the buffer protocol is used (no numpy headers).  Every size is
 * validated before any memory is touched; bad arguments raise ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define NPAIRS 16
#define NCOLS (4 * NPAIRS)
#define MAX_PERSIST 16

typedef struct {
    int best;          /* argmax of explained (first on ties) */
    double top;        /* explained[best] */
    double energy;
    double coef[4];
    int ok;            /* energy, amplitude and twist tests passed */
} fit_result;

/* Fit the 16 pairs to one window x[0..len) (projections on orthonormal bases). */
static void
fit_window(const double *x, Py_ssize_t len, const double *q, const double *rinv,
           double min_amp2, double twist2, double *explained, fit_result *r)
{
    double proj[NCOLS];
    double energy = 0.0;
    memset(proj, 0, sizeof(proj));
    for (Py_ssize_t n = 0; n < len; n++) {
        const double v = x[n];
        const double *row = q + n * NCOLS;
        energy += v * v;
        for (int c = 0; c < NCOLS; c++)
            proj[c] += v * row[c];
    }
    int best = 0;
    for (int p = 0; p < NPAIRS; p++) {
        const double *a = proj + 4 * p;
        explained[p] = a[0] * a[0] + a[1] * a[1] + a[2] * a[2] + a[3] * a[3];
        if (explained[p] > explained[best])
            best = p;
    }
    const double *b = proj + 4 * best;
    const double *m = rinv + 16 * best;
    for (int i = 0; i < 4; i++)
        r->coef[i] = m[4 * i] * b[0] + m[4 * i + 1] * b[1] + m[4 * i + 2] * b[2] + m[4 * i + 3] * b[3];
    const double amp_r2 = r->coef[0] * r->coef[0] + r->coef[1] * r->coef[1];
    const double amp_c2 = r->coef[2] * r->coef[2] + r->coef[3] * r->coef[3];
    r->best = best;
    r->top = explained[best];
    r->energy = energy;
    r->ok = energy > 0.0 && (amp_r2 < amp_c2 ? amp_r2 : amp_c2) >= min_amp2
            && amp_r2 <= twist2 * amp_c2 && amp_c2 <= twist2 * amp_r2;
}

typedef struct {
    Py_buffer seg, q_short, rinv_short, q_long, rinv_long, recent, best, coef, expl;
} buffers;

static void
release_all(buffers *b)
{
    Py_buffer *all[] = {&b->seg, &b->q_short, &b->rinv_short, &b->q_long, &b->rinv_long, &b->recent,
                        &b->best, &b->coef, &b->expl};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i]->obj != NULL)
            PyBuffer_Release(all[i]);
}

static int
check_itemsize(Py_buffer *b, Py_ssize_t itemsize, const char *name)
{
    if (b->len % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: length is not a whole number of %zd-byte items", name, itemsize);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(screen_doc,
"screen(seg, q_short, rinv_short, q_long, rinv_long, recent, best_out, coef_out, expl_out, hop,\n"
"       f_short, f_long, f_persist, min_amp2, twist2, skip_energy) -> int\n\n"
"The masker's onset screen for every hop of a frame (see native/masker.c).");

static PyObject *
screen(PyObject *self, PyObject *args)
{
    buffers b;
    memset(&b, 0, sizeof(b));
    Py_ssize_t hop;
    double f_short, f_long, f_persist, min_amp2, twist2, skip_energy;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*w*w*w*ndddddd", &b.seg, &b.q_short, &b.rinv_short, &b.q_long,
                          &b.rinv_long, &b.recent, &b.best, &b.coef, &b.expl, &hop,
                          &f_short, &f_long, &f_persist, &min_amp2, &twist2, &skip_energy))
        return NULL;
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), I = (Py_ssize_t)sizeof(int64_t);
    if (check_itemsize(&b.seg, D, "seg") || check_itemsize(&b.q_short, D * NCOLS, "q_short")
        || check_itemsize(&b.q_long, D * NCOLS, "q_long") || check_itemsize(&b.recent, I, "recent")
        || check_itemsize(&b.best, I, "best_out") || check_itemsize(&b.coef, D * 4, "coef_out")
        || check_itemsize(&b.expl, D * NPAIRS, "expl_out"))
        goto fail;
    const Py_ssize_t L_short = b.q_short.len / (D * NCOLS), L_long = b.q_long.len / (D * NCOLS);
    const Py_ssize_t nh = b.best.len / I, k1 = b.recent.len / I;
    if (b.rinv_short.len != D * 16 * NPAIRS || b.rinv_long.len != D * 16 * NPAIRS) {
        PyErr_SetString(PyExc_ValueError, "rinv: expected 16 x 4 x 4 float64");
        goto fail;
    }
    if (hop < 1 || L_short < 1 || L_long < L_short || nh < 1 || k1 >= MAX_PERSIST) {
        PyErr_SetString(PyExc_ValueError, "bad hop, window lengths, hop count or persistence length");
        goto fail;
    }
    if (b.coef.len != nh * 4 * D || b.expl.len != nh * NPAIRS * D
        || b.seg.len != ((nh - 1) * hop + L_long) * D) {
        PyErr_SetString(PyExc_ValueError, "output or segment sizes do not match the hop count");
        goto fail;
    }
    const double *seg = (const double *)b.seg.buf;
    const double *qs = (const double *)b.q_short.buf, *rs = (const double *)b.rinv_short.buf;
    const double *ql = (const double *)b.q_long.buf, *rl = (const double *)b.rinv_long.buf;
    int64_t *recent = (int64_t *)b.recent.buf, *best = (int64_t *)b.best.buf;
    double *coef = (double *)b.coef.buf, *expl = (double *)b.expl.buf;
    int any = 0;
    const Py_ssize_t seg_n = b.seg.len / D;
    double seg_energy = 0.0;
    for (Py_ssize_t n = 0; n < seg_n; n++)
        seg_energy += seg[n] * seg[n];
    if (seg_energy < skip_energy) {
        for (Py_ssize_t i = 0; i < nh; i++)
            best[i] = -1;
        memset(coef, 0, (size_t)(nh * 4) * sizeof(double));
        memset(expl, 0, (size_t)(nh * NPAIRS) * sizeof(double));
        /* the weak-rule history moves on by nh hops of -1 */
        for (Py_ssize_t j = 0; j < k1; j++)
            recent[j] = j + nh < k1 ? recent[j + nh] : -1;
        release_all(&b);
        return PyLong_FromLong(0);
    }
    int64_t hist[MAX_PERSIST];  /* the last k1 weak-rule pairs, oldest first */
    for (Py_ssize_t j = 0; j < k1; j++)
        hist[j] = recent[j];
    double expl_short[NPAIRS];
    for (Py_ssize_t i = 0; i < nh; i++) {
        const double *xl = seg + i * hop;
        fit_result s, l;
        fit_window(xl + (L_long - L_short), L_short, qs, rs, min_amp2, twist2, expl_short, &s);
        fit_window(xl, L_long, ql, rl, min_amp2, twist2, expl + i * NPAIRS, &l);
        double *c = coef + 4 * i;
        int64_t weak = (l.ok && l.top >= f_persist * l.energy) ? l.best : -1;
        int persistent = weak >= 0;
        for (Py_ssize_t j = 0; j < k1; j++)
            persistent = persistent && hist[j] == weak;
        const fit_result *pick = NULL;
        if (s.ok && s.top >= f_short * s.energy)
            pick = &s;
        else if ((l.ok && l.top >= f_long * l.energy) || persistent)
            pick = &l;  /* the persistence rule's pair is the long window's best pair too */
        if (pick != NULL) {
            best[i] = pick->best;
            memcpy(c, pick->coef, sizeof(pick->coef));
            any = 1;
        } else {
            best[i] = -1;
            c[0] = c[1] = c[2] = c[3] = 0.0;
        }
        for (Py_ssize_t j = 0; j + 1 < k1; j++)
            hist[j] = hist[j + 1];
        if (k1 > 0)
            hist[k1 - 1] = weak;
    }
    for (Py_ssize_t j = 0; j < k1; j++)
        recent[j] = hist[j];
    release_all(&b);
    return PyLong_FromLong(any);
fail:
    release_all(&b);
    return NULL;
}

static PyMethodDef methods[] = {
    {"screen", screen, METH_VARARGS, screen_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "dtmfguard._masker_native",
    "The masker's onset screen in C (optional speed-up of dtmfguard.masker).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__masker_native(void)
{
    return PyModule_Create(&module);
}
