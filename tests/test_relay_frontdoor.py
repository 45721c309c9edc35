# SPDX-License-Identifier: GPL-2.0-or-later
"""Relay mode's Kamailio script as the carrier-facing front door: hostile requests sent over raw UDP
through a running Kamailio (Debian) whose rtpengine set is a running `dtmfguard relay`.

Each request is answered by Kamailio with the status serve mode's front door gives (413/513 size, 400
sanity, 483 Max-Forwards, 405/501 methods with Allow, 400 overlong Call-ID, 488 SDP the relay would refuse,
403 outside the allow-list), and none of them reaches the relay as an ng command; an offer the relay
refuses ends in 503 without harming it; a flood from one source is cut off by pike; a well-formed INVITE
still reaches the agents' PBX with the relay in its SDP.  The sources are loopback addresses other than
127.0.0.1 (the PBX's address, trusted), so the allow-list and pike apply to them.
"""
from __future__ import annotations

import os
import socket
import time

import pytest

from sip_peers import free_port
from sip_peers.kamailio import Kamailio, kamailio_config, ng, relay_proc

pytestmark = [pytest.mark.sip, pytest.mark.needs_program("kamailio")]

ALLOWED = ("127.0.0.2", "127.0.0.5", "127.0.0.6")


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("frontdoor")
    ngport, kport, pbx_port = free_port(), free_port(), free_port()
    relay = relay_proc(tmp, "relay", ngport, verbose=False)
    pbx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # stands in for the agents' PBX: what arrives
    pbx.bind(("127.0.0.1", pbx_port))
    pbx.settimeout(3.0)
    kam = None
    try:
        relay.wait_ready()
        paths = kamailio_config(tmp, "--mode", "relay", "--relay", f"127.0.0.1:{ngport}", "--agent",
                                f"sip:agents@127.0.0.1:{pbx_port}", "--front", f"127.0.0.1:{kport}", "--allow",
                                ",".join(ALLOWED))
        kam = Kamailio(tmp, paths["kamailio_cfg"])
        kam.wait_up(kport, src="127.0.0.6")  # an allowed source: Kamailio answers OPTIONS to itself when up
        yield {"kport": kport, "ngport": ngport, "pbx": pbx, "relay": relay, "kam": kam.p, "log": kam.err_path}
    finally:
        if kam is not None:
            kam.stop()
        relay.stop()
        pbx.close()


_n = [0]


def _request(method: str, kport: int, *, src: str = "127.0.0.2", call_id: str | None = None, body: str = "",
             extra: str = "", max_forwards: int = 70, cseq: str | None = None, ruri: str | None = None) -> bytes:
    _n[0] += 1
    call_id = call_id or f"fd{_n[0]}-{os.urandom(4).hex()}@test"
    ruri = ruri or (f"sip:127.0.0.1:{kport}" if method == "OPTIONS" else f"sip:pay@127.0.0.1:{kport}")
    head = (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src}:5999;branch=z9hG4bK{os.urandom(6).hex()};rport\r\n"
            f"Max-Forwards: {max_forwards}\r\n"
            f"From: <sip:customer@{src}>;tag=f{_n[0]}\r\n"
            f"To: <sip:pay@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq or '1 ' + method}\r\n"
            f"Contact: <sip:customer@{src}:5999>\r\n{extra}")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()


