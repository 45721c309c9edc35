# SPDX-License-Identifier: GPL-2.0-or-later
"""Quick hostile-input run: every target, fixed seeds (benchmarks/fuzz.py runs the long version)."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from fuzz_targets import TARGETS

CASES = {"wav_file": 300, "detector_stream": 40, "rfc4733_sequence": 400, "sip_info_body": 600,
         "config_file": 400, "control_api_request": 150}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_hostile_inputs_get_clear_errors_and_never_crash(name):
    rng = np.random.default_rng(20261123)
    outcomes = collections.Counter(TARGETS[name](rng) for _ in range(CASES[name]))
    print(f"\n[{name}] {dict(outcomes)}")
    assert sum(outcomes.values()) == CASES[name]
    assert all(o == "ok" or o.startswith(("rejected:", "status:", "closed")) for o in outcomes)
