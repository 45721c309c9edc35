# SPDX-License-Identifier: GPL-2.0-or-later
"""What the attacker names after the agent's G.711 leg, and single short windows under louder speech (issue 12).

* The screen judges its 2 and 4 ms windows also as they sound after a µ-law and an A-law round trip
  (``MaskerParams.screen_g711_windows_ms``): a window its own test misses by a few % but the attacker names after
  the codec is a hit too (kept, with no press open, only for one keypad oscillator: ``screen_g711_spread``).
* A short-window suspect is verified (band notch) when it fits its pair exactly (``verify_unique_exact``: a tone
  alone in a gap of the speech over it), when a press (or, off by default, a weak suspect) of its pair ended just
  before and the pair is one keypad oscillator (``verify_recent_*``), or when a 48 ms window at the pair's measured frequencies
  carries it (``verify_long_*``).

Each rule is shown necessary on the benchmark's own scenario (``benchmarks/masker.py``: seed, condition, 24
presses, the attacker after a G.711 round trip): the key is named blind without it and not with it.  Both
backends give the same samples for any chunking.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import COLUMN_OFF, MID_OFF, assert_rule_acts_alike, assert_rule_hides_key
from _masker_util import bench_scenario as _scenario
from _masker_util import blind as _blind
from _masker_util import mask as _mask
from _native_util import require_native, with_backend
from dtmfguard.dsp import g711, levels, pairfit
from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P
from dtmfguard.testkit import synth

CASES = {
    "g711: +4 % around speech": (2026, 16, {"freq_error": 0.04, "speech_around": True},
                                 {"screen_g711_windows_ms": ()}),
    # (``offset_at_close``, helper h15b, hides this key too: off with it)
    "g711: 3 dB under speech, -2 %": (11, 18, {"speech_under_db": -3.0, "freq_error": -0.02},
                                      {"screen_g711_windows_ms": (), "offset_at_close": False}),
    "exact: tone 9 dB under speech with gaps": (17, 101, {"speech_under_db": -9.0}, {"verify_unique_exact": None}),
    # (the 96 ms line test, ``verify_line_*``, hides this key too: off with it)
    "recent press: 1 s presses 6 dB under speech": (2026, 21, {"duration_ms": 1000.0, "speech_under_db": -6.0},
                                                    # (verify_osc_* hides it too)
                                                    {"verify_recent_ms": None, "verify_line_ms": None,
                                                     "verify_osc_fraction": None, **COLUMN_OFF, **MID_OFF}),
    "long: 6 dB under speech": (7, 102, {"speech_under_db": -6.0}, {"verify_long_ms": None, "verify_line_ms": None,
                                                                    "verify_common_ms": None, **MID_OFF}),  # (hide it too)
    # (the second look, ``verify_again_ms``, hides this key too: off with it)
    "long: 3 dB under speech, +3 %": (17, 19, {"speech_under_db": -3.0, "freq_error": 0.03},
                                      {"verify_long_ms": None, "verify_again_ms": None, **MID_OFF}),  # (verify_mid_* too)
}
# (off by default: the rule closes its case when switched on, with the rule that now closes it off)
OPTIONAL = {"recent weak suspect: 6 dB under speech": (7, 102, {"speech_under_db": -6.0},
                                                       {"verify_long_ms": None, "verify_line_ms": None,
                                                        "verify_common_ms": None, "verify_recent_weak_ms": 40.0,
                                                        **MID_OFF})}


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_is_what_hides_the_key(case):
    assert_rule_hides_key(*CASES[case])


@pytest.mark.parametrize("case", list(OPTIONAL))
def test_optional_rule_hides_its_key(case):
    seed, index, cond, on = OPTIONAL[case]
    x, spans = _scenario(seed, index, **cond)
    # (without the keypad burst or the keypad context, which may hide it too)
    base = dataclasses.replace(P, keypad_burst_presses=None, keypad_context_ms=None)
    assert _blind(x, spans, dataclasses.replace(base, **on)) == 0
    assert _blind(x, spans, dataclasses.replace(base, **dict(on, verify_recent_weak_ms=None))) >= 1


def _near_misses(x, length=16):
    """Hops (window ends on the 1 ms grid) whose window the attacker's rule does not name in ``x`` but names after a
    µ-law round trip, with that pair."""
    u = g711.ulaw_decode(g711.ulaw_encode(x)).astype(np.float64)
    found = []
    for e in range(length, x.size + 1, 8):
        got = []
        for y in (x[e - length: e], u[e - length: e]):
            resid, coef, energy = pairfit.pair_fit(y[None, :], 8000)
            r = resid[0]
            p = int(np.argmin(r))
            c = coef[0, p]
            ar2, ac2 = c[0] ** 2 + c[1] ** 2, c[2] ** 2 + c[3] ** 2
            ok = energy[0] > 0 and r[p] <= 0.2 * energy[0] and np.delete(r, p).min() >= 3 * r[p] \
                and min(ar2, ac2) >= levels.dbm0_to_peak(-45.0) ** 2 \
                and max(ar2, ac2) <= 10 ** 1.5 * min(ar2, ac2)
            got.append(p if ok else -1)
        if got[0] < 0 <= got[1]:
            found.append((e, got[1]))
    return found


def _tone_off_nominal():
    """A key 4 % off nominal, alone: its 2 ms windows sit just under the screen's uniqueness (beats)."""
    tone = synth.dtmf_tone("8", 120.0, level_dbm0=-12.0, freq_offset=(0.04, 0.04), phase=(0.4, 2.0))
    return np.round(np.concatenate([np.zeros(400), tone, np.zeros(400)]))


