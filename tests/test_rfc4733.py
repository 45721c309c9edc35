# SPDX-License-Identifier: GPL-2.0-or-later
"""RFC 4733 telephone-event wire format and the one-event-per-press tracker."""
from __future__ import annotations

import pytest

from dtmfguard.signalling.rfc4733 import (
    MAX_SEGMENT_UNITS,
    Rfc4733Error,
    Rfc4733Tracker,
    TelephoneEvent,
    parse_payload,
    serialise_payload,
)


def test_payload_layout_matches_rfc4733_figure_1():
    # event 11 ('#'), E=1, R=0, volume 10, duration 800 (RFC 4733 §2.3)
    ev = parse_payload(bytes([11, 0x80 | 10, 0x03, 0x20]))
    assert (ev.event, ev.end, ev.volume, ev.duration) == (11, True, 10, 800)
    assert serialise_payload(ev) == bytes([11, 0x8A, 0x03, 0x20])


def test_reserved_bit_ignored_and_round_trip():
    ev = parse_payload(bytes([5, 0x40 | 7, 0, 160]))  # R bit set by a sloppy sender
    assert (ev.end, ev.volume) == (False, 7)
    for e in (TelephoneEvent(0, False, 0, 0), TelephoneEvent(255, True, 63, 0xFFFF)):
        assert parse_payload(serialise_payload(e)) == e


