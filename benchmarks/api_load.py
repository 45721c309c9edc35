# SPDX-License-Identifier: GPL-2.0-or-later
"""API load on the box control endpoint while calls run: do SSE followers and requests cost media ticks?

One ``dtmfguard serve --workers W`` (the box endpoint in the supervisor) carries N calls (2 per worker)
from customer peers to agent peers, all on this machine.  Two phases of equal length, in one run, on the
same live calls: ``quiet`` (no API traffic) and ``load`` (``--followers`` SSE followers of the calls'
masked feeds, spread over the calls, plus ``--rps`` requests a second: list, find by correlation id, one
call, a ticket, and a payment started and cancelled on every call twice a minute, so the feeds carry
events).  For each phase it prints the late media ticks (clock ticks > 30 ms after the previous one, from
``/metrics``), frames sent as silence for lack of a processed frame, the supervisor's CPU, and for the
load phase the request latency (p50/p99/max), errors and the feed events the followers received.

Usage: ``python benchmarks/api_load.py --calls 20 --followers 200 --rps 100 --seconds 30``
(2 cores shared with the peers and with other jobs: compare the two phases of one run, not runs).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calls import cpu_seconds  # noqa: E402  (one /proc reader for every benchmark)

TOKEN = "api-load-admin-token"


def spawn(args, log: Path, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
                            start_new_session=True, env={**os.environ, **(env or {})})


def wait_line(p: subprocess.Popen, token: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if token in line:
            return line
        if not line and p.poll() is not None:
            raise RuntimeError(f"process exited early ({p.returncode})")
    raise RuntimeError(f"timeout waiting for {token!r}")


def stop(p: subprocess.Popen, grace: float = 20.0) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()


def metric(text: str, name: str) -> float:
    total = 0.0
    for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M):
        total += float(m.group(1))
    return total


class Load:
    def __init__(self, base: str, handles: list, followers: int, rps: float):
        self.base, self.handles, self.n_followers, self.rps = base, handles, followers, rps
        self.latency_ms: list = []
        self.errors: dict = {}
        self.events = 0
        self.connected = 0
        self.stop = asyncio.Event()

    async def follow(self, s: aiohttp.ClientSession, handle: str) -> None:
        last = 0
        while not self.stop.is_set():
            try:
                headers = {"Authorization": f"Bearer {TOKEN}", "Last-Event-ID": str(last)}
                async with s.get(f"{self.base}/v1/calls/{handle}/feed", headers=headers) as r:
                    if r.status != 200:
                        self.errors[f"feed {r.status}"] = self.errors.get(f"feed {r.status}", 0) + 1
                        await asyncio.sleep(1)
                        continue
                    self.connected += 1
                    async for raw in r.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith("id:"):
                            last = int(line[3:])
                            self.events += 1
                        if self.stop.is_set():
                            break
                    self.connected -= 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0.5)

    async def one(self, s: aiohttp.ClientSession, method: str, path: str, body=None) -> None:
        t0 = time.perf_counter()
        try:
            async with s.request(method, self.base + path, json=body,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                await r.read()
                if r.status >= 500 or r.status in (401, 403, 404):
                    self.errors[f"{method} {r.status}"] = self.errors.get(f"{method} {r.status}", 0) + 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
        self.latency_ms.append((time.perf_counter() - t0) * 1000)

    async def run(self, seconds: float) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as s:
            followers = [asyncio.create_task(self.follow(s, self.handles[i % len(self.handles)]))
                         for i in range(self.n_followers)]
            rnd = random.Random(7)
            pending = set()
            t0 = time.monotonic()
            n = 0
            while time.monotonic() - t0 < seconds:
                h = rnd.choice(self.handles)
                k = n % 10
                if k < 4:
                    req = ("GET", "/v1/calls")
                elif k < 6:
                    req = ("GET", f"/v1/calls?correlation={h}")
                elif k < 8:
                    req = ("GET", f"/v1/calls/{h}")
                else:
                    req = ("POST", f"/v1/calls/{h}/tickets")
                pending.add(asyncio.create_task(self.one(s, *req)))
                if n % int(max(1, self.rps * 30 / max(1, len(self.handles)))) == 0:  # payments come and go
                    pending.add(asyncio.create_task(self.one(s, "POST", f"/v1/calls/{h}/payment/cancel")))
                    pending.add(asyncio.create_task(self.one(s, "POST", f"/v1/calls/{h}/payment", {"amount": 100})))
                n += 1
                pending = {t for t in pending if not t.done()}
                await asyncio.sleep(max(0.0, t0 + n / self.rps - time.monotonic()))
            self.sent = n
            self.stop.set()
            await asyncio.gather(*pending, return_exceptions=True)
            for t in followers:
                t.cancel()
            await asyncio.gather(*followers, return_exceptions=True)


async def get_text(url: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            return await r.text()


def snapshot(base: str, sup_pid: int) -> dict:
    text = asyncio.run(get_text(base + "/metrics"))
    return {"late": metric(text, "dtmfguard_late_ticks_total"), "frames": metric(text, "dtmfguard_media_frames_total"),
            "silenced": metric(text, "dtmfguard_frames_silenced_total"), "cpu": cpu_seconds(sup_pid),
            "t": time.monotonic()}


def delta(a: dict, b: dict) -> dict:
    return {k: b[k] - a[k] for k in a}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--followers", type=int, default=200)
    ap.add_argument("--rps", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    workers = math.ceil(a.calls / 2)
    work = Path(tempfile.mkdtemp(prefix="dtmfguard-api-load-"))
    base_port = random.randrange(21000, 27000, 500)
    ctl, gport, aport = base_port, base_port + 100, base_port + 400
    call_s = 2 * a.seconds + 25
    wav = work / "customer.wav"
    rng = np.random.default_rng(3)
    sf.write(wav, (rng.standard_normal(int(8000 * 10)) * 800).astype(np.int16), 8000, subtype="PCM_16")
    # agents: a peer takes 4 calls; worker i calls the agent peer i // 2 (Request-URI user = its port)
    n_agents = math.ceil(a.calls / 4)
    (work / "guard.toml").write_text(f"""
