# SPDX-License-Identifier: GPL-2.0-or-later
"""PaymentSession: '#' and '*', auto-finish by length, inter-digit and field timeouts, attempts,
outcome states, a non-blocking feed, and failing closed when callbacks, gateways or validators break."""
from __future__ import annotations

import json
import logging
import threading

import pytest
from _capture_util import TODAY, FakeClock, key_events, load_sample, type_keys

from dtmfguard.capture import FieldSpec, GatewayError, GatewayResult, PaymentSession
from dtmfguard.capture.gateways import Gateway

PAN = "4111111111111111"
plugin = load_sample("gateway_plugin")


def new_session(gateway=None, clock=None, **kwargs):
    kwargs.setdefault("today", lambda: TODAY)
    return PaymentSession(gateway or plugin.TestCardGateway(), clock=clock or FakeClock(), **kwargs)


def of_type(session, kind):
    return [e for e in session.events if e["type"] == kind]


def test_default_fields_complete_and_feed_shows_progress_only():
    gateway = plugin.TestCardGateway()
    session = new_session(gateway, amount=1999, call_id="c1", agent_id="a1")
    type_keys(session, PAN + "#" + "1139" + "847")
    assert session.wait(5)
    assert session.state == "completed" and gateway.charges == 1
    assert [e["field"] for e in of_type(session, "field_started")] == ["card_number", "expiry", "security_code"]
    progress = [e["digits"] for e in of_type(session, "field_progress") if e["field"] == "card_number"]
    assert progress == list(range(1, 17))
    complete = of_type(session, "field_complete")
    assert complete[0]["brand"] == "visa" and complete[0]["last4"] == "1111" and complete[0]["finished_by"] == "#"
    assert [c["finished_by"] for c in complete[1:]] == ["length", "length"]  # expiry 4, Visa code 3
    result = of_type(session, "gateway_result")[0]
    assert result["status"] == "approved" and result["authorisation"]
    assert of_type(session, "session_ended")[0]["outcome"] == "completed"
    assert [e["seq"] for e in session.events] == list(range(len(session.events)))
    text = json.dumps(session.events)
    assert PAN not in text and "411111" not in text and "1139" not in text and "847" not in text


def test_star_clears_the_field_without_costing_an_attempt():
    session = new_session()
    type_keys(session, "41111111*")
    assert of_type(session, "field_cleared")[0]["field"] == "card_number"
    type_keys(session, PAN + "#1139847")
    assert session.wait(5) and session.state == "completed"
    started = of_type(session, "field_started")
    assert [e["attempt"] for e in started if e["field"] == "card_number"] == [1]
    # progress restarts from 1 after the clear
    counts = [e["digits"] for e in of_type(session, "field_progress") if e["field"] == "card_number"]
    assert counts[:9] == [1, 2, 3, 4, 5, 6, 7, 8, 1]


def test_star_in_a_later_field_clears_only_that_field():
    session = new_session()
    type_keys(session, PAN + "#11*1139" + "84*847")
    assert session.wait(5) and session.state == "completed"
    assert [e["field"] for e in of_type(session, "field_cleared")] == ["expiry", "security_code"]


def test_lone_hash_is_ignored_on_a_required_field():
    session = new_session()
    type_keys(session, "#" + PAN + "#1139#847")  # '#' after the expiry finished itself: no penalty
    assert session.wait(5) and session.state == "completed"
    assert all(e["valid"] for e in of_type(session, "field_complete"))


def test_invalid_entry_costs_an_attempt_then_succeeds():
    session = new_session()
    type_keys(session, "4111111111111112#")
    bad = of_type(session, "field_complete")[0]
    assert bad["valid"] is False and "Luhn" in bad["reason"] and "brand" not in bad and "last4" not in bad
    assert of_type(session, "field_started")[-1]["attempt"] == 2
    type_keys(session, PAN + "#1139847")
    assert session.wait(5) and session.state == "completed"


