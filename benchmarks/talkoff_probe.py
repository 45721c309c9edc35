# SPDX-License-Identifier: GPL-2.0-or-later
"""Talk-off analysis: what a confirmed press looks like, for false digits on music and for keys under speech.

Analysis only (issue 17): runs the numpy path on a whole signal, records every confirmation (window, the
press's measurements so far) and computes candidate features around it, for

* the false digits a ``benchmarks/talkoff.py --json`` run found (``--talkoff-json``, any number; files are
  looked up in the run's split, the variant and offset rebuilt), and
* the talk-down keys of ``benchmarks/conformance.py`` (digits at 0 dB and -6 dB under speech), the keys a
  new guard must keep.

Each row: kind, where, digit, and the features (``FEATURES``).  ``--set`` overrides DetectorParams as
talkoff.py does.  Also prints spandsp 0.0.6's per-block tests (a Python model of its documented window
tests: tone energy to total energy per 102-sample block, relative peak, twist) over each false digit's span.

Run:  python benchmarks/talkoff_probe.py --talkoff-json tune.json [--json probe.json]
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Dict, List  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import conformance  # noqa: E402
from talkoff import _parse_set  # noqa: E402

from dtmfguard.dsp import detector as det_mod  # noqa: E402
from dtmfguard.dsp import goertzel  # noqa: E402
from dtmfguard.dsp.params import DEFAULT_PARAMS, DTMF_HZ  # noqa: E402
from dtmfguard.events import DIGITS  # noqa: E402
from dtmfguard.testkit import corpora  # noqa: E402
from dtmfguard.testkit.synth import dtmf_tone  # noqa: E402

RATE = 8000
MS = 8


def confirmations(x16: np.ndarray, params) -> List[Dict]:
    """Every confirmation of the numpy path on ``x16`` (one chunk): digit, window, run state."""
    goertzel.set_backend("numpy")
    found: List[Dict] = []
    orig = det_mod.DetectorBank._maybe_confirm

    def spy(self, run, w, a, events, ch):
        was = run.confirmed
        orig(self, run, w, a, events, ch)
        if run.confirmed and not was:
            found.append({"digit": det_mod._DIGIT_OF[run.digit], "d": run.digit, "w": w, "first_w": run.first_w,
                          "onset": run.onset, "hits": run.hits, "share": run.s_share / run.hits,
                          "checked": run.checked, "mr": run.s_r / run.checked, "mc": run.s_c / run.checked})

    det_mod.DetectorBank._maybe_confirm = spy
    try:
        d = det_mod.DtmfDetector(RATE, params)
        d.process(x16)
        d.flush()
    finally:
        det_mod.DetectorBank._maybe_confirm = orig
    return found


def _tone_env(x: np.ndarray, f: float, lo: int, hi: int, win: int = 51, step: int = 17) -> np.ndarray:
    """Amplitude of the tone at ``f`` Hz in Hann windows of ``win`` samples every ``step`` over [lo, hi)."""
    out = []
    hw = np.hanning(win)
    idx = np.arange(win)
    k = np.exp(-2j * np.pi * f / RATE * idx) * hw
    g = 2.0 / hw.sum()
    for s in range(max(lo, 0), min(hi, x.size) - win + 1, step):
        out.append(abs(np.sum(x[s:s + win] * k)) * g)
    return np.asarray(out)


def _spectrum_frames(x: np.ndarray, lo: int, hi: int, n: int = 256, step: int = 128) -> np.ndarray:
    hw = np.hanning(n)
    frames = [np.abs(np.fft.rfft(x[s:s + n] * hw)) for s in range(max(lo, 0), min(hi, x.size) - n + 1, step)]
    return np.asarray(frames)


def features(x: np.ndarray, c: Dict) -> Dict:
    """Candidate features of a confirmation ``c`` in signal ``x`` (float, int16 scale)."""
    h = 51
    w = c["w"]
    end = (w + 2) * h  # the confirming window's end
    onset = c["onset"]
    fr = DTMF_HZ[c["d"] // 4] * (1 + c["mr"])
    fc = DTMF_HZ[4 + c["d"] % 4] * (1 + c["mc"])
    f = {}
    # amplitude steadiness of each tone over the press so far (51-sample windows, 17-sample steps)
    er = _tone_env(x, fr, onset, end)
    ec = _tone_env(x, fc, onset, end)
    if er.size >= 2:
        f["amp_cv_r"] = float(np.std(er) / max(np.mean(er), 1e-9))
        f["amp_cv_c"] = float(np.std(ec) / max(np.mean(ec), 1e-9))
        f["amp_cv"] = max(f["amp_cv_r"], f["amp_cv_c"])
        # the two tones' envelopes together (one key: they move together only through interference)
        f["amp_ratio_spread"] = float(np.ptp(20 * np.log10(np.maximum(er, 1e-9) / np.maximum(ec, 1e-9))))
    # each tone before the onset (20-60 ms before), against the press
    pr = _tone_env(x, fr, onset - 60 * MS, onset - 10 * MS)
    pc = _tone_env(x, fc, onset - 60 * MS, onset - 10 * MS)
    ar, ac = float(np.median(er)) if er.size else 1e-9, float(np.median(ec)) if ec.size else 1e-9
    if pr.size:
        f["pre_r_db"] = float(20 * np.log10(max(np.median(pr), 1e-9) / max(ar, 1e-9)))
        f["pre_c_db"] = float(20 * np.log10(max(np.median(pc), 1e-9) / max(ac, 1e-9)))
        f["pre_max_db"] = max(f["pre_r_db"], f["pre_c_db"])
        f["pre_min_db"] = min(f["pre_r_db"], f["pre_c_db"])
    # surroundings: the spectrum (256-point frames) over 200 ms before the onset: how stationary
    fr_ = _spectrum_frames(x, onset - 200 * MS, onset - 5 * MS)
    if len(fr_) >= 3:
        lg = 20 * np.log10(np.maximum(fr_, 1e-3))
        band = slice(int(150 / 31.25), int(3400 / 31.25))
        lg = lg[:, band]
        cc = [np.corrcoef(lg[i], lg[i + 1])[0, 1] for i in range(len(lg) - 1)]
        f["pre_stationarity"] = float(np.mean(cc))
        # persistent peaks: bins that are local maxima >= 10 dB above the frame median in all frames
        pk = (lg > np.median(lg, axis=1, keepdims=True) + 15)
        f["persist_peaks"] = int(np.sum(np.all(pk, axis=0)))
    for span in (300,):
        fr2 = _spectrum_frames(x, onset - span * MS, onset - 5 * MS)
        if len(fr2) >= 3:
            lg = 20 * np.log10(np.maximum(fr2, 1e-3))[:, int(150 / 31.25):int(3400 / 31.25)]
            sm = np.stack([np.convolve(v, np.ones(9) / 9, mode="same") for v in lg])
            lg = (lg - sm)[:, 4:-4]
            lag = max(1, len(lg) // 2)
            f[f"dfar{span}"] = float(np.mean([np.corrcoef(lg[i], lg[i + lag])[0, 1] for i in range(len(lg) - lag)]))
    from dataclasses import replace as _rep
    from dtmfguard.dsp.detector import _Tables, _context_persistence
    for pairs in (2, 3, 4, 5):
        tab = _rep(_Tables.build(DEFAULT_PARAMS, RATE), ctx_pairs=pairs, ctx_persist=float("-inf"))  # no early exit
        f[f"ctx{pairs}"] = _context_persistence(tab, x[max(onset - 300 * MS, 0): max(onset - 5 * MS, 0)])
    for span in (100, 300, 400):
        fr2 = _spectrum_frames(x, onset - span * MS, onset - 5 * MS)
        if len(fr2) >= 3:
            lg = 20 * np.log10(np.maximum(fr2, 1e-3))[:, int(150 / 31.25):int(3400 / 31.25)]
            cc = [np.corrcoef(lg[i], lg[i + 1])[0, 1] for i in range(len(lg) - 1)]
            f[f"stat{span}"] = float(np.mean(cc))
            lag = max(1, len(lg) // 2)
            f[f"far{span}"] = float(np.mean([np.corrcoef(lg[i], lg[i + lag])[0, 1] for i in range(len(lg) - lag)]))
    # energy level of the surroundings against the pair
    pre = x[max(onset - 200 * MS, 0): max(onset - 5 * MS, 0)]
    if pre.size:
        f["pre_rms_db"] = float(20 * np.log10(max(np.sqrt(np.mean(pre ** 2)), 1e-9) / max(min(ar, ac), 1e-9)))
    f["share"] = c["share"]
    f["hits"] = c["hits"]
    return f


def spandsp_model(x: np.ndarray, lo: int, hi: int, grid: int = 0) -> List[Dict]:
    """spandsp 0.0.6's documented per-block tests on the 102-sample blocks (aligned to ``grid``) in [lo, hi)."""
    out = []
    n = 102
    idx = np.arange(n)
    start = lo - ((lo - grid) % n)
    for s in range(max(start, 0), min(hi, x.size) - n + 1, n):
        b = x[s:s + n]
        e = [abs(np.sum(b * np.exp(-2j * np.pi * f / RATE * idx))) ** 2 for f in DTMF_HZ]
        rows, cols = e[:4], e[4:]
        r, cl = int(np.argmax(rows)), int(np.argmax(cols))
        tot = float(np.sum(b ** 2))
        ratio = (rows[r] + cols[cl]) / max(tot, 1e-9)
        peak_r = rows[r] / max(max(v for i, v in enumerate(rows) if i != r), 1e-9)
        peak_c = cols[cl] / max(max(v for i, v in enumerate(cols) if i != cl), 1e-9)
        out.append({"at": s, "key": DIGITS[r * 4 + cl] if False else "123A456B789C*0#D"[r * 4 + cl],
                    "to_total": ratio / 42.0, "peak_r_db": 10 * np.log10(peak_r), "peak_c_db": 10 * np.log10(peak_c),
                    "twist_db": 10 * np.log10(max(rows[r], 1e-9) / max(cols[cl], 1e-9))})
    return out


