# SPDX-License-Identifier: GPL-2.0-or-later
"""The pair hold (``MaskerParams.pair_hold_*``, issue 12, helper h16a): a long key press under louder speech is
notched as a string of short suspects of its pair (the speech breaks the tone up), and between two of them the masker
kept each short window naming the pair pending for its verification, which the speech around it declined: the attacker
named the key in such a hole.  A chain of suspects of one keypad-like pair (each beginning within
``pair_hold_gap_ms`` of the last hop that named the one before, two at least, spanning ``pair_hold_chain_ms``) holds
its pair ``pair_hold_ms`` after its last named hop: a short window naming it then is a suspect at once (notched from
its start), as the 16 ms window's would be.  All of it is decided from what was already seen.

The tests show the rule necessary (two benchmark cells name a long press blind in such a hole without it, not with
it), that numpy and C decide the same samples at any chunking, and that its cost on key-free speech is bounded."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _corpus_util import need_speech, speech
from _masker_util import bench_scenario, case_acts_alike, mask, named_presses, with_and_without

from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS as P
from dtmfguard.testkit import adversary as A

_OFF = {"pair_hold_ms": None}
# (speech seed, the benchmark's cell index, its condition, the rule switched off) of ``benchmarks/masker.py --payment``
# cells (3 dB under speech, freq -2 %) traced while the rule took shape: 2357 press 1 (key *, 250 ms: notched at
# 32-41, 51-81 and 91-99 ms, named blind at 200-204 ms) and tune seed 3047 press 10 (key *, 429 ms: notched at 0-26
# ms, named blind at 36-40 ms, before the next suspect and the flat mask)
HELD = (2357, 18, {"speech_under_db": -3.0, "freq_error": -0.02}, _OFF)
HELD_TUNE = (3047, 18, {"speech_under_db": -3.0, "freq_error": -0.02}, _OFF)



@pytest.mark.parametrize("case, press", [(HELD, 1), (HELD_TUNE, 10)])
def test_rule_hides_a_long_press_named_between_its_suspects(case, press):
    """Without the rule the attacker names the long press in a hole between its notches; with it, not (and names no
    press it did not name without the rule)."""
    seed, index, cond, off = case
    x, spans = bench_scenario(seed, index, **cond)
    # the keypad context (h16b) off in both arms: 3047's press 10 follows a press the masker confirmed
    base = dataclasses.replace(P, keypad_context_ms=None)
    without = named_presses(x, spans, dataclasses.replace(base, **off))
    with_rule = named_presses(x, spans, base)
    assert press in without
    assert press not in with_rule
    assert set(with_rule) <= set(without)


def test_held_pair_is_notched_where_the_attacker_named_it():
    """2357 press 1: the 4 ms the attacker named (200-204 ms into the press) lie in no notch without the rule, and
    inside one with it; the chain that held the pair was counted."""
    seed, index, cond, off = HELD
    x, spans = bench_scenario(seed, index, **cond)
    _, s, _ = A._span_fields(spans[1])
    a, b = s + 1600, s + 1632
    _, m_off = mask(x, dataclasses.replace(P, **off))
    _, m = mask(x)
    assert not any(n.start < b and n.end > a for n in m_off.notched_spans + m_off.masked_spans)
    # (most of it: since ``notch_tail_ms`` 0, helper h16c, a notch ends at the last hop naming its pair, 4 samples
    # before this window's end)
    covered = sum(max(0, min(n.end, b) - max(n.start, a)) for n in m.notched_spans)
    assert covered >= 0.75 * (b - a), m.notched_spans
    assert m.pair_holds >= 1 and m_off.pair_holds == 0


def test_rule_acts_alike_on_every_backend():
    """Where the rule acts, numpy at 1000-sample chunks and C at 7, 160 and 1000 give numpy's 160-sample output,
    flat masks and notches included (the chain is read at a suspect's natural close and a window naming a pair, hops
    the C frame always hands to the Python steps)."""
    case_acts_alike(HELD_TUNE)
    case_acts_alike(HELD)


def test_rule_refuses_bad_values():
    with pytest.raises(ValueError, match="pair_hold"):
        masker_mod.Masker(params=dataclasses.replace(P, pair_hold_ms=0.0))
    with pytest.raises(ValueError, match="pair_hold"):
        masker_mod.Masker(params=dataclasses.replace(P, pair_hold_gap_ms=-1.0))


def test_key_free_speech_cost_is_bounded():
    """Four minutes of English speech (no key): no flat mask more, and the samples changed grow by under 5 %."""
    sp = need_speech(speech(240.0, seed=47), "key-free speech")
    x = np.clip(np.round(sp), -32768, 32767).astype(np.int16)
    with_and_without(x, dataclasses.replace(P, **_OFF), "pair hold, key-free speech", changed_below=1.05)
