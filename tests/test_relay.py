# SPDX-License-Identifier: GPL-2.0-or-later
"""Relay mode building blocks (bencode, SDP rewriting, RTP, jitter buffer) and the relay itself over real
UDP sockets on 127.0.0.1, driven by the ng protocol as Kamailio drives it (no SIP, no Kamailio here:
see test_relay_kamailio.py for that)."""
from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time

import numpy as np
import pytest

from dtmfguard.dsp.g711 import ulaw_decode, ulaw_encode
from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.relay import bencode
from dtmfguard.relay.engine import Relay
from dtmfguard.relay.rtp import JitterBuffer, RtpError, build_header, parse
from dtmfguard.relay.sdp import SdpError, parse_audio, rewrite
from dtmfguard.signalling.rfc4733 import TelephoneEvent, serialise_payload
from dtmfguard.testkit.synth import keypresses

PAN = "4111111111111111"


# -- bencode ---------------------------------------------------------------------------------------------
def test_bencode_round_trip_and_sorted_keys():
    msg = {"sdp": "v=0\r\n", "command": "offer", "flags": ["a", "b"], "n": -12, "nested": {"z": [], "a": 0}}
    data = bencode.encode(msg)
    assert data.startswith(b"d7:command5:offer5:flagsl1:a1:be1:ni-12e")  # keys sorted
    assert bencode.decode(data) == msg
    assert bencode.decode(b"3:\xff\xfe\x00") == b"\xff\xfe\x00"  # not UTF-8: stays bytes


@pytest.mark.parametrize("data, message", [
    (b"", "truncated value"), (b"i12", "unterminated integer"), (b"i012e", "non-canonical integer at offset 0"),
    (b"5:abc", "truncated string"), (b"d3:keyi1e", "unterminated dictionary"), (b"di1ei2ee", "dictionary key is "
     "not a string at offset 1"), (b"i1ei2e", "trailing data after the value at offset 3"), (b"x", "unexpected byte "
     "at offset 0"), (b"l" * 40 + b"e" * 40, "nesting too deep")])
def test_bencode_rejects_garbage_with_a_clear_message(data, message):
    with pytest.raises(bencode.BencodeError) as err:
        bencode.decode(data)
    assert str(err.value) == message


# -- SDP -------------------------------------------------------------------------------------------------
WEBRTCISH = ("v=0\r\no=- 42 2 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
             "m=audio 49170 RTP/AVP 18 0 8 9 101 13\r\nc=IN IP4 192.0.2.10\r\na=rtcp:49171 IN IP4 192.0.2.10\r\n"
             "a=candidate:1 1 udp 2122260223 10.0.0.2 54898 typ host\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretsecret\r\n"
             "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:9 G722/8000\r\n"
             "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=rtcp-mux\r\na=ssrc:1 cname:x\r\n"
             "a=ptime:20\r\na=sendrecv\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n")


def test_sdp_parse_keeps_only_relayable_codecs():
    a = parse_audio(WEBRTCISH, g722=True)
    assert (a.address, a.port, a.rtcp_port) == ("192.0.2.10", 49170, 49171)
    assert a.codecs == {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000), 101: ("TELEPHONE-EVENT", 8000)}
    assert a.event_pts == (101,) and a.audio_pts == (0, 8, 9) and a.direction == "sendrecv"
    assert 9 not in parse_audio(WEBRTCISH, g722=False).codecs


def test_sdp_rewrite_puts_the_relay_in_and_strips_ice():
    out = rewrite(WEBRTCISH, "198.51.100.7", 30000)
    lines = out.split("\r\n")
    assert "c=IN IP4 198.51.100.7" in lines and "o=- 42 2 IN IP4 198.51.100.7" in lines
    assert "m=audio 30000 RTP/AVP 0 8 9 101" in lines and "a=rtcp:30001" in lines
    assert "m=video 0 RTP/AVP 96" in lines  # refused, RFC 3264 §6
    for gone in ("candidate", "ice-", "G729", "annexb", "rtcp-mux", "ssrc", "192.0.2.10", "BUNDLE"):
        assert gone not in out, gone
    assert "a=rtpmap:101 telephone-event/8000" in lines and "a=ptime:20" in lines
    assert parse_audio(out).port == 30000  # the rewritten SDP parses again


