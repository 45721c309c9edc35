# SPDX-License-Identifier: GPL-2.0-or-later
"""Capacity of `dtmfguard relay` (one process) against `dtmfguard serve` (pjsua2 workers), in one run.

Relay: one relay process; load generators (benchmarks/_relay_load.py, one per 100 calls) set N calls up
over the ng protocol as Kamailio would and send both directions of every call at 50 packets/s (speech
with key presses from the customer, noise from the agent).  Measured over the steady window:

* late ticks: the relay's 20 ms tick (one for all calls) starting > 30 ms after the previous one (the
  same rule as serve's port, which counts per call frame);
* CPU: the relay process's user+system time (/proc) per second of wall time, as % of one core, total
  and per call; the generators' CPU is printed too (they stand in for the peers);
* memory: PSS and RSS of the relay process at N calls minus idle, per call;
* latency: call 0 sends a noise burst each second; the time until its first sample reaches the agent
  (loopback, so this is all relay: wait for the tick, playout delay, masker look-ahead);
* masking under load: the adversarial decoder on call 1's agent audio (digits named; 0 expected).

Serve (``--serve-calls N``, 0 to skip): benchmarks/calls.py's guard mode at N calls (pjsua2 peers, N/2
workers); its late frames, CPU per call and the added one-way latency (RTT through the guard minus the
direct bridge's), and the workers' PSS sampled mid-run.

The machine is shared: the busy share of all CPUs from /proc/stat over each window and the load average
are printed, so figures from a loaded run can be read as such.

Usage: ``python benchmarks/relay.py --calls 50,100,200 --relays 1,2 --seconds 20 --serve-calls 20``
(run it in its own network namespace: ``unshare -n`` + ``ip link set lo up``).  Old against new relay in
one run: ``--tree /path/to/old/checkout --tree . --repeat 2`` (the trees alternate within each row; medians
and ratios are printed; the load generators always come from this checkout).  ``--churn 1`` sets a call
up and tears one down every second during the window.  Relays that report them give their loop's CPU by
phase and their late ticks by cause (off the CPU / busy with their own work / a full GC pass); a stall
probe at the relay's real-time priority shows what the machine did meanwhile.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from calls import cpu_seconds  # noqa: E402  (one /proc reader for every benchmark)

PROMPTS = ("agent-pass.wav", "agent-user.wav", "all-circuits-busy-now.wav")  # found by dtmfguard.testkit.corpora.prompt


def mem_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in kB from /proc/<pid>/smaps_rollup."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def machine_busy() -> tuple[float, float]:
    parts = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts), idle


def busy_pct(a, b) -> float:
    total, idle = b[0] - a[0], b[1] - a[1]
    return 100.0 * (1 - idle / total) if total else 0.0


def customer_audio() -> np.ndarray:
    from dtmfguard.dsp.audio import read_audio
    from dtmfguard.testkit.synth import keypresses

    parts = []
    from dtmfguard.testkit import corpora

    for i, name in enumerate(PROMPTS):
        try:
            parts.append(read_audio(corpora.prompt(name))[0])
        except corpora.CorpusMissing:
            parts.append(np.random.default_rng(i).normal(0, 1500, 16000))
        parts.append(keypresses("4111111111111111"[i * 4:i * 4 + 4], rng=np.random.default_rng(i))[0])
    return np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)


def spawn(args, log: Path, tree: Path | None = None):
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
                            start_new_session=True, cwd=str(tree or HERE.parent),
                            env={**os.environ, "PYTHONPATH": str(tree or HERE.parent)})


def ng_stats(port: int) -> dict:
    import socket

    from dtmfguard.relay import bencode

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        cookie = b"%d" % time.monotonic_ns()
        for _ in range(5):  # an overloaded relay answers late: retransmit as Kamailio does (same cookie)
            s.sendto(cookie + b" " + bencode.encode({"command": "statistics"}), ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                continue
            return bencode.decode(data.split(b" ", 1)[1])["statistics"]
    raise RuntimeError(f"relay on ng port {port} did not answer")


def run_relay(n: int, seconds: float, audio: Path, work: Path, ngport: int = 22290, jitter_ms: float = 0.0,
              relays: int = 1, tree: Path | None = None, churn: float = 0.0) -> dict:
    """``n`` calls spread evenly over ``relays`` relay processes (as Kamailio's set spreads them); the relays
    run from ``tree`` (a checkout; default this one), the load generators always from this one."""
    procs = []
    gens = []
    try:
        for r in range(relays):
            low = 20000 + r * (40000 // relays)
            procs.append(spawn(["-m", "dtmfguard", "relay", "--ng", f"127.0.0.1:{ngport + 2 * r}", "--rtp-range",
                                f"{low}-{low + 40000 // relays - 1}", "--max-calls", str(n + 10), "--call-timeout",
                                "30", "--jitter-ms", str(jitter_ms)], work / f"relay-{n}-{r}.err", tree))
        for r, p in enumerate(procs):
            line = p.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError("relay did not start: " + (work / f"relay-{n}-{r}.err").read_text()[-500:])
        time.sleep(1.0)
        idle = [mem_kb(p.pid) for p in procs]
        per = 100
        t_setup = time.monotonic()
        first = 0
        for r in range(relays):
            share = n // relays + (1 if r < n % relays else 0)
            while share > 0:
                k = min(per, share)
                gens.append(spawn([str(HERE / "_relay_load.py"), "--ng", f"127.0.0.1:{ngport + 2 * r}", "--calls", str(k),
                                   "--first", str(first), "--seconds", str(seconds), "--audio", str(audio)],
                                  work / f"gen-{n}-{first}.err"))
                first += k
                share -= k
        for p in gens:
            line = p.stdout.readline()
            if '"ready"' not in line:
                raise RuntimeError("generator failed: " + line)
        setup_s = time.monotonic() - t_setup
        time.sleep(2.0)
        s0 = [ng_stats(ngport + 2 * r) for r in range(relays)]
        c0, m0 = sum(cpu_seconds(p.pid) for p in procs), machine_busy()
        g0 = sum(cpu_seconds(p.pid) for p in gens)
        t0 = time.monotonic()
        probe = _StallProbe()
        churner = _Churn(ngport, churn) if churn > 0 else None
        time.sleep(max(2.0, seconds - setup_s - 4.0))
        stalls = probe.stop()
        churned = churner.stop() if churner is not None else None
        window = time.monotonic() - t0
        s1 = [ng_stats(ngport + 2 * r) for r in range(relays)]
        c1, m1 = sum(cpu_seconds(p.pid) for p in procs), machine_busy()
        g1 = sum(cpu_seconds(p.pid) for p in gens)
        mem = [mem_kb(p.pid) for p in procs]
        outs = [json.loads(p.communicate(timeout=seconds + 60)[0].strip().splitlines()[-1]) for p in gens]
    finally:
        for p in gens:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
    ticks = sum(b["ticks"] - a["ticks"] for a, b in zip(s0, s1))
    lat = [v for o in outs for v in o["latencies_ms"]]
    sent = sum(o["sent_per_side"] for o in outs)
    relay_cpu = 100 * (c1 - c0) / window
    pss, rss = sum(m[0] for m in mem), sum(m[1] for m in mem)
    idle_pss, idle_rss = sum(m[0] for m in idle), sum(m[1] for m in idle)
    return {"tree": str(tree or HERE.parent), "load1": float(open("/proc/loadavg").read().split()[0]),
            "gc_full_collections": sum(b.get("gc_full_collections", 0) - a.get("gc_full_collections", 0)
                                       for a, b in zip(s0, s1)),
            # why the late ticks were late (relays that say): not on a CPU / its own work / a full GC pass
            "late_why": {k: sum(b.get(f"late_ticks_{k}", 0) - a.get(f"late_ticks_{k}", 0) for a, b in zip(s0, s1))
                         for k in ("off_cpu", "busy", "with_full_gc")} if "late_ticks_busy" in s1[0] else None,
            "phase_us_per_frame": _phases(s0, s1),
            "box_stalls": stalls, "churn": churned,
            "ng_max_ms": max((b.get("ng_max_us", 0) for b in s1), default=0) / 1000,
            "calls": n, "relays": relays, "window_s": round(window, 1), "setup_s": round(setup_s, 1), "ticks": ticks,
            "late_ticks": sum(b["late_ticks"] - a["late_ticks"] for a, b in zip(s0, s1)),
            "max_tick_interval_ms": max(b["max_tick_interval_us"] for b in s1) / 1000,
            "cpu_pct_total": round(relay_cpu, 1), "cpu_pct_per_call": round(relay_cpu / n, 3),
            "tick_cpu_pct": round(100 * sum(b["tick_busy_ms"] - a["tick_busy_ms"] for a, b in zip(s0, s1)) / 1000
                                  / window, 1),
            "generator_cpu_pct": round(100 * (g1 - g0) / window, 1),
            "machine_busy_pct": round(busy_pct(m0, m1), 1),
            "pss_mb": round(pss / 1024, 1), "rss_mb": round(rss / 1024, 1), "idle_pss_mb": round(idle_pss / 1024, 1),
            "pss_kb_per_call": round((pss - idle_pss) / n, 1), "rss_kb_per_call": round((rss - idle_rss) / n, 1),
            "latency_ms_median": round(float(np.median(lat)), 1) if lat else None,
            "latency_ms_max": round(float(np.max(lat)), 1) if lat else None, "latency_probes": len(lat),
            "delivered_to_agent_pct": round(100 * sum(o["rx_agent"] for o in outs) / max(sent, 1), 1),
            "delivered_to_customer_pct": round(100 * sum(o["rx_customer"] for o in outs) / max(sent, 1), 1),
            "recovered_digits": sum((o["recovered_digits_call1"] or 0) for o in outs),
            "generator_late_sends_pct": round(100 * sum(o["late_sends"] for o in outs)
                                              / max(1, sum(o["ticks"] for o in outs)), 1),
            "relay_errors": sum(b["tick_errors"] for b in s1),
            # the relay times the pipeline on a sample of its ticks (pipeline_timed_frames); older relays on all
            "pipeline_us_per_frame": round(sum(b["pipeline_us"] - a["pipeline_us"] for a, b in zip(s0, s1))
                                           / max(1, sum(b.get("pipeline_timed_frames", b["frames"])
                                                        - a.get("pipeline_timed_frames", a["frames"])
                                                        for a, b in zip(s0, s1))), 1),
            "relay_us_per_frame": round(1e6 * (c1 - c0) / max(1, sum(b["frames"] - a["frames"] for a, b in zip(s0, s1)))
                                        , 1)}


class _StallProbe(threading.Thread):
    """A thread of this process, at the relay's real-time priority, that sleeps 5 ms at a time: how often,
    over the window, it woke > 30 ms late and the longest wait.  Late ticks of the relay while this probe
    stalled too are the machine's (other real-time threads of the same priority, the hypervisor), not the
    relay's."""

    def __init__(self):
        super().__init__(daemon=True)
        self._halt = threading.Event()
        self.late = 0
        self.worst = 0.0
        self.start()

    def run(self):
        try:  # at the relay's own real-time priority (dtmfguard.server.sched.RT_PRIORITY): what it would see
            from dtmfguard.server.sched import RT_PRIORITY

            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
        except (OSError, AttributeError, ImportError):
            pass
        while not self._halt.is_set():
            t = time.monotonic()
            time.sleep(0.005)
            over = time.monotonic() - t - 0.005
            if over > 0.030:
                self.late += 1
            self.worst = max(self.worst, over)

    def stop(self) -> dict:
        self._halt.set()
        self.join(1)
        return {"over_30ms": self.late, "worst_ms": round(1000 * self.worst, 1)}


class _Churn(threading.Thread):
    """New calls during the window, as a contact centre has them: ``rate`` offers+answers a second to the
    relay (SDP only: no media), each deleted 2 s later.  What it measures is what setting a call up and
    tearing it down costs the relay's loop while it carries the others (late ticks)."""

    def __init__(self, port: int, rate: float):
        super().__init__(daemon=True)
        self.port, self.rate = port, rate
        self._halt = threading.Event()
        self.made = self.failed = 0
        self.start()

    def _ng(self, s, msg: dict) -> dict:
        from dtmfguard.relay import bencode

        cookie = b"churn%d" % time.monotonic_ns()
        for _ in range(5):
            s.sendto(cookie + b" " + bencode.encode(msg), ("127.0.0.1", self.port))
            try:
                data, _ = s.recvfrom(65535)
            except OSError:
                continue
            if data.startswith(cookie + b" "):
                return bencode.decode(data.split(b" ", 1)[1])
        raise RuntimeError("no answer")

    def run(self):
        import socket

        from _relay_load import sdp

        live: list = []
        k = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            while not self._halt.wait(1.0 / self.rate):
                k += 1
                cid = f"churn-{k}"
                try:
                    self._ng(s, {"command": "offer", "call-id": cid, "from-tag": "c", "sdp": sdp(9)})
                    self._ng(s, {"command": "answer", "call-id": cid, "from-tag": "c", "to-tag": "a", "sdp": sdp(11)})
                    live.append((time.monotonic(), cid))
                    self.made += 1
                    while live and time.monotonic() - live[0][0] > 2.0:
                        self._ng(s, {"command": "delete", "call-id": live.pop(0)[1], "from-tag": "c"})
                except (RuntimeError, OSError):
                    self.failed += 1
            for _, cid in live:
                try:
                    self._ng(s, {"command": "delete", "call-id": cid, "from-tag": "c"})
                except (RuntimeError, OSError):
                    pass

    def stop(self) -> dict:
        self._halt.set()
        self.join(10)
        return {"calls_set_up": self.made, "failed": self.failed}


def _phases(s0: list, s1: list) -> dict:
    """The relay's own CPU split by loop phase (us per customer frame), from relays that report it."""
    frames = sum(b["frames"] - a["frames"] for a, b in zip(s0, s1))
    out: dict = {}
    for a, b in zip(s0, s1):
        for k, v in b.get("phase_us", {}).items():
            out[k] = out.get(k, 0) + v - a.get("phase_us", {}).get(k, 0)
    return {k: round(v / max(1, frames), 1) for k, v in out.items()}


def run_serve(n: int, seconds: float, x: np.ndarray, work: Path) -> dict:
    import soundfile as sf

    import calls

    wav = work / "serve-customer.wav"
    sf.write(wav, x, 8000, subtype="PCM_16")
    spawned: list = []
    real_spawn = calls.spawn

    def spy(args, log):
        p = real_spawn(args, log)
        spawned.append((args, p))
        return p

    samples: list = []
    stop = threading.Event()

    def sampler():
        # the largest total over the run (calls connected, workers at their working size)
        while not stop.wait(1.0):
            workers = [p for a, p in spawned if "_guard_worker.py" in " ".join(a)]
            cur = [mem_kb(p.pid) for p in workers if p.poll() is None]
            if cur and (not samples or sum(x for x, _ in cur) > sum(x for x, _ in samples[0])):
                samples[:] = [cur]

    calls.spawn = spy
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    m0 = machine_busy()
    try:
        r = calls.run_mode("guard", n, seconds, wav, x, work)
    finally:
        calls.spawn = real_spawn
        stop.set()
    m1 = machine_busy()
    mem = samples[0] if samples else []
    r["pss_mb_total"] = round(sum(p for p, _ in mem) / 1024, 1) if mem else None
    r["pss_kb_per_call"] = round(sum(p for p, _ in mem) / n, 1) if mem else None
    r["rss_kb_per_call"] = round(sum(q for _, q in mem) / n, 1) if mem else None
    r["machine_busy_pct"] = round(busy_pct(m0, m1), 1)
    return r


def _medians(results: list, trees: list) -> None:
    """Per row (relays, calls) and tree: medians over the repeats, and the ratio first tree / last tree."""
    print("medians over repeats (late ticks; CPU % of a core per call; relay us per frame; latency ms; load 1 min)")
    keys = sorted({(r["relays"], r["calls"]) for r in results})
    for relays, n in keys:
        med = {}
        for t in trees:
            rows = [r for r in results if r["relays"] == relays and r["calls"] == n and r["tree"] == str(t)]
            if not rows:
                continue
            m = {k: float(np.median([r[k] or 0 for r in rows])) for k in
                 ("late_ticks", "cpu_pct_per_call", "relay_us_per_frame", "latency_ms_median", "load1",
                  "pipeline_us_per_frame")}
            med[t] = m
            print(f"  relay x{relays} {n:4d} calls  {t.name[-16:]:>16s}: late {m['late_ticks']:5.0f} "
                  f"(all {[r['late_ticks'] for r in rows]})  CPU/call {m['cpu_pct_per_call']:.3f} % "
                  f"(all {[r['cpu_pct_per_call'] for r in rows]})  {m['relay_us_per_frame']:.1f} us/frame "
                  f"(pipeline {m['pipeline_us_per_frame']:.1f})  lat {m['latency_ms_median']:.1f} ms  "
                  f"load {m['load1']:.1f}")
        if len(med) > 1:
            first, last = med[trees[0]], med[trees[-1]]
            print(f"  relay x{relays} {n:4d} calls  ratio {trees[0].name}/{trees[-1].name}: CPU per call "
                  f"{first['cpu_pct_per_call'] / max(last['cpu_pct_per_call'], 1e-9):.2f}x")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", default="50,100,200", help="comma-separated call counts for the relay")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--serve-calls", type=int, default=20, help="calls for the serve comparison (0: skip)")
    ap.add_argument("--jitter-ms", type=float, default=0.0, help="the relay's initial playout delay")
    ap.add_argument("--relays", default="1", help="relay processes to spread the calls over (e.g. 1,2: both)")
    ap.add_argument("--tree", action="append", type=Path,
                    help="checkout whose relay to run (repeatable: the trees alternate within each row; default: "
                         "this one)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per row and tree (medians are printed)")
    ap.add_argument("--churn", type=float, default=0.0,
                    help="new calls per second during the window (set up and deleted 2 s later, no media) on the "
                         "first relay: what call setup costs the calls already up")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    trees = [t.resolve() for t in a.tree] if a.tree else [HERE.parent]
    x = customer_audio()
    load_before = open("/proc/loadavg").read().split()[0]
    results, serve, overloaded = [], None, []
    try:  # this process must read the relays' counters on time although they and the load run real time
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(15))
    except (OSError, AttributeError):
        pass
    with tempfile.TemporaryDirectory(prefix="dtmfguard-relay-bench-") as tmp:
        work = Path(tmp)
        audio = work / "customer.raw"
        x.tofile(audio)
        for relays in [int(v) for v in a.relays.split(",")]:
            for n in [int(v) for v in a.calls.split(",")]:
                for _rep in range(a.repeat):
                    for tree in trees:
                        try:
                            run = len(results) + len(overloaded)
                            results.append(run_relay(n, a.seconds, audio, work, jitter_ms=a.jitter_ms, relays=relays,
                                                     ngport=22290 + 8 * run, tree=tree, churn=a.churn))
                        except RuntimeError as exc:  # an overloaded relay stops answering: the row's result
                            overloaded.append((relays, n, str(exc)))
                            continue
                        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        if a.serve_calls:
            serve = run_serve(a.serve_calls, a.seconds, x, work)
            print(json.dumps(serve), file=sys.stderr, flush=True)
    if a.json:
        print(json.dumps({"relay": results, "serve": serve}, indent=2))
        return 0
    from dtmfguard.dsp.masker import DEFAULT_LOOKAHEAD_MS

    print(f"{os.cpu_count()} cores, load average before: {load_before}; masker look-ahead {DEFAULT_LOOKAHEAD_MS:.0f} ms")
    print(f"{'mode':8s} {'calls':>5s} {'late':>12s} {'max tick':>8s} {'CPU%/call':>9s} {'CPU% tot':>8s} "
          f"{'PSS kB/call':>11s} {'RSS kB/call':>11s} {'lat. ms':>8s} {'agent rx%':>9s} {'leaked':>6s} "
          f"{'peers CPU%':>10s} {'box busy%':>9s} {'gen late%':>9s}")
    for r in results:
        print(f"{'relay x' + str(r['relays']):8s} {r['calls']:5d} {r['late_ticks']:5d}/{r['ticks']:<6d} {r['max_tick_interval_ms']:8.1f} "
              f"{r['cpu_pct_per_call']:9.3f} {r['cpu_pct_total']:8.1f} {r['pss_kb_per_call']:11.1f} "
              f"{r['rss_kb_per_call']:11.1f} {(r['latency_ms_median'] or float('nan')):8.1f} "
              f"{r['delivered_to_agent_pct']:9.1f} {r['recovered_digits']:6d} {r['generator_cpu_pct']:10.1f} "
              f"{r['machine_busy_pct']:9.1f} {r['generator_late_sends_pct']:9.1f}  {Path(r['tree']).name}")
    if len(trees) > 1 or a.repeat > 1:
        _medians(results, trees)
    for relays, n, why in overloaded:
        print(f"relay x{relays} {n:5d}  overloaded: {why}")
    for r in results:
        print(f"relay x{r['relays']} {r['calls']} calls ({Path(r['tree']).name}): CPU per customer frame "
              f"{r['relay_us_per_frame']} us, of which the shared pipeline (masker, detector) "
              f"{r['pipeline_us_per_frame']} us; loop phases us/frame {r['phase_us_per_frame'] or '-'}; "
              f"full GC passes {r['gc_full_collections']}; late ticks by cause {r['late_why'] or '-'}; "
              f"probe stalls (box) {r['box_stalls']}; churn {r['churn'] or '-'}, longest ng request "
              f"{r['ng_max_ms'] or '-'} ms")
    if serve:
        print(f"serve {serve['calls']} calls: pipeline time per frame in the port {serve['port']['pipeline_us_per_frame']} us")
        p = serve["port"]
        added = None
        print(f"{'serve':8s} {serve['calls']:5d} {p['late']:5d}/{p['requested']:<6d} {p['max_interval_ms']:8.1f} "
              f"{serve['cpu_pct_per_call']:9.3f} {serve['cpu_pct_per_call'] * serve['calls']:8.1f} "
              f"{(serve['pss_kb_per_call'] or float('nan')):11.1f} {(serve['rss_kb_per_call'] or float('nan')):11.1f} "
              f"{'(RTT)':>8s} {'':>9s} {'':>6s} {serve['peer_cpu_pct_total']:10.1f} {serve['machine_busy_pct']:9.1f}")
        if serve.get("rtt_ms_median") is not None:
            added = serve["rtt_ms_median"]
        print(f"serve round trip customer->guard->agent(echo)->guard->customer, median: {added} ms "
              "(one-way added = this minus the direct bridge's RTT; run benchmarks/calls.py for that pair)")
        rel = [r for r in results if r["calls"] >= serve["calls"]]
        if rel:
            r = rel[0]
            print(f"ratios at {serve['calls']} (serve) vs {r['calls']} (relay) calls: CPU per call serve/relay "
                  f"{serve['cpu_pct_per_call'] / max(r['cpu_pct_per_call'], 1e-9):.1f}x; memory per call (PSS) "
                  f"serve/relay {(serve['pss_kb_per_call'] or 0) / max(r['pss_kb_per_call'], 1e-9):.0f}x")
    print("relay xR = calls spread over R relay processes; "
          "late = ticks > 30 ms after the previous one (relay: one tick for all calls; serve: per call frame); "
          "lat. = one-way customer->agent through the relay on loopback (burst onset); leaked = digits the "
          "adversarial decoder names in call 1's agent audio; peers CPU% = load generators (relay) or pjsua2 "
          "peers (serve); box busy% = all CPUs, every process on the machine; gen late% = load-generator ticks sent > 10 ms late "
          "(their packets then reach the relay late: latency and delivery figures of that row are the generator's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
