# SPDX-License-Identifier: GPL-2.0-or-later
"""The keypad burst and context count only keys a customer's keypad has (``MaskerParams.keypad_burst_keys``, issue 12,
sixteenth session), and a press once per flat mask: key-free audio whose fundamental and octave measure as a 1633 Hz
column pair (A-D, on no customer's keypad) opened a 60 s burst on slowed prompts.  A press of A-D is still masked
flat: the attacker names all 16 keys."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from _masker_util import mask
from dtmfguard.dsp import pairfit
from dtmfguard.dsp.keypad import KeypadMasker
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P
from dtmfguard.testkit import adversary as A
from dtmfguard.testkit.synth import dtmf_tone
from test_masker_burst import _keys

#: the masker's own presses alone: no strict receiver (:class:`Masker` runs none; the flag says so for the pipeline)
_OWN = dataclasses.replace(P, keypad_burst_receiver=False)


def _covered(m, starts, dur: int) -> bool:
    return all(any(s.start <= a and a + dur <= s.end for s in m.masked_spans) for a in starts)


def test_the_default_keys_are_a_customers_keypad():
    assert sorted(P.keypad_burst_keys) == sorted(pairfit.KEYPAD_KEYS) == sorted("0123456789*#")
    assert not set("ABCD") & set(P.keypad_burst_keys)


@pytest.mark.parametrize("digits, burst", [("ABCD", False), ("1A2B", False), ("123", True), ("1A2B3", True)])
def test_only_keypad_keys_open_a_burst_and_every_key_is_masked(digits, burst):
    """Three key-grade presses of two keys open a burst; A-D presses do not count towards it, and are masked flat
    like any other key."""
    x, starts = _keys(digits)
    out, m = mask(x, _OWN)
    assert (m.bursts >= 1) is burst, (digits, m.bursts)
    assert _covered(m, starts, 640), [(s.start, s.end) for s in m.masked_spans]
    assert m.errors == 0
    _, m_all = mask(x, dataclasses.replace(_OWN, keypad_burst_keys=None))
    assert m_all.bursts >= 1  # every sequence above is three presses of two keys or more: all 16 keys count


def test_a_d_opens_no_keypad_context():
    """The keypad context (``keypad_context_ms``) opens on a key-grade press of a keypad key, not of A-D."""
    _, m1 = mask(_keys("1")[0], _OWN)
    _, ma = mask(_keys("A")[0], _OWN)
    assert m1.contexts == 1 and ma.contexts == 0, (m1.contexts, ma.contexts)
    assert len(ma.masked_spans) == 1


def test_receiver_keys_of_a_d_open_no_burst():
    """The strict receiver confirms A-D as keys (Q.23 has 16); they open no burst, keypad keys do."""
    x_a, _ = _keys("A")
    _, m = mask(x_a, cls=KeypadMasker)
    assert m.receiver_starts == 1 and m.keys_not_keypad == 1 and m.bursts == 0 and m.keys_confirmed == 0
    x_1, _ = _keys("1")
    _, m = mask(x_1, cls=KeypadMasker)
    assert m.receiver_starts == 1 and m.keys_not_keypad == 0 and m.bursts == 1 and m.keys_confirmed == 1
    m = Masker()
    assert m.wants_keys
    assert not m.key_confirmed(0, "D") and m.bursts == 0
    assert m.key_confirmed(0, "#") and m.bursts == 1
    m = Masker(params=dataclasses.replace(P, keypad_burst_keys=None))
    assert m.key_confirmed(0, "D") and m.bursts == 1


def _fast_pair(first: str, second: str, gap_ms: float) -> np.ndarray:
    """Two 80 ms keys ``gap_ms`` apart: under Q.24's shortest pause, so one flat mask continues over both."""
    parts = [np.zeros(2400), dtmf_tone(first, 80, 8000, -10.0, 0.0), np.zeros(int(gap_ms * 8)),
             dtmf_tone(second, 80, 8000, -10.0, 0.0), np.zeros(2400)]
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)


def test_a_press_is_counted_once_per_flat_mask_and_pair(monkeypatch):
    """A pair closing again on the flat mask it continued is the same press; another pair on it is another press."""
    counted = []
    orig = Masker._burst_count

    def count(self, e, pair):
        counted.append(pairfit.PAIR_KEYS[pair])
        return orig(self, e, pair)

    monkeypatch.setattr(Masker, "_burst_count", count)
    x = _fast_pair("1", "5", 10.0)
    _, m = mask(x, _OWN)
    assert len(m.masked_spans) == 1 and counted == ["1", "5"], (m.masked_spans, counted)
    # the same pair twice on one mask (what the masker does when a press of it reopens walked back onto the mask's
    # tail, :meth:`Masker._open_press`), driven directly: its second close is not counted, another pair's is
    counted.clear()
    m = Masker(params=_OWN)
    m._active, m._burst_keypad = object(), True
    one, five = pairfit.PAIR_KEYS.index("1"), pairfit.PAIR_KEYS.index("5")
    m._burst_press(1000, 0, one)
    m._burst_press(1200, 0, one)
    m._burst_press(1400, 0, five)
    assert counted == ["1", "5"], counted
    m._active = object()  # a new mask: the same pair counts again
    m._burst_press(4000, 3600, five)
    assert counted == ["1", "5", "5"] and m.bursts == 1, (counted, m.bursts)


def test_bad_keys_are_refused():
    for bad in ("", "XYZ", "12E", 12):
        with pytest.raises(ValueError, match="keypad_burst_keys"):
            Masker(params=dataclasses.replace(P, keypad_burst_keys=bad))


def test_the_scenario_draws_from_the_keys_given():
    rng = np.random.default_rng(5)
    _, spans = A.press_scenario(rng, 60, keys=A.KEYPAD_KEYS)
    assert {A._span_fields(s)[0] for s in spans} <= set(A.KEYPAD_KEYS)
    with pytest.raises(ValueError, match="keys"):
        A.press_scenario(rng, 3, keys="1X")
