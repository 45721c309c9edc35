# SPDX-License-Identifier: GPL-2.0-or-later
"""The relay's per-tick batching and its garbage-collection rules, over real UDP sockets on 127.0.0.1.

Batching: every media socket is drained once per tick, G.711 audio of all calls of one law is decoded and
encoded in one table lookup each.  These tests check that no call's audio ends up in another call, that
each call gets exactly what its own codec would give, that a socket holding several packets is read out,
and that one call's failure is that call's silence only.  Collection: a call leaves no cyclic garbage
when it ends (the relay freezes call state out of the cyclic collector, so a cycle would be a leak), and a
running relay does freeze it.
"""
from __future__ import annotations

import gc
import socket
import struct
import threading
import time
import weakref

import numpy as np
import pytest

from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.relay.codecs import g722_available, make_codec
from dtmfguard.relay.engine import Relay
from dtmfguard.testkit.synth import keypresses

FRAME = 160
HDR = struct.Struct("!BBHII")


def _sdp(port: int, pt: int) -> str:
    names = {0: "PCMU", 8: "PCMA", 9: "G722"}
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {names[pt]}/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


def _mport(sdp: str) -> int:
    return int(next(ln for ln in sdp.split("\r\n") if ln.startswith("m=")).split()[1])


class Identity:
    """A pipeline that passes the frame (so the agent must get exactly the customer's audio back)."""

    session = None
    mask_mode = "always"

    def __init__(self, name: str, fail: bool = False, out=None):
        self.name, self.fail, self.out = name, fail, out

    def process_customer_frame(self, frame):
        if self.fail:
            raise RuntimeError("broken pipeline")
        return self.out(frame) if self.out is not None else frame

    def on_rfc4733_packet(self, *a):
        pass

    def snapshot(self):
        return {}

    def flush(self):
        return None


class Calls:
    """N calls set up on a relay over handle() (as Kamailio's offer/answer), with the peers' sockets."""

    def __init__(self, relay: Relay, pts: list[int]):
        self.relay = relay
        self.peers = []
        for k, pt in enumerate(pts):
            c, g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for s in (c, g):
                s.bind(("127.0.0.1", 0))
                s.settimeout(2.0)
            cid = f"batch-{k}"
            off = relay.handle({"command": "offer", "call-id": cid, "from-tag": "c", "sdp": _sdp(c.getsockname()[1], pt)})
            ans = relay.handle({"command": "answer", "call-id": cid, "from-tag": "c", "to-tag": "a",
                                "sdp": _sdp(g.getsockname()[1], pt)})
            assert off["result"] == ans["result"] == "ok"
            self.peers.append({"pt": pt, "c": c, "g": g, "to_c": ("127.0.0.1", _mport(ans["sdp"])),
                               "to_g": ("127.0.0.1", _mport(off["sdp"])), "cid": cid})

    def send(self, k: int, seq: int, payload: bytes, ssrc: int = 0) -> None:
        p = self.peers[k]
        p["c"].sendto(HDR.pack(0x80, p["pt"], seq, seq * FRAME, 1000 + k + ssrc) + payload, p["to_c"])

    def close(self):
        for p in self.peers:
            p["c"].close()
            p["g"].close()


