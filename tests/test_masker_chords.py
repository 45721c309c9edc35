# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking) on music: a held chord near a key pair is one flat mask, not several; real keys
keep their treatment.  The attacker is :mod:`dtmfguard.testkit.adversary` (blind), on the agent's audio after G.711."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import assert_any_backend_alike
from _masker_util import heard as _heard
from _masker_util import mask as _mask
from dtmfguard.dsp import levels
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A
from dtmfguard.testkit import synth

SPEECH = A.load_speech(60.0, seed=5)
OFF = dataclasses.replace(DEFAULT_MASKER_PARAMS, press_hold_measured=None)


def _drummed_chord(row_hz=941.0, col_hz=1209.0, row_error=-0.01, col_error=-0.032, ms=1000.0, seed=4):
    """Two held notes near a key pair (off nominal by the given shares, within a keypad's tolerance of each
    other) under drum hits every 180 ms (60 ms decaying noise bursts, 16 dB over the notes): game music's held
    chords (HyperRogue)."""
    rng = np.random.default_rng(seed)
    n = int(ms * 8)
    t = np.arange(n) / 8000.0
    a = levels.dbm0_to_peak(-18.0)
    x = a * (np.sin(2 * np.pi * row_hz * (1 + row_error) * t + rng.uniform(0, 6))
             + np.sin(2 * np.pi * col_hz * (1 + col_error) * t + rng.uniform(0, 6)))
    for start in range(800, n - 480, 1440):
        burst = rng.standard_normal(480) * np.exp(-np.arange(480) / 160.0)
        x[start: start + 480] += burst * a * 10 ** (16 / 20) * 2.0
    z = np.zeros(2400)
    return np.round(np.concatenate([z, x, z])).astype(np.int16)


def test_a_held_chord_under_drum_hits_is_one_flat_mask():
    """A chord whose pair the screen confirms, its column 3.2 % off nominal: at nominal frequencies the pair
    explains less than ``hold_ratio`` of its steady energy at every drum hit, so the press closed and the same
    notes opened another flat mask a little later (several beeps over one chord).  Now a press about to close
    is held while its pair, fitted at the tones' measured frequencies, keeps ``press_hold_measured`` of its
    energy: one mask over the chord, and the attacker names nothing in the output either way."""
    x = _drummed_chord()
    out, m = _mask(x)
    before, m_before = _mask(x, OFF)
    assert A.decode(x.astype(np.float64))  # (the chord is nameable unmasked)
    assert len(m_before.masked_spans) >= 2  # the case the rule is about
    assert len(m.masked_spans) == 1
    assert A.decode(_heard(out)) == []


@pytest.mark.parametrize("speech_db", [None, 0.0])
def test_the_same_key_twice_after_a_pause_is_two_masks(speech_db):
    """The hold at measured frequencies does not join two presses of one key: in the 60 ms pause between them
    the tones stop.  Both named by nobody."""
    if speech_db is not None and SPEECH is None:
        pytest.skip("asterisk-core-sounds-en-wav not installed (speech over the keys)")
    tone = synth.dtmf_tone("1", 120, level_dbm0=-12)
    x = np.zeros(2400 + tone.size + 480 + tone.size + 2400)
    x[2400: 2400 + tone.size] = tone
    b = 2400 + tone.size + 480
    x[b: b + tone.size] = tone
    if speech_db is not None:
        sp = SPEECH[: x.size].astype(np.float64)
        rms_t = float(np.sqrt(np.mean(tone.astype(float) ** 2)))
        sp *= rms_t / (float(np.sqrt(np.mean(sp ** 2))) + 1e-9) * 10 ** (-speech_db / 20)
        sp[2400 + tone.size: b] *= 0.1  # (a quiet pause: the tones' stop is what the hold must see)
        x = x + sp
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    out, m = _mask(x)
    ref, m_ref = _mask(x, OFF)
    assert len(m.masked_spans) == len(m_ref.masked_spans) == 2
    truth = [("1", 2400, 2400 + tone.size), ("1", b, b + tone.size)]
    assert A.count_recovered(_heard(out), truth) == 0


@pytest.mark.parametrize("chunk", [1, 37, 160, 1000])
def test_chord_rules_give_the_same_output_for_any_chunking_and_backend(chunk):
    from test_masker import _two_notes

    x = np.concatenate([_drummed_chord(), _drummed_chord(852.0, 1336.0, 0.01, -0.02, seed=6),
                        _two_notes(770.0, 1209.0, 0.022, -0.022, ms=300.0, seed=2)]).astype(np.int16)
    assert assert_any_backend_alike(x, chunk).masked_spans
