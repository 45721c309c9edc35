# SPDX-License-Identifier: GPL-2.0-or-later
"""The masker's optional C screen (native/masker.c) gives the same agent audio as the numpy path, and the
int16 fast exit (no rounding pass for untouched samples) changes nothing; both fail closed."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dtmfguard.testkit import adversary as A
from _native_util import require_native, with_backend
from dtmfguard.testkit import synth
from dtmfguard.dsp import levels
from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS

from _corpus_util import condition_needs_speech, need_speech, speech

SPEECH = speech(20.0, seed=4)  # None without asterisk-core-sounds-en-wav: its cases skip naming it


def _corpus():
    rng = np.random.default_rng(21)
    out = {name: A.press_scenario(rng, 6, speech=SPEECH, **cond)[0]
           if SPEECH is not None or not condition_needs_speech(cond) else None
           for name, cond in A.CONDITIONS.items()}
    out["noise"] = synth.white_noise(8000 * 4, 400.0, rng)
    # quiet line with keys around the weakest masked level (-42 dBm0 per tone): the C screen skips quiet
    # frames, and must not skip one the fits would have masked
    for level in (-46.0, -43.0, -42.0, -41.0, -36.0):
        keys, _ = synth.keypresses("1590", level_dbm0=level, tone_ms=45, gap_ms=200, rng=rng)
        out[f"quiet{level:.0f}"] = keys + synth.white_noise(keys.size, 3.0, rng)
    out["speech"] = SPEECH
    # tones 3 dB under speech: notches, pending suspects and weak runs (issue 12)
    out["under-speech"] = (A.press_scenario(rng, 6, speech=SPEECH, speech_under_db=-3.0)[0]
                           if SPEECH is not None else None)
    return {k: None if v is None else np.clip(np.round(v), -32768, 32767).astype(np.int16) for k, v in out.items()}


CORPUS = _corpus()


def _mask(x, chunk, **opts):
    m = Masker(**opts)
    parts = [m.process(x[i: i + chunk]) for i in range(0, x.size, chunk)] + [m.flush()]
    return np.concatenate(parts), m.masked_spans, m.errors




@pytest.fixture
def native():
    return require_native(masker_mod._masker_native, "dtmfguard.dsp._masker_native (C masker screen)")


@pytest.mark.parametrize("name", list(CORPUS))
@pytest.mark.parametrize("opts", [{}, {"hide_timing": True}, {"lookahead_ms": 4.0, "mask": "noise"}])
def test_native_screen_gives_the_numpy_output(native, name, opts):
    x = need_speech(CORPUS[name], f"case {name!r}")  # only speech cases can be missing
    ref = with_backend("numpy", lambda: _mask(x, 160, **opts))
    for chunk in (160, 33):
        got = with_backend("native", lambda c=chunk: _mask(x, c, **opts))
        assert np.array_equal(got[0], ref[0]) and got[1] == ref[1] and got[2] == ref[2] == 0


@pytest.mark.parametrize("rate", [16000, 48000])
def test_native_screen_wideband(native, rate):
    x, _ = synth.keypresses("4111", rate=rate, tone_ms=45, gap_ms=45, rng=np.random.default_rng(5))
    x = np.round(x).astype(np.int16)
    ref = with_backend("numpy", lambda: _mask(x, rate // 50, rate=rate))
    got = with_backend("native", lambda: _mask(x, rate // 50, rate=rate))
    assert np.array_equal(got[0], ref[0]) and got[1] == ref[1] and len(ref[1]) == 4


def _outs(nh):
    return (np.empty(nh, np.int64), np.empty(nh, np.int64), np.empty((nh, 4)), np.empty(nh, np.int64),
            np.empty((nh, 16)))


def test_native_screen_rejects_bad_sizes(native):
    m = Masker()
    nh = 20
    scr = native.Screen(**m.native_constants())
    outs = _outs(nh)
    assert scr.screen(np.zeros((m._kmax + nh - 1) * 8), 5, *outs) == 0 and (outs[0] == -1).all()
    # segment one sample short, an output of the wrong length
    with pytest.raises(ValueError):
        scr.screen(np.zeros((m._kmax + nh - 1) * 8 - 1), 5, *outs)
    with pytest.raises(ValueError):
        scr.screen(np.zeros((m._kmax + nh - 1) * 8), 5, *outs[:3], np.empty(nh + 1, np.int64), outs[4])
    with pytest.raises((TypeError, ValueError, BufferError)):
        scr.screen(np.zeros(2 * (m._kmax + nh - 1) * 8)[::2], 5, *outs)  # not contiguous
    # the constants: every one by name, each checked (wrong table sizes, windows not powers of two)
    good = m.native_constants()
    with pytest.raises(TypeError):
        native.Screen(*good.values())  # positional: refused
    for name in good:
        partial = dict(good)
        del partial[name]
        with pytest.raises(TypeError, match="by name"):
            native.Screen(**partial)
    with pytest.raises(TypeError):
        native.Screen(**good, extra=1)
    for name, bad in [("cos", np.zeros(10)), ("ks", np.array([2, 3, 8, 16])), ("ginv", np.zeros(3)),
                      ("quad", np.zeros(5)), ("bound_gain", np.zeros(4)), ("freq", np.zeros(7, np.int64)),
                      ("close_hops", 0)]:
        with pytest.raises(ValueError):
            native.Screen(**{**good, name: bad})


def test_every_masker_param_reaches_both_backends(native):
    """Changing any screening threshold of MaskerParams changes what both backends do, identically: the C
    screen reads the same frozen object (through Masker.native_constants), not copies of its defaults."""
    from dataclasses import fields, replace

    from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P

    x = need_speech(CORPUS["under-speech"], "case 'under-speech'")[:8000 * 2]  # every threshold matters there
    # (without the keypad burst: inside its band notch a suspect's notch changes no sample)
    P = replace(P, keypad_burst_presses=None)
    changed = {"screen_fraction": 0.99, "screen_unique": 1.5, "screen_min_tone_dbm0": -20.0, "max_twist_db": 1.0,
               "confirm_fraction": 0.95, "confirm_unique": 1.2, "confirm_min_tone_dbm0": -20.0, "weak_fraction": 0.3,
               "weak_run_ms": 1.0, "hit_run_ms": 1.0, "close_ms": 1.0, "hold_ratio": 0.9}
    changed.update({"offset_fraction": 0.99, "offset_spread_max": 0.0, "offset_windows_ms": (16.0,),
                    "offset_skip_share": 0.99})
    # (the offset rule confirms with its own threshold what a stricter confirm_fraction no longer does: that one
    # is measured with the offset rule off, against the same masker without it; the offset rule's own thresholds
    # with it asked at every hop the screen names a pair, against the same masker so asked)
    every = {"offset_skip_share": 0.99, "offset_every_ms": 1.0}
    context = {"confirm_fraction": {"offset_error_max": None}, "offset_fraction": every, "offset_spread_max": every,
               "offset_windows_ms": every, "offset_skip_share": {"offset_every_ms": 1.0},
               # (the hold at measured frequencies keeps that clip's press where a 1 ms close_ms would end it:
               # close_ms is measured without it; press_hold_measured's own C = numpy: tests/test_masker_chords.py)
               "close_ms": {"press_hold_measured": None}}
    assert set(changed) <= {f.name for f in fields(P)}
    bases = {}
    for name, value in changed.items():
        ctx = context.get(name, {})
        key = tuple(sorted(ctx.items()))
        if key not in bases:
            bases[key] = with_backend("numpy", lambda c=ctx: _mask(x, 160, params=replace(P, **c)))
        base = bases[key]
        params = replace(P, **ctx, **{name: value})
        ref = with_backend("numpy", lambda p=params: _mask(x, 160, params=p))
        got = with_backend("native", lambda p=params: _mask(x, 160, params=p))
        assert np.array_equal(got[0], ref[0]) and got[1] == ref[1], name
        assert not (np.array_equal(ref[0], base[0]) and ref[1] == base[1]), f"{name} changed nothing"


@pytest.mark.parametrize("b0", [-30, 0, 7, 123456789])
def test_native_screen_equals_numpy_bit_for_bit(native, b0):
    """Every output of the C screen equals the numpy screen's exactly (also before the stream's start)."""
    m = Masker()
    rng = np.random.default_rng(abs(b0) % 1000)
    nh = 37
    tone = synth.dtmf_tone("8", 30, level_dbm0=-25.0, phase=(0.3, 1.1))
    seg = synth.white_noise((m._kmax + nh - 1) * 8, 200.0, rng)
    seg[100: 100 + tone.size] += tone
    seg = np.round(seg)
    got = _outs(nh)
    hit_c = native.Screen(**m.native_constants()).screen(seg, b0, *got)
    ref = tuple(np.empty_like(a) for a in got)
    hit_np = m._screen_numpy(seg, b0, nh, *ref)
    assert hit_c == hit_np == 1
    for g, r in zip(got, ref):
        assert np.array_equal(g, r)
    assert (got[1] == A.PAIR_KEYS.index("8")).any()


def test_quiet_frame_skip_never_hides_a_flagged_tone():
    """Frames below the skip bound give no suspect; a tone at the screen's floor is never skipped."""
    m = Masker()
    nh = 20
    n = (m._kmax + nh - 1) * 8
    for over_db in (0.5, 1.0, 3.0):  # just above the screen's per-tone floor, even 2 ms of it
        tone = synth.dtmf_tone("1", 2.0, level_dbm0=m.params.screen_min_tone_dbm0 + over_db)
        assert float(tone @ tone) > m._skip_energy
    outs = _outs(nh)
    quiet = np.zeros(n)
    quiet[::97] = 1.0
    assert float(quiet @ quiet) < m._skip_energy
    assert m._screen_numpy(quiet, 0, nh, *outs) == 0 and (outs[0] == -1).all() and not outs[4].any()


