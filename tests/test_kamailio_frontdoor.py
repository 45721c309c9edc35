# SPDX-License-Identifier: GPL-2.0-or-later
"""The generated Kamailio front door rejects garbage before it reaches a worker (issue 18), with a real
Kamailio: peers outside the allow-list get 403, a flooding source is cut by pike, REGISTER 405, unknown
methods 501, a SIP/7.0 request is dropped by Kamailio's parser (the workers answer 505), more than 4000 bytes 513, SDP the workers refuse 488; none of it is
forwarded (the workers' addresses receive nothing)."""
from __future__ import annotations

import socket
import time

import pytest

import sip_fuzz
from sip_peers import free_port
from sip_peers.kamailio import Kamailio, kamailio_config

pytestmark = [pytest.mark.sip, pytest.mark.needs_program("kamailio")]


def _bind(host):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))
        return s
    except OSError:
        pytest.skip(f"cannot bind {host} (needs 127.0.0.0/8 on lo)")


def _ask(sock, front, raw, wait=1.5):
    sock.sendto(raw, ("127.0.0.1", front))
    sock.settimeout(wait)
    try:
        data, _ = sock.recvfrom(65535)
    except socket.timeout:
        return None
    return int(data.split(b" ", 2)[1])


def _msg(sock, front, fields=None, sdp="", head="", version_fix=None):
    m = sip_fuzz.Message("x", sip_fuzz._template(fields or {}, extra_head=head, extra_sdp=sdp))
    lhost, lport = sock.getsockname()
    return m.render(ghost="127.0.0.1", gport=front, lhost=lhost, lport=lport, TP="UDP", uid=f"{time.time_ns():x}",
                    rtp=7000, rtcp=7001)


def test_front_door_sanitises(tmp_path):
    front, base = free_port(), free_port()
    # the "workers": plain sockets on their ports that count what reaches them
    workers = []
    for port in (base, base + 10):
        w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        w.bind(("127.0.0.1", port))
        w.setblocking(False)
        workers.append(w)
    paths = kamailio_config(tmp_path, "--listen", f"127.0.0.1:{base}", "--agent", "sip:agent@127.0.0.1:5999",
                            "--workers", "2", "--front", f"127.0.0.1:{front}", "--allow", "127.0.0.2,127.0.0.4/32")
    kam = Kamailio(tmp_path, paths["kamailio_cfg"])
    try:
        peer, stranger, flooder = _bind("127.0.0.2"), _bind("127.0.0.3"), _bind("127.0.0.4")
        opts = {"method": "OPTIONS", "cseq_method": "OPTIONS", "ruri_user": "x"}
        for _ in range(40):  # Kamailio up: an allowed peer's OPTIONS to Kamailio itself is answered
            if _ask(peer, front, _msg(peer, front, opts).replace(b"sip:x@", b"sip:", 1), 0.25) == 200:
                break
        else:
            pytest.fail("kamailio did not answer: " + kam.log()[-2000:])
        cases = [
            (stranger, {}, "", "", 403),
            (peer, {"method": "REGISTER", "cseq_method": "REGISTER"}, "", "", 405),
            (peer, {"method": "FOOBAR", "cseq_method": "FOOBAR"}, "", "", 501),
            (peer, {"version": "SIP/7.0"}, "", "", None),  # Kamailio's own parser drops it: never forwarded
            (peer, {}, "", "X-Pad: " + "a" * 4200 + "\r\n", 513),
            (peer, {"sdp_c_addr": "A" * 254}, "", "", 488),
            (peer, {"sdp_m_proto": "UDP/TLS/RTP/SAVPF"}, "a=fingerprint:sha-256 AB:CD\r\n", "", 488),
        ]
        got = [(_ask(s, front, _msg(s, front, f, sdp, head)), want) for s, f, sdp, head, want in cases]
        assert [g for g, _ in got] == [w for _, w in got], got
        # a flood from one allowed source: pike cuts it (no answers for most of it)
        answered = 0
        for _ in range(200):
            flooder.sendto(_msg(flooder, front, opts).replace(b"sip:x@", b"sip:", 1), ("127.0.0.1", front))
        deadline = time.monotonic() + 2.0
        flooder.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                flooder.recvfrom(65535)
                answered += 1
            except socket.timeout:
                pass
        assert answered < 100, answered
        time.sleep(0.5)
        reached = 0
        for w in workers:
            try:
                while True:
                    data = w.recv(65535)
                    reached += not data.startswith(b"OPTIONS sip:127.0.0.1")  # dispatcher's own probes
            except BlockingIOError:
                pass
        assert reached == 0
    finally:
        kam.stop()