def test_attempts_exhausted_fails_validation_and_nothing_is_sent():
    gateway = plugin.TestCardGateway()
    session = new_session(gateway, max_attempts=2)
    type_keys(session, PAN + "#1025")  # expired (today is 2026-11-23)
    type_keys(session, "1325")         # month 13
    assert session.wait(5)
    assert session.state == "failed_validation" and gateway.charges == 0
    assert [e["reason"] for e in of_type(session, "field_complete") if not e["valid"]] == \
        ["card has expired", "expiry month must be 01-12"]
    type_keys(session, "1139847")      # keys after the end are ignored
    assert session.state == "failed_validation" and gateway.charges == 0


@pytest.mark.parametrize("pan, code, outcome", [
    ("378282246310005", "1234", "completed"),   # Amex: 15 digits finish by length, CID of 4
    ("378282246310005", "123#", "failed_validation"),
    ("5555555555554444", "123", "completed"),  # Mastercard: 16 digits finish by length
])
def test_brand_drives_auto_finish_and_code_length(pan, code, outcome):
    session = new_session(max_attempts=1)
    type_keys(session, pan + "1139" + code)
    assert session.wait(5) and session.state == outcome
    assert of_type(session, "field_complete")[0]["finished_by"] == "length"


def test_interdigit_timeout_finishes_the_field():
    clock = FakeClock()
    session = new_session(clock=clock, interdigit_timeout_s=5.0)
    type_keys(session, PAN, clock)
    clock.advance(4.9)
    assert session.poll() == "collecting" and session.current_field == "card_number"
    clock.advance(0.2)
    session.poll()
    assert session.current_field == "expiry"
    assert of_type(session, "field_complete")[0]["finished_by"] == "timeout"


def test_timeout_is_applied_before_the_next_key():
    clock = FakeClock()
    session = new_session(clock=clock, interdigit_timeout_s=5.0)
    type_keys(session, PAN, clock)
    clock.advance(10)
    type_keys(session, "1139847", clock)  # no poll in between: the first key of the expiry still counts
    assert session.wait(5) and session.state == "completed"


def test_field_timeout_retries_then_times_out():
    clock = FakeClock()
    session = new_session(clock=clock, field_timeout_s=30.0, max_attempts=3)
    for attempt in (1, 2):
        clock.advance(30)
        session.poll()
        assert of_type(session, "field_timeout")[-1]["attempt"] == attempt
        assert of_type(session, "field_started")[-1]["attempt"] == attempt + 1
    clock.advance(29)
    assert session.poll() == "collecting"
    clock.advance(1)
    assert session.poll() == "timed_out"
    assert session.wait(5)


def test_start_notifications_are_ignored_and_each_key_counts_once():
    session = new_session()
    for event in key_events(PAN + "#1139847", with_starts=True, source="rfc4733"):
        session.feed(event)
    assert session.wait(5) and session.state == "completed"


def test_letter_keys_are_ignored():
    session = new_session()
    type_keys(session, PAN[:2] + "A" + PAN[2:] + "#11D39B847")
    assert session.wait(5) and session.state == "completed"


def test_cancel_abandons_and_wipes():
    session = new_session()
    type_keys(session, "41111111")
    buffer = session._buf
    assert session.cancel()
    assert session.state == "abandoned" and len(buffer) == 0
    assert not session.cancel()
    assert session.wait(5)


def test_optional_field_skipped_and_typed_amount_used():
    seen = []

    class Recording(Gateway):
        name = "recording"

        def submit(self, request):
            seen.append((request.amount, dict(request.fields)))
            return GatewayResult("approved", authorisation="OK")

    session = new_session(Recording(), fields=["amount", "card_number", "expiry", "security_code", "postcode"])
    type_keys(session, "2500#" + PAN + "#1139847" + "#")
    assert session.wait(5) and session.state == "completed"
    assert seen == [(2500, {})]
    assert of_type(session, "field_complete")[0]["amount"] == 2500
    assert of_type(session, "field_complete")[-1]["skipped"] is True