@pytest.mark.parametrize("sdp, message", [
    ("", "empty SDP"), ("x=1\r\n", "SDP does not start with v="),
    ("v=0\r\nm=audio 1000 RTP/AVP 18\r\nc=IN IP4 1.2.3.4\r\na=rtpmap:18 G729/8000\r\n",
     "no supported audio codec offered (PCMU, PCMA, G722)"),
    ("v=0\r\nm=audio 1000 RTP/AVP 0\r\n", "no connection address (c=) for the audio stream"),
    ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 1000 RTP/AVP 96\r\n", "no audio stream in the SDP"),
    ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n", "bad m= line")])
def test_sdp_errors_are_clear(sdp, message):
    with pytest.raises(SdpError) as err:
        parse_audio(sdp)
    assert str(err.value) == message


# -- RTP and the jitter buffer ---------------------------------------------------------------------------
def test_rtp_parse_skips_csrc_extension_and_padding():
    hdr = bytes([0x80 | 0x20 | 0x10 | 2, 0x80 | 8]) + struct.pack("!HII", 7, 1600, 99) + b"\0" * 8
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\1\2\3\4"
    pkt = parse(hdr + ext + b"payload" + b"\0\0\3")
    assert (pkt.pt, pkt.marker, pkt.seq, pkt.ts, pkt.ssrc, pkt.payload) == (8, True, 7, 1600, 99, b"payload")
    assert parse(build_header(0, False, 65535, 2**32 - 1, 5) + b"x").payload == b"x"
    for bad in (b"\x80\x00", b"\x40" + b"\0" * 11, bytes([0x90, 0]) + b"\0" * 10):
        with pytest.raises(RtpError):
            parse(bad)


def _frames(n, start=0):
    return [np.full(160, i + start, dtype=np.int16) for i in range(n)]


def test_jitter_buffer_reorders_and_keeps_the_stream_aligned():
    jb = JitterBuffer(depth_ms=40)
    order = [0, 2, 1, 3, 5, 4, 6, 7]
    out = []
    for k, i in enumerate(order):
        jb.put_audio(1, 1000 + 160 * i, _frames(8)[i])
        if k >= 1:
            out.append(jb.pop())
    out += [jb.pop() for _ in range(3)]
    values = [int(f[0]) for f in out]
    assert values == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]  # two frames of playout delay, then in order
    assert jb.stats["late"] == 0 and jb.stats["concealed"] == 2


def test_jitter_buffer_conceals_a_loss_with_half_level_then_silence():
    jb = JitterBuffer(depth_ms=0)
    f = np.full(160, 1000, dtype=np.int16)
    jb.put_audio(1, 0, f)
    assert jb.pop()[0] == 1000
    assert jb.pop()[0] == 500 and jb.pop()[0] == 0  # packets 1, 2 lost
    jb.put_audio(1, 480, f)
    assert jb.pop()[0] == 1000 and jb.stats["concealed"] == 2


def test_jitter_buffer_assembles_other_packet_sizes_sample_exactly():
    rng = np.random.default_rng(3)
    x = rng.integers(-3000, 3000, 240 * 10).astype(np.int16)
    jb = JitterBuffer(depth_ms=0)
    out = []
    for i in range(10):  # 30 ms packets into 20 ms frames
        jb.put_audio(7, 240 * i, x[240 * i: 240 * (i + 1)])
        while jb.play_ts is not None and (240 * (i + 1) - jb.play_ts) % (1 << 32) >= 160:
            out.append(jb.pop())
    assert np.array_equal(np.concatenate(out), x[: 160 * len(out)]) and len(out) == 15


def test_jitter_buffer_resyncs_on_new_ssrc_and_big_jumps():
    jb = JitterBuffer(depth_ms=0)
    jb.put_audio(1, 0, _frames(1)[0])
    jb.put_audio(2, 123456, _frames(1, 5)[0])  # new source
    assert jb.stats["resync"] == 1 and int(jb.pop()[0]) == 5
    jb.put_audio(2, 123456 + 80000, _frames(1, 9)[0])  # 10 s ahead
    assert jb.stats["resync"] == 2 and int(jb.pop()[0]) == 9


def test_jitter_buffer_releases_events_at_their_timestamp():
    jb = JitterBuffer(depth_ms=40)
    jb.put_audio(1, 0, _frames(1)[0])  # playout starts at -320
    assert jb.put_event(1, 160, b"\x05\x0a\x00\xa0") == []
    assert jb.due_events() == []  # playout at -320
    jb.pop()
    jb.pop()
    jb.pop()  # playout now at 160: the frame about to play holds the event start
    assert jb.due_events() == [(1, 160, b"\x05\x0a\x00\xa0")]


# -- the relay over UDP ----------------------------------------------------------------------------------
def _sdp(port, pts="0 8 101", extra=""):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pts}\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n{extra}")


def _mport(sdp):
    return int(next(ln for ln in sdp.split("\r\n") if ln.startswith("m=audio")).split()[1])


class Harness:
    def __init__(self, **kw):
        kw.setdefault("jitter_ms", 20.0)
        base = 20000 + (os.getpid() * 7 % 20000) // 4 * 4
        self.relay = Relay(ng=("127.0.0.1", 0), rtp_range=(base, base + 399), **kw)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.relay.run, args=(self.stop,), daemon=True)
        self.thread.start()
        self.ng = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ng.settimeout(3)
        self.n = 0

    def raw(self, data: bytes, timeout: float = 3.0) -> bytes | None:
        self.ng.settimeout(timeout)
        self.ng.sendto(data, self.relay.ng_address)
        try:
            return self.ng.recvfrom(65535)[0]
        except socket.timeout:
            return None

    def cmd(self, msg: dict, cookie: bytes | None = None) -> dict:
        self.n += 1
        cookie = cookie or b"k%d" % self.n
        reply = self.raw(cookie + b" " + bencode.encode(msg))
        assert reply is not None and reply.startswith(cookie + b" ")
        return bencode.decode(reply[len(cookie) + 1:])

    def call(self, call_id="c1@test", flags=()):
        cust = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        agent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (cust, agent):
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.5)
        offer = self.cmd({"command": "offer", "call-id": call_id, "from-tag": "caller-tag",
                          "sdp": _sdp(cust.getsockname()[1]), "flags": list(flags),
                          "replace": ["origin", "session-connection"], "ICE": "remove"})
        answer = self.cmd({"command": "answer", "call-id": call_id, "from-tag": "caller-tag", "to-tag": "callee-tag",
                           "sdp": _sdp(agent.getsockname()[1])})
        assert offer["result"] == answer["result"] == "ok", (offer, answer)
        # the caller sends to the port in the answer; the callee to the port in the offer
        return cust, agent, ("127.0.0.1", _mport(answer["sdp"])), ("127.0.0.1", _mport(offer["sdp"]))

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.relay.close()
        self.ng.close()


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.close()


def _collect(sock, out, stop):
    while not stop.is_set():
        try:
            out.append(sock.recvfrom(2048)[0])
        except socket.timeout:
            continue
        except OSError:
            return


def _send_stream(sock, dest, x, events=(), pt=0, ssrc=4242, swap_every=0, stall=None):
    """Send ``x`` as 20 ms PCMU packets at real-time pace; ``events``: (start_frame, n_frames, code) sent as
    RFC 4733 packets instead of audio (as pjsua does); every ``swap_every``-th pair is sent reordered;
    ``stall=(frame, n)``: the sender holds packets frame .. frame+n-1 and sends them with the next one."""
    frames = [x[i:i + 160] for i in range(0, len(x) - 159, 160)]
    ev_at = {}
    for start, n, code in events:
        for k in range(n):
            ev_at[start + k] = (start, k, n, code)
    pkts = []
    for i, f in enumerate(frames):
        if i in ev_at:
            start, k, n, code = ev_at[i]
            dur = 160 * (k + 1)
            payload = serialise_payload(TelephoneEvent(code, k == n - 1, 10, dur))
            pkts.append(build_header(101, k == 0, i, 160 * start, ssrc) + payload)
        else:
            pkts.append(build_header(pt, False, i, 160 * i, ssrc) + ulaw_encode(f))
    if swap_every:
        for i in range(1, len(pkts) - 1, swap_every):
            pkts[i], pkts[i + 1] = pkts[i + 1], pkts[i]
    t0 = time.monotonic()
    held = []
    for i, p in enumerate(pkts):
        if stall is not None and stall[0] <= i < stall[0] + stall[1]:
            held.append(p)
        else:
            for q in held + [p]:
                sock.sendto(q, dest)
            held = []
        time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
    return len(pkts)


