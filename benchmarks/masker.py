# SPDX-License-Identifier: GPL-2.0-or-later
"""Masker: today's masker and the previous one side by side, in one run (issue 12).

(a) talk-off: key-free real audio from :mod:`dtmfguard.testkit.corpora` (``report`` half only; thresholds were
    tuned on the ``tune`` half), per source: flat masks per minute, band notches per minute, share of
    samples changed; and the boundary (``--boundary``): the runs of windows the blind attacker names in the
    unmasked audio (per minute, share of samples; those of >= 8 ms apart), the least a masker that treats
    whatever the attacker can name must treat there, and the runs it still names in each masker's output
    after a G.711 round trip;
(b) card entry with talk-over: per condition, digits the attacker of :mod:`dtmfguard.testkit.adversary` names
    blind from the agent's audio (after a G.711 round trip), digits the oracle-timed attacker names
    (it knows each press's span), leaked ms per press (tone samples neither under the full mask nor
    band-notched), unmasked vs masked;
(c) the boundary: recovered digits vs tone-to-speech ratio, beside unmasked recovery;
(d) speed: real-time channels per core (one masker, 20 ms frames) on speech with keys, old vs new.

The previous masker is loaded from git (``--legacy-rev``, its C screen compiled into a temporary
directory), so nothing of it stays in the runtime.

Run:  python benchmarks/masker.py [--minutes 12] [--presses 24] [--boundary] [--payment] [--json out.json]
      python benchmarks/masker.py --skip b,c,d --split tune --sources drascula,hyperrogue --boundary  (tuning)
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # single-threaded, before numpy
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import importlib.machinery  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import sysconfig  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from typing import Dict, List  # noqa: E402

import numpy as np  # noqa: E402

from dtmfguard.testkit import adversary as A  # noqa: E402
from dtmfguard.testkit import corpora  # noqa: E402
from dtmfguard.dsp import g711  # noqa: E402
from dtmfguard.dsp import masker as new_masker  # noqa: E402
from dtmfguard.dsp.keypad import KeypadMasker  # noqa: E402

#: today's masker as a call runs it: the masker with its strict receiver (the pipeline's detector live opens the
#: keypad burst on the keys it confirms, ``keypad_burst_receiver``); ``Masker`` alone is "new masker alone" in (d)
NEW_MASKER = KeypadMasker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEGACY_REV = "7d25821"  # main before issue 12

#: (name, press_scenario keyword arguments); the issue's talk-over conditions
CONDITIONS: Dict[str, dict] = {
    "-30dBm0, speech around": {"level_dbm0": -30.0, "speech_around": True},
    "tones 3 dB under speech": {"speech_under_db": -3.0},
    "2nd voice from mid-press (0 dB)": {"voice_mid_press_db": 0.0},
    "2nd voice from mid-press (+6 dB)": {"voice_mid_press_db": -6.0},
    "1 s presses under speech (-10 dB)": {"duration_ms": 1000.0, "speech_under_db": 10.0},
    "1 s presses under speech (0 dB)": {"duration_ms": 1000.0, "speech_under_db": 0.0},
    "25-35 ms presses": {"duration_ms": (25.0, 35.0), "speech_around": True},
    "40 ms gaps": {"duration_ms": 45.0, "gap_ms": 40.0, "speech_around": True},
    "µ-law, speech around": {"speech_around": True, "codec": "ulaw"},
    "A-law, speech around": {"speech_around": True, "codec": "alaw"},
    "twist +6 dB": {"twist_db": 6.0, "speech_around": True},
    "twist -6 dB": {"twist_db": -6.0, "speech_around": True},
    "freq +2 %": {"freq_error": 0.02, "speech_around": True},
    "freq -2 %": {"freq_error": -0.02, "speech_around": True},
    "16 kHz, speech around": {"rate": 16000, "speech_around": True},
}
#: beyond the issue's conditions, run with ``--payment``: tones off nominal by more than the issue's 2 %
#: (Q.24 receivers may accept up to 3.5 %), and off nominal or twisted under louder speech
PAYMENT_EXTRA: Dict[str, dict] = {
    "freq +3 %, speech around": {"freq_error": 0.03, "speech_around": True},
    "freq +4 %, speech around": {"freq_error": 0.04, "speech_around": True},
    "3 dB under speech, freq +2 %": {"speech_under_db": -3.0, "freq_error": 0.02},
    "3 dB under speech, freq -2 %": {"speech_under_db": -3.0, "freq_error": -0.02},
    "3 dB under speech, freq +3 %": {"speech_under_db": -3.0, "freq_error": 0.03},
    "3 dB under speech, twist +6 dB": {"speech_under_db": -3.0, "twist_db": 6.0},
    "1 s presses, 6 dB under speech": {"duration_ms": 1000.0, "speech_under_db": -6.0},
}
TALK_OFF_SOURCES = ("en", "fr", "es", "ru", "it", "espeak-de", "espeak-cmn", "moh", "drascula", "hyperrogue")
FRAME_MS = 20


def load_legacy(rev: str, name: str = "legacy"):
    """The masker of git revision ``rev`` as a module (its C screen compiled to a temp dir when possible)."""
    for path in ("dtmfguard/dsp/masker.py", "dtmfguard/masker.py"):  # the layout of issue 15, then the one before
        got = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{path}"], capture_output=True, text=True)
        if got.returncode == 0:
            break
    else:
        raise SystemExit(f"benchmarks/masker.py: no masker at git revision {rev}")
    src = got.stdout
    # its relative imports (.params, .goertzel, ...) resolve in dtmfguard.dsp, where those modules live now;
    # a masker from before the move imported the attacker's pair fit as .adversary (now testkit.adversary)
    import dtmfguard.testkit.adversary as adversary

    sys.modules.setdefault("dtmfguard.dsp.adversary", adversary)
    # ... except its thresholds: that revision's own params module (today's defaults would change its behaviour)
    for ppath in ("dtmfguard/dsp/params.py", "dtmfguard/params.py"):
        pgot = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{ppath}"], capture_output=True, text=True)
        if pgot.returncode == 0:
            pmod = types.ModuleType(f"dtmfguard.dsp._{name}_params")
            pmod.__package__ = "dtmfguard.dsp"
            sys.modules[pmod.__name__] = pmod
            exec(compile(pgot.stdout, f"{rev}:{ppath}", "exec"), pmod.__dict__)
            src = src.replace("from .params import", f"from ._{name}_params import")
            break
    mod = types.ModuleType(f"dtmfguard.dsp._{name}_masker")
    mod.__package__ = "dtmfguard.dsp"
    sys.modules[mod.__name__] = mod
    import linecache

    # (its source by that name for tracebacks and for benchmarks/masker_causes.py, which reads the caller's line)
    linecache.cache[f"{rev}:{path}"] = (len(src), None, src.splitlines(True), f"{rev}:{path}")
    exec(compile(src, f"{rev}:{path}", "exec"), mod.__dict__)
    mod._masker_native = None
    try:
        csrc = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:native/masker.c"], capture_output=True,
                              text=True, check=True).stdout
        tmp = tempfile.mkdtemp(prefix="legacy-masker-")
        c_path, so_path = os.path.join(tmp, "masker.c"), os.path.join(tmp, "_masker_native.so")
        with open(c_path, "w") as f:
            f.write(csrc)
        headers = subprocess.run(["git", "-C", ROOT, "ls-tree", "--name-only", rev, "native/"], capture_output=True,
                                 text=True, check=True).stdout.split()
        for h in (h for h in headers if h.endswith(".h")):  # that revision's headers beside its masker.c
            with open(os.path.join(tmp, os.path.basename(h)), "w") as f:
                f.write(subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{h}"], capture_output=True, text=True,
                                       check=True).stdout)
        subprocess.run(["cc", "-O3", "-std=c99", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
                        c_path, "-o", so_path], check=True, capture_output=True)
        loader = importlib.machinery.ExtensionFileLoader(f"{name}._masker_native", so_path)
        spec = importlib.util.spec_from_file_location(f"{name}._masker_native", so_path, loader=loader)
        native = importlib.util.module_from_spec(spec)
        loader.exec_module(native)
        mod._masker_native = native
    except (subprocess.CalledProcessError, OSError, ImportError) as exc:
        print(f"note: legacy C screen not built ({type(exc).__name__}); legacy runs its numpy path")
    return mod


def param_changes(items: List[str], flag: str = "--set") -> dict:
    """``NAME=VALUE`` strings (a benchmark's repeatable ``flag``) as MaskerParams changes, VALUE a Python literal;
    ValueError naming the item when NAME is no MaskerParams field or VALUE no literal."""
    import ast

    fields = {f.name for f in dataclasses.fields(new_masker.DEFAULT_MASKER_PARAMS)}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"{flag} {item!r}: expected NAME=VALUE with NAME a MaskerParams field")
        try:
            out[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"{flag} {item!r}: VALUE must be a Python literal (a number, True, None, a tuple)") \
                from None
    return out


def masker_with(changes: dict):
    """:data:`NEW_MASKER` with these ``MaskerParams`` changes (:func:`param_changes`' output); itself for none."""
    if not changes:
        return NEW_MASKER
    return functools.partial(NEW_MASKER, params=dataclasses.replace(new_masker.DEFAULT_MASKER_PARAMS, **changes))


def changes_label(changes: dict) -> str:
    """``NAME=VALUE, ...`` of :func:`param_changes`' output, for a benchmark's column or heading."""
    return ", ".join(f"{k}={v!r}" for k, v in changes.items())


def sources_and_variants(ap, args) -> tuple:
    """The corpus sources (``args.sources``, comma-separated; default every installed one) and talk-off variants
    (``args.variants``, labels of ``corpora.VARIANTS``; default all) a benchmark runs on; ``ap.error`` on a bad name."""
    names = args.sources.split(",") if args.sources else [n for n in corpora.SOURCES if corpora.available(n)]
    unknown = [n for n in names if n not in corpora.SOURCES]
    if unknown:
        ap.error(f"unknown source(s): {', '.join(unknown)}")
    variants = [v for v in corpora.VARIANTS if not args.variants or v[0] in args.variants.split(",")]
    if not variants:
        ap.error("no such variant")
    return names, variants


def mask_stream(cls, x: np.ndarray, rate: int = 8000, **opts):
    m = cls(rate=rate, **opts)
    f = rate * FRAME_MS // 1000
    parts = [m.process(x[i: i + f]) for i in range(0, x.size, f)] + [m.flush()]
    return np.concatenate(parts)[m.delay_samples:], m


def _notched(m, n: int) -> np.ndarray:
    """Input samples band-notched: a suspect's notch, the payment profile's (closed spans, the open one) or a keypad
    burst's."""
    sel = np.zeros(n, dtype=bool)
    for s in list(getattr(m, "notched_spans", [])) + list(getattr(m, "payment_spans", [])) + \
            list(getattr(m, "burst_spans", [])):
        sel[max(s.start, 0): max(min(s.end, n), 0)] = True
    for s in getattr(m, "_notches", []):
        if s.source == "payment" and s.end is None:
            sel[max(s.start, 0):] = True
    return sel


def payment_model(cls):
    """``cls`` with the payment profile on from the first sample (``Masker.notch_all(0)``)."""
    def make(*args, **kwargs):
        m = cls(*args, **kwargs)
        m.notch_all(0)
        return m
    return make


def speech_cost(cls, x: np.ndarray) -> dict:
    """What the masker takes from key-free speech: energy lost (dB) and correlation with the input."""
    out, m = mask_stream(cls, x)
    a, b = x[400:].astype(float), out[400:].astype(float)  # (past the profile's 2 ms ramp-in)
    return {"lost_db": float(-10 * np.log10(float(b @ b) / float(a @ a))),
            "correlation": float(a @ b / np.sqrt(float(a @ a) * float(b @ b))),
            "changed": float(np.mean(out != x))}


def adversary_runs(x: np.ndarray, rate: int = 8000, piece_s: float = 20.0) -> List[tuple]:
    """The blind attacker's runs ``(start, end)`` over a long signal, decoded in pieces (bounded memory) that
    overlap by 50 ms; a run belongs to the piece it starts in."""
    piece, pad = int(piece_s * rate), int(0.05 * rate)
    runs = []
    for a in range(0, x.size, piece):
        lo = max(a - pad, 0)
        for d in A.decode(x[lo: a + piece + pad], rate):
            if d.start + lo >= a or a == 0:
                runs.append((d.start + lo, d.end + lo))
    return runs


def _covered(runs, n: int) -> float:
    sel = np.zeros(n, dtype=bool)
    for s, e in runs:
        sel[s:e] = True
    return float(np.mean(sel))


def boundary_row(x: np.ndarray, mins: float) -> dict:
    """What the blind attacker names in unmasked key-free audio (no key there: chance fits of notes and
    syllables): runs per minute and share of samples in them, all and >= 8 ms."""
    runs = adversary_runs(x.astype(np.float64))
    long = [r for r in runs if r[1] - r[0] >= 64]
    return {"runs_per_min": len(runs) / mins, "samples": _covered(runs, x.size),
            "runs8_per_min": len(long) / mins, "samples8": _covered(long, x.size)}


def talk_off(models, minutes: float, split: str = "report", sources=TALK_OFF_SOURCES,
             boundary: bool = False) -> List[dict]:
    rows = []
    for name in sources:
        try:
            x = corpora.signal(name, split, max_seconds=minutes * 60).astype(np.int16)
        except corpora.CorpusMissing as exc:
            print(f"  {name}: skipped ({exc})")
            continue
        mins = x.size / 8000 / 60
        row = {"source": name, "minutes": round(mins, 1)}
        for label, cls in models:
            out, m = mask_stream(cls, x)
            changed = out != x
            notched = _notched(m, x.size)
            row[label] = {"masks_per_min": len(m.masked_spans) / mins,
                          "notches_per_min": len(getattr(m, "notched_spans", [])) / mins,
                          "changed": float(np.mean(changed)),
                          "changed_by_mask": float(np.mean(changed & ~notched)),
                          # (``keypad_burst_*``: bursts the masker opened on key-free audio, and their samples)
                          "bursts": int(getattr(m, "bursts", 0)),
                          "burst_samples": int(sum(s.end - s.start for s in getattr(m, "burst_spans", []))),
                          # (``keypad_context_ms``: contexts opened, short windows verified by a context alone)
                          "contexts": int(getattr(m, "contexts", 0)),
                          "context_verified": int(getattr(m, "context_verified", 0))}
            if boundary:
                row[label]["named_out_per_min"] = len(adversary_runs(g711.ulaw_decode(g711.ulaw_encode(out)))) / mins
        rows.append(row)
        o, n = row["old"], row["new"]
        print(f"  {name:11s} {mins:5.1f} min | old {o['masks_per_min']:5.2f}/min {o['notches_per_min']:5.1f}/min "
              f"{o['changed']:7.3%} | new {n['masks_per_min']:4.2f}/min flat + {n['notches_per_min']:5.1f}/min notch, "
              f"{n['changed']:7.3%} changed ({n['changed_by_mask']:.3%} by the flat mask), "
              f"{n['bursts']} keypad bursts ({n['burst_samples'] / x.size:.3%} of samples), {n['contexts']} keypad "
              f"contexts ({n['context_verified']} windows verified by one)", flush=True)
        if boundary:
            b = row["boundary"] = boundary_row(x, mins)
            print(f"  {'':11s} boundary: the attacker names {b['runs_per_min']:5.1f} runs/min ({b['samples']:.3%} of "
                  f"samples) in the unmasked audio, {b['runs8_per_min']:4.2f}/min >= 8 ms ({b['samples8']:.3%}); "
                  f"in the output (G.711): old {o['named_out_per_min']:5.1f}/min, new {n['named_out_per_min']:5.1f}/min",
                  flush=True)
    return rows


def _codec(out: np.ndarray, cond: dict) -> np.ndarray:
    if cond.get("rate", 8000) != 8000:
        return np.asarray(out, dtype=np.float64)
    if cond.get("codec") == "alaw":
        return g711.alaw_decode(g711.alaw_encode(out))
    return g711.ulaw_decode(g711.ulaw_encode(out))


def leak_ms(out, m, spans, rate) -> List[float]:
    ref = np.clip(np.round(m._mask_signal(0, out.size)), -32768, 32767)
    notched = _notched(m, out.size)
    return [float(np.sum((np.abs(out[s.start: s.end].astype(float) - ref[s.start: s.end]) > 1.01)
                         & ~notched[s.start: s.end])) * 1000.0 / rate for s in spans]


def condition_row(models, x, spans, cond) -> dict:
    rate = cond.get("rate", 8000)
    row = {"presses": len(spans), "unmasked_blind": A.count_recovered(x, spans, rate),
           "unmasked_oracle": A.oracle_score(x, spans, rate), "chance_bound": A.chance_bound(len(spans))}
    for label, cls in models:
        out, m = mask_stream(cls, x, rate)
        heard = _codec(out, cond)
        lk = leak_ms(out, m, spans, rate)
        row[label] = {"blind": A.count_recovered(heard, spans, rate), "oracle": A.oracle_score(heard, spans, rate),
                      "leaked_ms_mean": float(np.mean(lk)), "leaked_ms_max": float(np.max(lk)),
                      "presses_leaking": int(np.sum(np.array(lk) > 0)), "errors": m.errors}
    return row


def channels_per_core(cls, x: np.ndarray, seconds: float) -> float:
    m = cls()
    done = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        for i in range(0, x.size, 160):
            m.process(x[i: i + 160])
        done += x.size
    return done / 8000.0 / (time.process_time() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=12.0, help="minutes of key-free audio per source (report half)")
    ap.add_argument("--presses", type=int, default=24, help="presses per talk-over condition")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--legacy-rev", default=LEGACY_REV, help="git revision of the masker before issue 12")
    ap.add_argument("--main-rev", default="",
                    help="also run this git revision (e.g. main: today's masker) in section (d)")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: a,b,c,d")
    ap.add_argument("--split", default="report", choices=("report", "tune"),
                    help="half of the corpora for (a): report (default) or tune (for tuning only)")
    ap.add_argument("--sources", default=",".join(TALK_OFF_SOURCES), help="comma list of sources for (a)")
    ap.add_argument("--boundary", action="store_true",
                    help="(a) also measures what the blind attacker names in each source, unmasked and masked")
    ap.add_argument("--speed-seconds", type=float, default=1.0, help="CPU seconds per speed measurement in (d)")
    ap.add_argument("--speed-repeats", type=int, default=3, help="interleaved rounds of (d) (median reported)")
    ap.add_argument("--payment", action="store_true",
                    help="(b, c, d) also run today's masker with the payment profile on from the start "
                         "(Masker.notch_all), and (d) what it takes from speech")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    legacy = load_legacy(args.legacy_rev)
    models = [("old", legacy.Masker), ("new", NEW_MASKER)]
    pay_models = models + [("pay", payment_model(NEW_MASKER))] if args.payment else models
    la_old = legacy.DEFAULT_LOOKAHEAD_MS
    print(f"old: {args.legacy_rev} (default look-ahead {la_old} ms); new: working tree (default look-ahead "
          f"{new_masker.DEFAULT_LOOKAHEAD_MS} ms); both at their defaults, 20 ms frames")
    result: dict = {"legacy_rev": args.legacy_rev, "lookahead_ms": {"old": la_old,
                                                                     "new": new_masker.DEFAULT_LOOKAHEAD_MS}}
    if "a" not in skip:
        print(f"\n(a) key-free real audio, {args.split} half, <= {args.minutes:.0f} min per source")
        result["talk_off"] = talk_off(models, args.minutes, args.split, tuple(args.sources.split(",")),
                                      args.boundary)
    speech = A.load_speech(240.0, seed=args.seed)
    if speech is None:
        print("note: asterisk-core-sounds-en-wav not installed: talk-over sections skipped")
        skip |= {"b", "c"}
    if "b" not in skip:
        print(f"\n(b) card entry with talk-over, {args.presses} presses per condition; blind = the attacker's "
              f"decoder on the agent's audio (G.711 round trip), oracle = it knows each press's span")
        print(f"  {'condition':36s} | unmasked blind/oracle | old blind/oracle, leaked ms mean/max | "
              f"new blind/oracle, leaked ms mean/max | chance bound")
        rows = {}
        conditions = dict(CONDITIONS, **(PAYMENT_EXTRA if args.payment else {}))
        for i, (name, cond) in enumerate(conditions.items()):
            rng = np.random.default_rng(args.seed + i)
            x, spans = A.press_scenario(rng, args.presses, speech=speech, **cond)
            r = condition_row(pay_models, x, spans, cond)
            rows[name] = r
            o, n = r["old"], r["new"]
            pay = "" if "pay" not in r else \
                f" | payment profile {r['pay']['blind']:3d} / {r['pay']['oracle']:3d}, " \
                f"{r['pay']['leaked_ms_mean']:6.1f} / " \
                f"{r['pay']['leaked_ms_max']:6.1f}"
            print(f"  {name:36s} | {r['unmasked_blind']:3d} / {r['unmasked_oracle']:3d} of {r['presses']:3d} | "
                  f"{o['blind']:3d} / {o['oracle']:3d}, {o['leaked_ms_mean']:6.1f} / {o['leaked_ms_max']:6.1f} | "
                  f"{n['blind']:3d} / {n['oracle']:3d}, {n['leaked_ms_mean']:6.1f} / {n['leaked_ms_max']:6.1f} | "
                  f"{r['chance_bound']}{pay}", flush=True)
        result["talk_over"] = rows
    if "c" not in skip:
        print("\n(c) boundary: tone-to-speech ratio (speech under every tone), digits recovered")
        print(f"  {'tone/speech':>11s} | unmasked blind/oracle | old blind/oracle | new blind/oracle | chance bound")
        rows = []
        for i, tsr in enumerate((-12.0, -9.0, -6.0, -3.0, 0.0, 3.0, 6.0, 10.0)):
            rng = np.random.default_rng(args.seed + 100 + i)
            cond = {"speech_under_db": tsr}
            x, spans = A.press_scenario(rng, args.presses, speech=speech, **cond)
            r = condition_row(pay_models, x, spans, cond)
            r["tone_to_speech_db"] = tsr
            rows.append(r)
            pay = "" if "pay" not in r else \
                f" | payment profile {r['pay']['blind']:3d} / {r['pay']['oracle']:3d}, leaked ms " \
                f"{r['pay']['leaked_ms_mean']:.1f} / {r['pay']['leaked_ms_max']:.1f} (new: " \
                f"{r['new']['leaked_ms_mean']:.1f} / {r['new']['leaked_ms_max']:.1f})"
            print(f"  {tsr:+8.0f} dB | {r['unmasked_blind']:3d} / {r['unmasked_oracle']:3d} of {r['presses']:3d} | "
                  f"{r['old']['blind']:3d} / {r['old']['oracle']:3d}      | {r['new']['blind']:3d} / "
                  f"{r['new']['oracle']:3d}      | {r['chance_bound']}{pay}", flush=True)
        result["boundary"] = rows
    if "d" not in skip:
        rng = np.random.default_rng(args.seed)
        keys, _ = A.press_scenario(rng, 30, speech=speech, speech_around=speech is not None)
        only = np.clip(np.round(speech[: 8000 * 20]), -32768, 32767).astype(np.int16) if speech is not None \
            else np.zeros(8000 * 20, dtype=np.int16)
        print(f"\n(d) real-time channels per core (one masker, 20 ms frames, int16; CPU time of this process; "
              f"{args.speed_repeats} rounds of {args.speed_seconds:g} s per model and input, models interleaved "
              f"in each round; median, and the median of each round's ratio)")
        speed_models = list(pay_models) + [("new masker alone", new_masker.Masker)]
        if args.payment:
            for label, cls in (("new", NEW_MASKER), ("pay", payment_model(NEW_MASKER))):
                c = result.setdefault("speech_cost", {})[label] = speech_cost(cls, only)
                print(f"  speech only, {label}: {c['lost_db']:.2f} dB lost, correlation {c['correlation']:.4f}, "
                      f"{c['changed']:.1%} of samples changed")
            for name in ("fr", "es", "espeak-de", "moh"):  # other voices (report half, 2 min each)
                try:
                    src = corpora.signal(name, "report", max_seconds=120).astype(np.int16)
                except corpora.CorpusMissing:
                    continue
                c = result["speech_cost"][f"pay {name}"] = speech_cost(payment_model(NEW_MASKER), src)
                print(f"  {name}, pay: {c['lost_db']:.2f} dB lost, correlation {c['correlation']:.4f}")
        if args.main_rev:
            main_cls = load_legacy(args.main_rev, "main").Masker
            speed_models.insert(1, ("main", main_cls))
            if args.payment and hasattr(main_cls, "notch_all"):  # (its payment profile beside today's)
                speed_models.append(("main pay", payment_model(main_cls)))
        cpc: dict = {label: {"keys": [], "speech": []} for label, _ in speed_models}
        for _ in range(args.speed_repeats):
            for label, cls in speed_models:
                cpc[label]["keys"].append(channels_per_core(cls, keys, args.speed_seconds))
                cpc[label]["speech"].append(channels_per_core(cls, only, args.speed_seconds))
        med = {k: {s: float(np.median(v)) for s, v in d.items()} for k, d in cpc.items()}
        ratio = {f"new/{label}": {s: float(np.median(np.array(cpc["new"][s]) / np.array(cpc[label][s])))
                                  for s in ("keys", "speech")} for label, _ in speed_models if label != "new"}
        if "main pay" in cpc:
            ratio["pay/main pay"] = {s: float(np.median(np.array(cpc["pay"][s]) / np.array(cpc["main pay"][s])))
                                     for s in ("keys", "speech")}
        for s in ("keys", "speech"):
            others = "".join(f", {label} {med[label][s]:6.0f}" for label, _ in speed_models if label != "new")
            ratios = "".join(f", {name} {r[s]:.2f}" for name, r in ratio.items())
            runs = " ".join(f"{v:.0f}" for v in cpc["new"][s])
            print(f"  {'speech with keys' if s == 'keys' else 'speech only':16s}: new {med['new'][s]:6.0f}{others}"
                  f"  ({ratios[2:]}; new per round: {runs})")
        result["channels_per_core"] = med
        result["channels_per_core_runs"] = cpc
        result["channels_per_core_ratio"] = ratio
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
