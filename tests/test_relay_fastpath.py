# SPDX-License-Identifier: GPL-2.0-or-later
"""The relay's per-packet work in C (native/relayio.c, ``dtmfguard.relay._relay_native``) against the Python path.

The C drain reads the sockets of calls whose first packets the Python handlers have checked (the agent's
RTP passed through to the customer byte for byte, the customer's G.711 decoded), and ``send_frames``
encodes and sends the relay's stream to each agent.  Whatever the traffic (two laws and G.722, telephone
events, a codec change by re-offer, an SSRC change, a customer moving to a new source address, garbage
on an agent's socket, a CSRC list), a relay with the fast path must put exactly the same bytes on the wire as one
without it (``fast_io=False``), mask the same keys, and report the same counters.
"""
from __future__ import annotations

import random
import socket
import struct
import time

import numpy as np
import pytest

from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.relay import engine
from dtmfguard.relay.codecs import DECODE_TABLES, ENCODE_TABLES, g722_available, make_codec
from dtmfguard.relay.engine import Relay
from dtmfguard.testkit.synth import keypresses

relayio = pytest.importorskip("dtmfguard.relay._relay_native", reason="the C extension is not built (setup.py build_ext)")

FRAME = 160
HDR = struct.Struct("!BBHII")
NAMES = {0: "PCMU", 8: "PCMA", 9: "G722"}


def _sdp(port: int, pts: list[int]) -> str:
    maps = "".join(f"a=rtpmap:{pt} {NAMES[pt]}/8000\r\n" for pt in pts)
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {' '.join(map(str, pts))} 101\r\n{maps}"
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


def _mport(sdp: str) -> int:
    return int(next(ln for ln in sdp.split("\r\n") if ln.startswith("m=")).split()[1])


