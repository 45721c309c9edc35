# SPDX-License-Identifier: GPL-2.0-or-later
"""The keypad burst (``MaskerParams.keypad_burst_*``, issue 12, helper m13a): card numbers are keyed as bursts, and the
presses the default masker let the blind attacker name sat at index 2 or later of their sequences, the presses around
them found and flat-masked.  Once the masker has itself confirmed ``keypad_burst_presses`` presses (of two keys at
least) of a key's grade within the window, the payment profile's band notch is on until the hold after the last one:
from the first sample not yet emitted, so the output is the same for any chunking and from both backends; key-free
speech opens none."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _corpus_util import need_speech, speech
from _masker_util import bench_scenario, blind, heard, mask, treated
from _native_util import with_backend
from dtmfguard.dsp import goertzel
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P
from dtmfguard.testkit import adversary as A
from dtmfguard.testkit.synth import dtmf_tone
from test_masker_native import _chunked

_OFF = {"keypad_burst_presses": None, "verify_onset_jump": None, "keypad_context_ms": None}
# the benchmark's cell (``benchmarks/masker.py --payment``, tune seed 1515, boundary row -6 dB: tones 6 dB under the
# speech around them): without the rule the attacker names the press at index 14 blind (``verify_onset_jump`` and the
# keypad context, ``keypad_context_ms``, merged later, hide that key as well: switched off with the burst, to show the
# burst alone hides it)
_CELL = (1515, 102, {"speech_under_db": -6.0})


def _keys(digits: str, rate: int = 8000, dur_ms: float = 80.0, gap_ms: float = 300.0, level: float = -10.0):
    """Clean presses of ``digits`` with ``gap_ms`` between them and 300 ms of silence around (int16)."""
    ms = rate // 1000
    parts, starts = [np.zeros(300 * ms)], []
    pos = parts[0].size
    for d in digits:
        tone = dtmf_tone(d, dur_ms, rate, level, 0.0)
        starts.append(pos)
        parts += [tone, np.zeros(int(gap_ms * ms))]
        pos += tone.size + int(gap_ms * ms)
    parts.append(np.zeros(300 * ms))
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16), starts


def _off(**kw):
    return dataclasses.replace(P, **kw)


def test_burst_hides_a_later_press_of_the_sequence():
    """The cell's press at index >= 2 is named blind without the rule and nothing is with it; the press lies inside
    the burst span, which opened after the masker's own first presses."""
    seed, index, cond = _CELL
    x, spans = bench_scenario(seed, index, **cond)
    out_off, m_off = mask(x, _off(**_OFF))
    got = A.answers(A.decode(heard(out_off), 8000), spans)
    named = [k for k, (s, g) in enumerate(zip(spans, got)) if g is not None and g == A._span_fields(s)[0]]
    assert named and min(named) >= 2, named
    assert m_off.burst_spans == []
    assert blind(x, spans) == 0
    _, m = mask(x)
    assert m.bursts >= 1 and m.errors == 0
    for k in named:
        _, s, e = A._span_fields(spans[k])
        assert any(b.start <= s and e <= b.end for b in m.burst_spans), (k, s, e, m.burst_spans)


def _region(m, n: int, fade: int) -> np.ndarray:
    """Input samples inside a burst span, or under a flat mask (with its fades) that opened inside one."""
    sel = np.zeros(n, dtype=bool)
    for b in m.burst_spans:
        sel[max(b.start, 0): min(b.end, n)] = True
        for s in m.masked_spans:
            if b.start <= s.start < b.end:
                sel[max(s.start - fade, 0): min(s.end + fade, n)] = True
    return sel


def test_burst_only_adds_treatment_and_only_in_its_spans():
    """Every sample flat-masked or notched without the rule is flat-masked or notched with it; the output differs
    only inside the burst spans (the band notch, and the payment profile's flat masks that opened there)."""
    x = bench_scenario(*_CELL[:2], **_CELL[2])[0]
    out, m = mask(x)
    out_off, m_off = mask(x, _off(**_OFF))
    n = x.size
    on, without = treated(m, n), treated(m_off, n)
    for b in m.burst_spans:
        on[max(b.start, 0): min(b.end, n)] = True
    assert not np.any(without & ~on)
    diff = out[:n] != out_off[:n]
    assert diff.any()
    assert not np.any(diff & ~_region(m, n, Masker()._fade))


