# SPDX-License-Identifier: GPL-2.0-or-later
"""Where the oracle-timed attacker's excess over chance comes from (issue 12): a press's unmasked head.

On the talk-over cells of ``masker_payment_cells.py`` (default masker), the attacker who knows each press's span
(:func:`dtmfguard.testkit.adversary.oracle_score`) names far more presses than chance where the tones run under
louder speech.  This asks how much of that a better masker could remove.  A genie takes the default masker's
output and band-notches (as the payment profile does) every sample of each press that the masker left untreated
(neither flat-masked nor notched), except the press's first H ms, which stay as the masker emitted them.  H = 0 is a
perfect masker (every tone sample treated); H = "masker" is the masker's own output.  The oracle is scored after the
cell's G.711 round trip.

    python benchmarks/oracle_boundary.py --seeds 4130-4149
    python benchmarks/oracle_boundary.py --seeds 3200-3204 --cells 5,21,22,23,24,27 --heads 0,5,20
    python benchmarks/oracle_boundary.py --seeds 4260-4269 --cells 22-29 --heads 0 --per-cell

``--per-cell`` adds, for each cell (e.g. the boundary cells 22-29, tone-to-speech -12 ... +10 dB), the presses
the blind attacker and the oracle-timed one name in the unmasked input, the masker's output and the payment
profile's, split into a sequence's first six keys and the rest: issue 12's boundary beside the unmasked recovery.

It also splits what the oracle names by press index in the 24-key sequence (the masker's output, the payment
profile's from the start, the unmasked input): a keypad burst (``keypad_burst_*``) opens at the first key the strict
detector confirms (``keypad_burst_receiver``, since the fifteenth session) or after the masker's third key-grade press,
so the first presses of a sequence carry what the default masker leaves.  The masker is the one a call runs
(``masker.NEW_MASKER``: with its detector); ``--no-receiver`` gives the masker without the detector's burst.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import masker as bench  # noqa: E402
import masker_payment_cells as cells_bench  # noqa: E402

from dtmfguard.testkit import adversary as A  # noqa: E402

#: the cells whose tones run 3 dB under the speech or at its level: "tones 3 dB under speech", the four
#: "3 dB under speech, ..." cells, boundary -3 and 0 dB
UNDER_SPEECH_CELLS = "1,17,18,19,20,25,26"


def treated(m, n: int) -> np.ndarray:
    """Output samples the masker flat-masked or band-notched."""
    sel = bench._notched(m, n)
    for s in m.masked_spans:
        sel[max(s.start, 0): max(min(s.end, n), 0)] = True
    return sel


def genie(out: np.ndarray, notched_all: np.ndarray, sel: np.ndarray, spans: list, head: int) -> np.ndarray:
    """``out`` with each press's untreated samples after its first ``head`` samples taken from ``notched_all``."""
    g = out.copy()
    for sp in spans:
        _, s, e = A._span_fields(sp)
        a = min(s + head, e)
        keep = sel[a:e]
        g[a:e][~keep] = notched_all[a:e][~keep]
    return g


#: press indices (the n-th key of a 24-key sequence) grouped: the first, those before a keypad burst can open (the
#: default masker opens one after its third key-grade press), the burst's first presses, the rest
INDEX_GROUPS = ((0, 1), (1, 3), (3, 6), (6, None))


def by_group(answers: List[str], spans: list) -> List[List[tuple]]:
    """Per :data:`INDEX_GROUPS` group, (the oracle-timed attacker's answer, the key) of each press."""
    pairs = [(a, A._span_fields(sp)[0]) for sp, a in zip(spans, answers)]
    return [pairs[a:b] for a, b in INDEX_GROUPS]


#: ``--per-cell`` splits each sequence here: the keys before a keypad burst can have opened, and the rest
FIRST_KEYS = 6


def right_split(answers: List, spans: list) -> np.ndarray:
    """Presses named right among a sequence's first :data:`FIRST_KEYS` and among the rest."""
    right = [a == A._span_fields(sp)[0] for sp, a in zip(spans, answers)]
    return np.array([sum(right[:FIRST_KEYS]), sum(right[FIRST_KEYS:])])