def test_feed_never_blocks_on_a_slow_gateway_or_a_slow_screen():
    release = threading.Event()
    screen_release = threading.Event()

    class Slow(Gateway):
        name = "slow"

        def submit(self, request):
            release.wait(10)
            return GatewayResult("approved")

    session = new_session(Slow(), on_event=lambda event: screen_release.wait(10))
    fed = threading.Event()

    def media_thread():
        type_keys(session, PAN + "#1139847")
        session.poll()
        fed.set()

    thread = threading.Thread(target=media_thread)
    thread.start()
    thread.join(5)
    assert fed.is_set(), "feed() blocked while the gateway and the screen were stuck"
    assert session.state == "submitting"
    assert not session.cancel()  # a hand-off in flight cannot be recalled
    release.set()
    screen_release.set()
    assert session.wait(10) and session.state == "completed"


def test_broken_callback_does_not_stop_the_payment(caplog):
    delivered = []

    def broken(event):
        raise RuntimeError("screen crashed")

    session = new_session(on_event=[broken, delivered.append])
    type_keys(session, PAN + "#1139847")
    assert session.wait(5) and session.state == "completed"
    assert [e["seq"] for e in delivered] == list(range(len(session.events)))
    assert "callback" in caplog.text and "RuntimeError" in caplog.text


def test_gateway_exception_text_is_never_shown(caplog):
    class Leaky(Gateway):
        name = "leaky"

        def submit(self, request):
            raise RuntimeError(f"could not charge {request.card.pan} cvv {request.card.security_code}")

    caplog.set_level(logging.DEBUG)
    session = new_session(Leaky())
    type_keys(session, PAN + "#1139847")
    assert session.wait(5) and session.state == "gateway_error"
    result = of_type(session, "gateway_result")[0]
    assert result["message"] == "gateway failed (RuntimeError)"
    assert PAN not in caplog.text and PAN not in json.dumps(session.events)


def test_gateway_error_message_is_redacted():
    class Echo(Gateway):
        name = "echo"

        def submit(self, request):
            raise GatewayError(f"bad card {request.card.pan} exp {request.card.expiry}")

    session = new_session(Echo())
    type_keys(session, PAN + "#1139847")
    assert session.wait(5) and session.state == "gateway_error"
    message = of_type(session, "gateway_result")[0]["message"]
    assert message == "bad card [redacted] exp [redacted]"


def test_card_is_wiped_after_hand_off():
    cards = []

    class Keep(Gateway):
        name = "keep"

        def submit(self, request):
            cards.append(request.card)
            return GatewayResult("tokenised", token="tok_abc")

    session = new_session(Keep())
    type_keys(session, PAN + "#1139847")
    assert session.wait(5)
    assert cards[0].wiped and repr(cards[0]) == "CardDetails(brand=visa, last4=1111)"


def test_a_validator_fault_fails_closed(caplog):
    def explode(digits, context):
        raise ZeroDivisionError("validator bug")

    gateway = plugin.TestCardGateway()
    session = new_session(gateway, fields=[FieldSpec("card_number", "card", 12, 19, explode)])
    type_keys(session, PAN + "#")  # feed() must not raise into the media path
    assert session.state == "error" and gateway.charges == 0 and len(session._buf) == 0
    assert session.wait(5)
    assert "ZeroDivisionError" in caplog.text


def test_feed_rejects_garbage_without_raising():
    session = new_session()
    class Weird:
        end, digit = 5, "x"

    session.feed(object())
    session.feed(None)
    session.feed(Weird())
    assert session.state == "collecting" and session._ignored_keys == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"amount": 12.5}, "minor units"), ({"amount": 0}, "minor units"), ({"amount": True}, "minor units"),
    ({"currency": "pounds"}, "three-letter"), ({"max_attempts": 0}, "max_attempts"),
    ({"fields": ["card_number", "cvv"]}, "unknown field"),
    ({"fields": ["security_code", "card_number"]}, "after card_number"),
])
def test_bad_configuration_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        new_session(**kwargs)