def talkdown_rows(params) -> List[Dict]:
    speech_paths = corpora.speech_files()
    cache = [corpora.read_8k(p) for p in speech_paths]
    rng = np.random.default_rng(500)
    order = rng.permutation(len(speech_paths))
    talk = np.concatenate([cache[i] for i in order])
    rows = []
    n_digits = 256
    for ratio in (0, -6):
        rng = np.random.default_rng(300 + ratio)
        speech = talk[: n_digits * 400 * MS + 800 * MS]
        tones, spans = _keys(rng, n_digits, speech.size)
        ref = tones != 0
        p_tone = float(np.mean(tones[ref] ** 2))
        p_speech = float(np.mean(speech ** 2))
        mixed = conformance.to_int16(tones + speech * np.sqrt(p_tone / p_speech / 10 ** (ratio / 10)))
        x = mixed.astype(np.float64)
        for c in confirmations(mixed, params):
            key = [s for s in spans if s[0] == c["digit"] and s[1] - 20 * MS <= c["onset"] <= s[2] + 80 * MS]
            row = {"kind": f"talkdown{ratio}", "where": f"key {c['digit']} at {c['onset']}",
                   "true": bool(key), **c, **features(x, c)}
            rows.append(row)
    return rows


def _keys(rng, n: int, total: int):
    """``n`` random keys (70 ms, -10 dBm0 per tone) one every 400 ms from 400 ms on, each up to 100 ms late:
    the tones alone in ``total`` samples, and their (digit, start, end)."""
    tones = np.zeros(total)
    spans = []
    for i in range(n):
        d = DIGITS[int(rng.integers(16))]
        start = 400 * MS + i * 400 * MS + int(rng.integers(0, 100 * MS))
        t = dtmf_tone(d, 70, RATE, -10, phase=conformance._phase(rng))
        tones[start:start + t.size] = t
        spans.append((d, start, start + t.size))
    return tones, spans


