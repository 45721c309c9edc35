# SPDX-License-Identifier: GPL-2.0-or-later
"""The speech check the call tests use (dtmfguard.testkit.audio_match): it must pass the customer's speech heard
through jitter buffers that slipped (a frame inserted, dropped or concealed), and fail silence, the mask,
other speech and speech heard only in part.  Simulated here on a real prompt through two G.711 codings."""
from __future__ import annotations

import numpy as np
import pytest

from dtmfguard.dsp.audio import read_audio
from dtmfguard.dsp.g711 import ulaw_decode, ulaw_encode

from dtmfguard.testkit.audio_match import piece_scores, speech_match
from _corpus_util import prompt

F = 160  # one 20 ms frame
BOUND = 0.6  # what the call tests assert


def _heard(x):
    """Two G.711 codings (customer leg, agent leg), as in every call test."""
    y = ulaw_decode(ulaw_encode(x))
    return ulaw_decode(ulaw_encode(y)).astype(np.float64)


def _single_window(recording, ref):
    """The previous check: one normalised correlation of the whole reference at the peak lag."""
    lag, _ = piece_scores(recording, ref)
    seg = recording[lag: lag + ref.size]
    return float(np.dot(seg, ref) / np.sqrt(np.dot(seg, seg) * np.dot(ref, ref) + 1e-9))


@pytest.fixture(scope="module")
def speech():
    x, rate = read_audio(prompt("agent-pass.wav"))
    assert rate == 8000
    return x.astype(np.float64)


def _in_call(x, lead=3000, tail=4000):
    return np.concatenate([np.zeros(lead), _heard(x), np.zeros(tail)])


def _slipped(x, at, kind):
    """What a jitter buffer does at sample ``at``: inserts a frame (concealment: the last frame at half level),
    drops one, or conceals a lost one (the sender's frame replaced by silence)."""
    if kind == "insert":
        return np.concatenate([x[:at], x[at - F:at] / 2, x[at:]])
    if kind == "drop":
        return np.concatenate([x[:at], x[at + F:]])
    return np.concatenate([x[:at], np.zeros(F), x[at + F:]])


def test_speech_heard_cleanly_scores_high(speech):
    rec = _in_call(speech)
    similarity, lag = speech_match(rec, speech)
    assert lag == 3000 and similarity > 0.95, similarity


@pytest.mark.parametrize("kind", ["insert", "drop", "lost"])
def test_jitter_buffer_slips_keep_the_speech_heard(speech, kind):
    # two events a second apart (on loaded runs: up to a few per call), one of them in the middle
    rec = _in_call(speech)
    for at in (3000 + speech.size // 2, 3000 + speech.size // 2 + 8000):
        rec = _slipped(rec, at, kind)
    similarity, _ = speech_match(rec, speech)
    assert similarity > 0.85, similarity
    if kind != "lost":  # what the single-window check made of the shifted audio: the flake this replaces
        assert _single_window(rec, speech) < similarity - 0.2


def test_a_slow_drift_is_followed(speech):
    """Frames inserted one after another over the prompt (a buffer that keeps running empty): 200 ms in all,
    more than the search around the prompt's alignment (loaded runs showed 80 ms within one call)."""
    rec = _in_call(speech)
    for k in range(10):
        rec = _slipped(rec, 3000 + (k + 1) * speech.size // 11 + k * F, "insert")
    assert speech_match(rec, speech)[0] > 0.8


@pytest.mark.parametrize("what", ["silence", "tone", "noise", "other speech"])
def test_what_is_not_the_speech_scores_low(speech, what):
    rng = np.random.default_rng(3)
    n = speech.size + 7000
    t = np.arange(n) / 8000
    rec = {"silence": np.zeros(n) + rng.normal(0, 2, n),  # an idle line: G.711's smallest steps
           "tone": 3000 * np.sin(2 * np.pi * 1100 * t),  # a flat mask
           "noise": rng.normal(0, 2000, n),
           "other speech": None}[what]
    if rec is None:
        other, _ = read_audio(prompt("auth-thankyou.wav"))
        rec = np.resize(_heard(other.astype(np.float64)), n)  # a different prompt, repeated
    similarity, _ = speech_match(rec, speech)
    assert similarity < 0.35, similarity


@pytest.mark.parametrize("heard", [0.0, 0.5])
def test_speech_heard_in_part_fails(speech, heard):
    """The agent hears only the first part of the prompt (the rest silent or masked): below the bound."""
    rec = _in_call(speech)
    cut = 3000 + int(heard * speech.size)
    rec[cut:] = np.random.default_rng(1).normal(0, 2, rec.size - cut)
    similarity, _ = speech_match(rec, speech)
    assert similarity < BOUND - 0.05, similarity
