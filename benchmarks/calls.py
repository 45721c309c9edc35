# SPDX-License-Identifier: GPL-2.0-or-later
"""N concurrent calls through dtmfguard guard workers vs. a direct bridge, in one run.

Why: the guard sits in live calls; it must keep pjsua2's 20 ms clock on time
for every call and add as little delay as possible.  For each mode (``direct``:
the same B2BUA bridging customer -> agent without the pipeline, i.e. unmasked;
``guard``: through the PipelinePort with detector + masker) this script starts
ceil(N/2) guard workers (the wheel allows 2 bridged calls per process),
ceil(N/4) agent peers that echo each call's audio back, and ceil(N/4) customer
peers playing speech with key presses and recording what comes back.  It prints:

* CPU per call: the guard workers' CPU time (from /proc) over the steady-state window, as % of one core;
* late frames: guard clock ticks > 30 ms after the previous one (guard mode, measured in the port),
  frames the port had no processed audio for (silence sent, fail closed), overruns;
* added one-way latency customer -> agent: the round trip customer -> guard -> agent (echo) -> guard ->
  customer is found by cross-correlating each customer's recording with what it played; the agent ->
  customer half is the same direct connection in both modes, so guard RTT - direct RTT = added one-way delay.

``--modes direct,passthrough,guard`` adds a third baseline: the port with an identity pipeline, which
separates the port's own delay and CPU from the detector's and masker's.

Usage: ``python benchmarks/calls.py --calls 50 --seconds 20`` (2 cores: other processes on the machine skew it).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
SPEECH = ["agent-pass.wav", "agent-user.wav", "all-circuits-busy-now.wav"]  # found by dtmfguard.testkit.corpora.prompt


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def customer_audio(path: Path) -> np.ndarray:
    from dtmfguard.dsp.audio import read_audio
    from dtmfguard.testkit.synth import keypresses

    parts = []
    from dtmfguard.testkit import corpora

    for i, name in enumerate(SPEECH):
        if corpora.available("en"):
            parts.append(read_audio(corpora.prompt(name))[0])
            keys, _ = keypresses("4111111111111111"[i * 4:i * 4 + 4], rng=np.random.default_rng(i))
            parts.append(keys)
    x = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    sf.write(path, x, 8000, subtype="PCM_16")
    return x


def spawn(args, log: Path):
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
                            start_new_session=True)


def wait_line(p, token: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            if p.poll() is not None:
                raise RuntimeError("process exited early")
            continue
        if token in line:
            return line
    raise RuntimeError(f"timeout waiting for {token}")


def stop(p, grace=20.0) -> str:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out or ""


def rtt_ms(recording: np.ndarray, sent: np.ndarray, max_ms: float = 400.0) -> float | None:
    """Lag (ms) of ``sent`` inside ``recording`` (the player loops; the first copy is used)."""
    y = recording.astype(np.float64)
    r = sent.astype(np.float64)[: 4 * 8000]
    if y.size < r.size + int(max_ms * 8):
        return None
    n = 1 << int(np.ceil(np.log2(y.size + r.size)))
    c = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(r, n)), n)[: int(max_ms * 8)]
    lag = int(np.argmax(c))
    seg = y[lag: lag + r.size]
    corr = float(np.dot(seg, r) / math.sqrt(np.dot(seg, seg) * np.dot(r, r) + 1e-9))
    return lag / 8.0 if corr > 0.3 else None


def run_mode(mode: str, n_calls: int, seconds: float, wav: Path, sent: np.ndarray, work: Path,
             jitter_ms: int = -1, guard_jitter_ms: int | None = None, peer_priority: str = "auto") -> dict:
    n_guards = math.ceil(n_calls / 2)
    n_agents = math.ceil(n_calls / 4)
    n_customers = math.ceil(n_calls / 4)
    rec_dir = work / mode
    rec_dir.mkdir()
    procs = []
    agents, guards, customers = [], [], []
    try:
        for i in range(n_agents):
            p = spawn(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(17000 + i), "--rtp", str(34000 + 40 * i),
                       "--echo", "--calls", "0", "--timeout", str(seconds + 120), "--jitter-ms", str(jitter_ms),
                       "--priority", peer_priority],
                      work / f"{mode}-agent{i}.err")
            agents.append(p)
        for i in range(n_guards):
            args = [str(HERE / "_guard_worker.py"), "--listen", f"127.0.0.1:{15000 + i}",
                    "--agent", f"sip:agent@127.0.0.1:{17000 + i // 2}", "--rtp-port", str(30000 + 20 * i),
                    "--jitter-ms", str(jitter_ms if guard_jitter_ms is None else guard_jitter_ms)]
            extra = {"direct": ["--direct"], "passthrough": ["--passthrough"]}.get(mode, [])
            guards.append(spawn(args + extra, work / f"{mode}-guard{i}.err"))
        procs = agents + guards
        for p in procs:
            wait_line(p, "ready", 60)
        t_calls = time.monotonic()
        for i in range(n_customers):
            count = min(4, n_calls - 4 * i)
            # customer i calls guards 2i and 2i+1 (2 calls each); a 4-call customer is split into two processes
            for half in range(2):
                k = min(2, count - 2 * half)
                if k <= 0:
                    continue
                g = 2 * i + half
                p = spawn(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(16000 + 2 * i + half),
                           "--rtp", str(32000 + 40 * (2 * i + half)), "--to", f"sip:guard@127.0.0.1:{15000 + g}",
                           "--count", str(k), "--play", str(wav), "--play-s", str(seconds), "--record-dir",
                           str(rec_dir), "--timeout", "60", "--jitter-ms", str(jitter_ms),
                           "--priority", peer_priority],
                          work / f"{mode}-customer{i}-{half}.err")
                customers.append(p)
        for p in customers:
            wait_line(p, '"connected"', 90)
        setup_s = time.monotonic() - t_calls
        time.sleep(2.0)  # steady state
        cpu0 = {p.pid: cpu_seconds(p.pid) for p in guards}
        peers0 = sum(cpu_seconds(p.pid) for p in customers + agents)
        t0 = time.monotonic()
        time.sleep(max(1.0, seconds - 6.0))
        window = time.monotonic() - t0
        cpu1 = {p.pid: cpu_seconds(p.pid) for p in guards}
        peers1 = sum(cpu_seconds(p.pid) for p in customers + agents)
        for p in customers:
            p.wait(seconds + 60)
        guard_out = [stop(p) for p in guards]
        for p in agents:
            stop(p)
    finally:
        for p in customers + agents + guards:
            if p.poll() is None:
                p.kill()
                p.wait()
    guard_cpu = sum(cpu1[k] - cpu0[k] for k in cpu0)
    calls = []
    for out in guard_out:
        for line in out.splitlines():
            if line.startswith("{"):
                calls += json.loads(line)["calls"]
    rtts = []
    for f in sorted(rec_dir.glob("*.wav")):
        y, _ = sf.read(f, dtype="int16")
        r = rtt_ms(y, sent)
        if r is not None:
            rtts.append(r)
    port = {k: sum(c["port"].get(k, 0) for c in calls) for k in ("requested", "missing", "overrun", "late", "errors")}
    port["max_interval_ms"] = max([c["port"].get("max_interval_ms", 0) for c in calls], default=0)
    busy = sum(c["port"].get("busy_s", 0.0) for c in calls)
    port["pipeline_us_per_frame"] = round(1e6 * busy / max(1, sum(c["port"]["received"] for c in calls)), 1)
    return {"mode": mode, "calls": n_calls, "guards": n_guards, "setup_s": round(setup_s, 2),
            "cpu_pct_per_call": round(100 * guard_cpu / window / n_calls, 3),
            "peer_cpu_pct_total": round(100 * (peers1 - peers0) / window, 1),
            "rtt_ms_median": float(np.median(rtts)) if rtts else None,
            "rtt_ms_max": float(np.max(rtts)) if rtts else None, "rtt_ms_min": float(np.min(rtts)) if rtts else None,
            "latency_measured_calls": len(rtts),
            "port": port, "pipeline_errors": sum(c["pipeline"]["errors"] for c in calls)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--modes", default="direct,guard")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--jitter-ms", type=int, default=-1,
                    help="fixed jitter-buffer prefetch in every process (-1: pjsua's adaptive default, whose "
                         "20 ms steps make the latency figure vary by a frame from run to run)")
    ap.add_argument("--guard-jitter-ms", type=int, default=None,
                    help="the guard workers' own jitter-buffer prefetch, if different from --jitter-ms")
    ap.add_argument("--peer-priority", choices=("auto", "off"), default="auto",
                    help="the test phones' pjmedia threads and SIP loop under SCHED_RR (auto, as in the tests) or "
                         "the normal scheduler (off: the guard workers alone run real time, as on a machine of "
                         "their own)")
    a = ap.parse_args(argv)
    from dtmfguard.dsp.masker import DEFAULT_LOOKAHEAD_MS

    with tempfile.TemporaryDirectory(prefix="dtmfguard-bench-") as tmp:
        work = Path(tmp)
        wav = work / "customer.wav"
        sent = customer_audio(wav)
        results = [run_mode(m, a.calls, a.seconds, wav, sent, work, a.jitter_ms, a.guard_jitter_ms,
                            a.peer_priority) for m in a.modes.split(",")]
    by = {r["mode"]: r for r in results}
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{a.calls} concurrent calls, {a.seconds:.0f} s, {os.cpu_count()} cores, load before: "
              f"{open('/proc/loadavg').read().split()[0]}")
        print(f"{'mode':8s} {'CPU%/call':>10s} {'peers CPU%':>10s} {'RTT ms':>8s} {'late':>6s} {'missing':>8s} "
              f"{'overrun':>8s} {'max tick ms':>11s} {'lat. calls':>10s}")
        for r in results:
            p = r["port"]
            print(f"{r['mode']:8s} {r['cpu_pct_per_call']:10.3f} {r['peer_cpu_pct_total']:10.1f} "
                  f"{(r['rtt_ms_median'] or float('nan')):8.1f} {p['late']:6d} {p['missing']:8d} {p['overrun']:8d} "
                  f"{p['max_interval_ms']:11.1f} {r['latency_measured_calls']:10d}")
        if "guard" in by:
            print(f"guard: Python time per frame in onFrameReceived (pipeline): "
                  f"{by['guard']['port']['pipeline_us_per_frame']} us")
        if "direct" in by and "passthrough" in by and by["passthrough"]["rtt_ms_median"]:
            print(f"port alone (identity pipeline) adds: "
                  f"{by['passthrough']['rtt_ms_median'] - by['direct']['rtt_ms_median']:.1f} ms one way")
        if "direct" in by and "guard" in by and by["direct"]["rtt_ms_median"] and by["guard"]["rtt_ms_median"]:
            added = by["guard"]["rtt_ms_median"] - by["direct"]["rtt_ms_median"]
            print(f"added one-way latency customer->agent: {added:.1f} ms (goal <= 20 ms + masker look-ahead "
                  f"{DEFAULT_LOOKAHEAD_MS:.0f} ms); CPU ratio guard/direct: "
                  f"{by['guard']['cpu_pct_per_call'] / max(by['direct']['cpu_pct_per_call'], 1e-9):.1f}x")
            req = by["guard"]["port"]["requested"]
            print("per-call RTT min/median/max (ms): " + "; ".join(
                f"{r['mode']} {r['rtt_ms_min']}/{r['rtt_ms_median']}/{r['rtt_ms_max']}" for r in results if r["rtt_ms_min"]))
            print("(each receiver's adaptive jitter buffer settles in 20 ms steps per call, so single runs vary by a "
                  "frame; by construction the guard adds one bridge frame (20 ms) + the masker look-ahead)")
            print(f"late frames: {by['guard']['port']['late']} of {req} ticks "
                  f"({100 * by['guard']['port']['late'] / max(req, 1):.2f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
