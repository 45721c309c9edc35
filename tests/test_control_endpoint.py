# SPDX-License-Identifier: GPL-2.0-or-later
"""The box endpoint in front of a real worker control API (no SIP: one call's real pipeline and payment
session, keys fed in as SIP INFO): SSE resume, a worker that goes away, hostile HTTP, TLS, redirects."""
from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import ssl
import threading
import time

import numpy as np
import pytest

pytest.importorskip("aiohttp", reason="the box endpoint needs aiohttp")

from dtmfguard.server.endpoint.server import BoxEndpoint, EndpointError  # noqa: E402
from dtmfguard.server.control import ControlServer  # noqa: E402

from _control_util import FakeGuard, http_json  # noqa: E402

PAN = "4111111111111111"
ADMIN = "admin-token-0123456789"


def _req(port, method, path, body=None, token=ADMIN, headers=None, raw=None):
    return http_json(port, method, path, body, token, headers, raw)


def _sse(port, path, last=None, max_events=None, token=ADMIN):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    h = {"Authorization": f"Bearer {token}"} if token else {}
    if last is not None:
        h["Last-Event-ID"] = str(last)
    c.request("GET", path, headers=h)
    r = c.getresponse()
    if r.status != 200:
        return r.status, []
    out, cur = [], {}
    while True:
        line = r.fp.readline().decode()
        if not line:
            break
        line = line.rstrip("\n")
        if not line:
            if "data" in cur:
                out.append((cur.get("id"), cur.get("event"), json.loads(cur["data"])))
                if cur.get("event") == "call_ended" or (max_events and sum(e[0] is not None for e in out) >= max_events):
                    break
            cur = {}
        elif ":" in line and not line.startswith(":"):
            k, _, v = line.partition(":")
            cur[k] = int(v.strip()) if k == "id" else v.strip()
    c.close()
    return 200, out


@pytest.fixture
def stack(tmp_path, monkeypatch):
    monkeypatch.setenv("DTMFGUARD_VAULT_KEY", "11" * 32)
    from dtmfguard.capture import PaymentSession
    from dtmfguard.capture.gateways import load_gateway

    gateway = load_gateway("vault", path=tmp_path / "vault.sqlite")
    guard = FakeGuard(lambda **kw: PaymentSession(gateway, audit=str(tmp_path / "audit.jsonl"), **kw),
                      target="sip:agent7@pbx", correlation={"call_id": "abc@host", "header": "CRM-42"})
    worker = ControlServer(guard, "127.0.0.1", 0, ADMIN)
    worker.start()
    box = BoxEndpoint("127.0.0.1", 0, ADMIN, [f"http://127.0.0.1:{worker.address[1]}"], box="boxa",
                      peers={"boxb": "https://10.9.9.9:8070"}, origins=["https://crm.example"])
    box.start()
    port = box.address[1]
    deadline = time.monotonic() + 10
    handle = None
    while handle is None and time.monotonic() < deadline:
        calls = _req(port, "GET", "/v1/calls")[1]["calls"]
        handle = calls[0]["handle"] if calls else None
        time.sleep(0.05)
    assert handle
    yield guard, worker, box, port, handle
    box.stop()
    worker.stop()


def _type(pipeline, keys):
    for d in keys:
        pipeline.on_sip_info("application/dtmf", d)
        for _ in range(15):
            pipeline.process_customer_frame(np.zeros(160, np.int16))


def test_feed_resume_loses_and_repeats_nothing(stack):
    guard, worker, box, port, handle = stack
    assert _req(port, "GET", "/v1/calls?correlation=CRM-42")[1]["calls"][0]["handle"] == handle
    assert _req(port, "GET", "/v1/calls?correlation=abc@host")[1]["calls"][0]["handle"] == handle
    assert _req(port, "GET", "/v1/calls?correlation=nothing")[1]["calls"] == []
    status, body, _ = _req(port, "POST", f"/v1/calls/{handle}/payment", {"amount": 1999, "agent_id": "a7"})
    assert status == 201, body
    whole: list = []
    reader = threading.Thread(target=lambda: whole.extend(_sse(port, f"/v1/calls/{handle}/feed")[1]))
    reader.start()
    _type(guard.bridge.pipeline, PAN + "#" + "1230" + "123")
    deadline = time.monotonic() + 10
    while not guard.bridge.session.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    guard.bridge.state = "ended"
    reader.join(15)
    pieces, last = [], 0
    while True:
        # resume by header, and by query parameter (what a page reconnecting with a new ticket uses)
        path = f"/v1/calls/{handle}/feed" + (f"?last_event_id={last}" if len(pieces) % 2 else "")
        st, got = _sse(port, path, last=None if len(pieces) % 2 else last, max_events=3)
        if st == 204:
            break
        got = [g for g in got if g[0] is not None]
        assert got, st
        pieces.extend(got)
        last = got[-1][0]
    ids = [e[0] for e in whole if e[0] is not None]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # dense, in order
    assert [e[0] for e in pieces] == ids and [e[2] for e in pieces] == [e[2] for e in whole if e[0]]
    kinds = [e[1] for e in whole]
    assert kinds[-1] == "call_ended" and "gateway_result" in kinds and "session_ended" in kinds
    assert PAN not in json.dumps(whole) and "411111" not in json.dumps(whole)
    assert _req(port, "GET", f"/v1/calls/{handle}/feed", headers={"Last-Event-ID": "x"})[0] == 400