def noise_rows(params) -> List[Dict]:
    """Keys (70 ms, -10 dBm0 per tone) every 400 ms in stationary coloured noise at S/N 0 and +3 dB."""
    rows = []
    rng = np.random.default_rng(77)
    n = 128
    for color in ("white", "pink", "brown"):
        for snr in (0, 3, 6):
            total = n * 400 * MS + 800 * MS
            wn = rng.standard_normal(total)
            spec = np.fft.rfft(wn)
            fq = np.fft.rfftfreq(total, 1 / RATE)
            fq[0] = fq[1]
            spec *= {"white": 1.0, "pink": fq ** -0.5, "brown": fq ** -1.0}[color]
            noise = np.fft.irfft(spec, total)
            tones, spans = _keys(rng, n, total)
            p_tone = float(np.mean(tones[tones != 0] ** 2))
            mixed = conformance.to_int16(tones + noise * np.sqrt(p_tone / np.mean(noise ** 2) / 10 ** (snr / 10)))
            x = mixed.astype(np.float64)
            cs = confirmations(mixed, params)
            for c in cs:
                key = [s for s in spans if s[0] == c["digit"] and s[1] - 20 * MS <= c["onset"] <= s[2] + 80 * MS]
                rows.append({"kind": f"noise-{color}{snr}", "where": f"key {c['digit']}", "true": bool(key), **c,
                             **features(x, c)})
            print(f"noise {color} S/N {snr} dB: {sum(1 for c in cs)} confirmed of {n}", file=sys.stderr)
    return rows


