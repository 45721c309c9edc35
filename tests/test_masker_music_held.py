# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking) on music, helper m13e: a pair held ``persist_ms`` in a musical context asks the
music-context measure with its own, lower thresholds (``MaskerParams.music_context_held_*``), the measure's gate
stays open ``music_context_after_ms`` (60 s) after a musical suspect, and the other decisions' thresholds are 0.45 / 0.35
(``music_context_persist``, ``music_context_away_persist``; m12x's 0.6 / 0.4 before).  Where either acts, the held pair is notes: no
flat mask by persistence, no notch from the pair's walked-back onset, fewer samples changed.  Keys under and around speech keep their
treatment.  The attacker is :mod:`dtmfguard.testkit.adversary`, on the agent's audio after G.711."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import SPEECH_KEY_CELLS, assert_keys_unchanged, assert_rule_acts_alike, heard
from _masker_util import hyperrogue_tune, with_and_without
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A

#: the rules off: the thresholds of every other treatment for a held pair, and m12x's 5 s gate
OFF = {
    "held": {"music_context_held_persist": None, "music_context_held_away": None},
    "gate": {"music_context_after_ms": 5000.0},
    "thresholds": {"music_context_persist": 0.6, "music_context_away_persist": 0.4},
}

#: (HyperRogue tune-half clip: speed, start s, end s) where each acts
CASES = {
    # a pair held 40 ms at 270.5 s, 50 ms after a musical suspect, its context 0.44 / 0.35: a flat mask without
    "held": (0.85, 262.0, 272.0),
    # held notes at 326.8-327.7 s, more than 5 s after the last musical suspect: 9 notches (2,704 samples) without
    "gate": (0.95, 300.0, 330.0),
    # a chord confirmed at 262.1 s, just after a musical suspect, its context 0.46 / 0.44: a 100 ms flat mask with
    # m12x's 0.6 / 0.4
    "thresholds": (1.15, 254.0, 264.0),
}


def _clip(speed: float, start_s: float, end_s: float) -> np.ndarray:
    return hyperrogue_tune(speed)[int(start_s * 8000): int(end_s * 8000)]


def _without(rule: str):
    # (the keypad context off too, ``keypad_context_ms``: the chord confirmed as a press without the rule would open
    # one, whose notches of the notes after it are no part of what the rule is compared with)
    return dataclasses.replace(DEFAULT_MASKER_PARAMS, keypad_context_ms=None, **OFF[rule])


@pytest.mark.parametrize("rule", sorted(CASES))
def test_held_notes_in_a_musical_context_are_no_press(rule):
    x = _clip(*CASES[rule])
    out, m, before, m_before, changed, changed_before = with_and_without(x, _without(rule), rule, changed_below=0.9)
    if rule != "gate":
        assert len(m.masked_spans) < len(m_before.masked_spans)  # the flat mask is gone
    # what the attacker names in the output (chance fits of notes, no key here): no more than without the rule; where
    # the gate leaves held notes unnotched, 2-4 ms fits of them more (4 -> 6 here), none of 8 ms or more
    named, named_before = A.decode(heard(out), 8000), A.decode(heard(before), 8000)
    print(f"  the attacker names {len(named_before)} -> {len(named)} runs")
    if rule != "gate":
        assert len(named) <= len(named_before)
    assert sum(d.end - d.start >= 64 for d in named) <= sum(d.end - d.start >= 64 for d in named_before)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_the_rules_decide_alike_for_any_chunking_and_backend(rule):
    x = _clip(*CASES[rule])
    assert_rule_acts_alike(x, OFF[rule])


@pytest.mark.parametrize("index, cond", SPEECH_KEY_CELLS)
def test_keys_under_and_around_speech_are_unchanged(index, cond):
    """The benchmark's keys 3 dB under speech, 1 s presses under speech and the +-2 % cells (seed 2026): the rules
    change no sample."""
    assert_keys_unchanged(index, cond, {k: v for off in OFF.values() for k, v in off.items()})
