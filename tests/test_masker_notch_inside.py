# SPDX-License-Identifier: GPL-2.0-or-later
"""``notch_inside_*`` (issue 12, helper h20a): a key's onset inside a band notch already running is judged as the agent
will hear it.

A key whose tones start inside a notch opened before them (here a keypad burst's) leaves, in the 8 ms notch blocks
straddling its onset, a residue their projection does not remove (a step, not a steady tone), and the blind attacker
named the key from the output where the raw input names nothing: seed 3849, "freq +4 %, speech around", press 23 (an
88 ms key A) was named from the 2 ms window 2-18 samples into it; its first short window was named (through G.711 only)
106 samples in and its press confirmed too late for the flat mask to reach the onset.  Now at such a hop the windows
not yet emitted are rendered as they will be and judged with the screen's rule; the named ones get the flat mask.

Shown necessary on the benchmark's own cell (as ``benchmarks/masker_payment_cells.py``: seed, condition index, 24
presses, the blind attacker after a G.711 round trip); where the rule acts both backends give the same samples for any
chunking (it is a Python step in both: C hands every hop naming a pair with no press open back); it only adds flat
masks, the notches stay as they were.
"""
from __future__ import annotations

import dataclasses

import pytest

from _masker_util import assert_rule_acts_alike, bench_scenario, blind, mask

from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P

OFF = {"notch_inside_windows_ms": None}
# (speech seed, condition index, condition)
CASES = {
    "onset inside a keypad burst's notch: freq +4 %, speech around (seed 3849)":
        (3849, 16, {"freq_error": 0.04, "speech_around": True}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_notch_inside_hides_the_key(case):
    seed, index, cond = CASES[case]
    x, spans = bench_scenario(seed, index, **cond)
    assert blind(x, spans, P) == 0
    assert blind(x, spans, dataclasses.replace(P, **OFF)) >= 1


@pytest.mark.parametrize("case", list(CASES))
def test_notch_inside_same_output_any_chunking_and_backend(case):
    seed, index, cond = CASES[case]
    x, _ = bench_scenario(seed, index, **cond)
    assert_rule_acts_alike(x, OFF, base=P)


@pytest.mark.parametrize("case", list(CASES))
def test_notch_inside_only_adds_flat_masks(case):
    """With and without the rule the same notches; every flat mask without it starts inside one with it, which lasts
    at least as long but for a press that continued the rule's mask (its length a whole number of quanta from
    the earlier start), and the rule counts the masks it opened."""
    seed, index, cond = CASES[case]
    x, _ = bench_scenario(seed, index, **cond)
    _, m = mask(x, P)
    _, m_off = mask(x, dataclasses.replace(P, **OFF))
    assert m.notched_spans == m_off.notched_spans and m.burst_spans == m_off.burst_spans
    assert m.inside_masks >= 1 and m_off.inside_masks == 0
    got = m.masked_spans
    assert got != m_off.masked_spans
    for r in m_off.masked_spans:
        assert any(g.start <= r.start < g.end and r.end - g.end < m._quantum for g in got)


def test_notch_inside_parameters_checked():
    from dtmfguard.dsp.masker import Masker

    with pytest.raises(ValueError):
        Masker(params=dataclasses.replace(P, notch_inside_windows_ms=(0.0,)))
    with pytest.raises(ValueError):
        Masker(params=dataclasses.replace(P, notch_inside_windows_ms=(17.0,)))
    Masker(params=dataclasses.replace(P, notch_inside_windows_ms=None))
