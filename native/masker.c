/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dtmfguard._masker_native: the masker's per-hop screen in C.
 *
 * Why C: a live call runs the masker once every 20 ms on pjsua2's clock
 * thread; the numpy path (Masker._screen_numpy in dtmfguard/masker.py) spends
 * dozens of numpy calls per frame, each cheap in a loop but cold again 20 ms
 * later.  Here one call screens all hops of a frame.
 *
 * Contract: the numbers equal the numpy path's BIT FOR BIT.  Every sum is
 * taken in the order the numpy path takes it (block sums sample by sample,
 * window sums block by block from the oldest, the 4x4 products left to
 * right), and no fused multiply-add is used (x86-64 baseline has none; the
 * build passes no -march), so both paths take the same decisions and give the
 * same audio (tests/test_masker_native.py).
 *
 *   screen(seg, b0, hop, cos, sin, freq, ginv, ks, is_confirm,
 *          screen_amp2, confirm_amp2, twist2, screen_resid, confirm_resid, weak_resid,
 *          screen_unique, confirm_unique, skip_energy,
 *          suspect_out, conf_out, conf_coef_out, weak_out, expl_out) -> int
 *
 *   seg      float64 [nb * hop]   whole blocks; block j starts at absolute sample (b0 + j) * hop;
 *                                 nb = kmax + nh - 1 (hop i's windows end at block kmax + i)
 *   cos/sin  float64 [rate]       cos/sin(2 pi k / rate); freq: int64 [8] DTMF frequencies (Hz)
 *   ginv     float64 [nw*16*4*4]  per window length and pair: inverse Gram matrix (window-relative basis)
 *   ks       int64 [nw]           window lengths in blocks, increasing; is_confirm int64 [nw]
 *   *_resid  1 - the share of energy the best pair must explain; *_unique second-best residual ratio
 *   outputs  suspect int64 [nh] (pair + 16 * window index, or -1), conf int64 [nh] (pair or -1),
 *            conf_coef float64 [nh*4], weak int64 [nh], expl float64 [nh*16] (longest window)
 *
 * The GIL is kept (a call takes microseconds).  Only the buffer protocol is
 * used; every size is validated before memory is touched (ValueError).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NF 8
#define NP 16
#define MAXW 8

enum { B_SEG, B_COS, B_SIN, B_FREQ, B_GINV, B_KS, B_ISC, B_SUS, B_CONF, B_CCOEF, B_WEAK, B_EXPL, NBUF };

static void
release_all(Py_buffer *b)
{
    for (int i = 0; i < NBUF; i++)
        if (b[i].obj != NULL)
            PyBuffer_Release(&b[i]);
}

PyDoc_STRVAR(screen_doc,
"screen(seg, b0, hop, cos, sin, freq, ginv, ks, is_confirm, screen_amp2, confirm_amp2, twist2,\n"
"       screen_resid, confirm_resid, weak_resid, screen_unique, confirm_unique, skip_energy,\n"
"       suspect_out, conf_out, conf_coef_out, weak_out, expl_out) -> int\n\n"
"The masker's screen for every hop of a frame (see native/masker.c).");

static PyObject *
screen(PyObject *self, PyObject *args)
{
    Py_buffer b[NBUF];
    memset(b, 0, sizeof(b));
    long long b0;
    Py_ssize_t hop;
    double screen_amp2, confirm_amp2, twist2, screen_resid, confirm_resid, weak_resid, screen_unique,
        confirm_unique, skip_energy;
    if (!PyArg_ParseTuple(args, "y*Lny*y*y*y*y*y*dddddddddw*w*w*w*w*", &b[B_SEG], &b0, &hop, &b[B_COS],
                          &b[B_SIN], &b[B_FREQ], &b[B_GINV], &b[B_KS], &b[B_ISC], &screen_amp2, &confirm_amp2,
                          &twist2, &screen_resid, &confirm_resid, &weak_resid, &screen_unique, &confirm_unique,
                          &skip_energy, &b[B_SUS], &b[B_CONF], &b[B_CCOEF], &b[B_WEAK], &b[B_EXPL]))
        return NULL;
    const Py_ssize_t D = (Py_ssize_t)sizeof(double), I = (Py_ssize_t)sizeof(int64_t);
    double *cc = NULL, *ss = NULL, *en = NULL;
    const Py_ssize_t rate = b[B_COS].len / D;
    const Py_ssize_t nw = b[B_KS].len / I;
    const Py_ssize_t nh = b[B_SUS].len / I;
    if (hop < 1 || rate < 1 || b[B_COS].len % D || b[B_SIN].len != b[B_COS].len
        || b[B_FREQ].len != NF * I || nw < 1 || nw > MAXW || b[B_KS].len % I || b[B_ISC].len != nw * I
        || b[B_GINV].len != nw * NP * 16 * D || nh < 1 || b[B_SUS].len % I || b[B_CONF].len != nh * I
        || b[B_WEAK].len != nh * I || b[B_CCOEF].len != nh * 4 * D || b[B_EXPL].len != nh * NP * D) {
        PyErr_SetString(PyExc_ValueError, "screen: bad table, window or output sizes");
        goto fail;
    }
    const int64_t *ks = (const int64_t *)b[B_KS].buf, *isc = (const int64_t *)b[B_ISC].buf;
    const int64_t *freq = (const int64_t *)b[B_FREQ].buf;
    for (Py_ssize_t w = 0; w < nw; w++)
        if (ks[w] < 1 || (w > 0 && ks[w] <= ks[w - 1])) {
            PyErr_SetString(PyExc_ValueError, "screen: window lengths must increase");
            goto fail;
        }
    for (int f = 0; f < NF; f++)
        if (freq[f] < 0 || freq[f] >= rate) {
            PyErr_SetString(PyExc_ValueError, "screen: frequency out of range");
            goto fail;
        }
    const Py_ssize_t kmax = (Py_ssize_t)ks[nw - 1];
    const Py_ssize_t nb = kmax + nh - 1;
    if (b[B_SEG].len != nb * hop * D) {
        PyErr_SetString(PyExc_ValueError, "screen: segment size does not match the hop count");
        goto fail;
    }
    const double *x = (const double *)b[B_SEG].buf;
    const double *ctab = (const double *)b[B_COS].buf, *stab = (const double *)b[B_SIN].buf;
    const double *ginv_all = (const double *)b[B_GINV].buf;
    int64_t *sus = (int64_t *)b[B_SUS].buf, *conf = (int64_t *)b[B_CONF].buf, *weak = (int64_t *)b[B_WEAK].buf;
    double *ccoef = (double *)b[B_CCOEF].buf, *expl = (double *)b[B_EXPL].buf;

    en = (double *)malloc((size_t)nb * sizeof(double));
    cc = (double *)malloc((size_t)(nb * NF) * sizeof(double));
    ss = (double *)malloc((size_t)(nb * NF) * sizeof(double));
    if (en == NULL || cc == NULL || ss == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t j = 0; j < nb; j++) {
        const double *xb = x + j * hop;
        double e = xb[0] * xb[0];
        for (Py_ssize_t k = 1; k < hop; k++)
            e = e + xb[k] * xb[k];
        en[j] = e;
    }
    double total = en[0];
    for (Py_ssize_t j = 1; j < nb; j++)
        total = total + en[j];
    for (Py_ssize_t i = 0; i < nh; i++) {
        sus[i] = -1;
        conf[i] = -1;
        weak[i] = -1;
    }
    memset(ccoef, 0, (size_t)(nh * 4) * sizeof(double));
    if (!(total >= skip_energy)) {
        memset(expl, 0, (size_t)(nh * NP) * sizeof(double));
        free(en); free(cc); free(ss);
        release_all(b);
        return PyLong_FromLong(0);
    }
    /* table index (f * n) mod rate, advanced by f per sample instead of a division per sample */
    int64_t idx0[NF];
    for (int f = 0; f < NF; f++)
        idx0[f] = ((freq[f] * (((int64_t)b0 * hop) % rate)) % rate + rate) % rate;
    for (Py_ssize_t j = 0; j < nb; j++) {
        const double *xb = x + j * hop;
        for (int f = 0; f < NF; f++) {
            const int64_t fr = freq[f];
            int64_t idx = idx0[f];
            double c = xb[0] * ctab[idx];
            double s = xb[0] * stab[idx];
            for (Py_ssize_t k = 1; k < hop; k++) {
                idx += fr;
                if (idx >= rate)
                    idx -= rate;
                c = c + xb[k] * ctab[idx];
                s = s + xb[k] * stab[idx];
            }
            idx += fr;
            if (idx >= rate)
                idx -= rate;
            idx0[f] = idx;
            cc[j * NF + f] = c;
            ss[j * NF + f] = s;
        }
    }
    int any = 0;
    for (Py_ssize_t w = 0; w < nw; w++) {
        const Py_ssize_t k = (Py_ssize_t)ks[w], lo = kmax - k;
        const double *ginv = ginv_all + w * NP * 16;
        const int last = w == nw - 1;
        for (Py_ssize_t i = 0; i < nh; i++) {
            const Py_ssize_t j0 = lo + i;
            double e = en[j0], c[NF], s[NF], cr[NF], sr[NF];
            for (int f = 0; f < NF; f++) {
                c[f] = cc[j0 * NF + f];
                s[f] = ss[j0 * NF + f];
            }
            for (Py_ssize_t j = 1; j < k; j++) {
                e = e + en[j0 + j];
                for (int f = 0; f < NF; f++) {
                    c[f] = c[f] + cc[(j0 + j) * NF + f];
                    s[f] = s[f] + ss[(j0 + j) * NF + f];
                }
            }
            const int64_t start = ((int64_t)b0 + j0) * hop;
            for (int f = 0; f < NF; f++) {
                const int64_t ri = ((freq[f] * start) % rate + rate) % rate;
                const double cs = ctab[ri], sn = stab[ri];
                cr[f] = c[f] * cs + s[f] * sn;
                sr[f] = s[f] * cs - c[f] * sn;
            }
            double resid[NP], ex[NP], beta[NP][4];
            int best = 0;
            for (int p = 0; p < NP; p++) {
                const int r = p / 4, col = 4 + p % 4;
                const double v[4] = {cr[r], sr[r], cr[col], sr[col]};
                const double *g = ginv + p * 16;
                for (int a = 0; a < 4; a++)
                    beta[p][a] = ((g[4 * a] * v[0] + g[4 * a + 1] * v[1]) + g[4 * a + 2] * v[2]) + g[4 * a + 3] * v[3];
                ex[p] = ((v[0] * beta[p][0] + v[1] * beta[p][1]) + v[2] * beta[p][2]) + v[3] * beta[p][3];
                double rr = e - ex[p];
                resid[p] = rr > 0.0 ? rr : 0.0;
                if (resid[p] < resid[best])
                    best = p;
            }
            double r2 = -1.0;
            for (int p = 0; p < NP; p++)
                if (p != best && (r2 < 0.0 || resid[p] < r2))
                    r2 = resid[p];
            const double r1 = resid[best];
            const double *cf = beta[best];
            const double ar2 = cf[0] * cf[0] + cf[1] * cf[1];
            const double ac2 = cf[2] * cf[2] + cf[3] * cf[3];
            const int shape = ar2 <= twist2 * ac2 && ac2 <= twist2 * ar2 && e > 0.0;
            const double amp = ar2 < ac2 ? ar2 : ac2;
            if (sus[i] < 0 && shape && amp >= screen_amp2 && r1 <= screen_resid * e && r2 >= screen_unique * r1) {
                sus[i] = best + 16 * (int64_t)w;
                any = 1;
            }
            if (isc[w] && conf[i] < 0 && shape && amp >= confirm_amp2 && r1 <= confirm_resid * e
                && r2 >= confirm_unique * r1) {
                conf[i] = best;
                memcpy(ccoef + 4 * i, cf, 4 * sizeof(double));
            }
            if (last) {
                if (shape && amp >= screen_amp2 && r1 <= weak_resid * e) {
                    weak[i] = best;
                    any = 1;
                }
                memcpy(expl + i * NP, ex, NP * sizeof(double));
            }
        }
    }
    free(en); free(cc); free(ss);
    release_all(b);
    return PyLong_FromLong(any);
fail:
    free(en); free(cc); free(ss);
    release_all(b);
    return NULL;
}

static PyMethodDef methods[] = {
    {"screen", screen, METH_VARARGS, screen_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "dtmfguard._masker_native",
    "The masker's screen in C (optional speed-up of dtmfguard.masker).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__masker_native(void)
{
    return PyModule_Create(&module);
}