def _settle(relay: Relay, expect: int, timeout: float = 2.0) -> None:
    """Serve the media sockets until ``expect`` customer packets have been taken in (loopback delivery is
    not instantaneous)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        relay.serve_media()
        if sum(c.jitter.stats["packets"] for c in relay.calls.values()) >= expect:
            return
        time.sleep(0.002)
    raise AssertionError("the relay did not receive the packets")


@pytest.fixture
def relay():
    r = Relay(ng=("127.0.0.1", 0), rtp_range=(27000, 27999), max_calls=100,
              pipeline_factory=lambda name: Identity(name))
    yield r
    r.close()


def test_each_call_gets_its_own_audio_through_the_batched_codecs(relay):
    """Calls of both G.711 laws (and G.722 when available) in one tick, over two chunks: every agent receives exactly
    what its own codec gives for its own customer's packet (the per-call reference), never another's."""
    pts = [0, 8, 0] * 15 + ([9, 9] if g722_available() else [])  # more calls than a chunk of a tick (32)
    calls = Calls(relay, pts)
    rng = np.random.default_rng(5)
    try:
        for seq in range(4):
            sent = [bytes(rng.integers(0, 256, FRAME, dtype=np.uint8)) for _ in pts]
            for k, payload in enumerate(sent):
                calls.send(k, seq, payload)
            _settle(relay, len(pts) * (seq + 1))
            relay.tick()
            for k, p in enumerate(calls.peers):
                got = p["g"].recv(2048)
                assert got[1] & 0x7F == p["pt"] and len(got) == 12 + FRAME
                if p["pt"] in (0, 8):
                    ref = make_codec({0: "PCMU", 8: "PCMA"}[p["pt"]])
                    assert got[12:] == ref.encode(ref.decode(sent[k])), (k, seq)
                else:  # G.722 has state: decoded audio back through an encoder is not byte-identical,
                    # but it is this call's (level far from another call's random bytes is not a test):
                    assert got[12:] != make_codec("G722").silence or seq == 0
        assert relay.counters["tick_errors"] == 0
        assert relay.counters["frames"] == 4 * len(pts)
    finally:
        calls.close()


def test_the_drain_reads_every_packet_a_socket_holds(relay):
    """Three packets queued on every customer socket before one drain: all are taken into the calls'
    jitter buffers (one datagram per ready socket per round, rounds until none is ready)."""
    calls = Calls(relay, [0] * 10)
    try:
        for seq in range(3):
            for k in range(10):
                calls.send(k, seq, bytes([0x55]) * FRAME)
        time.sleep(0.05)
        relay.serve_media()
        assert [c.jitter.stats["packets"] for c in relay.calls.values()] == [3] * 10
        for _ in range(3):
            relay.tick()
        assert relay.counters["frames"] == 30 and relay.counters["tick_errors"] == 0
    finally:
        calls.close()


def test_one_calls_failure_is_silence_for_that_call_only():
    """A pipeline that raises, one whose frame has the wrong size, one that returns float samples (encoded
    one call at a time): the first two calls' agents get the codec's silence, counted; the others their
    audio, in the same ticks."""
    kinds = {"r1": {"fail": True}, "r2": {"out": lambda f: f[:100]},
             "r3": {"out": lambda f: f.astype(np.float64)}}
    relay = Relay(ng=("127.0.0.1", 0), rtp_range=(28000, 28399), max_calls=10,
                  pipeline_factory=lambda name: Identity(name, **kinds.get(name, {})))
    calls = Calls(relay, [0, 8, 0, 8, 0])
    try:
        payload = bytes(range(20, 180))
        for k in range(5):
            calls.send(k, 0, payload)
        _settle(relay, 5)
        relay.tick()
        got = [p["g"].recv(2048)[12:] for p in calls.peers]
        pcmu, pcma = make_codec("PCMU"), make_codec("PCMA")
        assert got[0] == pcmu.silence and got[1] == pcma.silence  # r1 raised, r2 gave 100 samples
        assert got[2] == pcmu.encode(pcmu.decode(payload))  # r3: float samples, encoded on its own
        assert got[3] == pcma.encode(pcma.decode(payload)) and got[4] == pcmu.encode(pcmu.decode(payload))
        assert relay.counters["tick_errors"] == 2
        assert [c.stats["silence_sent"] for c in relay.calls.values()] == [1, 1, 0, 0, 0]
    finally:
        calls.close()
        relay.close()


class _Session:
    """A payment session stand-in: takes digits (the detector runs while one is attached)."""

    finished = False
    state = "collecting"

    def __init__(self):
        self.digits = []

    def feed(self, ev):
        self.digits.append(ev.digit)


@pytest.mark.parametrize("mask_mode", ["always", "payment", "secure"])
def test_a_call_leaves_no_cyclic_garbage(mask_mode):
    """The relay freezes call state out of the cyclic collector (a full pass over 200 calls took 20-40 ms,
    a late tick): so a reference cycle among a call's objects would never be freed.  A call that ran its
    detector (session attached, detached, attached again: a fresh detector after the gap) and ended
    must be freed by reference counting alone."""
    relay = Relay(ng=("127.0.0.1", 0), rtp_range=(28400, 28799), max_calls=10,
                  pipeline_factory=lambda name: CallPipeline(8000, mask_mode=mask_mode, name=name))
    calls = Calls(relay, [0, 8])
    keys = keypresses("4111", rng=np.random.default_rng(2))[0].astype(np.int16)
    keys = keys[: len(keys) // FRAME * FRAME]
    enc = make_codec("PCMU")
    refs = []
    gc.collect()
    gc.disable()
    try:
        sessions = []
        for call in relay.calls.values():
            s = _Session()
            sessions.append(s)
            call.session = s
            call.pipeline.attach_session(s)
        seq = 0
        for phase in range(3):
            if phase == 1:  # detach: the detector stops; re-attach: a fresh one replaces it
                for call in relay.calls.values():
                    call.pipeline.detach_session()
            if phase == 2:
                for call, s in zip(relay.calls.values(), sessions):
                    call.pipeline.attach_session(s)
            for i in range(0, len(keys), FRAME):
                for k in range(2):
                    calls.send(k, seq, enc.encode(keys[i:i + FRAME]))
                seq += 1
                _settle(relay, 2 * seq)
                relay.tick()
        assert relay.counters["tick_errors"] == 0 and relay.counters["frames"] == 2 * seq
        assert all(s.digits for s in sessions)  # the detector did run
        for call in relay.calls.values():
            refs += [weakref.ref(call), weakref.ref(call.pipeline), weakref.ref(call.pipeline.masker)]
        sessions.clear()
        for p in calls.peers:
            assert relay.handle({"command": "delete", "call-id": p["cid"], "from-tag": "c"})["result"] == "ok"
        call = None  # noqa: F841 - the loop variable held the last call
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.startswith("dtmfguard")]
        assert ours == [], sorted({type(o).__qualname__ for o in ours})
        assert all(r() is None for r in refs)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        calls.close()
        relay.close()


def test_a_running_relay_freezes_call_state_and_frees_ended_calls():
    """Under run(): a new call's state is frozen out of the cyclic collector within a few ticks (it is
    not among the objects a collection walks); a deleted call is still freed (reference counting), and
    statistics report the collector's figures."""
    relay = Relay(ng=("127.0.0.1", 0), rtp_range=(28800, 29199), max_calls=10,
                  pipeline_factory=lambda name: CallPipeline(8000, name=name))
    stop = threading.Event()
    th = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    th.start()
    calls = None
    try:
        calls = Calls(relay, [0, 0, 8])
        masker = next(iter(relay.calls.values())).pipeline.masker
        t0 = time.monotonic()
        while relay.counters["gc_freezes"] < 1 and time.monotonic() - t0 < 5:
            time.sleep(0.02)
        assert relay.counters["gc_freezes"] >= 1  # after the new calls (run() also froze what it found)
        assert not any(o is masker for o in gc.get_objects())  # frozen: full collections skip it
        ref = weakref.ref(masker)
        masker = None
        for p in calls.peers:
            relay._queue(lambda cid=p["cid"]: relay.handle({"command": "delete", "call-id": cid, "from-tag": "c"}))
        t0 = time.monotonic()
        while relay.calls and time.monotonic() - t0 < 3:
            time.sleep(0.02)
        while relay.counters["gc_freezes"] < 2 and time.monotonic() - t0 < 5:
            time.sleep(0.02)
        assert relay.calls == {} and ref() is None
        st = relay.statistics()
        # the second: the full collection once no call was left
        assert st["gc_freezes"] >= 2 and "gc_max_pause_us" in st and "late_ticks_busy" in st
        assert set(st["phase_us"]) == {"drain", "decode", "pop", "pipeline", "encode", "send", "housekeeping"}
    finally:
        stop.set()
        th.join(5)
        relay.close()
        if calls is not None:
            calls.close()


