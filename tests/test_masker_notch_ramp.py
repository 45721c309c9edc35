# SPDX-License-Identifier: GPL-2.0-or-later
"""``notch_ramp_in_ms``: a band notch ramps in over 0.375 ms instead of the 2 ms guard (issue 12, helper m12r).

A notch whose pair was named too late to walk back to its onset starts at the first sample not yet emitted, in
the middle of the tone; the attacker's 2 ms window reaching from the raw tone into the half-notched ramp named the
key where the raw window did not (held-out seed 505, boundary cell +3 dB: key C, named from a 2 ms window 28 ms
into the press, across the ramp-in of the notch opened there).  Which ramp lets such a window through is close to
chance (params.py); the test pins the case it was chosen on, and that the rule changes nothing but the ramps.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import case_acts_alike, assert_rule_changes_only, assert_rule_hides_key
from _masker_util import bench_scenario as _scenario
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P

# (speech seed, condition index, condition, rule switched off): the benchmark's boundary row +3 dB (100 + 5)
# (``notch_edge_*``, helper h19a, judges each notch's edge as rendered with its ramp-in and moves the start where a window
# across it names: with it the 2 ms ramp-in hides this key too, and the starts differ; the key is shown named with both
# off, and the spans compared with it off in both)
EDGE_OFF = {"notch_edge_back_ms": None}
CASE = (505, 105, {"speech_under_db": 3.0}, {"notch_ramp_in_ms": None, **EDGE_OFF})


def test_short_ramp_in_is_what_hides_the_key():
    assert_rule_hides_key(*CASE)


def test_short_ramp_in_changes_only_the_notches_ramps():
    """The same spans flat-masked and notched as with the 2 ms ramp-in (key-free figures of samples changed and
    masks per minute cannot move), and the output differs only within the first 2 ms of a notch."""
    seed, index, cond, off = CASE
    x, _ = _scenario(seed, index, **cond)

    def ramps(m, n):
        sel = np.zeros(n, dtype=bool)
        for s in m.notched_spans:
            sel[max(s.start, 0): max(min(s.start + m._guard, n), 0)] = True
        return sel

    assert_rule_changes_only(x, {"notch_ramp_in_ms": None}, ramps, base=EDGE_OFF)


def test_short_ramp_in_same_output_any_chunking_and_backend():
    case_acts_alike(CASE)


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_ramp_in_validated(bad):
    with pytest.raises(ValueError):
        Masker(params=dataclasses.replace(P, notch_ramp_in_ms=bad))
    for ok in (None, 0.0, 5.0):  # (0: a step; longer than the guard: the guard)
        Masker(params=dataclasses.replace(P, notch_ramp_in_ms=ok))