def test_native_screen_fault_fails_closed(native, monkeypatch):
    x, spans = synth.keypresses("4111", tone_ms=80, gap_ms=80, rng=np.random.default_rng(8))
    x = np.round(x).astype(np.int16)

    class Broken:  # the C module builds and binds, then every call on a frame fails
        class Screen:
            def __init__(self, **constants):
                pass

            def bind(self, *buffers):
                pass

            def __getattr__(self, name):
                def boom(*a):
                    raise ValueError("injected")
                return boom

        Output = Screen

    monkeypatch.setattr(masker_mod, "_masker_native", Broken)
    out, _, errors = with_backend("native", lambda: _mask(x, 160))
    assert errors == -(-x.size // 160) + 1
    d = Masker().delay_samples
    assert A.count_recovered(out[d:], spans) == 0 and not np.array_equal(out[d:d + x.size], x)


@pytest.mark.parametrize("backend_name", ["numpy", "native"])
def test_fast_int16_exit_matches_rounding(backend_name, native):
    """Mixed input types on one stream: the fast exit for untouched int16 samples gives what rounding and
    clipping give, and float and out-of-range int32 samples are still rounded and clipped."""
    rng = np.random.default_rng(9)
    keys, _ = synth.keypresses("5", rng=rng)
    x = np.concatenate([synth.white_noise(6000, 300.0, rng), keys])
    x = np.round(x).astype(np.int16)
    loud = x.astype(np.int32) * 200  # beyond int16: must come out clipped
    f = x / 32768.0
    cuts = [0, 800, 1600, 2400, 3200, 4000, 4800, x.size]
    sources = [x, loud, x, f, x, x, x]

    def run(always_round):
        m = Masker()
        if always_round:
            m._emit = lambda out, dtype: Masker._to_dtype(out, dtype)
        outs, fast = [], []
        for src, a, b in zip(sources, cuts, cuts[1:]):
            outs.append(m.process(src[a:b]))
            fast.append(m._exact_out)
        return outs, fast

    got, fast = with_backend(backend_name, lambda: run(False))
    ref, _ = with_backend(backend_name, lambda: run(True))
    for g, r in zip(got, ref):
        assert g.dtype == r.dtype and np.array_equal(g, r)
    # the exit is taken where it may be, not where int32 or float samples or a masked key come out
    assert fast == [True, False, False, False, False, True, False]
    assert got[2].max() == 32767 and got[2].min() == -32768


# ---------------------------------------------------------------- the C output side (issue 12 speed)
def _chunked(x, chunks, calls=(), **opts):
    """Mask ``x`` cut at ``chunks`` (a chunk size or a list of sizes, cycled); ``calls``: (input position at
    which to call, method, args), made there (a chunk is cut at that position, as a pipeline calls between
    frames).  Returns (the whole output with its delay, the masker)."""
    m = Masker(**opts)
    sizes = [chunks] if isinstance(chunks, int) else list(chunks)
    parts, i, k = [], 0, 0
    todo = sorted(calls, key=lambda c: c[0])
    while i < x.size:
        while todo and todo[0][0] <= i:
            _, method, args = todo.pop(0)
            getattr(m, method)(*args)
        c = sizes[k % len(sizes)]
        if todo and todo[0][0] < i + c:
            c = todo[0][0] - i
        parts.append(m.process(x[i: i + c]))
        i += c
        k += 1
    parts.append(m.flush())
    return np.concatenate(parts), m


def _mask_any(x, chunks, covers=(), **opts):
    """:func:`_chunked`'s output and the masker's spans and error count."""
    out, m = _chunked(x, chunks, covers, **opts)
    return out, m.masked_spans, m.notched_spans, m.errors


def _same(got, ref):
    assert got[0].dtype == ref[0].dtype and np.array_equal(got[0], ref[0])
    assert got[1] == ref[1] and got[2] == ref[2] and got[3] == ref[3] == 0


def _treated(ref) -> bool:
    return bool(ref[1]) and bool(ref[2])  # the case exercises flat masks and band notches


@pytest.mark.parametrize("chunks", [1, 7, 80, 160, 161, 3200, 5000, [160, 1, 33, 400, 5000, 2]])
@pytest.mark.parametrize("dtype", ["int16", "float64"])
def test_native_output_any_chunking_and_dtype(native, chunks, dtype):
    """Keys under speech (suspects, notches, presses, fades), whatever the chunking, int16 or float64 out:
    the C output side gives the numpy path's samples bit for bit (chunks above 400 ms take the numpy steps
    with the C walk-back)."""
    x = need_speech(CORPUS["under-speech"], "case 'under-speech'")
    x = x[: 8000 * (3 if chunks in (1, 7) else 12)]
    ref = with_backend("numpy", lambda: _mask_any(x, 160, dtype=dtype))
    assert _treated(ref)
    _same(with_backend("native", lambda: _mask_any(x, chunks, dtype=dtype)), ref)
    if dtype == "float64":  # float input too
        xf = x / 32768.0
        _same(with_backend("native", lambda: _mask_any(xf, chunks, dtype=dtype)),
              with_backend("numpy", lambda: _mask_any(xf, 160, dtype=dtype)))


@pytest.mark.parametrize("opts", [{}, {"hide_timing": True}, {"mask": "silence"}, {"mask": "noise"},
                                  {"fade_ms": 0.0}, {"fade_ms": 10.0, "guard_ms": 5.0}, {"lookahead_ms": 12.0},
                                  {"mask_hz": 333.3}])
@pytest.mark.parametrize("chunk", [160, 33])
def test_native_output_with_covers(native, opts, chunk):
    """Signalled keys (cover/uncover, open and closed, overlapping in-band presses and notches) over keys
    under speech: same samples and spans from both backends, for every mask and fade."""
    x = need_speech(CORPUS["under-speech"], "case 'under-speech'")[: 8000 * 10]
    covers = [(4000, "cover", (4100, 4900)), (12000, "cover", (12050,)), (15000, "uncover", (15100,)),
              (30000, "cover", (30000, 31000)), (30500, "cover", (30600, 33000)), (50000, "cover", (49990,)),
              (52001, "uncover", (52010,)), (70000, "cover", (69000, 69500))]
    ref = with_backend("numpy", lambda: _mask_any(x, chunk, covers, **opts))
    assert any(s.source == "cover" for s in ref[1])
    _same(with_backend("native", lambda: _mask_any(x, chunk, covers, **opts)), ref)


def test_native_output_with_more_spans_than_its_lists(native):
    """More open spans than the C lists hold (covers far ahead): the frame's output falls back to the numpy
    path's, same samples; once they expire the C output resumes."""
    x = need_speech(CORPUS["under-speech"], "case 'under-speech'")[: 8000 * 8]
    n = masker_mod._SPAN_CAP + 6
    covers = [(1600, "cover", (2000 + 600 * k, 2100 + 600 * k)) for k in range(n)]
    ref = with_backend("numpy", lambda: _mask_any(x, 160, covers))
    assert len([s for s in ref[1] if s.source == "cover"]) == n
    _same(with_backend("native", lambda: _mask_any(x, 160, covers)), ref)


def _random_spans(rng, start, n, count, open_share=0.2):
    spans = []
    for _ in range(count):
        s = int(rng.integers(start - 60, start + n + 20))
        e = None if rng.random() < open_share else s + int(rng.integers(1, 90))
        spans.append(masker_mod._Span(s, e, "inband"))
    return spans


@pytest.mark.parametrize("seed", range(12))
def test_native_render_equals_numpy_apply(native, seed):
    """Output.render against Masker._apply on random delay lines, spans, notches and output windows (also
    before the stream's start): the same float64 samples, and the same int16 after rounding."""
    rng = np.random.default_rng(seed)
    m = Masker(fade_ms=float(rng.choice([0.0, 4.0, 7.0])), guard_ms=float(rng.choice([0.0, 2.0, 3.0])))
    x = np.round(synth.white_noise(8000, 3000.0, rng) + synth.dtmf_tone("5", 1000, level_dbm0=-10.0)[:8000])
    buf_start = int(rng.integers(-400, 100000))
    m._buf = x
    m._pos = buf_start + x.size
    lo = buf_start + m._notch_len + 40
    for _ in range(20):
        n = int(rng.integers(1, 400))
        start = int(rng.integers(lo, buf_start + x.size - n - m._notch_len - 40))
        m._spans = _random_spans(rng, start, n, int(rng.integers(0, 4)))
        m._notches = _random_spans(rng, start, n, int(rng.integers(0, 4)))
        m._sync_spans()
        raw = x[start - buf_start: start - buf_start + n]
        ref = np.asarray(m._apply(raw, start, buf_start), dtype=np.float64)
        got = np.empty(n)
        m._native_output.render(x, buf_start, start, n, m._span_arr, m._notch_arr, m._frame_table, got)
        assert np.array_equal(got, ref)
        got16 = np.empty(n, dtype=np.int16)
        m._native_output.render(x, buf_start, start, n, m._span_arr, m._notch_arr, m._frame_table, got16)
        assert np.array_equal(got16, Masker._to_dtype(ref, np.dtype(np.int16)))


@pytest.mark.parametrize("seed", range(6))
def test_native_onset_equals_numpy(native, seed):
    """Output.onset against the numpy walk-back on tones starting at random places under noise."""
    rng = np.random.default_rng(seed)
    m = Masker()
    x = synth.white_noise(4000, float(rng.choice([30.0, 300.0, 3000.0])), rng)
    at = int(rng.integers(200, 3000))
    key = A.PAIR_KEYS[int(rng.integers(16))]
    tone = synth.dtmf_tone(key, 100, level_dbm0=float(rng.uniform(-35, -5)))
    x[at: at + tone.size] += tone[: x.size - at]
    x = np.round(x)
    buf_start = int(rng.integers(-50, 5000))
    m._buf = x
    for _ in range(40):
        e = buf_start + int(rng.integers(0, x.size + 1))
        lim = e - int(rng.integers(-5, 300))
        pair = int(rng.integers(16))
        steady = float(rng.choice([0.0, 1e3, 1e6, 1e8]))
        ref = with_backend("numpy", lambda e=e, pair=pair, steady=steady, lim=lim: m._onset(e, pair, steady, buf_start, lim))
        got = with_backend("native", lambda e=e, pair=pair, steady=steady, lim=lim: m._onset(e, pair, steady, buf_start, lim))
        assert got == ref


def test_native_output_rejects_bad_input(native):
    m = Masker()
    good = m.native_output_constants()
    for name in good:
        partial = dict(good)
        del partial[name]
        with pytest.raises(TypeError, match="by name"):
            native.Output(**partial)
    for name, bad in [("fade_ramp", np.zeros(3)), ("notch_basis", np.zeros(5)), ("onset_ginv", np.zeros(4)),
                      ("notch_len", 63), ("hop", 0), ("notch_cols", 0), ("notch_cols", 65),
                      ("notch_cols", good["notch_cols"] - 1)]:  # (the last: basis and pinv of the wrong size)
        with pytest.raises(ValueError):
            native.Output(**{**good, name: bad})
    out = native.Output(**good)
    x = np.zeros(1000)
    spans = np.array([1, 100, 200], dtype=np.int64)
    with pytest.raises(ValueError):  # a count the array cannot hold
        out.render(x, 0, 300, 10, np.array([5, 1, 2], dtype=np.int64), spans, m._frame_table, np.empty(10))
    with pytest.raises(ValueError):  # output outside the delay line
        out.render(x, 0, 995, 10, spans, np.array([0], dtype=np.int64), m._frame_table, np.empty(10))
    with pytest.raises(ValueError):  # out of the wrong length
        out.render(x, 0, 300, 10, spans, np.array([0], dtype=np.int64), m._frame_table, np.empty(11))
    with pytest.raises(ValueError):  # a notch block outside the delay line
        out.render(x, 0, 0, 10, np.array([0], dtype=np.int64), np.array([1, 0, 5], dtype=np.int64),
                   m._frame_table, np.empty(10))
    with pytest.raises(ValueError):
        out.onset(x, 0, 2000, 3, 1.0, 1900)  # past the delay line
    with pytest.raises(ValueError):
        out.onset(x, 0, 500, 16, 1.0, 400)  # no such pair
    scr = native.Screen(**m.native_constants())
    with pytest.raises(RuntimeError):
        scr.run(np.zeros(160, np.int16), 0, 8, np.empty(160, np.int16))  # before bind
    with pytest.raises(ValueError):  # a state vector of the wrong size
        scr.bind(out, m._store, m._keep, m.delay_samples, np.zeros(3, np.int64), m._native_steady, m._frame_table,
                 1, m._span_arr, m._notch_arr, *m._frame_outs)
    with pytest.raises(TypeError):
        scr.bind(object(), m._store, m._keep, m.delay_samples, m._native_state, m._native_steady, m._frame_table,
                 1, m._span_arr, m._notch_arr, *m._frame_outs)


def test_native_declines_chunks_it_cannot_take(native):
    """Strided, byte-swapped and 2-D int16 chunks are declined by the C frame (the numpy path takes them):
    same samples as the numpy backend, also after a chunk that failed (NaN) in the middle of a press, and a
    2-D chunk fails closed on both."""
    x = need_speech(CORPUS["under-speech"], "case 'under-speech'")[: 8000 * 3]

    def run():
        m = Masker()
        wide = np.repeat(x, 2)
        parts = []
        for k, i in enumerate(range(0, x.size, 160)):
            c = x[i: i + 160]
            parts.append(m.process(wide[2 * i: 2 * i + 2 * c.size: 2] if k % 4 == 0 else
                                   c.astype(">i2") if k % 4 == 1 else c))
            if k in (34, 42):  # inside presses, after a C frame: the chunk fails, the stream goes on
                parts.append(m.process(np.full(160, np.nan)))
        bad = m.process(np.zeros((2, 80), dtype=np.int16))
        return np.concatenate(parts + [m.flush()]), m.masked_spans, m.errors, bad

    ref = with_backend("numpy", run)
    got = with_backend("native", run)
    assert np.array_equal(got[0], ref[0]) and got[1] == ref[1] and got[2] == ref[2] == 3
    assert got[3].size == 160 and np.array_equal(got[3], ref[3])


def test_native_long_chunk_fails_closed_as_a_whole(native):
    """A recording in one chunk runs as C frames; a fault in any of them masks the whole chunk (as the numpy
    path does), never a mix of raw and masked frames."""
    x, spans = synth.keypresses("4111", tone_ms=80, gap_ms=80, rng=np.random.default_rng(8))
    x = np.round(np.concatenate([np.zeros(8000), x])).astype(np.int16)
    assert x.size > Masker()._frame_cap
    m = Masker()
    real = m._native_screen
    calls = []

    class FailsLater:  # the fourth C frame of the chunk fails
        def __getattr__(self, name):
            return getattr(real, name)

        def run(self, *a):
            calls.append(1)
            if len(calls) == 4:
                raise ValueError("injected")
            return real.run(*a)

    m._native_screen = FailsLater()
    out = with_backend("native", lambda: m.process(x))
    assert m.errors == 1 and len(calls) == 4 and out.size == x.size
    ref = np.clip(np.round(m._mask_signal(-m.delay_samples, x.size)), -32768, 32767)
    assert np.array_equal(out, ref)


def test_native_screen_hands_silent_suspects_to_python(native, monkeypatch):
    """A weak suspect too faint to notch at once stays silent (issue 12): the C steps leave every hop of it
    to Python, which looks for its pair in the short windows; both backends give the same samples and the
    same masked and notched spans, and the silent path is really taken."""
    x = need_speech(SPEECH, "silent suspects")
    rng = np.random.default_rng(11)
    parts = [A.press_scenario(rng, 4, speech=x, speech_under_db=db, duration_ms=300.0)[0] for db in (0.0, 3.0)]
    sig = np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)
    calls = []
    named = Masker._named
    monkeypatch.setattr(Masker, "_named", lambda self, *a: calls.append(1) or named(self, *a))

    # silent below 0.8 of the 16 ms window (the default is lower): the path is taken at any default
    params = dataclasses.replace(DEFAULT_MASKER_PARAMS, weak_notch_fraction=0.8)

    def run(chunk):
        m = Masker(params=params)
        out = np.concatenate([m.process(sig[i: i + chunk]) for i in range(0, sig.size, chunk)] + [m.flush()])
        return out, m.masked_spans, m.notched_spans, m.errors

    ref = with_backend("numpy", lambda: run(160))
    assert calls, "no silent suspect in this case: it tests nothing"
    for chunk in (160, 33):
        got = with_backend("native", lambda c=chunk: run(c))
        assert np.array_equal(got[0], ref[0]) and got[1:] == ref[1:] and ref[3] == 0