class _Slow(Identity):
    """A pipeline too slow for real time (30 ms of CPU per frame): the relay is overloaded."""

    def process_customer_frame(self, frame):
        t0 = time.thread_time()
        while time.thread_time() - t0 < 0.03:
            pass
        return frame


def test_an_overloaded_relay_still_answers_kamailio():
    """Ticks that run late back to back (the waits between them are skipped) must not starve the control
    socket: pings, offers and deletes are still answered; the late ticks are counted, as the relay's own
    work (busy: this pipeline spins on the CPU) or the machine's (off the CPU)."""
    from dtmfguard.relay import bencode

    relay = Relay(ng=("127.0.0.1", 0), rtp_range=(29200, 29599), max_calls=10,
                  pipeline_factory=lambda name: _Slow(name))
    stop = threading.Event()
    th = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    th.start()
    calls = None
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.settimeout(1.0)
    try:
        calls = Calls(relay, [0])
        for seq in range(40):
            calls.send(0, seq, bytes([0x55]) * FRAME)
            time.sleep(0.02)
        assert relay.counters["late_ticks"] > 0
        answers = []
        for k in range(3):
            ctl.sendto(b"p%d " % k + bencode.encode({"command": "ping"}), relay.ng_address)
            data, _ = ctl.recvfrom(65535)
            answers.append(bencode.decode(data.split(b" ", 1)[1])["result"])
            calls.send(0, 40 + k, bytes([0x55]) * FRAME)  # still overloaded
        assert answers == ["pong"] * 3
    finally:
        stop.set()
        th.join(5)
        st = relay.statistics()
        relay.close()
        ctl.close()
        if calls is not None:
            calls.close()
    assert st["late_ticks"] > 0  # (busy or off the CPU: on a loaded machine this thread waits for one too)
    assert st["late_ticks_busy"] + st["late_ticks_off_cpu"] + st["late_ticks_with_full_gc"] == st["late_ticks"]


