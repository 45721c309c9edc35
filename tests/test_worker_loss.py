# SPDX-License-Identifier: GPL-2.0-or-later
"""A worker that dies leaves no call behind (dtmfguard.sip.dialogs, dtmfguard.sip.orphans, follow_feed).

Fast tests with fake peers on 127.0.0.1 (no pjsua2): what a worker records from its SIP messages, the
state file's mode and content, the BYE / CANCEL / 503 the supervisor builds (RFC 3261 §12.2.1.1, §9.1,
§18.2.2) and their exchange with a UDP and a TCP peer, and ``stream_lost`` on a broken feed.  One
real-peer test kills a worker while both legs ring.  The answered case with real peers (BYE timing) is
in test_faults.py::test_worker_killed_mid_payment.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dtmfguard.server.control import follow_feed
from dtmfguard.sip.dialogs import DialogBook, LegRecord, load_records, parse_head, split_header_list, tag_of, uri_of
from dtmfguard.sip.orphans import build_bye, build_cancel, build_reject, end_legs, hop_of

from sip_peers import PYTHON, Proc, free_port, rtp_base
from sip_peers.kamailio import Kamailio, kamailio_config

def _vault(tmp_path) -> dict:
    """serve builds its payment gateway (the default vault) at start: it needs a key and a place."""
    return {"DTMFGUARD_VAULT_KEY": "44" * 32, "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite3")}


CUSTOMER_INVITE = (
    "INVITE sip:guard@127.0.0.1:5070 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy1,SIP/2.0/UDP 127.0.0.1:26388;rport;branch=z9hG4bKc1\r\n"
    "Max-Forwards: 69\r\n"
    "Record-Route: <sip:10.0.0.9;lr>\r\n"
    "f: \"Cust, Omer\" <sip:customer@127.0.0.1>;tag=ctag1\r\n"
    "t: sip:guard@127.0.0.1\r\n"
    "m: <sip:customer@127.0.0.1:26388;ob>\r\n"
    "i: call-1@host\r\n"
    "CSeq: 4084 INVITE\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n\r\n"
    "v=0\n")
RINGING = ("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy1\r\n"
           "From: \"Cust, Omer\" <sip:customer@127.0.0.1>;tag=ctag1\r\nTo: <sip:guard@127.0.0.1>;tag=gtag1\r\n"
           "Call-ID: call-1@host\r\nCSeq: 4084 INVITE\r\nContact: <sip:guard@127.0.0.1:5070>\r\n\r\n")
OK_SENT = RINGING.replace("180 Ringing", "200 OK")
AGENT_INVITE = ("INVITE sip:agent@127.0.0.1:5072 SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKa1\r\nMax-Forwards: 70\r\n"
                "From: sip:guard@127.0.0.1;tag=gtag2\r\nTo: sip:agent@127.0.0.1\r\n"
                "Contact: <sip:guard@127.0.0.1:5070;ob>\r\nCall-ID: call-2@guard\r\nCSeq: 12581 INVITE\r\n"
                "Content-Length: 0\r\n\r\n")
AGENT_OK = ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;rport=5070;branch=z9hG4bKa1\r\n"
            "Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n"
            "From: <sip:guard@127.0.0.1>;tag=gtag2\r\nTo: <sip:agent@127.0.0.1>;tag=atag\r\n"
            "Call-ID: call-2@guard\r\nCSeq: 12581 INVITE\r\nContact: <sip:agent@127.0.0.1:5072>\r\n\r\n")
INFO_WITH_KEYS = ("INFO sip:guard@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:26388;branch=z9hG4bKi\r\n"
                  "From: <sip:customer@127.0.0.1>;tag=ctag1\r\nTo: <sip:guard@127.0.0.1>;tag=gtag1\r\n"
                  "Call-ID: call-1@host\r\nCSeq: 4085 INFO\r\nContent-Type: application/dtmf\r\n\r\n4111111111111111")


def test_header_helpers():
    start, h = parse_head(CUSTOMER_INVITE)
    assert start.startswith("INVITE ") and h["call-id"] == ["call-1@host"] and "content-type" not in h
    assert split_header_list(h["via"]) == ["SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy1",
                                            "SIP/2.0/UDP 127.0.0.1:26388;rport;branch=z9hG4bKc1"]
    assert split_header_list(['"A, B" <sip:a@h;lr>, <sip:b@h>']) == ['"A, B" <sip:a@h;lr>', "<sip:b@h>"]
    assert tag_of(h["from"][0]) == "ctag1" and tag_of(h["to"][0]) == "" and tag_of("<sip:a@h;tag=uri>") == ""
    assert uri_of(h["from"][0]) == "sip:customer@127.0.0.1" and uri_of("sip:a@h;tag=x") == "sip:a@h"
    assert hop_of("sip:agent@127.0.0.1:5072") == ("127.0.0.1", 5072, "udp")
    assert hop_of("sip:p1.example;lr;transport=TCP") == ("p1.example", 5060, "tcp")
    assert hop_of("sips:[::1]") == ("::1", 5061, "tls")
    with pytest.raises(ValueError, match="not a SIP URI"):
        hop_of("tel:+441234")


def test_supervisor_side_never_loads_pjsua2():
    code = ("import sys, dtmfguard.server.supervisor, dtmfguard.sip.orphans, dtmfguard.sip.dialogs; "
            "print('pjsua2' in sys.modules)")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def _book(tmp_path):
    return DialogBook(str(tmp_path / "w.json"), "127.0.0.1", 5070)


def test_worker_records_dialogs_from_its_messages(tmp_path):
    book = _book(tmp_path)
    book.incoming("c1", CUSTOMER_INVITE, "10.0.0.9:5060")
    book.message("c1", "customer", "INVITE", True, lambda: RINGING)
    book.message("c1", "agent", "INVITE", True, lambda: AGENT_INVITE)
    early = {r.key: r for r in load_records(book.path)}
    assert not early["c1/customer"].confirmed and early["c1/customer"].local.endswith("tag=gtag1")
    assert early["c1/agent"].invite_ruri == "sip:agent@127.0.0.1:5072" and early["c1/agent"].local_cseq == 12581
    book.message("c1", "agent", "INVITE", False, lambda: AGENT_OK)
    book.message("c1", "customer", "INVITE", True, lambda: OK_SENT)
    # an INFO from the customer is never read (it carries keys); the file never holds a body
    book.message("c1", "customer", "INFO", False, lambda: pytest.fail("an incoming INFO was read"))
    assert os.stat(book.path).st_mode & 0o777 == 0o600
    text = open(book.path).read()
    assert "4111" not in text and "v=0" not in text
    legs = {r.key: r for r in load_records(book.path)}
    cust, agent = legs["c1/customer"], legs["c1/agent"]
    assert cust.confirmed and cust.route_set == ["<sip:10.0.0.9;lr>"] and tag_of(cust.remote) == "ctag1"
    assert cust.remote_target == "sip:customer@127.0.0.1:26388;ob" and cust.peer_addr == "10.0.0.9:5060"
    assert agent.confirmed and tag_of(agent.remote) == "atag" and tag_of(agent.local) == "gtag2"
    assert agent.route_set == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]  # UAC: reversed (§12.1.2)
    # a later request of ours (session refresh) raises the CSeq the BYE must exceed
    book.message("c1", "agent", "UPDATE", True, lambda: AGENT_INVITE.replace("INVITE", "UPDATE")
                 .replace("12581", "12582"))
    assert {r.key: r for r in load_records(book.path)}["c1/agent"].local_cseq == 12582
    book.ended("c1", "agent")
    # the guard's own BYE and its answer come after DISCONNECTED: they must not bring the leg back
    book.message("c1", "agent", "BYE", True, lambda: AGENT_INVITE.replace("INVITE", "BYE").replace("12581", "12583"))
    book.message("c1", "agent", "INVITE", False, lambda: AGENT_OK)
    assert [r.key for r in load_records(book.path)] == ["c1/customer"]
    book.ended("c1", "customer")
    assert not os.path.exists(book.path) and os.listdir(tmp_path) == []  # no temp file left either


def test_unsupervised_worker_records_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("DTMFGUARD_DIALOG_STATE", raising=False)
    book = DialogBook.from_env("127.0.0.1", 5070)
    book.incoming("c1", CUSTOMER_INVITE, "")
    assert book.legs == {}


def test_recording_failure_never_raises(tmp_path, caplog):
    book = DialogBook(str(tmp_path / "missing-dir" / "w.json"))
    book.incoming("c1", CUSTOMER_INVITE, "")  # the directory does not exist: logged, not raised
    book.message("c1", "agent", "INVITE", True, lambda: 1 / 0)
    assert "dialog not recorded (FileNotFoundError)" in caplog.text
    assert "dialog update not recorded (ZeroDivisionError)" in caplog.text


def test_damaged_state_file_gives_no_legs(tmp_path):
    p = tmp_path / "w.json"
    p.write_text("{not json")
    assert load_records(str(p)) == [] and load_records(str(tmp_path / "none.json")) == []
    p.write_text(json.dumps({"legs": [{"bridge": "c1", "role": "intruder"}, {"bridge": "c2", "role": "agent",
                                                                             "unknown": 1}]}))
    assert [r.key for r in load_records(str(p))] == ["c2/agent"]


def _confirmed_legs(tmp_path):
    book = _book(tmp_path)
    book.incoming("c1", CUSTOMER_INVITE, "10.0.0.9:5060")
    for role, out, msg in (("customer", True, OK_SENT), ("agent", True, AGENT_INVITE), ("agent", False, AGENT_OK)):
        book.message("c1", role, "INVITE", out, lambda msg=msg: msg)
    return {r.role: r for r in load_records(book.path)}


def test_bye_follows_the_route_set(tmp_path):
    legs = _confirmed_legs(tmp_path)
    data, hop = build_bye(legs["customer"], "127.0.0.1", 5999, "z9hG4bKx")
    start, h = parse_head(data.decode())
    assert start == "BYE sip:customer@127.0.0.1:26388;ob SIP/2.0" and hop == ("10.0.0.9", 5060, "udp")
    assert h["route"] == ["<sip:10.0.0.9;lr>"] and tag_of(h["from"][0]) == "gtag1" and tag_of(h["to"][0]) == "ctag1"
    assert h["cseq"] == [f"{0x7FFF + 101} BYE"]  # above any CSeq pjsip can have started the dialog with
    data, hop = build_bye(legs["agent"], "127.0.0.1", 5999, "z9hG4bKy")
    start, h = parse_head(data.decode())
    assert start == "BYE sip:agent@127.0.0.1:5072 SIP/2.0" and hop == ("p1.example", 5060, "udp")
    assert h["route"] == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"] and h["cseq"] == [f"{0x7FFF + 101} BYE"]
    strict = LegRecord(**{**legs["agent"].__dict__, "route_set": ["<sip:strict.example>"], "local_cseq": 40000})
    start, h = parse_head(build_bye(strict, "127.0.0.1", 5999, "z9hG4bKz")[0].decode())
    assert start == "BYE sip:strict.example SIP/2.0" and h["route"] == ["<sip:agent@127.0.0.1:5072>"]
    assert h["cseq"] == ["40101 BYE"]


def test_unanswered_invites_get_a_503_and_a_cancel(tmp_path):
    book = _book(tmp_path)
    book.incoming("c1", CUSTOMER_INVITE, "10.0.0.9:5070")
    book.message("c1", "agent", "INVITE", True, lambda: AGENT_INVITE)
    legs = {r.role: r for r in load_records(book.path)}
    data, dest = build_reject(legs["customer"])
    start, h = parse_head(data.decode())
    assert start == "SIP/2.0 503 Service Unavailable" and dest == ("10.0.0.9", 5060, "udp")  # no rport: sent-by
    assert len(split_header_list(h["via"])) == 2 and tag_of(h["to"][0]) and h["cseq"] == ["4084 INVITE"]
    data, dest = build_cancel(legs["agent"])
    start, h = parse_head(data.decode())
    assert start == "CANCEL sip:agent@127.0.0.1:5072 SIP/2.0" and dest == ("127.0.0.1", 5072, "udp")
    assert h["via"] == ["SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKa1"] and h["cseq"] == ["12581 CANCEL"]
    assert not tag_of(h["to"][0])


class FakeUas:
    """A peer that answers every request with ``code`` (UDP or TCP), recording what it got."""

    def __init__(self, transport="udp", code=200, silent_for=0):
        self.transport, self.code, self.silent_for, self.got = transport, code, silent_for, []
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        if transport == "tcp":
            self.sock.listen(1)
        threading.Thread(target=self._run, daemon=True).start()

    def _answer(self, text):
        start, h = parse_head(text)
        self.got.append((time.monotonic(), start, h))
        if len(self.got) <= self.silent_for:
            return None
        lines = [f"SIP/2.0 {self.code} X"] + [f"Via: {v}" for v in h["via"]]
        lines += [f"From: {h['from'][0]}", f"To: {h['to'][0]}", f"Call-ID: {h['call-id'][0]}",
                  f"CSeq: {h['cseq'][0]}", "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _run(self):
        if self.transport == "udp":
            while True:
                data, src = self.sock.recvfrom(65535)
                reply = self._answer(data.decode())
                if reply:
                    self.sock.sendto(reply, src)
        conn, _ = self.sock.accept()
        reply = self._answer(conn.recv(65535).decode())
        conn.sendall(reply)
        time.sleep(1)
        conn.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_bye_is_sent_and_answered(tmp_path, transport):
    peer = FakeUas(transport)
    rec = _confirmed_legs(tmp_path)["agent"]
    rec.route_set, rec.remote_target = [], f"sip:agent@127.0.0.1:{peer.port};transport={transport}"
    rec.local_port = free_port()
    (report,) = end_legs([rec], timeout_s=3)
    assert (report["action"], report["result"], report["code"], report["transport"]) == ("bye", "answered", 200,
                                                                                         transport)
    (_, start, h), = peer.got
    assert start.startswith("BYE sip:agent@127.0.0.1:") and h["call-id"] == ["call-2@guard"]
    if transport == "udp":  # sent from the dead worker's own address (it is free)
        assert f"127.0.0.1:{rec.local_port};" in h["via"][0]


def test_bye_is_retransmitted_over_udp_and_gives_up(tmp_path):
    peer = FakeUas("udp", silent_for=2)
    rec = _confirmed_legs(tmp_path)["agent"]
    rec.route_set, rec.remote_target, rec.local_port = [], f"sip:agent@127.0.0.1:{peer.port}", 0
    (report,) = end_legs([rec], timeout_s=3)
    times = [t for t, _, _ in peer.got]
    assert report["result"] == "answered" and report["sent"] == 3 and len(times) == 3
    # Timer E: T1, then 2*T1 (a timer never fires early; the upper bounds only tell "doubled, not 32 s", so a
    # loaded host cannot fail them)
    assert 0.45 < times[1] - times[0] < 2.0 and 0.9 < times[2] - times[1] < 4.0, times
    dead = LegRecord(**{**rec.__dict__, "remote_target": f"sip:agent@127.0.0.1:{free_port()}"})
    t0 = time.monotonic()
    (report,) = end_legs([dead], timeout_s=1.2)
    # it gives up at its own deadline (1.2 s), not after Timer B's 32 s of retransmissions
    assert report["result"] == "timeout" and time.monotonic() - t0 < 10.0


class _Feed(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b'event: field_started\ndata: {"type": "field_started"}\n\n')
        if self.path.endswith("/ended/feed"):
            self.wfile.write(b'event: call_ended\ndata: {"call": "ended"}\n\n')
        self.wfile.flush()
        time.sleep(0.2)  # then the "worker" dies: the connection closes


@pytest.fixture
def feed_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_feed_reports_a_lost_stream(feed_server):
    got = []
    follow_feed(feed_server, "lost", "t", lambda kind, data: got.append((kind, data)))
    assert got == [("field_started", {"type": "field_started"}),
                   ("stream_lost", {"type": "stream_lost", "call": "lost", "reason": "closed"})]
    got.clear()
    follow_feed(feed_server, "ended", "t", lambda kind, data: got.append(kind))
    assert got == ["field_started", "call_ended"]  # a terminal event: nothing lost
    got.clear()
    follow_feed(free_port(), "none", "t", lambda kind, data: got.append(kind))
    assert got == []  # never connected: nothing was followed, nothing lost


def test_feed_of_a_stopping_worker_ends_with_call_ended():
    """A worker shutting down (SIGTERM) hangs up its calls: its feeds say so instead of breaking off."""
    from dtmfguard.sip.bridge import Bridge
    from dtmfguard.server.control import ControlServer

    bridge = Bridge("c1", customer=None, state="connected")
    following = threading.Event()

    class Guard:
        session_factory = None

        def get_bridge(self, call_id):
            following.set()  # the feed request reached the call: the stream is open
            return bridge if call_id == "c1" else None

    server = ControlServer(Guard(), "127.0.0.1", 0, "tok")
    server.start()
    got = []
    reader = threading.Thread(target=follow_feed, args=(server.address[1], "c1", "tok",
                                                        lambda kind, data: got.append((kind, data))), daemon=True)
    reader.start()
    assert following.wait(10)
    server.stop()
    reader.join(5)
    assert got == [("call_ended", {"call": "c1", "reason": "worker-stopping"})]


@pytest.mark.sip
@pytest.mark.slow
def test_worker_killed_while_both_legs_ring(tmp_path):
    """Kill a worker while the agent rings: the customer gets 503, the agent a CANCEL, within seconds."""
    base, aport, ctl = free_port(), free_port(), free_port()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--no-answer", "--timeout", "60", "--calls", "0"], "agent", tmp_path)
    sup = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{base}", "--agent",
                f"sip:agent@127.0.0.1:{aport}", "--workers", "2", "--rtp-port", str(rtp_base()),
                "--control", f"127.0.0.1:{ctl}"], "supervisor", tmp_path,
               env={"DTMFGUARD_API_TOKEN": "t", "RUNTIME_DIRECTORY": str(tmp_path), **_vault(tmp_path)})
    customer = None
    try:
        sup.wait_ready()
        agent.wait_ready()
        _wait_healthy(ctl)  # the workers start listening after the supervisor's ready line
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{base}", "--timeout", "40"],
                        "customer", tmp_path)
        assert customer.wait_for(lambda s: '"EARLY"' in s, 20), customer.output()
        state = next(tmp_path.glob("dtmfguard-run-*/worker-0.dialogs.json"))
        deadline = time.monotonic() + 5  # the agent's 180 reaches the worker a moment later
        while time.monotonic() < deadline and len(load_records(str(state))) < 2:
            time.sleep(0.02)
        os.kill(_health(ctl)[0]["pid"], signal.SIGKILL)
        killed = time.monotonic()
        done = {}
        while time.monotonic() - killed < 20 and len(done) < 2:
            for name, proc in (("customer", customer), ("agent", agent)):
                ev = [e for e in proc.events() if e.get("event") == "state" and e.get("state") == "DISCONNECTED"]
                if ev and name not in done:
                    done[name] = (round(time.monotonic() - killed, 2), ev[0]["status"])
            time.sleep(0.02)
        print(f"SIGKILL while ringing -> (s, status) customer {done.get('customer')}, agent {done.get('agent')}")
        assert done.get("customer", (99,))[0] < 5 and done["customer"][1] == 503, done
        assert done.get("agent", (99,))[0] < 5 and done["agent"][1] == 487, done  # CANCELled
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            loss = _health(ctl)[0]["last_loss"]
            if loss and not loss["ending"]:
                break
            time.sleep(0.1)
        results = sorted((r["action"], r["result"]) for r in loss["results"])
        assert results == [("cancel", "cancelled"), ("reject", "acked")], loss
    finally:
        if customer is not None:
            customer.stop()
        sup.stop()
        agent.stop()


@pytest.mark.sip
@pytest.mark.slow
@pytest.mark.needs_program("kamailio")
def test_ringing_call_fails_over_through_kamailio(tmp_path):
    """Kamailio in front: a worker killed while the agent rings answers 503 through the supervisor, Kamailio
    tries the other worker, and the customer's call is answered there (the agent's first call is CANCELled)."""
    front, base, ctl, aport = free_port(), free_port(), free_port(), free_port()
    kam_cfg, kam = kamailio_config(tmp_path, "--listen", f"127.0.0.1:{base}", "--workers", "2", "--front",
                                   f"127.0.0.1:{front}")["kamailio_cfg"], None
    sup = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{base}", "--agent",
                f"sip:agent@127.0.0.1:{aport}", "--workers", "2", "--rtp-port", str(rtp_base()),
                "--control", f"127.0.0.1:{ctl}"], "supervisor", tmp_path, env={"DTMFGUARD_API_TOKEN": "t", **_vault(tmp_path)})
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--answer-delay", "3", "--timeout", "60", "--calls", "0"], "agent", tmp_path)
    customer = None
    try:
        sup.wait_ready()
        agent.wait_ready()
        _wait_healthy(ctl)
        # Kamailio starts once both workers listen: its first OPTIONS probes find them up (a probe that
        # finds a worker down marks it inactive until the next one); ready when it answers OPTIONS itself
        kam = Kamailio(tmp_path, kam_cfg, run_dir="kamrun")
        kam.wait_up(front)
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{front}", "--play-s", "1",
                         "--timeout", "40"], "customer", tmp_path)
        assert agent.wait_for(lambda s: '"EARLY"' in s, 20), agent.output()
        deadline = time.monotonic() + 5  # the worker's health counts the call a moment later
        while time.monotonic() < deadline and not any(w.get("health", {}).get("active_calls") for w in _health(ctl)):
            time.sleep(0.05)
        (ringing,) = [w for w in _health(ctl) if w.get("health", {}).get("active_calls") == 1]
        os.kill(ringing["pid"], signal.SIGKILL)
        assert customer.wait(40) == 0, customer.output()  # answered after all, by the other worker
        states = [(e["call"], e["state"], e["status"]) for e in agent.events() if e.get("event") == "state"]
        assert (0, "DISCONNECTED", 487) in states and (1, "CONFIRMED", 200) in states, states
        loss = next(w for w in _health(ctl) if w["index"] == ringing["index"])["last_loss"]
        assert sorted((r["action"], r["result"]) for r in loss["results"]) == [("cancel", "cancelled"),
                                                                               ("reject", "acked")], loss
    finally:
        if customer is not None:
            customer.stop()
        sup.stop()
        agent.stop()
        if kam is not None:
            kam.stop()


def _health(ctl):
    with urllib.request.urlopen(f"http://127.0.0.1:{ctl}/workers", timeout=5) as r:  # 200 even while not OK
        return json.loads(r.read())["workers"]


def _wait_healthy(ctl, timeout=20.0):
    """Until every worker of the supervisor on ``ctl`` reports healthy (listening)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = _health(ctl)
        if workers and all(w.get("health", {}).get("ok") for w in workers):
            return workers
        time.sleep(0.1)
    raise AssertionError(f"workers not healthy within {timeout} s: {workers}")