def test_native_output_after_a_suspect_is_released(native):
    """A note's two partials near a key pair, notched at once, fail the one-oscillator test and lose their
    notch (``oscillator_release``, issue 12): the suspect goes silent and Python takes its hops; both backends
    give the same samples and the same masked and notched spans, and the release is really taken."""
    rng = np.random.default_rng(5)
    t = np.arange(8 * 600) / 8000.0
    a = levels.dbm0_to_peak(-15.0)
    parts = [np.zeros(2400)]
    for re, ce in ((0.008, -0.008), (-0.01, 0.01)):
        x = a * (np.sin(2 * np.pi * 697.0 * (1 + re) * t + rng.uniform(0, 6))
                 + np.sin(2 * np.pi * 1336.0 * (1 + ce) * t + rng.uniform(0, 6)))
        for f in (310.0, 455.0, 2210.0):
            x += 0.65 * a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
        parts += [x + synth.white_noise(x.size, 30.0, rng), np.zeros(1600)]
    sig = np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)

    def run(chunk):
        m = Masker()
        out = np.concatenate([m.process(sig[i: i + chunk]) for i in range(0, sig.size, chunk)] + [m.flush()])
        return out, m.masked_spans, m.notched_spans, m.errors

    ref = with_backend("numpy", lambda: run(160))
    notched_ms = sum(s.end - s.start for s in ref[2]) / 8.0
    assert ref[2] and notched_ms < 400.0, notched_ms  # (1200 ms of near-pairs: released, not notched whole)
    for chunk in (160, 33, 1):
        got = with_backend("native", lambda c=chunk: run(c))
        assert np.array_equal(got[0], ref[0]) and got[1:] == ref[1:] and ref[3] == 0


