# SPDX-License-Identifier: GPL-2.0-or-later
"""Key-free audio in every talk-off variant, per source and variant: what the masker a call runs changes (issue 12).

Issue 12's goals (at most 1 flat mask a minute and 0.5 % of the samples changed, per source) are measured at normal
speed by ``masker.py --skip b,c,d``.  The brief judges every DSP change on playback-speed and gain variants too; this
runs ``masker.NEW_MASKER``, :class:`dtmfguard.dsp.keypad.KeypadMasker` (the masker with its strict receiver, as a call and ``dtmfguard mask``
run it) over every installed source of :mod:`dtmfguard.testkit.corpora` in each variant of ``corpora.VARIANTS``
(0.9-1.1x speed, +6 dB), 20 ms frames, and prints per source and variant: % of samples changed, % band-notched, flat
masks a minute and keypad bursts opened, marking a row over either goal.  ``--set NAME=VALUE`` also runs the masker
with a ``MaskerParams`` field changed, in the same run, beside it; ``--boundary`` adds, per source at normal speed,
the share of samples the blind attacker names in the unmasked audio (a masker as sensitive as the attacker changes at
least about that much).

    python benchmarks/keyfree_variants.py --split report --minutes 12
    python benchmarks/keyfree_variants.py --split tune --sources en,fr,it --set keypad_burst_keys=None
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import masker as bench  # noqa: E402

from dtmfguard.testkit import corpora  # noqa: E402

#: issue 12's key-free goals, per source
MAX_CHANGED = 0.005
MAX_FLAT_PER_MIN = 1.0


def measure(cls, x: np.ndarray) -> dict:
    out, m = bench.mask_stream(cls, x)
    mins = x.size / 8000.0 / 60.0
    return {"changed": float(np.mean(out != x)), "notched": float(np.mean(bench._notched(m, out.size))),
            "flat_per_min": len(m.masked_spans) / mins, "bursts": int(m.bursts)}


def cell(r: dict) -> str:
    over = r["changed"] > MAX_CHANGED or r["flat_per_min"] > MAX_FLAT_PER_MIN
    return (f"{100 * r['changed']:6.3f} % ({100 * r['notched']:6.3f} notched) {r['flat_per_min']:4.2f}/min "
            f"{r['bursts']:d} burst{'s' if r['bursts'] != 1 else ' '}{' OVER' if over else '     '}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="report", choices=("report", "tune", "all"))
    ap.add_argument("--sources", help="comma-separated source names (default: every installed source)")
    ap.add_argument("--variants", help="comma-separated variant labels (default: all of corpora.VARIANTS)")
    ap.add_argument("--minutes", type=float, default=12.0, help="at most this much of each source (default 12)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="also run the masker with this MaskerParams field changed (repeatable), beside it")
    ap.add_argument("--boundary", action="store_true",
                    help="also the share of samples the blind attacker names in each source's unmasked audio (1.0x)")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    names, variants = bench.sources_and_variants(ap, args)
    try:
        changes = bench.param_changes(args.set)
    except ValueError as exc:
        ap.error(str(exc))
    models = {"masker": bench.NEW_MASKER}
    if changes:
        models["with " + bench.changes_label(changes)] = bench.masker_with(changes)
    print(f"{args.split} half, up to {args.minutes:g} min per source; per variant: % of samples changed (band-notched), "
          f"flat masks/min, keypad bursts; OVER: above {100 * MAX_CHANGED:g} % or {MAX_FLAT_PER_MIN:g}/min")
    print("  columns: " + " | ".join(models))
    rows = []
    for name in names:
        for label, speed, gain in variants:
            try:
                x = corpora.signal(name, args.split, max_seconds=args.minutes * 60, speed=speed, gain_db=gain)
            except corpora.CorpusMissing as exc:
                print(f"  {name}: {exc}")
                break
            x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
            row = {"source": name, "variant": label, "minutes": round(x.size / 8000 / 60, 2)}
            row.update({model: measure(cls, x) for model, cls in models.items()})
            if args.boundary and speed == 1.0 and not gain:
                row["attacker"] = bench.boundary_row(x, row["minutes"])["samples"]
            rows.append(row)
            extra = f"  attacker names {100 * row['attacker']:.3f} %" if "attacker" in row else ""
            print(f"  {name:12s} {label:6s} {row['minutes']:5.1f} min  "
                  + " | ".join(cell(row[model]) for model in models) + extra, flush=True)
    for model in models:
        over = [f"{r['source']} {r['variant']}" for r in rows if r[model]["changed"] > MAX_CHANGED
                or r[model]["flat_per_min"] > MAX_FLAT_PER_MIN]
        print(f"  {model}: {len(over)} of {len(rows)} over a goal" + (f" ({', '.join(over)})" if over else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"split": args.split, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
