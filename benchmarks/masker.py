# SPDX-License-Identifier: GPL-2.0-or-later
"""Masker: the leak table (look-ahead -> leaked ms -> digits recovered) and real-time channels per core.

Issue 4 asks for the smallest look-ahead that leaks nothing, measured, not
claimed.  For each look-ahead the same generated presses (the conditions of
``dtmfguard.adversary.CONDITIONS``: durations 40 ms-1 s, fast typing 45/45 ms,
-30..0 dBm0, twist, noise, real speech around and under the digits, µ-law)
go through a default :class:`~dtmfguard.masker.Masker` in 20 ms frames, and we
report side by side:

* leaked ms per press: tone samples not replaced by the full-level mask
  (a partial fade counts as leaked), mean and worst, and the share of presses
  with any leak;
* digits recovered: the adversarial least-squares decoder on the agent's audio
  after a µ-law round trip, one answer per press (chance = 1/16);
* the same decoder on the unmasked audio (proof that it works).

The hard condition (speech only 6 dB under the tone) is reported on its own
line: it is beyond what the default promises.

Channels per core: seconds of audio masked per CPU second (one masker, 20 ms
frames, single-threaded), with and without key presses.

Run:  python benchmarks/masker.py [--presses 40] [--lookaheads 0,2,4,...] [--json out.json]
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # single-threaded, before numpy
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Dict, List  # noqa: E402

import numpy as np  # noqa: E402

from dtmfguard import adversary as A  # noqa: E402
from dtmfguard import g711  # noqa: E402
from dtmfguard.masker import DEFAULT_LOOKAHEAD_MS, Masker  # noqa: E402

FRAME = 160


def mask_stream(x: np.ndarray, **opts):
    m = Masker(**opts)
    parts = [m.process(x[i: i + FRAME]) for i in range(0, x.size, FRAME)] + [m.flush()]
    return np.concatenate(parts)[m.delay_samples:], m


def leaked_ms(out: np.ndarray, m: Masker, spans) -> List[float]:
    ref = np.clip(np.round(m._mask_signal(0, out.size)), -32768, 32767)
    return [float(np.sum(np.abs(out[s.start: s.end].astype(float) - ref[s.start: s.end]) > 1.01)) / 8.0
            for s in spans]


def build_corpus(presses: int, seed: int, conditions: Dict[str, dict], speech):
    rng = np.random.default_rng(seed)
    return {name: A.press_scenario(rng, presses, speech=speech, **cond) for name, cond in conditions.items()}


def leak_row(corpus, lookahead_ms: float) -> dict:
    leaks: List[float] = []
    recovered = total = 0
    for x, spans in corpus.values():
        out, m = mask_stream(x, lookahead_ms=lookahead_ms)
        leaks += leaked_ms(out, m, spans)
        recovered += A.count_recovered(g711.ulaw_decode(g711.ulaw_encode(out)), spans)
        total += len(spans)
    arr = np.array(leaks)
    return {"lookahead_ms": lookahead_ms, "presses": total, "leaked_ms_mean": float(arr.mean()),
            "leaked_ms_max": float(arr.max()), "presses_leaking": int(np.sum(arr > 0)),
            "recovered": recovered, "chance_bound": A.chance_bound(total)}


def channels_per_core(x: np.ndarray, seconds_min: float = 2.0) -> float:
    m = Masker()
    done = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds_min:
        for i in range(0, x.size, FRAME):
            m.process(x[i: i + FRAME])
        done += x.size
    return done / 8000.0 / (time.process_time() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presses", type=int, default=40, help="presses per condition (default 40)")
    ap.add_argument("--lookaheads", default="0,2,4,6,8,10,12,14,16,20,30",
                    help="look-ahead values in ms, comma separated")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    speech = A.load_speech(180.0, seed=args.seed)
    if speech is None:
        print("note: no speech prompts installed (asterisk-core-sounds-en-wav); speech conditions skipped")
    conds = {k: v for k, v in A.CONDITIONS.items() if speech is not None or not _needs_speech(v)}
    corpus = build_corpus(args.presses, args.seed, conds, speech)
    hard = build_corpus(args.presses, args.seed + 1, A.HARD_CONDITIONS, speech) if speech is not None else {}
    total = sum(len(s) for _, s in corpus.values())
    unmasked = sum(A.count_recovered(x, s) for x, s in corpus.values())
    print(f"corpus: {len(corpus)} conditions x {args.presses} presses = {total} presses; "
          f"decoder on UNMASKED audio recovers {unmasked}/{total} ({unmasked / total:.1%})")
    print()
    print("look-ahead | leaked ms mean | leaked ms max | presses leaking | digits recovered (masked, µ-law)"
          " | chance bound")
    rows = []
    for la in [float(v) for v in args.lookaheads.split(",")]:
        r = leak_row(corpus, la)
        rows.append(r)
        print(f"{la:7.0f} ms | {r['leaked_ms_mean']:14.2f} | {r['leaked_ms_max']:13.1f} | "
              f"{r['presses_leaking']:7d}/{r['presses']:<7d} | {r['recovered']:16d}/{r['presses']:<15d} | "
              f"{r['chance_bound']}")
    zero = [r["lookahead_ms"] for r in rows if r["presses_leaking"] == 0 and r["recovered"] == 0]
    print()
    print(f"smallest look-ahead with zero leak here: {min(zero) if zero else 'none'} ms; "
          f"default DEFAULT_LOOKAHEAD_MS = {DEFAULT_LOOKAHEAD_MS} ms")
    hard_rows = []
    if hard:
        hx = {k: v for k, v in hard.items()}
        hu = sum(A.count_recovered(x, s) for x, s in hx.values())
        for la in (DEFAULT_LOOKAHEAD_MS, 30.0, 50.0):
            r = leak_row(hx, la)
            hard_rows.append(r)
            print(f"hard ({', '.join(hx)}), look-ahead {la:.0f} ms: unmasked recovered {hu}/{r['presses']}, "
                  f"leaking presses {r['presses_leaking']}, leaked ms max {r['leaked_ms_max']:.1f}, "
                  f"recovered after masking {r['recovered']}")
    talk_off = None
    if speech is not None:
        sp16 = np.clip(np.round(speech), -32768, 32767).astype(np.int16)
        out, m = mask_stream(sp16)
        minutes = sp16.size / 8000 / 60
        talk_off = {"minutes": minutes, "spans_per_min": len(m.masked_spans) / minutes,
                    "share_masked": float(np.mean(out != sp16))}
        print(f"talk-off: {minutes:.1f} min of real speech, no keys: {talk_off['spans_per_min']:.1f} masked "
              f"spans/min, {talk_off['share_masked']:.2%} of speech samples masked (costs little; a leak fails)")
    print()
    x, _ = corpus[next(iter(corpus))]
    quiet = speech[: 8000 * 20].copy() if speech is not None else np.zeros(8000 * 20)
    cpc_presses = channels_per_core(x)
    cpc_speech = channels_per_core(np.clip(np.round(quiet), -32768, 32767).astype(np.int16))
    print(f"real-time channels per core (20 ms frames, default look-ahead {DEFAULT_LOOKAHEAD_MS} ms): "
          f"{cpc_presses:.0f} with key presses, {cpc_speech:.0f} on speech")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"unmasked_recovered": unmasked, "presses": total, "leak_table": rows, "hard": hard_rows, "talk_off": talk_off,
                       "channels_per_core": {"presses": cpc_presses, "speech": cpc_speech},
                       "default_lookahead_ms": DEFAULT_LOOKAHEAD_MS}, f, indent=2)
    return 0


def _needs_speech(cond: dict) -> bool:
    return bool(cond.get("speech_around") or cond.get("speech_under_db") is not None)


if __name__ == "__main__":
    raise SystemExit(main())
