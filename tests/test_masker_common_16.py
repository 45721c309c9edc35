# SPDX-License-Identifier: GPL-2.0-or-later
"""``verify_common_16_*`` and ``notch_rejoin_keeps_end`` (issue 12, helper h20b): the "screen misses" of keys 2 % off
nominal under louder speech.

The screen named the windows the blind attacker names (raw input and output alike), but the short-window verification
declined them, or a notch that covered one was cut back:

* seed 3290, "3 dB under speech, freq -2 %", press 4 (key 9, 93 ms): a 2 ms window 66-82 samples into the key, pending,
  declined at both looks: the pair's 16 ms share at NOMINAL frequencies was 0.1998 (``verify_fraction`` 0.2): the
  nominal fit loses over half of a column tone 2 % off in 16 ms, where the attacker's 2 ms window barely notices the
  offset.  At one common offset of -2.5 % for both tones the share is 0.37 and the short window's fit matches the
  16 ms one within 0.45 (``verify_common_16_*``);
* seed 3897, same condition, press 1 (key D, 251 ms): a 4 ms window 717-749 samples in (nominal coherence 1.30 >
  ``verify_coherence`` 1.2; at -2 % 0.59 / 0.40), and a 2 ms window 429-445 inside a notch [389, 445) that a later
  verified window (an earlier one's second look) reopened by joining it and closed at its own last named hop, 429:
  the samples between went out raw (``notch_rejoin_keeps_end``: a reopened notch keeps the end it had).

Each is shown necessary on the benchmark's own cell (as ``benchmarks/masker_payment_cells.py``: seed, condition index,
24 presses, the blind attacker after a µ-law round trip); both backends give the same samples for any chunking where a
rule acts; the rules only add treatment.
"""
from __future__ import annotations

import dataclasses

import pytest

from _masker_util import assert_rule_acts_alike, assert_rule_only_adds_treatment, bench_scenario, blind, mask, treated

from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P

COND = {"speech_under_db": -3.0, "freq_error": -0.02}
COMMON_OFF = {"verify_common_16_max": None}
REJOIN_OFF = {"notch_rejoin_keeps_end": False}
# (speech seed, condition index, the rule switched off)
CASES = {
    "common offset: seed 3290 press 4": (3290, 18, COMMON_OFF),
    "common offset: seed 3897 press 1": (3897, 18, COMMON_OFF),
    "rejoined notch keeps its end: seed 3897 press 1": (3897, 18, REJOIN_OFF),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rule_hides_the_key(case):
    seed, index, off = CASES[case]
    x, spans = bench_scenario(seed, index, **COND)
    assert blind(x, spans, P) == 0
    assert blind(x, spans, dataclasses.replace(P, **off)) >= 1


@pytest.mark.parametrize("case", list(CASES))
def test_rule_same_output_any_chunking_and_backend(case):
    seed, index, off = CASES[case]
    x, _ = bench_scenario(seed, index, **COND)
    assert_rule_acts_alike(x, off, base=P)


@pytest.mark.parametrize("case", list(CASES))
def test_rule_only_adds_treatment(case):
    seed, index, off = CASES[case]
    x, _ = bench_scenario(seed, index, **COND)
    assert_rule_only_adds_treatment(x, off, base={"keypad_context_ms": P.keypad_context_ms})


def test_rejoined_notch_never_ends_before_its_former_end():
    """On 3897's cell the rule changes no flat mask and no notch's start; the notch it acts on ends later, never
    sooner."""
    x, _ = bench_scenario(3897, 18, **COND)
    _, m = mask(x, P)
    _, m_off = mask(x, dataclasses.replace(P, **REJOIN_OFF))
    assert m.masked_spans == m_off.masked_spans
    got, ref = m.notched_spans, m_off.notched_spans
    assert [s.start for s in got] == [s.start for s in ref] and got != ref
    assert all(g.end >= r.end for g, r in zip(got, ref))
    assert not (treated(m_off, x.size) & ~treated(m, x.size)).any()


def test_common_16_parameters_checked():
    from dtmfguard.dsp.masker import Masker

    for bad in ({"verify_common_16_max": 0.0}, {"verify_common_16_max": 0.07},
                {"verify_common_16_max": 0.03, "verify_common_16_step": 0.04}):
        with pytest.raises(ValueError):
            Masker(params=dataclasses.replace(P, **bad))
    Masker(params=dataclasses.replace(P, **COMMON_OFF))
