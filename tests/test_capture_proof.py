# SPDX-License-Identifier: GPL-2.0-or-later
"""THE proof: type the test PAN 4111111111111111, an expiry and a security code through the whole path
(session -> vault and webhook gateways -> agent feed -> audit trail, with logging at DEBUG) and search
every log record, exception message, repr, audit record, feed event and file written (including the
SQLite database's bytes) for those digit strings.  Only the last 4 may appear.

PCI DSS v4.0 Req. 3.3.1 (no security code after authorisation), 3.4.1 (PAN masked when displayed),
3.5.1 (PAN unreadable where stored), 10.2 (audit trail without card data).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket
import tempfile

import pytest
from _capture_util import SECRET, TODAY, FakeClock, Receiver, key_events, make_tls_cert

from dtmfguard.capture import AgentLimits, AuditTrail, CardDetails, PaymentSession, verify_file
from dtmfguard.capture.card import CardWipedError, check_card_number, check_expiry, parse_expiry
from dtmfguard.capture.gateways import Gateway, GatewayError, PaymentRequest, load_gateway
from dtmfguard.capture.gateways.vault import VaultGateway

PAN = "4111111111111111"
EXPIRY = "1139"
CVV = "847"
# Long needles are searched everywhere verbatim.  Short ones (expiry, CVV) are searched after removing
# SHA-256 hex digests (audit chain, logged head): a 64-character one-way digest holds any 3 digits by
# chance in about 1.5 % of cases and carries no card data.
LONG_NEEDLES = [PAN, PAN[:12], PAN[:6], "4111111111111112"]
SHORT_NEEDLES = [EXPIRY, "11/39", CVV]
_DIGEST_RE = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def leaks(text) -> list:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    found = [needle for needle in LONG_NEEDLES if needle in text]
    stripped = _DIGEST_RE.sub("<digest>", text)
    return found + [needle for needle in SHORT_NEEDLES if needle in stripped]


class Spy(Gateway):
    """Wraps a real gateway and records the reprs the hand-off produces (as a plugin might log them)."""

    def __init__(self, inner, texts):
        self.inner, self.texts, self.name = inner, texts, inner.name

    def submit(self, request: PaymentRequest):
        self.texts += [repr(request), str(request), repr(request.card), str(request.card), repr(self.inner)]
        result = self.inner.submit(request)
        self.texts += [repr(result)]
        return result


def keys_for_payment():
    # A cleared start, a mistyped (Luhn-invalid) number, then the real entry: every path a digit can take.
    return "41111111*" + "4111111111111112#" + PAN + "#" + EXPIRY + CVV


@pytest.fixture
def tls(tmp_path_factory):
    return make_tls_cert(tmp_path_factory.mktemp("tls-not-scanned"))


def test_card_data_reaches_the_processor_and_nothing_else(tmp_path, tls, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    out.mkdir()
    (out / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(out / "tmp"))  # any temp file lands where we search
    monkeypatch.setenv("DTMFGUARD_VAULT_KEY", "ab" * 32)
    monkeypatch.setenv("DTMFGUARD_WEBHOOK_SECRET", SECRET.decode())
    texts: list = []      # reprs, strs and exception messages to search
    feed: list = []       # everything the agent's screen received
    audit = AuditTrail(out / "audit.jsonl", wallclock=lambda: 1_800_000_000.0)
    limits = AgentLimits.from_mapping({"currency": "GBP", "default": {"per_payment": 20_000,
                                                                      "over_limit": "approval"}})
    receiver = Receiver(*tls)
    receiver.script = ["500"]  # one retry on the way
    try:
        vault = load_gateway("vault", path=out / "vault.sqlite3")
        webhook = load_gateway("webhook", url=receiver.url, ca_file=str(tls[0]), backoff_s=0.01)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            dead_port = sock.getsockname()[1]
        dead = load_gateway("webhook", url=f"https://127.0.0.1:{dead_port}/x", ca_file=str(tls[0]),
                            max_attempts=2, backoff_s=0.01)
        sessions = []
        for gateway, amount in ((vault, None), (webhook, 12_345), (dead, 500)):
            session = PaymentSession(Spy(gateway, texts), amount=amount, reference="INV-A", call_id="call-A",
                                     agent_id="agent-A", on_event=feed.append, jsonl=out / "feed.jsonl",
                                     clock=FakeClock(), audit=audit, limits=limits, today=lambda: TODAY)
            for event in key_events(keys_for_payment(), with_starts=True, source="rfc4733"):
                session.feed(event)
                session.poll()
                texts.append(repr(session))
            sessions.append(session)
        # Over the agent's limit: a supervisor approves, through the vault.
        big = PaymentSession(Spy(vault, texts), amount=50_000, agent_id="agent-A", on_event=feed.append,
                             clock=FakeClock(), audit=audit, limits=limits, today=lambda: TODAY)
        for event in key_events(PAN + "#" + EXPIRY + CVV):
            big.feed(event)
        assert big.state == "awaiting_approval" and big.approve("supervisor-B")
        sessions.append(big)
        for session in sessions:
            assert session.wait(15)
            texts += [repr(session), str(session), repr(session.result), json.dumps(session.events)]
            session._feed.close()
    finally:
        receiver.close()

    assert [s.state for s in sessions] == ["completed", "completed", "gateway_unavailable", "completed"]

    # Exception messages from every failure path that sees card digits.
    for call in (lambda: CardDetails(PAN + "x", EXPIRY, CVV), lambda: CardDetails(PAN, "11/39", CVV),
                 lambda: parse_expiry("1339"), lambda: VaultGateway(out / "vault.sqlite3", key=bytes(32)),
                 lambda: dead.submit(PaymentRequest("idem_x", CardDetails(PAN, EXPIRY, CVV)))):
        with pytest.raises(Exception) as info:
            call()
        texts += [str(info.value), repr(info.value)]
    wiped = CardDetails(PAN, EXPIRY, CVV)
    wiped.wipe()
    with pytest.raises(CardWipedError) as info:
        _ = wiped.security_code
    texts.append(str(info.value))
    texts += [check_card_number("4111111111111112"), check_expiry(EXPIRY, dt.date(2040, 1, 1))]
    with pytest.raises(GatewayError) as info:
        vault.submit(PaymentRequest("idem_y", None))
    texts.append(str(info.value))

    # Positive controls: the digits did reach the processor and the vault, and the search can see them.
    assert receiver.payments[0]["card"]["number"] == PAN and receiver.payments[0]["card"]["security_code"] == CVV
    assert vault.detokenise(sessions[0].result.token).pan == PAN
    assert leaks(f"x{PAN}x") and leaks(f"cvv {CVV}") and leaks(b"exp 1139")
    assert "1111" in json.dumps(feed)  # the last 4 may appear, and does

    # The search itself.
    findings = {}
    for record in caplog.records:
        formatted = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
        for needle in leaks(formatted + repr(record.args)):
            findings.setdefault(f"log {record.name}: {record.getMessage()[:60]}", []).append(needle)
    for index, text in enumerate(texts):
        for needle in leaks(str(text)):
            findings.setdefault(f"text #{index}: {str(text)[:400]}", []).append(needle)
    for event in feed:
        for needle in leaks(json.dumps(event)):
            findings.setdefault(f"feed {event['type']}", []).append(needle)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"vault.sqlite3", "audit.jsonl", "feed.jsonl"}
    for path in files:
        for needle in leaks(path.read_bytes()):
            findings.setdefault(f"file {path.name}", []).append(needle)
    assert not findings, f"card data found: {findings}"

    report = verify_file(out / "audit.jsonl")
    # started + payment_submitting + ended for each of the four sessions (all four reached the gateway)
    assert report.ok and report.records == 12
    records = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    ended = [r for r in records if r["event"] == "session_ended"]
    assert [r["last4"] for r in ended] == ["1111"] * 4
    assert {r["session_id"]: r["approver"] for r in ended}[sessions[-1].session_id] == "supervisor-B"
    assert len(caplog.records) > 20  # logging really was captured at DEBUG
