# SPDX-License-Identifier: GPL-2.0-or-later
"""The talk-over cells of ``benchmarks/masker.py --payment`` over many seeds, for several maskers.

Per seed, the 30 cells of ``masker.py --payment`` sections (b) and (c) (22 conditions and 8 boundary rows: the
same conditions, random seeds and scenarios), run through each masker after a G.711 round trip: digits the blind
attacker names, and the oracle-timed attacker's total.  ``--profile payment`` (the default): the payment profile on
from the first sample (``masker.payment_model``); ``--profile default``: the default masker, as outside a payment.
Only that model is run (the benchmark also runs the others), so a set of seeds takes minutes (``--no-oracle``: about
a tenth of that).  ``--revs``: git revisions (their masker loaded as ``masker.py --legacy-rev`` loads it) and/or
``wt`` (the working tree).  ``--detail``: for each press the blind attacker names, where in it (samples from the
press's start) and from how many windows.

Run:  python benchmarks/masker_payment_cells.py --revs main,wt --seeds 500-519,600-619 [--cells 16] [--json out.json]
      python benchmarks/masker_payment_cells.py --profile default --no-oracle --detail --revs 0bf698b,wt --seeds 3200-3299
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # single-threaded, before numpy
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import List  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import masker as bench  # noqa: E402

from dtmfguard.testkit import adversary as A  # noqa: E402

BOUNDARY_DB = (-12.0, -9.0, -6.0, -3.0, 0.0, 3.0, 6.0, 10.0)


#: ``--keys``: the keys a benchmark's presses are drawn from (and the oracle answers among): all 16, or the 12 of a
#: customer's keypad
KEY_SETS = {"16": A.PAIR_KEYS, "keypad": A.KEYPAD_KEYS}


def cells() -> List[tuple]:
    """(name, press_scenario options, offset added to the seed), in the order of ``masker.py --payment``."""
    conds = dict(bench.CONDITIONS, **bench.PAYMENT_EXTRA)
    out = [(name, cond, i) for i, (name, cond) in enumerate(conds.items())]
    out += [(f"boundary {t:+.0f} dB", {"speech_under_db": t}, 100 + i) for i, t in enumerate(BOUNDARY_DB)]
    return out


def seeds_arg(text: str) -> List[int]:
    out: List[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


class SpeechMissing(RuntimeError):
    """The talk-over cells need the English prompts (asterisk-core-sounds-en-wav)."""


def seed_speech(seeds):
    """(seed, its 240 s of talk-over speech) for each seed, loaded one at a time; :class:`SpeechMissing` without the
    English prompts (a benchmark prints a note and exits 1)."""
    for seed in seeds:
        speech = A.load_speech(240.0, seed=seed)
        if speech is None:
            raise SpeechMissing("note: asterisk-core-sounds-en-wav not installed")
        yield seed, speech


def named_presses(heard: np.ndarray, spans: list, rate: int) -> List[str]:
    """Each press the blind attacker names right: its index, key, span and length, and the detections naming it
    (start and end in samples from the press's start, windows in support)."""
    dets = A.decode(heard, rate)
    out = []
    for k, (sp, answer) in enumerate(zip(spans, A.answers(dets, spans))):
        digit, s, e = A._span_fields(sp)
        if answer is not None and answer == digit:
            hits = [(d.start - s, d.end - s, d.support) for d in dets if d.start < e and d.end > s and d.digit == digit]
            out.append(f"press {k} key {digit} [{s},{e}) {(e - s) * 1000 // rate} ms, named by {hits}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--revs", default="wt", help="comma list of git revisions and/or wt (the working tree)")
    ap.add_argument("--seeds", required=True, help="e.g. 500-519,600-619,907")
    ap.add_argument("--cells", default="", help="comma list of cell indices (default: all 30)")
    ap.add_argument("--presses", type=int, default=24)
    ap.add_argument("--profile", choices=("payment", "default"), default="payment",
                    help="the masker's model: the payment profile (default) or the default masker")
    ap.add_argument("--no-oracle", action="store_true", help="the blind attacker only (the oracle total prints -1)")
    ap.add_argument("--detail", action="store_true", help="where the blind attacker names each press it names")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="also run the working tree with this MaskerParams field changed (repeatable; one more "
                         "masker, labelled wt+), e.g. --set keypad_burst_profile=True")
    ap.add_argument("--keys", choices=tuple(KEY_SETS), default="16",
                    help="the keys each cell's presses are drawn from: all 16 (default) or a customer's keypad's 12 "
                         "(no A-D; another random sequence than the 16 keys' for the same seed)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    keys = KEY_SETS[args.keys]
    try:
        changes = bench.param_changes(args.set)
    except ValueError as exc:
        ap.error(str(exc))
    table = cells()
    want = [int(c) for c in args.cells.split(",")] if args.cells else list(range(len(table)))
    models = {}
    for rev in args.revs.split(","):
        cls = bench.NEW_MASKER if rev == "wt" else bench.load_legacy(rev, f"rev_{rev}").Masker
        models[rev] = bench.payment_model(cls) if args.profile == "payment" else cls
    if changes:
        variant = bench.masker_with(changes)
        models["wt+"] = bench.payment_model(variant) if args.profile == "payment" else variant
        print("wt+: the working tree with " + bench.changes_label(changes))
    result: dict = {rev: {} for rev in models}
    print(f"{args.profile} masker, {len(want)} cells x {args.presses} presses per seed; blind / oracle-timed per masker")
    try:
        for seed, speech in seed_speech(seeds_arg(args.seeds)):
            tot = {rev: [0, 0] for rev in models}
            named, details = [], []
            for ci in want:
                name, cond, off = table[ci]
                x, spans = A.press_scenario(np.random.default_rng(seed + off), args.presses, speech=speech, keys=keys,
                                            **cond)
                rate = cond.get("rate", 8000)
                for rev, model in models.items():
                    out, m = bench.mask_stream(model, x, rate)
                    heard = bench._codec(out, cond)
                    b = A.count_recovered(heard, spans, rate)
                    o = -1 if args.no_oracle else A.oracle_score(heard, spans, rate)
                    result[rev][f"{seed}/{ci}"] = [b, o, m.errors]
                    tot[rev][0] += b
                    tot[rev][1] += o
                    if b:
                        named.append(f"{rev}: {b} in cell {ci} ({name})")
                        if args.detail:
                            details += [f"    {rev}, cell {ci}: {line}" for line in named_presses(heard, spans, rate)]
            for rev in models:
                result[rev][str(seed)] = tot[rev]
            print(f"  seed {seed}: " + " | ".join(f"{rev} {t[0]} / {t[1]}" for rev, t in tot.items())
                  + (f"  ({'; '.join(named)})" if named else ""), flush=True)
            for line in details:
                print(line)
    except SpeechMissing as exc:
        print(exc)
        return 1
    seeds = seeds_arg(args.seeds)
    print("  all: " + " | ".join(f"{rev} {sum(result[rev][str(s)][0] for s in seeds)} / "
                                 f"{sum(result[rev][str(s)][1] for s in seeds)}" for rev in models))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
