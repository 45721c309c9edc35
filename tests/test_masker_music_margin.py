# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking) on music, helper m14a: a musical suspect's notch is held by the margin's 8 ms windows
(``MaskerParams.musical_margin_windows_ms``) only ``musical_margin_hold_ms`` after it opened; later only windows the
attacker's own rule names (the screen's, at the input or through G.711) hold it.  On HyperRogue's music the notches
held by the margin alone, where the attacker names nothing, are shorter: fewer samples changed.  Keys under and around
speech keep their treatment.  The attacker is :mod:`dtmfguard.testkit.adversary`, on the agent's audio after G.711."""
from __future__ import annotations

import dataclasses

import numpy as np

import pytest

from _masker_util import SPEECH_KEY_CELLS, assert_keys_unchanged, assert_rule_acts_alike, heard
from _masker_util import hyperrogue_tune, with_and_without
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A

#: the rule off: the margin holds a musical notch as long as it names the pair (efab5ab)
OFF = {"musical_margin_hold_ms": None}


def _clip() -> np.ndarray:
    # HyperRogue tune half at 1.0x, 180-186 s: held notes whose musical notches the margin kept open (a 469 ms one
    # at 183 s, 2,848 of its 3,751 samples inside what the attacker names in the unmasked audio)
    return hyperrogue_tune(1.0)[180 * 8000: 186 * 8000]


def test_the_margin_holds_a_musical_notch_only_at_its_start():
    x = _clip()
    out, m, before, m_before, changed, changed_before = with_and_without(
        x, dataclasses.replace(DEFAULT_MASKER_PARAMS, **OFF), "margin hold", changed_below=0.97)
    # what the attacker names in the output (chance fits of notes, no key here): none of 8 ms or more added
    named, named_before = A.decode(heard(out), 8000), A.decode(heard(before), 8000)
    print(f"  the attacker names {len(named_before)} -> {len(named)} runs")
    assert sum(d.end - d.start >= 64 for d in named) <= sum(d.end - d.start >= 64 for d in named_before)


def test_the_rule_decides_alike_for_any_chunking_and_backend():
    assert_rule_acts_alike(_clip(), OFF)


@pytest.mark.parametrize("index, cond", SPEECH_KEY_CELLS)
def test_keys_under_and_around_speech_are_unchanged(index, cond):
    """The benchmark's keys 3 dB under speech, 1 s presses under speech and the +-2 % cells (seed 2026): the rule
    changes no sample."""
    assert_keys_unchanged(index, cond, OFF)


def test_a_negative_hold_is_refused():
    from dtmfguard.dsp.masker import Masker

    with pytest.raises(ValueError, match="musical_margin_hold_ms"):
        Masker(params=dataclasses.replace(DEFAULT_MASKER_PARAMS, musical_margin_hold_ms=-1.0))