def _send(kport: int, data: bytes, *, src: str = "127.0.0.2", timeout: float = 2.0) -> str | None:
    """Send from ``src`` (port 5999) and return the first final response's status line (None: no answer)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, 5999))
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", kport))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = s.recv(65535).decode("utf-8", "replace")
            except socket.timeout:
                return None
            status = reply.split("\r\n", 1)[0]
            if not status.startswith("SIP/2.0 1"):
                return reply
    return None


def _sdp(proto="RTP/AVP", conn="c=IN IP4 127.0.0.2", extra=""):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\n" + conn + "\r\nt=0 0\r\n"
            f"m=audio 40000 {proto} 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{extra}")


def _status(reply: str | None) -> str:
    assert reply is not None, "no answer"
    return reply.split("\r\n", 1)[0]


def _ng_requests(front) -> int:
    return ng(front["ngport"], {"command": "statistics"})["statistics"]["ng_requests"]


def test_hostile_requests_get_the_front_doors_answers_and_never_reach_the_relay(front):
    k = front["kport"]
    before = _ng_requests(front)
    big = _request("INVITE", k, body=_sdp(), extra="X-Pad: " + "a" * 5000 + "\r\n")
    assert _status(_send(k, big)).startswith("SIP/2.0 513")
    assert _status(_send(k, _request("INVITE", k, body=_sdp(), cseq="abc INVITE"))).startswith("SIP/2.0 400")
    assert _status(_send(k, _request("INVITE", k, body=_sdp(), max_forwards=0))).startswith("SIP/2.0 483")
    reply = _send(k, _request("REGISTER", k))
    assert _status(reply).startswith("SIP/2.0 405") and "Allow: INVITE" in reply
    reply = _send(k, _request("FOOBAR", k))
    assert _status(reply).startswith("SIP/2.0 501") and "Allow: INVITE" in reply
    long_id = "x" * 300 + "@test"
    assert _status(_send(k, _request("INVITE", k, call_id=long_id, body=_sdp()))) == \
        "SIP/2.0 400 Call-ID or Tag Too Long"
    dtls = _sdp("UDP/TLS/RTP/SAVPF", extra="a=fingerprint:sha-256 AB:CD\r\n")
    assert _status(_send(k, _request("INVITE", k, body=dtls))).startswith("SIP/2.0 488")
    wide = _sdp(conn="c=IN IP4 " + "9" * 240)
    assert _status(_send(k, _request("INVITE", k, body=wide))).startswith("SIP/2.0 488")
    # outside the allow-list: 403, whatever the request
    assert _status(_send(k, _request("INVITE", k, src="127.0.0.4", body=_sdp()), src="127.0.0.4")) == \
        "SIP/2.0 403 Forbidden"
    assert _ng_requests(front) == before + 1  # none of them became an ng command (+1: this statistics request)
    assert front["kam"].poll() is None and front["relay"].p.poll() is None


def test_an_offer_the_relay_refuses_is_a_503_and_the_relay_carries_on(front):
    k = front["kport"]
    before = ng(front["ngport"], {"command": "statistics"})["statistics"]
    nokey = _sdp("RTP/SAVP")  # SRTP without an SDES key: the relay answers the offer with an error
    assert _status(_send(k, _request("INVITE", k, body=nokey))).startswith("SIP/2.0 503")
    after = ng(front["ngport"], {"command": "statistics"})["statistics"]
    assert after["ng_errors"] == before["ng_errors"] + 1 and after["active_calls"] == 0
    assert ng(front["ngport"], {"command": "ping"}) == {"result": "pong"}


def test_a_wellformed_invite_reaches_the_pbx_with_the_relay_in_its_sdp(front):
    k = front["kport"]
    call_id = f"good-{os.urandom(4).hex()}@test"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.2", 5999))
        s.sendto(_request("INVITE", k, call_id=call_id, body=_sdp()), ("127.0.0.1", k))
        got = front["pbx"].recv(65535).decode()
    assert got.startswith("INVITE sip:") and f"Call-ID: {call_id}" in got
    assert "c=IN IP4 127.0.0.1" in got and "m=audio 40000" not in got  # the relay's address and port
    calls = ng(front["ngport"], {"command": "list"})["calls"]
    assert call_id in calls
    ng(front["ngport"], {"command": "delete", "call-id": call_id, "from-tag": "x"})


def test_a_flood_from_one_source_is_cut_off(front):
    k = front["kport"]
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.5", 0))
        s.settimeout(0.05)
        for _ in range(120):
            s.sendto(_request("OPTIONS", k, src="127.0.0.5"), ("127.0.0.1", k))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                answered += s.recv(65535).startswith(b"SIP/2.0 200")
            except socket.timeout:
                continue
    assert 0 < answered < 60, answered  # pike lets about 30 per 2 s through, then drops the source
    assert "flood from 127.0.0.5" in front["log"].read_text()
    # another source is not affected
    assert _status(_send(k, _request("OPTIONS", k, src="127.0.0.6"), src="127.0.0.6")).startswith("SIP/2.0 200")
