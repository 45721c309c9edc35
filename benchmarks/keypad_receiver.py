# SPDX-License-Identifier: GPL-2.0-or-later
"""What the strict receiver's keypad burst costs key-free audio (issue 12, ``MaskerParams.keypad_burst_receiver``).

A key the Q.24 receiver confirms opens the masker's keypad burst (the payment profile's band notch for
``keypad_burst_hold_ms``) unless the music context before it holds notes.  On key-free audio every such key is a
false one, and each burst band-notches 20 s.  This runs :class:`dtmfguard.dsp.keypad.KeypadMasker` and the masker
alone over every installed source of :mod:`dtmfguard.testkit.corpora` in the talk-off variants of issue 17 (playback
speeds 0.9-1.1x, +6 dB), 20 ms frames, and prints per source: the keys the receiver confirmed, those judged notes,
the bursts opened, and the share of samples the receiver's bursts changed beyond the masker alone.

    python benchmarks/keypad_receiver.py                   # report half, every source and variant (about 10 min)
    python benchmarks/keypad_receiver.py --split tune --sources hyperrogue,drascula --minutes 5
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import masker as bench  # noqa: E402

from dtmfguard.dsp.keypad import KeypadMasker  # noqa: E402
from dtmfguard.dsp.masker import Masker  # noqa: E402
from dtmfguard.testkit import corpora  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="report", choices=("report", "tune", "all"))
    ap.add_argument("--sources", help="comma-separated source names (default: every installed source)")
    ap.add_argument("--variants", help="comma-separated variant labels (default: all of corpora.VARIANTS)")
    ap.add_argument("--minutes", type=float, default=None, help="at most this much of each source and variant")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    names, variants = bench.sources_and_variants(ap, args)
    rows, total = [], {"seconds": 0.0, "keys": 0, "notes": 0, "bursts": 0}
    print(f"{args.split} half, variants {', '.join(v[0] for v in variants)}; per source: receiver keys / judged "
          f"notes / bursts, and samples changed: with the receiver (the masker alone)")
    for name in names:
        row = {"source": name, "seconds": 0.0, "keys": 0, "notes": 0, "bursts": 0, "changed": 0, "changed_alone": 0}
        for _label, speed, gain in variants:
            try:
                x = corpora.signal(name, args.split, max_seconds=None if args.minutes is None else args.minutes * 60,
                                   speed=speed, gain_db=gain)
            except corpora.CorpusMissing as exc:
                print(f"  {name}: {exc}")
                break
            x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
            out, m = bench.mask_stream(KeypadMasker, x)
            # (no receiver key: the masker alone's output by construction, tests/test_masker_keypad.py)
            alone, m_alone = (out, m) if m.receiver_starts == 0 else bench.mask_stream(Masker, x)
            row["seconds"] += x.size / 8000.0
            row["keys"] += m.receiver_starts
            row["notes"] += m.keys_as_notes
            row["bursts"] += m.bursts - m_alone.bursts
            row["changed"] += int(np.sum(out != x))
            row["changed_alone"] += int(np.sum(alone != x))
        if not row["seconds"]:
            continue
        n = row["seconds"] * 8000.0
        print(f"  {name:12s} {row['seconds'] / 60:6.1f} min: {row['keys']:2d} / {row['notes']:2d} / {row['bursts']:2d}, "
              f"{100 * row['changed'] / n:.3f} % ({100 * row['changed_alone'] / n:.3f} %)", flush=True)
        rows.append(row)
        for k in ("seconds", "keys", "notes", "bursts"):
            total[k] += row[k]
    print(f"  all: {total['seconds'] / 3600:.2f} h, {total['keys']} receiver keys, {total['notes']} judged notes, "
          f"{total['bursts']} bursts the receiver opened")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"split": args.split, "rows": rows, "total": total}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
