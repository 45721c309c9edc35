# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP INFO DTMF bodies: application/dtmf-relay and application/dtmf."""
from __future__ import annotations

import pytest

from dtmfguard.signalling.sipinfo import (
    DEFAULT_DURATION_MS,
    MAX_DURATION_MS,
    SipInfoError,
    dtmf_relay_body,
    parse_dtmf,
    parse_dtmf_relay,
    parse_info,
)


@pytest.mark.parametrize("body, digit, ms", [
    ("Signal=5\r\nDuration=160\r\n", "5", 160),
    (b"Signal=5\r\nDuration=160", "5", 160),
    ("signal = #\nduration= 250\n", "#", 250),
    ("Signal=*\r\n", "*", DEFAULT_DURATION_MS),
    ("Signal=d\r\nDuration=100", "D", 100),
    ("Signal=11\r\nDuration=100", "#", 100),  # event code form
    ("Signal=1\r\nDuration=999999", "1", MAX_DURATION_MS),
    ("Signal=1\r\nDuration=0", "1", DEFAULT_DURATION_MS),
])
def test_dtmf_relay(body, digit, ms):
    info = parse_dtmf_relay(body)
    assert (info.digit, info.duration_ms) == (digit, ms)


@pytest.mark.parametrize("body, message", [
    ("", "no Signal field"),
    ("Duration=100", "no Signal field"),
    ("Signal=Z\r\n", "dtmf-relay Signal is not a DTMF key"),
    ("Signal=16", "dtmf-relay Signal is not a DTMF key"),
    ("Signal=55", "dtmf-relay Signal is not a DTMF key"),
    ("Signal=5\r\nDuration=abc", "Duration is not a whole number"),
    ("Signal=5\r\nDuration=-5", "Duration is not a whole number"),
    ("Signal 5", "line without '='"),
    ("Signal=5\r\nSignal=6", "repeats the field Signal"),
    (b"Signal=\xff", "not ASCII"),
    ("Signal=5\r\n" + "x" * 2000, "too long"),
    (None, "must be str or bytes"),
])
def test_dtmf_relay_garbage(body, message):
    with pytest.raises(SipInfoError, match=message) as info:
        parse_dtmf_relay(body)
    # the error never repeats the body (it is one card digit)
    assert "Signal=" not in str(info.value)


def test_application_dtmf():
    assert parse_dtmf("7").digit == "7"
    assert parse_dtmf(b" 10 \r\n").digit == "*"
    assert parse_dtmf("a").digit == "A"
    for bad, msg in (("", "empty"), ("77", "not a DTMF key"), ("x", "not a DTMF key")):
        with pytest.raises(SipInfoError, match=msg):
            parse_dtmf(bad)


def test_dispatch_and_event():
    info = parse_info("Application/DTMF-Relay; charset=us-ascii", "Signal=3\r\nDuration=160")
    ev = info.to_event(start=8000, rate=8000)
    assert (ev.digit, ev.start, ev.end, ev.source) == ("3", 8000, 9280, "sip-info")
    assert parse_info("application/dtmf", "9").digit == "9"
    with pytest.raises(SipInfoError, match="not a DTMF INFO content type: text/plain"):
        parse_info("text/plain", "Signal=3")
    assert "3" not in repr(info).replace("duration_ms=160", "")


def test_body_round_trip():
    for d in "0123456789*#ABCD":
        assert parse_dtmf_relay(dtmf_relay_body(d, 120)).digit == d