[sip]
listen = "127.0.0.1:{gport}"
rtp_port = 40000
[agent]
from = "request-uri"
template = "sip:agent@127.0.0.1:{{user}}"
[control]
listen = "127.0.0.1:{ctl}"
endpoint = "box"
[payment]
gateway = "vault"
[workers]
count = {workers}
sip_port_step = 2
""")
    env = {"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_VAULT_KEY": "33" * 32,
           "DTMFGUARD_VAULT_PATH": str(work / "vault.sqlite")}
    procs = []
    try:
        agents = [spawn(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport + 2 * i), "--rtp",
                         str(36000 + 100 * i), "--calls", "0", "--timeout", str(call_s + 120)], work / f"agent{i}.err")
                  for i in range(n_agents)]
        procs += agents
        guard = spawn(["-m", "dtmfguard", "serve", "--config", str(work / "guard.toml")], work / "guard.err", env)
        procs.append(guard)
        for p in agents:
            wait_line(p, "ready", 30)
        wait_line(guard, "ready", 60)
        base = f"http://127.0.0.1:{ctl}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            h = json.loads(asyncio.run(get_text(base + "/health")))
            if all((w.get("health") or {}).get("ok") for w in h["workers"]):
                break
            time.sleep(0.5)
        for i in range(workers):
            count = min(2, a.calls - 2 * i)
            agent_port = aport + 2 * (2 * i // 4)
            procs.append(spawn(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(base_port + 250 + 2 * i),
                                "--rtp", str(32000 + 100 * i), "--to", f"sip:{agent_port}@127.0.0.1:{gport + 2 * i}",
                                "--count", str(count), "--play", str(wav), "--play-s", str(call_s),
                                "--record-dir", str(work), "--timeout", str(call_s + 60)], work / f"customer{i}.err"))
        handles: list = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(handles) < a.calls:
            calls = json.loads(asyncio.run(get_text(base + "/v1/calls")))["calls"]
            handles = [c["handle"] for c in calls if c["state"] == "connected"]
            time.sleep(0.5)
        if len(handles) < a.calls:
            print(f"only {len(handles)} of {a.calls} calls connected (see {work})", file=sys.stderr)
            return 1
        time.sleep(3.0)  # let every call settle
        s0 = snapshot(base, guard.pid)
        time.sleep(a.seconds)
        s1 = snapshot(base, guard.pid)
        load = Load(base, handles, a.followers, a.rps)
        gen0 = time.process_time()
        asyncio.run(load.run(a.seconds))
        gen_cpu = time.process_time() - gen0
        s2 = snapshot(base, guard.pid)
        quiet, loaded = delta(s0, s1), delta(s1, s2)
        lat = np.array(load.latency_ms) if load.latency_ms else np.zeros(1)
        r = {"calls": len(handles), "workers": workers, "cores": os.cpu_count(), "seconds": a.seconds,
             "quiet": quiet, "load": loaded, "followers": a.followers, "rps_target": a.rps,
             "requests": len(load.latency_ms), "rps": round(len(load.latency_ms) / loaded["t"], 1),
             "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                            "p99": round(float(np.percentile(lat, 99)), 1), "max": round(float(lat.max()), 1)},
             "errors": load.errors, "feed_events": load.events,
             "load_generator_cpu_pct": round(100 * gen_cpu / loaded["t"], 1)}
    finally:
        for p in reversed(procs):
            stop(p)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"api_load: {r['calls']} calls on {r['workers']} workers, {r['cores']} cores, {a.seconds:.0f} s per phase")
    print(f"{'phase':<6} {'frames':>8} {'late ticks':>10} {'silenced':>9} {'supervisor CPU':>15}")
    for name in ("quiet", "load"):
        d = r[name]
        print(f"{name:<6} {int(d['frames']):>8} {int(d['late']):>10} {int(d['silenced']):>9} "
              f"{100 * d['cpu'] / d['t']:>13.1f} %")
    q, lo = r["quiet"], r["load"]
    print(f"load: {a.followers} SSE followers, {r['requests']} requests ({r['rps']}/s), latency p50 "
          f"{r['latency_ms']['p50']} ms p99 {r['latency_ms']['p99']} ms max {r['latency_ms']['max']} ms, "
          f"errors {r['errors'] or 0}, feed events received {r['feed_events']}; the load generator itself "
          f"used {r['load_generator_cpu_pct']} % of a core (same machine)")
    print(f"late ticks per 10,000 frames: quiet {1e4 * q['late'] / max(q['frames'], 1):.2f}, load "
          f"{1e4 * lo['late'] / max(lo['frames'], 1):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