def _agent_keys(got):
    """(digit code, duration ms) of each key the relay sent the agent as RFC 4733 events, in order."""
    keys: dict[int, list] = {}
    for p in got:
        if p[1] & 0x7F == 101:
            keys.setdefault(int.from_bytes(p[4:8], "big"), []).append(p[12:16])
    return [(pl[0][0], round(max(int.from_bytes(e[2:4], "big") for e in pl) / 8)) for _, pl in sorted(keys.items())]


def test_jitter_buffer_says_which_frames_it_made_up():
    """Each pop says what it made up, as CallPipeline.note_jitter takes it: a frame the buffer ran dry for
    (inserted), one missing while later ones wait (concealed), quiet frames skipped just before (dropped)."""
    jb = JitterBuffer(depth_ms=0)
    f = _frames(6)
    jb.put_audio(1, 0, f[0])
    jb.pop()
    assert jb.made_up == (0, 0, 0)
    assert jb.pop() is not None and jb.made_up == (1, 0, 0)  # nothing there: inserted
    jb.put_audio(1, 480, f[3])  # 320 never comes
    jb.pop()
    assert jb.made_up == (0, 1, 0)  # missing while a later packet waits: concealed
    jb.pop()
    assert jb.made_up == (0, 0, 0)
    quiet = np.zeros(160, dtype=np.int16)
    jb2 = JitterBuffer(depth_ms=0)
    for k in range(3):
        jb2.put_audio(1, 160 * k, quiet)  # two frames more delay than asked for
    ts, seen = 480, []
    for _ in range(120):
        jb2.pop()
        seen.append(jb2.made_up)
        jb2.put_audio(1, ts, quiet)
        ts += 160
    assert jb2.stats["shrunk"] == 2 and seen.count((0, 0, 1)) == 2 and set(seen) == {(0, 0, 0), (0, 0, 1)}


def test_a_sender_stall_inside_a_key_leaves_it_one_key():
    """The customer's phone stalls 60 ms inside a key and then sends the held packets at once: the relay's
    buffer runs dry, conceals, and plays the late packets after.  The key stays one key with its duration
    (regenerated for the agent in secure mode's relay: "4711", not "47111" or "471"): the buffer's
    concealment is told to the pipeline as serve's pjmedia buffer's is."""
    h = Harness(pipeline_factory=lambda name: CallPipeline(8000, name=name, mask_mode="secure"))
    try:
        cust, agent, to_relay_c, _ = h.call("st@x")
        x, spans = keypresses("4711", tone_ms=120, gap_ms=100, lead_ms=300, rng=np.random.default_rng(5))
        x = np.concatenate([x, np.zeros(8000)]).astype(np.int16)
        third = spans[2].start // 160 + 2  # 40 ms into the third key
        got, stop = [], threading.Event()
        rx = threading.Thread(target=_collect, args=(agent, got, stop))
        rx.start()
        _send_stream(cust, to_relay_c, x, stall=(third, 3))
        time.sleep(0.4)
        stop.set()
        rx.join()
        jitter = dict(h.relay.calls["st@x"].jitter.stats)
    finally:
        h.close()
    assert jitter["resync"] >= 1 and jitter["concealed"] >= 1, jitter  # the stall did reach the buffer
    keys = _agent_keys(got)
    assert [code for code, _ in keys] == [4, 7, 1, 1], (keys, jitter)
    assert all(abs(ms - 120) <= 10 for _, ms in keys), keys


def test_savp_offer_is_judged_before_the_srtp_package(harness, monkeypatch):
    """A malformed SDES offer gets its own error on every relay host; a good one on a host without pylibsrtp is
    told so (offer RTP/AVP), and no call is left half set up."""
    from dtmfguard.relay import engine

    monkeypatch.setattr(engine, "srtp_available", lambda: False)
    good = _sdp(4000).replace("RTP/AVP", "RTP/SAVP") + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + \
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk" + "\r\n"
    bad = _sdp(4000).replace("RTP/AVP", "RTP/SAVP") + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 20 + "\r\n"
    reply = harness.cmd({"command": "offer", "call-id": "b@x", "from-tag": "a", "sdp": bad})
    assert reply == {"result": "error", "error-reason": "crypto key must be 30 octets of key and salt"}
    reply = harness.cmd({"command": "offer", "call-id": "g@x", "from-tag": "a", "sdp": good})
    assert reply == {"result": "error",
                     "error-reason": "SRTP (RTP/SAVP) needs the pylibsrtp package on the relay host; offer RTP/AVP"}
    assert "g@x" not in harness.cmd({"command": "list"})["calls"]


def test_ping_cookie_retransmission_and_garbage(harness):
    assert harness.cmd({"command": "ping"}) == {"result": "pong"}
    assert harness.raw(b"no-space-here", 0.5) is None  # no cookie: nothing to answer
    assert bencode.decode(harness.raw(b"c9 d3:foo")[3:])["error-reason"] == "malformed request: truncated value"
    assert harness.cmd({"command": "nope"})["error-reason"] == "unrecognised command 'nope'"
    assert harness.cmd({"command": "delete", "call-id": "x"})["error-reason"] == "Call-ID not found"
    msg = {"command": "offer", "call-id": "r@x", "from-tag": "a", "sdp": _sdp(4000)}
    first = harness.cmd(msg, cookie=b"same")
    again = harness.cmd(msg, cookie=b"same")  # Kamailio retransmits with the same cookie
    assert first == again and harness.relay.counters["ng_retransmits"] == 1
    assert harness.cmd({"command": "list"})["calls"] == ["r@x"]  # one call, not two
    savp = _sdp(4000).replace("RTP/AVP", "RTP/SAVP") + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 20 + "\r\n"
    reply = harness.cmd({"command": "offer", "call-id": "s@x", "from-tag": "a", "sdp": savp})
    assert reply == {"result": "error", "error-reason": "crypto key must be 30 octets of key and salt"}
    dtls = _sdp(4000).replace("RTP/AVP", "UDP/TLS/RTP/SAVPF") + "a=fingerprint:sha-256 AB:CD\r\n"
    reply = harness.cmd({"command": "offer", "call-id": "d@x", "from-tag": "a", "sdp": dtls})
    assert reply["error-reason"] == "media protocol UDP/TLS/RTP/SAVPF not supported (RTP/AVP or RTP/SAVP with SDES)"
    nokey = _sdp(4000).replace("RTP/AVP", "RTP/SAVP")
    reply = harness.cmd({"command": "offer", "call-id": "k@x", "from-tag": "a", "sdp": nokey})
    assert reply["error-reason"] == "RTP/SAVP without a=crypto: only SDES keying is supported (no DTLS)"
    assert harness.cmd({"command": "answer", "call-id": "zz", "from-tag": "a", "to-tag": "b",
                        "sdp": _sdp(4000)})["error-reason"] == "Unknown call-id"
    assert harness.thread.is_alive()


