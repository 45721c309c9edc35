# SPDX-License-Identifier: GPL-2.0-or-later
"""Control API: bearer auth, calls, payment start/cancel, the masked SSE feed (no SIP needed)."""
from __future__ import annotations

import http.client
import json
import threading
import time

import numpy as np
import pytest

from dtmfguard.server.control import ControlServer

from _control_util import FakeGuard, http_json

PAN = "4111111111111111"
TOKEN = "t0ken-for-tests"


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("DTMFGUARD_VAULT_KEY", "11" * 32)
    from dtmfguard.capture import PaymentSession
    from dtmfguard.capture.gateways import load_gateway

    gateway = load_gateway("vault", path=tmp_path / "vault.sqlite")

    def factory(**kw):
        return PaymentSession(gateway, **kw)

    guard = FakeGuard(factory)
    server = ControlServer(guard, "127.0.0.1", 0, TOKEN)
    server.start()
    yield guard, server.address[1]
    server.stop()


def req(port, method, path, body=None, token=TOKEN):
    return http_json(port, method, path, body, token)[:2]


def test_auth_required_except_health(api):
    guard, port = api
    assert req(port, "GET", "/health", token=None)[0] == 200
    assert req(port, "GET", "/calls", token=None)[0] == 401
    assert req(port, "GET", "/calls", token="wrong")[0] == 401
    status, body = req(port, "GET", "/calls")
    assert status == 200 and body["calls"][0]["id"] == "c1" and body["calls"][0]["state"] == "connected"


def test_bad_requests_get_clear_errors(api):
    guard, port = api
    assert req(port, "POST", "/calls/c9/payment", {"amount": 100}) == (404, {"error": "no call c9 on this worker"})
    status, body = req(port, "POST", "/calls/c1/payment", {"amount": -5})
    assert status == 400 and "amount" in body["error"]
    status, body = req(port, "POST", "/calls/c1/payment", {"pan": PAN})
    assert status == 400 and "unknown field(s): pan" in body["error"] and PAN not in body["error"]
    assert req(port, "POST", "/calls/c1/payment/cancel")[0] == 409
    assert req(port, "GET", "/nothing")[0] == 404


def _type_pan(pipeline):
    for d in PAN + "#" + "1230" + "123":
        pipeline.on_sip_info("application/dtmf", d)
        for _ in range(15):
            pipeline.process_customer_frame(np.zeros(160, np.int16))


def test_payment_and_masked_feed(api):
    guard, port = api
    status, body = req(port, "POST", "/calls/c1/payment", {"amount": 1999, "reference": "INV-7", "agent_id": "a1"})
    assert status == 201 and body["state"] == "collecting"
    assert req(port, "POST", "/calls/c1/payment", {"amount": 5})[0] == 409  # one at a time

    lines = []

    def read_feed():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        c.request("GET", "/calls/c1/feed", headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.getresponse()
        assert r.getheader("Content-Type") == "text/event-stream"
        while True:
            line = r.fp.readline()
            if not line:
                break
            lines.append(line.decode())
            if line.startswith(b"event: call_ended"):
                r.fp.readline()
                break
        c.close()

    t = threading.Thread(target=read_feed)
    t.start()
    _type_pan(guard.bridge.pipeline)
    deadline = time.monotonic() + 10  # until the session has ended and said so in its feed
    while time.monotonic() < deadline and not (
            guard.bridge.session.finished
            and any(e.get("type") == "session_ended" for e in list(guard.bridge.session.events))):
        time.sleep(0.05)
    guard.bridge.state = "ended"
    t.join(15)
    text = "".join(lines)
    assert "event: session_started" in text and "event: field_progress" in text
    assert PAN not in text and "411111" not in text  # masked: counts, brand and last 4 at most
    events = [json.loads(x[6:]) for x in lines if x.startswith("data: ")]
    assert any(e.get("type") == "field_complete" for e in events)
    assert guard.bridge.session.state == "completed"  # tokenised by the vault
    assert any(e.get("type") == "session_ended" for e in events)


def test_cancel(api):
    guard, port = api
    req(port, "POST", "/calls/c1/payment", {"amount": 100})
    status, body = req(port, "POST", "/calls/c1/payment/cancel")
    assert status == 200 and body["state"] == "abandoned"


def test_token_required_to_start():
    with pytest.raises(ValueError, match="bearer token"):
        ControlServer(FakeGuard(None), "127.0.0.1", 0, "")


def test_missing_gateway_key_is_a_clear_503(tmp_path, monkeypatch):
    monkeypatch.delenv("DTMFGUARD_VAULT_KEY", raising=False)
    from dtmfguard.capture import PaymentSession
    from dtmfguard.capture.gateways import load_gateway

    def factory(**kw):
        return PaymentSession(load_gateway("vault", path=tmp_path / "v.sqlite"), **kw)

    server = ControlServer(FakeGuard(factory), "127.0.0.1", 0, TOKEN)
    server.start()
    try:
        status, body = req(server.address[1], "POST", "/calls/c1/payment", {"amount": 100})
    finally:
        server.stop()
    assert status == 503 and "no vault key" in body["error"]
