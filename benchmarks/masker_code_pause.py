# SPDX-License-Identifier: GPL-2.0-or-later
"""A card number, the agent's next question, then the security code: what each attacker names in each part.

The talk-over cells of ``masker_payment_cells.py`` key 24 presses in one run.  A customer keys a card number (16
keys), then talks with the agent (``--pause-s`` of speech, -22..-12 dBm0), then keys the 3-digit security code, in
the cell's conditions (tones under speech, off nominal, G.711, 16 kHz ...).  The keypad burst that the card opened
closes ``keypad_burst_hold_ms`` after its last press, so without ``keypad_burst_linger_*`` the code's keys are the
first keys of a new sequence, whose start the default masker leaves to the oracle-timed attacker (README,
"Masking", the first six keys).  Printed per part (the card's first six keys, the rest of the card, the code):
presses the oracle-timed and the blind attacker name in the unmasked input and in the default masker's output (a
G.711 round trip as the cell says), with chance and the 10^-4 bound.

    python benchmarks/masker_code_pause.py --seeds 4270-4279 --pause-s 6
    python benchmarks/masker_code_pause.py --seeds 4270-4279 --pause-s 45 --set keypad_burst_linger_presses=None
    python benchmarks/masker_code_pause.py --seeds 4270-4279 --pause-s 15 --card-split 6

``--card-split K``: the customer stops after the card's K-th key too (the same pause), so the card is keyed in two
runs; the three keys after that pause are then counted as a part of their own (the burst's hold,
``keypad_burst_hold_ms``, is what reaches them).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import masker as bench  # noqa: E402
import masker_payment_cells as cells_bench  # noqa: E402

from dtmfguard.dsp.levels import dbm0_to_peak  # noqa: E402
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS  # noqa: E402
from dtmfguard.testkit import adversary as A  # noqa: E402
from dtmfguard.testkit.synth import ToneSpan  # noqa: E402

CARD_KEYS, CODE_KEYS, FIRST_KEYS = 16, 3, 6
PARTS = ("card, first 6 keys", "card, keys 7-16", "security code", "mid-card, next 3")


def _talk(rng: np.random.Generator, speech: np.ndarray, pause_s: float, rate: int) -> np.ndarray:
    """``pause_s`` of the speech at -22..-12 dBm0 (the level of ``speech_around``)."""
    n = int(round(pause_s * 8000))
    at = int(rng.integers(0, max(speech.size - n, 1)))
    talk = np.resize(speech[at:], n).astype(np.float64)
    if rate != 8000:
        from scipy.signal import resample_poly

        talk = resample_poly(talk, rate // 1000, 8)
    return talk * dbm0_to_peak(float(rng.uniform(-22.0, -12.0))) / np.sqrt(2) / (np.sqrt(np.mean(talk ** 2)) + 1e-9)


def card_pause_code(rng: np.random.Generator, speech: np.ndarray, cond: dict, pause_s: float, split: int = 0):
    """(int16 samples, spans): the cell's card number (with ``split``, its first ``split`` keys, ``pause_s`` of
    speech, the rest), ``pause_s`` of speech, the cell's security code."""
    rate = cond.get("rate", 8000)
    runs = [split, CARD_KEYS - split] if split else [CARD_KEYS]
    parts, spans, pos = [], [], 0
    for keys in runs + [CODE_KEYS]:
        if parts:
            parts.append(_talk(rng, speech, pause_s, rate))
            pos += parts[-1].size
        y, y_spans = A.press_scenario(rng, keys, speech=speech, **cond)
        spans += [ToneSpan(s.digit, s.start + pos, s.end + pos) for s in y_spans]
        parts.append(y)
        pos += y.size
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16), spans


def part_of(k: int, split: int = 0) -> int:
    if split and split <= k < split + 3:
        return 3
    return 0 if k < FIRST_KEYS else 1 if k < CARD_KEYS else 2


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="e.g. 4270-4279 or 3200,3201")
    ap.add_argument("--cells", default="0-29", help="cell indices of masker_payment_cells.py (default all: 0-29)")
    ap.add_argument("--pause-s", type=float, default=6.0, help="speech between the card and the code (s)")
    ap.add_argument("--card-split", type=int, default=0, metavar="K",
                    help="the customer also stops after the card's K-th key (1..13; default 0: not)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="run the masker with this MaskerParams field changed (repeatable)")
    args = ap.parse_args(argv)
    try:
        seeds = cells_bench.seeds_arg(args.seeds)
        want = cells_bench.seeds_arg(args.cells)
        params = dataclasses.replace(DEFAULT_MASKER_PARAMS, **bench.param_changes(args.set))
    except ValueError as exc:
        ap.error(str(exc))
    table = cells_bench.cells()
    if any(not 0 <= c < len(table) for c in want) or not 0 < args.pause_s <= 600 or not 0 <= args.card_split <= 13:
        ap.error(f"cells are 0..{len(table) - 1}; --pause-s 0 < s <= 600; --card-split 0..13")
    split = args.card_split
    named = np.zeros((2, 2, len(PARTS)), dtype=int)  # [unmasked, masker][oracle, blind][part]
    presses = np.zeros(len(PARTS), dtype=int)
    bursts = 0
    try:
        for seed, speech in cells_bench.seed_speech(seeds):
            for ci in want:
                _, cond, off = table[ci]
                rate = cond.get("rate", 8000)
                x, spans = card_pause_code(np.random.default_rng(seed * 7 + off), speech, cond, args.pause_s, split)
                out, m = bench.mask_stream(bench.NEW_MASKER, x, rate, params=params)
                bursts += m.bursts
                for row, y in enumerate((x, out)):
                    heard = bench._codec(y, cond)
                    answers = (A.oracle_answers(heard, spans, rate), A.answers(A.decode(heard, rate), spans))
                    for col, got in enumerate(answers):
                        for k, (sp, a) in enumerate(zip(spans, got)):
                            named[row, col, part_of(k, split)] += a == sp.digit
                for k in range(len(spans)):
                    presses[part_of(k, split)] += 1
    except cells_bench.SpeechMissing as exc:
        print(exc)
        return 1
    changes = ", ".join(args.set) or "the defaults"
    print(f"{len(seeds)} seeds x cells {args.cells}, {args.pause_s:g} s of speech before the code"
          + (f" and after the card's key {split}" if split else "") + ", masker with "
          f"{changes}: {bursts} keypad bursts")
    print(f"  {'part':20s} {'presses':>7s} {'chance':>6s} {'bound':>5s}   oracle: unmasked  masker   "
          f"blind: unmasked  masker")
    for p, name in enumerate(PARTS):
        n = int(presses[p])
        if not n:
            continue
        print(f"  {name:20s} {n:7d} {n / 16:6.1f} {A.chance_bound(n):5d}   {named[0, 0, p]:16d} {named[1, 0, p]:7d}"
              f"   {named[0, 1, p]:15d} {named[1, 1, p]:7d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