def test_hostile_requests_get_clear_answers(stack):
    guard, worker, box, port, handle = stack
    assert _req(port, "POST", f"/v1/calls/{handle}/payment", raw=b"{not json")[0] == 400
    assert _req(port, "POST", f"/v1/calls/{handle}/payment", raw=b"[1, 2]")[0] == 400
    assert _req(port, "POST", f"/v1/calls/{handle}/payment", raw=b"x" * 100_000)[0] == 413
    status, body, _ = _req(port, "POST", f"/v1/calls/{handle}/payment", {"pan": PAN})
    assert status == 400 and PAN not in json.dumps(body)
    assert _req(port, "GET", "/v1/calls/not-a-handle")[0] == 404
    assert _req(port, "GET", "/v1/calls/boxz.0.abc.c1")[0] == 404  # unknown box
    status, _, headers = _req(port, "GET", "/v1/calls/boxb.0.abc.c1/feed?x=1")
    assert status == 307 and headers["Location"] == "https://10.9.9.9:8070/v1/calls/boxb.0.abc.c1/feed?x=1"
    assert _req(port, "GET", f"/v1/calls/{handle.rsplit('.', 1)[0]}.c9")[0] == 404
    assert _req(port, "PUT", "/v1/calls")[0] == 405
    assert _req(port, "GET", "/v1/calls", token="nope-nope-nope")[0] == 401
    assert _req(port, "GET", f"/v1/calls/{handle}/feed?ticket=abc.def", token=None)[0] == 401
    text = _req(port, "GET", "/metrics", token=None)[1]
    assert 'dtmfguard_api_auth_failures_total{reason="bad-token"} 1.0' in text
    assert 'dtmfguard_api_auth_failures_total{reason="bad-ticket"} 1.0' in text
    assert _req(port, "GET", "/panel/../../etc/passwd", token=None)[0] == 404
    status, page, headers = _req(port, "GET", "/panel/", token=None)
    assert status == 200 and "<main id=\"panel\"" in page
    assert "frame-ancestors 'self' https://crm.example" in headers["Content-Security-Policy"]
    assert _req(port, "GET", "/health", token=None)[0] == 200


def test_worker_lost_ends_its_calls_in_the_feed(stack):
    guard, worker, box, port, handle = stack
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(_sse(port, f"/v1/calls/{handle}/feed")[1]))
    reader.start()
    time.sleep(0.3)
    worker.stop()  # the worker process dies: its API stops answering
    reader.join(20)
    print(got)
    assert got and got[-1][1] == "call_ended" and got[-1][2]["reason"] in ("worker-lost", "worker-stopping"), got


def test_binding_rules_and_tls(tmp_path):
    with pytest.raises(EndpointError, match="needs TLS"):
        BoxEndpoint("0.0.0.0", 0, ADMIN, [])
    with pytest.raises(EndpointError, match="admin token"):
        BoxEndpoint("127.0.0.1", 0, "", [])
    with pytest.raises(EndpointError, match="tls_cert"):
        BoxEndpoint("127.0.0.1", 0, ADMIN, [], tls_cert=str(tmp_path / "none.pem"), tls_key=str(tmp_path / "k"))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    with pytest.raises(EndpointError, match="cannot serve"):
        BoxEndpoint("127.0.0.1", taken.getsockname()[1], ADMIN, []).start()
    taken.close()

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    box = BoxEndpoint("127.0.0.1", 0, ADMIN, [], tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem"))
    box.start()
    try:
        assert box.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        c = http.client.HTTPSConnection("127.0.0.1", box.address[1], context=ctx, timeout=10)
        c.request("GET", "/v1/calls", headers={"Authorization": f"Bearer {ADMIN}"})
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["calls"] == []
        c.close()
        plain = http.client.HTTPConnection("127.0.0.1", box.address[1], timeout=5)
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            plain.request("GET", "/health")
            resp = plain.getresponse()
            resp.read()
            if resp.status >= 400:
                raise http.client.HTTPException(resp.status)
    finally:
        box.stop()


def test_box_health_status_code_follows_ok():
    """Monitors read /health's status: 503 while a worker is not OK; /workers keeps 200 with the details."""
    state = {"ok": False, "workers": [{"index": 0, "alive": False}]}
    box = BoxEndpoint("127.0.0.1", 0, ADMIN, [], health=lambda: dict(state))
    box.start()
    try:
        port = box.address[1]
        status, body, _ = _req(port, "GET", "/health", token=None)
        assert status == 503 and body["ok"] is False
        assert _req(port, "GET", "/workers", token=None)[0] == 200
        state["ok"] = True
        assert _req(port, "GET", "/health", token=None)[0] == 200
    finally:
        box.stop()
