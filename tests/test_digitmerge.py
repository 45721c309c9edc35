# SPDX-License-Identifier: GPL-2.0-or-later
"""One digit stream: a key sent in-band and as an event counts once."""
from __future__ import annotations

from dtmfguard.signalling.digitmerge import DigitMerger
from dtmfguard.events import DigitEvent


def ev(d, start_ms, end_ms, source):
    return DigitEvent(d, start_ms * 8, end_ms * 8, 8000, source=source)


def test_same_key_both_paths_counts_once_either_order():
    for first, second in (("inband", "rfc4733"), ("rfc4733", "inband"), ("sip-info", "inband")):
        m = DigitMerger()
        assert m.feed(ev("5", 100, 170, first)) != []
        assert m.feed(ev("5", 110, 190, second)) == []
        assert m.merged == 1


def test_tolerance_for_path_skew():
    m = DigitMerger(tolerance_ms=60)
    m.feed(ev("1", 100, 170, "inband"))
    assert m.feed(ev("1", 220, 290, "rfc4733")) == []  # 50 ms apart: the same press seen late
    assert m.feed(ev("1", 400, 470, "rfc4733")) != []  # a later press


def test_different_keys_and_same_path_never_merge():
    m = DigitMerger()
    assert m.feed(ev("1", 100, 170, "inband"))
    assert m.feed(ev("2", 100, 170, "rfc4733"))  # different key
    assert m.feed(ev("3", 300, 370, "inband"))
    assert m.feed(ev("3", 380, 450, "inband"))  # same path, back-to-back presses: two digits


def test_one_duplicate_per_path():
    # a long in-band tone overlaps two RFC 4733 presses of the same key: only the first is its twin
    m = DigitMerger()
    m.feed(ev("8", 0, 300, "inband"))
    assert m.feed(ev("8", 0, 100, "rfc4733")) == []
    assert m.feed(ev("8", 200, 300, "rfc4733")) != []


def test_start_notifications_are_not_passed():
    m = DigitMerger()
    assert m.feed(DigitEvent("4", 0, None)) == []


def test_card_number_sent_twice_yields_it_once():
    pan = "4111111111111111"
    m = DigitMerger()
    out = []
    for i, d in enumerate(pan):
        t = 200 * i
        out += m.feed(ev(d, t, t + 80, "inband"))
        out += m.feed(ev(d, t + 5, t + 85, "rfc4733"))
    assert "".join(e.digit for e in out) == pan


def test_mixed_rates():
    m = DigitMerger(rate=8000)
    m.feed(DigitEvent("6", 1600, 2400, 16000, source="inband"))  # 100-150 ms
    assert m.feed(ev("6", 100, 150, "rfc4733")) == []
