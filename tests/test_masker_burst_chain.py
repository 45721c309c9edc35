# SPDX-License-Identifier: GPL-2.0-or-later
"""The keypad burst's chained suspects (``MaskerParams.keypad_burst_chain_*``, issue 12, helper h15a): a key under
louder speech is often only notched, a suspect the speech breaks into pieces of the same pair, never a flat mask; such
a key did not count towards the burst, which then opened late, and a later press the attacker named before its own
suspect began leaked.  Suspects of one (non-musical) pair within ``keypad_burst_chain_gap_ms`` of each other form a
chain; one spanning ``keypad_burst_chain_ms`` counts once.  The output is the same for any chunking and from both
backends; key-free speech opens no burst."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _corpus_util import need_speech, speech
from _masker_util import bench_scenario, heard, mask, treated
from _native_util import with_backend
from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P
from dtmfguard.testkit import adversary as A

_OFF = {"keypad_burst_chain_ms": None}
# the benchmark's cell (``benchmarks/masker.py --payment`` / its per-cell tool, seed 2507, boundary row -6 dB: tones
# 6 dB under the speech around them; seen before, by the helper that traced this leak): without the rule the
# attacker names press 9 blind, 76 ms into it, before the masker's own suspect of it begins; the press at index 5
# was only notched (three suspects of its pair within 28 ms of each other, 80 ms in all)
_CELL = (2507, 102, {"speech_under_db": -6.0})


def _named(out, spans) -> list:
    got = A.answers(A.decode(heard(out), 8000), spans)
    return [k for k, (s, g) in enumerate(zip(spans, got)) if g is not None and g == A._span_fields(s)[0]]


def test_chain_hides_a_press_the_late_burst_leaked():
    """Without chains the cell's press 9 is named blind and the burst opens only inside it; with them nothing is
    named, the burst opens earlier (a chain counted), and press 9 lies wholly inside it."""
    seed, index, cond = _CELL
    x, spans = bench_scenario(seed, index, **cond)
    # (the cell's sequence draws all 16 keys, and its burst counted presses of A-D, which a keypad does not have and
    # which count for nothing since the sixteenth session, ``keypad_burst_keys``: counted here, as when it was traced)
    base = dataclasses.replace(P, keypad_burst_keys=None)
    # (the keypad context, ``keypad_context_ms``, and the mid-length line test, ``verify_mid_ms``, merged later, hide
    # press 9 as well: off with the chains, to show the chains alone hide it)
    out_off, m_off = mask(x, dataclasses.replace(base, keypad_context_ms=None, verify_mid_ms=None, **_OFF))
    assert _named(out_off, spans) == [9]
    assert m_off.burst_chains == 0
    _, s9, e9 = A._span_fields(spans[9])
    assert m_off.burst_spans and m_off.burst_spans[0].start > s9  # (the burst of the flat presses only: late)
    out, m = mask(x, base)
    assert _named(out, spans) == [] and m.errors == 0
    assert m.burst_chains >= 1
    assert m.burst_spans[0].start < m_off.burst_spans[0].start
    assert any(b.start <= s9 and e9 <= b.end for b in m.burst_spans), (s9, e9, m.burst_spans)


def test_chain_only_adds_treatment():
    """Every sample flat-masked or notched without chains is flat-masked or notched with them (a chain only opens a
    burst earlier or holds it longer: the burst's band notch, and no decision taken on the input changes before the
    first chain counts)."""
    x = bench_scenario(*_CELL[:2], **_CELL[2])[0]
    _, m = mask(x)
    _, m_off = mask(x, dataclasses.replace(P, **_OFF))
    n = x.size
    on, without = treated(m, n), treated(m_off, n)
    for spans, sel in ((m.burst_spans, on), (m_off.burst_spans, without)):
        for b in spans:
            sel[max(b.start, 0): min(b.end, n)] = True
    assert not np.any(without & ~on)


def test_chain_acts_alike_on_every_backend():
    """The cell's chain: numpy at 1000-sample chunks and C at 7, 160 and 1000 give numpy's 160-sample output, flat
    masks, notches, burst spans and chains counted included (chains are read only at the Python steps that open, switch
    or end a suspect, which both backends take)."""
    x = bench_scenario(*_CELL[:2], **_CELL[2])[0]
    ref, m_ref = with_backend("numpy", lambda: mask(x, chunk=160))
    off = with_backend("numpy", lambda: mask(x, dataclasses.replace(P, **_OFF), chunk=160)[0])
    assert m_ref.burst_chains >= 1 and not np.array_equal(ref, off)
    runs = [("numpy", 1000), ("numpy", 7)]
    if masker_mod._masker_native is not None:
        runs += [("native", c) for c in (7, 160, 1000)]
    for backend, chunk in runs:
        got, m = with_backend(backend, lambda c=chunk: mask(x, chunk=c))
        assert np.array_equal(got, ref), (backend, chunk)
        assert (m.masked_spans, m.notched_spans, m.burst_spans, m.burst_chains) == \
            (m_ref.masked_spans, m_ref.notched_spans, m_ref.burst_spans, m_ref.burst_chains), (backend, chunk)


def test_chain_rule_leaves_no_reference_cycle_and_refuses_bad_values():
    """With the rule on or off a masker is freed as soon as its last reference goes, without the cycle collector (a
    per-instance step method made every masker a cycle, which the relay's leak test caught); a value outside its
    range is refused."""
    import gc
    import weakref

    for params in (P, dataclasses.replace(P, **_OFF)):
        gc.disable()
        try:
            m = masker_mod.Masker(params=params)
            m.process(np.zeros(1600, np.int16))
            ref = weakref.ref(m)
            del m
            assert ref() is None, params.keypad_burst_chain_ms
        finally:
            gc.enable()
    with pytest.raises(ValueError, match="keypad_burst_chain"):
        masker_mod.Masker(params=dataclasses.replace(P, keypad_burst_chain_ms=0.0))


def test_key_free_speech_chains_open_no_burst():
    """Four minutes of English speech (no key): chains count nothing that opens a burst."""
    sp = need_speech(speech(240.0, seed=47), "key-free speech")
    x = np.clip(np.round(sp), -32768, 32767).astype(np.int16)
    _, m = mask(x)
    assert m.bursts == 0 and m.burst_spans == [] and m.errors == 0


def test_a_chain_and_the_press_it_became_count_once_towards_the_linger():
    """A chain counted towards the burst and then the press of its pair that opened (its count taken back, the
    press counted when its mask closes) are one press for ``keypad_burst_linger_presses`` as for the window: the
    burst lingers only once that many presses have been counted, not one press earlier.  A count already out of
    the window is taken back from nothing."""
    n = P.keypad_burst_linger_presses
    assert n is not None and n >= P.keypad_burst_presses + 2
    m = masker_mod.Masker()
    step = 2400  # (300 ms between presses: within the window, the burst on throughout)
    e = 40000
    for k in range(n - 2):
        m._burst_count(e, 1 + k % 2)
        e += step
    assert m.bursts == 1 and m._burst_count_in == n - 2 and m._burst_held() == m._burst_hold
    m._burst_count(e, 5)  # a chain of pair 5 counted (``_chain_fold``) ...
    m._uncount(e, 5)  # ... then a press of that pair opened: the chain's count is taken back
    assert m._burst_count_in == n - 2 and (e, 5) not in m._burst_closes
    m._burst_count(e + 400, 5)  # the press's own count, when its mask closes
    assert m._burst_count_in == n - 1 and m._burst_held() == m._burst_hold
    m._burst_count(e + step, 2)  # the n-th press: the burst now lingers
    assert m._burst_count_in == n and m._burst_held() == max(m._burst_linger, m._burst_hold)
    m._uncount(0, 1)  # (never counted, or long out of the window)
    assert m._burst_count_in == n