def false_rows(paths: List[str], params) -> List[Dict]:
    rows = []
    for p in paths:
        d = json.load(open(p))
        split, offset = d["split"], d.get("offset", 0)
        for r in d["rows"]:
            src = r["source"]
            for det in ("native",):
                for where in r.get(det + "_where", []):
                    base, t = where.split(" ")[0], float(where.split(" ")[1])
                    rows.append({"src": src, "variant": r["variant"], "base": base, "t": t, "split": split,
                                 "offset": offset})
    out = []
    variants = {}
    done = set()
    for fd in rows:
        key = (fd["src"], fd["base"], fd["variant"], fd["offset"])
        if key in done:
            continue
        done.add(key)
        path = [q for q in corpora.files(fd["src"], fd["split"]) if os.path.basename(q) == fd["base"]][0]
        v = fd["variant"]
        if v.endswith("dB"):
            sp, g = (v.split("x")[0], v.split("x")[1][:-2]) if "x" in v else ("1.0", v[:-2])
            speed, gain = float(sp), float(g)
        else:
            speed, gain = float(v[:-1]), 0.0
        variants[key] = (speed, gain)
        x = corpora.read_8k(path)
        if fd["offset"]:
            x = np.concatenate([np.zeros(fd["offset"]), x])
        x16 = corpora.variant(x, speed, gain).astype(np.int16)
        xf = x16.astype(np.float64)
        for c in confirmations(x16, params):
            row = {"kind": "false", "where": f"{fd['src']} {fd['base']} {v} off{fd['offset']} "
                                             f"{c['onset'] / RATE:.2f}s", "true": False, **c, **features(xf, c)}
            row["spandsp"] = spandsp_model(xf, c["onset"] - 102, (c["w"] + 6) * 51, grid=0)
            out.append(row)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--talkoff-json", action="append", default=[])
    ap.add_argument("--no-talkdown", action="store_true")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--noise", action="store_true", help="also keys in coloured noise at S/N 0, 3, 6 dB")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    params = _parse_set(args.set) if args.set else DEFAULT_PARAMS
    rows = false_rows(args.talkoff_json, params)
    if not args.no_talkdown:
        rows += talkdown_rows(params)
    if args.noise:
        rows += noise_rows(params)
    keys = ["share", "hits", "amp_cv", "amp_ratio_spread", "pre_max_db", "pre_min_db", "pre_stationarity",
            "persist_peaks", "pre_rms_db"]
    print(f"{'kind':10s} {'where':48s} " + " ".join(f"{k[:9]:>9s}" for k in keys))
    for r in rows:
        print(f"{r['kind']:10s} {r['where'][:48]:48s} "
              + " ".join(f"{r.get(k, float('nan')):9.3f}" for k in keys))
        for b in r.get("spandsp", []):
            print(f"{'':10s}   spandsp block {b['at']}: {b['key']} to_total {b['to_total']:.2f} "
                  f"peaks {b['peak_r_db']:.1f}/{b['peak_c_db']:.1f} dB twist {b['twist_db']:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