@pytest.mark.parametrize("chunks", [1, 160, "random"])
def test_burst_spans_are_the_same_for_any_chunking_and_backend(chunks):
    """Four presses: the burst opens when the second closes; output and spans equal numpy's 160-sample run for
    1-sample, 160-sample and random chunkings, on every backend."""
    x, _ = _keys("4111", gap_ms=250.0)
    sizes = 1 if chunks == 1 else 160 if chunks == 160 else \
        [int(c) for c in np.random.default_rng(5).integers(1, 400, size=64)]
    ref, m_ref = with_backend("numpy", lambda: _chunked(x, 160))
    assert m_ref.bursts == 1 and len(m_ref.burst_spans) == 1
    for backend in goertzel.available_backends():
        got, m = with_backend(backend, lambda: _chunked(x, sizes))
        assert np.array_equal(got, ref), backend
        assert m.burst_spans == m_ref.burst_spans and m.masked_spans == m_ref.masked_spans, backend


def test_burst_opens_after_the_nth_press_and_holds_after_the_last():
    """Fewer presses than ``keypad_burst_presses`` open nothing; that many within the window open a burst from the
    first sample not yet emitted when the last one's mask closes (under its flat mask: its tail); one press more holds
    it on to the hold after it.  As many presses farther apart than the window open nothing."""
    n = P.keypad_burst_presses
    few, _ = _keys("123456789"[: n - 1])
    _, m = mask(few)
    assert m.bursts == 0 and m.burst_spans == []
    x, starts = _keys("123456789"[: n + 1], gap_ms=300.0)
    _, m = mask(x)
    assert m.bursts == 1
    (b,) = m.burst_spans
    # each press's flat mask (the one holding its onset)
    flat = [next(s for s in m.masked_spans if s.start <= k < s.end) for k in starts]
    # opened inside the n-th press's flat mask, after the one before it, and held to the hold after the last's close
    assert flat[n - 1].start < b.start < flat[n - 1].end and b.start > flat[n - 2].end
    hold = int(P.keypad_burst_hold_ms * 8)
    assert flat[n].start < b.end - hold < flat[n].end
    far, _ = _keys("123456789"[:n], gap_ms=P.keypad_burst_window_ms + 500.0)
    _, m = mask(far)
    assert m.bursts == 0


def _card_pause_code(card: str, pause_s: float = 10.0):
    """``card`` keyed, ``pause_s`` of silence, then a 3-key security code: (int16, the code's press starts)."""
    a, _ = _keys(card)
    b, starts = _keys("123")
    gap = np.zeros(int(pause_s * 8000), dtype=np.int16)
    return np.concatenate([a, gap, b]), [a.size + gap.size + k for k in starts]


def test_a_card_length_run_keeps_the_burst_on_for_the_security_code():
    """``keypad_burst_linger_*``: once a burst has counted ``keypad_burst_linger_presses`` presses, each later press
    holds it ``keypad_burst_linger_ms``, so a security code keyed after the agent's next question (here 5 s past the
    hold) starts inside the band notch; one press fewer, or the rule off, and the burst closed ``keypad_burst_hold_ms``
    after the card, so the code's first keys began outside any burst (they opened a second one)."""
    n = P.keypad_burst_linger_presses
    assert n is not None and n <= 16 and P.keypad_burst_linger_ms >= P.keypad_burst_hold_ms + 10000.0
    pause_s = P.keypad_burst_hold_ms / 1000.0 + 5.0  # (past the hold: only the linger reaches the code)
    x, code = _card_pause_code("4111111111111111"[:n], pause_s)
    _, m = mask(x)
    (b,) = m.burst_spans
    assert m.bursts == 1 and all(b.start < k < b.end for k in code)
    linger = int(P.keypad_burst_linger_ms * 8)
    assert abs((b.end - linger) - max(s.end for s in m.masked_spans)) <= 8 * 20  # (held from the last close)
    for params in (_off(keypad_burst_linger_presses=None), P):
        short = x if params is not P else _card_pause_code("4111111111111111"[: n - 1], pause_s)[0]
        _, m = mask(short, params)
        first = m.burst_spans[0]
        assert first.end < code[0] and not any(s.start <= code[0] < s.end for s in m.burst_spans), params
    with pytest.raises(ValueError, match="keypad_burst_linger"):
        Masker(params=_off(keypad_burst_linger_ms=0.0))


@pytest.mark.parametrize("chunks", [1, 7, 160, [13, 401, 2]])
def test_the_lingering_burst_is_the_same_for_any_chunking_and_backend(chunks):
    x, _ = _card_pause_code("4111111111111111", pause_s=4.0)
    ref, m_ref = with_backend("numpy", lambda: _chunked(x, 160))
    assert m_ref.bursts == 1
    for backend in goertzel.available_backends():
        got, m = with_backend(backend, lambda: _chunked(x, chunks))
        assert np.array_equal(got, ref) and [(s.start, s.end) for s in m.burst_spans] == \
            [(s.start, s.end) for s in m_ref.burst_spans], backend


