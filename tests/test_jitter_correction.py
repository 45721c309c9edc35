# SPDX-License-Identifier: GPL-2.0-or-later
"""In-band key durations back on the sender's timeline: :class:`dtmfguard.media.keyrelay.JitterLog`.

The guard measures an in-band key on the audio its jitter buffer hands over; a concealment frame inserted
on an empty read lengthens a key by one frame, a lost packet concealed inside a key shortens what the
detector takes for the tone.  These tests feed the counters as the SIP layer polls them (frames processed,
empty reads, lost packets) and check the correction a key gets, including the cases that must get none.
"""
from __future__ import annotations

import numpy as np

from dtmfguard.media.keyrelay import JitterLog, KeyRelay
from dtmfguard.events import DigitEvent

F = 160  # samples per 20 ms frame at 8 kHz


def _log(*polls):
    jl = JitterLog(8000)
    for frames, empty, lost in polls:
        jl.note(frames, empty, lost)
    return jl


def test_an_empty_read_inside_a_key_takes_one_frame_off():
    jl = _log((100, 0, 0), (101, 0, 0), (102, 1, 0), (103, 1, 0))  # the empty read: frames 101..103
    assert jl.correction_ms(95 * F, 110 * F) == -20


def test_two_empty_reads_and_a_lost_packet_add_up():
    jl = _log((100, 0, 0), (101, 2, 0), (110, 2, 0), (111, 2, 1))
    assert jl.correction_ms(95 * F, 120 * F) == -40 + 20


def test_a_change_outside_the_key_or_straddling_its_edge_is_not_counted():
    jl = _log((100, 0, 0), (101, 1, 0))  # window frames 100..102
    assert jl.correction_ms(110 * F, 120 * F) == 0  # after it
    assert jl.correction_ms(90 * F, 99 * F) == 0  # before it
    assert jl.correction_ms(101 * F, 120 * F) == 0  # the window reaches before the key's first frame
    jl = _log((100, 0, 0), (110, 1, 0))  # a late poll: the event is somewhere in frames 100..111
    assert jl.correction_ms(105 * F, 130 * F) == 0


def test_a_new_stream_restarts_the_counters_without_a_correction():
    jl = _log((100, 5, 3), (200, 0, 0), (201, 0, 0))  # re-INVITE: the stream's counters start from 0
    assert jl.correction_ms(0, 300 * F) == 0 and not jl.windows


def test_unknown_spans_get_nothing():
    jl = _log((100, 0, 0), (101, 1, 0))
    assert jl.correction_ms(-1, -1) == 0 and jl.correction_ms(50, 50) == 0


def test_relayed_keys_carry_their_span():
    relay = KeyRelay(8000)
    key = relay.offer(DigitEvent("5", 8000, 8960, 8000, 0.0, "inband"), secure=False)
    assert (key.start, key.end, key.duration_ms) == (8000, 8960, 120)
    assert "5" not in repr(key)


def test_the_window_is_kept_bounded():
    jl = JitterLog(8000, keep=8)
    for i in range(100):
        jl.note(i * 2, i, 0)
    assert len(jl.windows) == 8
    assert np.all([w[2] == 1 for w in jl.windows])