@pytest.mark.parametrize("data, message", [
    (b"", "must be 4 octets (RFC 4733 §2.3), got 0"),
    (b"\x01\x02\x03", "got 3"),
    (b"\x01\x02\x03\x04\x05", "got 5"),
])
def test_bad_payload_lengths(data, message):
    with pytest.raises(Rfc4733Error, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_payload(data)


def test_bad_payload_type_and_repr_hides_event():
    with pytest.raises(Rfc4733Error, match="payload must be bytes"):
        parse_payload("abcd")
    assert "7" not in repr(TelephoneEvent(7, False, 10, 320)).replace("duration=320", "")


def _press(tr, ts, code, n_updates=4, ends=3, ssrc=1, t0=0, step=160, volume=10):
    """Feed a typical press: first packet, updates every 20 ms, then `ends` end packets."""
    out = []
    now = t0
    for i in range(n_updates + 1):
        out += tr.packet(ssrc, ts, serialise_payload(TelephoneEvent(code, False, volume, i * step)), now)
        now += step
    dur = (n_updates + 1) * step
    for _ in range(ends):
        out += tr.packet(ssrc, ts, TelephoneEvent(code, True, volume, dur), now)
    return out, now


def test_one_start_and_one_complete_event_per_press_despite_triple_end():
    tr = Rfc4733Tracker()
    out, _now = _press(tr, ts=1000, code=5)
    assert [(e.digit, e.end is None) for e in out] == [("5", True), ("5", False)]
    start, done = out
    assert done.source == "rfc4733" and done.start == start.start == 0
    assert done.end == 5 * 160  # duration from the end packet, on the stream clock
    assert tr.stats["dropped"] == 2 and not tr.active


def test_late_duplicates_after_end_are_dropped():
    tr = Rfc4733Tracker()
    out, now = _press(tr, ts=1000, code=1)
    # a reordered update of the finished press arrives late
    assert tr.packet(1, 1000, TelephoneEvent(1, False, 10, 320), now + 10) == []
    assert len([e for e in out if e.complete]) == 1


def test_same_key_twice_is_two_presses():
    tr = Rfc4733Tracker()
    a, now = _press(tr, ts=1000, code=4)
    b, _ = _press(tr, ts=1000 + 2000, code=4, t0=now + 800)
    complete = [e for e in a + b if e.complete]
    assert [e.digit for e in complete] == ["4", "4"]
    assert complete[1].start > complete[0].end


def test_lost_end_is_closed_by_poll_once():
    tr = Rfc4733Tracker(lost_end_ms=200)
    out = []
    for i in range(3):
        out += tr.packet(7, 50, TelephoneEvent(9, False, 10, i * 160), i * 160)
    assert tr.active
    assert tr.poll(320 + 1599) == []  # 199.9 ms after the last packet: still sounding
    ended = tr.poll(320 + 1600)
    assert [e.digit for e in ended] == ["9"] and ended[0].end == ended[0].start + 320
    assert tr.poll(10_000) == [] and tr.stats["lost_end"] == 1
    # its end packets turning up later change nothing
    assert tr.packet(7, 50, TelephoneEvent(9, True, 10, 640), 10_001) == []


def test_lost_end_is_closed_by_the_next_press():
    tr = Rfc4733Tracker()
    out = tr.packet(1, 100, TelephoneEvent(2, False, 10, 0), 0)
    out += tr.packet(1, 100, TelephoneEvent(2, False, 10, 480), 480)
    out += tr.packet(1, 2000, TelephoneEvent(3, False, 10, 0), 2000)
    complete = [e.digit for e in out if e.complete]
    starts = [e.digit for e in out if not e.complete]
    assert complete == ["2"] and starts == ["2", "3"]


def test_timestamp_wrap():
    tr = Rfc4733Tracker()
    a, now = _press(tr, ts=0xFFFFFF00, code=6)
    b, _ = _press(tr, ts=0x00000100, code=7, t0=now + 400)  # after the wrap: a newer press
    assert [e.digit for e in a + b if e.complete] == ["6", "7"]
    # a stale first packet from before the wrap is not a new press
    assert tr.packet(1, 0xFFFFFE00, TelephoneEvent(8, False, 10, 0), now + 900) == []


def test_codes_above_15_are_not_keys():
    tr = Rfc4733Tracker()
    assert tr.packet(1, 10, TelephoneEvent(16, False, 10, 0), 0) == []  # flash
    assert tr.packet(1, 10, TelephoneEvent(32, True, 10, 800), 0) == []  # ANS (RFC 4734)
    assert tr.stats["non_key"] == 2 and not tr.active


def test_absurd_duration_is_clamped():
    tr = Rfc4733Tracker(max_event_ms=2000)
    out = tr.packet(1, 10, TelephoneEvent(0, True, 10, 0xFFFF), 100_000)
    (_start, done) = out
    assert done.end - done.start == 16_000 and done.start == 100_000 - 16_000
    assert tr.stats["clamped"] == 1


def test_zero_duration_end_still_one_sample_long():
    tr = Rfc4733Tracker()
    out = tr.packet(1, 10, TelephoneEvent(0, True, 10, 0), 500)
    assert out[-1].end == 501


def test_long_press_segments_join_into_one_digit():
    tr = Rfc4733Tracker(max_event_ms=20_000)
    out = tr.packet(3, 1000, TelephoneEvent(5, False, 10, 0), 0)
    out += tr.packet(3, 1000, TelephoneEvent(5, False, 10, MAX_SEGMENT_UNITS), MAX_SEGMENT_UNITS)
    # §2.5.1.3: next segment starts where the first reached its maximum duration
    seg2 = 1000 + MAX_SEGMENT_UNITS
    out += tr.packet(3, seg2, TelephoneEvent(5, False, 10, 160), MAX_SEGMENT_UNITS + 160)
    out += tr.packet(3, seg2, TelephoneEvent(5, True, 10, 800), MAX_SEGMENT_UNITS + 800)
    complete = [e for e in out if e.complete]
    assert len(complete) == 1 and len(out) == 2
    assert complete[0].end - complete[0].start == MAX_SEGMENT_UNITS + 800


def test_ssrc_distinguishes_streams():
    tr = Rfc4733Tracker()
    a, _ = _press(tr, ts=500, code=1, ssrc=1)
    b, _ = _press(tr, ts=500, code=1, ssrc=2, t0=2000)
    assert len([e for e in a + b if e.complete]) == 2


def test_decoded_key_reports():
    # a SIP stack that decodes the packets itself reports one press several times: first, updates, end x2
    tr = Rfc4733Tracker()
    out = tr.key("#", 4000, 0, end=False, now=8000)
    for i in range(1, 5):
        out += tr.key("#", 4000, i * 20, end=False, now=8000 + i * 160)
    out += tr.key("#", 4000, 100, end=True, now=8800)
    out += tr.key("#", 4000, 100, end=True, now=8800)
    assert [(e.digit, e.complete) for e in out] == [("#", False), ("#", True)]
    assert out[1].end - out[1].start == 800
    assert tr.key("x", 5000, 0, end=False, now=9000) == [] and tr.stats["non_key"] == 1


def test_pjsua2_flags_reach_the_pipeline_as_end():
    # pjsua2's onDtmfEvent flags (0, IS_UPDATE ..., IS_UPDATE|IS_END) are translated in sip/pj only
    from types import SimpleNamespace

    from dtmfguard.sip.pj.dtmf_cb import PJ_DTMF_IS_END, PJ_DTMF_IS_UPDATE, dtmf_event_ends, feed_rfc4733

    assert (PJ_DTMF_IS_UPDATE, PJ_DTMF_IS_END) == (1, 2)  # pjmedia/stream.h
    assert [dtmf_event_ends(f) for f in (0, PJ_DTMF_IS_UPDATE, PJ_DTMF_IS_END | PJ_DTMF_IS_UPDATE)] == \
        [False, False, True]
    tr = Rfc4733Tracker()
    out: list = []

    class Pipeline:
        def on_rfc4733(self, digit, timestamp, duration_ms, *, end):
            out.extend(tr.key(digit, timestamp, duration_ms, end=end, now=8000 + duration_ms * 8))

    for dur, flags in [(0, 0), (20, PJ_DTMF_IS_UPDATE), (40, PJ_DTMF_IS_UPDATE),
                       (60, PJ_DTMF_IS_UPDATE | PJ_DTMF_IS_END), (60, PJ_DTMF_IS_UPDATE | PJ_DTMF_IS_END)]:
        feed_rfc4733(Pipeline(), SimpleNamespace(digit="7", timestamp=4000, duration=dur, flags=flags))
    assert [(e.digit, e.complete) for e in out] == [("7", False), ("7", True)]
    assert out[1].end - out[1].start == 480


def test_rate_16k_stream_positions():
    tr = Rfc4733Tracker(rate=16000, event_rate=8000)
    out = tr.packet(1, 0, TelephoneEvent(1, True, 10, 800), 32000)
    assert out[-1].rate == 16000 and out[-1].end - out[-1].start == 1600
