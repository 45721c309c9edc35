# SPDX-License-Identifier: GPL-2.0-or-later
"""The webhook gateway against a real HTTPS server on 127.0.0.1 running the sample receiver's code:
signature verified, 5xx and timeouts retried with one idempotency key (one charge), TLS verification
on, outages reported on the agent feed."""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import time

import pytest
from _capture_util import SECRET, TODAY, FakeClock, Receiver, make_tls_cert, type_keys

from dtmfguard.capture import CardDetails, PaymentSession
from dtmfguard.capture.gateways import (
    GatewayConfigError, GatewayError, GatewayUnavailable, PaymentRequest, load_gateway, new_idempotency_key,
)
from dtmfguard.capture.gateways.webhook import WebhookGateway, sign

PAN = "4111111111111111"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def receiver(tls):
    server = Receiver(*tls)
    yield server
    server.close()


def gateway_for(receiver, tls, **kwargs):
    kwargs.setdefault("secret", SECRET)
    kwargs.setdefault("ca_file", str(tls[0]))
    kwargs.setdefault("backoff_s", 0.01)
    kwargs.setdefault("timeout_s", 2.0)
    return WebhookGateway(receiver.url, **kwargs)


def request(amount=1500, key=None):
    return PaymentRequest(key or new_idempotency_key(), CardDetails(PAN, "1139", "847"), amount, "GBP",
                          "INV-A", "call-A", "agent-A", "sess-A", {"postcode": "90210"})


def test_signed_request_is_verified_by_the_sample_receiver(receiver, tls):
    result = gateway_for(receiver, tls).submit(request())
    assert result.status == "approved" and result.authorisation == "AUTHOK" and result.attempts == 1
    assert receiver.charges == 1
    headers, body = receiver.requests[0]
    # Check the signature again here with the receiver's own function, as a processor would.
    stamp = receiver.receiver.verify_signature([SECRET], body, headers["X-Dtmfguard-Timestamp"],
                                               headers["X-Dtmfguard-Signature"])
    assert abs(stamp - time.time()) < 60
    payment = receiver.payments[0]
    assert payment["card"] == {"number": PAN, "brand": "visa", "expiry_month": "11", "expiry_year": "2039",
                               "security_code": "847"}
    assert payment["amount"] == 1500 and payment["currency"] == "GBP" and payment["operation"] == "authorise"
    assert payment["idempotency_key"] == headers["Idempotency-Key"]
    assert payment["fields"] == {"postcode": "90210"}
    assert headers["Content-Type"] == "application/json"


def test_wrong_secret_is_rejected_and_not_retried(receiver, tls):
    gateway = gateway_for(receiver, tls, secret=b"some-other-secret-of-32-bytes!!!")
    with pytest.raises(GatewayError, match="HTTP 401") as info:
        gateway.submit(request())
    assert not isinstance(info.value, GatewayUnavailable)
    assert len(receiver.requests) == 1 and receiver.charges == 0


def test_clock_outside_the_replay_window_is_rejected(receiver, tls):
    gateway = gateway_for(receiver, tls, wallclock=lambda: time.time() - 301)
    with pytest.raises(GatewayError, match="HTTP 401"):
        gateway.submit(request())
    assert receiver.charges == 0


def test_5xx_retried_with_the_same_key_and_body(receiver, tls):
    receiver.script = ["500", "503", "500"]
    result = gateway_for(receiver, tls, max_attempts=4).submit(request())
    assert result.status == "approved" and result.attempts == 4
    keys = {headers["Idempotency-Key"] for headers, _ in receiver.requests}
    bodies = {body for _, body in receiver.requests}
    attempts = [headers["X-Dtmfguard-Attempt"] for headers, _ in receiver.requests]
    assert len(receiver.requests) == 4 and len(keys) == 1 and len(bodies) == 1 and attempts == ["1", "2", "3", "4"]
    assert receiver.charges == 1


