# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking) on music: a held note whose 2nd and 4th harmonics fall near a key pair (game music's
"chords" near keys 2, 3, 6, B and C are such notes: HyperRogue) is masked flat only where a window names its pair,
not for as long as it lasts; real keys of those pairs keep their treatment.  The attacker is
:mod:`dtmfguard.testkit.adversary` (blind), on the agent's audio after G.711."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import assert_rule_acts_alike, bench_scenario, heard, mask
from dtmfguard.dsp import levels, pairfit
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import COL_HZ, DEFAULT_MASKER_PARAMS, ROW_HZ
from dtmfguard.testkit import adversary as A
from dtmfguard.testkit import synth

OFF = {"press_octave_tolerance": None}
WITHOUT = dataclasses.replace(DEFAULT_MASKER_PARAMS, **OFF)
#: the keys whose pair is near 2:1 (1.917:1 and 2.12:1), the only ones the rule tests
OCTAVE_KEYS = "2369C"  # (B's pair, 770 / 1633 Hz, is 2.12:1 too)


def _note(f0: float, ms: float = 800.0, level_dbm0: float = -16.0, vibrato: float = 0.01, seed: int = 1):
    """A synthesizer note at ``f0`` (its 2nd and 4th harmonics strong, the fundamental 20 dB under them) with a 5 Hz
    vibrato of ``vibrato``: its harmonics stay exactly 2:1 while the nominal fits the attacker uses come and go."""
    rng = np.random.default_rng(seed)
    n = int(ms * 8)
    t = np.arange(n) / 8000.0
    phase = 2 * np.pi * f0 * np.cumsum(1 + vibrato * np.sin(2 * np.pi * 5.0 * t)) / 8000.0
    a = levels.dbm0_to_peak(level_dbm0)
    x = a * np.minimum(t / 0.002, 1.0) * sum(w * np.sin(k * phase + rng.uniform(0, 6))
                                             for k, w in ((2, 1.0), (4, 0.8), (1, 0.1)))
    z = np.zeros(2400)
    return np.round(np.concatenate([z, x, z])).astype(np.int16)


@pytest.mark.parametrize("f0", [382.0, 386.0])
def test_an_octave_note_near_a_key_pair_is_masked_only_where_named(f0):
    """A note whose harmonics at 2 f0 and 4 f0 the screen confirms as a key (764 / 1528 Hz near 770 / 1477): without
    the rule one flat mask covers the whole note (800 ms); with it the press's tones, measured 2:1 exactly (a keypad's
    are 1.917:1), let the treatment go on only where a window names the pair.  Fewer samples changed, no more flat
    masks, and the attacker names nothing in the output."""
    x = _note(f0)
    assert A.decode(x.astype(np.float64))  # (nameable unmasked)
    out, m = mask(x)
    before, m_before = mask(x, WITHOUT)
    assert m.errors == 0 and m_before.errors == 0
    assert len(m_before.masked_spans) == 1 and np.mean(before != x) > 0.5  # the case the rule is about
    assert len(m.masked_spans) <= len(m_before.masked_spans)
    assert np.mean(out != x) < 0.8 * np.mean(before != x)
    assert A.decode(heard(out)) == []


def test_the_octave_rule_decides_alike_for_any_chunking_and_backend():
    assert_rule_acts_alike(_note(386.0), OFF)
    assert_rule_acts_alike(_dipped_note(), {"press_octave_memory_ms": None})  # (the notes louder again)


def _key(digit: str, row_error: float, col_error: float, ms: float = 300.0, level_dbm0: float = -12.0,
         speech=None, speech_db: float = 0.0):
    tone = synth.dtmf_tone(digit, ms, 8000, level_dbm0, 0.0, freq_offset=(row_error, col_error), phase=(0.3, 1.1))
    z = np.zeros(2400)
    x = np.concatenate([z, tone, z])
    if speech is not None:
        s = np.resize(speech, x.size)
        s = s * np.sqrt(np.mean(tone ** 2)) / (np.sqrt(np.mean(s ** 2)) + 1e-9) * 10 ** (speech_db / 20)
        x = x + s
    return np.round(x).astype(np.int16), [synth.ToneSpan(digit, 2400, 2400 + tone.size)]


@pytest.mark.parametrize("digit", list(OCTAVE_KEYS) + ["B"])
@pytest.mark.parametrize("errors", [(0.0, 0.0), (-0.018, 0.018), (0.018, -0.018), (0.03, 0.03)])
def test_keys_of_pairs_near_an_octave_keep_their_flat_mask(digit, errors):
    """Keys of the tested pairs, at nominal, at ITU-T Q.23's corners (+-1.8 %, opposite ways: 1.987:1 for 2, 6 and
    C, the nearest a keypad gets to 2:1) and 3 % off both ways: the rule leaves their output as it was (one flat
    mask, nothing named)."""
    x, spans = _key(digit, *errors)
    out, m = mask(x)
    ref, m_ref = mask(x, WITHOUT)
    assert np.array_equal(out, ref) and m.masked_spans == m_ref.masked_spans
    assert len(m.masked_spans) == 1
    assert A.count_recovered(heard(out), spans) == 0


