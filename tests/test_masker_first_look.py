# SPDX-License-Identifier: GPL-2.0-or-later
"""First presses under louder speech that every verification declined (issue 12 family C, helper h19b): the
sequence's first press (no press confirmed before it, so no keypad context), its tones 3-6 dB under the speech, named
by the blind attacker from one 2 ms window that the screen named too and kept pending; every verification test
declined it at both looks, and no press was confirmed in time.

* ``verify_mid_since_fraction`` (seed 3571, "boundary -3 dB", press 0, named 9-11 ms into the key): at the last look
  (12 ms after the named window) the 16 ms window ending there still holds the speech before the key, but the window
  from the named window's start to that look carries the pair at nominal (0.22 of it) and matches the named window's
  fit: verified as the 16 ms window's share and coherence would;
* ``verify_mid_long_fraction`` (seed 3609, "boundary -6 dB", press 0, a 161 ms key named 39-41 ms in, never masked):
  at the last look, the 48 ms test (``verify_long_ms``: both tones one keypad oscillator, at most 0.5 % apart) with a
  share of 0.12 instead of 0.2: the 16 ms and 32 ms windows' spectrum peaks are the speech's partials, the 48 ms
  window's are the key's (0.46 % apart, share 0.16).

Each is shown necessary on the benchmark's own cell (named without it, not with it, nothing named that was not named
before), the rules only add treatment where they act, and both backends at any chunking give the same samples."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _corpus_util import need_speech, speech
from _masker_util import NO_BURST, bench_scenario, case_acts_alike, mask, named_presses

from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P

# (speech seed, the benchmark's cell index (boundary rows: 100 + i), its condition, the press named without the rule,
# the rule switched off)
_CASES = [
    (3571, 103, {"speech_under_db": -3.0}, 0, {"verify_mid_since_fraction": None}),
    (3609, 102, {"speech_under_db": -6.0}, 0, {"verify_mid_long_fraction": None}),
]
_IDS = [f"{c[0]}-{c[1]}" for c in _CASES]


@pytest.mark.parametrize("case", _CASES, ids=_IDS)
def test_rule_hides_a_first_press(case):
    """Without the rule the attacker names the cell's first press (with the keypad burst and context, and without
    them); with it he names it no more, and nothing he did not name before."""
    seed, index, cond, press, off = case
    x, spans = bench_scenario(seed, index, **cond)
    for base in ({}, NO_BURST):
        without = named_presses(x, spans, dataclasses.replace(P, **dict(base, **off)))
        assert press in without, (base, without)
        got = named_presses(x, spans, dataclasses.replace(P, **base))
        assert press not in got and set(got) <= set(without), (base, got, without)


@pytest.mark.parametrize("case", _CASES, ids=_IDS)
def test_rule_acts_alike(case):
    """Where the rule acts, numpy at 1000-sample chunks and C at 7, 160 and 1000 give numpy's 160-sample output (the
    verification is a Python step in both backends)."""
    seed, index, cond, _, off = case
    case_acts_alike((seed, index, cond, off))


@pytest.mark.parametrize("case", _CASES, ids=_IDS)
def test_rule_only_adds_treatment(case):
    """Each rule only verifies more windows: every sample treated without it is treated with it."""
    seed, index, cond, _, off = case
    x, _ = bench_scenario(seed, index, **cond)
    params = dataclasses.replace(P, keypad_context_ms=None)
    _, m_on = mask(x, params)
    _, m_off = mask(x, dataclasses.replace(params, **off))

    def treated(m):
        sel = np.zeros(x.size, dtype=bool)
        for s in list(m.masked_spans) + list(m.notched_spans):
            sel[max(s.start, 0): max(min(s.end, x.size), 0)] = True
        return sel

    on, without = treated(m_on), treated(m_off)
    assert not np.any(without & ~on) and np.any(on & ~without)


def test_rules_cost_little_on_key_free_speech():
    """Three minutes of English speech: no flat mask more, and fewer than 0.01 % of the samples changed more."""
    sp = need_speech(speech(180.0, seed=43), "key-free speech")
    x = np.clip(np.round(sp), -32768, 32767).astype(np.int16)
    out, m = mask(x)
    before, m_before = mask(x, dataclasses.replace(P, verify_mid_since_fraction=None, verify_mid_long_fraction=None))
    assert len(m.masked_spans) == len(m_before.masked_spans)
    assert int(np.sum(out != x)) - int(np.sum(before != x)) < 0.0001 * x.size


def test_bad_values():
    """``verify_mid_long_fraction`` or ``verify_mid_since_fraction`` outside (0, 1]: a one-line error; None: no such
    test."""
    assert Masker(params=dataclasses.replace(P, verify_mid_long_fraction=None))._mid_long is None
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="verify_mid_long_fraction"):
            Masker(params=dataclasses.replace(P, verify_mid_long_fraction=bad))
    assert Masker(params=dataclasses.replace(P, verify_mid_since_fraction=None))._mid_since is None
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="verify_mid_since"):
            Masker(params=dataclasses.replace(P, verify_mid_since_fraction=bad))