def group_name(a: int, b) -> str:
    return f"{a}" if b == a + 1 else f"{a}-{b - 1}" if b is not None else f"{a}+"


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="e.g. 4130-4149 or 3200,3201")
    ap.add_argument("--cells", default=UNDER_SPEECH_CELLS, help=f"cell indices (default {UNDER_SPEECH_CELLS})")
    ap.add_argument("--heads", default="0,5,10,20,30,60", help="head lengths H in ms")
    ap.add_argument("--presses", type=int, default=24)
    ap.add_argument("--no-receiver", action="store_true",
                    help="the masker without its strict receiver (keypad_burst_receiver off: the masker before it)")
    ap.add_argument("--per-cell", action="store_true",
                    help="also name blind and oracle-timed digits per cell (first six keys + the rest)")
    ap.add_argument("--keys", choices=tuple(cells_bench.KEY_SETS), default="16",
                    help="the keys each sequence is drawn from: all 16 (default) or a customer's keypad's 12 (no A-D)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="the masker with this MaskerParams field changed (repeatable), e.g. --set keypad_burst_keys=None")
    args = ap.parse_args(argv)
    try:
        seeds = cells_bench.seeds_arg(args.seeds)
        want = cells_bench.seeds_arg(args.cells)  # "22-29" or "1,17,18"
        heads = [float(h) for h in args.heads.split(",")]
    except ValueError as exc:
        ap.error(f"bad number: {exc}")
    try:
        changes = bench.param_changes(args.set)
    except ValueError as exc:
        ap.error(str(exc))
    if args.no_receiver:
        changes["keypad_burst_receiver"] = False
    table = cells_bench.cells()
    cls = bench.masker_with(changes)
    keys = cells_bench.KEY_SETS[args.keys]
    if any(not 0 <= c < len(table) for c in want) or any(h < 0 for h in heads):
        ap.error(f"cells are 0..{len(table) - 1}; heads at least 0")
    score = {h: 0 for h in heads}
    presses = 0
    #: output -> per group, (answer, key) of every press
    groups = {k: [[] for _ in INDEX_GROUPS] for k in ("masker", "payment profile", "unmasked")}
    outputs = ("unmasked", "masker", "payment profile")
    #: cell -> output -> attacker -> [first keys, rest]; and cell -> presses [first keys, rest]
    per_cell = {c: {o: {"blind": np.zeros(2, int), "oracle": np.zeros(2, int)} for o in outputs} for c in want}
    cell_presses = {c: np.zeros(2, int) for c in want}
    try:
        for seed, speech in cells_bench.seed_speech(seeds):
            for ci in want:
                _, cond, off = table[ci]
                x, spans = A.press_scenario(np.random.default_rng(seed + off), args.presses, speech=speech, keys=keys,
                                            **cond)
                rate = cond.get("rate", 8000)
                out, m = bench.mask_stream(cls, x, rate)
                notched_all, _ = bench.mask_stream(bench.payment_model(bench.NEW_MASKER), x, rate)
                sel = treated(m, out.size)
                if args.per_cell:
                    cell_presses[ci] += [len(spans[:FIRST_KEYS]), len(spans[FIRST_KEYS:])]
                for label, y in (("masker", out), ("payment profile", notched_all), ("unmasked", x)):
                    heard = bench._codec(y, cond)
                    answers = A.oracle_answers(heard, spans, rate, keys=keys)
                    for got, more in zip(groups[label], by_group(answers, spans)):
                        got += more
                    if args.per_cell:
                        per_cell[ci][label]["blind"] += right_split(A.answers(A.decode(heard, rate), spans), spans)
                        per_cell[ci][label]["oracle"] += right_split(answers, spans)
                for h in heads:
                    g = genie(out, notched_all, sel, spans, int(round(h * rate / 1000.0)))
                    score[h] += A.oracle_score(bench._codec(g, cond), spans, rate, keys=keys)
                presses += len(spans)
    except cells_bench.SpeechMissing as exc:
        print(exc)
        return 1
    print(f"{len(seeds)} seeds x cells {args.cells}, keys {args.keys}"
          + (f", masker with {', '.join(f'{k}={v!r}' for k, v in changes.items())}" if changes else "")
          + f": {presses} presses, the oracle answering among {len(keys)} keys, chance {presses / len(keys):.0f} "
          f"(10^-4 bound {A.chance_bound(presses, p=1.0 / len(keys))})")
    own = sum(answer == key for group in groups["masker"] for answer, key in group)
    print(f"  the masker's own output: oracle names {own}")
    for h in heads:
        print(f"  untreated press samples notched after the first {h:g} ms: oracle names {score[h]}")
    print("  by press index in the sequence: named by the oracle (masker | payment profile from the start | unmasked) "
          f"of presses, chance 1/{len(keys)}; and the chance of a guesser answering as the oracle does on that output "
          "whatever the key, with its 10^-4 bound (A.guess_chance: the oracle's answers on masked audio are nearly "
          "constant, so chance is how many presses are of the keys it favours)")
    pools = {label: [a for g in got for a, _ in g] for label, got in groups.items()}
    for k, (a, b) in enumerate(INDEX_GROUPS):
        cols = {}
        for label, got in groups.items():
            right = sum(ans == key for ans, key in got[k])
            chance, bound = A.guess_chance([ans for ans, _ in got[k]], [key for _, key in got[k]], pools[label])
            cols[label] = (right, chance, bound)
        n = len(groups["masker"][k])
        m, p, u = cols["masker"], cols["payment profile"], cols["unmasked"]
        print(f"    {group_name(a, b):>5s}: {m[0]:5d} (chance {m[1]:5.1f}, bound {m[2]:5.1f}) | "
              f"{p[0]:5d} (chance {p[1]:5.1f}, bound {p[2]:5.1f}) | {u[0]:5d} of {n:5d}, chance {n / len(keys):.0f}")
    if args.per_cell:
        print(f"  per cell, presses named: blind | oracle-timed, each as first {FIRST_KEYS} keys + the rest")
        print(f"    {'cell':38s} {'presses':>9s}  {'unmasked':>17s}  {'masker':>17s}  {'payment profile':>17s}")
        for ci in want:
            n = cell_presses[ci]
            cols = ["{}+{} | {}+{}".format(*per_cell[ci][o]["blind"], *per_cell[ci][o]["oracle"]) for o in outputs]
            print(f"    {table[ci][0][:38]:38s} {n[0]:>4d}+{n[1]:<4d}  " + "  ".join(f"{c:>17s}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
