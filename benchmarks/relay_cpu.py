# SPDX-License-Identifier: GPL-2.0-or-later
"""CPU cost of the relay per customer frame, without a clock: old tree against new tree in one run.

The capacity benchmark (benchmarks/relay.py) measures a live relay against live load generators; on a
shared, loaded machine its CPU figures move by +-30 % between runs.  This one takes the clock and the
scheduler out: one process builds a :class:`~dtmfguard.relay.engine.Relay` with N calls (set up over
``handle()`` as Kamailio's offer/answer would), then for T ticks sends one PCMU packet from every customer
and every agent over loopback (not timed), lets the relay read its sockets and run its tick (timed with
the thread's CPU clock), and drains what the relay sent (not timed).  What is timed is exactly the
relay's work per tick: socket reads and dispatch, RTP parsing, decoding, the jitter buffer, the shared
pipeline (masker), encoding and sending to the agent, the agent -> customer pass-through.

Usage (in its own network namespace): ``python benchmarks/relay_cpu.py --calls 100 --ticks 500
--tree /path/to/old/checkout --tree .`` prints us per frame for each tree, the ratio, and with
``--profile`` the top functions of the last tree by CPU time.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sdp(port: int) -> str:
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


class _PassThrough:
    """A pipeline that returns the frame: what is left is the relay's own cost (``--pipeline none``)."""

    session = None
    mask_mode = "always"

    def process_customer_frame(self, frame):
        return frame

    def on_rfc4733_packet(self, *a):
        pass

    def snapshot(self):
        return {}

    def flush(self):
        return None


