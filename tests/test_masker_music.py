# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 (precise masking) on music: note pairs near a key pair are treated only where the attacker could
name them, while real keys (alone or under speech) keep their treatment.

The attacker is :mod:`dtmfguard.testkit.adversary` (blind), hearing the agent's audio after a G.711 round trip."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import assert_any_backend_alike
from _masker_util import heard as _heard
from _masker_util import mask as _mask
from dtmfguard.dsp import levels
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A
from dtmfguard.testkit import synth
from test_masker import _two_notes

SPEECH = A.load_speech(60.0, seed=5)


def _chord(row_hz, col_hz, row_error, col_error, ms=400.0, partials=0.65, seed=3):
    """Two partials near a key pair (off nominal by the given shares) beside three other partials of a chord
    (``partials``: their amplitude relative to the pair's; at 0.6 the pair carries ~65 % of the 16 ms window, more
    than ``weak_notch_fraction``: notched at once before the tones-apart test), silence around."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(ms * 8)) / 8000.0
    a = levels.dbm0_to_peak(-15.0)
    x = a * (np.sin(2 * np.pi * row_hz * (1 + row_error) * t + rng.uniform(0, 6))
             + np.sin(2 * np.pi * col_hz * (1 + col_error) * t + rng.uniform(0, 6)))
    for f in (310.0, 455.0, 2210.0):
        x += partials * a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
    z = np.zeros(2400)
    return np.round(np.concatenate([z, x, z])).astype(np.int16)


@pytest.mark.parametrize("notes", [(697.0, 1336.0, 0.012, -0.012, 0.65), (770.0, 1209.0, -0.012, 0.012, 0.65),
                                   (697.0, 1336.0, 0.015, -0.015, 0.5), (770.0, 1209.0, -0.012, 0.012, 0.5)])
def test_a_note_pair_with_its_tones_apart_is_left_alone_and_named_by_nobody(notes):
    """Two partials near a key pair whose offsets from nominal differ by more than ``weak_apart_spread`` (no one
    keypad oscillator), carrying more than ``weak_notch_fraction`` of the window: without the test they were
    notched at once (and again whenever present after the oscillator release); now the pair stays silent
    unless a window could name it.  The attacker names nothing, unmasked or masked, either way: those notches
    were pure loss."""
    *pair, partials = notes
    x = _chord(*pair, partials=partials)
    out, m = _mask(x)
    before, m_before = _mask(x, dataclasses.replace(DEFAULT_MASKER_PARAMS, weak_apart_spread=None))
    changed, changed_before = float(np.sum(out != x)) / 8.0, float(np.sum(before != x)) / 8.0
    print(f"changed {changed_before:.0f} -> {changed:.0f} ms")
    assert m.masked_spans == [] and m_before.masked_spans == []
    assert changed_before >= 40.0  # (the case the test is about: notched without it)
    assert changed <= 0.6 * changed_before
    assert A.decode(_heard(out)) == [] and A.decode(x.astype(np.float64)) == []


@pytest.mark.parametrize("digit", list("159D"))
@pytest.mark.parametrize("speech_db", [None, 6.0, 0.0, -3.0])
def test_a_real_key_keeps_its_treatment(digit, speech_db):
    """A real key (one oscillator, both tones on nominal), alone or under speech 6 dB under it, as loud or 3 dB
    louder: the same output as without the tones-apart test, named by nobody blind; alone, one flat mask over
    the whole key."""
    if speech_db is not None and SPEECH is None:
        pytest.skip("asterisk-core-sounds-en-wav not installed (speech over the keys)")
    rng = np.random.default_rng(ord(digit) + (0 if speech_db is None else int(speech_db) + 100))
    tone = synth.dtmf_tone(digit, 300, level_dbm0=-12, phase=tuple(rng.uniform(0, 2 * np.pi, 2)))
    x = np.zeros(tone.size + 4800)
    x[2400: 2400 + tone.size] = tone
    if speech_db is not None:
        s0 = int(rng.integers(0, SPEECH.size - x.size))
        sp = SPEECH[s0: s0 + x.size].astype(np.float64)
        seg = sp[2400: 2400 + tone.size]
        x = x + sp * np.sqrt(np.mean(tone ** 2) / (np.mean(seg ** 2) + 1e-9)) * 10 ** (-speech_db / 20)
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    out, m = _mask(x)
    untested, _ = _mask(x, dataclasses.replace(DEFAULT_MASKER_PARAMS, weak_apart_spread=None))
    assert np.array_equal(out, untested)
    if speech_db is None:
        assert len(m.masked_spans) == 1
        assert m.masked_spans[0].start <= 2400 and m.masked_spans[0].end >= 2400 + tone.size
    assert A.count_recovered(_heard(out), [(digit, 2400, 2400 + tone.size)]) == 0


@pytest.mark.parametrize("notes", [(697.0, 1209.0, -0.038, 0.0), (941.0, 1477.0, 0.045, 0.0)])
def test_notes_failing_the_keypad_test_stay_masked_while_nameable(notes):
    """With the keypad test on (``press_tone_error_max``), two held notes one window confirms, one of them
    3.8-4.5 % off nominal, used to lose their mask 40 ms in and then pass raw: the attacker named the notes
    from the output.  With ``reject_named`` the mask goes on only while a window could name the pair: nothing
    is named (clean notes stay nameable to their end: one mask over them, as with the test off)."""
    x = _two_notes(*notes)
    on = dataclasses.replace(DEFAULT_MASKER_PARAMS, press_tone_error_max=0.035)
    out, m = _mask(x, on)
    raw, m_raw = _mask(x, dataclasses.replace(on, reject_named=False))
    assert A.decode(_heard(raw))  # the old treatment leaves the notes nameable ...
    assert A.decode(_heard(out)) == []  # ... this one does not
    assert len(m.masked_spans) == 1


@pytest.mark.parametrize("chunk", [1, 7, 160, 1000])
def test_music_rules_give_the_same_output_for_any_chunking_and_backend(chunk):
    """The tones-apart test and the named-only hold take their decisions on the 1 ms grid like every other rule:
    the same samples for any chunking, with the C screen and output (when built) or the numpy path."""

    x = np.concatenate([_chord(697.0, 1336.0, 0.015, -0.015, partials=0.5), _two_notes(941.0, 1477.0, 0.045, 0.0),
                        _chord(770.0, 1209.0, -0.012, 0.012)])
    on = dataclasses.replace(DEFAULT_MASKER_PARAMS, press_tone_error_max=0.035)
    m_ref = assert_any_backend_alike(x, chunk, on)
    assert m_ref.masked_spans and m_ref.notched_spans is not None


def test_tones_apart_window_must_fit_the_delay_line():
    """``weak_apart_ms`` is read from the delay line behind the hop: a window longer than it holds (the longest
    screen window + 4 ms) is refused when the masker is built, not met mid-call."""
    for bad in (0.5, 20.5, 100.0):
        with pytest.raises(ValueError, match="weak_apart_ms"):
            Masker(params=dataclasses.replace(DEFAULT_MASKER_PARAMS, weak_apart_ms=bad))
    # the longest allowed, with no look-ahead and a chord of partials apart: decided, never failed closed
    m = Masker(params=dataclasses.replace(DEFAULT_MASKER_PARAMS, weak_apart_ms=20.0), lookahead_ms=0.0)
    x = _chord(697.0, 1336.0, 0.015, -0.015, partials=0.5)
    for i in range(0, x.size, 160):
        m.process(x[i: i + 160])
    assert m.errors == 0


def test_a_notch_reopened_at_its_end_gives_the_same_output_for_any_chunking():
    """Game music (HyperRogue, tune half at 1.05x, first 70 s): a silent suspect's notch opened at the very end of
    the previous notch (its start the first sample not yet emitted) used to continue that span, which changed the
    gain of its ramp-out, already emitted when the chunks were short: one sample differed between 37- and
    160-sample chunks.  A notch whose ramp-out has begun to leave is no longer continued: a new span."""
    from dtmfguard.testkit import corpora

    try:
        x = corpora.signal("hyperrogue", "tune", speed=1.05, max_seconds=70).astype(np.int16)
    except corpora.CorpusMissing as exc:
        pytest.skip(f"hyperrogue-music not installed ({exc})")

    def run(chunk):
        m = Masker()
        out = np.concatenate([m.process(x[i: i + chunk]) for i in range(0, x.size, chunk)] + [m.flush()])
        return out, m

    ref, m_ref = run(160)
    assert m_ref.notched_spans
    for chunk in (37, 1000):
        out, m = run(chunk)
        assert np.array_equal(out, ref), chunk
        assert m.notched_spans == m_ref.notched_spans, chunk
