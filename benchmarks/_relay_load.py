# SPDX-License-Identifier: GPL-2.0-or-later
"""Load generator for benchmarks/relay.py: N calls' customers and agents in one process.

Sets each call up over the ng protocol (offer from the customer, answer from the agent, as Kamailio
would), then on one 20 ms tick sends a PCMU frame from every customer (speech with key presses, looping)
and from every agent (passed through by the relay), and counts what arrives.  Call 0 is the latency
probe: its customer sends silence with a noise burst every second; the time from sending a burst to its
arrival at the agent is the one-way delay through the relay (loopback, no network delay).  Call 1's customer
sends only key presses (a card number, looping); its agent audio is kept and given to the adversarial
decoder at the end: every digit it names there is a leak.  Prints one JSON line when done.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import struct
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dtmfguard.dsp.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from dtmfguard.relay import bencode  # noqa: E402


def sdp(port: int) -> str:
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


def ng(sock, addr, msg, n=[0]):  # noqa: B006 - a counter across calls
    n[0] += 1
    cookie = b"%d-%d" % (os.getpid(), n[0])
    for _ in range(5):
        sock.sendto(cookie + b" " + bencode.encode(msg), addr)
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            continue
        if data.startswith(cookie + b" "):
            return bencode.decode(data[len(cookie) + 1:])
    raise RuntimeError("relay did not answer")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ng", required=True)
    ap.add_argument("--calls", type=int, required=True)
    ap.add_argument("--first", type=int, default=0, help="index of the first call (names, probe role)")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--audio", required=True, help="int16 raw 8 kHz customer audio")
    a = ap.parse_args()
    try:  # the load must be on time for the figures to mean anything: real time, below the relay's priority
        import resource

        resource.setrlimit(resource.RLIMIT_RTTIME, (2_000_000, resource.getrlimit(resource.RLIMIT_RTTIME)[1]))
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(5))
    except (OSError, ValueError, AttributeError):
        pass
    host, port = a.ng.rsplit(":", 1)
    ngaddr = (host, int(port))
    x = np.fromfile(a.audio, dtype=np.int16)
    x = x[: len(x) // 160 * 160]
    cust_frames = [ulaw_encode(x[i:i + 160]) for i in range(0, len(x), 160)]
    agent_frame = ulaw_encode((np.random.default_rng(1).normal(0, 200, 160)).astype(np.int16))
    silence = b"\xff" * 160
    from dtmfguard.testkit.synth import keypresses

    keys = keypresses("4111111111111111", rng=np.random.default_rng(3))[0].astype(np.int16)
    keys = keys[: len(keys) // 160 * 160]
    key_frames = [ulaw_encode(keys[i:i + 160]) for i in range(0, len(keys), 160)]  # call 1: keys only
    burst = ulaw_encode(np.random.default_rng(2).normal(0, 6000, 160).clip(-32000, 32000))
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.settimeout(2.0)
    sel = selectors.DefaultSelector()
    calls = []
    for k in range(a.calls):
        idx = a.first + k
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (c, g):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        cid = f"bench-{idx}@load"
        off = ng(ctl, ngaddr, {"command": "offer", "call-id": cid, "from-tag": "c", "sdp": sdp(c.getsockname()[1])})
        ans = ng(ctl, ngaddr, {"command": "answer", "call-id": cid, "from-tag": "c", "to-tag": "a",
                               "sdp": sdp(g.getsockname()[1])})
        if off.get("result") != "ok" or ans.get("result") != "ok":
            print(json.dumps({"error": off.get("error-reason") or ans.get("error-reason")}), flush=True)
            return 1
        mport = lambda s: int(next(ln for ln in s.split("\r\n") if ln.startswith("m=")).split()[1])  # noqa: E731
        call = {"idx": idx, "c": c, "g": g, "to_c": ("127.0.0.1", mport(ans["sdp"])),
                "to_g": ("127.0.0.1", mport(off["sdp"])), "seq": 0, "rx_agent": 0, "rx_cust": 0,
                "ssrc_c": 1000 + idx, "ssrc_g": 500000 + idx, "pos": (idx * 37) % len(cust_frames)}
        calls.append(call)
        sel.register(g, selectors.EVENT_READ, ("g", call))
        sel.register(c, selectors.EVENT_READ, ("c", call))
    print(json.dumps({"event": "ready", "calls": len(calls)}), flush=True)
    probe = a.first == 0
    sent_bursts: dict[int, float] = {}
    latencies: list[float] = []
    kept: list[bytes] = []
    t_start = time.monotonic()
    next_tick = t_start
    tick = 0
    late_sends = 0
    while True:
        now = time.monotonic()
        if now - t_start > a.seconds:
            break
        if now >= next_tick:
            if now - next_tick > 0.010:
                late_sends += 1
            for call in calls:
                seq, ts = call["seq"], call["seq"] * 160
                if probe and call["idx"] == 0:
                    payload = burst if tick % 50 == 25 else silence
                    if tick % 50 == 25:
                        sent_bursts[tick] = time.monotonic()
                elif call["idx"] == 1:  # keys only: any digit the decoder names in its agent audio is a leak
                    payload = key_frames[tick % len(key_frames)]
                else:
                    payload = cust_frames[(call["pos"] + tick) % len(cust_frames)]
                call["c"].sendto(struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, call["ssrc_c"])
                                 + payload, call["to_c"])
                call["g"].sendto(struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, call["ssrc_g"])
                                 + agent_frame, call["to_g"])
                call["seq"] += 1
            tick += 1
            next_tick += 0.020
            if time.monotonic() - next_tick > 0.1:
                next_tick = time.monotonic() + 0.020
            continue
        for key, _ in sel.select(max(0.0, next_tick - time.monotonic())):
            side, call = key.data
            while True:
                try:
                    data = key.fileobj.recv(2048)
                except BlockingIOError:
                    break
                if side == "g":
                    call["rx_agent"] += 1
                    if probe and call["idx"] == 0 and sent_bursts:
                        pcm = ulaw_decode(data[12:]).astype(np.float64)
                        loud = np.flatnonzero(np.abs(pcm) > 3000)
                        if loud.size:
                            t = time.monotonic()
                            k = max(k for k in sent_bursts)
                            if t - sent_bursts[k] < 0.5:
                                # the burst's first sample plays loud[0] samples after this frame's start
                                latencies.append(1000 * (t - sent_bursts.pop(k)) + loud[0] / 8.0)
                    elif call["idx"] == 1 and len(kept) < 50 * 60:
                        kept.append(data[12:])
                else:
                    call["rx_cust"] += 1
    recovered = None
    if kept:
        from dtmfguard.testkit.adversary import recover_digits

        recovered = len(recover_digits(np.concatenate([ulaw_decode(p) for p in kept]).astype(np.float64)))
    for call in calls:
        try:
            ng(ctl, ngaddr, {"command": "delete", "call-id": f"bench-{call['idx']}@load", "from-tag": "c"})
        except RuntimeError:
            pass
    print(json.dumps({"event": "done", "ticks": tick, "late_sends": late_sends,
                      "sent_per_side": sum(c["seq"] for c in calls),
                      "rx_agent": sum(c["rx_agent"] for c in calls), "rx_customer": sum(c["rx_cust"] for c in calls),
                      "latencies_ms": [round(v, 2) for v in latencies], "recovered_digits_call1": recovered,
                      "kept_s": len(kept) / 50}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
