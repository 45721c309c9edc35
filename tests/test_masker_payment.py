# SPDX-License-Identifier: GPL-2.0-or-later
"""The masker's payment profile (``Masker.notch_all``): while a payment is keyed, the 8 DTMF bands are removed
from all the audio the flat mask does not cover, so a tone hiding under louder speech leaves nothing an
attacker who knows when each press is can name; speech passes nearly whole; the samples are the same for any
chunking and from both backends, and bit-exact outside the profile's spans (issue 12)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _corpus_util import need_speech, speech
from _native_util import require_native, with_backend
from dtmfguard.dsp import g711
from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS
from dtmfguard.testkit import adversary as A
from test_masker_native import _chunked
from _masker_util import INSIDE_OFF

SPEECH = speech(40.0, seed=12)


def _int16(x):
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _run(x, chunks=160, calls=(), **opts):
    """Mask ``x`` cut at ``chunks`` (a size or a list of sizes, cycled); ``calls``: (input position at which
    to call, method, args), made there.  Returns (agent audio aligned with ``x``, the masker)."""
    out, m = _chunked(x, chunks, calls, **opts)
    return out[m.delay_samples:], m


def test_profile_hides_tones_under_louder_speech_from_the_oracle():
    """Tones 3 dB under the speech around them: without the profile the oracle-timed attacker names more than
    chance (part of each tone passes raw under the speech); with it, at most chance, and blind nothing."""
    sp = need_speech(SPEECH, "tones under speech")
    rng = np.random.default_rng(7)
    x, spans = A.press_scenario(rng, 24, speech=sp, speech_under_db=-3.0)
    bound = A.chance_bound(len(spans))
    scores, masked = {}, {}
    for pay in (False, True):
        # (the default without the keypad burst, which switches the profile's notch on by itself after three keys)
        out, m = _run(_int16(x), calls=[(0, "notch_all", (0,))] if pay else (),
                      params=dataclasses.replace(DEFAULT_MASKER_PARAMS, keypad_burst_presses=None))
        assert m.errors == 0
        heard = g711.ulaw_decode(g711.ulaw_encode(out))
        scores[pay] = (A.count_recovered(heard, spans), A.oracle_score(heard, spans))
        masked[pay] = (m.masked_spans, m.notched_spans)
    # the same presses masked flat; a suspect gets the flat mask instead of its notch (``payment_suspect_flat``):
    # every sample the default masks flat or notches as a suspect is under the profile's flat mask or its fade
    assert masked[True][0] and masked[False][1] and masked[True][1] == []
    fade = Masker()._fade
    cover = np.zeros(x.size + 4000, dtype=bool)
    for s in masked[True][0]:
        cover[max(s.start - fade, 0): s.end + fade] = True
    for s in masked[False][0] + masked[False][1]:
        assert cover[max(s.start, 0): s.end].all(), (s.start, s.end, s.source)
    print(f"blind / oracle of {len(spans)} (chance bound {bound}): default {scores[False]}, payment {scores[True]}")
    assert scores[False][1] > bound  # the case is one the default leaves partly raw ...
    assert scores[True] [0] == 0 and scores[True][1] <= bound  # ... the profile at chance


def test_profile_costs_speech_little():
    """Speech alone through the profile: correlation with the input >= 0.9 and less than 1 dB lost (the notch
    takes 8 narrow bands); nothing masked flat."""
    x = _int16(need_speech(SPEECH, "speech cost")[: 8000 * 20])
    out, m = _run(x, calls=[(0, "notch_all", (0,))])
    lo = 400  # past the profile's ramp-in
    a, b = x[lo:].astype(float), out[lo:].astype(float)
    loss_db = -10 * np.log10(float(b @ b) / float(a @ a))
    corr = float(a @ b) / np.sqrt(float(a @ a) * float(b @ b))
    print(f"speech through the payment profile: {loss_db:.2f} dB lost, correlation {corr:.4f}")
    assert 0.0 < loss_db < 1.0 and corr >= 0.9
    assert m.payment_spans == [] and m.notching_all  # open until switched off


def test_profile_span_is_bit_exact_outside_and_closes():
    """Switched on at 1.0 s and off at 2.5 s (mid-stream): output before 1.0 s and from 2.5 s on is the
    default masker's, bit for bit; inside it differs; the closed span is listed (and not as a notch)."""
    x = _int16(need_speech(SPEECH, "profile span")[: 8000 * 4])
    ref, _ = _run(x)
    out, m = _run(x, calls=[(8000, "notch_all", (8000,)), (20000, "notch_all_end", (20000,))])
    assert np.array_equal(out[:8000], ref[:8000]) and np.array_equal(out[20000:], ref[20000:])
    assert np.count_nonzero(out[8000:20000] != ref[8000:20000]) > 0.5 * 12000
    assert [(s.start, s.end, s.source) for s in m.payment_spans] == [(8000, 20000, "payment")]
    assert all(s.source != "payment" for s in m.notched_spans) and not m.notching_all