def test_native_output_after_a_press_fails_the_keypad_test(native):
    """Held notes one window confirms as a key pair, one note 3.8 % off nominal (issue 12): the press's mask
    ends ``persist_ms`` after it opened and the pair opens nothing while it lasts; the C frame hands those hops
    to Python, and both backends give the same samples and spans, with a real key after the notes (masked
    whole) and another pair's notes held through the rejected ones."""
    rng = np.random.default_rng(9)
    t = np.arange(8 * 500) / 8000.0
    a = levels.dbm0_to_peak(-15.0)

    def pair(row, col, re, ce):
        return a * (np.sin(2 * np.pi * row * (1 + re) * t + rng.uniform(0, 6))
                    + np.sin(2 * np.pi * col * (1 + ce) * t + rng.uniform(0, 6)))

    notes = pair(697.0, 1209.0, -0.038, 0.0)
    notes[2000:] += 0.5 * pair(941.0, 1477.0, 0.038, 0.0)[:2000]  # a second chord starting under the first
    key = pair(852.0, 1336.0, 0.0, 0.0)
    sig = np.concatenate([np.zeros(2400), notes, np.zeros(800), key, np.zeros(2400)])
    sig = np.clip(np.round(sig + synth.white_noise(sig.size, 20.0, rng)), -32768, 32767).astype(np.int16)

    params = dataclasses.replace(DEFAULT_MASKER_PARAMS, press_tone_error_max=0.035)  # (off by default)

    def run(chunk):
        m = Masker(params=params)
        out = np.concatenate([m.process(sig[i: i + chunk]) for i in range(0, sig.size, chunk)] + [m.flush()])
        return out, m.masked_spans, m.notched_spans, m.errors

    ref = with_backend("numpy", lambda: run(160))
    key_start = 2400 + notes.size + 800
    assert any(s.end < 2400 + notes.size for s in ref[1]), "no press ended early: the test tests nothing"
    assert any(s.start <= key_start and s.end >= key_start + key.size for s in ref[1])
    for chunk in (160, 33, 1):
        got = with_backend("native", lambda c=chunk: run(c))
        assert np.array_equal(got[0], ref[0]) and got[1:] == ref[1:] and ref[3] == 0
