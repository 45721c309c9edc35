# SPDX-License-Identifier: GPL-2.0-or-later
"""Bounded soak: N concurrent payment calls through guard workers on 127.0.0.1 for minutes (issue 8).

Why: a process in a live call path that leaks a little per call, drifts off pjsua2's 20 ms clock under
sustained load, or drops or repeats a digit now and then passes every short test and fails in week two.
Trusted telephony and payment systems are qualified with long runs at steady load; this is the bounded
version.  It reuses the call benchmark's pieces: the production ``Guard`` in ``_guard_worker.py`` (here
with the control API and serve's payment-session factory, gateway ``webhook``), the package's agent peer
(records every call) and ``_soak_customer.py`` (calls again and again; each call types a card: test
numbers only, half in-band, half RFC 4733; a different entry per call).

While it runs, this script starts a payment session on every call as soon as it is connected (control
API, as an agent desktop would), runs the sample webhook receiver (``samples/webhook_receiver.py``, plain
HTTP on 127.0.0.1) that records a SHA-256 per card it is asked to charge, and samples every guard
worker's RSS.  Then it checks, and exits 1 if any check fails:

* memory flat: least-squares RSS slope of each worker after the warm-up <= ``--max-slope-kb-min``;
* late frames: guard clock ticks more than 30 ms after the previous one, and frames the port had no
  processed audio for (silence sent, fail closed), each <= ``--max-late-pct`` of all ticks;
* every card entry captured exactly once: the multiset of card hashes the gateway received equals the
  multiset the customers typed on calls that completed (no digit lost, no payment sent twice), and
  every call connected;
* nothing recoverable: the adversarial decoder (``dtmfguard.testkit.adversary``) finds no digit on any agent
  recording.

No digit is ever printed: both sides are compared as hashes.  Usage::

    python benchmarks/soak.py --calls 10 --seconds 600      # the issue's 10-minute soak
    python benchmarks/soak.py --calls 4 --seconds 20 --json  # quick (tests/test_soak.py)
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import http.client
import http.server
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from calls import cpu_seconds, spawn  # noqa: E402 - the call benchmark's process helpers

from dtmfguard.server.procs import json_events, stop_process  # noqa: E402
from dtmfguard.server.control import request as control_request  # noqa: E402

TOKEN = "soak-control-token"
SECRET = "soak-webhook-secret-0123456789"
HANDOFF_WAIT_S = 20.0  # longest wait for the last payments to reach the gateway after the customers stop


class Drained:
    """A child whose stdout is read on a thread (long runs print more than a pipe buffer holds)."""

    def __init__(self, args, log: Path):
        self.p = spawn(args, log)
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)

    def wait_for(self, token: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(token in line for line in self.lines):
                return
            if self.p.poll() is not None:
                time.sleep(0.2)
                if any(token in line for line in self.lines):
                    return
                raise RuntimeError(f"process exited early ({self.p.returncode})")
            time.sleep(0.05)
        raise RuntimeError(f"timeout waiting for {token}")

    def events(self) -> list[dict]:
        return json_events(self.lines)

    def stop(self, grace=20.0) -> None:
        stop_process(self.p, grace)
        self._t.join(5)


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def slope_kb_per_min(samples: list[tuple[float, int]], warmup_s: float) -> float | None:
    pts = [(t, r) for t, r in samples if t >= warmup_s]
    if len(pts) < 3:
        return None
    t = np.array([p[0] for p in pts]) / 60.0
    r = np.array([p[1] for p in pts], dtype=np.float64)
    return float(np.polyfit(t, r, 1)[0])


class CardReceiver:
    """samples/webhook_receiver.py on plain HTTP at 127.0.0.1; keeps a SHA-256 per card charged."""

    def __init__(self):
        spec = importlib.util.spec_from_file_location("webhook_receiver", HERE.parent / "samples" / "webhook_receiver.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        self.hashes: list[str] = []
        self.keys: collections.Counter = collections.Counter()
        lock = threading.Lock()
        outer = self

        def charge(payment: dict) -> dict:
            card = payment.get("card") or {}
            text = f"{card.get('number')}|{card.get('expiry_month')}|{card.get('expiry_year')}|{card.get('security_code')}"
            with lock:
                outer.hashes.append(hashlib.sha256(text.encode()).hexdigest())
            return {"status": "approved", "authorisation": "SOAKOK", "message": "approved by the soak receiver"}

        base = mod.make_handler([SECRET.encode()], charge)

        class Counting(base):
            def do_POST(self):  # noqa: N802 - every request, retries included, per idempotency key
                with lock:
                    outer.keys[self.headers.get("Idempotency-Key", "")] += 1
                super().do_POST()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/payments"
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _api(port: int, method: str, path: str, body=None):
    return control_request(port, method, path, TOKEN, body, timeout=5)


class PaymentDriver(threading.Thread):
    """Plays the agent desktop: starts a payment on every newly connected call, notes each outcome."""

    def __init__(self, control_ports: list[int]):
        super().__init__(daemon=True)
        self.ports = control_ports
        self.halt = threading.Event()
        self.sessions: dict[tuple, str] = {}
        self.digits: dict[tuple, int] = {}  # key presses the call's pipeline reported (last seen)
        self.lost: dict[tuple, int] = {}  # customer frames the guard's jitter buffer concealed or dropped (last seen)
        self.start_errors: collections.Counter = collections.Counter()
        self.lateness_s: list[float] = []

    def run(self):
        while not self.halt.is_set():
            for w, port in enumerate(self.ports):
                try:
                    _, body = _api(port, "GET", "/calls")
                except (OSError, ValueError, http.client.HTTPException):
                    continue
                for c in body.get("calls", []):
                    key = (w, c["id"])
                    if key in self.sessions:
                        if c.get("payment"):
                            self.sessions[key] = c["payment"]
                        self.digits[key] = c.get("media", {}).get("digits", 0)
                        self.lost[key] = c.get("media", {}).get("customer_frames_lost", 0)
                        continue
                    if c["state"] != "connected":
                        continue
                    try:
                        status, _ = _api(port, "POST", f"/calls/{c['id']}/payment",
                                         {"amount": 1999, "reference": f"SOAK-{w}-{c['id']}", "agent_id": "soak"})
                    except (OSError, ValueError, http.client.HTTPException) as exc:
                        self.start_errors[type(exc).__name__] += 1
                        continue
                    if status == 201:
                        self.sessions[key] = "collecting"
                        if c.get("connected_at"):
                            self.lateness_s.append(time.time() - c["connected_at"])
                    else:
                        self.start_errors[str(status)] += 1
            self.halt.wait(0.2)


def run_soak(n_calls: int, seconds: float, work: Path, sample_s: float = 5.0, base_port: int = 18000,
             rtp_base: int = 44000, tracemalloc_after: int = 0) -> dict:
    n_guards = math.ceil(n_calls / 2)
    n_agents = math.ceil(n_calls / 4)
    receiver = CardReceiver()
    # children inherit these: the control API's bearer token and the webhook signing secret (test values)
    os.environ.update({"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_WEBHOOK_SECRET": SECRET})
    agents, guards, customers = [], [], []
    ctl_ports = [base_port + 600 + i for i in range(n_guards)]
    rss: dict[int, list] = {i: [] for i in range(n_guards)}
    driver = PaymentDriver(ctl_ports)
    try:
        for i in range(n_agents):
            (work / f"agent{i}").mkdir()
            agents.append(Drained(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(base_port + 400 + i),
                                   "--rtp", str(rtp_base + 2000 + 40 * i), "--calls", "0",
                                   "--timeout", str(seconds + 300), "--record-dir", str(work / f"agent{i}")],
                                  work / f"agent{i}.err"))
        for i in range(n_guards):
            guards.append(Drained([str(HERE / "_guard_worker.py"), "--listen", f"127.0.0.1:{base_port + i}",
                                   "--agent", f"sip:agent@127.0.0.1:{base_port + 400 + i // 2}",
                                   "--rtp-port", str(rtp_base + 20 * i), "--control", f"127.0.0.1:{ctl_ports[i]}",
                                   "--gateway-url", receiver.url, "--totals",
                                   *(["--tracemalloc", str(tracemalloc_after)] if tracemalloc_after else [])],
                                  work / f"guard{i}.err"))
        for p in agents + guards:
            p.wait_for("ready", 60)
        driver.start()
        (work / "customers").mkdir()
        for i in range(n_guards):
            count = min(2, n_calls - 2 * i)
            customers.append(Drained([str(HERE / "_soak_customer.py"), "--port", str(base_port + 200 + i),
                                      "--rtp", str(rtp_base + 4000 + 40 * i),
                                      "--to", f"sip:guard@127.0.0.1:{base_port + i}", "--count", str(count),
                                      "--seconds", str(seconds), "--customer", str(i),
                                      "--work", str(work / "customers")], work / f"customer{i}.err"))
        t0 = time.monotonic()
        cpu0 = sum(cpu_seconds(p.p.pid) for p in guards)
        while any(c.p.poll() is None for c in customers):
            t = time.monotonic() - t0
            for i, g in enumerate(guards):
                r = rss_kb(g.p.pid)
                if r is not None:
                    rss[i].append((t, r))
            if t > seconds + 120:
                break
            time.sleep(min(sample_s, 1.0) if t < 5 else sample_s)
        elapsed = time.monotonic() - t0
        cpu1 = sum(cpu_seconds(p.p.pid) for p in guards)
        for c in customers:
            c.stop(30)
        # the last sessions' gateway hand-off: on a loaded host it can take seconds after the call ended,
        # so wait (bounded) until the gateway holds as many entries as the completed calls typed
        typed = sum(1 for c in customers for e in c.events() if e.get("event") == "call" and e["ok"])
        handoff_end = time.monotonic() + HANDOFF_WAIT_S
        time.sleep(1.5)
        while len(receiver.hashes) < typed and time.monotonic() < handoff_end:
            time.sleep(0.2)
        driver.halt.set()
        driver.join(10)
        alive = [g.p.poll() is None for g in guards]
        for g in guards:
            g.stop()
        for a in agents:
            a.stop()
    finally:
        for p in customers + guards + agents:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
        receiver.close()

    # -- figures ---------------------------------------------------------------------------------------
    warmup = min(60.0, 0.2 * seconds)
    slopes = [slope_kb_per_min(rss[i], warmup) for i in range(n_guards)]
    late_slopes = [slope_kb_per_min(rss[i], elapsed / 2) for i in range(n_guards)]
    totals = [next((e["totals"] for e in g.events() if e.get("event") == "done"), None) for g in guards]
    port = collections.Counter()
    max_tick = 0.0
    worker_calls = 0
    for t in totals:
        if t:
            worker_calls += t["calls"]
            for k, v in t["port"].items():
                if k == "max_interval_ms":
                    max_tick = max(max_tick, v)
                elif k != "busy_s":
                    port[k] += v
    calls = [e for c in customers for e in c.events() if e.get("event") == "call"]
    sent = collections.Counter(e["card_sha256"] for e in calls if e["ok"])
    got = collections.Counter(receiver.hashes)
    modes = collections.Counter(e["mode"] for e in calls if e["ok"])
    recordings = sorted(work.glob("agent*/call-*.wav"))
    leaked = []
    from dtmfguard.testkit.adversary import recover_digits

    for f in recordings:
        y, _ = sf.read(f, dtype="int16")
        if y.size and recover_digits(y.astype(np.float64), 8000):
            leaked.append(f.relative_to(work).as_posix())
    outcomes = collections.Counter(driver.sessions.values())
    # where an entry got lost: the pipeline's key count on calls whose session did not complete
    # (each call types 25 keys: PAN 16, '#', MMYY 4, CVV 3, '#')
    unfinished = {f"w{w}/{cid}": driver.digits.get((w, cid)) for (w, cid), st in driver.sessions.items()
                  if st != "completed"}
    # ... and whether the guard's jitter buffer lost customer frames on that call: a lost packet inside an
    # in-band key can take the key with it (the customer would type again); without one, a lost entry is the
    # guard's fault
    after_loss = sum(1 for (w, cid), st in driver.sessions.items() if st != "completed" and driver.lost.get((w, cid)))
    (work / "rss.json").write_text(json.dumps({str(i): rss[i] for i in rss}))
    for i, c in enumerate(customers):  # their event lines (test card numbers only): why a call failed
        (work / f"customer{i}.events").write_text("".join(c.lines))
    return {
        "calls_concurrent": n_calls, "seconds": round(elapsed, 1), "guards": n_guards,
        "calls_total": len(calls), "calls_ok": sum(1 for e in calls if e["ok"]),
        "calls_failed": sum(1 for e in calls if not e["ok"]),
        "failed_statuses": dict(collections.Counter(e.get("status") for e in calls if not e["ok"])),
        "modes": dict(modes), "worker_calls": worker_calls,
        "workers_alive_at_end": sum(alive),
        "guard_cpu_pct_per_call": round(100 * (cpu1 - cpu0) / max(elapsed, 1e-9) / n_calls, 2),
        "rss_kb_start": [s[0][1] if s else None for s in rss.values()],
        "rss_kb_end": [s[-1][1] if s else None for s in rss.values()],
        "rss_slope_kb_per_min": [None if s is None else round(s, 1) for s in slopes],
        # the same fit over the last half only: a leak keeps its slope, warm-up and bounded caches flatten
        "rss_slope_last_half_kb_per_min": [None if s is None else round(s, 1) for s in late_slopes],
        "rss_samples": sum(len(s) for s in rss.values()), "rss_warmup_s": warmup,
        "ticks": port.get("requested", 0), "late": port.get("late", 0), "missing": port.get("missing", 0),
        # the first tick of every call has no processed frame yet (silence, by design): counted apart
        "missing_after_first_tick": max(0, port.get("missing", 0) - worker_calls),
        "overrun": port.get("overrun", 0), "port_errors": port.get("errors", 0), "max_tick_ms": max_tick,
        "payments_started": len(driver.sessions), "payment_start_errors": dict(driver.start_errors),
        "payment_outcomes_seen": dict(outcomes), "unfinished_sessions_keys_seen": unfinished,
        "payment_start_after_connect_s_max": round(max(driver.lateness_s, default=0.0), 2),
        "entries_typed": sum(sent.values()), "entries_charged": sum(got.values()),
        "entries_missing": sum((sent - got).values()), "entries_extra": sum((got - sent).values()),
        "entries_missing_after_packet_loss": min(after_loss, sum((sent - got).values())),
        "customer_frames_lost": sum(driver.lost.values()),
        "unfinished_sessions_frames_lost": {f"w{w}/{cid}": driver.lost.get((w, cid))
                                            for (w, cid), st in driver.sessions.items() if st != "completed"},
        "gateway_requests": sum(receiver.keys.values()), "gateway_keys": len(receiver.keys),
        "recordings": len(recordings), "recordings_with_digits": leaked,
        "load_avg_at_end": open("/proc/loadavg").read().split()[:3],
    }


def verdict(r: dict, max_slope: float, max_late_pct: float, max_loss_misses: int = 0) -> list[str]:
    fails = []
    for i, s in enumerate(r["rss_slope_kb_per_min"]):
        if s is None or s > max_slope:
            fails.append(f"worker {i}: RSS slope {s} KB/min (limit {max_slope})")
    ticks = max(r["ticks"], 1)
    for k in ("late", "missing"):
        if 100 * r[k] / ticks > max_late_pct:
            fails.append(f"{k} frames {r[k]} of {r['ticks']} ticks (limit {max_late_pct} %)")
    if r["port_errors"]:
        fails.append(f"{r['port_errors']} media port errors")
    if r["calls_failed"] or not r["calls_ok"]:
        fails.append(f"{r['calls_failed']} of {r['calls_total']} calls failed or were cut short")
    lossy = min(r["entries_missing_after_packet_loss"], max_loss_misses)
    if r["entries_missing"] - lossy or r["entries_extra"]:
        fails.append(f"card entries: {r['entries_missing']} typed but not charged ({r['entries_missing_after_packet_loss']} "
                     f"on calls whose jitter buffer lost customer frames; {max_loss_misses} allowed), "
                     f"{r['entries_extra']} charged without a matching typed entry (or twice)")
    if r["recordings"] < r["calls_ok"]:
        fails.append(f"only {r['recordings']} agent recordings for {r['calls_ok']} calls")
    if r["recordings_with_digits"]:
        fails.append(f"digits recoverable on {len(r['recordings_with_digits'])} agent recordings")
    if r["workers_alive_at_end"] != r["guards"]:
        fails.append(f"only {r['workers_alive_at_end']} of {r['guards']} guard workers alive at the end")
    return fails


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Example: python benchmarks/soak.py --calls 10 --seconds 600")
    ap.add_argument("--calls", type=int, default=10, help="concurrent calls (2 per guard worker)")
    ap.add_argument("--seconds", type=float, default=600.0, help="how long new calls keep starting")
    ap.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling interval")
    ap.add_argument("--max-slope-kb-min", type=float, default=100.0,
                    help="memory flat: largest RSS slope allowed per worker after the warm-up (KB/min)")
    ap.add_argument("--max-late-pct", type=float, default=0.5, help="late and missing frames allowed (%% of ticks)")
    ap.add_argument("--max-loss-misses", type=int, default=0,
                    help="card entries allowed to go uncharged on calls whose jitter buffer lost customer frames "
                         "(a loaded test host; default 0: every entry must be charged)")
    ap.add_argument("--base-port", type=int, default=18000, help="SIP/control ports from here (+0..+700)")
    ap.add_argument("--rtp-base", type=int, default=44000, help="RTP ports from here (+0..+4000+40*workers)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N",
                    help="diagnosis: each worker reports its Python allocation growth after its N-th call "
                         "(in guardI.err; use with --keep)")
    ap.add_argument("--keep", help="keep logs and recordings in this directory")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.calls < 1 or a.seconds <= 0:
        ap.error("--calls and --seconds must be positive")
    with tempfile.TemporaryDirectory(prefix="dtmfguard-soak-") as tmp:
        work = Path(tmp)
        try:
            r = run_soak(a.calls, a.seconds, work, a.sample_s, a.base_port, a.rtp_base, a.tracemalloc)
        finally:
            if a.keep:
                shutil.copytree(work, a.keep, dirs_exist_ok=True)
    fails = verdict(r, a.max_slope_kb_min, a.max_late_pct, a.max_loss_misses)
    r["failures"] = fails
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        ticks = max(r["ticks"], 1)
        print(f"soak: {r['calls_concurrent']} concurrent calls for {r['seconds']:.0f} s on {os.cpu_count()} cores "
              f"({r['guards']} guard workers); {r['calls_total']} calls ({r['calls_ok']} complete, "
              f"{r['calls_failed']} failed), modes {r['modes']}")
        print(f"memory: RSS KB start {r['rss_kb_start']} end {r['rss_kb_end']}; slope after {r['rss_warmup_s']:.0f} s "
              f"warm-up {r['rss_slope_kb_per_min']} KB/min (limit {a.max_slope_kb_min}), over the last half "
              f"{r['rss_slope_last_half_kb_per_min']} KB/min")
        print(f"clock: {r['ticks']} ticks, late {r['late']} ({100 * r['late'] / ticks:.3f} %), missing {r['missing']} "
              f"({100 * r['missing'] / ticks:.3f} %; {r['missing_after_first_tick']} after each call's first tick), overrun {r['overrun']}, max tick {r['max_tick_ms']} ms "
              f"(limit {a.max_late_pct} %); guard CPU {r['guard_cpu_pct_per_call']} % of a core per call")
        print(f"payments: {r['payments_started']} started (start errors {r['payment_start_errors']}, latest "
              f"{r['payment_start_after_connect_s_max']} s after connect), outcomes seen {r['payment_outcomes_seen']}"
              + (f"; unfinished (keys seen by the pipeline) {r['unfinished_sessions_keys_seen']}"
                 if r["unfinished_sessions_keys_seen"] else ""))
        print(f"card entries: typed {r['entries_typed']}, charged {r['entries_charged']}, missing "
              f"{r['entries_missing']} ({r['entries_missing_after_packet_loss']} on calls whose jitter buffer lost "
              f"customer frames; {r['customer_frames_lost']} such frames in all), extra/duplicate "
              f"{r['entries_extra']}; gateway requests "
              f"{r['gateway_requests']} for {r['gateway_keys']} idempotency keys")
        print(f"agent recordings: {r['recordings']}, with a recoverable digit: {len(r['recordings_with_digits'])}")
        print("PASS" if not fails else "FAIL: " + "; ".join(fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
