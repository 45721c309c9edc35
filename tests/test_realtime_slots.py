# SPDX-License-Identifier: GPL-2.0-or-later
"""The test suite's real-time slots (_realtime_slots.py): at most SLOTS processes hold one at a time, a slot
is handed on when given back or when its holder dies, and 0 lifts the limit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

HOLDER = """
import json, os, sys, time
import _realtime_slots as s
t0 = time.monotonic()
s.hold()
s.hold()  # a second call while holding takes nothing more
got = time.time()
time.sleep(float(sys.argv[1]))
if sys.argv[2] == "die":
    print(json.dumps({"got": got, "left": time.time(), "held": s.held()}), flush=True)
    os._exit(0)  # no release: the lock goes with the process's descriptors
s.release()
print(json.dumps({"got": got, "left": time.time(), "held": s.held()}))
"""


def _run(tmp_path, slots: int, modes: list[str], hold_s: float = 0.6):
    env = {**os.environ, "TMPDIR": str(tmp_path), "DTMFGUARD_TEST_REALTIME_SLOTS": str(slots),
           "PYTHONPATH": str(HERE)}
    procs = []
    for m in modes:
        procs.append(subprocess.Popen([sys.executable, "-c", HOLDER, str(hold_s), m], env=env,
                                      stdout=subprocess.PIPE, text=True))
        if m == "die":
            time.sleep(0.3)  # it takes the slot first
    return [p.communicate(timeout=30)[0] for p in procs]


def _spans(outs):
    return sorted((d["got"], d["left"]) for d in (json.loads(o) for o in outs if o.strip()))


def _most_at_once(spans) -> int:
    return max(sum(1 for g, e in spans if g <= t < e) for t, _ in spans)


def test_at_most_slots_tests_hold_one_at_a_time(tmp_path):
    outs = _run(tmp_path, 2, ["live"] * 4)
    spans = _spans(outs)
    assert len(spans) == 4 and _most_at_once(spans) == 2, spans
    assert not any(json.loads(o)["held"] for o in outs)  # release gives it back


def test_a_dead_holder_hands_its_slot_on(tmp_path):
    outs = _run(tmp_path, 1, ["die", "live"], hold_s=0.4)
    spans = _spans(outs)
    assert len(spans) == 2 and _most_at_once(spans) == 1, spans  # the second waited for the first one's death


def test_zero_slots_lifts_the_limit(tmp_path):
    spans = _spans(_run(tmp_path, 0, ["live"] * 3))
    assert _most_at_once(spans) == 3, spans
