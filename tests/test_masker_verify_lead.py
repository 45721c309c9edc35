# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking), helper h15d: ``MaskerParams.verify_lead_ms``, the lead a verified short window's notch
takes before the window beyond its guard (before: a second guard, 2 ms).  Synthetic speech (espeak-ng) is where
most such notches are (2-4 ms windows, a notch of 8 ms for 2 ms of evidence): with no lead they are shorter and fewer
samples change; keys under and around speech whose notches it shortens stay hidden from the blind attacker
(:mod:`dtmfguard.testkit.adversary`, on the agent's audio after G.711); both backends give the same samples."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _masker_util import (
    NO_BURST,
    assert_rule_acts,
    assert_rule_acts_alike,
    bench_scenario,
    blind,
    mask,
    treated,
    with_and_without,
)

from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import corpora

#: the rule off: the second guard before a verified short window, as before (a286dbd)
OFF = {"verify_lead_ms": None}


def _espeak_de() -> np.ndarray:
    # the espeak-ng German tune half's first 60 s: ~25 verified short-window notches a minute
    try:
        return corpora.signal("espeak-de", "tune", max_seconds=60).astype(np.int16)
    except corpora.CorpusMissing as exc:
        pytest.skip(f"espeak-ng not usable ({exc})")


def test_verified_notches_on_synthetic_speech_are_shorter():
    x = _espeak_de()
    out, m, before, m_before, changed, changed_before = with_and_without(
        x, dataclasses.replace(DEFAULT_MASKER_PARAMS, **OFF), "verify lead", changed_below=0.9)
    # the notches start later, none is added: every sample treated with the rule is treated without it
    on, off = treated(m, x.size), treated(m_before, x.size)
    assert not np.any(on & ~off)
    assert np.any(off & ~on)


def test_the_rule_decides_alike_for_any_chunking_and_backend():
    assert_rule_acts_alike(_espeak_de()[: 20 * 8000], OFF)


# talk-over cells of the benchmark (``benchmarks/masker.py --payment``: speech seed, condition index, condition) where
# short windows at a key's first ms are verified (``verify_onset_jump``), so the rule moves those notches' starts
KEY_CELLS = [
    (1112, 19, {"speech_under_db": -3.0, "freq_error": 0.03}),
    (1704, 17, {"speech_under_db": -3.0, "freq_error": 0.02}),
]


@pytest.mark.parametrize("seed, index, cond", KEY_CELLS)
def test_keys_whose_notches_it_shortens_stay_hidden(seed, index, cond):
    x, spans = bench_scenario(seed, index, **cond)
    x = np.asarray(x)
    # (seed 1704: the keypad burst closed 3 s after the last press it counted, before press 21, and the rule acted
    # on the last presses; the burst now holds 20 s and lingers (``keypad_burst_hold_ms``, ``keypad_burst_linger_*``),
    # so the rule's notches change nothing there: shown with the burst's old 3 s and no linger)
    assert_rule_acts(x, OFF, dataclasses.replace(DEFAULT_MASKER_PARAMS, keypad_burst_linger_presses=None,
                                                 keypad_burst_hold_ms=3000.0))
    assert blind(x, spans) == 0


def _short_gaps(spans) -> set:
    spans = sorted(spans, key=lambda s: s.start)
    return {(a.end, b.start) for a, b in zip(spans, spans[1:]) if 0 < b.start - a.end <= 24}


def test_a_notch_that_lost_its_lead_still_joins_the_one_before():
    """Tune seed 1736, 3 dB under speech, +3 % (without the keypad burst, which hides the key too): key 9's two
    verified notches, 1 ms apart with the old lead and joined by ``notch_join_ms``, would leave 3 ms raw between them
    with no lead, and the attacker named the key from the 2 ms window across that gap.  A notch joins the one before it
    as one starting with the old lead would: no new gap of 3 ms or less, and no key named."""
    x, spans = bench_scenario(1736, 19, speech_under_db=-3.0, freq_error=0.03)
    params = dataclasses.replace(DEFAULT_MASKER_PARAMS, **NO_BURST)
    _, m = mask(x, params)
    _, m_off = mask(x, dataclasses.replace(params, **OFF))
    assert _short_gaps(m.notched_spans) <= _short_gaps(m_off.notched_spans)
    assert blind(x, spans, params) == 0


def test_a_negative_lead_is_refused():
    with pytest.raises(ValueError, match="verify_lead_ms"):
        Masker(params=dataclasses.replace(DEFAULT_MASKER_PARAMS, verify_lead_ms=-1.0))
    Masker(params=dataclasses.replace(DEFAULT_MASKER_PARAMS, verify_lead_ms=None))