def test_profile_api_edges():
    m = Masker()
    with pytest.raises(ValueError):
        m.notch_all(100, 50)
    m.notch_all_end(10)  # nothing open: nothing happens
    assert not m.notching_all
    m.notch_all(0)
    m.notch_all(80)  # already on: one span
    assert m.notching_all and sum(s.source == "payment" for s in m._notches) == 1
    m.notch_all_end(160)
    m.notch_all(160)  # touching the previous span: continues it
    assert sum(s.source == "payment" for s in m._notches) == 1 and m.notching_all


CALLS = [(0, "notch_all", (0,)), (12000, "notch_all_end", (12003,)), (16000, "notch_all", (16000, 21000)),
         (24000, "notch_all", (24000,)), (40000, "notch_all_end", (40160,))]


@pytest.fixture
def native():
    return require_native(masker_mod._masker_native, "dtmfguard.dsp._masker_native (C masker screen)")


@pytest.mark.parametrize("chunks", [1, 33, 160, 161, 5000, [160, 1, 33, 400, 5000, 2]])
def test_profile_any_chunking_and_c_equals_numpy(native, chunks):
    """Keys 3 dB under speech with the profile switched on and off mid-stream (open and closed spans, a
    closed one given ahead): the C output side gives the numpy path's samples for any chunking."""
    sp = need_speech(SPEECH, "chunking")
    x, _ = A.press_scenario(np.random.default_rng(5), 10, speech=sp, speech_under_db=-3.0)
    x = _int16(x)[: 8000 * (3 if chunks == 1 else 6)]
    calls = [c for c in CALLS if c[0] < x.size]
    ref, mr = with_backend("numpy", lambda: _run(x, 160, calls))
    assert mr.masked_spans and mr.errors == 0  # presses masked flat beside the profile
    got, mg = with_backend("native", lambda: _run(x, chunks, calls))
    assert np.array_equal(got, ref)
    assert mg.masked_spans == mr.masked_spans and mg.notched_spans == mr.notched_spans
    assert mg.payment_spans == mr.payment_spans and mg.errors == 0
    if chunks == 160:  # float64 out, numpy path: the same samples before rounding
        f, _ = with_backend("numpy", lambda: _run(x, 161, calls, dtype="float64"))
        assert np.array_equal(_int16(f * 32768.0), ref)


def test_long_chunk_under_the_profile_is_the_framed_output():
    """A whole float recording in one chunk (the numpy path, weighed and notched in pieces) gives the samples
    of 20 ms frames."""
    x = need_speech(SPEECH, "long chunk")[: 8000 * 12] / 32768.0
    a, _ = with_backend("numpy", lambda: _run(x, x.size, [(0, "notch_all", (0,))], dtype="float64"))
    b, _ = with_backend("numpy", lambda: _run(x, 160, [(0, "notch_all", (0,))], dtype="float64"))
    assert np.array_equal(a, b)