def test_json_lines_feed(tmp_path):
    path = tmp_path / "feed.jsonl"
    session = new_session(jsonl=path)
    type_keys(session, PAN + "#1139847")
    assert session.wait(5)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == session.events
    session._feed.close()


def test_many_threads_feeding_many_sessions():
    gateway = plugin.TestCardGateway()
    sessions = [new_session(gateway, amount=100 + i) for i in range(20)]

    def run(session):
        for event in key_events(PAN + "#1139847"):
            session.feed(event)

    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(s.wait(10) for s in sessions)
    assert [s.state for s in sessions] == ["completed"] * 20 and gateway.charges == 20


def test_digit_event_repr_in_logs_never_shows_the_key(caplog):
    caplog.set_level(logging.DEBUG)
    session = new_session()
    for event in key_events(PAN):
        logging.getLogger("test").debug("fed %r", event)
        session.feed(event)
    assert "4111" not in caplog.text


def test_unwritable_audit_trail_refuses_the_payment(tmp_path, caplog):
    """No audit, no payment (issue 8): the card is never sent when its audit record cannot be written."""
    gateway = plugin.TestCardGateway()
    session = new_session(gateway, audit=tmp_path / "no-such-dir" / "audit.jsonl")
    type_keys(session, PAN + "#1139847")
    assert session.wait(5) and session.state == "refused" and gateway.charges == 0
    reasons = [e["reason"] for e in of_type(session, "audit_error")]
    assert "cannot open audit trail" in reasons[0]
    assert any("payment refused, nothing was sent" in r for r in reasons)
    assert "cannot open audit trail" in caplog.text


def test_audit_trail_failing_mid_session_refuses_the_payment(tmp_path, monkeypatch):
    """The disk fills up (or turns read-only) after the session started: still refused, nothing sent."""
    from dtmfguard.capture.audit import AuditTrail

    gateway = plugin.TestCardGateway()
    trail = AuditTrail(tmp_path / "audit.jsonl")
    session = new_session(gateway, audit=trail)
    original = AuditTrail.append

    def append(self, record):
        if record.get("event") == "payment_submitting":
            raise OSError(28, "No space left on device")
        return original(self, record)

    monkeypatch.setattr(AuditTrail, "append", append)
    type_keys(session, PAN + "#1139847")
    assert session.wait(5) and session.state == "refused" and gateway.charges == 0
    assert PAN not in (tmp_path / "audit.jsonl").read_text()


def test_card_details_that_cannot_be_built_fail_closed():
    gateway = plugin.TestCardGateway()
    short = FieldSpec("card_number", "card", 4, 6)  # a misconfigured field: too short for a PAN
    session = new_session(gateway, fields=[short])
    type_keys(session, "4111#")
    assert session.wait(5) and session.state == "error" and gateway.charges == 0
    assert "12-19 digits" in of_type(session, "session_ended")[0]["reason"]


def test_session_closes_the_json_lines_file_it_opened(tmp_path):
    session = new_session(jsonl=tmp_path / "feed.jsonl")
    type_keys(session, PAN + "#1139847")
    assert session.wait(5)
    assert session._feed._stream is None


def test_retrying_a_payment_with_the_earlier_key_charges_once():
    gateway = plugin.TestCardGateway()
    first = new_session(gateway, amount=500)
    type_keys(first, PAN + "#1139847")
    again = new_session(gateway, amount=500, idempotency_key=first.idempotency_key)
    type_keys(again, PAN + "#1139847")
    assert first.wait(5) and again.wait(5)
    assert gateway.charges == 1 and first.result == again.result


def test_reference_that_looks_like_a_card_is_refused():
    with pytest.raises(ValueError, match="looks like a card number") as info:
        new_session(reference=f"order {PAN}")
    assert PAN not in str(info.value)
