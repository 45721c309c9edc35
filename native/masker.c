/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dtmfguard.dsp._masker_native: the masker's per-hop screen and its output side in C.
 *
 * Why C: a live call runs the masker once every 20 ms on pjsua2's clock
 * thread; the numpy path (Masker._screen_numpy in dtmfguard/dsp/masker.py) spends
 * dozens of numpy calls per frame, each cheap in a loop but cold again 20 ms
 * later.  Here one call (Screen.run, on the buffers Screen.bind holds) appends a
 * frame, screens all its hops, takes the steps that only update counters and
 * writes the output (delayed input, mask, or fades and band notches through the
 * Output object); Python takes over only for a hop that opens or closes a press
 * or a suspect (then Screen.finish writes the output).
 *
 * Contract: the numbers equal the numpy path's BIT FOR BIT.  Every sum is
 * taken in the order the numpy path takes it (block sums sample by sample,
 * window sums as a binary tree of block sums, the quadratic forms term by
 * term in the order of ``quad``), and no fused multiply-add is used (x86-64
 * baseline has none; the build passes no -march, and the AVX2 clones of the
 * screen and the output add vector width, not FMA; vector lanes take each
 * value's scalar operations in the scalar order), so both paths take the same
 * decisions and give the same audio (tests/test_masker_native.py).
 *
 * Screen(*, hop, cos, sin, freq, ks, is_confirm, quad, ginv, screen_amp2, confirm_amp2, twist2,
 *        screen_resid, confirm_resid, weak_resid, screen_unique, confirm_unique, skip_energy, ..., g711, g711_relax)
 *
 *   Every constant is passed by name (MaskerParams and the tables derived from it, see
 *   Masker._setup_screen), checked once here, and kept in the object.
 *   hop      samples per block (1 ms)
 *   cos/sin  float64 [rate]        cos/sin(2 pi k / rate); freq: int64 [8] DTMF frequencies (Hz)
 *   ks       int64 [nw]            window lengths in blocks: powers of two, increasing
 *   is_confirm int64 [nw]          1 where a window may confirm a press
 *   quad     float64 [nw*10*16]    per window, term t and pair p: coefficient of the quadratic form
 *                                  explained = sum_t quad[t][p] * term_t (Masker._quad_terms)
 *   ginv     float64 [nw*16*4*4]   per window and pair: inverse Gram matrix (window-relative basis)
 *   *_resid  1 - the share of energy the best pair must explain; *_unique second-best residual ratio
 *   g711     int64 [nw]            1 where a window the screen's test misses, but would pass relaxed by g711_relax,
 *                                  is judged again after a µ-law, then an A-law round trip (g711_named); a hop
 *                                  named only that way reports pair + 16 * (window + nw) (Masker._step reads it)
 *
 * Screen.screen(seg, b0, suspect_out, conf_out, conf_coef_out, weak_out, expl_out) -> int
 *
 *   seg      float64 [nb * hop]   whole blocks; block j starts at absolute sample (b0 + j) * hop;
 *                                 nb = kmax + nh - 1 (hop i's windows end at block kmax + i)
 *   outputs  suspect int64 [nh] (pair + 16 * window index, or -1), conf int64 [nh] (pair or -1),
 *            conf_coef float64 [nh*4], weak int64 [nh], expl float64 [nh*16] (longest window)
 *
 * The object remembers the correlations of the last CACHE blocks it saw, keyed by absolute block and
 * checked against the block's samples (consecutive frames share kmax - 1 blocks): a block whose samples
 * differ is computed again, so a cached value is always the value the numpy path computes.
 *
 * The GIL is kept (a call takes microseconds).  Only the buffer protocol is
 * used; every size is validated before memory is touched (ValueError).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clones.h"

#define NF 8
#define NP 16
#define NT 10
#define NFEAT (1 + 2 * NF) /* energy, cos correlations, sin correlations */
#define MAXW 8
#define CACHE 32 /* blocks remembered between calls (power of two) */

/* Four doubles as one value (GNU C vector extension): every lane takes exactly the operations of the scalar code
 * it replaces, in the same order (no fused multiply-add: the build passes no -march, the clones only add AVX2),
 * so the values are those of the scalar loops; elsewhere the scalar loops are compiled */
#if defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(vector_size)
#define HAVE_V4D 1
typedef double v4d __attribute__((vector_size(4 * sizeof(double))));
/* (macros, not functions: a vector argument or result would change the ABI between the clones) */
#define V4D_LOAD(p) ((v4d){(p)[0], (p)[1], (p)[2], (p)[3]})
#define V4D_FILL(x) ((v4d){(x), (x), (x), (x)})
typedef int64_t v4i __attribute__((vector_size(4 * sizeof(int64_t))));
typedef int32_t v8i __attribute__((vector_size(8 * sizeof(int32_t)))); /* (NF table indices) */
typedef char nf_is_eight[NF == 8 ? 1 : -1];
/* lane by lane a < b ? a : b */
#define V4D_MIN(a, b) ((v4d)((((v4i)(a)) & (v4i)((a) < (b))) | (((v4i)(b)) & ~(v4i)((a) < (b)))))
#endif
#endif

/* buffers Screen.bind holds: delay line, state, mask table, span lists, screen outputs */
enum { BB_STORE, BB_STATE, BB_STEADY, BB_TABLE, BB_SPANS, BB_NOTCHES, BB_SUS, BB_CONF, BB_CCOEF, BB_WEAK, BB_EXPL,
       NBB };

typedef struct {
    PyObject_HEAD
    Py_ssize_t hop, rate, nw, kmax;
    int64_t freq[NF], ks[MAXW], isc[MAXW], lev[MAXW];
    double *ctab, *stab;           /* [rate] */
    double *rcos, *rsin;           /* [hop][NF] cos/sin of each frequency at block-relative sample k */
    double *quad;                  /* [nw][NT][NP] */
    double *ginv;                  /* [nw][NP][16] */
    double screen_amp2, confirm_amp2, twist2, screen_resid, confirm_resid, weak_resid, screen_unique,
        confirm_unique, skip_energy, hold_ratio;
    int64_t hit_hops, weak_hops, close_hops, persist, suspect_close;
    int64_t g711[MAXW];            /* per window: also judged through a G.711 round trip (Masker._g711) */
    double g711_relax;             /* ... when the screen's test relaxed by this factor would pass */
    double gain[MAXW], need[MAXW]; /* per window: bound on explained energy per unit row+column power, and
                                     the least share of the window's energy any of its tests needs */
    int64_t *tag;                  /* [CACHE] absolute block held by each slot (or INT64_MIN) */
    double *csamp;                 /* [CACHE][hop] its samples */
    double *cfeat;                 /* [CACHE][NFEAT] its energy and correlations */
    double *scratch;               /* levels: [nlev][nb][NFEAT] */
    Py_ssize_t scratch_len;
    /* Screen.bind: the masker's buffers, held between frames (a frame then passes only its chunk) */
    Py_buffer bb[NBB];
    int bound, has_table;
    Py_ssize_t keep, delay, cap;
    PyObject *output; /* OutputObject */
} ScreenObject;

static void
unbind(ScreenObject *self)
{
    for (int i = 0; i < NBB; i++)
        if (self->bb[i].obj != NULL)
            PyBuffer_Release(&self->bb[i]);
    memset(self->bb, 0, sizeof(self->bb));
    Py_CLEAR(self->output);
    self->bound = 0;
}

static void
Screen_dealloc(ScreenObject *self)
{
    free(self->ctab); free(self->stab); free(self->rcos); free(self->rsin); free(self->quad); free(self->ginv);
    free(self->tag); free(self->csamp); free(self->cfeat); free(self->scratch);
    unbind(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
copy_buffer(PyObject *obj, Py_ssize_t itemsize, Py_ssize_t want, void *dst, const char *name)
{
    Py_buffer b;
    if (PyObject_GetBuffer(obj, &b, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    int ok = b.len == want * itemsize && (want == 0 || b.len % itemsize == 0);
    if (ok)
        memcpy(dst, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "Screen: %s has the wrong size", name);
        return -1;
    }
    return 0;
}

static Py_ssize_t
buffer_len(PyObject *obj)
{
    Py_buffer b;
    if (PyObject_GetBuffer(obj, &b, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    Py_ssize_t n = b.len;
    PyBuffer_Release(&b);
    return n;
}

static int
Screen_init(ScreenObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"hop", "cos", "sin", "freq", "ks", "is_confirm", "quad", "ginv",
                            "screen_amp2", "confirm_amp2", "twist2", "screen_resid", "confirm_resid",
                            "weak_resid", "screen_unique", "confirm_unique", "skip_energy", "hold_ratio", "bound_gain", "hit_hops", "weak_hops", "close_hops", "persist_samples",
                            "suspect_close_samples", "g711", "g711_relax", NULL};
    Py_ssize_t hop;
    PyObject *cos_o, *sin_o, *freq_o, *ks_o, *isc_o, *quad_o, *ginv_o, *gain_o, *g711_o;
    if (self->ctab != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$nOOOOOOOddddddddddOLLLLLOd", names, &hop, &cos_o, &sin_o, &freq_o,
                                     &ks_o, &isc_o, &quad_o, &ginv_o, &self->screen_amp2, &self->confirm_amp2,
                                     &self->twist2, &self->screen_resid, &self->confirm_resid, &self->weak_resid,
                                     &self->screen_unique, &self->confirm_unique, &self->skip_energy,
                                     &self->hold_ratio, &gain_o, &self->hit_hops, &self->weak_hops,
                                     &self->close_hops, &self->persist, &self->suspect_close, &g711_o,
                                     &self->g711_relax))
        return -1;
    /* every name is required: "|$" only makes them keyword-only */
    if (kw == NULL || PyDict_Size(kw) != (Py_ssize_t)(sizeof(names) / sizeof(names[0]) - 1)) {
        PyErr_SetString(PyExc_TypeError, "Screen: every constant must be given, by name");
        return -1;
    }
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), I = (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t cos_len = buffer_len(cos_o), ks_len = buffer_len(ks_o);
    if (cos_len < 0 || ks_len < 0)
        return -1;
    self->rate = cos_len / D;
    self->nw = ks_len / I;
    self->hop = hop;
    if (hop < 1 || self->rate < 1 || self->rate >= ((Py_ssize_t)1 << 30) || cos_len % D || ks_len % I || self->nw < 1
        || self->nw > MAXW) {
        PyErr_SetString(PyExc_ValueError, "Screen: bad hop, table or window count");
        return -1;
    }
    const Py_ssize_t nw = self->nw;
    self->ctab = (double *)malloc((size_t)self->rate * sizeof(double));
    self->stab = (double *)malloc((size_t)self->rate * sizeof(double));
    self->quad = (double *)malloc((size_t)(nw * NT * NP) * sizeof(double));
    self->ginv = (double *)malloc((size_t)(nw * NP * 16) * sizeof(double));
    self->tag = (int64_t *)malloc(CACHE * sizeof(int64_t));
    self->csamp = (double *)malloc((size_t)(CACHE * hop) * sizeof(double));
    self->cfeat = (double *)malloc((size_t)(CACHE * NFEAT) * sizeof(double));
    if (!self->ctab || !self->stab || !self->quad || !self->ginv || !self->tag || !self->csamp || !self->cfeat) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < CACHE; i++)
        self->tag[i] = INT64_MIN;
    if (copy_buffer(cos_o, D, self->rate, self->ctab, "cos") < 0
        || copy_buffer(sin_o, D, self->rate, self->stab, "sin") < 0
        || copy_buffer(freq_o, I, NF, self->freq, "freq") < 0
        || copy_buffer(ks_o, I, nw, self->ks, "ks") < 0
        || copy_buffer(isc_o, I, nw, self->isc, "is_confirm") < 0
        || copy_buffer(quad_o, D, nw * NT * NP, self->quad, "quad") < 0
        || copy_buffer(ginv_o, D, nw * NP * 16, self->ginv, "ginv") < 0
        || copy_buffer(gain_o, D, nw, self->gain, "bound_gain") < 0
        || copy_buffer(g711_o, I, nw, self->g711, "g711") < 0)
        return -1;
    if (!(self->g711_relax >= 1.0 && self->g711_relax <= 11.0)) {
        PyErr_SetString(PyExc_ValueError, "Screen: g711_relax must be in [1, 11]");
        return -1;
    }
    for (Py_ssize_t w = 0; w < nw; w++) {
        double r = self->screen_resid;
        if (self->isc[w] && self->confirm_resid > r)
            r = self->confirm_resid;
        if (w == nw - 1 && self->weak_resid > r)
            r = self->weak_resid;
        if (self->g711[w] && self->g711_relax * self->screen_resid > r)
            r = self->g711_relax * self->screen_resid; /* (the relaxed test's share: a near miss is still fitted) */
        if (r >= 1.0)
            r = 1.0 - 1e-12;
        /* a test passes only if the best pair explains >= (1 - r) of the energy; 1e-9 below that for
         * rounding (the bound itself carries a margin, see Masker.native_constants) */
        self->need[w] = (1.0 - r) * (1.0 - 1e-9);
        if (!(self->gain[w] > 0.0) || !(r >= 0.0 && r < 1.0)) {
            PyErr_SetString(PyExc_ValueError, "Screen: bound_gain must be > 0 and residual shares in [0, 1)");
            return -1;
        }
    }
    for (Py_ssize_t w = 0; w < nw; w++) {
        int64_t k = self->ks[w], l = 0;
        while (((int64_t)1 << l) < k)
            l++;
        if (k < 1 || k != ((int64_t)1 << l) || (w > 0 && k <= self->ks[w - 1])) {
            PyErr_SetString(PyExc_ValueError, "Screen: window lengths must be increasing powers of two");
            return -1;
        }
        self->lev[w] = l;
    }
    for (int f = 0; f < NF; f++)
        if (self->freq[f] < 0 || self->freq[f] >= self->rate) {
            PyErr_SetString(PyExc_ValueError, "Screen: frequency out of range");
            return -1;
        }
    if (self->hit_hops < 1 || self->weak_hops < 1 || self->close_hops < 1) {
        PyErr_SetString(PyExc_ValueError, "Screen: hop counts must be >= 1");
        return -1;
    }
    self->kmax = (Py_ssize_t)self->ks[nw - 1];
    self->rcos = (double *)malloc((size_t)(hop * NF) * sizeof(double));
    self->rsin = (double *)malloc((size_t)(hop * NF) * sizeof(double));
    if (!self->rcos || !self->rsin) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < hop; k++)
        for (int f = 0; f < NF; f++) {
            const int64_t idx = (self->freq[f] * (int64_t)k) % self->rate;
            self->rcos[k * NF + f] = self->ctab[idx];
            self->rsin[k * NF + f] = self->stab[idx];
        }
    return 0;
}

/* energy and correlations of one block starting at absolute sample ``start`` */
static inline void
block_features(const ScreenObject *o, const double *restrict xb, int64_t start, double *restrict feat)
{
    const Py_ssize_t hop = o->hop, rate = o->rate;
    double e = xb[0] * xb[0];
    for (Py_ssize_t k = 1; k < hop; k++)
        e = e + xb[k] * xb[k];
    feat[0] = e;
    /* correlations with the block-relative basis (sample by sample, all 8 frequencies at once) ... */
    const double *restrict rcos = o->rcos, *restrict rsin = o->rsin;
    /* ... turned to the absolute phase of the block's first sample: table index (f * sm) mod rate without 8
     * integer divisions (f * sm < 2^53, so the quotient through a double is exact or one off, and the correction
     * below makes the remainder exact) */
    const int64_t sm = ((start % rate) + rate) % rate;
    const double inv_rate = 1.0 / (double)rate;
    int64_t idx[NF];
    for (int f = 0; f < NF; f++) {
        const int64_t a = o->freq[f] * sm;
        int64_t i = a - (int64_t)((double)a * inv_rate) * rate;
        while (i < 0)
            i += rate;
        while (i >= rate)
            i -= rate;
        idx[f] = i;
    }
#ifdef HAVE_V4D
    const v4d x0 = V4D_FILL(xb[0]);
    v4d c[2] = {x0 * V4D_LOAD(rcos), x0 * V4D_LOAD(rcos + 4)}, s[2] = {x0 * V4D_LOAD(rsin), x0 * V4D_LOAD(rsin + 4)};
    for (Py_ssize_t k = 1; k < hop; k++) {
        const v4d xk = V4D_FILL(xb[k]);
        c[0] = c[0] + xk * V4D_LOAD(rcos + k * NF);
        c[1] = c[1] + xk * V4D_LOAD(rcos + k * NF + 4);
        s[0] = s[0] + xk * V4D_LOAD(rsin + k * NF);
        s[1] = s[1] + xk * V4D_LOAD(rsin + k * NF + 4);
    }
    for (int g = 0; g < 2; g++) {
        const int64_t *ig = idx + 4 * g;
        const v4d cs = {o->ctab[ig[0]], o->ctab[ig[1]], o->ctab[ig[2]], o->ctab[ig[3]]};
        const v4d sn = {o->stab[ig[0]], o->stab[ig[1]], o->stab[ig[2]], o->stab[ig[3]]};
        const v4d fc = cs * c[g] - sn * s[g], fs = sn * c[g] + cs * s[g];
        memcpy(feat + 1 + 4 * g, &fc, sizeof(fc));
        memcpy(feat + 1 + NF + 4 * g, &fs, sizeof(fs));
    }
#else
    double c[NF], s[NF];
    for (int f = 0; f < NF; f++) {
        c[f] = xb[0] * rcos[f];
        s[f] = xb[0] * rsin[f];
    }
    for (Py_ssize_t k = 1; k < hop; k++) {
        const double xk = xb[k], *restrict ck = rcos + k * NF, *restrict sk = rsin + k * NF;
        for (int f = 0; f < NF; f++) {
            c[f] = c[f] + xk * ck[f];
            s[f] = s[f] + xk * sk[f];
        }
    }
    for (int f = 0; f < NF; f++) {
        const double cs = o->ctab[idx[f]], sn = o->stab[idx[f]];
        feat[1 + f] = cs * c[f] - sn * s[f];
        feat[1 + NF + f] = sn * c[f] + cs * s[f];
    }
#endif
}

/* the smallest residual over the 16 pairs (first of equals) and the second smallest value, as numpy's argmin
 * and partition give them (dsp/masker.py _best_pair_fit); returns the best pair */
static inline int
best_two(const double *restrict ex, double e, double *restrict r1o, double *restrict r2o)
{
#ifdef HAVE_V4D
    /* the same values: residuals are never NaN nor -0 (rr > 0 or exactly +0), so the smallest is the
     * smallest in any order, the best pair the first that equals it, and the second smallest the smallest of
     * the others (with a tie, the tied value, as the loop below gives it) */
    double res[NP];
    const v4d ev = V4D_FILL(e), zero = V4D_FILL(0.0);
    v4d lo = zero;
    for (int g = 0; g < NP; g += 4) {
        const v4d rr = ev - V4D_LOAD(ex + g);
        const v4d r = (v4d)((v4i)rr & (v4i)(rr > zero));
        memcpy(res + g, &r, sizeof(r));
        lo = g == 0 ? r : V4D_MIN(lo, r);
    }
    double r1 = lo[0];
    for (int q = 1; q < 4; q++)
        r1 = lo[q] < r1 ? lo[q] : r1;
    int best = 0;
    while (res[best] != r1)
        best++;
    res[best] = HUGE_VAL;
    lo = V4D_MIN(V4D_MIN(V4D_LOAD(res), V4D_LOAD(res + 4)), V4D_MIN(V4D_LOAD(res + 8), V4D_LOAD(res + 12)));
    double r2 = lo[0];
    for (int q = 1; q < 4; q++)
        r2 = lo[q] < r2 ? lo[q] : r2;
    *r1o = r1;
    *r2o = r2;
    return best;
#else
    int best = 0;
    double r1 = HUGE_VAL, r2 = HUGE_VAL;
    for (int p = 0; p < NP; p++) {
        const double rr = e - ex[p], res = rr > 0.0 ? rr : 0.0;
        if (res < r1) {
            r2 = r1;
            r1 = res;
            best = p;
        } else if (res < r2) {
            r2 = res;
        }
    }
    *r1o = r1;
    *r2o = r2;
    return best;
#endif
}

/* energy each pair explains, v^T G^-1 v, summed term by term in the order of ``quad``; pairs 4r .. 4r + 3
 * share row r and take columns 4 .. 7, so each row's four pairs are four lanes of the same sums (no table of
 * terms: the same products, added in the same order; inlined into the screen, built for AVX2 too) */
static inline void
pair_explained(const double *restrict quad, const double *restrict cr, const double *restrict sr,
               double t2[restrict 3][NF], double *restrict ex)
{
#ifdef HAVE_V4D
    const v4d cc2 = V4D_LOAD(&t2[0][4]), cs2 = V4D_LOAD(&t2[1][4]), ccs = V4D_LOAD(&t2[2][4]),
              ccr = V4D_LOAD(cr + 4), csr = V4D_LOAD(sr + 4);
    for (int r = 0; r < 4; r++) {
        const v4d rc = V4D_FILL(cr[r]), rs = V4D_FILL(sr[r]);
        const double *q = quad + 4 * r;
        v4d v = V4D_LOAD(q) * V4D_FILL(t2[0][r]);
        v = v + V4D_LOAD(q + NP) * V4D_FILL(t2[1][r]);
        v = v + V4D_LOAD(q + 2 * NP) * cc2;
        v = v + V4D_LOAD(q + 3 * NP) * cs2;
        v = v + V4D_LOAD(q + 4 * NP) * V4D_FILL(t2[2][r]);
        v = v + V4D_LOAD(q + 5 * NP) * ccs;
        v = v + V4D_LOAD(q + 6 * NP) * (rc * ccr);
        v = v + V4D_LOAD(q + 7 * NP) * (rc * csr);
        v = v + V4D_LOAD(q + 8 * NP) * (rs * ccr);
        v = v + V4D_LOAD(q + 9 * NP) * (rs * csr);
        memcpy(ex + 4 * r, &v, sizeof(v));
    }
#else
    for (int r = 0; r < 4; r++) {
        const double rc2 = t2[0][r], rs2 = t2[1][r], rcs = t2[2][r], rc = cr[r], rs = sr[r];
        const double *q = quad + 4 * r;
        for (int j = 0; j < 4; j++) {
            const int c = 4 + j;
            double v = q[j] * rc2;
            v = v + q[NP + j] * rs2;
            v = v + q[2 * NP + j] * t2[0][c];
            v = v + q[3 * NP + j] * t2[1][c];
            v = v + q[4 * NP + j] * rcs;
            v = v + q[5 * NP + j] * t2[2][c];
            v = v + q[6 * NP + j] * (rc * cr[c]);
            v = v + q[7 * NP + j] * (rc * sr[c]);
            v = v + q[8 * NP + j] * (rs * cr[c]);
            v = v + q[9 * NP + j] * (rs * sr[c]);
            ex[4 * r + j] = v;
        }
    }
#endif
}

PyDoc_STRVAR(screen_doc,
"screen(seg, b0, suspect_out, conf_out, conf_coef_out, weak_out, expl_out) -> int\n\n"
"The masker's screen for every hop of a frame (see native/masker.c).");

/* window-relative cos and sin correlations (and their squares and product) from absolute ones */
static inline void
rotate(const ScreenObject *o, const double *f, const int32_t *ri, double *cr, double *sr, double t2[3][NF])
{
#ifdef HAVE_V4D
    for (int q = 0; q < NF; q += 4) {
        const double *ct = o->ctab, *stb = o->stab;
        const v4d cs = {ct[ri[q]], ct[ri[q + 1]], ct[ri[q + 2]], ct[ri[q + 3]]};
        const v4d sn = {stb[ri[q]], stb[ri[q + 1]], stb[ri[q + 2]], stb[ri[q + 3]]};
        const v4d fc = V4D_LOAD(f + 1 + q), fs = V4D_LOAD(f + 1 + NF + q);
        const v4d c = fc * cs + fs * sn, sv = fs * cs - fc * sn;
        const v4d cc = c * c, ss = sv * sv, csv = c * sv;
        memcpy(cr + q, &c, sizeof(c));
        memcpy(sr + q, &sv, sizeof(sv));
        memcpy(&t2[0][q], &cc, sizeof(cc));
        memcpy(&t2[1][q], &ss, sizeof(ss));
        memcpy(&t2[2][q], &csv, sizeof(csv));
    }
#else
    for (int q = 0; q < NF; q++) {
        const double cs = o->ctab[ri[q]], sn = o->stab[ri[q]];
        cr[q] = f[1 + q] * cs + f[1 + NF + q] * sn;
        sr[q] = f[1 + NF + q] * cs - f[1 + q] * sn;
        t2[0][q] = cr[q] * cr[q];
        t2[1][q] = sr[q] * sr[q];
        t2[2][q] = cr[q] * sr[q];
    }
#endif
}

/* ITU-T G.711 round trips of one sample (as dtmfguard.dsp.g711: rounded half to even, clipped to int16) */
static inline int
to_int16_sample(double v)
{
    double r = nearbyint(v); /* the default rounding mode: half to even, as numpy's round */
    if (!(r >= -32768.0))
        r = -32768.0;
    if (r > 32767.0)
        r = 32767.0;
    return (int)r;
}

static inline int
top_bit(int v) /* floor(log2(v)) for v >= 1 */
{
    int b = 0;
    while (v >> (b + 1))
        b++;
    return b;
}

static double
ulaw_round_trip(double v)
{
    const int x = to_int16_sample(v);
    const int q = x >= 0 ? (x & ~3) : -((-x + 3) & ~3); /* (x >> 2) << 2, rounding toward minus infinity */
    int mag = q < 0 ? -q : q;
    if (mag > 32635)
        mag = 32635;
    mag += 0x84;
    int exponent = top_bit(mag) - 7;
    exponent = exponent < 0 ? 0 : exponent > 7 ? 7 : exponent;
    const int mant = (mag >> (exponent + 3)) & 0x0F;
    const int out = (((mant << 3) + 0x84) << exponent) - 0x84;
    return (double)(x < 0 ? -out : out);
}

static double
alaw_round_trip(double v)
{
    const int x = to_int16_sample(v);
    const int positive = x >= 0;
    int mag = (positive ? x : -x - 1) >> 3;
    mag = mag < 0 ? 0 : mag > 4095 ? 4095 : mag;
    const int seg = mag < 32 ? 0 : top_bit(mag < 1 ? 1 : mag) - 4;
    const int mant = seg == 0 ? mag >> 1 : (mag >> seg) & 0x0F;
    const int m2 = seg == 0 ? (mant << 1) + 1 : ((mant << 1) + 33) << (seg - 1 > 0 ? seg - 1 : 0);
    const int lin = m2 << 3;
    return (double)(positive ? lin : -lin);
}

/* The pair the screen's test names in window w's fit of the n samples y, or -1 (Masker._fit_named: every sum in
 * its order) */
static int
fit_named(const ScreenObject *o, Py_ssize_t w, const double *y, Py_ssize_t n)
{
    static const int row_of[NP] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    double e = y[0] * y[0], cr[NF], sr[NF], t2[3][NF], ex[NP];
    for (int q = 0; q < NF; q++) {
        cr[q] = o->ctab[0] * y[0];
        sr[q] = o->stab[0] * y[0];
    }
    for (Py_ssize_t j = 1; j < n; j++) {
        e = e + y[j] * y[j];
        for (int q = 0; q < NF; q++) {
            const int64_t idx = (o->freq[q] * (int64_t)j) % o->rate;
            cr[q] = cr[q] + y[j] * o->ctab[idx];
            sr[q] = sr[q] + y[j] * o->stab[idx];
        }
    }
    for (int q = 0; q < NF; q++) {
        t2[0][q] = cr[q] * cr[q];
        t2[1][q] = sr[q] * sr[q];
        t2[2][q] = cr[q] * sr[q];
    }
    pair_explained(o->quad + w * NT * NP, cr, sr, t2, ex);
    double r1, r2;
    const int best = best_two(ex, e, &r1, &r2);
    const int br = row_of[best], bc = 4 + best % 4;
    const double v[4] = {cr[br], sr[br], cr[bc], sr[bc]};
    const double *g = o->ginv + w * NP * 16 + best * 16;
    double cf[4];
    for (int a = 0; a < 4; a++)
        cf[a] = ((g[4 * a] * v[0] + g[4 * a + 1] * v[1]) + g[4 * a + 2] * v[2]) + g[4 * a + 3] * v[3];
    const double ar2 = cf[0] * cf[0] + cf[1] * cf[1];
    const double ac2 = cf[2] * cf[2] + cf[3] * cf[3];
    const double amp = ar2 < ac2 ? ar2 : ac2;
    if (ar2 <= o->twist2 * ac2 && ac2 <= o->twist2 * ar2 && e > 0.0 && amp >= o->screen_amp2
        && r1 <= o->screen_resid * e && r2 >= o->screen_unique * r1)
        return best;
    return -1;
}

/* The pair the screen's test names in window w's samples xw (n of them) after a µ-law, else an A-law round trip,
 * or -1 (Masker._g711_named: every sum in its order) */
static int
g711_named(const ScreenObject *o, Py_ssize_t w, const double *xw, Py_ssize_t n)
{
    double y[256];
    if (n > 256)
        return -1; /* (windows of 2-4 ms at 8 kHz: 16-32 samples) */
    for (int law = 0; law < 2; law++) {
        for (Py_ssize_t j = 0; j < n; j++)
            y[j] = law == 0 ? ulaw_round_trip(xw[j]) : alaw_round_trip(xw[j]);
        const int p = fit_named(o, w, y, n);
        if (p >= 0)
            return p;
    }
    return -1;
}

/* the screen of nh hops on x (nb = kmax + nh - 1 whole blocks from absolute block b0): 1 if any hop has a
 * suspect or weak pair, 0 if none, -1 on a memory error (exception set) */
DTMFGUARD_CLONES static int
do_screen(ScreenObject *o, const double *x, int64_t b0, Py_ssize_t nh, int64_t *sus, int64_t *conf, double *ccoef,
          int64_t *weak, double *expl, int need_expl)
{
    const Py_ssize_t hop = o->hop, rate = o->rate, nw = o->nw, kmax = o->kmax;
    const Py_ssize_t nb = kmax + nh - 1;
    int nlev = (int)o->lev[nw - 1] + 1;
    const Py_ssize_t need = (Py_ssize_t)nlev * nb * NFEAT;
    if (o->scratch_len < need) {
        double *s = (double *)realloc(o->scratch, (size_t)need * sizeof(double));
        if (s == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        o->scratch = s;
        o->scratch_len = need;
    }
    double *L0 = o->scratch;
    /* level 0: per block energy and correlations (from the cache when the block's samples match) */
    for (Py_ssize_t j = 0; j < nb; j++) {
        const int64_t blk = (int64_t)b0 + j;
        const double *xb = x + j * hop;
        const int slot = (int)(((blk % CACHE) + CACHE) % CACHE);
        double *feat = L0 + j * NFEAT;
        if (o->tag[slot] == blk && memcmp(o->csamp + slot * hop, xb, (size_t)hop * sizeof(double)) == 0) {
            memcpy(feat, o->cfeat + slot * NFEAT, NFEAT * sizeof(double));
        } else {
            block_features(o, xb, blk * hop, feat);
            o->tag[slot] = blk;
            memcpy(o->csamp + slot * hop, xb, (size_t)hop * sizeof(double));
            memcpy(o->cfeat + slot * NFEAT, feat, NFEAT * sizeof(double));
        }
    }
    double total = L0[0];
    for (Py_ssize_t j = 1; j < nb; j++)
        total = total + L0[j * NFEAT];
    for (Py_ssize_t i = 0; i < nh; i++) {
        sus[i] = -1;
        conf[i] = -1;
        weak[i] = -1;
    }
    memset(ccoef, 0, (size_t)(nh * 4) * sizeof(double));
    if (!(total >= o->skip_energy)) {
        memset(expl, 0, (size_t)(nh * NP) * sizeof(double));
        return 0;
    }
    /* level l holds sums of 2^l blocks: L_l[j] = L_{l-1}[j] + L_{l-1}[j + 2^(l-1)] */
    for (int l = 1; l < nlev; l++) {
        const Py_ssize_t half = (Py_ssize_t)1 << (l - 1), n = nb - ((Py_ssize_t)1 << l) + 1;
        const double *restrict prev = o->scratch + (Py_ssize_t)(l - 1) * nb * NFEAT;
        double *restrict cur = o->scratch + (Py_ssize_t)l * nb * NFEAT;
        for (Py_ssize_t j = 0; j < n * NFEAT; j++) /* (block j's features are j * NFEAT .. + NFEAT - 1) */
            cur[j] = prev[j] + prev[j + half * NFEAT];
    }
    char skipped_local[512], *skipped = nh <= 512 ? skipped_local : (char *)malloc((size_t)nh);
    if (skipped == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(skipped, 0, (size_t)nh);
    /* per hop: the first window named only through G.711 (pair + 16 * window), kept where no window names one */
    int64_t gs_local[512], *gs = nh <= 512 ? gs_local : (int64_t *)malloc((size_t)nh * sizeof(int64_t));
    if (gs == NULL) {
        if (skipped != skipped_local)
            free(skipped);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nh; i++)
        gs[i] = -1;
    int any = 0;
    for (Py_ssize_t w = 0; w < nw; w++) {
        const Py_ssize_t k = (Py_ssize_t)o->ks[w], lo = kmax - k;
        const double *lev = o->scratch + (Py_ssize_t)o->lev[w] * nb * NFEAT;
        const double *quad = o->quad + w * NT * NP;
        const double *ginv = o->ginv + w * NP * 16;
        const int last = w == nw - 1, isc = (int)o->isc[w];
        /* table index (f * window start) mod rate, advanced by f * hop per hop (no division per hop) */
        int32_t ri[NF], step[NF]; /* (rate < 2^30: Screen_init) */
        const int32_t rate32 = (int32_t)rate;
        {
            const int64_t start = ((((int64_t)b0 + lo) * hop) % rate + rate) % rate;
            for (int q = 0; q < NF; q++) {
                ri[q] = (int32_t)((o->freq[q] * start) % rate);
                step[q] = (int32_t)((o->freq[q] * hop) % rate);
            }
        }
        for (Py_ssize_t i = 0; i < nh; i++) {
            const Py_ssize_t j0 = lo + i;
            const double *f = lev + j0 * NFEAT;
            const double e = f[0];
            int32_t rh[NF]; /* this hop's table indices */
#ifdef HAVE_V4D
            {
                v8i r, st;
                memcpy(&r, ri, sizeof(r));
                memcpy(&st, step, sizeof(st));
                memcpy(rh, &r, sizeof(r));
                const v8i next = r + st, wrap = {rate32, rate32, rate32, rate32, rate32, rate32, rate32, rate32};
                r = next - (wrap & (next >= wrap));
                memcpy(ri, &r, sizeof(r));
            }
#else
            for (int q = 0; q < NF; q++) {
                const int32_t next = ri[q] + step[q];
                rh[q] = ri[q];
                ri[q] = next >= rate32 ? next - rate32 : next;
            }
#endif
            double cr[NF], sr[NF], t2[3][NF], ex[NP];
            /* a shorter window already named this hop's suspect (and its confirmation, where this window
             * could confirm): nothing this window finds would be kept */
            if (!last && sus[i] >= 0 && (!isc || conf[i] >= 0))
                continue;
            /* No pair explains more than gain * (strongest row power + strongest column power) (powers do
             * not depend on the phase reference, so they are taken before the rotation); when even that is
             * below the share every test of this window needs, no test can pass: skip the fits (the
             * longest window's explained energies are still produced when they are needed) */
            double prow = 0.0, pcol = 0.0;
#ifdef HAVE_V4D
            {
                const v4d rc = V4D_LOAD(f + 1), rs = V4D_LOAD(f + 1 + NF), cc = V4D_LOAD(f + 5), cs = V4D_LOAD(f + 5 + NF);
                const v4d pr = rc * rc + rs * rs, pc = cc * cc + cs * cs;
                for (int q = 0; q < 4; q++) {
                    prow = pr[q] > prow ? pr[q] : prow;
                    pcol = pc[q] > pcol ? pc[q] : pcol;
                }
            }
#else
            for (int q = 0; q < 4; q++) {
                const double pr = f[1 + q] * f[1 + q] + f[1 + NF + q] * f[1 + NF + q];
                const double pc = f[5 + q] * f[5 + q] + f[5 + NF + q] * f[5 + NF + q];
                prow = pr > prow ? pr : prow;
                pcol = pc > pcol ? pc : pcol;
            }
#endif
            if (o->gain[w] * (prow + pcol) < o->need[w] * e) {
                if (last) {
                    if (need_expl) {
                        rotate(o, f, rh, cr, sr, t2);
                        pair_explained(quad, cr, sr, t2, expl + i * NP);
                    } else {
                        skipped[i] = 1;
                    }
                }
                continue;
            }
            rotate(o, f, rh, cr, sr, t2);
            pair_explained(quad, cr, sr, t2, ex);
            double r1, r2;
            const int best = best_two(ex, e, &r1, &r2);
            const int br = best / 4, bc = 4 + best % 4;
            const double v[4] = {cr[br], sr[br], cr[bc], sr[bc]};
            const double *g = ginv + best * 16;
            double cf[4];
            for (int a = 0; a < 4; a++)
                cf[a] = ((g[4 * a] * v[0] + g[4 * a + 1] * v[1]) + g[4 * a + 2] * v[2]) + g[4 * a + 3] * v[3];
            const double ar2 = cf[0] * cf[0] + cf[1] * cf[1];
            const double ac2 = cf[2] * cf[2] + cf[3] * cf[3];
            const int shape = ar2 <= o->twist2 * ac2 && ac2 <= o->twist2 * ar2 && e > 0.0;
            const double amp = ar2 < ac2 ? ar2 : ac2;
            if (sus[i] < 0 && shape && amp >= o->screen_amp2 && r1 <= o->screen_resid * e
                && r2 >= o->screen_unique * r1) {
                sus[i] = best + 16 * (int64_t)w;
                any = 1;
            } else if (sus[i] < 0 && gs[i] < 0 && o->g711[w]) {
                /* a near miss: named if the agent's G.711 version of the window is (Masker._screen_numpy) */
                const double rx = o->g711_relax;
                if (ar2 <= rx * o->twist2 * ac2 && ac2 <= rx * o->twist2 * ar2 && e > 0.0 && rx * amp >= o->screen_amp2
                    && r1 <= rx * o->screen_resid * e && rx * r2 >= o->screen_unique * r1) {
                    const int p = g711_named(o, w, x + j0 * hop, k * hop);
                    if (p >= 0)
                        gs[i] = p + 16 * (int64_t)w;
                }
            }
            if (isc && conf[i] < 0 && shape && amp >= o->confirm_amp2 && r1 <= o->confirm_resid * e
                && r2 >= o->confirm_unique * r1) {
                conf[i] = best;
                memcpy(ccoef + 4 * i, cf, 4 * sizeof(double));
            }
            if (last) {
                if (shape && amp >= o->screen_amp2 && r1 <= o->weak_resid * e) {
                    weak[i] = best;
                    any = 1;
                }
                memcpy(expl + i * NP, ex, NP * sizeof(double));
            }
        }
    }
    for (Py_ssize_t i = 0; i < nh; i++)
        if (sus[i] < 0 && gs[i] >= 0) { /* named only through G.711: flagged by 16 * nw (Masker._step) */
            sus[i] = gs[i] + 16 * (int64_t)nw;
            any = 1;
        }
    if (gs != gs_local)
        free(gs);
    if (any) { /* the steps will read every hop's explained energies: fill the skipped ones */
        const Py_ssize_t w = nw - 1, lo = kmax - (Py_ssize_t)o->ks[w];
        const double *lev = o->scratch + (Py_ssize_t)o->lev[w] * nb * NFEAT;
        for (Py_ssize_t i = 0; i < nh; i++) {
            if (!skipped[i])
                continue;
            const double *f = lev + (lo + i) * NFEAT;
            const int64_t start = ((int64_t)b0 + lo + i) * hop;
            double cr[NF], sr[NF], t2[3][NF];
            int32_t rh[NF];
            for (int q = 0; q < NF; q++)
                rh[q] = (int32_t)(((o->freq[q] * start) % rate + rate) % rate);
            rotate(o, f, rh, cr, sr, t2);
            pair_explained(o->quad + w * NT * NP, cr, sr, t2, expl + i * NP);
        }
    }
    if (skipped != skipped_local)
        free(skipped);
    return any;
}

static PyObject *
Screen_screen(ScreenObject *o, PyObject *args)
{
    enum { B_SEG, B_SUS, B_CONF, B_CCOEF, B_WEAK, B_EXPL, NBUF };
    Py_buffer b[NBUF];
    memset(b, 0, sizeof(b));
    long long b0;
    int any = -1;
    if (o->ctab == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*Lw*w*w*w*w*", &b[B_SEG], &b0, &b[B_SUS], &b[B_CONF], &b[B_CCOEF],
                          &b[B_WEAK], &b[B_EXPL]))
        goto done;
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), I = (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t nh = b[B_SUS].len / I;
    if (nh < 1 || b[B_SUS].len % I || b[B_CONF].len != nh * I || b[B_WEAK].len != nh * I
        || b[B_CCOEF].len != nh * 4 * D || b[B_EXPL].len != nh * NP * D) {
        PyErr_SetString(PyExc_ValueError, "screen: bad output sizes");
        goto done;
    }
    if (b[B_SEG].len != (o->kmax + nh - 1) * o->hop * D) {
        PyErr_SetString(PyExc_ValueError, "screen: segment size does not match the hop count");
        goto done;
    }
    any = do_screen(o, (const double *)b[B_SEG].buf, (int64_t)b0, nh, (int64_t *)b[B_SUS].buf,
                    (int64_t *)b[B_CONF].buf, (double *)b[B_CCOEF].buf, (int64_t *)b[B_WEAK].buf,
                    (double *)b[B_EXPL].buf, 1);
done:
    for (int i = 0; i < NBUF; i++)
        if (b[i].obj != NULL)
            PyBuffer_Release(&b[i]);
    return any < 0 ? NULL : PyLong_FromLong(any);
}

/* state vector of Screen.run (Masker keeps the same values in attributes: _pack_state, _unpack_state) */
enum { S_ACTIVE, S_PAIR, S_MISSES, S_WEAK_PAIR, S_WEAK_RUN, S_HIT_PAIR, S_HIT_RUN, S_SUSPECT, S_PENDING, S_NEXT,
       S_SP_PAIR, S_SP_FIRST, S_SP_LAST, S_PENDING_DUE, S_E0, S_PRESS_DUE, S_REJECTED, S_CONCEAL,
       S_TICK_FIRST, S_TICK_END, S_TICK_EVERY, NSTATE };

/* a hop Masker._step judges with no press open (notch_inside_*: hops in [first, end) on a multiple of every) */
static inline int
inside_due(const int64_t *st, int64_t e)
{
    return st[S_TICK_EVERY] > 0 && e >= st[S_TICK_FIRST] && e < st[S_TICK_END] && e % st[S_TICK_EVERY] == 0;
}

/* 1 when a hop of first + k * hop (k < nh) is one (Masker._inside_in) */
static int
inside_in(const int64_t *st, int64_t first, Py_ssize_t nh, Py_ssize_t hop)
{
    if (st[S_TICK_EVERY] <= 0 || nh <= 0)
        return 0;
    const int64_t every = st[S_TICK_EVERY], last = first + (int64_t)(nh - 1) * hop;
    const int64_t lo = first > st[S_TICK_FIRST] ? first : st[S_TICK_FIRST];
    const int64_t hi = last < st[S_TICK_END] - 1 ? last : st[S_TICK_END] - 1;
    if (hi < lo)
        return 0;
    const int64_t up = lo >= 0 ? (lo + every - 1) / every * every : -((-lo) / every) * every;
    return up <= hi;
}

/* (pair, run) the per-hop steps leave after values[0..n) (Masker._track_run) */
static void
track_run(const int64_t *values, Py_ssize_t n, int64_t *pair, int64_t *run)
{
    const int64_t last = values[n - 1];
    if (last < 0) {
        *pair = -1;
        *run = 0;
        return;
    }
    Py_ssize_t k = 0;
    while (k < n && values[n - 1 - k] == last)
        k++;
    int64_t r = (int64_t)k;
    if (k == n && last == *pair)
        r += *run;
    *pair = last;
    *run = r;
}

static inline int16_t
to_int16(double v)
{
    v = nearbyint(v); /* round half to even, as numpy's round */
    return (int16_t)(v < -32768.0 ? -32768.0 : v > 32767.0 ? 32767.0 : v);
}

/* Masker._step for hop i when it only updates counters (nothing to open, close, notch, verify or
 * test for harmonics): returns 1 after updating the state, 0 (state untouched) when Python must take it */
static int
simple_step(const ScreenObject *o, int64_t *st, double *steady, int64_t e, int64_t sus, int64_t conf, int64_t weak,
            const double *ex)
{
    if (!st[S_ACTIVE] && inside_due(st, e))
        return 0; /* notch_inside_*: output windows inside a keypad burst's notch to judge */
    if (st[S_REJECTED] || st[S_CONCEAL])
        return 0; /* pairs found to be no keypad are remembered, or a made-up span is pending
                   * (Masker.conceal): Python takes every hop */
    if (st[S_ACTIVE] && e >= st[S_PRESS_DUE])
        return 0; /* the press is tested for a keypad's frequencies */
    int64_t sp_last = st[S_SP_LAST];
    int64_t weak_pair = st[S_WEAK_PAIR], weak_run = st[S_WEAK_RUN], hit_pair = st[S_HIT_PAIR],
            hit_run = st[S_HIT_RUN];
    if (weak >= 0 && weak == weak_pair)
        weak_run++;
    else
        weak_pair = weak, weak_run = weak >= 0;
    const int64_t hit = sus >= 0 ? sus % 16 : -1;
    if (hit >= 0 && hit == hit_pair)
        hit_run++;
    else
        hit_pair = hit, hit_run = hit >= 0;
    int64_t misses = st[S_MISSES], pair = st[S_PAIR];
    double stdy = *steady;
    if (st[S_ACTIVE]) {
        if (conf >= 0) {
            if (st[S_SUSPECT])
                return 0; /* the suspect ends here */
            if (pair != conf)
                pair = conf, stdy = 0.0;
            if (ex[conf] > stdy)
                stdy = ex[conf];
            misses = 0;
        } else if (ex[pair] >= o->hold_ratio * stdy || (sus >= 0 && sus % 16 == pair) || weak == pair) {
            misses = 0;
        } else if (misses + 1 >= o->close_hops) {
            return 0; /* the press ends here */
        } else {
            misses++;
        }
    } else {
        if (conf >= 0 || sus >= 0 || hit_run >= o->hit_hops)
            return 0; /* a press or a suspect to open */
        if (st[S_SUSPECT] == 2)
            return 0; /* a silent suspect: Python looks for its pair in the short windows */
        if (st[S_SUSPECT] && weak == st[S_SP_PAIR])
            sp_last = e; /* the suspect's pair is still there */
        else if (weak_run >= o->weak_hops && (weak_run - o->weak_hops) % o->weak_hops == 0)
            return 0; /* a weak run to test */
        if (st[S_PENDING] && st[S_PENDING_DUE] <= e)
            return 0; /* a pending suspect to verify */
        if (st[S_SUSPECT] && (sp_last - st[S_SP_FIRST] >= o->persist || e - sp_last >= o->suspect_close))
            return 0; /* the suspect becomes a press, or ends */
    }
    st[S_SP_LAST] = sp_last;
    st[S_WEAK_PAIR] = weak_pair, st[S_WEAK_RUN] = weak_run, st[S_HIT_PAIR] = hit_pair, st[S_HIT_RUN] = hit_run;
    st[S_MISSES] = misses, st[S_PAIR] = pair;
    *steady = stdy;
    return 1;
}

/* simple steps from hop i0: the first hop Python must take (nh: none) */
static Py_ssize_t
simple_steps(const ScreenObject *o, Py_ssize_t i0, Py_ssize_t nh, int64_t *st, double *steady, const int64_t *sus,
             const int64_t *conf, const int64_t *weak, const double *expl)
{
    Py_ssize_t i = i0;
    while (i < nh && simple_step(o, st, steady, st[S_E0] + (int64_t)i * o->hop, sus[i], conf[i], weak[i],
                                 expl + i * NP))
        i++;
    return i;
}

/* ------------------------------------------------------------------ the output side
 *
 * Output(*, hop, fade, guard, fade_ramp, notch_len, notch_win, notch_basis, notch_pinv, onset_len, onset_step,
 *        onset_basis, onset_ginv, onset_ratio, onset_floor, fade_notch, notch_ramp_in, notch_ramp_out, notch_cols)
 *
 *   The constants of the masker's output (Masker.native_output_constants, by name): the fade ramp
 *   [fade], the band notch (block length, sin^2 window [notch_len], the band basis [notch_len][notch_cols] and its
 *   pseudo-inverse [notch_cols][notch_len]), and the onset walk-back (2 ms windows every onset_step samples, basis
 *   [onset_len][16], inverse Gram matrix per pair [16][4][4], the share of the steady energy, at least
 *   onset_floor, that still counts as tone), and the band notch's gain per unit mask weight in a fade
 *   (fade_notch, at most 1 in all), the length of a band notch's ramp-in (notch_ramp_in, at most guard) and of its
 *   ramp-out (notch_ramp_out, at most guard: MaskerParams.notch_tail_ms), and the band basis's column count (notch_cols, 1 to NOTCH_COLS_MAX).
 *
 * Output.render(store, buf_start, start, n, spans, notches, table, out)
 *   out[i] for input position start + i: Masker._apply (weights of the spans, band notches, the mask
 *   table indexed by absolute position) as int16 (rounded half to even, clipped) or float64 (unrounded),
 *   by the itemsize of ``out``.  spans / notches: int64 [1 + 2 * cap]: count, then (start, end) pairs,
 *   end = INT64_MAX while open.  store[0] is input position buf_start.
 * Output.onset(store, buf_start, e, pair, steady, lim) -> int: Masker._onset.
 *
 * Every sum is taken in the order of the numpy path (Masker._notched, Masker._onset_explained): the notch
 * coefficients sample by sample, the projection term by term; the fits sample by sample, then term by term.
 */
#define OPEN_END INT64_MAX
#define NOTCH_COLS_MAX 64 /* the band notch's basis columns (16 at the nominal frequencies, then the band's) */

typedef struct {
    PyObject_HEAD
    Py_ssize_t hop, fade, guard, nl, olen, ostep, rin, rout, nk;
    double *ramp;   /* [fade] */
    double *nwin;   /* [nl] */
    double *nbasis; /* [nl][nk] */
    double *npinv;  /* [nk][nl] */
    double *obasis; /* [olen][16] */
    double *oginv;  /* [16][16] */
    double oratio, ofloor, fnotch;
    double *scratch; /* w, gain and block projections of one render */
    Py_ssize_t scratch_len;
    int ready;
} OutputObject;

static void
Output_dealloc(OutputObject *self)
{
    free(self->ramp); free(self->nwin); free(self->nbasis); free(self->npinv); free(self->obasis);
    free(self->oginv); free(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static double *
alloc_doubles(Py_ssize_t n)
{
    return (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
}

static int
Output_init(OutputObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"hop", "fade", "guard", "fade_ramp", "notch_len", "notch_win", "notch_basis",
                            "notch_pinv", "onset_len", "onset_step", "onset_basis", "onset_ginv", "onset_ratio",
                            "onset_floor", "fade_notch", "notch_ramp_in", "notch_ramp_out", "notch_cols",
                            NULL};
    PyObject *ramp_o, *nwin_o, *nbasis_o, *npinv_o, *obasis_o, *oginv_o;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Output: already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$nnnOnOOOnnOOdddnnn", names, &self->hop, &self->fade, &self->guard,
                                     &ramp_o, &self->nl, &nwin_o, &nbasis_o, &npinv_o, &self->olen, &self->ostep,
                                     &obasis_o, &oginv_o, &self->oratio, &self->ofloor,
                                     &self->fnotch, &self->rin, &self->rout, &self->nk))
        return -1;
    if (kw == NULL || PyDict_Size(kw) != (Py_ssize_t)(sizeof(names) / sizeof(names[0]) - 1)) {
        PyErr_SetString(PyExc_TypeError, "Output: every constant must be given, by name");
        return -1;
    }
    if (self->hop < 1 || self->fade < 0 || self->guard < 0 || self->nl < 0 || self->nl % 2 || self->olen < 1
        || self->ostep < 1 || !(self->fnotch >= 1.0) || self->rin < 0 || self->rin > self->guard || self->rout < 0
        || self->rout > self->guard || self->nk < 1
        || self->nk > NOTCH_COLS_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "Output: bad hop, fade, guard, notch or onset length, fade_notch, notch_ramp_in, notch_ramp_out or "
                        "notch_cols");
        return -1;
    }
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), nl = self->nl;
    self->ramp = alloc_doubles(self->fade);
    self->nwin = alloc_doubles(nl);
    self->nbasis = alloc_doubles(nl * self->nk);
    self->npinv = alloc_doubles(nl * self->nk);
    self->obasis = alloc_doubles(self->olen * 16);
    self->oginv = alloc_doubles(16 * 16);
    if (!self->ramp || !self->nwin || !self->nbasis || !self->npinv || !self->obasis || !self->oginv) {
        PyErr_NoMemory();
        return -1;
    }
    if (copy_buffer(ramp_o, D, self->fade, self->ramp, "fade_ramp") < 0
        || copy_buffer(nwin_o, D, nl, self->nwin, "notch_win") < 0
        || copy_buffer(nbasis_o, D, nl * self->nk, self->nbasis, "notch_basis") < 0
        || copy_buffer(npinv_o, D, nl * self->nk, self->npinv, "notch_pinv") < 0
        || copy_buffer(obasis_o, D, self->olen * 16, self->obasis, "onset_basis") < 0
        || copy_buffer(oginv_o, D, 16 * 16, self->oginv, "onset_ginv") < 0)
        return -1;
    self->ready = 1;
    return 0;
}

static inline int64_t
floor_div(int64_t a, int64_t b)
{
    const int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline int64_t
floor_mod(int64_t a, int64_t b)
{
    const int64_t r = a % b;
    return r < 0 ? r + b : r;
}

/* how output [start, start + n) is made (Masker._output_mode): 0 delayed input, 1 wholly one span's mask,
 * 2 mixed */
static int
output_mode(Py_ssize_t fade, const int64_t *spans, Py_ssize_t ns, const int64_t *notches, Py_ssize_t nn,
            int64_t start, Py_ssize_t n)
{
    const int64_t end = start + n;
    int touched = 0;
    for (Py_ssize_t k = 0; k < ns; k++) {
        const int64_t s = spans[2 * k], e = spans[2 * k + 1];
        const int open = e == OPEN_END;
        if (s <= start && (open || e >= end))
            return 1;
        if ((open || e + fade > start) && s - fade < end)
            touched = 1;
    }
    if (touched)
        return 2;
    for (Py_ssize_t k = 0; k < nn; k++) {
        const int64_t s = notches[2 * k], e = notches[2 * k + 1];
        if (s < end && (e == OPEN_END || e > start))
            return 2;
    }
    return 0;
}

/* 1 when Masker._expire would retire a span or a notch once output reaches ``emitted`` */
static int
expire_due(Py_ssize_t fade, const int64_t *spans, Py_ssize_t ns, const int64_t *notches, Py_ssize_t nn,
           int64_t emitted)
{
    for (Py_ssize_t k = 0; k < nn; k++)
        if (notches[2 * k + 1] != OPEN_END && notches[2 * k + 1] < emitted)
            return 1;
    for (Py_ssize_t k = 0; k < ns; k++)
        if (spans[2 * k + 1] != OPEN_END && spans[2 * k + 1] + fade < emitted - fade)
            return 1;
    return 0;
}

static inline void
store_out(void *out, int is16, Py_ssize_t i, double v)
{
    if (is16)
        ((int16_t *)out)[i] = to_int16(v);
    else
        ((double *)out)[i] = v;
}

/* Masker._apply on [start, start + n) into out (int16 when is16, else float64); 0, or -1 with an exception (built
 * for AVX2 too, as finish_core) */
DTMFGUARD_CLONES static int
render_core(OutputObject *o, const double *buf, Py_ssize_t buflen, int64_t buf_start, int64_t start, Py_ssize_t n,
            const int64_t *spans, Py_ssize_t ns, const int64_t *notches, Py_ssize_t nn, const double *table,
            Py_ssize_t period, void *out, int is16)
{
    const int64_t f = o->fade, end = start + n;
    if (start - buf_start < 0 || end - buf_start > buflen) {
        PyErr_SetString(PyExc_ValueError, "render: output span outside the delay line");
        return -1;
    }
    const double *raw = buf + (start - buf_start);
    const Py_ssize_t nl = o->nl, h = nl / 2;
    Py_ssize_t need = 2 * n;
    if (o->scratch_len < need) {
        double *s = (double *)realloc(o->scratch, (size_t)need * sizeof(double));
        if (s == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        o->scratch = s;
        o->scratch_len = need;
    }
    double *w = o->scratch, *g = o->scratch + n;
    memset(w, 0, (size_t)n * sizeof(double));
    int anyw = 0;
    for (Py_ssize_t k = 0; k < ns; k++) {
        const int64_t s = spans[2 * k], e = spans[2 * k + 1] == OPEN_END ? end + f + 1 : spans[2 * k + 1];
        if (e + f <= start || s - f >= end)
            continue;
        anyw = 1;
        for (int64_t p = s > start ? s : start, hi = e < end ? e : end; p < hi; p++)
            w[p - start] = 1.0;
        if (f) {
            for (int64_t p = s - f > start ? s - f : start, hi = s < end ? s : end; p < hi; p++) {
                const double v = o->ramp[s - p - 1];
                if (v > w[p - start])
                    w[p - start] = v;
            }
            for (int64_t p = e > start ? e : start, hi = e + f < end ? e + f : end; p < hi; p++) {
                const double v = o->ramp[p - e];
                if (v > w[p - start])
                    w[p - start] = v;
            }
        }
    }
    /* the band notch's gain (Masker._notched) */
    Py_ssize_t i0 = -1, i1 = -1;
    if (nl) {
        memset(g, 0, (size_t)n * sizeof(double));
        const double r = (double)(o->rout + 1), rs = (double)(o->rin + 1); /* ramp out, ramp in */
        const int64_t ri = o->rout + 1;
        for (Py_ssize_t k = 0; k < nn; k++) {
            const int64_t s = notches[2 * k], e = notches[2 * k + 1] == OPEN_END ? end + ri : notches[2 * k + 1];
            for (int64_t p = s > start ? s : start, hi = e < end ? e : end; p < hi; p++) {
                const double a = (double)(p - s + 1) / rs, b = (double)(e - p) / r;
                double v = a < b ? a : b;
                v = v < 1.0 ? v : 1.0;
                if (v > g[p - start])
                    g[p - start] = v;
            }
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (w[i] >= 1.0)
                g[i] = 0.0;
            else if (w[i] > 0.0) { /* Masker._notched: min(fade_notch * w, 1), if above the notch's own */
                double v = o->fnotch * w[i];
                v = v < 1.0 ? v : 1.0;
                if (v > g[i])
                    g[i] = v;
            }
            if (g[i] > 0.0) {
                if (i0 < 0)
                    i0 = i;
                i1 = i;
            }
        }
    }
    double *proj = NULL;
    int64_t first = 0;
    if (i0 >= 0) { /* the blocks' projections on the DTMF band, in the numpy path's order */
        first = floor_div(start + i0, h) - 1;
        const int64_t last = floor_div(start + i1, h);
        const Py_ssize_t nblk = (Py_ssize_t)(last - first + 1);
        if (first * h - buf_start < 0 || last * h + nl - buf_start > buflen) {
            PyErr_SetString(PyExc_ValueError, "render: notch block outside the delay line");
            return -1;
        }
        need = 2 * n + nblk * nl;
        if (o->scratch_len < need) {
            double *s = (double *)realloc(o->scratch, (size_t)need * sizeof(double));
            if (s == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            o->scratch = s;
            o->scratch_len = need;
            w = o->scratch;
            g = o->scratch + n;
        }
        proj = o->scratch + 2 * n;
        for (Py_ssize_t b = 0; b < nblk; b++) {
            const double *y = buf + ((first + b) * h - buf_start);
            const Py_ssize_t nk = o->nk;
            double coef[NOTCH_COLS_MAX] = {0.0}; /* (nk >= 1: Output_init) */
            for (Py_ssize_t k = 0; k < nk; k++)
                coef[k] = y[0] * o->npinv[k * nl];
            for (Py_ssize_t j = 1; j < nl; j++)
                for (Py_ssize_t k = 0; k < nk; k++)
                    coef[k] = coef[k] + y[j] * o->npinv[k * nl + j];
            double *pr = proj + b * nl;
            for (Py_ssize_t i = 0; i < nl; i++) {
                double acc = coef[0] * o->nbasis[i * nk];
                for (Py_ssize_t k = 1; k < nk; k++)
                    acc = acc + coef[k] * o->nbasis[i * nk + k];
                pr[i] = acc;
            }
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = raw[i];
        if (i0 >= 0 && g[i] > 0.0) {
            const int64_t pos = start + i, blk = floor_div(pos, h);
            const Py_ssize_t u1 = (Py_ssize_t)(pos - blk * h), u0 = u1 + h;
            const double band = o->nwin[u0] * proj[(blk - 1 - first) * nl + u0]
                                + o->nwin[u1] * proj[(blk - first) * nl + u1];
            v = v - g[i] * band;
        }
        if (anyw && w[i] > 0.0) {
            const double m = period ? table[floor_mod(start + i, period)] : 0.0;
            v = (1.0 - w[i]) * v + w[i] * m;
        }
        store_out(out, is16, i, v);
    }
    return 0;
}

static int
span_list(Py_buffer *b, const int64_t **list, Py_ssize_t *count, const char *name)
{
    const Py_ssize_t I = (Py_ssize_t)sizeof(int64_t);
    const int64_t *a = (const int64_t *)b->buf;
    if (b->len % I || b->len < I || a[0] < -1 || (2 * a[0] + 1) * I > b->len) {
        PyErr_Format(PyExc_ValueError, "%s: count and pairs do not fit the array", name);
        return -1;
    }
    *list = a + 1;
    *count = (Py_ssize_t)a[0];
    return 0;
}

PyDoc_STRVAR(render_doc,
"render(store, buf_start, start, n, spans, notches, table, out)\n\n"
"Masker._apply for input positions [start, start + n) into out (int16: rounded and clipped; float64).");

static PyObject *
Output_render(OutputObject *o, PyObject *args)
{
    enum { B_STORE, B_SPANS, B_NOTCHES, B_TABLE, B_OUT, NBUF };
    Py_buffer b[NBUF];
    memset(b, 0, sizeof(b));
    long long buf_start, start;
    Py_ssize_t n;
    int ok = -1;
    if (!o->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Output: not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*LLny*y*y*w*", &b[B_STORE], &buf_start, &start, &n, &b[B_SPANS], &b[B_NOTCHES],
                          &b[B_TABLE], &b[B_OUT]))
        goto done;
    const Py_ssize_t D = (Py_ssize_t)sizeof(double);
    const int64_t *spans, *notches;
    Py_ssize_t ns, nn;
    if (span_list(&b[B_SPANS], &spans, &ns, "spans") < 0 || span_list(&b[B_NOTCHES], &notches, &nn, "notches") < 0)
        goto done;
    if (n < 0 || ns < 0 || nn < 0 || b[B_STORE].len % D || b[B_TABLE].len % D
        || !(b[B_OUT].len == n * (Py_ssize_t)sizeof(int16_t) || b[B_OUT].len == n * D)) {
        PyErr_SetString(PyExc_ValueError, "render: bad sizes");
        goto done;
    }
    ok = render_core(o, (const double *)b[B_STORE].buf, b[B_STORE].len / D, (int64_t)buf_start, (int64_t)start, n,
                     spans, ns, notches, nn, (const double *)b[B_TABLE].buf, b[B_TABLE].len / D, b[B_OUT].buf,
                     b[B_OUT].len == n * (Py_ssize_t)sizeof(int16_t) && n > 0 ? 1 : 0);
done:
    for (int i = 0; i < NBUF; i++)
        if (b[i].obj != NULL)
            PyBuffer_Release(&b[i]);
    if (ok < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Masker._onset: the first sample of the last run of 2 ms windows carrying the pair, or lim */
static int64_t
onset_core(const OutputObject *o, const double *buf, int64_t buf_start, int64_t e, int pair, double steady,
           int64_t lim)
{
    const int64_t lo = lim - o->olen > buf_start ? lim - o->olen : buf_start;
    const int64_t len = e - lo;
    if (len < o->olen)
        return lim;
    const int64_t nwin = (len - o->olen) / o->ostep + 1;
    const double thr = o->oratio * (steady > o->ofloor ? steady : o->ofloor);
    const int r = pair / 4, c = pair % 4;
    const int cols[4] = {r, 8 + r, 4 + c, 12 + c};
    const double *gi = o->oginv + 16 * pair;
    int64_t i = nwin - 1;
    int found = 0;
    for (; i >= 0; i--) {
        const double *x = buf + (lo + i * o->ostep - buf_start);
        double v[4], energy = x[0] * x[0];
        for (int a = 0; a < 4; a++)
            v[a] = x[0] * o->obasis[cols[a]];
        for (Py_ssize_t j = 1; j < o->olen; j++) {
            for (int a = 0; a < 4; a++)
                v[a] = v[a] + x[j] * o->obasis[j * 16 + cols[a]];
            energy = energy + x[j] * x[j];
        }
        double beta[4];
        for (int a = 0; a < 4; a++)
            beta[a] = ((gi[4 * a] * v[0] + gi[4 * a + 1] * v[1]) + gi[4 * a + 2] * v[2]) + gi[4 * a + 3] * v[3];
        const double ex = ((v[0] * beta[0] + v[1] * beta[1]) + v[2] * beta[2]) + v[3] * beta[3];
        const double d = energy - ex;
        const int carrying = energy - (d > 0.0 ? d : 0.0) >= thr;
        if (!found) {
            if (carrying)
                found = 1;
        } else if (!carrying) {
            return lo + (i + 1) * o->ostep;
        }
    }
    return found ? lo : lim;
}

PyDoc_STRVAR(onset_doc,
"onset(store, buf_start, e, pair, steady, lim) -> int\n\n"
"Masker._onset: walk back from hop e to the first 2 ms window still carrying the pair's energy.");

static PyObject *
Output_onset(OutputObject *o, PyObject *args)
{
    Py_buffer b;
    long long buf_start, e, lim;
    int pair;
    double steady;
    if (!o->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Output: not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*LLidL", &b, &buf_start, &e, &pair, &steady, &lim))
        return NULL;
    const Py_ssize_t D = (Py_ssize_t)sizeof(double);
    const int64_t lo = (int64_t)lim - o->olen > buf_start ? (int64_t)lim - o->olen : (int64_t)buf_start;
    if (b.len % D || pair < 0 || pair >= NP || e - buf_start > b.len / D || (e > lo && lo < buf_start)) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "onset: bad pair or span outside the delay line");
        return NULL;
    }
    const int64_t r = onset_core(o, (const double *)b.buf, (int64_t)buf_start, (int64_t)e, pair, steady,
                                 (int64_t)lim);
    PyBuffer_Release(&b);
    return PyLong_FromLongLong((long long)r);
}

static PyMethodDef Output_methods[] = {
    {"render", (PyCFunction)Output_render, METH_VARARGS, render_doc},
    {"onset", (PyCFunction)Output_onset, METH_VARARGS, onset_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject OutputType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dtmfguard.dsp._masker_native.Output",
    .tp_doc = PyDoc_STR("The masker's output side (notches, fades, mask, onset walk-back); see native/masker.c."),
    .tp_basicsize = sizeof(OutputObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Output_init,
    .tp_dealloc = (destructor)Output_dealloc,
    .tp_methods = Output_methods,
};

PyDoc_STRVAR(bind_doc,
"bind(output, store, keep, delay, state, steady, table, has_table, spans, notches,\n"
"     suspect, conf, conf_coef, weak, expl)\n\n"
"Hold the masker's buffers for run() and finish(): the delay line (store[:keep] holds the last keep input\n"
"samples between frames), the state vector, the mask table by absolute position (empty: silence; has_table\n"
"0: a mask Python makes), the span and notch lists (int64 [1 + 2 * cap]: count, then (start, end), end\n"
"INT64_MAX while open; count -1: Python renders) and the screen outputs (sized for one batch of hops).");

static PyObject *
Screen_bind(ScreenObject *o, PyObject *args)
{
    PyObject *output, *objs[NBB];
    Py_ssize_t keep, delay;
    int has_table;
    if (o->ctab == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!OnnOOOiOOOOOOO", &OutputType, &output, &objs[BB_STORE], &keep, &delay,
                          &objs[BB_STATE], &objs[BB_STEADY], &objs[BB_TABLE], &has_table, &objs[BB_SPANS],
                          &objs[BB_NOTCHES], &objs[BB_SUS], &objs[BB_CONF], &objs[BB_CCOEF], &objs[BB_WEAK],
                          &objs[BB_EXPL]))
        return NULL;
    unbind(o);
    for (int i = 0; i < NBB; i++) {
        const int ro = i == BB_TABLE || i == BB_SPANS || i == BB_NOTCHES;
        if (PyObject_GetBuffer(objs[i], &o->bb[i], ro ? PyBUF_C_CONTIGUOUS : PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
            unbind(o);
            return NULL;
        }
    }
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), I = (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t cap = o->bb[BB_SUS].len / I;
    const OutputObject *out = (const OutputObject *)output;
    if (!out->ready || out->hop != o->hop || keep < delay || delay < 0 || o->bb[BB_STORE].len % D
        || o->bb[BB_STORE].len / D < keep || o->bb[BB_STATE].len != NSTATE * I || o->bb[BB_STEADY].len != D
        || o->bb[BB_TABLE].len % D || o->bb[BB_SPANS].len % I || o->bb[BB_SPANS].len < I
        || o->bb[BB_NOTCHES].len % I || o->bb[BB_NOTCHES].len < I || cap < 1 || o->bb[BB_SUS].len % I
        || o->bb[BB_CONF].len != cap * I || o->bb[BB_WEAK].len != cap * I || o->bb[BB_CCOEF].len != cap * 4 * D
        || o->bb[BB_EXPL].len != cap * NP * D) {
        unbind(o);
        PyErr_SetString(PyExc_ValueError, "bind: bad sizes");
        return NULL;
    }
    Py_INCREF(output);
    o->output = output;
    o->keep = keep;
    o->delay = delay;
    o->cap = cap;
    o->has_table = has_table != 0;
    o->bound = 1;
    Py_RETURN_NONE;
}

/* Append an int16 frame to the bound delay line and screen its hops, settling them when every hop is one of
 * the cases Masker._decide_batch settles without the per-hop steps (nothing to track, a steady press) or a
 * step that only updates counters: 0 done, 1 the per-hop steps must continue in Python from hop st[S_NEXT],
 * -1 error (exception set) */
static int
frame_core(ScreenObject *o, const int16_t *chunk, Py_ssize_t n, int64_t pos, int64_t next_hop)
{
    const Py_ssize_t hop = o->hop, keep = o->keep, cap = o->cap;
    double *store = (double *)o->bb[BB_STORE].buf;
    int64_t *st = (int64_t *)o->bb[BB_STATE].buf;
    double *steady = (double *)o->bb[BB_STEADY].buf;
    int64_t *sus = (int64_t *)o->bb[BB_SUS].buf, *conf = (int64_t *)o->bb[BB_CONF].buf,
            *weak = (int64_t *)o->bb[BB_WEAK].buf;
    double *expl = (double *)o->bb[BB_EXPL].buf;
    if (pos < 0 || next_hop % hop || o->bb[BB_STORE].len / (Py_ssize_t)sizeof(double) < keep + n) {
        PyErr_SetString(PyExc_ValueError, "run: bad sizes or positions");
        return -1;
    }
    const int64_t new_pos = pos + n, buf_start = pos - keep;
    const int64_t last_hop = (new_pos / hop) * hop;
    Py_ssize_t nh = last_hop >= next_hop ? (Py_ssize_t)((last_hop - next_hop) / hop + 1) : 0;
    const int64_t first = next_hop - (int64_t)o->kmax * hop;
    if (nh > cap || (nh > 0 && first < buf_start)) {
        PyErr_SetString(PyExc_ValueError, "run: too many hops for the outputs or the delay line");
        return -1;
    }
    if (st[S_ACTIVE] && (st[S_PAIR] < 0 || st[S_PAIR] >= NP)) {
        PyErr_SetString(PyExc_ValueError, "run: bad pair");
        return -1;
    }
    st[S_E0] = next_hop;
    for (Py_ssize_t i = 0; i < n; i++)
        store[keep + i] = (double)chunk[i];
    if (nh > 0) {
        const int64_t b0 = first >= 0 ? first / hop : -((-first + hop - 1) / hop);
        int any = do_screen(o, store + (first - buf_start), b0, nh, sus, conf, (double *)o->bb[BB_CCOEF].buf, weak,
                            expl, st[S_ACTIVE] || st[S_SUSPECT] || st[S_PENDING] || st[S_CONCEAL]);
        if (any < 0)
            return -1;
        if (!any && !st[S_ACTIVE] && !st[S_SUSPECT] && !st[S_PENDING] && !st[S_CONCEAL]
            && !inside_in(st, next_hop, nh, hop)) {
            st[S_WEAK_PAIR] = -1, st[S_WEAK_RUN] = 0, st[S_HIT_PAIR] = -1, st[S_HIT_RUN] = 0;
        } else if (st[S_ACTIVE] && st[S_PRESS_DUE] > next_hop + (int64_t)(nh - 1) * hop
                   && !st[S_REJECTED] && !st[S_CONCEAL]) {
            /* Masker._steady_press: every hop confirms the press's pair or holds it */
            const int64_t p = st[S_PAIR];
            double run = *steady;
            for (Py_ssize_t i = 0; i < nh; i++) {
                const int same = conf[i] == p;
                if (!(conf[i] < 0 || same))
                    goto stepwise;
                const double e = expl[i * NP + p], v = same ? e : *steady;
                if (v > run)
                    run = v;
                if (!(same || e >= o->hold_ratio * run || weak[i] == p || (sus[i] >= 0 && sus[i] % 16 == p)))
                    goto stepwise;
            }
            *steady = run;
            st[S_MISSES] = 0;
            track_run(weak, nh, &st[S_WEAK_PAIR], &st[S_WEAK_RUN]);
            for (Py_ssize_t i = 0; i < nh; i++) /* hits: the suspect's pair; conf is free now */
                conf[i] = sus[i] >= 0 ? sus[i] % 16 : -1;
            track_run(conf, nh, &st[S_HIT_PAIR], &st[S_HIT_RUN]);
        } else {
        stepwise:;
            const Py_ssize_t i = simple_steps(o, 0, nh, st, steady, sus, conf, weak, expl);
            if (i < nh) {
                st[S_NEXT] = i; /* hops before i are stepped; Python takes hop i */
                return 1;
            }
        }
    }
    return 0;
}

/* The output of input positions [pos - delay, + n) once their hops are decided (the delay line holds
 * keep + n samples from pos - keep), then the delay line trimmed: 0, plus 4 when Masker._expire has spans to
 * retire, plus 8 when the output is the delayed input; 2 when the output is left to Python (nothing done);
 * -1 error (built for AVX2 too: its rounding to int16 is then one instruction, the same values) */
DTMFGUARD_CLONES static int
finish_core(ScreenObject *o, int64_t pos, Py_ssize_t n, int16_t *out)
{
    const int64_t *spans, *notches;
    Py_ssize_t ns, nn;
    if (span_list(&o->bb[BB_SPANS], &spans, &ns, "spans") < 0
        || span_list(&o->bb[BB_NOTCHES], &notches, &nn, "notches") < 0)
        return -1;
    if (ns < 0 || nn < 0)
        return 2;
    OutputObject *ob = (OutputObject *)o->output;
    const Py_ssize_t keep = o->keep, delay = o->delay, fade = ob->fade;
    if (o->bb[BB_STORE].len / (Py_ssize_t)sizeof(double) < keep + n) {
        PyErr_SetString(PyExc_ValueError, "finish: frame longer than the delay line's room");
        return -1;
    }
    double *store = (double *)o->bb[BB_STORE].buf;
    const int64_t start = pos - delay;
    const int mode = ns || nn ? output_mode(fade, spans, ns, notches, nn, start, n) : 0;
    if (mode && !o->has_table)
        return 2;
    const Py_ssize_t period = o->bb[BB_TABLE].len / (Py_ssize_t)sizeof(double);
    const double *table = (const double *)o->bb[BB_TABLE].buf;
    if (mode == 0) {
        const double *raw = store + (keep - delay);
        for (Py_ssize_t i = 0; i < n; i++)
            out[i] = to_int16(raw[i]);
    } else if (mode == 1) {
        if (period == 0) {
            memset(out, 0, (size_t)n * sizeof(int16_t));
        } else {
            int64_t k = floor_mod(start, period);
            for (Py_ssize_t i = 0; i < n; i++) {
                out[i] = to_int16(table[k]);
                if (++k == period)
                    k = 0;
            }
        }
    } else if (render_core(ob, store, keep + n, pos - keep, start, n, spans, ns, notches, nn, table, period, out, 1)
               < 0) {
        return -1;
    }
    memmove(store, store + n, (size_t)keep * sizeof(double));
    return (mode == 0 ? 8 : 0) | ((ns || nn) && expire_due(fade, spans, ns, notches, nn, start + n) ? 4 : 0);
}

PyDoc_STRVAR(run_doc,
"run(chunk, pos, next_hop, out) -> int\n\n"
"One int16 frame of Masker._run on the bound buffers: append it to the delay line, screen its hops, take\n"
"every step that only updates counters, and write the output (delayed input, mask, or fades and notches\n"
"from the bound span lists).  Returns 0 when done (delay line trimmed), plus 4 when spans are due to\n"
"expire, plus 8 when the output is the delayed input; 1 when the per-hop steps must run in Python from\n"
"hop state[S_NEXT] (then resume() and finish()), 2 when only the output is left to Python (hops decided,\n"
"delay line not trimmed), 3 when chunk is not a 1-D contiguous native int16 buffer (nothing done).");

/* (METH_FASTCALL, arguments taken one by one: called every 20 ms frame, where parsing a format costs more than
 * the rest of the call on a quiet frame) */
static PyObject *
Screen_run(ScreenObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer chunk = {0}, out = {0};
    PyObject *chunk_o;
    long long pos, next_hop;
    int code = -1;
    if (!o->bound) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: run before bind");
        return NULL;
    }
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "run(chunk, pos, next_hop, out) takes 4 arguments");
        return NULL;
    }
    chunk_o = args[0];
    pos = PyLong_AsLongLong(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    next_hop = PyLong_AsLongLong(args[2]);
    if (next_hop == -1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[3], &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (PyObject_GetBuffer(chunk_o, &chunk, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear(); /* not a contiguous buffer: not for this path */
        code = 3;
        goto done;
    }
    const char *fmt = chunk.format == NULL ? "B" : chunk.format;
    if (fmt[0] == '@' || fmt[0] == '=' || (fmt[0] == '<' && PY_LITTLE_ENDIAN) || (fmt[0] == '>' && !PY_LITTLE_ENDIAN))
        fmt++;
    if (chunk.ndim != 1 || chunk.itemsize != 2 || fmt[0] != 'h' || fmt[1] != 0) {
        code = 3; /* not 1-D native int16 */
        goto done;
    }
    const Py_ssize_t H = (Py_ssize_t)sizeof(int16_t), n = chunk.len / H;
    if (chunk.len % H || out.len != chunk.len) {
        PyErr_SetString(PyExc_ValueError, "run: chunk and out must be int16 of one length");
        goto done;
    }
    code = frame_core(o, (const int16_t *)chunk.buf, n, (int64_t)pos, (int64_t)next_hop);
    if (code == 0)
        code = finish_core(o, (int64_t)pos, n, (int16_t *)out.buf);
done:
    if (chunk.obj != NULL)
        PyBuffer_Release(&chunk);
    if (out.obj != NULL)
        PyBuffer_Release(&out);
    return code < 0 ? NULL : PyLong_FromLong(code);
}

PyDoc_STRVAR(resume_doc,
"resume(i0, nh) -> int\n\n"
"On the bound state and screen outputs of the frame run() left to Python: the simple steps from hop\n"
"i0 of its nh hops; returns the first hop the Python steps must take (nh when none).");

static PyObject *
Screen_resume(ScreenObject *o, PyObject *args)
{
    Py_ssize_t i0, nh;
    if (!o->bound) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: resume before bind");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "nn", &i0, &nh))
        return NULL;
    int64_t *st = (int64_t *)o->bb[BB_STATE].buf;
    const int64_t *conf = (const int64_t *)o->bb[BB_CONF].buf;
    if (nh < 0 || nh > o->cap || i0 < 0 || i0 > nh || (st[S_ACTIVE] && (st[S_PAIR] < 0 || st[S_PAIR] >= NP))) {
        PyErr_SetString(PyExc_ValueError, "resume: bad hop range or pair");
        return NULL;
    }
    for (Py_ssize_t i = i0; i < nh; i++)
        if (conf[i] >= NP) {
            PyErr_SetString(PyExc_ValueError, "resume: bad pair");
            return NULL;
        }
    const Py_ssize_t r = simple_steps(o, i0, nh, st, (double *)o->bb[BB_STEADY].buf,
                                      (const int64_t *)o->bb[BB_SUS].buf, conf, (const int64_t *)o->bb[BB_WEAK].buf,
                                      (const double *)o->bb[BB_EXPL].buf);
    return PyLong_FromSsize_t(r);
}

PyDoc_STRVAR(finish_doc,
"finish(pos, out) -> int\n\n"
"The output part of run() for a frame of len(out) samples taken at input position pos, once the Python\n"
"steps are done (span lists rebuilt): as run() (0 plus 4 and 8), or 2 (the output is left to Python).");

static PyObject *
Screen_finish(ScreenObject *o, PyObject *args)
{
    Py_buffer out = {0};
    long long pos;
    if (!o->bound) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: finish before bind");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "Lw*", &pos, &out))
        return NULL;
    int code = -1;
    if (out.len % (Py_ssize_t)sizeof(int16_t))
        PyErr_SetString(PyExc_ValueError, "finish: out must be int16");
    else
        code = finish_core(o, (int64_t)pos, out.len / (Py_ssize_t)sizeof(int16_t), (int16_t *)out.buf);
    PyBuffer_Release(&out);
    return code < 0 ? NULL : PyLong_FromLong(code);
}

PyDoc_STRVAR(edge_named_doc,
"edge_named(frames, n, w) -> bool\n\n"
"Whether the screen's test on window w's fit names a pair in any row of frames (float64 rows of n samples,\n"
"2 <= n <= 256, C-contiguous), as it is, or after a µ-law or an A-law round trip (Masker._edge_named,\n"
"notch_edge).");

static PyObject *
Screen_edge_named(ScreenObject *o, PyObject *args)
{
    Py_buffer fb = {0};
    Py_ssize_t n, w;
    if (!PyArg_ParseTuple(args, "y*nn", &fb, &n, &w))
        return NULL;
    PyObject *res = NULL;
    if (w < 0 || w >= o->nw || n < 2 || n > 256 || n != o->ks[w] * o->hop || fb.len % (n * (Py_ssize_t)sizeof(double))) {
        PyErr_SetString(PyExc_ValueError, "edge_named: frames must be float64 rows of n samples, 2 <= n <= 256, "
                                          "n the length of screen window w");
        goto done;
    }
    const Py_ssize_t m = fb.len / (n * (Py_ssize_t)sizeof(double));
    const double *x = (const double *)fb.buf;
    int named = 0;
    double y[256];
    for (Py_ssize_t r = 0; r < m && !named; r++) {
        const double *xr = x + r * n;
        named = fit_named(o, w, xr, n) >= 0;
        for (int law = 0; law < 2 && !named; law++) {
            for (Py_ssize_t j = 0; j < n; j++)
                y[j] = law == 0 ? ulaw_round_trip(xr[j]) : alaw_round_trip(xr[j]);
            named = fit_named(o, w, y, n) >= 0;
        }
    }
    res = PyBool_FromLong(named);
done:
    PyBuffer_Release(&fb);
    return res;
}

static PyMethodDef Screen_methods[] = {
    {"edge_named", (PyCFunction)Screen_edge_named, METH_VARARGS, edge_named_doc},
    {"screen", (PyCFunction)Screen_screen, METH_VARARGS, screen_doc},
    {"bind", (PyCFunction)Screen_bind, METH_VARARGS, bind_doc},
    {"run", (PyCFunction)(void (*)(void))Screen_run, METH_FASTCALL, run_doc},
    {"finish", (PyCFunction)Screen_finish, METH_VARARGS, finish_doc},
    {"resume", (PyCFunction)Screen_resume, METH_VARARGS, resume_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScreenType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dtmfguard.dsp._masker_native.Screen",
    .tp_doc = PyDoc_STR("The masker's screen constants (by name) and its block cache; see native/masker.c."),
    .tp_basicsize = sizeof(ScreenObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Screen_init,
    .tp_dealloc = (destructor)Screen_dealloc,
    .tp_methods = Screen_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "dtmfguard.dsp._masker_native",
    "The masker's screen in C (optional speed-up of dtmfguard.dsp.masker).",
    -1,
    NULL,
};

PyMODINIT_FUNC
PyInit__masker_native(void)
{
    if (PyType_Ready(&ScreenType) < 0 || PyType_Ready(&OutputType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ScreenType);
    if (PyModule_AddObject(m, "Screen", (PyObject *)&ScreenType) < 0) {
        Py_DECREF(&ScreenType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&OutputType);
    if (PyModule_AddObject(m, "Output", (PyObject *)&OutputType) < 0) {
        Py_DECREF(&OutputType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