def _profile_blind(x, spans, field: str, base=DEFAULT_MASKER_PARAMS):
    """Keys the attacker names blind (after µ-law) in the output under the profile, with the rule ``field`` off
    and on (other fields: ``base``); and the masker with it on."""
    blind = {}
    for on in (False, True):
        params = dataclasses.replace(base, **{field: on})
        out, m = _run(x, calls=[(0, "notch_all", (0,))], params=params)
        assert m.errors == 0
        blind[on] = A.count_recovered(g711.ulaw_decode(g711.ulaw_encode(out)), spans)
    return blind, m


def test_profile_masks_suspects_flat():
    """``payment_suspect_flat``: under the profile a suspect gets the flat mask, not the band notch.  Held-out
    benchmark cell (masker.py --payment, seed 705, boundary -3 dB: keys 3 dB under speech): with suspects only
    band-notched, a 4 ms window at a key's onset (inside the suspect's notch ramp, ahead of the press's flat
    mask) still names the key after G.711; flat, nothing is named.  Both backends give the same samples.
    (Shown with the notch on the 8 nominal frequencies only, ``notch_band_extra`` 0, as when the rule was made: the
    band vectors' notch takes that onset too, and with them the key is named neither way.)"""
    sp = need_speech(A.load_speech(240.0, seed=705), "boundary -3 dB, seed 705")
    x, spans = A.press_scenario(np.random.default_rng(705 + 103), 24, speech=sp, speech_under_db=-3.0)
    x = _int16(x)
    # (and without ``notch_inside_*``, merged later: the flat mask it gives a named window inside the keypad burst's notch
    # takes that onset too)
    blind, m = _profile_blind(x, spans, "payment_suspect_flat",
                              base=dataclasses.replace(DEFAULT_MASKER_PARAMS, notch_band_extra=0, **INSIDE_OFF))
    assert m.notched_spans == [] and m.masked_spans
    assert blind[False] >= 1 and blind[True] == 0, blind
    assert _profile_blind(x, spans, "payment_suspect_flat")[0] == {False: 0, True: 0}
    # outside the profile the field changes nothing
    outs = [_run(x[: 8000 * 20], params=dataclasses.replace(DEFAULT_MASKER_PARAMS, payment_suspect_flat=f))[0]
            for f in (False, True)]
    assert np.array_equal(outs[0], outs[1])


def test_profile_holds_flat_masks_longer():
    """``payment_hold_ms``: under the profile a flat mask is held longer when it closes.  Benchmark cell
    (masker.py --payment, seed 809, 1 s presses 6 dB under speech): the louder speech took a press's hold
    away and a 2 ms window 25 ms after its mask's end named the key through the profile's notch; with the
    hold nothing is named.  Outside the profile the field changes nothing.  (Shown with the notch on the 8 nominal
    frequencies only, ``notch_band_extra`` 0, as when the rule was made: the band vectors' notch takes that window
    too, and with them the key is named neither way.)"""
    sp = need_speech(A.load_speech(240.0, seed=809), "1 s presses 6 dB under speech, seed 809")
    x, spans = A.press_scenario(np.random.default_rng(809 + 21), 24, speech=sp, duration_ms=1000.0,
                                speech_under_db=-6.0)
    x = _int16(x)
    for extra in (0, DEFAULT_MASKER_PARAMS.notch_band_extra):
        blind = {}
        for hold in (0.0, 40.0):
            # (``notch_inside_*`` off, merged later: inside the keypad burst's notch it takes that window too)
            params = dataclasses.replace(DEFAULT_MASKER_PARAMS, payment_hold_ms=hold, notch_band_extra=extra,
                                         **INSIDE_OFF)
            out, m = _run(x, calls=[(0, "notch_all", (0,))], params=params)
            assert m.errors == 0
            blind[hold] = A.count_recovered(g711.ulaw_decode(g711.ulaw_encode(out)), spans)
        assert (blind[0.0] >= 1 if extra == 0 else blind[0.0] == 0) and blind[40.0] == 0, (extra, blind)
    outs = [_run(x[: 8000 * 20], params=dataclasses.replace(DEFAULT_MASKER_PARAMS, payment_hold_ms=h))[0]
            for h in (0.0, 40.0)]
    assert np.array_equal(outs[0], outs[1])