def test_one_key_repeated_opens_no_burst_until_another():
    """The same pair again and again (a melody's repeated note looks so: ``keypad_burst_pairs``) opens nothing; the
    first press of another key within the window opens the burst (``keypad_burst_presses`` 2 or more)."""
    x, _ = _keys("2222", gap_ms=300.0)
    _, m = mask(x)
    assert len(m.masked_spans) == 4 and m.bursts == 0
    x, _ = _keys("22229", gap_ms=300.0)
    _, m = mask(x)
    flat = m.masked_spans
    assert m.bursts == 1 and flat[4].start < m.burst_spans[0].start < flat[4].end


def test_burst_off_switch_gives_the_masker_without_it():
    """``keypad_burst_presses=None``: no burst span.  The burst's band notch alone (``keypad_burst_profile`` off)
    changes no decision (they are taken on the input): the same flat masks and notches as with the rule off, and the
    output differs only inside the burst span; the profile's rules there (``keypad_burst_profile``) add flat masks."""
    x, _ = _keys("4111", gap_ms=250.0)
    x = (x + np.round(np.random.default_rng(3).normal(0.0, 30.0, x.size))).astype(np.int16)  # (a line's noise)
    off, m_off = mask(x, _off(**_OFF))
    notch, m_notch = mask(x, _off(keypad_burst_profile=False))
    _, m_on = mask(x, _off(keypad_burst_profile=True))
    assert m_off.burst_spans == [] and m_off.bursts == 0
    assert m_notch.masked_spans == m_off.masked_spans and m_notch.notched_spans == m_off.notched_spans
    (b,) = m_notch.burst_spans
    diff = np.flatnonzero(notch != off)
    assert diff.size and b.start <= diff.min() and diff.max() < b.end
    assert m_on.burst_spans == m_notch.burst_spans and len(m_on.masked_spans) > len(m_off.masked_spans)


def test_burst_at_16_khz():
    """Wideband input: two presses open a burst there too (the notch blocks follow the rate)."""
    x, _ = _keys("4111", rate=16000, gap_ms=250.0)
    m = Masker(rate=16000)
    out = np.concatenate([m.process(x[i: i + 320]) for i in range(0, x.size, 320)] + [m.flush()])
    assert m.errors == 0 and m.bursts == 1 and out.size == x.size + m.delay_samples


def test_key_free_speech_opens_no_burst():
    """Two minutes of English speech (no key): no burst, and at most one flat mask to count."""
    sp = need_speech(speech(120.0, seed=31), "key-free speech")
    x = np.clip(np.round(sp), -32768, 32767).astype(np.int16)
    _, m = mask(x)
    assert m.bursts == 0 and m.burst_spans == [] and m.errors == 0


def test_burst_on_the_benchmark_cell_acts_alike_on_every_backend():
    """The cell's burst (speech under every key): numpy at 1000-sample chunks and C at 7, 160 and 1000 give numpy's
    160-sample output, flat masks, notches and burst spans included."""
    from dtmfguard.dsp import masker as masker_mod

    x = bench_scenario(*_CELL[:2], **_CELL[2])[0]
    ref, m_ref = with_backend("numpy", lambda: mask(x, chunk=160))
    assert m_ref.bursts >= 1
    runs = [("numpy", 1000)]
    if masker_mod._masker_native is not None:
        runs += [("native", c) for c in (7, 160, 1000)]
    for backend, chunk in runs:
        got, m = with_backend(backend, lambda c=chunk: mask(x, chunk=c))
        assert np.array_equal(got, ref), (backend, chunk)
        assert (m.masked_spans, m.notched_spans, m.burst_spans) == \
            (m_ref.masked_spans, m_ref.notched_spans, m_ref.burst_spans), (backend, chunk)


def test_a_pause_mid_card_shorter_than_the_hold_keeps_the_burst_on():
    """``keypad_burst_hold_ms`` (20 s): six keys, a pause of 15 s, the rest of the card: one burst from the third
    key's close over the rest (with the old 3 s hold the rest began outside it, and its first keys were the first
    keys of a new sequence)."""
    x, rest = _card_pause_code("411111", pause_s=15.0)
    _, m = mask(x)
    assert m.bursts == 1 and all(b.start < rest[0] < b.end for b in m.burst_spans)
    _, m3 = mask(x, _off(keypad_burst_hold_ms=3000.0))
    assert not any(b.start <= rest[0] < b.end for b in m3.burst_spans)
