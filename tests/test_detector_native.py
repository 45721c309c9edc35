# SPDX-License-Identifier: GPL-2.0-or-later
"""The detector's optional C window tests (native/detector.c) give the numpy path's events.

Two levels:

* events: every conformance-style signal (all 16 keys, Q.24 frequency offsets up to and across the
  2.5 % limit, twist across both limits, levels around the -38 dBm0 threshold, white noise, real speech
  with keys over and between it, short breaks, wideband) gives the same digits, starts and ends and the
  same level (to 1e-6 dB) on the numpy backend (BLAS kernel + numpy tests) and the native one (C kernel +
  C tests), for frames of 160 samples and for random chunkings;
* windows: fed the same kernel values (the C kernel here is bit-identical to dtmfguard.dsp._native), the C
  tests give the same digit code and phase-check flag for every window as ``detector._classify``, and
  amplitudes and levels equal to float rounding.  The C library's atan2/hypot/log10/sin may differ from
  numpy's SIMD versions in the last bit, so a window exactly on a threshold could in principle flip; the
  figures below show how far every compared value stays from that.
"""
from __future__ import annotations

import zlib

from dataclasses import replace

import numpy as np
import pytest
from _corpus_util import MUSIC_PACKAGE, SPEECH_PACKAGE, condition_needs_speech, music, need, speech
from _native_util import require_native, with_backend

from dtmfguard.testkit import adversary as A
from dtmfguard.dsp import detector as detector_mod
from dtmfguard.dsp import goertzel
from dtmfguard.dsp.audio import AudioError
from dtmfguard.dsp.detector import DetectorBank, DtmfDetector
from dtmfguard.dsp.params import DEFAULT_PARAMS
from dtmfguard.events import DIGITS
from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.testkit.synth import dtmf_tone, keypresses, white_noise

SPEECH = speech(30.0, seed=7)  # None without asterisk-core-sounds-en-wav: its cases skip naming it
MUSIC = music(2, 15.0)  # two pieces of music on hold (asterisk-moh-opsound-wav), None if missing


def _keys_with(rng, **tone_kw):
    """All 16 keys, 45 ms tones and gaps, random phases, each with ``tone_kw``."""
    parts = [np.zeros(400)]
    for d in DIGITS:
        parts += [dtmf_tone(d, 45, phase=tuple(rng.uniform(0, 2 * np.pi, 2)), **tone_kw), np.zeros(360)]
    return np.concatenate(parts)


def _corpus():
    rng = np.random.default_rng(61)
    out = {"keys": _keys_with(rng)}
    for off in (-0.035, -0.025, -0.02, -0.015, 0.015, 0.02, 0.025, 0.03, 0.035):  # Q.24: accept 1.5, reject 3.5
        out[f"offset{off:+.3f}"] = _keys_with(rng, freq_offset=(off, -off))
    for twist in (-6.0, -5.0, -4.0, 4.0, 8.0, 9.0, 10.0):  # Q.24: reverse 4 dB, normal 8 dB
        out[f"twist{twist:+.0f}"] = _keys_with(rng, twist_db=twist)
    for level in (-40.0, -38.0, -36.0):  # around min_tone_dbm0
        out[f"level{level:.0f}"] = _keys_with(rng, level_dbm0=level)
    keys = _keys_with(rng, level_dbm0=-20.0)
    for snr in (15.0, 10.0, 5.0):
        out[f"noise{snr:.0f}dB"] = keys + white_noise(keys.size, np.sqrt(np.mean(keys**2)) / 10 ** (snr / 20), rng)
    # two notes 0.8 % sharp wavering in opposite phase, in noise (DetectorParams.press_env_*: most refused)
    from dtmfguard.dsp.levels import tone as pure
    from dtmfguard.testkit.synth import digit_freqs

    parts = [np.zeros(400)]
    for d in "159D*0#":
        fr, fc = digit_freqs(d)
        trem = 0.3 * np.sin(2 * np.pi * 20.0 * np.arange(560) / 8000 + rng.uniform(0, 2 * np.pi))
        parts += [pure([fr * 1.008], 0.07, 8000, -16, rng.uniform(0, 6.3)) * (1 + trem)
                  + pure([fc * 1.008], 0.07, 8000, -16, rng.uniform(0, 6.3)) * (1 - trem), np.zeros(400)]
    pair = np.concatenate(parts)
    out["wavering-pairs"] = pair + white_noise(pair.size, np.sqrt(np.mean(pair[pair != 0] ** 2)) / 10 ** 0.45, rng)
    tone = dtmf_tone("5", 120, phase=(0.3, 1.1))
    out["breaks"] = np.concatenate([np.zeros(300)] + [np.concatenate([tone[:480], np.zeros(b), tone[480:]])
                                                      for b in (16, 40, 80, 120)] + [np.zeros(300)])
    for name, cond in A.CONDITIONS.items():
        needs = SPEECH is None and condition_needs_speech(cond)
        out[f"press-{name}"] = None if needs else A.press_scenario(rng, 10, speech=SPEECH, **cond)[0]
    out["speech"] = SPEECH
    for i, piece in enumerate(MUSIC):
        out[f"music-{i}"] = piece
    return {k: None if v is None else np.clip(np.round(v), -32768, 32767).astype(np.int16) for k, v in out.items()}


CORPUS = _corpus()
#: the cases this host can build (a case is None when its package is missing)
PRESENT = [k for k, v in CORPUS.items() if v is not None]