def test_a_keypad_pair_never_measures_as_an_octave():
    """The measurement itself (:meth:`Masker._octave`): clean keys of the tested pairs at Q.23's corners, over
    every 48 ms window inside the tone, never within ``press_octave_tolerance`` of 2:1; the notes above are."""
    m = Masker()
    for digit in OCTAVE_KEYS + "B":
        pair = [d for _, _, d in pairfit.PAIRS].index(digit)
        r, c, _ = pairfit.PAIRS[pair]
        assert abs(COL_HZ[c] / ROW_HZ[r] / 2 - 1) > 0.04
        for errors in ((-0.018, 0.018), (0.018, -0.018)):
            x, _ = _key(digit, *errors, ms=400.0)
            buf = x.astype(np.float64)
            m._buf = buf
            assert not any(m._octave(e, pair, 0) for e in range(2400 + 384, 2400 + 3200, 8)), (digit, errors)
    note = _note(382.0).astype(np.float64)
    m._buf = note
    pair = [d for _, _, d in pairfit.PAIRS].index("6")
    assert all(m._octave(e, pair, 0) for e in range(2400 + 400, 2400 + 6000, 400))


@pytest.mark.parametrize("digit", list(OCTAVE_KEYS))
def test_keys_of_pairs_near_an_octave_under_speech_are_named_by_nobody(digit):
    """Under speech at the tone's level and 3 dB over it, at Q.23's nearest corner to 2:1: named by nobody."""
    speech = A.load_speech(30.0, seed=9)
    if speech is None:
        pytest.skip("asterisk-core-sounds-en-wav not installed (speech over the keys)")
    for db in (0.0, 3.0):
        x, spans = _key(digit, -0.018, 0.018, ms=600.0, speech=speech, speech_db=db)
        out, m = mask(x)
        assert m.errors == 0
        assert A.count_recovered(heard(out), spans) == 0, db


def test_the_benchmark_cells_under_speech_are_unchanged():
    """The benchmark's keys 3 dB under speech and the +-2 % cells (seed 2026): the rule changes no sample."""
    for index, cond in ((1, {"speech_under_db": -3.0}), (12, {"freq_error": 0.02, "speech_around": True}),
                        (13, {"freq_error": -0.02, "speech_around": True})):
        x, spans = bench_scenario(2026, index, **cond)
        x = np.asarray(x)
        out, _ = mask(x)
        ref, _ = mask(x, WITHOUT)
        assert np.array_equal(out, ref), cond
        assert A.count_recovered(heard(out), spans) == 0


def _dipped_note(f0: float = 386.0):
    """:func:`_note` for 1.2 s with two 80 ms dips to -26 dB (a synthesizer's envelope, a drum's ducking)."""
    x = _note(f0, ms=1200.0).astype(np.float64)
    env = np.ones(x.size)
    for start in (2400 + 3200, 2400 + 6400):
        env[start: start + 640] = 0.05
    return np.round(x * env).astype(np.int16)


def test_octave_notes_louder_again_after_a_dip_open_no_new_flat_mask():
    """The same notes confirmed again after a dip (within ``press_octave_memory_ms`` of notes measured an octave, or
    beside the suspect watching them) are notched where named, not masked flat anew: without that part of the rule
    each return opens a flat mask (more than without the octave rule at all, whose first mask spans the dips)."""
    x = _dipped_note()
    out, m = mask(x)
    again_off, m_off = mask(x, dataclasses.replace(DEFAULT_MASKER_PARAMS, press_octave_memory_ms=None))
    before, m_before = mask(x, WITHOUT)
    assert len(m_off.masked_spans) > len(m_before.masked_spans) >= 1  # the case the rule is about
    assert len(m.masked_spans) < len(m_before.masked_spans)
    assert np.mean(out != x) < np.mean(before != x)
    assert A.decode(heard(out)) == []


@pytest.mark.parametrize("error", [0.0, 0.03, -0.03])
def test_a_key_right_after_octave_notes_of_its_pair_is_masked_flat(error):
    """Key 6 typed 100 ms after a note measured an octave near its pair (the memory on, the notes' suspect maybe
    still open): it is no octave, so it gets its flat mask over the whole tone and nobody names it."""
    note = _note(386.0, ms=600.0)
    key, spans = _key("6", error, error, ms=200.0)
    gap = np.zeros(800, dtype=np.int16)
    x = np.concatenate([note[:-1600], gap, key])
    offset = note.size - 1600 + gap.size
    spans = [synth.ToneSpan(s.digit, s.start + offset, s.end + offset) for s in spans]
    out, m = mask(x)
    assert m.errors == 0
    key_span = spans[0]
    assert any(s.start <= key_span.start and s.end >= key_span.end for s in m.masked_spans)
    assert A.count_recovered(heard(out), spans) == 0
