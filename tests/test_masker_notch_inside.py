# SPDX-License-Identifier: GPL-2.0-or-later
"""``notch_inside_*`` (issue 12, helper h20a): a key's onset inside a keypad burst's band notch is judged as the agent
will hear it.

A key whose tones start inside a notch opened before them (a keypad burst's) leaves, in the 8 ms notch blocks straddling
its onset, a residue their projection does not remove (a step, not a steady tone), and the blind attacker named the key
from the output where the raw input names nothing ("freq +4 %, speech around", keys A): seed 3516 press 5, a 367 ms key
the screen never names (its 2 ms windows fit A closely but not uniquely), named from the 2 ms window 10-26 samples into
it; seed 3849 press 23, an 88 ms key named from the window 2-18 samples in, its press confirmed too late for the flat
mask to reach the onset.  Now every half notch block inside a burst (no press open) the windows whose notch blocks have
just come in are rendered as they will be emitted and judged with the screen's rule; named ones get the flat mask.

Shown necessary on the benchmark's own cells (as ``benchmarks/masker_payment_cells.py``: seed, condition index, 24
presses, the blind attacker after a G.711 round trip); where the rule acts both backends give the same samples for any
chunking (a Python step in both: the C frame hands the judged hops back); it only adds flat masks, the notches stay.
The rule is off by default (``notch_inside_windows_ms=None``): checking every 4 ms through a card entry's keypad burst
costs the masker about 17 times its CPU there.
"""
from __future__ import annotations

import dataclasses

import pytest

from _masker_util import assert_rule_acts_alike, bench_scenario, blind, mask

from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS

OFF = {"notch_inside_windows_ms": None}
# (off by default, for its CPU cost: these tests turn it on)
P = dataclasses.replace(DEFAULT_MASKER_PARAMS, notch_inside_windows_ms=(2.0, 4.0))
# (speech seed, condition index, condition)
CASES = {
    "never screened key in a keypad burst's notch: freq +4 %, speech around (seed 3516)":
        (3516, 16, {"freq_error": 0.04, "speech_around": True}),
    "late press in a keypad burst's notch: freq +4 %, speech around (seed 3849)":
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