def test_timeout_retried_without_a_second_charge(receiver, tls):
    # The first charge takes 0.8 s: the client gives up after 0.25 s and retries; the receiver sees the
    # same key (409 while in progress, then the stored response), so the card is charged once.
    receiver.charge_delay_s = 0.8
    gateway = gateway_for(receiver, tls, timeout_s=0.25, backoff_s=0.1, backoff_max_s=0.2, max_attempts=10)
    result = gateway.submit(request())
    assert result.status == "approved" and result.attempts > 1
    assert receiver.charges == 1
    assert len({headers["Idempotency-Key"] for headers, _ in receiver.requests}) == 1


def test_repeat_of_a_finished_payment_returns_the_first_result(receiver, tls):
    gateway = gateway_for(receiver, tls)
    key = new_idempotency_key()
    first = gateway.submit(request(key=key))
    second = gateway.submit(request(key=key))
    assert first == second and receiver.charges == 1


def test_same_key_with_a_different_body_is_refused(receiver, tls):
    gateway = gateway_for(receiver, tls)
    key = new_idempotency_key()
    gateway.submit(request(amount=1500, key=key))
    with pytest.raises(GatewayError, match="HTTP 422"):
        gateway.submit(request(amount=9999, key=key))
    assert receiver.charges == 1


def test_replayed_request_is_harmless(receiver, tls):
    gateway = gateway_for(receiver, tls)
    gateway.submit(request())
    headers, body = receiver.requests[0]
    # Within the window an attacker's replay gets the stored answer and charges nothing new ...
    context = ssl.create_default_context(cafile=str(tls[0]))
    conn = http.client.HTTPSConnection("127.0.0.1", receiver.port, context=context, timeout=5)
    conn.request("POST", "/payments", body=body, headers={k: v for k, v in headers.items()
                                                          if k.lower() not in ("host", "connection")})
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["status"] == "approved"
    conn.close()
    assert receiver.charges == 1
    # ... and after the window the signature check itself refuses it.
    with pytest.raises(receiver.receiver.SignatureError, match="replay window"):
        receiver.receiver.verify_signature([SECRET], body, headers["X-Dtmfguard-Timestamp"],
                                           headers["X-Dtmfguard-Signature"], now=time.time() + 301)


def test_tampered_body_fails_the_signature(receiver):
    body = b'{"amount":100}'
    good = sign(SECRET, 1_800_000_000, body)
    verify = receiver.receiver.verify_signature
    assert verify([SECRET], body, "1800000000", good, now=1_800_000_000) == 1_800_000_000
    with pytest.raises(receiver.receiver.SignatureError, match="does not match"):
        verify([SECRET], b'{"amount":900}', "1800000000", good, now=1_800_000_000)
    assert verify([b"old-secret-xxxxxxxxxx", SECRET], body, "1800000000", good, now=1_800_000_000)


def test_outage_after_all_retries(receiver, tls):
    receiver.script = ["503"] * 10
    gateway = gateway_for(receiver, tls, max_attempts=3)
    with pytest.raises(GatewayUnavailable, match="after 3 attempts .*HTTP 503"):
        gateway.submit(request())
    assert len(receiver.requests) == 3 and receiver.charges == 0


def test_connection_refused_is_an_outage(tls):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    sleeps = []
    gateway = WebhookGateway(f"https://127.0.0.1:{port}/x", secret=SECRET, ca_file=str(tls[0]),
                             max_attempts=4, backoff_s=0.5, backoff_max_s=1.5, sleep=sleeps.append)
    with pytest.raises(GatewayUnavailable, match="ConnectionRefusedError"):
        gateway.submit(request())
    assert sleeps == [0.5, 1.0, 1.5]  # exponential backoff, capped


def test_tls_verification_is_on(receiver):
    gateway = WebhookGateway(receiver.url, secret=SECRET, backoff_s=0)  # system CAs: self-signed refused
    with pytest.raises(GatewayUnavailable, match="TLS certificate verification failed"):
        gateway.submit(request())
    assert receiver.requests == [] and receiver.charges == 0


