# SPDX-License-Identifier: GPL-2.0-or-later
"""Time-bounded fuzzing of every input parser (issue 8): hostile WAV files, sample streams, RFC 4733
event sequences and SIP INFO bodies.  Prints inputs tried, how each was answered, and failures (must be 0).

    python benchmarks/fuzz.py [--seconds 60] [--seed N] [--json]

Exit code 1 when any input produced an exception other than the parser's documented error.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzz_targets import TARGETS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="total budget, shared by the targets")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    budget = args.seconds / len(TARGETS)
    results = {}
    for name, target in TARGETS.items():
        rng = np.random.default_rng(args.seed)
        outcomes: collections.Counter = collections.Counter()
        failures = []
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            try:
                outcomes[target(rng)] += 1
            except Exception:  # a bug: anything but the documented error
                outcomes["FAILED"] += 1
                if len(failures) < 3:
                    failures.append(traceback.format_exc(limit=3))
        results[name] = {"inputs": sum(outcomes.values()), "outcomes": dict(outcomes), "failures": failures}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'target':18s} {'inputs':>8s}  outcomes")
        for name, r in results.items():
            print(f"{name:18s} {r['inputs']:8d}  {r['outcomes']}")
            for f in r["failures"]:
                print("   " + f.replace("\n", "\n   "))
    return 1 if any(r["outcomes"].get("FAILED") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
