# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking) on game music (HyperRogue, Debian hyperrogue-music, tune half): a *musical* suspect (a
pair near a key pair whose two tones are apart: a chord's partials, no keypad) is notched only where the attacker's
own rule names a window as the agent hears it.  Each rule is
shown acting on the clip it was measured on (``musical_named_exact``, ``musical_named_any_pair``,
``weak_switch_apart``); the attacker is :mod:`dtmfguard.testkit.adversary` (blind), on the
agent's audio after G.711.  Keys keep their treatment: ``tests/test_masker_music.py`` and the key benchmark."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import hyperrogue_tune, assert_rule_acts_alike, heard, mask
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A


_tune = hyperrogue_tune


def _clip(speed: float, start_s: int, end_s: int) -> np.ndarray:
    return _tune(speed)[start_s * 8000: end_s * 8000]


def _both(x: np.ndarray, off: dict):
    out, m = mask(x)
    before, m_before = mask(x, dataclasses.replace(DEFAULT_MASKER_PARAMS, **off))
    assert m.errors == 0 and m_before.errors == 0
    return out, m, before, m_before


def test_a_musical_notch_follows_what_the_attacker_names():
    """HyperRogue (1.0x, 225-229 s): chords near key pairs whose 2 and 4 ms windows :meth:`Masker._named`'s margin
    passed but the attacker's rule names neither at the input nor through G.711.  With ``musical_named_exact`` their
    notches open and hold only where the screen names such a window (at the input or through its µ-law / A-law round
    trip) or the margin an 8 ms one: at least 10 % fewer samples changed, no more flat masks, and the attacker names
    no more runs in the output."""
    x = _clip(1.0, 225, 229)
    out, m, before, m_before = _both(x, {"musical_named_exact": False})
    changed, changed_before = int(np.sum(out != x)), int(np.sum(before != x))
    print(f"changed {changed_before / 8:.0f} -> {changed / 8:.0f} ms")
    assert A.decode(heard(x.astype(np.float64)))  # (music the attacker names, unmasked)
    assert changed <= 0.9 * changed_before
    assert len(m.masked_spans) <= len(m_before.masked_spans)
    assert len(A.decode(heard(out))) <= len(A.decode(heard(before)))


def test_another_pairs_window_opens_a_silent_musical_suspects_notch():
    """HyperRogue (1.05x, 62-65 s): while a silent musical suspect watches one pair, the screen names a window of
    another pair that the short-window verification rejects.  Counting only windows of the suspect's own pair
    (``musical_named_any_pair`` off), the attacker names it in the output; with any pair's window opening the notch
    (all eight frequencies, from that window), one run fewer."""
    x = _clip(1.05, 62, 65)
    out, m, before, m_before = _both(x, {"musical_named_any_pair": False})
    named, named_before = len(A.decode(heard(out))), len(A.decode(heard(before)))
    print(f"runs named in the output: own pair only {named_before}, any pair {named}")
    assert named <= named_before - 1
    assert len(m.masked_spans) <= len(m_before.masked_spans)


def test_a_suspect_switched_to_a_pair_with_its_tones_apart_is_musical():
    """HyperRogue (1.1x, 362-367 s): a weak run of another pair switches the suspect; with ``weak_switch_apart`` the
    new pair's tones, apart, make it a musical suspect (notched only where named) instead of a keypad's (notched
    while present): fewer samples changed, no more flat masks, no more runs named in the output."""
    x = _clip(1.1, 362, 367)
    out, m, before, m_before = _both(x, {"weak_switch_apart": False})
    assert np.sum(out != x) <= 0.8 * np.sum(before != x)
    assert len(m.masked_spans) <= len(m_before.masked_spans)
    assert len(A.decode(heard(out))) <= len(A.decode(heard(before)))


@pytest.mark.parametrize("speed,start_s,end_s,off", [
    (1.0, 225, 229, {"musical_named_exact": False}),
    (1.05, 62, 65, {"musical_named_any_pair": False}),
    (1.1, 362, 366, {"weak_switch_apart": False}),
])
def test_musical_notch_rules_decide_alike_for_any_chunking_and_backend(speed, start_s, end_s, off):
    assert_rule_acts_alike(_clip(speed, start_s, end_s), off)