def child(n: int, ticks: int, profile: bool, mask_mode: str) -> dict:
    import numpy as np

    from dtmfguard.dsp.g711 import ulaw_encode
    from dtmfguard.media.pipeline import CallPipeline
    from dtmfguard.relay.engine import Relay

    sys.path.insert(0, str(HERE))
    from relay import customer_audio

    x = customer_audio()
    x = x[: len(x) // 160 * 160]
    frames = [ulaw_encode(x[i:i + 160]) for i in range(0, len(x), 160)]
    agent_frame = ulaw_encode(np.random.default_rng(1).normal(0, 200, 160).astype(np.int16))
    relay = Relay(ng=("127.0.0.1", 0), rtp_range=(20000, 39999), max_calls=n + 10,
                  pipeline_factory=(lambda name: _PassThrough()) if mask_mode == "none" else
                  (lambda name: CallPipeline(8000, mask_mode=mask_mode, name=name)))
    calls = []
    mport = lambda s: int(next(ln for ln in s.split("\r\n") if ln.startswith("m=")).split()[1])  # noqa: E731
    for k in range(n):
        c, g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (c, g):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        cid = f"cpu-{k}"
        off = relay.handle({"command": "offer", "call-id": cid, "from-tag": "c", "sdp": sdp(c.getsockname()[1])})
        ans = relay.handle({"command": "answer", "call-id": cid, "from-tag": "c", "to-tag": "a",
                            "sdp": sdp(g.getsockname()[1])})
        calls.append((c, g, ("127.0.0.1", mport(ans["sdp"])), ("127.0.0.1", mport(off["sdp"])), k * 37))
    serve = getattr(relay, "serve_sockets", None)
    import gc

    if hasattr(relay, "_refreeze"):  # what run() does in this tree: call state frozen out of full collections
        gc.collect()
        gc.freeze()
    gc0 = [g["collections"] for g in gc.get_stats()]

    def relay_work():
        if serve is not None:
            serve(0.0)
        else:  # the tree before serve_sockets: its run() loop's socket part
            for key, _ in relay.sel.select(0.0):
                fn, call, leg = key.data
                try:
                    fn(key.fileobj, call, leg)
                except Exception:  # noqa: BLE001
                    pass
        relay.tick()

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile(time.thread_time)
    busy = 0.0
    hdr = struct.Struct("!BBHII")
    warm = 50
    for t in range(ticks + warm):
        for c, g, to_c, to_g, pos in calls:
            c.sendto(hdr.pack(0x80, 0, t & 0xFFFF, (t * 160) & 0xFFFFFFFF, 1000 + pos) + frames[(pos + t) % len(frames)],
                     to_c)
            g.sendto(hdr.pack(0x80, 0, t & 0xFFFF, (t * 160) & 0xFFFFFFFF, 9000 + pos) + agent_frame, to_g)
        for call in relay.calls.values():  # the tick's idle rule reads the arrival time: keep it fresh
            call.last_rx = time.monotonic()
        if t == warm:
            f0 = relay.counters["frames"]
        if t >= warm and prof is not None:
            prof.enable()
        t0 = time.thread_time()
        relay_work()
        if t >= warm:
            busy += time.thread_time() - t0
        if prof is not None:
            prof.disable()
        for c, g, *_ in calls:
            for s in (c, g):
                while True:
                    try:
                        s.recv(2048)
                    except BlockingIOError:
                        break
    frames_done = relay.counters["frames"] - f0
    gc_runs = [g["collections"] - c0 for g, c0 in zip(gc.get_stats(), gc0)]
    c = relay.counters
    timed = c.get("timed_frames", c["frames"])  # the tree before sampling timed every frame
    out = {"calls": n, "ticks": ticks, "frames": frames_done, "us_per_frame": round(1e6 * busy / max(1, frames_done), 1),
           "pipeline_us_per_frame": round(1e6 * c["pipeline_s"] / max(1, timed), 1), "tick_errors": c["tick_errors"],
           "gc_collections_by_generation": gc_runs,
           "phase_us_per_frame": {k: round(1e6 * v / max(1, c["frames"]), 1) for k, v in getattr(relay, "phases", {}).items()}}
    if prof is not None:
        import io
        import pstats

        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        out["profile"] = buf.getvalue()
    relay.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--ticks", type=int, default=500)
    ap.add_argument("--tree", action="append", help="checkout to measure (repeatable; default: this one)")
    ap.add_argument("--rounds", type=int, default=3, help="alternate the trees this many times (noise)")
    ap.add_argument("--mask-mode", default="always", choices=("always", "payment", "secure", "none"),
                    help="the calls' pipelines; none: a pass-through, to see the relay's own cost")
    ap.add_argument("--profile", action="store_true", help="print the last tree's top functions (CPU time)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.calls, a.ticks, a.profile, a.mask_mode)))
        return 0
    trees = [str(Path(t).resolve()) for t in (a.tree or [str(HERE.parent)])]
    res: dict[str, list] = {t: [] for t in trees}
    prof = ""
    phases: dict[str, list] = {}
    for r in range(a.rounds):
        for t in trees:
            last = r == a.rounds - 1 and t == trees[-1]
            cmd = [sys.executable, str(HERE / "relay_cpu.py"), "--child", "--calls", str(a.calls), "--ticks",
                   str(a.ticks), "--mask-mode", a.mask_mode] + (["--profile"] if a.profile and last else [])
            p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": t}, timeout=600)
            if p.returncode:
                print(p.stderr[-2000:], file=sys.stderr)
                return 1
            o = json.loads(p.stdout.strip().splitlines()[-1])
            if "profile" in o:
                prof = o.pop("profile")
            else:
                res[t].append((o["us_per_frame"], o["pipeline_us_per_frame"]))
                phases.setdefault(t, []).append(o.get("phase_us_per_frame") or {})
    load = open("/proc/loadavg").read().split()[0]
    print(f"{a.calls} calls, {a.ticks} ticks, mask_mode {a.mask_mode}, load average {load}; relay CPU us per "
          "customer frame (one frame = one call's 20 ms: 1 % of a core per call = 200 us)")
    best = {}
    for t, v in res.items():
        best[t] = min(x for x, _ in v) if v else float("nan")
        pipe = min(p for _, p in v) if v else float("nan")
        print(f"  {t}: min {best[t]:.1f} (of which the shared pipeline {pipe:.1f}, the relay's own "
              f"{best[t] - pipe:.1f})  all {[x for x, _ in v]}  -> {best[t] / 200:.3f} % of a core per call")
        ph = [p for p in phases.get(t, []) if p]
        if ph:  # the tick's phases (the relay's own clock reads), per phase the least over the rounds
            print("    phases us/frame: " + ", ".join(f"{k} {min(p.get(k, 0) for p in ph):.1f}" for k in ph[0]))
    if len(trees) > 1:
        print(f"  ratio first/last: {best[trees[0]] / best[trees[-1]]:.2f}x")
    if prof:
        print(prof)
    return 0


if __name__ == "__main__":
    sys.exit(main())