def _sock() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def _read_all(s: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(s.recv(4096))
        except BlockingIOError:
            return out


def _scenario(fast_io: bool, ticks: int = 70) -> dict:
    """Drive one relay through the traffic described in the module doc; return every datagram the peers
    received (per tick), the calls' totals and the relay's counters."""
    pts = [0, 8, 0, 8, 0] + ([9] if g722_available() else [])
    random.seed(1234)  # the calls' SSRCs, sequence numbers and timestamps (random) are then the same in both runs
    relay = Relay(ng=("127.0.0.1", 0), rtp_range=(31000, 31399), max_calls=20, fast_io=fast_io,
                  pipeline_factory=lambda name: CallPipeline(8000, mask_mode="always", name=name))
    assert relay.fast_io == fast_io
    rng = np.random.default_rng(11)
    keys = keypresses("4111111111111111", rng=np.random.default_rng(4))[0]
    speech = rng.normal(0, 900, ticks * FRAME)
    audio = np.clip(np.concatenate([keys, speech])[: ticks * FRAME], -32768, 32767).astype(np.int16)
    peers = []
    fast_seen = {"routes": 0, "outs": 0}
    try:
        for k, pt in enumerate(pts):
            c, g = _sock(), _sock()
            cid = f"fast-{k}"
            off = relay.handle({"command": "offer", "call-id": cid, "from-tag": "c", "sdp": _sdp(c.getsockname()[1], [pt])})
            ans = relay.handle({"command": "answer", "call-id": cid, "from-tag": "c", "to-tag": "a",
                                "sdp": _sdp(g.getsockname()[1], [pt])})
            assert off["result"] == ans["result"] == "ok"
            peers.append({"pt": pt, "c": c, "g": g, "to_c": ("127.0.0.1", _mport(ans["sdp"])),
                          "to_g": ("127.0.0.1", _mport(off["sdp"])), "cid": cid, "ssrc": 1000 + k,
                          "codec": make_codec(NAMES[pt])})
        received = []
        for t in range(ticks):
            if t == 20:  # call 2: the customer re-offers PCMA only (a codec change mid-call)
                p = peers[2]
                r = relay.handle({"command": "offer", "call-id": p["cid"], "from-tag": "c",
                                  "sdp": _sdp(p["c"].getsockname()[1], [8])})
                assert r["result"] == "ok"
                p["pt"], p["codec"] = 8, make_codec("PCMA")
            if t == 25:  # call 3: the customer's packets come from a new address (the latched one stays)
                peers[3]["c"].close()
                peers[3]["c"] = _sock()
            if t == 40:
                peers[4]["ssrc"] += 77  # call 4: a new SSRC (the jitter buffer re-anchors)
            for k, p in enumerate(peers):
                frame = audio[((t + 7 * k) % ticks) * FRAME:((t + 7 * k) % ticks + 1) * FRAME]
                pay = p["codec"].encode(frame)
                b0, csrc = 0x80, b""
                if k == 1 and t in (35, 36, 50):  # a CSRC in the header: C hands the packet to the Python parser
                    b0, csrc = 0x81, struct.pack("!I", 4242)
                p["c"].sendto(HDR.pack(b0, p["pt"] | (0x80 if t == 0 else 0), t, t * FRAME, p["ssrc"]) + csrc + pay,
                              p["to_c"])
                if k == 0 and 10 <= t < 16:  # telephone-events for key 5, sent alongside the audio
                    ev = struct.pack("!BBH", 5, 0x80 if t == 15 else 10, (t - 9) * FRAME)
                    p["c"].sendto(HDR.pack(0x80, 101 | (0x80 if t == 10 else 0), 5000 + t, 10 * FRAME, p["ssrc"]) + ev,
                                  p["to_c"])
                # the agent talks back: passed through (a short payload too, and at t 30 garbage on call 1)
                p["g"].sendto(HDR.pack(0x80, p["pt"], t, t * FRAME, 9000 + k) + bytes([t % 256]) * (160 - k), p["to_g"])
                if k == 1 and t == 30:
                    p["g"].sendto(b"not rtp at all", p["to_g"])
            time.sleep(0.003)
            for _ in range(20):
                if not relay.serve_media():
                    break
            relay.tick()
            fast_seen["routes"] = max(fast_seen["routes"], len(relay._routes))
            fast_seen["outs"] = max(fast_seen["outs"], sum(c.out is not None for c in relay.calls.values()))
            time.sleep(0.003)
            received.append([(_read_all(p["g"]), _read_all(p["c"])) for p in peers])
        totals = []
        for p in peers:
            q = relay.handle({"command": "query", "call-id": p["cid"]})
            assert q["result"] == "ok"
            totals.append({"legs": [{k: v for k, v in lg.items() if k not in ("local port", "remote")}
                                    for lg in q["totals"]["legs"]],
                           "dtmfguard": q["totals"]["dtmfguard"], "codec": q["totals"]["codec"]})
        counters = {k: relay.counters[k] for k in ("frames", "tick_errors", "rtp_garbage")}
        st = relay.statistics()
        assert st["fast_io"] == int(fast_io) and st["fast_routes"] == len(relay._routes)
        deleted = [relay.handle({"command": "delete", "call-id": p["cid"], "from-tag": "c"}) for p in peers]
        routes_left = len(relay._routes)
    finally:
        relay.close()
        for p in peers:
            p["c"].close()
            p["g"].close()
    for d in deleted:
        d.pop("created", None)
        d.pop("last signal", None)
        for lg in d["totals"]["legs"]:
            lg.pop("local port")
            lg.pop("remote")
    return {"received": received, "totals": totals, "counters": counters, "deleted": deleted,
            "fast_seen": fast_seen, "routes_left": routes_left}


def test_the_fast_path_puts_the_same_bytes_on_the_wire_as_the_python_path():
    slow = _scenario(False)
    fast = _scenario(True)
    # the fast path did carry the calls (else the comparison tests nothing)
    assert slow["fast_seen"] == {"routes": 0, "outs": 0}
    n = len(fast["totals"])
    g722 = sum(t["codec"] == "G722" for t in fast["totals"])  # (a G.722 customer is decoded in Python)
    assert fast["fast_seen"]["routes"] == 2 * n - g722 and fast["fast_seen"]["outs"] == n
    assert fast["routes_left"] == 0  # a deleted call leaves no route behind (its descriptors may be reused)
    # something was masked and the telephone-events were taken (not passed on)
    assert fast["totals"][0]["dtmfguard"]["digits_rfc4733"] >= 1
    assert fast["counters"]["tick_errors"] == 0
    for t, (a, b) in enumerate(zip(slow["received"], fast["received"])):
        assert a == b, f"tick {t} differs"
    agent_pkts = sum(len(g) for tick in fast["received"] for g, _ in tick)
    cust_pkts = sum(len(c) for tick in fast["received"] for _, c in tick)
    assert agent_pkts >= 60 * n and cust_pkts >= 60 * n - 1  # (call 3's customer moved: it still gets them)
    assert slow["totals"] == fast["totals"]
    assert slow["counters"] == fast["counters"]
    assert slow["deleted"] == fast["deleted"]
    # the garbage datagram on call 1's agent socket was counted, not passed on
    assert fast["totals"][1]["legs"][1]["RTP"]["errors"] == 1


def test_the_g711_tables_in_c_are_the_pythons():
    """send_frames encodes with the tables it is given (every 16-bit pattern); the drain decodes with the
    ones set at import (every byte): compared over real sockets."""
    a, b = _sock(), _sock()
    try:
        samples = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
        for law, idx in (("PCMU", 0), ("PCMA", 1)):
            out = relayio.Out(a.fileno(), b.getsockname(), 0, idx, 1, 2, 3)
            got = []
            for i in range(0, samples.size, 1024):
                assert relayio.send_frames([out], [samples[i:i + 1024]], engine._ENCODE_PAIR) == []
                got.append(b.recv(4096)[12:])
            assert b"".join(got) == ENCODE_TABLES[law][samples.view(np.uint16)].tobytes()
            assert out.seq == 2 + 64 and out.ts == 3 + 64 * 160 and out.tx_packets == 64
        # decoding: a Cust route over a real epoll set
        import select

        ep = select.epoll()
        ep.register(b.fileno(), select.POLLIN)
        for law, idx in (("PCMU", 0), ("PCMA", 1)):
            route = relayio.Cust(b.fileno(), 0, idx, "token")
            a.sendto(HDR.pack(0x80, 0, 1, 2, 3) + bytes(range(256)), b.getsockname())
            time.sleep(0.01)
            n, slow, audio, pcm, other = relayio.drain(ep.fileno(), {b.fileno(): route}, 16)
            assert (n, slow, other) == (1, [], [])
            assert audio == [("token", 3, 2, 0, 256)]
            assert np.array_equal(np.frombuffer(pcm, np.int16), DECODE_TABLES[law])
            assert route.rx_packets == 1 and route.rx_bytes == 12 + 256
        ep.close()
    finally:
        a.close()
        b.close()


def test_what_c_cannot_take_is_handed_back():
    """A customer packet that is not the plain G.711 case (another payload type, a CSRC in the header)
    comes back whole for the Python handler; a ready socket without a route is named for Python; a frame
    send_frames cannot encode (float samples, 2-D) is reported and nothing is sent for it; a pass-through
    drops what is not RTP."""
    import select

    a, b, c, d = _sock(), _sock(), _sock(), _sock()
    ep = select.epoll()
    try:
        for s in (b, c, d):
            ep.register(s.fileno(), select.POLLIN)
        cust = relayio.Cust(b.fileno(), 0, 0, "call")
        fwd = relayio.Fwd(d.fileno(), a.fileno(), a.getsockname())
        ev = HDR.pack(0x80, 101, 1, 2, 3) + b"\x05\x0a\x00\xa0"
        csrc = HDR.pack(0x81, 0, 1, 2, 3) + b"\x00\x00\x00\x09" + b"\xff" * 160
        a.sendto(ev, b.getsockname())
        a.sendto(b"x", c.getsockname())
        a.sendto(b"garbage", d.getsockname())
        time.sleep(0.01)
        n, slow, audio, pcm, other = relayio.drain(ep.fileno(), {b.fileno(): cust, d.fileno(): fwd}, 16)
        assert n == 3 and slow == [c.fileno()] and audio == [] and other == [("call", ev)] and len(pcm) == 0
        assert fwd.rx_packets == 1 and fwd.rx_errors == 1 and fwd.tx_packets == 0
        assert _read_all(a) == []
        a.sendto(csrc, b.getsockname())
        rtp = HDR.pack(0x80, 8, 1, 2, 3) + b"\x01\x02"
        a.sendto(rtp, d.getsockname())
        time.sleep(0.01)
        c.recv(10)
        n, slow, audio, pcm, other = relayio.drain(ep.fileno(), {b.fileno(): cust, d.fileno(): fwd}, 16)
        assert other == [("call", csrc)] and fwd.tx_packets == 1 and fwd.tx_bytes == len(rtp)
        assert _read_all(a) == [rtp]
        out = relayio.Out(a.fileno(), b.getsockname(), 0, 0, 1, 2, 3)
        bad = [np.zeros(160), np.zeros((2, 80), np.int16), b"\xff" * 160]
        assert relayio.send_frames([out] * 3, bad, engine._ENCODE_PAIR) == [0, 1]
        time.sleep(0.01)
        got = _read_all(b)
        assert len(got) == 1 and got[0][12:] == b"\xff" * 160 and out.seq == 3
        with pytest.raises(ValueError):
            relayio.Out(a.fileno(), ("not-an-address", 5), 0, 0, 1, 2, 3)
    finally:
        ep.close()
        for s in (a, b, c, d):
            s.close()


def test_payment_modes_unmasked_stream_is_the_input_delayed_by_the_look_ahead():
    """mask_mode "payment" without a session: the agent hears the customer unmasked, delayed like the masked
    stream (the pipeline's raw delay line: the previous frame when frames are as long as the look-ahead, a
    concatenation otherwise).  Checked against the whole input shifted by the masker's delay, over frame sizes
    that change, with the caller reusing its frame buffer."""
    rng = np.random.default_rng(3)
    pl = CallPipeline(8000, mask_mode="payment", name="raw")
    delay = int(pl.masker.delay_samples)
    assert delay > 0
    sizes = [160] * 30 + [80, 240, 160, 1, 319] + [160] * 20
    x = rng.normal(0, 3000, sum(sizes)).clip(-32768, 32767).astype(np.int16)
    want = np.concatenate([np.zeros(delay, np.int16), x])[: x.size]
    buf = np.empty(400, np.int16)
    got, pos = [], 0
    for n in sizes:
        buf[:n] = x[pos:pos + n]
        got.append(np.array(pl.process_customer_frame(buf[:n]), dtype=np.int16))
        buf[:] = 12345  # the caller reuses its buffer at once
        pos += n
    assert pl.stats["errors"] == 0
    assert np.array_equal(np.concatenate(got), want)
