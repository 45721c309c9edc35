# SPDX-License-Identifier: GPL-2.0-or-later
"""What SRTP on both legs costs a guard worker: CPU per call and round-trip delay, plain RTP vs SRTP.

Why: SRTP (RFC 3711, AES-CM + HMAC-SHA1-80) encrypts and authenticates every 20 ms packet in and out of
the guard, on both legs.  Capacity planning (2 bridged calls per worker process) needs its price next to
the plain figure.  Each mode runs ``dtmfguard serve`` workers (the production path, 2 calls each) with
``--customer-srtp optional --agent-srtp optional`` for SRTP (peers offer SRTP over UDP signalling, so no
TLS set-up muddles the figure), customers that play speech with key presses and record what comes back,
and agents that echo it.  Each worker's log must say both legs are SRTP, or the run is void.

Usage: ``python benchmarks/srtp.py --calls 4 --seconds 12`` (2 cores: other load on the machine skews it).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calls import cpu_seconds, customer_audio, rtt_ms, spawn, stop, wait_line  # noqa: E402


def free_base(span: int) -> int:
    """A first port of ``span`` consecutive ports free for UDP and TCP on 127.0.0.1 (others may run peers)."""
    for _ in range(200):
        base = random.randrange(20000, 29000, 2)
        try:
            socks = []
            for port in range(base, base + span):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def run_mode(mode: str, n_calls: int, seconds: float, wav: Path, sent: np.ndarray, work: Path) -> dict:
    import soundfile as sf

    n_guards = math.ceil(n_calls / 2)
    srtp = mode == "srtp"
    peer_srtp = ["--srtp", "optional"] if srtp else []
    rec_dir = work / mode
    rec_dir.mkdir()
    sip = free_base(6 * n_guards)  # guard i: sip + 2i (UDP/TCP), agent i: + 2n + 2i, customer i: + 4n + 2i
    g_sip, a_sip, c_sip = sip, sip + 2 * n_guards, sip + 4 * n_guards
    rtp = random.randrange(30000, 50000, 200)
    agents, guards, customers = [], [], []
    try:
        for i in range(n_guards):
            agents.append(spawn(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(a_sip + 2 * i), "--rtp",
                                 str(rtp + 40 * i), "--echo", "--calls", "0", "--timeout", str(seconds + 90),
                                 *peer_srtp], work / f"{mode}-agent{i}.err"))
            guards.append(spawn(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{g_sip + 2 * i}", "--agent",
                                 f"sip:agent@127.0.0.1:{a_sip + 2 * i}", "--rtp-port", str(rtp + 2000 + 100 * i),
                                 *(["--customer-srtp", "optional", "--agent-srtp", "optional"] if srtp else [])],
                                work / f"{mode}-guard{i}.err"))
        for p in agents + guards:
            wait_line(p, "ready", 60)
        for i in range(n_guards):
            customers.append(spawn(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(c_sip + 2 * i),
                                    "--rtp", str(rtp + 1000 + 40 * i), "--to", f"sip:guard@127.0.0.1:{g_sip + 2 * i}",
                                    "--count", str(min(2, n_calls - 2 * i)), "--play", str(wav), "--play-s",
                                    str(seconds), "--record-dir", str(rec_dir), "--timeout", "60", *peer_srtp],
                                   work / f"{mode}-customer{i}.err"))
        for p in customers:
            wait_line(p, '"connected"', 90)
        time.sleep(2.0)  # steady state
        cpu0 = {p.pid: cpu_seconds(p.pid) for p in guards}
        t0 = time.monotonic()
        time.sleep(max(1.0, seconds - 5.0))
        window = time.monotonic() - t0
        cpu = sum(cpu_seconds(p.pid) - c for p, c in zip(guards, cpu0.values()))
        for p in customers:
            p.wait(seconds + 60)
    finally:
        for p in customers + guards + agents:
            stop(p)
    logs = "".join((work / f"{mode}-guard{i}.err").read_text() for i in range(n_guards))
    want = "SRTP customer True, agent True" if srtp else "SRTP customer False, agent False"
    rtts = [r for f in sorted(rec_dir.glob("*.wav")) if (r := rtt_ms(sf.read(f, dtype="int16")[0], sent))]
    return {"mode": mode, "calls": n_calls, "legs_as_intended": logs.count(want),
            "cpu_pct_per_call": round(100 * cpu / window / n_calls, 3),
            "rtt_ms_median": float(np.median(rtts)) if rtts else None, "rtt_calls": len(rtts)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wav = work / "customer.wav"
        sent = customer_audio(wav)
        rows = [run_mode(m, a.calls, a.seconds, wav, sent, work) for m in ("plain", "srtp")]
    if a.json:
        print(json.dumps(rows))
        return 0
    print(f"{'mode':6s} {'calls':>5s} {'legs ok':>7s} {'CPU%/call':>10s} {'RTT ms':>7s}")
    for r in rows:
        rtt = f"{r['rtt_ms_median']:.1f}" if r["rtt_ms_median"] is not None else "-"
        print(f"{r['mode']:6s} {r['calls']:5d} {r['legs_as_intended']:7d} {r['cpu_pct_per_call']:10.3f} {rtt:>7s}")
    plain, srtp = rows
    if plain["cpu_pct_per_call"] > 0:
        print(f"SRTP / plain CPU per call: {srtp['cpu_pct_per_call'] / plain['cpu_pct_per_call']:.2f}x; "
              f"RTT difference: "
              + (f"{srtp['rtt_ms_median'] - plain['rtt_ms_median']:+.1f} ms"
                 if srtp["rtt_ms_median"] is not None and plain["rtt_ms_median"] is not None else "-"))
    return 0 if all(r["legs_as_intended"] == r["calls"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