def test_tls_cannot_be_switched_off():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(GatewayConfigError, match="TLS verification must stay on"):
        WebhookGateway("https://pay.example/x", secret=SECRET, ssl_context=context)


@pytest.mark.parametrize("url, kwargs, message", [
    ("http://pay.example/x", {}, "must use https"),
    ("http://127.0.0.1:9/x", {}, "must use https"),
    ("ftp://pay.example/x", {}, "https://host"),
    ("https://user:pw@pay.example/x", {}, "credentials"),
    ("https://pay.example/x", {"secret": b"short"}, "at least 16 bytes"),
    ("https://pay.example/x", {"secret": SECRET, "max_attempts": 0}, "max_attempts"),
])
def test_bad_configuration(url, kwargs, message):
    kwargs.setdefault("secret", SECRET)
    with pytest.raises(GatewayConfigError, match=message):
        WebhookGateway(url, **kwargs)


def test_secret_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("DTMFGUARD_WEBHOOK_SECRET", raising=False)
    with pytest.raises(GatewayConfigError, match="set DTMFGUARD_WEBHOOK_SECRET"):
        load_gateway("webhook", url="https://pay.example/x")
    monkeypatch.setenv("DTMFGUARD_WEBHOOK_SECRET", SECRET.decode())
    gateway = load_gateway("webhook", url="https://pay.example/x")
    assert gateway._secret == SECRET and SECRET.decode() not in repr(gateway)


def test_insecure_loopback_only_when_asked():
    gateway = WebhookGateway("http://127.0.0.1:9/x", secret=SECRET, allow_insecure_loopback=True)
    assert gateway._ssl is None
    with pytest.raises(GatewayConfigError):
        WebhookGateway("http://pay.example/x", secret=SECRET, allow_insecure_loopback=True)


@pytest.mark.parametrize("reply, message", [
    ({"status": "approved", "token": PAN}, "malformed token|looks like card data"),
    ({"status": "approved", "token": "tok_4111111111111111"}, "looks like card data"),
    ({"status": "maybe"}, "unknown status"),
    ({"token": "x"}, "not the expected JSON"),
])
def test_suspicious_responses_are_refused(receiver, tls, reply, message):
    receiver.reply = reply
    with pytest.raises(GatewayError, match=message):
        gateway_for(receiver, tls).submit(request())


def test_processor_message_is_redacted(receiver, tls):
    receiver.reply = {"status": "declined", "message": f"card {PAN} exp 1139 cvv 847 declined, ref 12345678"}
    result = gateway_for(receiver, tls).submit(request())
    assert result.status == "declined"
    assert PAN not in result.message and "1139" not in result.message and "847" not in result.message
    assert "12345678" not in result.message and "declined" in result.message


def test_session_reports_the_outage_on_the_agent_feed(receiver, tls):
    receiver.script = ["503"] * 10
    feed = []
    session = PaymentSession(gateway_for(receiver, tls, max_attempts=3), amount=1500, on_event=feed.append,
                             clock=FakeClock(), today=lambda: TODAY)
    type_keys(session, PAN + "#1139847")
    assert session.wait(10)
    assert session.state == "gateway_unavailable"
    result = [e for e in feed if e["type"] == "gateway_result"][0]
    assert result["status"] == "unavailable" and "unavailable after 3 attempts" in result["message"]
    assert feed[-1]["type"] == "session_ended" and feed[-1]["outcome"] == "gateway_unavailable"
    assert receiver.charges == 0


def test_session_through_the_webhook_charges_once(receiver, tls):
    receiver.script = ["500"]
    session = PaymentSession(gateway_for(receiver, tls), amount=1500, clock=FakeClock(), today=lambda: TODAY)
    type_keys(session, PAN + "#1139847")
    assert session.wait(10) and session.state == "completed"
    assert receiver.charges == 1 and session.result.attempts == 2
    bodies = {hashlib.sha256(body).hexdigest() for _, body in receiver.requests}
    assert len(bodies) == 1
    assert json.loads(receiver.requests[0][1])["idempotency_key"] == session.idempotency_key
