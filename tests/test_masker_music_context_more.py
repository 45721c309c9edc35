# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking) on music, the music-context measure (``MaskerParams.music_context_*``) before the other
treatments of a pair (helper m13c): a press by a run of screen hits or by the offset rule
(``music_context_hit_run``), a weak suspect notched at once (``music_context_weak``) or starting silent
(``music_context_silent``), and where a musical suspect's
notch starts (``music_context_from_named``).  In a musical context each is notes: no flat mask, no notch from the
pair's walked-back onset, only where a window names the pair.  Keys under and around speech keep their treatment.
The attacker is :mod:`dtmfguard.testkit.adversary`, on the agent's audio after G.711."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import SPEECH_KEY_CELLS, assert_keys_unchanged, assert_rule_acts_alike, heard
from _masker_util import hyperrogue_tune, with_and_without
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A

RULES = ("music_context_hit_run", "music_context_weak", "music_context_from_named", "music_context_silent")


def _without(rule: str):
    # (the keypad context off too, ``keypad_context_ms``: the chord confirmed as a press without the rule would open
    # one, whose notches of the notes after it are no part of what the rule is compared with)
    return dataclasses.replace(DEFAULT_MASKER_PARAMS, keypad_context_ms=None, **{rule: False})


def _clip(speed: float, start_s: float, end_s: float) -> np.ndarray:
    return hyperrogue_tune(speed)[int(start_s * 8000): int(end_s * 8000)]


#: (rule, HyperRogue tune-half clip: speed, start s, end s) where each rule acts
CASES = {
    # a chord the offset rule confirms as key 9 (190.9 s), 1.3 s after a musical suspect: a 120 ms flat mask without
    "music_context_hit_run": (0.95, 185.0, 193.0),
    # two pairs held in the 16 ms window at 103.7 s and 107.8 s, notched at once (30 ms each) without
    "music_context_weak": (1.05, 99.0, 109.0),
    # a musical suspect's notch (6.5 s) reaching back to the pair's walked-back onset without
    "music_context_from_named": (0.95, 0.0, 8.0),
    # a keypad-like pair starting silent (365.9 s), then notched while weakly present for 800 ms without
    "music_context_silent": (0.85, 360.0, 367.0),
}


@pytest.mark.parametrize("rule", RULES)
def test_notes_in_a_musical_context_change_fewer_samples(rule):
    x = _clip(*CASES[rule])
    out, m, before, m_before, changed, changed_before = with_and_without(x, _without(rule), rule, changed_below=0.9)
    if rule == "music_context_hit_run":
        assert len(m.masked_spans) < len(m_before.masked_spans)  # the flat mask is gone
    # what the attacker names in the output: no more than without the rule (chance fits of notes, no key here)
    assert len(A.decode(heard(out), 8000)) <= len(A.decode(heard(before), 8000))


@pytest.mark.parametrize("rule", RULES)
def test_the_rules_decide_alike_for_any_chunking_and_backend(rule):
    assert_rule_acts_alike(_clip(*CASES[rule]), {rule: False})


@pytest.mark.parametrize("index, cond", SPEECH_KEY_CELLS)
def test_keys_under_and_around_speech_are_unchanged(index, cond):
    """The benchmark's keys 3 dB under speech, 1 s presses under speech and the +-2 % cells (seed 2026): the rules
    change no sample."""
    assert_keys_unchanged(index, cond, {r: False for r in RULES})