def _reference(frames_in: list[np.ndarray]) -> bytes:
    """What `serve`'s pipeline makes of the same decoded frames (PCMU out)."""
    pl = CallPipeline(8000, name="ref")
    return b"".join(ulaw_encode(pl.process_customer_frame(f)) for f in frames_in)


def test_customer_audio_is_masked_exactly_as_serve_masks_it(harness):
    cust, agent, to_relay_c, to_relay_a = harness.call()
    keys, spans = keypresses(PAN, rng=np.random.default_rng(9))
    x = np.concatenate([np.zeros(800), keys, np.zeros(800)]).astype(np.int16)
    x = x[: len(x) // 160 * 160]
    got, stop = [], threading.Event()
    rx = threading.Thread(target=_collect, args=(agent, got, stop))
    rx.start()
    n = _send_stream(cust, to_relay_c, x)
    time.sleep(0.3)
    stop.set()
    rx.join()
    q = harness.cmd({"command": "query", "call-id": "c1@test"})
    jit = q["totals"]["dtmfguard"]["jitter"]
    assert {p[1] & 0x7F for p in got} == {0}  # PCMU, the relay's own stream
    pcm = np.concatenate([ulaw_decode(p[12:]) for p in got])
    from dtmfguard.testkit.adversary import recover_digits

    assert recover_digits(pcm.astype(np.float64)) == [] and len(recover_digits(x.astype(np.float64))) == 16
    # sample-exact against the pipeline `serve` runs, given the same frames (one concealed frame of playout
    # delay first), unless the loaded machine delivered a packet late
    if jit["late"] == 0 and jit["resync"] == 0 and jit["concealed"] == 1 + (len(got) - n - 1):
        dec = [ulaw_decode(ulaw_encode(x[i:i + 160])) for i in range(0, len(x), 160)]
        ref = _reference([np.zeros(160, np.int16)] + dec)
        body = b"".join(p[12:] for p in got)[: len(ref)]
        assert body == ref


def test_rfc4733_keys_are_consumed_counted_and_masked(harness):
    cust, agent, to_relay_c, _ = harness.call()
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 300, 8000 * 2)).astype(np.int16)  # 2 s of quiet noise; keys as events only
    got, stop = [], threading.Event()
    rx = threading.Thread(target=_collect, args=(agent, got, stop))
    rx.start()
    _send_stream(cust, to_relay_c, x, events=[(20, 5, 5), (40, 6, 7), (60, 5, 11)])
    time.sleep(0.3)
    stop.set()
    rx.join()
    q = harness.cmd({"command": "query", "call-id": "c1@test"})["totals"]["dtmfguard"]
    assert q["digits_rfc4733"] == 3 and q["events_in"] == 16
    assert all(p[1] & 0x7F == 0 for p in got)  # no telephone-event packet reaches the agent
    pcm = np.concatenate([ulaw_decode(p[12:]) for p in got]).astype(np.float64)
    # the mask sounds during each key (as for an in-band key), and it carries no digit
    from dtmfguard.testkit.adversary import recover_digits

    assert recover_digits(pcm) == []
    level = [np.sqrt(np.mean(pcm[i * 160:(i + 1) * 160] ** 2)) for i in range(len(pcm) // 160)]
    assert max(level[20:30]) > 3 * np.median(level), level[15:35]


def test_agent_audio_and_rtcp_pass_untouched(harness):
    cust, agent, to_relay_c, to_relay_a = harness.call()
    pkt = build_header(8, True, 1, 160, 77) + bytes(range(160))
    agent.sendto(pkt, to_relay_a)
    assert cust.recvfrom(2048)[0] == pkt
    # RTCP: to port + 1, and back out of the other leg's RTCP port to the SDP's (port + 1)
    cr = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cr.bind(("127.0.0.1", cust.getsockname()[1] + 1))
    cr.settimeout(1)
    rtcp = bytes([0x80, 200, 0, 6]) + os.urandom(24)
    ar = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ar.sendto(rtcp, (to_relay_a[0], to_relay_a[1] + 1))
    assert cr.recvfrom(2048)[0] == rtcp
    cr.close()
    ar.close()


def test_a_failing_pipeline_gives_the_agent_silence():
    class Broken(CallPipeline):
        def process_customer_frame(self, frame):
            raise RuntimeError("boom")  # bypasses the pipeline's own guard: the relay must still fail closed

    h = Harness(pipeline_factory=lambda name: Broken(8000, name=name))
    try:
        cust, agent, to_relay_c, _ = h.call()
        keys, _ = keypresses("4111", rng=np.random.default_rng(2))
        got, stop = [], threading.Event()
        rx = threading.Thread(target=_collect, args=(agent, got, stop))
        rx.start()
        _send_stream(cust, to_relay_c, keys.astype(np.int16))
        time.sleep(0.2)
        stop.set()
        rx.join()
        assert got and all(p[12:] == b"\xff" * 160 for p in got)  # µ-law silence only
        assert h.relay.counters["tick_errors"] >= len(got)
        assert h.thread.is_alive()
    finally:
        h.close()

    def no_pipeline(name):
        raise ImportError("masker gone")

    h = Harness(pipeline_factory=no_pipeline)
    try:
        reply = h.cmd({"command": "offer", "call-id": "p@x", "from-tag": "a", "sdp": _sdp(4000)})
        assert reply == {"result": "error", "error-reason": "media pipeline unavailable (ImportError)"}
        assert h.relay.calls == {}
    finally:
        h.close()


def test_customer_callee_flag_masks_the_answerers_stream(harness):
    cust, agent, to_relay_c, to_relay_a = harness.call(flags=["customer-callee"])
    # now the callee (the 'agent' socket of the harness) is the customer: its tones are masked on the way
    keys, _ = keypresses("4111", rng=np.random.default_rng(4))
    got, stop = [], threading.Event()
    rx = threading.Thread(target=_collect, args=(cust, got, stop))
    rx.start()
    _send_stream(agent, to_relay_a, keys.astype(np.int16))
    time.sleep(0.2)
    stop.set()
    rx.join()
    from dtmfguard.testkit.adversary import recover_digits

    pcm = np.concatenate([ulaw_decode(p[12:]) for p in got]).astype(np.float64)
    assert len(got) > 20 and recover_digits(pcm) == []
    tags = harness.cmd({"command": "query", "call-id": "c1@test"})["tags"]
    assert tags["callee-tag"]["role"] == "customer" and tags["caller-tag"]["role"] == "agent"


def test_delete_and_idle_timeout_free_the_ports():
    h = Harness(call_timeout_s=0.3)
    try:
        free = len(h.relay.ports._free)
        h.call("a@x")
        assert len(h.relay.ports._free) == free - 2
        assert h.cmd({"command": "delete", "call-id": "a@x", "from-tag": "caller-tag"})["result"] == "ok"
        assert len(h.relay.ports._free) == free
        h.call("b@x")
        # no RTP: ended by the idle timeout (0.3 s, checked every second); polled, not slept (a loaded CI
        # host's relay thread was still at it after 2.6 s once)
        t0 = time.monotonic()
        deadline = t0 + 15.0
        while h.relay.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert time.monotonic() - t0 >= 0.3  # not before its timeout
        assert h.relay.calls == {} and h.relay.counters["timed_out_calls"] == 1
        assert len(h.relay.ports._free) == free
    finally:
        h.close()


def test_jitter_buffer_gives_back_delay_that_a_late_burst_added():
    jb = JitterBuffer(depth_ms=0)
    quiet = np.zeros(160, dtype=np.int16)
    jb.put_audio(1, 0, quiet)
    jb.put_audio(1, 160, quiet)
    jb.put_audio(1, 320, quiet)  # three frames at once: two frames more delay than asked for
    ts = 480
    for _ in range(600):  # then one packet per tick, for 12 s
        jb.pop()
        jb.put_audio(1, ts, quiet)
        ts += 160
    assert jb.stats["shrunk"] == 2 and len(jb._audio) == 1  # back to one frame waiting: no added delay
    loud = np.full(160, 3000, dtype=np.int16)
    jb2 = JitterBuffer(depth_ms=0)
    for k in range(3):
        jb2.put_audio(1, 160 * k, loud)
    ts = 480
    for _ in range(600):  # never skips a frame with sound in it
        jb2.pop()
        jb2.put_audio(1, ts, loud)
        ts += 160
    assert jb2.stats["shrunk"] == 0


def test_jitter_buffer_gives_back_delay_without_merging_two_presses_of_a_key():
    """A sender stall adds delay that the buffer gives back by skipping quiet frames; it skips none of a
    70 ms pause between two presses of the same key (skipping two merged "11" into "1": a card number one
    digit short), so the detector still reads every key of a card number, wherever the stall falls."""
    pan = "4111111111111111"
    x, _ = keypresses(pan, level_dbm0=-10, rng=np.random.default_rng(11))
    x = np.concatenate([np.zeros(4000), x, np.zeros(8000)]).astype(np.int16)
    frames = [x[i:i + 160] for i in range(0, len(x) - 159, 160)]
    shrunk = 0
    for stall_at in range(20, 160, 9):  # 2-5 packets held, then sent at once
        for n in (2, 5):
            jb, held, keys = JitterBuffer(depth_ms=0), [], ""
            pipeline = CallPipeline(8000, name="t", mask_mode="secure")  # keys relayed: pipeline.relay.outbox
            for tick in range(len(frames) + 10):
                if tick < len(frames):
                    held.append(tick)
                    if not stall_at <= tick < stall_at + n:
                        for k in held:
                            jb.put_audio(1, 160 * k, frames[k])
                        held = []
                f = jb.pop()
                if f is not None:
                    if jb.made_up != (0, 0, 0):
                        pipeline.note_jitter(*jb.made_up)  # as the relay's tick does
                    pipeline.process_customer_frame(f)
                    while pipeline.relay.outbox:
                        keys += pipeline.relay.outbox.popleft().digit
            shrunk += jb.stats["shrunk"]
            assert keys == pan, (stall_at, n, jb.stats)
    assert shrunk > 0  # the delay was given back (in the silences before and after the keys)


def _info(call_id, from_tag, body=b"Signal=5\r\nDuration=160\r\n", ctype="application/dtmf-relay", method="INFO"):
    head = (f"{method} sip:dtmf@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport\r\n"
            f"v: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK0\r\nf: <sip:c@x>;tag={from_tag}\r\nTo: <sip:a@y>;tag=t\r\n"
            f"i: {call_id}\r\nCSeq: 3 {method}\r\nc: {ctype}\r\nl: {len(body)}\r\n\r\n")
    return head.encode() + body


def test_sip_info_keys_reach_the_customers_pipeline_only(harness):
    harness.call("i@x")
    relay = harness.relay
    ok = relay.handle_sip(_info("i@x", "caller-tag")).decode()
    assert ok.startswith("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport\r\n"
                         "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK0\r\n")
    assert "Call-ID: i@x\r\n" in ok and "CSeq: 3 INFO\r\n" in ok and "To: <sip:a@y>;tag=t\r\n" in ok
    assert relay.calls["i@x"].stats["info_keys"] == 1
    assert relay.calls["i@x"].pipeline._pending  # queued for the media loop (the mask covers it there)
    assert relay.handle_sip(_info("i@x", "callee-tag")).startswith(b"SIP/2.0 200")  # agent's key: not counted
    assert relay.calls["i@x"].stats["info_keys"] == 1
    assert relay.handle_sip(_info("other@x", "caller-tag")).startswith(b"SIP/2.0 481 ")
    bad = relay.handle_sip(_info("i@x", "caller-tag", body=b"Signal=Z\r\n"))
    assert bad.startswith(b"SIP/2.0 400 Bad DTMF Body") and b"Z" not in bad.split(b"\r\n\r\n")[0].split(b"\r\n")[0]
    assert relay.handle_sip(_info("i@x", "caller-tag", method="BYE")).startswith(b"SIP/2.0 405")
    assert relay.handle_sip(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n") is None  # responses are ignored
    assert relay.handle_sip(b"garbage") is None


def test_relay_mode_never_loads_pjsua2():
    import subprocess
    import sys

    code = ("import sys, dtmfguard.relay.engine, dtmfguard.relay.kamailio_cfg, dtmfguard.cli.relay\n"
            "from dtmfguard.relay.kamailio_cfg import relay_cfg\n"
            "relay_cfg('127.0.0.1', 5060, [('127.0.0.1', 22222)], 'sip:a@b')\n"
            "print('pjsua2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_kamailio_relay_config_lists_every_relay_and_forks_info(tmp_path):
    from dtmfguard.relay.kamailio_cfg import relay_cfg

    cfg = relay_cfg("10.0.0.10", 5060, [("10.0.0.5", 22222, 2), ("10.0.0.6", 22222)], "sip:agents@10.0.0.9:5060",
                    customer="callee")
    assert 'modparam("rtpengine", "rtpengine_sock", "1 == udp:10.0.0.5:22222=2 udp:10.0.0.6:22222=1")' in cfg
    assert '$ru = "sip:dtmf@10.0.0.5:22223;transport=udp";' in cfg
    assert 'append_branch("sip:dtmf@10.0.0.6:22223;transport=udp");' in cfg
    assert 'rtpengine_offer("replace-origin replace-session-connection ICE=remove customer-callee")' in cfg
    assert '$du = "sip:agents@10.0.0.9:5060";' in cfg
    for bad in ('sip:a"b@x', "http://x", "sip:a b@x"):
        with pytest.raises(ValueError):
            relay_cfg("10.0.0.10", 5060, [("10.0.0.5", 22222)], bad)
    with pytest.raises(ValueError):
        relay_cfg("10.0.0.10", 5060, [], "sip:a@b")


@pytest.mark.skipif(not __import__("shutil").which("kamailio"), reason="kamailio not installed")
def test_kamailio_accepts_the_relay_config(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "dtmfguard", "kamailio-config", "--mode", "relay", "--relay",
                          "127.0.0.1:22222", "--relay", "127.0.0.1:22224=3", "--agent", "sip:agents@127.0.0.1:5090",
                          "--output", str(tmp_path), "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    check = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "kamailio.cfg")], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-m", "dtmfguard", "kamailio-config", "--mode", "relay", "--output",
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "relay mode needs --agent" in bad.stderr


def test_srtp_sdes_both_legs_with_the_relays_own_keys(harness):
    """RFC 4568: each party encrypts with the key in its own SDP; the relay decrypts with it and encrypts
    towards each party with a fresh key it put in the SDP that party received."""
    pytest.importorskip("pylibsrtp")
    import base64

    from dtmfguard.relay.srtp import LegCrypto, parse_crypto

    def crypto_of(sdp):
        line = next(ln for ln in sdp.split("\r\n") if ln.startswith("a=crypto:"))
        return parse_crypto(line[9:])

    cust_ctx, agent_ctx = LegCrypto("AES_CM_128_HMAC_SHA1_80"), LegCrypto("AES_CM_128_HMAC_SHA1_80")
    cust = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    agent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for sk in (cust, agent):
        sk.bind(("127.0.0.1", 0))
        sk.settimeout(0.5)

    def sdp(port, ctx, tag=1):
        return _sdp(port).replace("RTP/AVP", "RTP/SAVP") + (
            f"a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(ctx.tx_key).decode()}\r\n")

    offer = harness.cmd({"command": "offer", "call-id": "s@x", "from-tag": "c", "sdp": sdp(cust.getsockname()[1], cust_ctx, 7)})
    assert "m=audio" in offer["sdp"] and "RTP/SAVP" in offer["sdp"]
    tag, _, relay_to_agent_key = crypto_of(offer["sdp"])
    assert relay_to_agent_key != cust_ctx.tx_key and tag == 1  # the relay's own key, never the customer's
    answer = harness.cmd({"command": "answer", "call-id": "s@x", "from-tag": "c", "to-tag": "a",
                          "sdp": sdp(agent.getsockname()[1], agent_ctx, 1)})
    tag, _, relay_to_cust_key = crypto_of(answer["sdp"])
    assert tag == 7 and relay_to_cust_key not in (cust_ctx.tx_key, agent_ctx.tx_key, relay_to_agent_key)
    agent_ctx.set_remote(relay_to_agent_key)
    cust_ctx.set_remote(relay_to_cust_key)
    to_c, to_a = ("127.0.0.1", _mport(answer["sdp"])), ("127.0.0.1", _mport(offer["sdp"]))
    # agent -> customer: re-encrypted, same RTP inside
    plain = build_header(0, False, 5, 800, 99) + bytes(range(160))
    agent.sendto(agent_ctx.protect(plain), to_a)
    got = cust.recvfrom(2048)[0]
    assert got != plain and cust_ctx.unprotect(got) == plain
    # customer -> agent: keys typed, masked, in SRTP both ways
    keys, _ = keypresses("4111", rng=np.random.default_rng(6))
    frames = [keys[i:i + 160].astype(np.int16) for i in range(0, len(keys) - 159, 160)]
    rx, stop = [], threading.Event()
    th = threading.Thread(target=_collect, args=(agent, rx, stop))
    th.start()
    t0 = time.monotonic()
    for i, f in enumerate(frames):
        cust.sendto(cust_ctx.protect(build_header(0, False, i, 160 * i, 4242) + ulaw_encode(f)), to_c)
        time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
    time.sleep(0.2)
    stop.set()
    th.join()
    assert len(rx) >= len(frames)
    pcm = np.concatenate([ulaw_decode(parse(agent_ctx.unprotect(p)).payload) for p in rx]).astype(np.float64)
    from dtmfguard.testkit.adversary import recover_digits

    assert recover_digits(pcm) == [] and len(recover_digits(keys.astype(np.float64))) == 4
    cust.sendto(b"\x80" + os.urandom(60), to_c)  # forged SRTP: dropped and counted, nothing reaches the agent
    time.sleep(0.1)
    legs = harness.cmd({"command": "query", "call-id": "s@x"})["totals"]["legs"]
    assert {lg["role"]: lg["RTP"]["SRTP errors"] for lg in legs}["customer"] == 1


def test_secure_mode_over_the_control_api_masks_a_payment_mode_relay(harness):
    """mask_mode "payment": the customer passes unmasked (the IVR behind hears its keys) until secure mode is
    switched on over the control API (as a CRM or Kamailio's http_client would, by the call's id from
    /calls), masked while it is on, unmasked again once it is off; a relay in mask_mode "always" answers 409."""
    from dtmfguard.server.control import ControlServer, request
    from dtmfguard.testkit.adversary import recover_digits

    token = "relay-secure-token"
    h = Harness(pipeline_factory=lambda name: CallPipeline(8000, name=name, mask_mode="payment"))
    api = ControlServer(h.relay, "127.0.0.1", 0, token)
    api.start()
    try:
        cust, agent, to_relay_c, _ = h.call()
        # 3 s between the parts: the switch lands in its middle (with 1.5 s between them a full suite's load once
        # held a switch's HTTP request back past the next part)
        gap = np.zeros(8000 * 3)
        parts = [keypresses(k, rng=np.random.default_rng(i))[0] for i, k in enumerate(("12", "34", "56"))]
        x = np.concatenate([gap[:4000], parts[0], gap, parts[1], gap, parts[2], gap[:4000]]).astype(np.int16)
        x = x[: len(x) // 160 * 160]
        ends = np.cumsum([4000 + parts[0].size, gap.size + parts[1].size])
        switch_at = [(ends[0] + gap.size // 2) / 8000, (ends[1] + gap.size // 2) / 8000]
        got, stop = [], threading.Event()
        rx = threading.Thread(target=_collect, args=(agent, got, stop))
        rx.start()
        tx = threading.Thread(target=_send_stream, args=(cust, to_relay_c, x))
        # found by its SIP Call-ID, as Kamailio's http_client would (it knows $ci, not the relay's id)
        _, calls = request(api.address[1], "GET", "/calls?call_id=c1%40test", token)
        _, none = request(api.address[1], "GET", "/calls?call_id=other%40test", token)
        assert none["calls"] == []
        (call_id,) = [c["id"] for c in calls["calls"]]
        t0 = time.monotonic()
        tx.start()
        replies = []
        for when, method in zip(switch_at, ("POST", "DELETE")):
            time.sleep(max(0.0, t0 + when - time.monotonic()))
            replies.append(request(api.address[1], method, f"/calls/{call_id}/secure", token))
            late = time.monotonic() - t0 - when
            assert late < 1.2, f"the {method} reply came {late:.2f} s late: the part after it was already sent"
        tx.join()
        time.sleep(0.3)
        stop.set()
        rx.join()
    finally:
        api.stop()
        h.close()
    assert [r[0] for r in replies] == [200, 200] and [r[1]["secure"] for r in replies] == [True, False], replies
    pcm = np.concatenate([ulaw_decode(p[12:]) for p in got]).astype(np.float64)
    assert "".join(d for d, _ in recover_digits(x.astype(np.float64))) == "123456"
    # before and after secure mode: heard; during: masked
    assert "".join(d for d, _ in recover_digits(pcm)) == "1256"


def test_secure_mode_is_refused_where_the_relay_masks_all_call_long(harness):
    from dtmfguard.server.control import ControlServer, request

    api = ControlServer(harness.relay, "127.0.0.1", 0, "t0ken")
    api.start()
    try:
        harness.call()
        _, calls = request(api.address[1], "GET", "/calls", "t0ken")
        (call_id,) = [c["id"] for c in calls["calls"]]
        status, body = request(api.address[1], "POST", f"/calls/{call_id}/secure", "t0ken")
    finally:
        api.stop()
    assert status == 409 and "always" in body["error"], body


def test_the_agent_sides_secure_switch_by_sip_info(harness):
    """The agent side (a PBX or CTI) switches secure mode with INFO application/x-dtmfguard-secure or the
    X-Dtmfguard-Secure header, as in serve mode; Kamailio forks it to the relays like the key INFOs."""
    h = Harness(pipeline_factory=lambda name: CallPipeline(8000, name=name, mask_mode="payment"))
    try:
        h.call("s@x")
        relay, pl = h.relay, h.relay.calls["s@x"].pipeline
        sec = "application/x-dtmfguard-secure"
        assert relay.handle_sip(_info("s@x", "callee-tag", b"on", sec)).startswith(b"SIP/2.0 200") and pl.secure
        assert relay.handle_sip(_info("s@x", "callee-tag", b"off", sec)).startswith(b"SIP/2.0 200")
        assert not pl.secure
        by_header = _info("s@x", "callee-tag", b"x", "text/plain").replace(b"\r\nl: ", b"\r\nX-Dtmfguard-Secure: on\r\nl: ")
        assert relay.handle_sip(by_header).startswith(b"SIP/2.0 200") and pl.secure
        assert relay.handle_sip(_info("s@x", "callee-tag", b"maybe", sec)).startswith(b"SIP/2.0 400")
        assert pl.secure  # unchanged by a malformed switch
        # the customer cannot switch it (only the agent side's INFO counts): answered, nothing changes
        assert relay.handle_sip(_info("s@x", "caller-tag", b"off", sec)).startswith(b"SIP/2.0 ")
        assert pl.secure
    finally:
        h.close()
    harness.call("a@x")  # mask_mode "always": nothing to switch
    assert harness.relay.handle_sip(_info("a@x", "callee-tag", b"on", "application/x-dtmfguard-secure")).startswith(
        b"SIP/2.0 488")
    from dtmfguard.relay.kamailio_cfg import relay_cfg

    cfg = relay_cfg("10.0.0.10", 5060, [("10.0.0.5", 22222)], "sip:agents@10.0.0.9:5060")
    assert '$cT =~ "application/x-dtmfguard-secure"' in cfg and 'is_present_hf("X-Dtmfguard-Secure")' in cfg


@pytest.mark.parametrize("fast_io", [True, False])
def test_secure_mode_relay_regenerates_keys_outside_secure_mode_for_the_agent(fast_io):
    """mask_mode "secure" (serve's default) in relay mode: the customer's audio is masked all call long, and
    each key pressed outside secure mode goes on to the agent as RFC 4733 events in the relay's own stream
    (its SSRC, its sequence; the final packet three times), with the key's duration, so an IVR behind the
    relay works; once secure mode is on, no key goes on.  The C and the Python send paths alike."""
    from dtmfguard.testkit.adversary import recover_digits

    h = Harness(fast_io=fast_io, pipeline_factory=lambda name: CallPipeline(8000, name=name, mask_mode="secure"))
    try:
        cust, agent, to_relay_c, _ = h.call("k@x")
        rng = np.random.default_rng(3)
        x = (rng.normal(0, 300, 8000 * 3)).astype(np.int16)  # 3 s of quiet noise; keys as events only
        got, stop = [], threading.Event()
        rx = threading.Thread(target=_collect, args=(agent, got, stop))
        rx.start()
        tx = threading.Thread(target=_send_stream, args=(cust, to_relay_c, x),
                              kwargs={"events": [(20, 5, 5), (45, 6, 7), (110, 5, 9)]})
        t0 = time.monotonic()
        tx.start()
        time.sleep(max(0.0, t0 + 1.6 - time.monotonic()))  # between the second key (ends 1.02 s) and the third
        assert h.relay.set_secure(h.relay.calls["k@x"], True, "test")
        tx.join()
        time.sleep(0.4)
        stop.set()
        rx.join()
        stats = h.relay.calls["k@x"].stats
    finally:
        h.close()
    audio = [p for p in got if p[1] & 0x7F == 0]
    events = [p for p in got if p[1] & 0x7F == 101]
    assert len({p[8:12] for p in got}) == 1  # one SSRC: the relay's stream
    seqs = [int.from_bytes(p[2:4], "big") for p in got]
    assert len(set(seqs)) == len(seqs)  # every packet its own sequence number
    keys: dict[int, list] = {}
    for p in events:
        keys.setdefault(int.from_bytes(p[4:8], "big"), []).append(p[12:16])
    told = [(pl[0][0], max(int.from_bytes(e[2:4], "big") for e in pl), sum(1 for e in pl if e[1] & 0x80))
            for _, pl in sorted(keys.items())]
    assert [(code, ends) for code, _, ends in told] == [(5, 3), (7, 3)], told  # not the key in secure mode
    assert [round(dur / 8) for _, dur, _ in told] == [100, 120], told  # the keys' durations, ms
    assert events[0][1] & 0x80 and not any(p[1] & 0x80 for p in events if p is not events[0] and p[12] == 5)
    assert stats["keys_to_agent"] == 2 and stats["keys_not_sent"] == 0
    pcm = np.concatenate([ulaw_decode(p[12:]) for p in audio]).astype(np.float64)
    assert recover_digits(pcm) == []  # masked in the audio as always


def test_secure_mode_relay_alerts_on_a_card_keyed_outside_secure_mode():
    """Insider fraud: an agent asks for the card outside secure mode.  The relay's card-run watch (serve's)
    raises one alert for the call (no digit in it, nor in the log), readable at /calls/<id>/alerts."""
    import logging

    from dtmfguard.server.control import ControlServer, request

    h = Harness(pipeline_factory=lambda name: CallPipeline(8000, name=name, mask_mode="secure"))
    api = ControlServer(h.relay, "127.0.0.1", 0, "t0ken")
    api.start()
    records: list = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("dtmfguard").addHandler(handler)
    try:
        cust, agent, to_relay_c, _ = h.call("f@x")
        x = np.zeros(8000 * 3, np.int16)
        events = [(10 + 8 * i, 5, int(d)) for i, d in enumerate(PAN)]
        got, stop = [], threading.Event()
        rx = threading.Thread(target=_collect, args=(agent, got, stop))
        rx.start()
        _send_stream(cust, to_relay_c, x, events=events)
        time.sleep(0.5)
        stop.set()
        rx.join()
        (call_id,) = [c["id"] for c in request(api.address[1], "GET", "/calls", "t0ken")[1]["calls"]]
        status, body = request(api.address[1], "GET", f"/calls/{call_id}/alerts", "t0ken")
    finally:
        logging.getLogger("dtmfguard").removeHandler(handler)
        api.stop()
        h.close()
    assert status == 200 and [a["type"] for a in body["alerts"]] == ["card_outside_secure_mode"], body
    text = json.dumps(body) + "".join(r.getMessage() for r in records)
    assert "ALERT a card number" in text and PAN not in text and "411111" not in text


def test_secure_mode_switched_on_by_hand_times_out_as_in_serve():
    h = Harness(secure_timeout_s=0.3, pipeline_factory=lambda name: CallPipeline(8000, name=name, mask_mode="payment"))
    try:
        cust, _, to_relay_c, _ = h.call("t@x")
        call = h.relay.calls["t@x"]
        assert h.relay.set_secure(call, True, "test") and call.pipeline.secure
        _send_stream(cust, to_relay_c, np.zeros(8000, np.int16))  # 1 s of the customer's stream
        time.sleep(0.2)
        assert not call.pipeline.secure and call.secure_manual_since == 0.0
    finally:
        h.close()


def test_a_key_the_relay_cannot_regenerate_costs_the_key_not_the_audio():
    h = Harness(pipeline_factory=lambda name: CallPipeline(8000, name=name, mask_mode="secure"))

    def broken(call, agent):
        raise RuntimeError("simulated")

    h.relay._key_packet = broken
    try:
        cust, agent, to_relay_c, _ = h.call("b@x")
        got, stop = [], threading.Event()
        rx = threading.Thread(target=_collect, args=(agent, got, stop))
        rx.start()
        n = _send_stream(cust, to_relay_c, np.zeros(8000 * 2, np.int16), events=[(20, 5, 5)])
        time.sleep(0.3)
        stop.set()
        rx.join()
        stats = h.relay.calls["b@x"].stats
    finally:
        h.close()
    assert stats["keys_not_sent"] == 1 and stats["keys_to_agent"] == 0
    assert all(p[1] & 0x7F == 0 for p in got) and len(got) >= n - 5  # the audio stream went on
