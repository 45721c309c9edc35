/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dtmfguard.dsp._masker_native: the masker's per-hop screen in C.
 *
 * Why C: a live call runs the masker once every 20 ms on pjsua2's clock
 * thread; the numpy path (Masker._screen_numpy in dtmfguard/dsp/masker.py) spends
 * dozens of numpy calls per frame, each cheap in a loop but cold again 20 ms
 * later.  Here one call screens all hops of a frame.
 *
 * Contract: the numbers equal the numpy path's BIT FOR BIT.  Every sum is
 * taken in the order the numpy path takes it (block sums sample by sample,
 * window sums as a binary tree of block sums, the quadratic forms term by
 * term in the order of ``quad``), and no fused multiply-add is used (x86-64
 * baseline has none; the build passes no -march), so both paths take the same
 * decisions and give the same audio (tests/test_masker_native.py).
 *
 * Screen(*, hop, cos, sin, freq, ks, is_confirm, quad, ginv, screen_amp2, confirm_amp2, twist2,
 *        screen_resid, confirm_resid, weak_resid, screen_unique, confirm_unique, skip_energy)
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
    double gain[MAXW], need[MAXW]; /* per window: bound on explained energy per unit row+column power, and
                                     the least share of the window's energy any of its tests needs */
    int64_t *tag;                  /* [CACHE] absolute block held by each slot (or INT64_MIN) */
    double *csamp;                 /* [CACHE][hop] its samples */
    double *cfeat;                 /* [CACHE][NFEAT] its energy and correlations */
    double *scratch;               /* levels: [nlev][nb][NFEAT] */
    Py_ssize_t scratch_len;
} ScreenObject;

