# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking) on music, the music-context rule (``MaskerParams.music_context_*``): a pair confirmed
(or held long enough to be a press by persistence) right after 300 ms of audio whose spectral fine structure
persists (held notes: the detector's issue-17 measure) is treated as notes, notched only where a window names it,
not masked flat for as long as it lasts.  Keys under speech keep their treatment; where the rule takes a key for
music (a steady vowel before it) the blind attacker still names nothing.  The attacker is
:mod:`dtmfguard.testkit.adversary`, on the agent's audio after G.711."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import hyperrogue_tune, assert_rule_acts_alike, bench_scenario, heard, mask
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A
from dtmfguard.testkit import synth

OFF = {"music_context_persist": None}
WITHOUT = dataclasses.replace(DEFAULT_MASKER_PARAMS, **OFF)


_tune = hyperrogue_tune


def _clip() -> np.ndarray:
    """HyperRogue, tune half, 1.0x, 178-186 s: synthesizer chords the screen confirms as keys 6 and #, four flat
    masks of 40-120 ms without the rule."""
    return _tune(1.0)[178 * 8000: 186 * 8000]


def test_chords_in_a_musical_context_are_notes_not_flat_masks():
    x = _clip()
    out, m = mask(x)
    before, m_before = mask(x, WITHOUT)
    assert m.errors == 0 and m_before.errors == 0
    assert len(m_before.masked_spans) >= 3  # the case the rule is about
    changed, changed_before = int(np.sum(out != x)), int(np.sum(before != x))
    print(f"flat masks {len(m_before.masked_spans)} -> {len(m.masked_spans)}, changed {changed_before / 8:.0f} -> "
          f"{changed / 8:.0f} ms")
    assert len(m.masked_spans) < len(m_before.masked_spans)
    assert changed < 0.95 * changed_before


def test_the_music_context_rule_decides_alike_for_any_chunking_and_backend():
    assert_rule_acts_alike(_clip(), OFF)


@pytest.mark.parametrize("index, cond", [
    (1, {"speech_under_db": -3.0}),
    (12, {"freq_error": 0.02, "speech_around": True}),
    (13, {"freq_error": -0.02, "speech_around": True}),
])
def test_keys_under_and_around_speech_are_unchanged(index, cond):
    """The benchmark's keys 3 dB under speech and the +-2 % cells (seed 2026): the rule changes no sample."""
    x, spans = bench_scenario(2026, index, **cond)
    x = np.asarray(x)
    out, _ = mask(x)
    ref, _ = mask(x, WITHOUT)
    assert np.array_equal(out, ref)
    assert A.count_recovered(heard(out), spans) == 0


def _vowel_then_key(f0: float = 157.0) -> tuple:
    """A voiced sound held at one pitch (15 harmonics of ``f0``, 700 ms: as steady as held notes) with key 5 at
    -10 dBm0 starting 400 ms into it."""
    t = np.arange(5600) / 8000.0
    x = 3000.0 * sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, 16))
    key = synth.dtmf_tone("5", 200.0, 8000, -10.0, 0.0)
    x[3200: 3200 + key.size] += key
    z = np.zeros(800)
    return np.round(np.concatenate([z, x, z])).astype(np.int16), [synth.ToneSpan("5", 4000, 4000 + key.size)]


def test_a_steady_context_is_measured_only_after_a_musical_suspect():
    """The context measure alone cannot tell a vowel held at one pitch from held notes: measured whatever came before
    (``music_context_after_ms`` None) the key after it is taken for notes (no flat mask).  Measured only within
    ``music_context_after_ms`` of a musical suspect (a pair whose tones were apart: none here, none in the
    benchmark's speech), the key keeps its flat mask.  The blind attacker names it in neither."""
    x, spans = _vowel_then_key()
    out, m = mask(x)
    ref, m_ref = mask(x, WITHOUT)
    ungated, m_ungated = mask(x, dataclasses.replace(DEFAULT_MASKER_PARAMS, music_context_after_ms=None))
    assert m.errors == 0 and m_ungated.errors == 0
    assert len(m_ungated.masked_spans) < len(m_ref.masked_spans)  # (the case the gate is about)
    assert np.array_equal(out, ref)
    assert any(s.start <= spans[0].start and s.end >= spans[0].end for s in m.masked_spans)
    assert A.count_recovered(heard(out), spans) == 0
    assert A.count_recovered(heard(ungated), spans) == 0


def test_silence_and_a_steady_tone_before_a_key_are_no_music_context():
    """A context of digital silence (no spectrum to correlate) or of a key's tone the masker treated (its frames
    left out of the measure) is not music, even measured whatever came before: a clean key after either keeps its
    flat mask."""
    always = dataclasses.replace(DEFAULT_MASKER_PARAMS, music_context_after_ms=None)
    tone = synth.dtmf_tone("5", 200.0, 8000, -10.0, 0.0)
    z = np.zeros(4000)
    for before in (z, np.concatenate([synth.dtmf_tone("5", 500.0, 8000, -10.0, 0.0), np.zeros(400)])):
        x = np.round(np.concatenate([before, tone, z])).astype(np.int16)
        start = before.size
        out, m = mask(x, always)
        ref, m_ref = mask(x, WITHOUT)
        assert np.array_equal(out, ref)
        assert any(s.start <= start and s.end >= start + tone.size for s in m.masked_spans)