def test_screen_names_windows_the_attacker_names_only_after_g711():
    x = _tone_off_nominal()
    misses = _near_misses(x)
    assert misses, "the scenario has no window named only after G.711"
    m = Masker()
    nh = x.size // 8 - m._kmax
    outs = (np.empty(nh, np.int64), np.empty(nh, np.int64), np.empty((nh, 4)), np.empty(nh, np.int64),
            np.empty((nh, 16)))
    with_backend("numpy", lambda: m._screen_numpy(x, 0, nh, *outs))
    sus = outs[0]
    hops = (np.arange(nh) + m._kmax) * 8  # window ends
    flag = m._g711_flag
    flagged = {int(h): int(s) % 16 for h, s in zip(hops, sus) if s >= flag}
    # every window the attacker names only after the codec (here µ-law) that no other screen window names is flagged
    # with the attacker's pair; nothing is flagged that the codecs do not make nameable
    for e, pair in misses:
        i = e // 8 - m._kmax
        if 0 <= i < nh and sus[i] < flag:
            continue  # (a longer window names that hop anyway)
        assert flagged.get(e) == pair
    assert flagged
    off = Masker(params=dataclasses.replace(P, screen_g711_windows_ms=()))
    with_backend("numpy", lambda: off._screen_numpy(x, 0, nh, *outs))
    assert not (outs[0] >= off._g711_flag).any() and off._g711_flag == flag


@pytest.fixture
def native():
    return require_native(masker_mod._masker_native, "dtmfguard.dsp._masker_native (C masker screen)")