static void
Screen_dealloc(ScreenObject *self)
{
    free(self->ctab); free(self->stab); free(self->rcos); free(self->rsin); free(self->quad); free(self->ginv);
    free(self->tag); free(self->csamp); free(self->cfeat); free(self->scratch);
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
                            "suspect_close_samples", NULL};
    Py_ssize_t hop;
    PyObject *cos_o, *sin_o, *freq_o, *ks_o, *isc_o, *quad_o, *ginv_o, *gain_o;
    if (self->ctab != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$nOOOOOOOddddddddddOLLLLL", names, &hop, &cos_o, &sin_o, &freq_o,
                                     &ks_o, &isc_o, &quad_o, &ginv_o, &self->screen_amp2, &self->confirm_amp2,
                                     &self->twist2, &self->screen_resid, &self->confirm_resid, &self->weak_resid,
                                     &self->screen_unique, &self->confirm_unique, &self->skip_energy,
                                     &self->hold_ratio, &gain_o, &self->hit_hops, &self->weak_hops,
                                     &self->close_hops, &self->persist, &self->suspect_close))
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
    if (hop < 1 || self->rate < 1 || cos_len % D || ks_len % I || self->nw < 1 || self->nw > MAXW) {
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
        || copy_buffer(gain_o, D, nw, self->gain, "bound_gain") < 0)
        return -1;
    for (Py_ssize_t w = 0; w < nw; w++) {
        double r = self->screen_resid;
        if (self->isc[w] && self->confirm_resid > r)
            r = self->confirm_resid;
        if (w == nw - 1 && self->weak_resid > r)
            r = self->weak_resid;
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
static void
block_features(const ScreenObject *o, const double *restrict xb, int64_t start, double *restrict feat)
{
    const Py_ssize_t hop = o->hop, rate = o->rate;
    double e = xb[0] * xb[0];
    for (Py_ssize_t k = 1; k < hop; k++)
        e = e + xb[k] * xb[k];
    feat[0] = e;
    /* correlations with the block-relative basis (sample by sample, all 8 frequencies at once) ... */
    double c[NF], s[NF];
    for (int f = 0; f < NF; f++) {
        c[f] = xb[0] * o->rcos[f];
        s[f] = xb[0] * o->rsin[f];
    }
    for (Py_ssize_t k = 1; k < hop; k++)
        for (int f = 0; f < NF; f++) {
            c[f] = c[f] + xb[k] * o->rcos[k * NF + f];
            s[f] = s[f] + xb[k] * o->rsin[k * NF + f];
        }
    /* ... turned to the absolute phase of the block's first sample */
    const int64_t sm = ((start % rate) + rate) % rate;
    for (int f = 0; f < NF; f++) {
        const int64_t idx = (o->freq[f] * sm) % rate;
        const double cs = o->ctab[idx], sn = o->stab[idx];
        feat[1 + f] = cs * c[f] - sn * s[f];
        feat[1 + NF + f] = sn * c[f] + cs * s[f];
    }
}

/* energy each pair explains, v^T G^-1 v, summed term by term in the order of ``quad`` */
DTMFGUARD_CLONES static void
pair_explained(const double *restrict quad, const double *restrict cr, const double *restrict sr,
               double t2[restrict 3][NF], double *restrict ex)
{
    static const int row_of[NP] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    static const int col_of[NP] = {4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7};
    double term[NT][NP];
    for (int p = 0; p < NP; p++) {
        const int r = row_of[p], c = col_of[p];
        term[0][p] = t2[0][r];
        term[1][p] = t2[1][r];
        term[2][p] = t2[0][c];
        term[3][p] = t2[1][c];
        term[4][p] = t2[2][r];
        term[5][p] = t2[2][c];
        term[6][p] = cr[r] * cr[c];
        term[7][p] = cr[r] * sr[c];
        term[8][p] = sr[r] * cr[c];
        term[9][p] = sr[r] * sr[c];
    }
    for (int p = 0; p < NP; p++)
        ex[p] = quad[p] * term[0][p];
    for (int t = 1; t < NT; t++)
        for (int p = 0; p < NP; p++)
            ex[p] = ex[p] + quad[t * NP + p] * term[t][p];
}

PyDoc_STRVAR(screen_doc,
"screen(seg, b0, suspect_out, conf_out, conf_coef_out, weak_out, expl_out) -> int\n\n"
"The masker's screen for every hop of a frame (see native/masker.c).");

/* window-relative cos and sin correlations (and their squares and product) from absolute ones */
static inline void
rotate(const ScreenObject *o, const double *f, const int64_t *ri, double *cr, double *sr, double t2[3][NF])
{
    for (int q = 0; q < NF; q++) {
        const double cs = o->ctab[ri[q]], sn = o->stab[ri[q]];
        cr[q] = f[1 + q] * cs + f[1 + NF + q] * sn;
        sr[q] = f[1 + NF + q] * cs - f[1 + q] * sn;
        t2[0][q] = cr[q] * cr[q];
        t2[1][q] = sr[q] * sr[q];
        t2[2][q] = cr[q] * sr[q];
    }
}

/* the screen of nh hops on x (nb = kmax + nh - 1 whole blocks from absolute block b0): 1 if any hop has a
 * suspect or weak pair, 0 if none, -1 on a memory error (exception set) */
static int
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
        const double *prev = o->scratch + (Py_ssize_t)(l - 1) * nb * NFEAT;
        double *cur = o->scratch + (Py_ssize_t)l * nb * NFEAT;
        for (Py_ssize_t j = 0; j < n; j++)
            for (int t = 0; t < NFEAT; t++)
                cur[j * NFEAT + t] = prev[j * NFEAT + t] + prev[(j + half) * NFEAT + t];
    }
    char skipped_local[512], *skipped = nh <= 512 ? skipped_local : (char *)malloc((size_t)nh);
    if (skipped == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(skipped, 0, (size_t)nh);
    int any = 0;
    for (Py_ssize_t w = 0; w < nw; w++) {
        const Py_ssize_t k = (Py_ssize_t)o->ks[w], lo = kmax - k;
        const double *lev = o->scratch + (Py_ssize_t)o->lev[w] * nb * NFEAT;
        const double *quad = o->quad + w * NT * NP;
        const double *ginv = o->ginv + w * NP * 16;
        const int last = w == nw - 1, isc = (int)o->isc[w];
        /* table index (f * window start) mod rate, advanced by f * hop per hop (no division per hop) */
        int64_t ri[NF], step[NF];
        {
            const int64_t start = ((((int64_t)b0 + lo) * hop) % rate + rate) % rate;
            for (int q = 0; q < NF; q++) {
                ri[q] = (o->freq[q] * start) % rate;
                step[q] = (o->freq[q] * hop) % rate;
            }
        }
        for (Py_ssize_t i = 0; i < nh; i++) {
            const Py_ssize_t j0 = lo + i;
            const double *f = lev + j0 * NFEAT;
            const double e = f[0];
            int64_t rh[NF]; /* this hop's table indices */
            for (int q = 0; q < NF; q++) {
                rh[q] = ri[q];
                ri[q] += step[q];
                if (ri[q] >= rate)
                    ri[q] -= rate;
            }
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
            for (int q = 0; q < 4; q++) {
                const double pr = f[1 + q] * f[1 + q] + f[1 + NF + q] * f[1 + NF + q];
                const double pc = f[5 + q] * f[5 + q] + f[5 + NF + q] * f[5 + NF + q];
                prow = pr > prow ? pr : prow;
                pcol = pc > pcol ? pc : pcol;
            }
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
            /* the smallest residual (first of equals) and the second smallest value, as numpy's argmin and
             * partition give them */
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
    if (any) { /* the steps will read every hop's explained energies: fill the skipped ones */
        const Py_ssize_t w = nw - 1, lo = kmax - (Py_ssize_t)o->ks[w];
        const double *lev = o->scratch + (Py_ssize_t)o->lev[w] * nb * NFEAT;
        for (Py_ssize_t i = 0; i < nh; i++) {
            if (!skipped[i])
                continue;
            const double *f = lev + (lo + i) * NFEAT;
            const int64_t start = ((int64_t)b0 + lo + i) * hop;
            double cr[NF], sr[NF], t2[3][NF];
            int64_t rh[NF];
            for (int q = 0; q < NF; q++)
                rh[q] = ((o->freq[q] * start) % rate + rate) % rate;
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

/* state vector of Screen.frame (Masker._run keeps the same values in attributes) */
enum { S_ACTIVE, S_PAIR, S_MISSES, S_WEAK_PAIR, S_WEAK_RUN, S_HIT_PAIR, S_HIT_RUN, S_SUSPECT, S_PENDING, S_NEXT,
       S_SP_PAIR, S_SP_FIRST, S_SP_LAST, S_PENDING_DUE, S_E0, NSTATE };

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

PyDoc_STRVAR(steps_doc,
"steps(i0, state, steady, suspect, conf, weak, expl) -> int\n\n"
"Masker._step for hops i0, i0 + 1, ... of a screened frame while each only updates counters; returns the\n"
"first hop the Python steps must take (the number of hops when none).");

static PyObject *
Screen_steps(ScreenObject *o, PyObject *args)
{
    enum { B_STATE, B_STEADY, B_SUS, B_CONF, B_WEAK, B_EXPL, NBUF };
    Py_buffer b[NBUF];
    memset(b, 0, sizeof(b));
    Py_ssize_t i0, r = -1;
    if (o->ctab == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "nw*w*y*y*y*y*", &i0, &b[B_STATE], &b[B_STEADY], &b[B_SUS], &b[B_CONF], &b[B_WEAK],
                          &b[B_EXPL]))
        goto done;
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), I = (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t nh = b[B_SUS].len / I;
    if (b[B_STATE].len != NSTATE * I || b[B_STEADY].len != D || b[B_SUS].len % I || b[B_CONF].len != nh * I
        || b[B_WEAK].len != nh * I || b[B_EXPL].len != nh * NP * D || i0 < 0 || i0 > nh) {
        PyErr_SetString(PyExc_ValueError, "steps: bad sizes");
        goto done;
    }
    int64_t *st = (int64_t *)b[B_STATE].buf;
    const int64_t *conf = (const int64_t *)b[B_CONF].buf;
    for (Py_ssize_t i = 0; i < nh; i++)
        if (conf[i] >= NP) {
            PyErr_SetString(PyExc_ValueError, "steps: bad pair");
            goto done;
        }
    if (st[S_PAIR] < 0 || st[S_PAIR] >= NP) {
        if (st[S_ACTIVE]) {
            PyErr_SetString(PyExc_ValueError, "steps: bad pair");
            goto done;
        }
    }
    r = simple_steps(o, i0, nh, st, (double *)b[B_STEADY].buf, (const int64_t *)b[B_SUS].buf, conf,
                     (const int64_t *)b[B_WEAK].buf, (const double *)b[B_EXPL].buf);
done:
    for (int i = 0; i < NBUF; i++)
        if (b[i].obj != NULL)
            PyBuffer_Release(&b[i]);
    return r < 0 ? NULL : PyLong_FromSsize_t(r);
}

PyDoc_STRVAR(frame_doc,
"frame(store, keep, delay, chunk, pos, next_hop, state, steady, mode, table, out,\n"
"      suspect, conf, conf_coef, weak, expl) -> int\n\n"
"One int16 frame of Masker._run: append it to the delay line, screen its hops, and when every hop is\n"
"one of the two cases Masker._decide_batch settles without the per-hop steps (nothing to track, or a\n"
"steady press) settle it; then write the output when ``mode`` says how (0: the delayed input, 1: the\n"
"mask ``table`` indexed by absolute position, empty table: silence).  Returns 0 when done (the delay\n"
"line trimmed to ``keep``), 1 when the per-hop steps must run in Python on the screen outputs (nothing\n"
"else changed), 2 when only the output is left to Python (state updated, delay line not trimmed).");

static PyObject *
Screen_frame(ScreenObject *o, PyObject *args)
{
    enum { B_STORE, B_CHUNK, B_STATE, B_STEADY, B_TABLE, B_OUT, B_SUS, B_CONF, B_CCOEF, B_WEAK, B_EXPL, NBUF };
    Py_buffer b[NBUF];
    memset(b, 0, sizeof(b));
    Py_ssize_t keep, delay;
    long long pos, next_hop;
    int mode, code = -1;
    if (o->ctab == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Screen: not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "w*nny*LLw*w*iy*w*w*w*w*w*w*", &b[B_STORE], &keep, &delay, &b[B_CHUNK], &pos,
                          &next_hop, &b[B_STATE], &b[B_STEADY], &mode, &b[B_TABLE], &b[B_OUT], &b[B_SUS],
                          &b[B_CONF], &b[B_CCOEF], &b[B_WEAK], &b[B_EXPL]))
        goto done;
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), I = (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t H = (Py_ssize_t)sizeof(int16_t);
    const Py_ssize_t hop = o->hop, n = b[B_CHUNK].len / H, cap = b[B_SUS].len / I;
    if (b[B_CHUNK].len % H || b[B_OUT].len != n * H || keep < delay || delay < 0 || pos < 0
        || b[B_STORE].len % D || b[B_STORE].len / D < keep + n || b[B_STATE].len != NSTATE * I
        || b[B_STEADY].len != D || b[B_TABLE].len % D || mode < 0 || mode > 2 || b[B_SUS].len % I
        || b[B_CONF].len != cap * I || b[B_WEAK].len != cap * I || b[B_CCOEF].len != cap * 4 * D
        || b[B_EXPL].len != cap * NP * D || next_hop % hop) {
        PyErr_SetString(PyExc_ValueError, "frame: bad sizes or positions");
        goto done;
    }
    double *store = (double *)b[B_STORE].buf;
    const int16_t *chunk = (const int16_t *)b[B_CHUNK].buf;
    int64_t *st = (int64_t *)b[B_STATE].buf;
    double *steady = (double *)b[B_STEADY].buf;
    int64_t *sus = (int64_t *)b[B_SUS].buf, *conf = (int64_t *)b[B_CONF].buf, *weak = (int64_t *)b[B_WEAK].buf;
    double *expl = (double *)b[B_EXPL].buf;
    const int64_t new_pos = (int64_t)pos + n, buf_start = (int64_t)pos - keep;
    const int64_t last_hop = (new_pos / hop) * hop;
    Py_ssize_t nh = last_hop >= next_hop ? (Py_ssize_t)((last_hop - next_hop) / hop + 1) : 0;
    const int64_t first = (int64_t)next_hop - (int64_t)o->kmax * hop;
    if (nh > cap || (nh > 0 && first < buf_start)) {
        PyErr_SetString(PyExc_ValueError, "frame: too many hops for the outputs or the delay line");
        goto done;
    }
    if (st[S_ACTIVE] && (st[S_PAIR] < 0 || st[S_PAIR] >= NP)) {
        PyErr_SetString(PyExc_ValueError, "frame: bad pair");
        goto done;
    }
    st[S_E0] = next_hop;
    for (Py_ssize_t i = 0; i < n; i++)
        store[keep + i] = (double)chunk[i];
    if (nh > 0) {
        const int64_t b0 = first >= 0 ? first / hop : -((-first + hop - 1) / hop);
        int any = do_screen(o, store + (first - buf_start), b0, nh, sus, conf, (double *)b[B_CCOEF].buf, weak, expl,
                            st[S_ACTIVE] || st[S_SUSPECT] || st[S_PENDING]);
        if (any < 0)
            goto done;
        if (!any && !st[S_ACTIVE] && !st[S_SUSPECT] && !st[S_PENDING]) {
            st[S_WEAK_PAIR] = -1, st[S_WEAK_RUN] = 0, st[S_HIT_PAIR] = -1, st[S_HIT_RUN] = 0;
        } else if (st[S_ACTIVE]) {
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
                code = 1;
                goto done;
            }
        }
    }
    if (mode == 2) {
        code = 2;
        goto done;
    }
    int16_t *out = (int16_t *)b[B_OUT].buf;
    if (mode == 0) {
        const double *raw = store + (keep - delay);
        for (Py_ssize_t i = 0; i < n; i++)
            out[i] = to_int16(raw[i]);
    } else {
        const Py_ssize_t period = b[B_TABLE].len / D;
        const double *table = (const double *)b[B_TABLE].buf;
        if (period == 0) {
            memset(out, 0, (size_t)n * sizeof(int16_t));
        } else {
            int64_t k = (((int64_t)pos - delay) % period + period) % period;
            for (Py_ssize_t i = 0; i < n; i++) {
                out[i] = to_int16(table[k]);
                if (++k == period)
                    k = 0;
            }
        }
    }
    memmove(store, store + n, (size_t)keep * sizeof(double));
    code = 0;
done:
    for (int i = 0; i < NBUF; i++)
        if (b[i].obj != NULL)
            PyBuffer_Release(&b[i]);
    return code < 0 ? NULL : PyLong_FromLong(code);
}

static PyMethodDef Screen_methods[] = {
    {"screen", (PyCFunction)Screen_screen, METH_VARARGS, screen_doc},
    {"frame", (PyCFunction)Screen_frame, METH_VARARGS, frame_doc},
    {"steps", (PyCFunction)Screen_steps, METH_VARARGS, steps_doc},
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
    if (PyType_Ready(&ScreenType) < 0)
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
    return m;
}
