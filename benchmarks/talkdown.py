# SPDX-License-Identifier: GPL-2.0-or-later
"""Talk-down on one half of the speech corpora: keys under speech, and which test loses them.

``benchmarks/conformance.py`` measures talk-down on one fixed signal (256 keys under the English prompts, all
of them, tune and report halves mixed), the figure the issues quote.  Thresholds must be chosen on data they
are not reported on, so this script builds the same kind of signal per half of :mod:`dtmfguard.testkit.corpora`:
for each source (``--sources``, Asterisk voices by default) the usable files of ``--split`` in an order drawn
from ``--seed``, end to end, with keys placed as conformance.py places them (70 ms, -10 dBm0 per tone, one
every 400 ms, each up to 100 ms late, random key and phases from the seed), the speech scaled so that the
keys' power over the speech's power (pauses included) is 0 dB and -6 dB.  A key counts as found when a
digit of its kind starts between 20 ms before it and 80 ms after its end (conformance.py's match); digits
that match no key are extra (talk-off inside the talk-down signal).

``--ablate`` runs the same signals once per entry of ``ABLATIONS``: one group of DetectorParams relaxed or
switched off, the rest as given, and prints how many keys each relaxation wins back.  That says which test
loses keys under speech (a relaxation's talk-off cost is measured by ``benchmarks/talkoff.py --set ...``).

Run:  python benchmarks/talkdown.py --split tune --seed 1000 [--ablate] [--set NAME=VALUE ...]
      python benchmarks/talkdown.py --split report --seed 2000
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from typing import Dict, List, Tuple  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import conformance  # noqa: E402
from talkoff import _parse_set  # noqa: E402

import dtmfguard  # noqa: E402
from dtmfguard.dsp.params import DEFAULT_PARAMS, DetectorParams  # noqa: E402
from dtmfguard.events import DIGITS  # noqa: E402
from dtmfguard.testkit import corpora  # noqa: E402

RATE = 8000
MS = RATE // 1000
SOURCES = ("en", "fr", "es", "it", "ru")
RATIOS = (0, -6)
INF = float("inf")

#: one group of tests relaxed (or off) per entry; the window tests first, then the confirmation tests
ABLATIONS: Dict[str, dict] = {
    "relative peak 8 -> 6 dB": dict(relative_peak_db=6.0),
    "relative peak 8 -> 4 dB": dict(relative_peak_db=4.0),
    "energy share 0.16 -> 0.13": dict(min_tone_fraction=0.13),
    "energy share 0.16 -> 0.08": dict(min_tone_fraction=0.08),
    "mixed freq. tolerance 0.5 -> 0.8 %": dict(freq_tolerance_mixed=0.008),
    "half-row/twice-col guard under sound off": dict(harmonic_guard_mixed_db=-200.0),
    "every harmonic guard off": dict(harmonic_guard_db=-200.0, harmonic_guard_mixed_db=-200.0, third_guard_db=-200.0,
                                     third_guard_mixed_db=-200.0, double_guard_db=-200.0),
    "strict harmonic guards from 0.8 share (0.6)": dict(clean_fraction=0.8),
    "twist 9/5 -> 12/8 dB": dict(normal_twist_db=12.0, reverse_twist_db=8.0),
    "2 checked windows (3)": dict(confirm_checked_windows=2),
    "steadiness off": dict(steady_spread_max=1.0),
    "pair spread / octave tests off": dict(pair_spread_max=1.0, octave_spread_max=1.0, octave_tone_max=1.0),
    "long baseline off": dict(segment_drift_max=INF),
    "harmonic neighbours off": dict(octave_below_guard_db=INF, neighbour_guard_db=INF),
    "partials off": dict(comb_guard_db=INF),
    "amplitude ratio off": dict(pair_ratio_spread_db=INF),
    "music context and pre-onset off": dict(context_persist_max=INF),
    "every confirmation test of issue 17 off": dict(
        steady_spread_max=1.0, pair_spread_max=1.0, octave_spread_max=1.0, octave_tone_max=1.0, segment_drift_max=INF,
        octave_below_guard_db=INF, neighbour_guard_db=INF, comb_guard_db=INF, pair_ratio_spread_db=INF,
        context_persist_max=INF),
}


def speech(source: str, split: str, seed: int) -> np.ndarray:
    paths = corpora.files(source, split)
    order = np.random.default_rng(seed).permutation(len(paths))
    return np.concatenate([corpora.read_8k(paths[i]) for i in order])


def keys_under(talk: np.ndarray, ratio_db: float, seed: int, n: int = 256) -> Tuple[np.ndarray, list]:
    """``n`` keys (fewer if the speech is short) laid as conformance.m_talkdown lays them, mixed with ``talk``
    scaled to ``ratio_db``; int16 signal and the keys' spans."""
    rng = np.random.default_rng(seed)
    n = max(0, min(n, (talk.size - 800 * MS) // (400 * MS)))
    talk = talk[: n * 400 * MS + 800 * MS]
    tones = np.zeros(talk.size)
    spans = []
    for i in range(n):
        d = DIGITS[int(rng.integers(16))]
        start = 400 * MS + i * 400 * MS + int(rng.integers(0, 100 * MS))
        t = conformance.dtmf_tone(d, 70, RATE, -10, phase=conformance._phase(rng))
        tones[start:start + t.size] = t
        spans.append(type("Span", (), {"digit": d, "start": start, "end": start + t.size})())
    p_tone = float(np.mean(tones[tones != 0] ** 2))
    p_talk = float(np.mean(talk ** 2))
    return conformance.to_int16(tones + talk * np.sqrt(p_tone / p_talk / 10 ** (ratio_db / 10))), spans


def measure(params: DetectorParams, signals: List[Tuple[str, float, np.ndarray, list]]) -> Dict[float, Dict]:
    out: Dict[float, Dict] = {r: {"found": 0, "keys": 0, "extra": 0, "per_source": {}} for r in RATIOS}
    for source, ratio, x, spans in signals:
        reports = [conformance.Report(e.digit, e.start) for e in dtmfguard.detect(x, RATE, params)]
        hits, extra = conformance._match(reports, spans)
        o = out[ratio]
        o["found"] += hits
        o["keys"] += len(spans)
        o["extra"] += extra
        o["per_source"][source] = (hits, len(spans))
    return out


def _line(name: str, res: Dict[float, Dict], base: Dict[float, Dict] = None) -> str:
    parts = []
    for r in RATIOS:
        o = res[r]
        gain = "" if base is None else f" ({o['found'] - base[r]['found']:+d})"
        parts.append(f"{r:+d} dB {100 * o['found'] / max(o['keys'], 1):5.1f} %{gain:7s} extra {o['extra']}")
    return f"{name:42s} " + "   ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("tune", "report", "all"), default="tune")
    ap.add_argument("--seed", type=int, default=1000, help="file order and keys (tune on one, report on another)")
    ap.add_argument("--sources", default=",".join(SOURCES), help="comma-separated speech sources")
    ap.add_argument("--keys", type=int, default=256, help="keys per source and ratio")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="as benchmarks/talkoff.py")
    ap.add_argument("--ablate", action="store_true", help="also each ABLATIONS entry relaxed alone")
    args = ap.parse_args(argv)
    params = _parse_set(args.set) if args.set else DEFAULT_PARAMS
    signals = []
    for i, source in enumerate(s for s in args.sources.split(",") if s):
        if not corpora.available(source):
            print(f"{source}: not installed ({corpora.SOURCES[source].package}), skipped", file=sys.stderr)
            continue
        talk = speech(source, args.split, args.seed + i)
        for ratio in RATIOS:
            x, spans = keys_under(talk, ratio, args.seed + 100 + 10 * i + ratio, args.keys)
            signals.append((source, ratio, x, spans))
    base = measure(params, signals)
    print(f"talk-down, split {args.split}, seed {args.seed}, sources {args.sources}"
          + (f", overrides {args.set}" if args.set else ""))
    for source in dict.fromkeys(s for s, *_ in signals):
        print(f"  {source:8s} " + "   ".join(
            f"{r:+d} dB {base[r]['per_source'][source][0]}/{base[r]['per_source'][source][1]}" for r in RATIOS))
    print(_line("as given", base))
    if args.ablate:
        for name, change in ABLATIONS.items():
            print(_line(name, measure(replace(params, **change), signals), base), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