def test_the_relay_masks_exactly_as_serve_does_on_the_same_input(relay):
    """Issue 16: the relay and ``serve`` share every module below the transport, so on the same customer
    audio the agent gets the same masked samples: the relay's default per-call pipeline, fed packet by packet
    through its sockets, jitter buffer and batched codecs, against a ``CallPipeline`` fed the same decoded
    frames one by one as serve's port feeds it (then encoded with the same law)."""
    relay.pipeline_factory = relay._default_pipeline
    keys = keypresses("4111111111111111", rng=np.random.default_rng(4))[0]
    ulaw = make_codec("PCMU")
    payloads = [ulaw.encode(np.round(keys[i:i + FRAME]).astype(np.int16))
                for i in range(0, keys.size - keys.size % FRAME, FRAME)]
    direct, want = CallPipeline(8000, name="serve-side"), []
    for p in payloads:
        want.append(ulaw.encode(np.asarray(direct.process_customer_frame(ulaw.decode(p)), dtype=np.int16)))
    calls = Calls(relay, [0])
    got = []
    try:
        for seq, p in enumerate(payloads):
            calls.send(0, seq, p)
            _settle(relay, seq + 1)
            relay.tick()
            got.append(calls.peers[0]["g"].recv(2048)[12:])
    finally:
        calls.close()
    assert relay.counters["tick_errors"] == 0
    assert direct.masker.masked_spans, "no key was masked: the comparison tests nothing"
    assert got == want
