# SPDX-License-Identifier: GPL-2.0-or-later
"""The adversarial decoder must be strong, or the masker's zero-leak proof proves nothing."""
from __future__ import annotations

import numpy as np
import pytest

from dtmfguard.testkit import adversary as A
from dtmfguard.dsp import g711, levels
from dtmfguard.testkit import synth

from _corpus_util import condition_needs_speech, need_speech, speech

SPEECH = speech(60.0, seed=1)  # None without asterisk-core-sounds-en-wav: the speech conditions skip


@pytest.mark.parametrize("level", [0.0, -15.0, -30.0])
def test_names_every_key(level):
    x, spans = synth.keypresses(A.PAIR_KEYS, tone_ms=45, gap_ms=45, level_dbm0=level,
                                rng=np.random.default_rng(3))
    found = A.recover_digits(x)
    assert "".join(d for d, _ in found) == A.PAIR_KEYS
    for (_, start), span in zip(found, spans):
        # a 16 ms window over silence and the onset already names the key
        assert span.start - 128 <= start <= span.start + 8


@pytest.mark.parametrize("with_speech", [False, True], ids=["without-speech", "with-speech"])
def test_recovers_nearly_all_unmasked_presses_in_every_condition(with_speech):
    if with_speech:
        need_speech(SPEECH, "the speech conditions")
    rng = np.random.default_rng(11)
    total = recovered = 0
    for name, cond in A.CONDITIONS.items():
        if condition_needs_speech(cond) != with_speech:
            continue
        x, spans = A.press_scenario(rng, 30, speech=SPEECH, **cond)
        got = A.count_recovered(x, spans)
        print(f"{name:22s} unmasked: {got}/{len(spans)} recovered")
        assert got >= 0.95 * len(spans), name
        total += len(spans)
        recovered += got
    assert recovered >= 0.98 * total


def test_few_ms_of_leaked_tone_are_enough():
    """Why the masker must start at the first sample: a 4 ms leak already names most digits."""
    rng = np.random.default_rng(5)
    x, spans = A.press_scenario(rng, 60, level_dbm0=-10.0, ulaw=True)
    cover = levels.tone(400.0, x.size / 8000.0, level_dbm0=-20.0)
    for leak_ms, low, high in [(1, 0.0, 0.05), (4, 0.5, 1.0), (10, 0.9, 1.0)]:
        y = cover.copy()
        for s in spans:
            n = leak_ms * 8
            y[s.start: s.start + n] = x[s.start: s.start + n]
        y = g711.ulaw_decode(g711.ulaw_encode(y))
        share = A.count_recovered(y, spans) / len(spans)
        print(f"leak {leak_ms} ms: {share:.0%} recovered")
        assert low <= share <= high


@pytest.mark.parametrize("hz", [350.0, 400.0, 500.0, 2000.0])
def test_single_tone_is_not_a_key(hz):
    assert A.recover_digits(levels.tone(hz, 2.0, level_dbm0=-10.0)) == []


def test_silence_and_noise_name_nothing_useful():
    assert A.recover_digits(np.zeros(8000)) == []
    noise = synth.white_noise(80000, 300.0, np.random.default_rng(1))
    assert len(A.recover_digits(noise)) < 5


def test_score_one_answer_per_press_and_offset():
    spans = [("1", 100, 500), ("2", 900, 1300), ("3", 1700, 2100)]
    dets = [A.Detection("1", 120, 480, 50), A.Detection("5", 920, 1000, 3), A.Detection("2", 1000, 1290, 40),
            A.Detection("9", 1710, 2000, 30)]
    assert A.answers(dets, spans) == ["1", "2", "9"]
    assert A.score(dets, spans) == 2
    shifted = [A.Detection(d.digit, d.start + 128, d.end + 128, d.support) for d in dets]
    assert A.score(shifted, spans, offset=128) == 2
    assert A.score([], spans) == 0


def test_detection_repr_hides_digit():
    d = A.Detection("7", 0, 10, 1)
    assert "7" not in repr(d).replace("start=0", "").replace("end=10", "")
    assert "hidden" in str(d)


def test_chance_bound():
    assert A.chance_bound(16) <= 7
    assert 25 <= A.chance_bound(400) <= 45
    assert A.chance_bound(400) >= 400 * A.CHANCE
    assert A.chance_bound(400, p=1 / 12) > A.chance_bound(400)


def test_oracle_chooses_among_the_keys_given():
    """An oracle told the keypad's 12 keys never answers A-D, and still names clean keys."""
    x = np.concatenate([np.zeros(400), synth.dtmf_tone("C", 80, 8000, -10.0, 0.0), np.zeros(400),
                        synth.dtmf_tone("5", 80, 8000, -10.0, 0.0), np.zeros(400)])
    spans = [("C", 400, 1040), ("5", 1440, 2080)]
    assert A.oracle_answers(x, spans) == ["C", "5"]
    got = A.oracle_answers(x, spans, keys=A.KEYPAD_KEYS)
    assert got[1] == "5" and got[0] in A.KEYPAD_KEYS
    assert A.oracle_score(x, spans, keys=A.KEYPAD_KEYS) == 1


def test_guess_chance_is_the_chance_of_these_presses():
    """A constant guesser's chance is the share of presses of its key, not 1/16; a uniform one's is n/16."""
    truth = list("AAAA1234")
    chance, bound = A.guess_chance(["A"] * 8, truth)
    assert chance == pytest.approx(4.0) and bound == pytest.approx(4.0)  # certain: it names exactly the four A
    uniform = list(A.PAIR_KEYS) * 4
    chance, bound = A.guess_chance(uniform, uniform[::-1])
    assert chance == pytest.approx(64 / 16) and bound > chance
    assert A.guess_chance([], []) == (0.0, 0.0)
    # the pool sets the frequencies: a guesser answering "1" half the time and "2" the other half
    assert A.guess_chance(["1"], ["1", "2", "3"], pool=["1", "2"])[0] == pytest.approx(1.0)


def test_the_scenario_takes_int16_speech_as_float_speech():
    """Speech given as int16 (a recording's samples) gives the same scenario as the same speech in float64."""
    speech = (np.random.default_rng(3).standard_normal(8000 * 20) * 2000).astype(np.int16)
    for cond in ({"speech_under_db": -3.0}, {"speech_around": True}, {"voice_mid_press_db": 0.0}):
        a, sa = A.press_scenario(np.random.default_rng(9), 4, speech=speech, **cond)
        b, sb = A.press_scenario(np.random.default_rng(9), 4, speech=speech.astype(np.float64), **cond)
        assert np.array_equal(a, b) and sa == sb, cond
