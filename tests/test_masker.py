# SPDX-License-Identifier: GPL-2.0-or-later
"""Masker: zero leakage against the adversarial decoder, bit-exact speech, key-independent mask,
chunking invariance, fail closed (issue 4)."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from dtmfguard.testkit import adversary as A
from dtmfguard.dsp import g711, levels
from dtmfguard.testkit import synth
from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp.masker import Masker, mask_samples
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS, DTMF_HZ

from _corpus_util import condition_needs_speech, need_speech, speech

SPEECH = speech(120.0, seed=2)  # None without asterisk-core-sounds-en-wav: those tests skip naming it
needs_speech = pytest.mark.usefixtures("en_speech")

# Residual DTMF level allowed inside masked spans (per frequency, 16 ms windows, fitted jointly with the
# mask tone so the mask's own spectral skirt is not counted), after a µ-law round trip of the output.
RESIDUAL_FLOOR_DBM0 = -55.0


def run(x, chunk=None, **opts):
    """Mask ``x`` in chunks; return the output aligned with the input and the masker."""
    m = Masker(**opts)
    if chunk is None:
        parts = [m.process(x)]
    else:
        parts = [m.process(x[i: i + chunk]) for i in range(0, x.size, chunk)]
    out = np.concatenate(parts + [m.flush()])[m.delay_samples:]
    return out, m


def mask_reference(m, n):
    return np.clip(np.round(m._mask_signal(0, n)), -32768, 32767)


def leaked_samples(out, m, spans):
    """Tone samples that are neither exactly the mask nor band-notched (any partial fade counts as a leak;
    the notch's own test, ``test_notch_removes_tone_energy``, proves a notched tone carries no energy)."""
    ref = mask_reference(m, out.size)
    notched = np.zeros(out.size, dtype=bool)
    for s in m.notched_spans:
        notched[max(s.start, 0): max(min(s.end, out.size), 0)] = True
    return [int(np.sum((np.abs(out[s.start: s.end].astype(float) - ref[s.start: s.end]) > 1.01)
                       & ~notched[s.start: s.end])) for s in spans]


@pytest.mark.parametrize("name", list(A.CONDITIONS))
def test_zero_leak_against_adversary(name):
    if condition_needs_speech(A.CONDITIONS[name]):  # the other conditions run on any host
        need_speech(SPEECH, f"condition {name!r}")
    rng = np.random.default_rng(list(A.CONDITIONS).index(name) + 100)
    x, spans = A.press_scenario(rng, 40, speech=SPEECH, **A.CONDITIONS[name])
    out, m = run(x, chunk=160)
    assert m.errors == 0
    leaks = leaked_samples(out, m, spans)
    unmasked = A.count_recovered(x, spans)
    masked = A.count_recovered(g711.ulaw_decode(g711.ulaw_encode(out)), spans)
    print(f"{name}: unmasked {unmasked}/{len(spans)}, masked {masked}/{len(spans)}, leaked samples {sum(leaks)}")
    assert unmasked >= 0.95 * len(spans)  # the decoder works on this audio ...
    assert sum(leaks) == 0  # ... every tone sample became the mask ...
    assert masked <= A.chance_bound(len(spans))  # ... and it names no more than chance
    assert masked == 0


def test_residual_dtmf_energy_below_floor():
    rng = np.random.default_rng(8)
    x, spans = A.press_scenario(rng, 30, level_dbm0=0.0)  # loudest tones: hardest to hide
    out, m = run(x)
    out = g711.ulaw_decode(g711.ulaw_encode(out)).astype(float)
    n = 128
    t = np.arange(n)[:, None] / 8000.0
    freqs = np.array(list(DTMF_HZ) + [m.mask_hz])
    pinv = np.linalg.pinv(np.concatenate([np.cos(2 * np.pi * freqs * t), np.sin(2 * np.pi * freqs * t)], 1))
    worst = -np.inf
    for s in spans:
        for i in range(s.start, s.end - n + 1, 32):
            c = pinv @ out[i: i + n]
            amp = np.hypot(c[:8], c[9:17]).max()
            worst = max(worst, levels.peak_to_dbm0(max(amp, 1e-9)))
    print(f"worst residual DTMF level in masked spans: {worst:.1f} dBm0 (floor {RESIDUAL_FLOOR_DBM0})")
    assert worst < RESIDUAL_FLOOR_DBM0


@needs_speech
def test_speech_outside_digits_is_bit_exact():
    rng = np.random.default_rng(21)
    x, spans = A.press_scenario(rng, 30, speech=SPEECH, speech_around=True)
    out, m = run(x, chunk=160)
    # structural: outside masked spans and their fades, the output IS the input (delayed)
    fade = m._fade
    covered = np.zeros(x.size, dtype=bool)
    for s in m.masked_spans:
        covered[max(s.start - fade, 0): max(s.end + fade, 0)] = True
    for s in m.notched_spans:
        covered[max(s.start, 0): max(s.end, 0)] = True
    burst = np.zeros(x.size, dtype=bool)  # (the keypad burst's band notch after the masker's own presses)
    for s in m.burst_spans:
        burst[max(s.start, 0): max(s.end, 0)] = True
    assert np.array_equal(out[~(covered | burst)], x[~(covered | burst)])
    # and the masked spans are (nearly all) the digits: speech masked by mistake stays rare
    near_tone = np.zeros(x.size, dtype=bool)
    for s in spans:
        near_tone[max(s.start - 160, 0): s.end + 480] = True
    speech_samples = int(np.sum(~near_tone))
    wrongly = int(np.sum(covered & ~near_tone))
    print(f"speech masked by mistake: {wrongly / speech_samples:.2%}")
    assert wrongly <= 0.06 * speech_samples


@needs_speech
def test_talk_off_on_real_speech_is_rare():
    x = np.clip(np.round(SPEECH), -32768, 32767).astype(np.int16)
    out, m = run(x, chunk=160)
    share = float(np.mean(out != x))
    minutes = x.size / 8000 / 60
    print(f"speech only: {len(m.masked_spans) / minutes:.1f} masked spans/min, {share:.2%} of samples")
    assert share < 0.03


def test_mask_does_not_depend_on_key():
    rng = np.random.default_rng(4)
    for _ in range(6):
        onset = int(rng.integers(400, 480))
        dur_ms = float(rng.uniform(45, 300))
        durations, rms = set(), []
        for key in A.PAIR_KEYS:
            x = np.zeros(6000)
            tone = synth.dtmf_tone(key, dur_ms, level_dbm0=-10.0, phase=tuple(rng.uniform(0, 2 * np.pi, 2)))
            x[onset: onset + tone.size] = tone
            out, m = run(x.astype(np.int16))
            (span,) = m.masked_spans
            durations.add(span.end - span.start)
            assert abs(span.start - (onset - m._guard)) <= 2 * m._hop + m._guard  # starts just before onset
            assert (span.end - span.start) % m._quantum == 0
            core = out[span.start + 8: span.end - 8].astype(float)
            rms.append(np.sqrt(np.mean(core ** 2)))
        assert len(durations) == 1, "masked duration must not depend on the key"
        assert max(rms) - min(rms) < 0.01 * max(rms)


@pytest.mark.parametrize("chunk", [1, 7, 160, 4096])
def test_same_output_for_any_chunking(chunk):
    rng = np.random.default_rng(9)
    x, _ = A.press_scenario(rng, 8, speech=SPEECH, speech_around=SPEECH is not None, fast=True)
    x = x[:9000]
    whole, _ = run(x)
    parts, _ = run(x, chunk=chunk)
    assert np.array_equal(whole, parts)


def test_same_output_for_random_splits():
    rng = np.random.default_rng(10)
    x, _ = A.press_scenario(rng, 10, noise_snr_db=20.0)
    whole, _ = run(x)
    for _ in range(3):
        m = Masker()
        cuts = np.sort(rng.integers(0, x.size, 40))
        parts = [m.process(p) for p in np.split(x, cuts)] + [m.flush()]
        assert np.array_equal(np.concatenate(parts)[m.delay_samples:], whole)


def test_delay_dtypes_and_lengths():
    m = Masker(lookahead_ms=16)
    assert m.delay_samples == 128
    x = (np.arange(300) % 50).astype(np.int16)
    y = m.process(x)
    assert y.dtype == np.int16 and y.size == 300
    assert np.array_equal(y[:128], np.zeros(128)) and np.array_equal(y[128:], x[:172])
    assert m.samples_in == 300
    f = m.process(x.astype(np.float64) / 32768.0)  # float in: still int16 out (fixed at construction)
    assert f.dtype == np.int16 and np.array_equal(f[:128], x[172:])
    assert m.flush().size == 128
    m = Masker(lookahead_ms=16, dtype="float64")
    y = np.concatenate([m.process(x), m.process(x.astype(np.float64) / 32768.0), m.flush()])
    assert y.dtype == np.float64 and np.array_equal(y[128:428] * 32768.0, x) and np.array_equal(y[428:] * 32768.0, x)
    for bad in ("int32", "float32", "text", None):
        with pytest.raises(ValueError, match="dtype"):
            Masker(dtype=bad)


@pytest.mark.parametrize("kind", ["tone", "silence", "noise"])
def test_masks_and_fades(kind):
    x, spans = synth.keypresses("5", tone_ms=100, level_dbm0=-5.0, rng=np.random.default_rng(1))
    out, m = run(np.round(x).astype(np.int16), mask=kind)
    (span,) = m.masked_spans
    core = out[span.start: span.end].astype(float)
    if kind == "silence":
        assert not core.any()
    elif kind == "tone":
        assert abs(levels.peak_to_dbm0(np.abs(core).max()) - m.mask_dbm0) < 0.1
    else:
        assert abs(20 * np.log10(np.sqrt(np.mean(core ** 2)) * np.sqrt(2) / levels.DBM0_PEAK) - m.noise_dbm0) < 1
        again, _ = run(np.round(x).astype(np.int16), chunk=37, mask=kind)
        assert np.array_equal(out, again)  # comfort noise is a function of position: deterministic
    # no clicks: no step larger than the mask tone's own steepest slope (plus rounding)
    if kind != "noise":
        slope = 2 * np.pi * m.mask_hz / 8000 * levels.dbm0_to_peak(m.mask_dbm0)
        assert np.abs(np.diff(out.astype(float))).max() <= slope * 1.05 + 2
    assert A.recover_digits(out) == []


def test_cover_masks_signalled_digits_like_inband():
    rate = 8000
    silence = np.zeros(8000, dtype=np.int16)
    m = Masker()
    m.cover(2000, 2800)
    out = np.concatenate([m.process(silence), m.flush()])[m.delay_samples:]
    (cov,) = m.masked_spans
    assert cov.source == "cover" and cov.start <= 2000 - m._guard and cov.end >= 2800
    assert not out[: cov.start - m._fade].any() and not out[cov.end + m._fade:].any()
    # the same key sent in-band for the same 100 ms: same masked duration
    x = np.zeros(8000)
    x[2000:2800] = synth.dtmf_tone("3", 100, rate, -10.0)
    _, m2 = run(x.astype(np.int16))
    (inb,) = m2.masked_spans
    assert inb.end - inb.start == cov.end - cov.start
    ref = mask_reference(m, 8000)
    assert np.array_equal(out[cov.start: cov.end], ref[cov.start: cov.end])


def test_open_cover_until_uncover():
    m = Masker()
    x = np.full(8000, 1000, dtype=np.int16)
    m.cover(1000)
    a = m.process(x[:2000])
    assert m.masking
    m.uncover(3000)  # before the output reaches 3000: the cover ends there
    out = np.concatenate([a, m.process(x[2000:]), m.flush()])[m.delay_samples:]
    (span,) = m.masked_spans
    assert span.start <= 1000 and 3000 <= span.end <= 3000 + 2 * m._quantum
    assert np.array_equal(out[: span.start - m._fade], x[: span.start - m._fade])
    assert np.array_equal(out[span.end + m._fade:], x[span.end + m._fade:])
    assert not m.masking


def test_hide_timing_makes_one_span():
    x, spans = synth.keypresses("4111", tone_ms=80, gap_ms=300, rng=np.random.default_rng(2))
    out, m = run(np.round(x).astype(np.int16), hide_timing=True)
    (span,) = m.masked_spans
    assert span.start < spans[0].start and span.end >= spans[-1].end + int(1.9 * 8000)
    _, plain = run(np.round(x).astype(np.int16))
    assert len(plain.masked_spans) == 4


class _Raising:
    """Stands in for the C Screen of one masker: every call fails."""

    def __getattr__(self, name):
        def boom(*a, **k):
            raise RuntimeError("4111111111111111 injected")
        return boom


def test_fail_closed_when_detector_raises(monkeypatch, caplog):
    x, spans = synth.keypresses("4111111111111111", tone_ms=60, gap_ms=60, rng=np.random.default_rng(6))
    x = np.round(x).astype(np.int16)
    m = Masker()
    good = m.process(x[:1000])

    def boom(*a, **k):
        raise RuntimeError("4111111111111111 injected")

    monkeypatch.setattr(Masker, "_screen", boom)  # the screen's core (numpy path) ...
    m._native_screen = _Raising()  # ... and the C frame
    caplog.set_level(logging.DEBUG)
    bad = [m.process(x[i: i + 160]) for i in range(1000, x.size, 160)]
    assert m.errors == len(bad)
    out = np.concatenate([good] + bad)
    ref = mask_reference(m, x.size + 1000)
    # from the failure on, every output sample is the mask: no raw tone reaches the agent
    start = 1000 - m.delay_samples
    assert np.array_equal(out[1000:], ref[start: start + out.size - 1000])
    assert A.recover_digits(out) == []
    assert "4111" not in caplog.text and "injected" not in caplog.text


def test_fail_closed_even_if_mask_fails(monkeypatch):
    m = Masker()
    m._native_screen = _Raising()
    monkeypatch.setattr(Masker, "_screen", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(Masker, "_mask_signal", lambda *a, **k: 1 / 0)
    x = np.round(synth.dtmf_tone("9", 200)).astype(np.int16)
    y = m.process(x)
    assert y.dtype == np.int16 and y.size == x.size and not y.any()


@pytest.mark.parametrize("bad", [np.zeros((2, 10)), np.array([np.nan, 1.0]), "text", np.array([], dtype=np.int16)])
def test_bad_input_never_raises(bad):
    m = Masker()
    y = m.process(bad)
    assert isinstance(y, np.ndarray) and y.size == np.size(bad)


def test_recording_helper_and_pan_not_leaked(caplog):
    caplog.set_level(logging.DEBUG)
    x, spans = synth.keypresses("4111111111111111", tone_ms=70, gap_ms=70, rng=np.random.default_rng(12))
    out, masked = mask_samples(np.round(x).astype(np.int16))
    assert out.size == x.size and len(masked) == 16
    assert A.count_recovered(out, spans) == 0
    assert "4111" not in caplog.text and "4111" not in repr(masked)


def test_fail_closed_when_onset_search_raises(monkeypatch):
    """A fault on the path taken only when a tone starts: the tone must still not reach the agent."""
    x, spans = synth.keypresses("4111", tone_ms=80, gap_ms=80, rng=np.random.default_rng(7))
    x = np.round(x).astype(np.int16)
    monkeypatch.setattr(Masker, "_onset_explained", lambda *a, **k: 1 / 0)  # the walk-back's fits (numpy) ...
    m = Masker()
    if m._native_output is not None:  # ... and in C
        m._native_output = _Raising()
    out = np.concatenate([m.process(x[i: i + 160]) for i in range(0, x.size, 160)] + [m.flush()])
    assert m.errors >= 1
    assert A.count_recovered(out[m.delay_samples:], spans) == 0


@pytest.mark.parametrize("rate", [16000, 48000])
def test_wideband_rates_leak_nothing(rate):
    x, spans = synth.keypresses(A.PAIR_KEYS, rate=rate, tone_ms=45, gap_ms=45, level_dbm0=-20.0,
                                rng=np.random.default_rng(2))
    x = np.round(x).astype(np.int16)
    m = Masker(rate)
    frame = rate // 50
    out = np.concatenate([m.process(x[i: i + frame]) for i in range(0, x.size, frame)] + [m.flush()])
    out = out[m.delay_samples:]
    assert m.delay_samples == round(rate * m.lookahead_ms / 1000)
    assert A.count_recovered(x, spans, rate) == 16
    assert sum(leaked_samples(out, m, spans)) == 0
    assert A.count_recovered(out, spans, rate) == 0


def test_bad_options_are_rejected():
    with pytest.raises(ValueError):
        Masker(mask="beep")
    with pytest.raises(ValueError):
        Masker(mask_hz=700.0)  # next to 697 Hz: would sound like half a key
    with pytest.raises(ValueError):
        Masker(lookahead_ms=-1)


# ---------------------------------------------------------------------------------------------- issue 12
TALK_OVER = {  # the talk-over conditions that the default must pass outright (blind 0, no leak)
    "2nd-voice-mid-press": {"voice_mid_press_db": 0.0},
    "25-35ms-presses": {"duration_ms": (25.0, 35.0), "speech_around": True},
    "40ms-gaps": {"duration_ms": 45.0, "gap_ms": 40.0, "speech_around": True},
    "alaw": {"speech_around": True, "codec": "alaw"},
    "twist+6": {"twist_db": 6.0, "speech_around": True},
    "twist-6": {"twist_db": -6.0, "speech_around": True},
    "freq+2%": {"freq_error": 0.02, "speech_around": True},
    "freq-2%": {"freq_error": -0.02, "speech_around": True},
    "-30dBm0": {"level_dbm0": -30.0, "speech_around": True},
}


@needs_speech
@pytest.mark.parametrize("name", list(TALK_OVER))
def test_talk_over_conditions_leak_nothing(name):
    rng = np.random.default_rng(list(TALK_OVER).index(name) + 300)
    x, spans = A.press_scenario(rng, 16, speech=SPEECH, **TALK_OVER[name])
    out, m = run(x, chunk=160)
    heard = g711.alaw_decode(g711.alaw_encode(out)) if "alaw" in name else g711.ulaw_decode(g711.ulaw_encode(out))
    assert A.count_recovered(x, spans) >= 15  # the attacker names (nearly) every unmasked press ...
    assert sum(leaked_samples(out, m, spans)) == 0  # ... no tone sample escapes mask or notch ...
    assert A.count_recovered(heard, spans) == 0  # ... and it names none of the masked ones
    assert A.oracle_score(heard, spans) <= A.chance_bound(len(spans))


def test_wideband_talk_over():
    rng = np.random.default_rng(77)
    speech = SPEECH if SPEECH is not None else None
    x, spans = A.press_scenario(rng, 12, speech=speech, speech_around=speech is not None, rate=16000)
    out, m = run(x, chunk=320, rate=16000)
    assert A.count_recovered(x, spans, 16000) >= 11
    assert sum(leaked_samples(out, m, spans)) == 0 and A.count_recovered(out, spans, 16000) == 0


def _notch_only(x, **opts):
    """The masker's notch applied to the whole stream (detection switched off): the undecided treatment."""
    from dtmfguard.dsp.masker import _Span

    m = Masker(**opts)
    m._decide = lambda *a, **k: None
    m._native_screen = None  # (the C frame decides too)
    m._notches.append(_Span(-10 ** 6, None, "notch"))
    return np.concatenate([m.process(x[i: i + 160]) for i in range(0, x.size, 160)] + [m.flush()])[m.delay_samples:]


@pytest.mark.parametrize("error", [0.0, 0.01, 0.02, -0.02])
def test_notch_removes_tone_energy(error):
    """While undecided the masker removes only the 8 DTMF bands: a tone there loses its energy (all of it
    at the nominal frequencies, >= 16 dB of it 2 % off: 17.3 dB measured), whatever the key."""
    for key in "159D":
        tone = synth.dtmf_tone(key, 500, level_dbm0=-10.0, freq_offset=(error, error), phase=(0.4, 1.3))
        out = _notch_only(np.round(tone).astype(np.int16))[200:-200].astype(float)
        ref = tone[200:-200]
        residual_db = 10 * np.log10(max(float(out @ out), 1e-9) / float(ref @ ref))
        assert residual_db <= (-40.0 if error == 0 else -16.0), (key, residual_db)


@pytest.mark.parametrize("error", [0.03, -0.03, 0.04, -0.04, 0.05, -0.05])
def test_notch_removes_tones_a_few_percent_off(error):
    """The notch's band vectors (``notch_band_extra``) take a tone 3-5 % off nominal too (the attacker names a key
    4 % off): >= 25 dB of it removed (keys 1 and D, the bands' edges, worst; measured +-3 / +-4 / +-5 %: 40.2 / 33.9,
    36.5 / 30.3, 30.4 / 27.4 dB), with the nominal frequencies only (``notch_band_extra`` 0, the previous basis) less
    than 14 dB (12.2 / 13.5, 8.6 / 10.6, 6.0 / 8.2 dB).  Per frequency: ``benchmarks/notch_offsets.py``."""
    wide = {}
    for extra in (DEFAULT_MASKER_PARAMS.notch_band_extra, 0):
        p = dataclasses.replace(DEFAULT_MASKER_PARAMS, notch_band_extra=extra)
        worst = -np.inf
        for key in "1D":  # the lowest row and column tones, then the highest (the bands' edges)
            tone = synth.dtmf_tone(key, 500, level_dbm0=-10.0, freq_offset=(error, error), phase=(0.4, 1.3))
            out = _notch_only(np.round(tone).astype(np.int16), params=p)[200:-200].astype(float)
            ref = tone[200:-200]
            worst = max(worst, 10 * np.log10(max(float(out @ out), 1e-9) / float(ref @ ref)))
        wide[extra] = worst
    print(f"{error:+.0%}: {wide}")
    assert wide[DEFAULT_MASKER_PARAMS.notch_band_extra] <= -25.0 and wide[0] > -14.0, wide


@needs_speech
def test_notch_leaves_speech_and_reaches_tones_under_speech():
    x = np.clip(np.round(SPEECH[: 8000 * 20]), -32768, 32767).astype(np.int16)
    out = _notch_only(x).astype(float)
    kept_db = 10 * np.log10(float(out @ out) / float(x.astype(float) @ x))
    print(f"speech energy after the notch: {kept_db:.2f} dB")
    assert kept_db > -1.5  # the bands are narrow: most of the speech passes
    rng = np.random.default_rng(31)
    x, spans = A.press_scenario(rng, 24, speech=SPEECH, speech_under_db=-3.0)  # tones 3 dB under speech
    _, m = run(x, chunk=160)
    assert m.notched_spans, "tones under louder speech must reach the notch"


@needs_speech
def test_no_per_key_side_channel_in_masked_spans():
    """A classifier over what the agent hears in each masked span (duration, level and the energy each
    key's pair explains there) names the key no better than chance."""
    rng = np.random.default_rng(41)
    feats, keys = [], []
    for _ in range(3):
        x, spans = A.press_scenario(rng, 48, speech=SPEECH, speech_around=True)
        out, m = run(x, chunk=160)
        from dtmfguard.dsp import pairfit

        for s in spans:
            cover = [q for q in m.masked_spans if q.start <= s.start < q.end]
            if not cover:
                continue
            q = cover[0]
            seg = out[q.start + m._fade: q.end - m._fade].astype(float)
            frames = seg[: seg.size // 128 * 128].reshape(-1, 128)
            resid, _, energy = pairfit.pair_fit(frames, 8000)
            pair = np.log10(np.mean(energy[:, None] - resid, axis=0) + 1.0)
            feats.append(np.concatenate([[q.end - q.start, np.log10(np.mean(seg ** 2) + 1.0)], pair]))
            keys.append(s.digit)
    feats, keys = np.array(feats), np.array(keys)
    half = len(keys) // 2
    mu, sd = feats[:half].mean(0), feats[:half].std(0) + 1e-9
    z = (feats - mu) / sd
    cents = {k: z[:half][keys[:half] == k].mean(0) for k in set(keys[:half])}
    names = list(cents)
    guess = [names[int(np.argmin([np.sum((v - cents[k]) ** 2) for k in names]))] for v in z[half:]]
    right = int(sum(g == k for g, k in zip(guess, keys[half:])))
    print(f"classifier over masked spans: {right}/{len(guess)} right (chance bound "
          f"{A.chance_bound(len(guess))})")
    assert len(guess) >= 60
    assert right <= A.chance_bound(len(guess))


@pytest.mark.parametrize("source", ["en", "moh", "it", "espeak-cmn", "espeak-de"])
def test_key_free_real_audio_is_left_alone(source):
    """Issue 12: ordinary speech and music are not beeped over (report half; tuned on the tune half), on the
    issue's 10 minutes per source (a 2-minute slice of Italian sits at 0.49-0.51 % changed: too short to judge).
    espeak Mandarin sat at 0.58-0.63 % until a short window's suspect had to match the 16 ms window's tones
    (``verify_coherence``): 0.35 %."""
    from dtmfguard.testkit import corpora

    try:
        x = corpora.signal(source, "report", max_seconds=600).astype(np.int16)
    except corpora.CorpusMissing as exc:
        pytest.skip(str(exc))
    out, m = run(x, chunk=160)
    minutes = x.size / 8000 / 60
    changed = float(np.mean(out != x))
    print(f"{source}: {len(m.masked_spans) / minutes:.2f} flat masks/min, "
          f"{len(m.notched_spans) / minutes:.1f} notches/min, {changed:.3%} changed")
    assert len(m.masked_spans) <= 1 * minutes
    assert changed <= 0.005


@needs_speech
def test_same_output_for_any_chunking_under_talk_over():
    """Notches, pending suspects, weak runs and presses held through frames: still chunking-invariant."""
    rng = np.random.default_rng(12)
    x, _ = A.press_scenario(rng, 10, speech=SPEECH, speech_under_db=-3.0)
    x = x[:40000]
    whole, m = run(x)
    assert m.notched_spans and m.masked_spans  # the paths under test were taken
    for chunk in (1, 37, 160):
        parts, _ = run(x, chunk=chunk)
        assert np.array_equal(whole, parts), chunk
    cuts = np.sort(rng.integers(0, x.size, 60))
    m2 = Masker()
    got = np.concatenate([m2.process(p) for p in np.split(x, cuts)] + [m2.flush()])[m2.delay_samples:]
    assert np.array_equal(got, whole)


def test_masker_uses_the_shared_pair_fit_not_the_attacker():
    """The masker and the attacker share dtmfguard.dsp.pairfit; the masker imports nothing of the attacker."""
    import ast

    tree = ast.parse(open(masker_mod.__file__, encoding="utf-8").read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names} | {node.module or "" for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom)}
    assert "pairfit" in imported and not any("adversary" in name for name in imported)


def _held_pair(row_error, col_error, rng, ms=300.0, partials=0.75):
    """A row and a column tone (697 / 1336 Hz, off nominal by the given shares) held ``ms`` beside three other
    partials of the same level band (``partials``: their amplitude relative to the tones; at 0.75 the pair
    carries ~55 % of the energy: a weak suspect, never confirmed by one window), with silence around."""
    t = np.arange(int(ms * 8)) / 8000.0
    a = levels.dbm0_to_peak(-15.0)
    x = a * (np.sin(2 * np.pi * 697.0 * (1 + row_error) * t + rng.uniform(0, 6))
             + np.sin(2 * np.pi * 1336.0 * (1 + col_error) * t + rng.uniform(0, 6)))
    for f in (310.0, 455.0, 2210.0):
        x += partials * a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
    z = np.zeros(2400)
    return np.round(np.concatenate([z, x, z])).astype(np.int16)


@pytest.mark.parametrize("errors", [(0.008, -0.008), (-0.01, 0.01), (0.005, -0.005)])
def test_two_partials_off_nominal_apart_are_not_a_press(errors):
    """Issue 12: a pair held past ``persist_ms`` whose tones are off nominal by different shares is two
    partials of a voice or a note (Mandarin level tones, game music), not one keypad oscillator: no flat
    mask; the same pair on nominal frequency under the same partials is masked flat."""
    rng = np.random.default_rng(3)
    out, m = run(_held_pair(*errors, rng), chunk=160)
    assert m.masked_spans == []
    x = _held_pair(0.0, 0.0, rng)
    out, m = run(x, chunk=160)
    assert len(m.masked_spans) == 1 and not A.recover_digits(out)


@pytest.mark.parametrize("errors", [(0.008, -0.008), (-0.01, 0.01), (0.005, -0.005)])
def test_a_held_note_pair_loses_its_notch_once_it_fails_the_oscillator_test(errors):
    """Issue 12 (precise masking): a note's two partials near a key pair, strong enough to be notched at once
    (~65 % of the energy) and held 600 ms, were notched for all 600 ms; once they fail the one-oscillator
    test (``persist_ms``) the notch ends (``oscillator_release``) and the audio passes untouched, and the
    attacker still names nothing from the output.  With the release off the notch lasts the whole note.  (The
    tones-apart test, which keeps such a pair silent from its start, is off here: this tests the release.)"""
    import dataclasses

    from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS

    for release in (True, False):
        rng = np.random.default_rng(3)
        x = _held_pair(*errors, rng, ms=600.0, partials=0.65)
        m = Masker(params=dataclasses.replace(DEFAULT_MASKER_PARAMS, oscillator_release=release,
                                              weak_apart_spread=None))
        out = np.concatenate([m.process(x[i: i + 160]) for i in range(0, x.size, 160)] + [m.flush()])
        out = out[m.delay_samples:]
        changed_ms = float(np.sum(out != x)) / 8.0
        print(f"release={release}: {changed_ms:.0f} ms changed, notches {len(m.notched_spans)}")
        assert m.masked_spans == []
        assert not A.recover_digits(out)
        if release:
            assert 30.0 <= changed_ms <= 100.0  # notched from its onset past persist_ms, then left alone
        else:
            assert changed_ms >= 550.0


def _two_notes(row_hz, col_hz, row_error, col_error, ms=600.0, seed=1):
    """Two clean tones near a key pair (off nominal by the given shares), held ``ms``, silence around."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(ms * 8)) / 8000.0
    a = levels.dbm0_to_peak(-15.0)
    x = a * (np.sin(2 * np.pi * row_hz * (1 + row_error) * t + rng.uniform(0, 6))
             + np.sin(2 * np.pi * col_hz * (1 + col_error) * t + rng.uniform(0, 6)))
    z = np.zeros(2400)
    return np.round(np.concatenate([z, x, z])).astype(np.int16)


@pytest.mark.parametrize("notes", [(697.0, 1209.0, -0.038, 0.0), (697.0, 1209.0, 0.0, -0.038),
                                   (941.0, 1477.0, 0.038, 0.0)])
def test_a_confirmed_pair_off_keypad_frequencies_loses_its_flat_mask(notes):
    """Issue 12 (precise masking): two held notes one window confirms as a key pair, one of them 3.8 % off
    nominal (ITU-T Q.24 asks receivers to reject beyond 3.5 %; Q.23 senders stay within 1.8 %), were masked
    flat for all their 600 ms (game music: HyperRogue's flat masks); the press is tested ``persist_ms`` after
    it opened and its mask ends there (``press_tone_error_max``, off by default: its cost is measured in
    MaskerParams; ``reject_named`` off: with it on, the mask goes on while a window could name the pair, as
    these clean notes can to their end: ``tests/test_masker_music.py``).  With the test off the mask lasts
    the whole pair."""
    import dataclasses

    from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS

    x = _two_notes(*notes)
    for error_max in (0.035, None):
        m = Masker(params=dataclasses.replace(DEFAULT_MASKER_PARAMS, press_tone_error_max=error_max,
                                              reject_named=False))
        out = np.concatenate([m.process(x[i: i + 160]) for i in range(0, x.size, 160)] + [m.flush()])
        changed_ms = float(np.sum(out[m.delay_samples:] != x)) / 8.0
        print(f"press_tone_error_max={error_max}: {changed_ms:.0f} ms changed, flat {len(m.masked_spans)}")
        assert len(m.masked_spans) == 1
        if error_max is not None:
            assert changed_ms <= 100.0
        else:
            assert changed_ms >= 550.0


@pytest.mark.parametrize("pause_ms", [45.0, 60.0, 100.0])
def test_a_key_right_after_rejected_notes_of_its_pair_is_masked(pause_ms):
    """Notes near key 1's pair, one 3.8 % off (the press test ends their mask and remembers the pair), then a
    real key 1 after a Q.24 pause: the key is masked whole and named by nobody (``reject_hold_ms``)."""
    import dataclasses

    from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS

    notes = _two_notes(697.0, 1209.0, -0.038, 0.0, ms=400.0)[:-2400].astype(np.float64)
    pause = np.zeros(int(pause_ms * 8))
    key = _two_notes(697.0, 1209.0, 0.0, 0.0, ms=200.0, seed=5)[2400:].astype(np.float64)
    x = np.round(np.concatenate([notes, pause, key])).astype(np.int16)
    out, m = run(x, chunk=160, params=dataclasses.replace(DEFAULT_MASKER_PARAMS, press_tone_error_max=0.035))
    k0 = notes.size + pause.size
    assert any(s.end <= k0 for s in m.masked_spans)  # the notes' mask ended early (the test is exercised)
    assert any(s.start <= k0 and s.end >= k0 + 1600 for s in m.masked_spans)  # the key: one span, whole
    assert A.count_recovered(out, [("1", k0, k0 + 1600)]) == 0


@pytest.mark.parametrize("errors", [(0.018, -0.018), (-0.018, 0.018), (0.02, 0.02), (-0.02, -0.02)])
@pytest.mark.parametrize("speech_db", [None, 0.0])
def test_keypads_at_the_tolerance_corners_stay_masked_whole(errors, speech_db):
    """The keypad test never ends a real key's mask: keys whose tones are off by Q.23's +-1.8 % in opposite
    directions, or 2 % alike, held 600 ms (alone, or with speech as loud as the tone over them): one flat mask
    over the whole key, and the attacker names none of them."""
    import dataclasses

    from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS

    rng = np.random.default_rng(8)
    for key, (row, col) in (("1", (697.0, 1209.0)), ("9", (852.0, 1477.0)), ("D", (941.0, 1633.0))):
        x = _two_notes(row, col, *errors, seed=int(rng.integers(1000))).astype(np.float64)
        if speech_db is not None:
            if SPEECH is None:
                pytest.skip("asterisk-core-sounds-en-wav not installed (speech over the keys)")
            s0 = int(rng.integers(0, SPEECH.size - x.size))
            sp = SPEECH[s0: s0 + x.size].astype(np.float64)
            tone = x[2400:-2400]
            x = x + sp * np.sqrt(np.mean(tone ** 2) / (np.mean(sp[2400:-2400] ** 2) + 1e-9) / 10 ** (speech_db / 10))
        x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
        on = dataclasses.replace(DEFAULT_MASKER_PARAMS, press_tone_error_max=0.035)
        out, m = run(x, chunk=160, params=on)
        spans = m.masked_spans
        assert spans and max(s.end for s in spans) >= x.size - 2400, key  # masked to its end ...
        if speech_db is None:
            assert len(spans) == 1 and spans[0].start <= 2400, key  # ... from its start, in one span
        assert A.count_recovered(out, [(key, 2400, x.size - 2400)]) == 0, key
        untested, _ = run(x, chunk=160, params=dataclasses.replace(DEFAULT_MASKER_PARAMS, press_tone_error_max=None))
        assert np.array_equal(out, untested), key  # the test changed nothing here


def _cut_onset(digit, k, fill, rng):
    """A key whose first ``k`` samples end a 20 ms frame, then a frame that is not the customer's audio
    (``fill``: "silence" - a stream gap fed as silence; "repeat" - the previous frame at half level, the
    relay jitter buffer's concealment), then the rest of the key: what a jitter-buffer underflow right after
    a key's onset gives the masker on a loaded host (issue 12, the hold test's load-only leak)."""
    tone = synth.dtmf_tone(digit, 120, level_dbm0=-10, phase=tuple(rng.uniform(0, 2 * np.pi, 2)))
    head = np.zeros(1600)
    head[-k:] += tone[:k]
    if fill == "silence":
        mid, rest = np.zeros(160), tone[k + 160:]
    else:
        mid, rest = 0.5 * head[-160:], tone[k:]
    return np.round(np.concatenate([head, mid, rest, np.zeros(1600)])).astype(np.int16)


@pytest.mark.parametrize("fill", ["silence", "repeat"])
@pytest.mark.parametrize("onset_ms", [2.0, 3.0, 4.0])
def test_a_key_onset_cut_off_by_a_gap_is_not_named(fill, onset_ms):
    """The first 2-4 ms of a key, alone in quiet because the rest comes a frame later: the attacker names
    the key from those ms alone (16 of 16 keys named before the isolated-burst rule, measured), yet the
    16 ms window centred on them holds mostly the gap, so the screen's usual verification rejected them.
    A short window holding most of its 16 ms window's energy is verified: the burst is notched or masked,
    never raw, and the decoder names the keys no better than chance."""
    rng = np.random.default_rng(int(onset_ms * 10) + (fill == "repeat"))
    k = int(onset_ms * 8)
    right = 0
    for digit in "0123456789*#ABCD":
        x = _cut_onset(digit, k, fill, rng)
        out, m = run(x, chunk=160)
        frag = slice(1600 - k, 1600)
        assert np.sum(out[frag] == x[frag]) <= 2, digit  # (a notched or masked sample equals it by chance)
        right += A.count_recovered(out.astype(np.float64), [synth.ToneSpan(digit, 1600 - k, x.size - 1600)]) > 0
    assert right <= 1, right  # chance: a notch's ramp is sometimes named as one fixed key