@pytest.fixture
def native():
    return require_native(detector_mod._detector_native, "dtmfguard.dsp._detector_native (C window tests)")


def _events(x, sizes, rate=8000, params=None):
    det = DtmfDetector(rate, params)
    out, pos, i = [], 0, 0
    while pos < x.size:
        n = sizes[i % len(sizes)]
        out += det.process(x[pos:pos + n])
        pos, i = pos + n, i + 1
    out += det.flush()
    return [(e.digit, e.start, e.end) for e in out], [e.level_dbm0 for e in out]


def _same_events(ref, got):
    assert got[0] == ref[0]
    assert np.allclose(got[1], ref[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(CORPUS))
def test_native_window_tests_give_the_numpy_events(native, name):
    x = need(CORPUS[name], MUSIC_PACKAGE if name.startswith("music-") else SPEECH_PACKAGE, f"case {name!r}")
    ref = with_backend("numpy", lambda: _events(x, [160]))
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for sizes in ([160], [1], list(rng.integers(1, 700, 50))):
        if sizes == [1] and x.size > 40_000:
            continue  # sample by sample over long audio is slow and adds nothing to the other chunkings
        _same_events(ref, with_backend("native", lambda s=sizes: _events(x, s)))
        _same_events(ref, with_backend("native", lambda s=sizes: _events(x.astype(np.float64), s)))
    if name == "keys":
        assert "".join(d for d, _, e in ref[0] if e is not None) == DIGITS


@pytest.mark.parametrize("rate", [16000, 48000])
def test_native_window_tests_wideband(native, rate):
    x, _ = keypresses("4111*#D0", rate=rate, tone_ms=45, gap_ms=45, rng=np.random.default_rng(5))
    x = np.round(x + white_noise(x.size, 30.0, np.random.default_rng(6))).astype(np.int16)
    ref = with_backend("numpy", lambda: _events(x, [rate // 50], rate))
    got = with_backend("native", lambda: _events(x, [rate // 50, 333], rate))
    _same_events(ref, got)
    assert "".join(d for d, _, e in ref[0] if e is not None) == "4111*#D0"


def test_native_bank_gives_the_numpy_events(native):
    names = [n for n in PRESENT if not n.startswith("press-")][:12]
    n = max(CORPUS[k].size for k in names)
    block = np.stack([np.pad(CORPUS[k], (0, n - CORPUS[k].size)) for k in names])

    def run():
        bank = DetectorBank(len(names))
        got = [[] for _ in names]
        for pos in range(0, n, 160):
            for ch, evs in enumerate(bank.process(block[:, pos:pos + 160])):
                got[ch] += evs
        for ch, evs in enumerate(bank.flush()):
            got[ch] += evs
        return [[(e.digit, e.start, e.end, round(e.level_dbm0, 6)) for e in evs] for evs in got]

    ref = with_backend("numpy", run)
    assert with_backend("native", run) == ref
    assert sum(map(len, ref)) > 50


def test_large_bank_with_uncached_rings_gives_each_channels_own_events(native):
    """A bank whose int16 rings outgrow a cache (96 channels x 450 ms: native/detector.c writes them with
    non-temporal stores, RING_NT_BYTES) gives every channel the events a DtmfDetector of its own gives (whose
    small ring is written as usual), for int16 frames, for frames of odd sizes and for float64 blocks (the
    to_int16 path)."""
    names = [n for n in PRESENT if not n.startswith("press-")][:12]
    tab = DetectorBank(1)._tab
    channels = 96
    assert channels * tab.hist_halves * tab.half * 2 >= 512 * 1024
    n = max(CORPUS[k].size for k in names) + 8 * 37
    rows = [np.pad(CORPUS[names[c % len(names)]], ((c // len(names)) * 37, 0)) for c in range(channels)]
    block = np.stack([np.pad(r, (0, n - r.size)) for r in rows])

    def bank_events(b, sizes=(160,)):
        bank = DetectorBank(channels)
        got = [[] for _ in range(channels)]
        pos, i = 0, 0
        while pos < n:  # frames of these sizes in turn (odd ones: the ring's stores start mid cache line)
            m = sizes[i % len(sizes)]
            for ch, evs in enumerate(bank.process(b[:, pos:pos + m])):
                got[ch] += evs
            pos, i = pos + m, i + 1
        for ch, evs in enumerate(bank.flush()):
            got[ch] += evs
        return [[(e.digit, e.start, e.end, round(e.level_dbm0, 6)) for e in evs] for evs in got]

    def single(c):
        det = DtmfDetector()
        evs = []
        for pos in range(0, n, 160):
            evs += det.process(block[c, pos:pos + 160])
        evs += det.flush()
        return [(e.digit, e.start, e.end, round(e.level_dbm0, 6)) for e in evs]

    got16 = with_backend("native", lambda: bank_events(block))
    got64 = with_backend("native", lambda: bank_events(block.astype(np.float64)))
    want = with_backend("native", lambda: [single(c) for c in range(channels)])
    odd = with_backend("native", lambda: bank_events(block, (37, 511, 3, 160)))
    assert got16 == want and got64 == want and odd == want
    assert sum(map(len, want)) > 200


def test_native_window_results_equal_numpy_on_the_same_kernel_values(native):
    """Window by window, on identical kernel output: digit codes and phase flags equal, floats to rounding."""
    names = PRESENT
    n = max(CORPUS[k].size for k in names)
    block = np.stack([np.pad(CORPUS[k], (0, n - CORPUS[k].size)) for k in names]).astype(np.float64)
    c_bank, np_bank = DetectorBank(len(names)), DetectorBank(len(names))
    c_bank._active[:] = np_bank._active[:] = True  # every channel's windows are returned
    candidates = windows = 0
    max_db = max_amp = 0.0
    margin = np.inf  # smallest |level - threshold| seen (dB), for the report
    tab = c_bank._tab
    rng = np.random.default_rng(9)
    pos = 0

    def advance(bank, rows, m, nh):
        bank._half_index += nh
        bank._n_pending = (bank._n_pending + m) % tab.half
        bank._have_half = bank._have_half or nh > 0
        return rows

    while pos < n:
        m = int(rng.integers(1, 500))
        x = block[:, pos:pos + m]
        m = x.shape[1]
        pos += m
        nh = (c_bank._n_pending + m) // tab.half
        got = advance(c_bank, c_bank._native.run(x, c_bank._n_pending, c_bank._have_half), m, nh)
        want = advance(np_bank, with_backend("native", lambda x=x, nh=nh: np_bank._windows_numpy(x, nh)), m, nh)
        assert (got is None) == (want is None)
        for g, w in zip(got or (), want or ()):
            assert g[0] == w[0] and g[1] == w[1] and g[2] == w[2]
            amp_g, amp_w = np.asarray(g[3]), np.asarray(w[3])
            assert np.allclose(amp_g, amp_w, rtol=1e-12, atol=1e-9)
            max_amp = max(max_amp, float(np.max(np.abs(amp_g - amp_w), initial=0.0)))
            for lv_g, lv_w in ((np.asarray(g[4]), np.asarray(w[4])), (np.asarray(g[5]), np.asarray(w[5]))):
                cand = np.isfinite(lv_w)
                assert np.array_equal(cand, np.isfinite(lv_g))
                assert np.allclose(lv_g[cand], lv_w[cand], rtol=0, atol=1e-9)
                max_db = max(max_db, float(np.max(np.abs(lv_g[cand] - lv_w[cand]), initial=0.0)))
                if cand.any():
                    margin = min(margin, float(np.min(np.abs(lv_w[cand] + 38.0))))
            candidates += int(np.count_nonzero(np.asarray(w[1]) >= 0))
            windows += len(w[1])
    print(f"\n[C vs numpy window tests] {windows} windows, {candidates} with a digit code; largest difference: "
          f"amplitude {max_amp:.2e}, level {max_db:.2e} dB (closest candidate level to the -38 dBm0 "
          f"threshold: {margin:.2e} dB)")
    assert candidates > 1000 and windows > 20_000


@pytest.mark.parametrize("bad,error", [
    (np.zeros(160, dtype=np.int32), TypeError),
    (np.zeros(160, dtype=np.float32), TypeError),
    (np.zeros(160, dtype=">i2"), TypeError),
    (np.zeros((2, 160), dtype=np.int16), ValueError),
    ("not audio", TypeError),
])
def test_native_run_rejects_what_it_cannot_read(native, bad, error):
    """The Python layer converts first; the C side still never misreads a buffer it was not built for."""
    bank = DetectorBank(1)
    with pytest.raises(error):
        bank._native.run(bad, 0, False)
    with pytest.raises(ValueError):
        bank._native.run(np.zeros(160, np.int16), bank._tab.half, False)  # n_pending out of range
    with pytest.raises(ValueError):
        native.Frames(np.zeros((1, 3)), bank._tab.native_consts, bank._active)  # state of the wrong size
    with pytest.raises(ValueError):
        native.Frames(bank._state, bank._tab.native_consts[:-1], bank._active)


@pytest.mark.parametrize("chunk", [np.arange(160, dtype=">i2"), np.arange(320, dtype=np.int16)[::2],
                                   np.arange(160, dtype=np.int32), np.arange(160, dtype=np.uint8)])
def test_uncommon_sample_types_read_as_as_samples_reads_them(native, chunk):
    """Only native-order int16 skips as_samples; strided, big-endian and other integer frames go through it
    (the event positions prove the samples were read the same way)."""
    x, _ = keypresses("7", tone_ms=60, rng=np.random.default_rng(3))
    x = np.round(x).astype(np.int16)
    from dtmfguard.dsp.audio import as_samples

    def run(first):
        det = DtmfDetector()
        evs = det.process(first) + det.process(x) + det.flush()
        return [(e.digit, e.start, e.end) for e in evs]

    want = with_backend("numpy", lambda: run(as_samples(chunk)))
    assert with_backend("native", lambda: run(chunk)) == want and len(want) == 2


def test_native_failure_fails_closed_in_the_pipeline(native):
    """A fault inside the C window tests: the agent hears silence for that frame, the call goes on."""
    class Broken:
        n_pending = 0

        def run(self, *args):
            raise MemoryError("injected")

        process = run

    x, _ = keypresses("4111111111111111", tone_ms=60, gap_ms=60, rng=np.random.default_rng(4))
    x = np.round(x).astype(np.int16)

    class Session:
        def feed(self, ev):
            pass

    def run():
        p = CallPipeline(session=Session())
        frames = [x[i:i + 160] for i in range(0, x.size - 159, 160)]
        outs = [p.process_customer_frame(f) for f in frames[:10]]
        p.detector._bank._native = Broken()
        p.detector._fast = p.detector.process = Broken().process
        outs += [p.process_customer_frame(f) for f in frames[10:]]
        return outs, p.stats["errors"]

    outs, errors = with_backend("native", run)
    assert errors == len(outs) - 10
    assert all(not np.any(o) for o in outs[10:])


@pytest.mark.parametrize("huge", [1e20, 1e200, 1e300])
def test_absurd_finite_floats_give_the_numpy_events(native, huge):
    """Float input is on the int16 scale but not bounded: samples whose squares overflow change nothing
    on either path around them (the C side's |z| falls back to hypot there)."""
    x, _ = keypresses("12", rng=np.random.default_rng(1))
    y = np.concatenate([x, np.full(300, huge), -np.full(7, huge), x])
    with np.errstate(all="ignore"):
        ref = with_backend("numpy", lambda: _events(y, [160]))
    _same_events(ref, with_backend("native", lambda: _events(y, [160])))
    assert "".join(d for d, _, e in ref[0] if e is not None) == "1212"


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_native_kernel_values_are_the_c_kernel_values_bit_for_bit(native, rate):
    """The window tests' kernel repeats native/goertzel.c's operations: the half-block DFT and energy it
    leaves in the state are exactly what goertzel.halfblock_dft (native) gives, for every channel."""
    rng = np.random.default_rng(rate)
    bank = DetectorBank(5, rate)
    half = bank._tab.half
    for nh in (1, 3, 7):
        x = np.round(rng.normal(0, 3000, (5, nh * half)))
        bank._native.run(x, 0, False)
        spec, energy = with_backend("native", lambda x=x: goertzel.halfblock_dft(x, half, bank._tab.omegas))
        assert np.array_equal(bank._last_half, spec[:, -1]) and np.array_equal(bank._last_half_energy, energy[:, -1])


def test_without_the_c_window_tests_the_numpy_path_runs(native, monkeypatch):
    """A build without dtmfguard.dsp._detector_native (e.g. an old wheel next to a new _native): the detector
    uses the numpy window tests on whichever kernel is selected, and gives the same events."""
    x = CORPUS["noise10dB"]
    ref = with_backend("native", lambda: _events(x, [160]))
    monkeypatch.setattr(detector_mod, "_detector_native", None)
    det = DtmfDetector()
    assert det._bank._native is None and det._bank._tab.native_consts is None
    for backend in goertzel.available_backends():
        _same_events(ref, with_backend(backend, lambda: _events(x, [160])))
    assert len(ref[0]) == 32


# --- issue 17: the state machine in C (Frames.process / Frames.events) ---------------------------------


def _guard_cases():
    """Signals that exercise each talk-off guard near its threshold, on both sides."""
    from dtmfguard.dsp.levels import tone
    from dtmfguard.testkit.synth import digit_freqs
    from dtmfguard.dsp.params import DTMF_HZ

    rng = np.random.default_rng(71)
    parts = [np.zeros(400)]
    t = np.arange(960) / 8000
    for d in DIGITS:
        fr, fc = digit_freqs(d)
        for dr, dc in ((-0.02, 0.02), (-0.015, 0.015), (0.016, -0.016), (0.019, 0.019)):  # spread / tolerance
            parts += [tone([fr * (1 + dr), fc * (1 + dc)], 0.08, 8000, -12, rng.uniform(0, 6.3, 2)), np.zeros(480)]
        for third_db in (-20.0, -14.0, -8.0):  # around third_guard_db
            parts += [tone([fr, fc, 3 * fr], 0.08, 8000, [-12, -12, -12 + third_db], rng.uniform(0, 6.3, 3)),
                      np.zeros(480)]
        w = 1 + 0.02 * np.sin(2 * np.pi * 20 * t + rng.uniform(0, 6.3))  # wobble
        parts += [1500 * (np.sin(2 * np.pi * np.cumsum(fr * w) / 8000) + np.sin(2 * np.pi * np.cumsum(fc * w) / 8000)),
                  np.zeros(480)]
        # a note's 2nd partial at twice the row frequency, around double_guard_db (on every key: those that
        # skip the guard must still be accepted)
        for double_db in (-20.0, -13.0, -6.0):
            parts += [tone([fr, fc, 2 * fr], 0.08, 8000, [-12, -12, -12 + double_db], rng.uniform(0, 6.3, 3)),
                      np.zeros(480)]
        # octave keys pulled in the octave's direction: the per-tone limit (octave_tone_max)
        parts += [tone([fr * 0.981, fc * 1.008], 0.08, 8000, -12, rng.uniform(0, 6.3, 2)), np.zeros(480)]
        # the pair under other sound at the ramp's shares (tolerance by context)
        for extra_db in (-3.0, 0.0, 3.0):
            parts += [tone([fr * 1.008, fc * 0.994, 450.0, 1900.0], 0.08, 8000, [-12, -12, -12 + extra_db,
                                                                                   -12 + extra_db],
                           rng.uniform(0, 6.3, 4)), np.zeros(480)]
        # the long-baseline test (segment_drift_max): a row tone of two partials 3.5 % apart beating in its bin,
        # under other sound (the test decides about half of these), and a key whose phase restarts inside it
        # (no mark_break: only presses sharing their windows with other sound are tested, drift_max_share)
        parts += [tone([fr * 0.9825, fr * 1.0175, fc, 450.0, 1900.0], 0.06, 8000, [-12, -15, -12, -15, -15],
                       rng.uniform(0, 6.3, 5)), np.zeros(480)]
        parts += [tone([fr, fc], 0.025, 8000, -12, rng.uniform(0, 6.3, 2)),
                  tone([fr, fc], 0.045, 8000, -12, rng.uniform(0, 6.3, 2)), np.zeros(480)]
    # two harmonics of a voice on a key, three more of its harmonics around the partials test's limit
    # (comb_guard_db), on the keys where a 96-135 Hz fundamental has both tones as harmonics
    for n, m, d in ((7, 11, "4"), (8, 17, "B"), (7, 11, "8"), (7, 9, "*"), (7, 11, "#")):
        fr, fc = digit_freqs(d)
        f0 = (fr + fc) / (n + m)
        for extra_db in (0.5, 3.5):
            parts += [tone([n * f0, m * f0, 3 * f0, 4 * f0, 17 * f0], 0.1, 8000, [-16, -16] + [-16 + extra_db] * 3,
                           rng.uniform(0, 6.3, 5)), np.zeros(480)]
    # the harmonic-neighbours test (issue 17): a note an octave below the column (its 1st partial around
    # octave_below_guard_db, its 3rd around octave_below_third_db), and a partial at 1.5 times the row around
    # neighbour_guard_db under other sound
    for d in "4702A9":
        fr, fc = digit_freqs(d)
        for low_db, third_db in ((-8.0, -20.0), (-5.0, -27.0), (-4.0, -22.0), (0.0, -24.0)):
            parts += [tone([fr, fc, fc / 2, 1.5 * fc], 0.1, 8000, [-16, -16, -16 + low_db, -16 + third_db],
                           rng.uniform(0, 6.3, 4)), np.zeros(480)]
        for low_db, third_db in ((-8.0, -14.0), (-4.0, -20.0), (-2.0, -15.0)):  # a note an octave below the row
            parts += [tone([fr, fc, fr / 2, 1.5 * fr, 2000.0], 0.1, 8000, [-16, -16, -16 + low_db, -16 + third_db, -15],
                           rng.uniform(0, 6.3, 5)), np.zeros(480)]
        for up_db in (-14.0, -11.0):
            parts += [tone([fr, fc, 1.5 * fr, 450.0], 0.1, 8000, [-16, -16, -16 + up_db, -14], rng.uniform(0, 6.3, 4)),
                      np.zeros(480)]
    # the music-context test (issue 17): a key 300 ms into a held chord of steady partials, the chord at
    # levels around the share limit (context_max_share), with white noise mixed in around the persistence
    # limit (context_persist_max)
    chord_hz = [250.0, 310.0, 540.0, 575.0, 2180.0, 2230.0, 3050.0, 3120.0]
    for d in "19#":
        fr, fc = digit_freqs(d)
        for chord_db, noise in ((-30.0, 0.0), (-22.0, 900.0), (-22.0, 1500.0), (-22.0, 2500.0)):
            bed = tone(chord_hz, 0.45, 8000, chord_db, rng.uniform(0, 6.3, len(chord_hz)))
            bed += noise * rng.standard_normal(bed.size)
            bed[2400:2960] += tone([fr, fc], 0.07, 8000, -16, rng.uniform(0, 6.3, 2))
            parts += [bed, np.zeros(480)]
        # the gate between context_always_share and context_max_share: a louder key (~0.8 share) at nominal
        # (not judged) and 0.8 % off (judged)
        for rel in (0.0, 0.008):
            bed = tone(chord_hz, 0.45, 8000, -22.0, rng.uniform(0, 6.3, len(chord_hz)))
            bed[2400:2960] += tone([fr * (1 + rel), fc * (1 + rel)], 0.07, 8000, -10, rng.uniform(0, 6.3, 2))
            parts += [bed, np.zeros(480)]
    # the pair's amplitude-ratio test (issue 17): the column note louder by 2-8 dB from 12-24 ms into the
    # pair (around pair_ratio_spread_db and its window-coverage gate), alone and in noise near the share limit
    for d in "159D":
        fr, fc = digit_freqs(d)
        for jump, step_ms, noise in ((2.0, 20, 0.0), (4.0, 12, 0.0), (6.0, 20, 0.0), (8.0, 24, 0.0), (6.0, 16, 300.0)):
            col = tone([fc], 0.12, 8000, -10 - jump, rng.uniform(0, 6.3))
            col[step_ms * 8:] *= 10 ** (jump / 20)
            pair = tone([fr], 0.12, 8000, -10, rng.uniform(0, 6.3)) + col + noise * rng.standard_normal(col.size)
            parts += [pair, np.zeros(480)]
    # the pair-before-the-onset test (issue 17): a pair 2-9 dB down with a third tone beside its row before
    # its onset, in noise (share around pre_onset_min_share .. pre_onset_max_share)
    for d in "159D":
        fr, fc = digit_freqs(d)
        rival = DTMF_HZ[(DTMF_HZ.index(fr) + 1) % 4]
        for down, noise in ((2.0, 900.0), (6.0, 900.0), (9.0, 900.0), (3.0, 600.0), (3.0, 1400.0)):
            pair = tone([fr, fc], 0.27, 8000, -16, rng.uniform(0, 6.3, 2))
            pair[:1600] *= 10 ** (-down / 20)
            pair[:1600] += tone([rival], 0.2, 8000, -16 - down, rng.uniform(0, 6.3))
            parts += [pair + noise * rng.standard_normal(pair.size), np.zeros(480)]
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)


GUARD_CASES = _guard_cases()


#: the music-context test off (it is on by default since issue 17; DetectorParams.context_persist_max)
CONTEXT_OFF = replace(DEFAULT_PARAMS, context_persist_max=float("inf"))


#: the press-offset test on (off by default; DetectorParams.mixed_press_offset_max)
PRESS_OFFSET_ON = replace(DEFAULT_PARAMS, mixed_press_offset_max=0.006)


@pytest.mark.parametrize("params", [None, CONTEXT_OFF, PRESS_OFFSET_ON],
                         ids=["default", "context-test-off", "press-offset-on"])
def test_guard_cases_give_the_same_events_on_both_paths(native, params):
    """Every guard decided the same way by the numpy path and by C (frames of 160, of 1, and whole)."""
    ref = with_backend("numpy", lambda: _events(GUARD_CASES, [160], params=params))
    for sizes in ([160], [1], [GUARD_CASES.size], [37, 511, 3]):
        _same_events(ref, with_backend("native", lambda s=sizes: _events(GUARD_CASES, s, params=params)))
    starts = [e for e in ref[0] if e[2] is None]
    assert 40 < len(starts) < 16 * 18  # some cases pass, some are rejected


@pytest.mark.parametrize("source,variant", [("drascula", "1.1x"), ("moh", "1.0x"), ("hyperrogue", "1.1x")])
def test_real_music_gives_the_same_events_on_both_paths(native, source, variant):
    """Music that comes near the guards' thresholds (issue 17's talk-off corpus), 2 minutes of it at a
    speed variant, in 160-sample int16 frames: the same events (false digits included) on both paths."""
    from dtmfguard.testkit import corpora

    if not corpora.available(source):
        pytest.skip(f"{corpora.SOURCES[source].package} not installed")
    label = {v[0]: v for v in corpora.VARIANTS}[variant]
    x = corpora.variant(corpora.signal(source, "tune", max_seconds=120), label[1], label[2]).astype(np.int16)
    for params in (None, CONTEXT_OFF):
        ref = with_backend("numpy", lambda p=params: _events(x, [160], params=p))
        _same_events(ref, with_backend("native", lambda p=params: _events(x, [160], params=p)))


def test_events_path_takes_every_input_and_keeps_working_after_flush(native):
    """DtmfDetector.process is the C Frames.events for int16 frames: float, list and big-endian input go
    through the validating path with the same events; flush() starts a new stream on a new C state."""
    x, _ = keypresses("4111*#", tone_ms=60, gap_ms=60, rng=np.random.default_rng(72))
    x16 = np.round(x).astype(np.int16)

    def run(convert):
        det = DtmfDetector()
        out = []
        for _ in range(2):  # two streams: the second after flush()
            for pos in range(0, x16.size, 160):
                out += det.process(convert(x16[pos:pos + 160]))
            out += det.flush()
        return [(e.digit, e.start, e.end) for e in out]

    want = with_backend("numpy", lambda: run(lambda f: f))
    assert "".join(d for d, _, e in want if e is not None) == "4111*#" * 2
    for convert in (lambda f: f, lambda f: f.astype(np.float64), lambda f: f.tolist(), lambda f: f.astype(">i2")):
        assert with_backend("native", lambda c=convert: run(c)) == want
    with pytest.raises(AudioError, match="NaN or infinity"):
        with_backend("native", lambda: DtmfDetector().process(np.array([np.nan] * 160)))


def test_detectors_with_the_c_events_path_are_collected(native):
    """The C state object holds callables that refer back to its detector: the cycle is collected."""
    import gc
    import weakref

    def make():
        det = DtmfDetector()
        det.process(np.zeros(160, np.int16))
        return weakref.ref(det)

    refs = with_backend("native", lambda: [make() for _ in range(50)])
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_backend_is_fixed_per_stream(native):
    """The path is chosen when the detector is created (or reset): switching the backend mid-stream does
    not mix the two state machines."""
    x, _ = keypresses("5", tone_ms=80, rng=np.random.default_rng(73))
    x16 = np.round(x).astype(np.int16)
    want = with_backend("numpy", lambda: _events(x16, [160]))
    det = with_backend("native", DtmfDetector)
    out = []
    for pos in range(0, x16.size, 160):
        out += with_backend("numpy" if pos % 320 else "native", lambda p=pos: det.process(x16[p:p + 160]))
    out += det.flush()
    assert [(e.digit, e.start, e.end) for e in out] == want[0]


# --- issue 15: constants by name, one owner thread ----------------------------------------------------


def test_c_constants_are_placed_by_name_and_cover_the_table_once(native):
    """native/detector.c exports every constant's place by name (CONST_LAYOUT); the Python side fills the
    table by those names, so each value lands where the C code reads it whatever the order."""
    layout = native.CONST_LAYOUT
    cover = np.zeros(native.CONSTS, dtype=int)
    for offset, length in layout.values():
        cover[offset:offset + length] += 1
    assert np.all(cover == 1)
    tab = DetectorBank(1)._tab
    consts = tab.native_consts
    for name in ("freq_tol", "min_tone", "double_guard", "octave_tone", "third_guard_mixed", "half"):
        assert consts[layout[name][0]] == getattr(tab, name)
    assert np.array_equal(consts[slice(layout["double_skip"][0], layout["double_skip"][0] + 16)], tab.double_skip)


def test_a_constant_the_tables_lack_fails_loudly(native, monkeypatch):
    """A constant added on the C side but not in detector._Tables (or renamed on one side) is an error,
    not a shifted table."""
    class Fake:
        CONSTS = native.CONSTS + 1
        MAX_HALF = native.MAX_HALF
        CONST_LAYOUT = dict(native.CONST_LAYOUT, no_such_constant=(native.CONSTS, 1))
        bin_table = staticmethod(native.bin_table)

    monkeypatch.setattr(detector_mod, "_detector_native", Fake)
    with pytest.raises(RuntimeError, match="no_such_constant"):
        detector_mod._Tables.build(detector_mod.DEFAULT_PARAMS, 8000)
    Fake.CONST_LAYOUT = {k: v for k, v in native.CONST_LAYOUT.items() if k != "freq_tol"}
    Fake.CONSTS = native.CONSTS
    with pytest.raises(RuntimeError, match="exactly once"):
        detector_mod._Tables.build(detector_mod.DEFAULT_PARAMS, 8000)


def test_a_reentrant_call_on_a_busy_detector_fails_loudly(native):
    """The C path holds a busy flag while it works: a call into the same detector from inside (here the
    event factory) raises instead of interleaving with the state, and the detector keeps working after."""
    det = with_backend("native", DtmfDetector)
    seen = []
    frames = det._bank._native

    def factory(d, start, end, level):
        try:
            frames.process(np.zeros(160, np.int16))
        except RuntimeError as exc:
            seen.append(str(exc))
        return (d, start, end)

    frames.bind(factory, det._process, np.ndarray)
    x = np.concatenate([np.zeros(400), dtmf_tone("7", 80, phase=(0.2, 0.9)), np.zeros(800)]).astype(np.int16)
    got = [det.process(x[i:i + 160]) for i in range(0, x.size, 160)]
    assert [e for frame in got for e in frame] and seen and "another thread" in seen[0]
    assert frames.process(np.zeros(160, np.int16)) is None  # the flag was cleared


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_a_bank_shared_between_threads_fails_loudly(native, backend):
    """One thread runs a large batch (the C path releases the GIL for it); another thread's call on the
    same bank meanwhile raises RuntimeError, and the bank works again once its owner is done."""
    import threading

    bank = with_backend(backend, lambda: DetectorBank(32))
    big = np.tile(np.round(np.random.default_rng(3).normal(0, 2000, 60_000)).astype(np.int16), (32, 1))
    started, done, hit, errors = threading.Event(), threading.Event(), threading.Event(), []

    def worker():
        started.set()
        try:
            for _ in range(200):  # until the other thread has run into a batch (at most 200 batches)
                if hit.is_set():
                    return
                try:
                    bank.process(big)
                except RuntimeError:  # the other thread's small call held the bank just then
                    continue
        finally:
            done.set()

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    small = np.zeros((32, 160), np.int16)
    while not done.is_set():
        try:
            bank.process(small)
        except RuntimeError as exc:
            errors.append(str(exc))
            hit.set()
    t.join()
    assert errors and "another thread" in errors[0]
    assert bank.process(small) == [[] for _ in range(32)]  # usable again once the owner is done


@pytest.mark.parametrize("name", ["keys", "press-speech-under-10dB"])
def test_breaks_give_the_same_events_on_both_paths(native, name):
    """``mark_break`` (a frame left out of the stream, media.keyrelay.JitterLog): the same neutral windows and
    the same events on the numpy and the C state machine, at breaks inside keys, in pauses and at their edges;
    also for keys under speech, whose presses the long-baseline test judges except where a break lies in its
    32 ms segment."""
    x = need(CORPUS[name], SPEECH_PACKAGE, "keys under speech")
    rng = np.random.default_rng(5)
    breaks = set(rng.choice(x.size // 160, size=x.size // 160 // 4, replace=False).tolist())

    def run():
        det = DtmfDetector(8000)
        out = []
        for i, pos in enumerate(range(0, x.size, 160)):
            if i in breaks:
                det.mark_break()
                if i % 2:
                    det.mark_break()  # twice at one position changes nothing
            out += det.process(x[pos:pos + 160])
        out += det.flush()
        return [(e.digit, e.start, e.end, round(e.level_dbm0, 6)) for e in out]

    ref = with_backend("numpy", run)
    assert with_backend("native", run) == ref
    if name == "keys":
        assert len([e for e in ref if e[2] is not None]) >= 10  # 45 ms keys: a break in one leaves ~30 ms to judge


def test_a_break_bridges_a_made_up_frame_inside_a_key():
    """A 70 ms key whose third frame was left out (made up by the jitter buffer): the tone goes on after the
    join with another phase, its first 5 ms cross-faded from a concealment (a third phase), as pjmedia's WSOLA
    merges it.  Unmarked, the windows across the join break the key at some block-grid offsets; with
    ``mark_break`` it is one key at every offset."""
    rng = np.random.default_rng(1)
    tone, other, conceal = (dtmf_tone("8", 90, phase=tuple(rng.uniform(0, 2 * np.pi, 2))) for _ in range(3))
    after = other[320:].copy()
    fade = np.linspace(0.0, 1.0, 40)
    after[:40] = (1 - fade) * conceal[:40] + fade * after[:40]
    lost = {False: 0, True: 0}
    for lead in range(0, 51, 3):
        x = np.round(np.concatenate([np.zeros(400 + lead), tone[:160], after, np.zeros(800)])).astype(np.int16)
        for brk in (False, True):
            det = DtmfDetector(8000)
            out = det.process(x[:400 + lead + 160])
            if brk:
                det.mark_break()
            out += det.process(x[400 + lead + 160:]) + det.flush()
            lost[brk] += [e.digit for e in out if e.complete] != ["8"]
    assert lost[True] == 0 and lost[False] > 0, lost


#: the long window on (the default since issue 17 d17w; DetectorParams.long_window) and off
LONG_ON = replace(DEFAULT_PARAMS, long_window=True)
LONG_OFF = replace(DEFAULT_PARAMS, long_window=False)


def _keys_under_speech(talk, ratio_db, rng, n=60):
    """``n`` 70 ms keys at -10 dBm0 per tone, one every 400 ms, under ``talk`` scaled to ``ratio_db`` (keys'
    power over the speech's, as benchmarks/talkdown.py mixes them), as int16."""
    n = min(n, (talk.size - 6400) // 3200)
    talk = talk[: n * 3200 + 6400]
    tones = np.zeros(talk.size)
    for i in range(n):
        start = 3200 + i * 3200 + int(rng.integers(0, 800))
        t = dtmf_tone(DIGITS[int(rng.integers(16))], 70, level_dbm0=-10.0, phase=tuple(rng.uniform(0, 2 * np.pi, 2)))
        tones[start:start + t.size] = t
    gain = np.sqrt(np.mean(tones[tones != 0] ** 2) / np.mean(talk ** 2) / 10 ** (ratio_db / 10))
    return np.clip(np.round(tones + gain * talk), -32768, 32767).astype(np.int16)


def _same_bank_events(x: np.ndarray, params) -> None:
    """A bank of three channels (``x`` at grid offsets 0, 13 and 26) gives each channel the same events on both
    paths, in 160-sample frames."""
    block = np.stack([np.pad(x, (o, 40 - o)) for o in (0, 13, 26)])

    def bank_events():
        bank = DetectorBank(3, 8000, params)
        out = [[] for _ in range(3)]
        for pos in range(0, block.shape[1], 160):
            for ch, evs in enumerate(bank.process(block[:, pos:pos + 160])):
                out[ch] += [(e.digit, e.start, e.end) for e in evs]
        for ch, evs in enumerate(bank.flush()):
            out[ch] += [(e.digit, e.start, e.end) for e in evs]
        return out

    assert with_backend("native", bank_events) == with_backend("numpy", bank_events)


@pytest.mark.parametrize("ratio_db", [0.0, -6.0])
def test_long_window_gives_the_same_events_on_both_paths(native, ratio_db):
    """The long window (DetectorParams.long_window) decided the same way by numpy and C, for frames of 160,
    of 1, whole and random chunks, int16 and float64, one detector and a bank; it must change the events
    of keys under speech (windows it wins back), or this compares nothing new."""
    talk = need(SPEECH, SPEECH_PACKAGE, "keys under speech")
    x = _keys_under_speech(talk, ratio_db, np.random.default_rng(int(-ratio_db) + 3))
    ref = with_backend("numpy", lambda: _events(x, [160], params=LONG_ON))
    assert ref[0] != with_backend("numpy", lambda: _events(x, [160], params=LONG_OFF))[0]
    rng = np.random.default_rng(11)
    for sizes in ([160], [1], [x.size], list(rng.integers(1, 700, 50))):
        _same_events(ref, with_backend("native", lambda s=sizes: _events(x, s, params=LONG_ON)))
    _same_events(ref, with_backend("native", lambda: _events(x.astype(np.float64), [333], params=LONG_ON)))
    # a bank: the same signal at three grid offsets, each channel its own events on both paths
    _same_bank_events(x, LONG_ON)


#: the relaxed window on, with every press-level part on (DetectorParams.td_*; off by default)
TD_ALL = replace(DEFAULT_PARAMS, td_row_peak_db=4.0, td_min_tone_fraction=0.08, td_freq_tolerance_mixed=0.008,
                 td_harmonic_guard_mixed_db=-10.0, td_min_strong=1, td_comb_guard_db=0.0, td_press_offset_max=0.003,
                 td_min_tone_ms=40.0, td_harmonic_max_q=3)


@pytest.mark.parametrize("ratio_db", [0.0, -6.0])
@pytest.mark.parametrize("params", [TD_ALL, replace(TD_ALL, td_harmonic_guard_mixed_db=-5.0, td_comb_guard_db=float("inf"),
                                              td_min_tone_ms=30.0, td_min_strong=2)], ids=["td-all", "td-strong2"])
def test_relaxed_window_gives_the_same_events_on_both_paths(native, ratio_db, params):
    """The relaxed window (DetectorParams.td_*: relaxed hits, admitted by the press) decided the same way by
    numpy and C, for frames of 160, of 1, whole and random chunks, and a bank; with every part on it must
    change the events of keys under speech, or this compares nothing new."""
    talk = need(SPEECH, SPEECH_PACKAGE, "keys under speech")
    x = _keys_under_speech(talk, ratio_db, np.random.default_rng(int(-ratio_db) + 5))
    ref = with_backend("numpy", lambda: _events(x, [160], params=params))
    if params is TD_ALL:
        assert ref[0] != with_backend("numpy", lambda: _events(x, [160]))[0]
    rng = np.random.default_rng(12)
    for sizes in ([160], [1], [x.size], list(rng.integers(1, 700, 50))):
        _same_events(ref, with_backend("native", lambda s=sizes: _events(x, s, params=params)))
    _same_bank_events(x, params)