def _offset_cell(seed):
    """Benchmark cell "freq +4 %, speech around" of ``masker.py --payment --seed S`` (24 presses)."""
    sp = need_speech(A.load_speech(240.0, seed=seed), f"freq +4 %, seed {seed}")
    x, spans = A.press_scenario(np.random.default_rng(seed + 16), 24, speech=sp, freq_error=0.04,
                                speech_around=True)
    return _int16(x), spans


@pytest.mark.parametrize("seed", [500, 807])
def test_profile_masks_a_key_named_as_its_neighbour(seed):
    """``payment_measured_pair``: a key 4 % off nominal (benchmark cells, seeds 500 and 807) is named by the
    screen's 2 ms windows as a neighbouring pair, which the offset rule rejects; the default masker leaves it
    unnameable (the attacker names the neighbour), but the profile's notch at the nominal frequencies strips
    what projects on them and the attacker names the key in what is left.  With the rule the pair of the
    window's spectrum peaks is asked too, the press is masked flat and nothing is named; the default is
    unchanged.  (Shown with the notch on the 8 nominal frequencies only, ``notch_band_extra`` 0, as when the rule
    was made: the band vectors' notch takes a tone 4 % off too, and with them the key is named neither way.)"""
    x, spans = _offset_cell(seed)
    # (and without the keypad context, ``keypad_context_ms``, merged later: after the cell's first confirmed press it
    # notches the windows naming the neighbour, and the key is named neither way; nor ``notch_inside_*``, which masks
    # the key's onset inside the keypad burst's notch flat)
    blind, _ = _profile_blind(x, spans, "payment_measured_pair",
                              base=dataclasses.replace(DEFAULT_MASKER_PARAMS, notch_band_extra=0,
                                                       keypad_context_ms=None, **INSIDE_OFF))
    assert blind[False] >= 1 and blind[True] == 0, blind
    assert _profile_blind(x, spans, "payment_measured_pair")[0] == {False: 0, True: 0}
    # (outside the profile and without the keypad burst, which asks the rule too: ``keypad_burst_measured_pair``)
    default = [_run(x, params=dataclasses.replace(DEFAULT_MASKER_PARAMS, payment_measured_pair=on,
                                                  keypad_burst_presses=None))[0] for on in (False, True)]
    assert np.array_equal(default[0], default[1])
    assert A.count_recovered(g711.ulaw_decode(g711.ulaw_encode(default[0])), spans) == 0
    assert A.count_recovered(g711.ulaw_decode(g711.ulaw_encode(_run(x)[0])), spans) == 0


@pytest.mark.parametrize("chunks", [160, [160, 1, 33, 400, 5000, 2]])
def test_measured_pair_c_equals_numpy(native, chunks):
    """The rule's presses (seed 500's cell, profile on from 1 s, off at 60 s): the C frame gives the numpy
    path's samples and spans for any chunking."""
    x, _ = _offset_cell(500)
    x = x[: 8000 * 70]
    calls = [(8000, "notch_all", (8000,)), (480000, "notch_all_end", (480000,))]
    # (without the keypad context, ``keypad_context_ms``, merged later: under the profile the windows it verifies are
    # masked flat too, with the rule or without it)
    base = dataclasses.replace(DEFAULT_MASKER_PARAMS, keypad_context_ms=None)
    ref, mr = with_backend("numpy", lambda: _run(x, 160, calls, params=base))
    got, mg = with_backend("native", lambda: _run(x, chunks, calls, params=base))
    assert np.array_equal(got, ref)
    assert mg.masked_spans == mr.masked_spans and mg.payment_spans == mr.payment_spans
    off = dataclasses.replace(base, payment_measured_pair=False)
    _, mo = with_backend("numpy", lambda: _run(x, 160, calls, params=off))
    assert len(mr.masked_spans) > len(mo.masked_spans)  # (the rule opened presses here)