@pytest.mark.parametrize("fraction", [0.0, 0.37])
def test_native_g711_screen_equals_numpy_bit_for_bit(native, fraction):
    """The C screen's G.711 windows (its own µ-law and A-law round trips, rounding half to even) give the numpy
    screen's outputs exactly, also on samples that are not whole numbers."""
    rng = np.random.default_rng(3)
    x = _tone_off_nominal()
    parts = [x, 0.3 * x[::-1] + synth.white_noise(x.size, 40.0, rng)]
    for level in (-44.0, -40.0, -30.0, -3.0):  # low levels: A-law's coarse steps; high: µ-law's clipping region
        t = synth.dtmf_tone("2", 60.0, level_dbm0=level, freq_offset=(-0.03, -0.03), phase=(1.0, 0.2))
        parts.append(np.round(np.concatenate([t, np.zeros(200)])))
    seg = np.concatenate(parts) + fraction
    seg = seg[: seg.size // 8 * 8]
    m = Masker()
    nh = seg.size // 8 - m._kmax + 1
    got = (np.empty(nh, np.int64), np.empty(nh, np.int64), np.empty((nh, 4)), np.empty(nh, np.int64),
           np.empty((nh, 16)))
    ref = tuple(np.empty_like(a) for a in got)
    hit_c = native.Screen(**m.native_constants()).screen(seg, 5, *got)
    hit_np = m._screen_numpy(seg, 5, nh, *ref)
    assert hit_c == hit_np == 1
    for g, r in zip(got, ref):
        assert np.array_equal(g, r)
    assert (got[0] >= m._g711_flag).any()  # the G.711 path was taken


@pytest.mark.parametrize("case, seconds", [("g711: +4 % around speech", (5, 8)),
                                           ("recent press: 1 s presses 6 dB under speech", (0, 4)),
                                           ("long: 3 dB under speech, +3 %", (5, 8))])
def test_new_rules_same_output_any_chunking_and_backend(case, seconds):
    """Where the rule acts (the output differs without it), both backends give the same samples for any chunking."""
    seed, index, cond, off = CASES[case]
    x, _ = _scenario(seed, index, **cond)
    x = x[8000 * seconds[0]: 8000 * seconds[1]]
    assert_rule_acts_alike(x, off)


def test_new_params_reach_both_backends(native):
    """Each new threshold changes what both backends do, identically."""
    keys, _ = _scenario(2026, 16, freq_error=0.04, speech_around=True)  # (2 ms windows)
    keys4, _ = _scenario(11, 16, freq_error=0.04, speech_around=True)  # (a 4 ms window, at 10.7 s)
    cases = (({"screen_g711_margin": 0.0}, keys[:8000 * 8]), ({"screen_g711_spread": 0.0}, keys[:8000 * 8]),
             ({"screen_g711_windows_ms": (2.0,)}, keys4[8000 * 9: 8000 * 13]))
    for change, x in cases:
        params = dataclasses.replace(P, **change)
        base = with_backend("numpy", lambda x=x: _mask(x)[0])
        ref = with_backend("numpy", lambda x=x, p=params: _mask(x, p)[0])
        got = with_backend("native", lambda x=x, p=params: _mask(x, p)[0])
        assert np.array_equal(got, ref), change
        assert not np.array_equal(ref, base), f"{change} changed nothing"


def test_bad_params_are_refused():
    with pytest.raises(ValueError):
        Masker(params=dataclasses.replace(P, screen_g711_margin=-1.0))
    with pytest.raises(ValueError):
        Masker(params=dataclasses.replace(P, screen_g711_windows_ms=(64.0,)))
    with pytest.raises(ValueError):
        Masker(params=dataclasses.replace(P, verify_long_ms=2000.0))
    # windows that are not screen windows are ignored; other rates have no G.711 leg
    assert Masker(params=dataclasses.replace(P, screen_g711_windows_ms=(2.0, 32.0)))._g711 == (1, 0, 0, 0)
    assert Masker(16000)._g711 == (0, 0, 0, 0)


def test_g711_round_trip_table_is_the_codec():
    """``g711.round_trip`` (one table lookup) gives ``decode(encode(x))`` for every int16 value, values between
    them, values past the int16 range, and any shape."""
    rng = np.random.default_rng(11)
    x = np.concatenate([np.arange(-32768, 32768) + d for d in (0.0, 0.5, -0.5, 0.49)]
                       + [rng.uniform(-50000.0, 50000.0, 20000)])
    for law, (enc, dec) in (("ulaw", (g711.ulaw_encode, g711.ulaw_decode)),
                            ("alaw", (g711.alaw_encode, g711.alaw_decode))):
        got = g711.round_trip(x, law)
        assert got.dtype == np.float64 and np.array_equal(got, dec(enc(x)).astype(np.float64))
        assert g711.round_trip(x[:20000].reshape(100, 200), law).shape == (100, 200)
    with pytest.raises(ValueError):
        g711.round_trip(x, "g722")
