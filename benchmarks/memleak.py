# SPDX-License-Identifier: GPL-2.0-or-later
"""Does a guard worker leak memory per call?  Hundreds of short calls, memory figures per call count (issue 8).

Why: the 10-minute soak (benchmarks/soak.py) saw each worker's RSS creep ~1.3 KB per call after the
warm-up, with no Python allocation growth (tracemalloc).  A real per-call leak keeps its slope forever;
allocator settling and bounded caches flatten out.  Telling them apart needs many more calls per worker
than the soak makes, and figures that separate memory in use from memory the allocator only keeps
(``benchmarks/_memstats.py``: RSS, glibc ``mallinfo2``, arenas, live object counts, ``malloc_trim``).

Two modes bisect the worker:

* ``sip``: one guard worker per *variant* (``benchmarks/_guard_worker.py --memstats N``), each with its
  own agent and a customer (``_soak_customer.py`` with a short script) calling back to back on 2 slots.
  Variants: ``direct`` (pjsua2 bridge only, no port), ``passthrough`` (our AudioMediaPort, identity
  pipeline), ``full`` (the production pipeline), ``ctl`` (full + the control API, polled every 0.2 s as
  soak.py's driver does, no payment), ``pay`` (full + control API + webhook gateway, a payment started on
  every call by soak.py's driver, full card entries: test numbers only).
* ``pipeline``: no SIP at all; ``CallPipeline`` (+ a ``PaymentSession`` with ``--session``) created, fed a
  call's frames (keys in-band or as RFC 4733 callbacks) and dropped, in a loop.

Each prints a table (calls, RSS, malloc in use / free, arenas, threads, per-call objects still alive) and
least-squares slopes in bytes per call after the warm-up, for the first and the second half separately
(a leak keeps its slope; settling flattens).  Usage::

    python benchmarks/memleak.py pipeline --calls 2000 --every 100 --session
    python benchmarks/memleak.py sip --seconds 480 --variants direct,passthrough,full,pay --every 25
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _memstats import snapshot  # noqa: E402

#: SIP variants -> extra _guard_worker.py flags (pay also gets the control API and the gateway URL)
VARIANTS = {"direct": ["--direct"], "passthrough": ["--passthrough"], "full": [], "ctl": [], "pay": []}
SHORT_KEYS = "4111#"  # the first keys of a test card number: exercises the detector and masker per call


# -- figures -----------------------------------------------------------------------------------------------
def _series(points: list[dict], key: str) -> list[tuple[int, float]]:
    out = []
    for p in points:
        v = p
        for part in key.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is not None:
            out.append((p["calls"], float(v)))
    return out


def slope_per_call(pts: list[tuple[int, float]]) -> float | None:
    """Least-squares slope (value per call); None with fewer than 3 points."""
    if len(pts) < 3:
        return None
    x = np.array([p[0] for p in pts], dtype=np.float64)
    y = np.array([p[1] for p in pts], dtype=np.float64)
    if np.ptp(x) == 0:
        return None
    return float(np.polyfit(x, y, 1)[0])


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def slopes(points: list[dict], warmup_calls: int) -> dict:
    """Bytes per call of each figure after the warm-up: whole, first half, second half."""
    after = [p for p in points if p["calls"] >= warmup_calls]
    out = {}
    keys = {"rss": ("rss_kb", 1024), "rss_after_trim": ("rss_after_trim_kb", 1024),
            "malloc_in_use": ("mallinfo.uordblks", 1), "malloc_free": ("mallinfo.fordblks", 1),
            "malloc_mmap": ("mallinfo.hblkhd", 1)}
    for name, (key, scale) in keys.items():
        pts = [(c, v * scale) for c, v in _series(after, key)]
        if len(pts) < 3:
            continue
        mid = (pts[0][0] + pts[-1][0]) / 2
        first = [p for p in pts if p[0] <= mid]
        second = [p for p in pts if p[0] >= mid]
        out[name] = {"all": _round(slope_per_call(pts)), "first_half": _round(slope_per_call(first)),
                     "second_half": _round(slope_per_call(second))}
    return out


def table(name: str, points: list[dict]) -> str:
    lines = [f"{name}: calls   RSS KB  trimmed KB  malloc used KB  malloc free KB  mmap KB  arenas  threads  "
             "per-call objects alive"]
    for p in points:
        m = p.get("mallinfo") or {}
        objs = {k: v for k, v in (p.get("objects") or {}).items()
                if k in ("_Leg", "Bridge", "PipelinePort", "CallPipeline", "PaymentSession", "Call")}
        lines.append(f"  {p['calls']:>10} {p['rss_kb']:>8} {p.get('rss_after_trim_kb') or '':>11} "
                     f"{m.get('uordblks', 0) // 1024:>15} {m.get('fordblks', 0) // 1024:>15} "
                     f"{m.get('hblkhd', 0) // 1024:>8} {p.get('arenas')!s:>7} {p.get('native_threads')!s:>8}  {objs}")
    return "\n".join(lines)


# -- pipeline mode (no SIP) ----------------------------------------------------------------------------------
def _call_audio(keys: str, digit_ms: int, seed: int) -> tuple[np.ndarray, list]:
    from dtmfguard.testkit.synth import keypresses

    rng = np.random.default_rng(seed)
    lead = rng.normal(0, 300, 2400)
    tones, spans = keypresses(keys, tone_ms=digit_ms, gap_ms=digit_ms, lead_ms=0, tail_ms=0, rng=rng)
    tail = rng.normal(0, 300, 4000)
    x = np.concatenate([lead, tones, tail])
    return np.clip(x, -32768, 32767).astype(np.int16), [(t.digit, t.start + lead.size, t.end + lead.size) for t in spans]


def run_pipeline(n_calls: int, every: int, session: bool, trim: bool, digit_ms: int = 70) -> list[dict]:
    """CallPipeline (and a PaymentSession) per call, fed one call's frames, dropped.  Even calls type
    their keys in-band, odd ones as RFC 4733 callbacks (silence in the audio meanwhile)."""
    import _soak_customer as sc
    from dtmfguard.media.pipeline import CallPipeline
    from dtmfguard.server.config import load_config

    receiver = None
    over: dict = {"agent_uri": "sip:agent@127.0.0.1:5072"}  # required by the config; no call is made
    if session:
        import soak

        receiver = soak.CardReceiver()
        os.environ["DTMFGUARD_WEBHOOK_SECRET"] = soak.SECRET
        over.update(gateway="webhook", gateway_options={"url": receiver.url, "allow_insecure_loopback": True,
                                                        "timeout_s": 5.0, "backoff_s": 0.2})
    cfg = load_config(None, over)
    factory = None
    if session:
        from dtmfguard.cli.serve import _session_factory

        factory = _session_factory(cfg)
    points = [snapshot(0, trim)]
    outcomes: dict = {}
    try:
        for i in range(n_calls):
            keys = sc.card_for(0, i)[0] if session else SHORT_KEYS
            x, spans = _call_audio(keys, digit_ms, i)
            rfc = i % 2 == 1
            if rfc:  # the keys travel as events: the audio carries none
                for _, s, e in spans:
                    x[s:e] = 0
            pl = CallPipeline(8000, mask_mode=cfg.mask_mode, masker_options={"mask": cfg.mask}, name=f"m{i}")
            sess = None
            if factory is not None:
                sess = factory(call_id=f"m{i}", amount=1999, reference=f"MEMLEAK-{i}", agent_id="memleak")
                pl.attach_session(sess)
            starts = {s // 160: (d, s, e) for d, s, e in spans}
            ends = {e // 160: (d, s, e) for d, s, e in spans}
            for f in range(x.size // 160):
                if rfc and f in starts:
                    d, s, e = starts[f]
                    pl.on_rfc4733(d, s // 8, 0, end=False)
                if rfc and f in ends:
                    d, s, e = ends[f]
                    pl.on_rfc4733(d, s // 8, (e - s) // 8, end=True)
                pl.process_customer_frame(x[f * 160:(f + 1) * 160])
            pl.flush()
            if sess is not None:
                deadline = time.monotonic() + 5
                while not getattr(sess, "finished", True) and time.monotonic() < deadline:
                    time.sleep(0.005)
                if not sess.finished:
                    sess.cancel()
                outcomes[sess.state] = outcomes.get(sess.state, 0) + 1
            del pl, sess
            if (i + 1) % every == 0:
                points.append(snapshot(i + 1, trim))
    finally:
        if receiver is not None:
            receiver.close()
    if outcomes:
        points[-1]["session_outcomes"] = outcomes
    return points


# -- SIP mode ------------------------------------------------------------------------------------------------
def run_agent(argv: list[str]) -> int:
    """A lean agent (child process): answers every call, records nothing, and drops each ended call
    (the package's agent peer keeps every call for its summary, which costs CPU over hundreds of calls)."""
    import signal

    import pjsua2 as pj

    from dtmfguard.sip.pj.endpoint import account_config, create_endpoint, destroy_endpoint
    from dtmfguard.sip.pj.peers import _settings, say

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rtp", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    a = p.parse_args(argv)
    a.role, a.codec, a.jitter_ms, a.tls_cert = "agent", None, -1, None
    ep = create_endpoint(_settings(a))
    calls: list = []

    class Leg(pj.Call):
        state = None
        due = 0.0

        def onCallState(self, prm):
            try:
                self.state = self.getInfo().state
            except Exception:  # noqa: BLE001 - never into pjsua2
                pass

    class Acc(pj.Account):
        def onIncomingCall(self, prm):
            try:
                c = Leg(self, prm.callId)
                op = pj.CallOpParam()
                op.statusCode = 180
                c.answer(op)
                c.due = time.monotonic() + 0.05
                calls.append(c)
            except Exception:  # noqa: BLE001
                pass

    acc = Acc()
    acc.create(account_config(_settings(a), "agent"))
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    say(event="ready", port=a.port)
    deadline = time.monotonic() + a.seconds
    answered = 0
    while not stop["flag"] and time.monotonic() < deadline:
        ep.libHandleEvents(10)
        now = time.monotonic()
        for c in list(calls):
            if c.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                calls.remove(c)
            elif c.due and now >= c.due:
                c.due = 0.0
                op = pj.CallOpParam()
                op.statusCode = 200
                try:
                    c.answer(op)
                    answered += 1
                except pj.Error:
                    pass
    say(event="done", answered=answered)
    c = None

    def release():
        nonlocal acc
        calls.clear()
        acc = None

    destroy_endpoint(ep, release, wait_s=0.5)
    return 0


def run_customer(argv: list[str]) -> int:
    """benchmarks/_soak_customer.py with a short script per call (child process): 0.3 s of noise, the keys,
    a 0.3 s tail; ``--card`` types a whole test card entry (for payments), else the first keys only."""
    import _soak_customer as sc

    from dtmfguard.sip.pj.endpoint import create_endpoint
    from dtmfguard.sip.pj.peers import _settings

    p = argparse.ArgumentParser()
    for name in ("--port", "--rtp"):
        p.add_argument(name, type=int, required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--card", action="store_true")
    p.add_argument("--digit-ms", type=int, default=70)
    p.add_argument("--lead-s", type=float, default=0.3, help="noise before the keys (a payment starts meanwhile)")
    a = p.parse_args(argv)
    a.count, a.customer = 2, 0
    a.role, a.codec, a.jitter_ms, a.tls_cert = "customer", None, -1, None
    sc.DIGIT_MS = a.digit_ms
    sc.TAIL_S = 0.3
    sc.lead_audio = lambda: np.random.default_rng(0).normal(0, 300, int(a.lead_s * 8000))
    if not a.card:
        sc.card_for = lambda customer, seq: (SHORT_KEYS, "", "-")
    ep = create_endpoint(_settings(a))
    return sc.SoakCustomer(a).run(ep)


class _Poller(threading.Thread):
    """GET /calls on each control port every 0.2 s, as soak.py's payment driver does, starting nothing."""

    def __init__(self, ports: list[int]):
        super().__init__(daemon=True)
        self.ports = ports
        self.halt = threading.Event()
        self.requests = 0

    def run(self):
        import http.client

        from dtmfguard.server.control import request

        while self.ports and not self.halt.is_set():
            for port in self.ports:
                try:
                    request(port, "GET", "/calls", os.environ["DTMFGUARD_API_TOKEN"], None, timeout=5)
                    self.requests += 1
                except (OSError, ValueError, http.client.HTTPException):
                    pass
            self.halt.wait(0.2)


def run_sip(variants: list[str], seconds: float, every: int, trim: bool, work: Path, base_port: int,
            rtp_base: int) -> dict[str, list[dict]]:
    import soak
    from calls import spawn

    from dtmfguard.server.procs import json_events

    me = str(Path(__file__).resolve())
    receiver = driver = None
    procs: list = []
    guards: dict[str, soak.Drained] = {}
    try:
        if "pay" in variants:
            receiver = soak.CardReceiver()
        os.environ.update({"DTMFGUARD_API_TOKEN": soak.TOKEN, "DTMFGUARD_WEBHOOK_SECRET": soak.SECRET})
        ctl_ports, poll_ports = [], []
        for i, v in enumerate(variants):
            agent_port, guard_port = base_port + 400 + i, base_port + i
            agent = soak.Drained([me, "agent", "--port", str(agent_port), "--rtp", str(rtp_base + 2000 + 40 * i),
                                  "--seconds", str(seconds + 120)], work / f"agent-{v}.err")
            extra = list(VARIANTS[v])
            if v == "pay":
                ctl = base_port + 600 + i
                ctl_ports.append(ctl)
                extra += ["--control", f"127.0.0.1:{ctl}", "--gateway-url", receiver.url]
            elif v == "ctl":
                ctl = base_port + 600 + i
                poll_ports.append(ctl)
                extra += ["--control", f"127.0.0.1:{ctl}"]
            guard = soak.Drained([str(HERE / "_guard_worker.py"), "--listen", f"127.0.0.1:{guard_port}",
                                  "--agent", f"sip:agent@127.0.0.1:{agent_port}", "--rtp-port",
                                  str(rtp_base + 20 * i), "--totals", "--memstats", str(every),
                                  *(["--memstats-trim"] if trim else []), *extra], work / f"guard-{v}.err")
            procs += [agent, guard]
            guards[v] = guard
        for p in procs:
            p.wait_for("ready", 60)
        if ctl_ports:
            driver = soak.PaymentDriver(ctl_ports)
            driver.start()
        poller = _Poller(poll_ports)
        poller.start()
        customers = []
        for i, v in enumerate(variants):
            (work / f"cust-{v}").mkdir()
            customers.append(soak.Drained([me, "customer", "--port", str(base_port + 200 + i), "--rtp",
                                           str(rtp_base + 4000 + 40 * i), "--to",
                                           f"sip:guard@127.0.0.1:{base_port + i}", "--seconds", str(seconds),
                                           "--work", str(work / f"cust-{v}"),
                                           *(["--card", "--lead-s", "1.5"] if v == "pay" else [])],
                                          work / f"cust-{v}.err"))
        procs += customers
        t_end = time.monotonic() + seconds + 90
        while any(c.p.poll() is None for c in customers) and time.monotonic() < t_end:
            time.sleep(1)
        for c in customers:
            c.stop(30)
        if driver is not None:
            driver.halt.set()
            driver.join(10)
        poller.halt.set()
        poller.join(10)
        for p in procs:
            p.stop()
    finally:
        for p in procs:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
        if receiver is not None:
            receiver.close()
        for j, p in enumerate(procs):  # stdout of every child next to its stderr (--keep)
            Path(str(work / f"child{j}.out")).write_text("".join(p.lines))
    out = {}
    for i, (v, g) in enumerate(guards.items()):
        pts = [e for e in g.events() if e.get("event") == "mem"]
        calls = [e for e in customers[i].events() if e.get("event") == "call"]
        if pts:
            pts[-1]["customer_calls"] = len(calls)
            pts[-1]["customer_calls_ok"] = sum(1 for e in calls if e.get("ok"))
            failed = collections.Counter(e.get("status") for e in calls if not e.get("ok"))
            if failed:
                pts[-1]["customer_failed_by_status"] = dict(failed)
            if v == "pay" and driver is not None:
                pts[-1]["payments"] = dict(collections.Counter(driver.sessions.values()))
            pts[-1]["guard_exit"] = g.p.returncode
        out[v] = pts
    _ = spawn, json_events  # the soak's helpers are what runs the children
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["agent"]:
        return run_agent(argv[1:])
    if argv[:1] == ["customer"]:
        return run_customer(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Examples:\n  python benchmarks/memleak.py pipeline --calls 2000 --session\n"
                                        "  python benchmarks/memleak.py sip --seconds 480 --variants full,pay",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    pp = sub.add_parser("pipeline", help="CallPipeline (+ PaymentSession) per call, no SIP")
    pp.add_argument("--calls", type=int, default=2000)
    pp.add_argument("--session", action="store_true", help="a payment session per call (webhook gateway)")
    sp = sub.add_parser("sip", help="guard workers with real peers, one per variant")
    sp.add_argument("--seconds", type=float, default=480.0, help="customers start calls for this long")
    sp.add_argument("--variants", default="direct,passthrough,full,pay",
                    help=f"comma list of {', '.join(VARIANTS)}")
    sp.add_argument("--base-port", type=int, default=21000)
    sp.add_argument("--rtp-base", type=int, default=52000)
    sp.add_argument("--keep", help="keep the children's logs here")
    for p in (pp, sp):
        p.add_argument("--every", type=int, default=25, help="memory figures every N calls")
        p.add_argument("--trim", action="store_true", help="also RSS after malloc_trim(0) at each checkpoint")
        p.add_argument("--warmup-calls", type=int, default=0, help="slopes from this call on (default: 20 %%)")
        p.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.mode == "pipeline":
        results = {"pipeline" + ("+session" if a.session else ""): run_pipeline(a.calls, a.every, a.session, a.trim)}
    else:
        variants = [v.strip() for v in a.variants.split(",") if v.strip()]
        bad = [v for v in variants if v not in VARIANTS]
        if bad:
            ap.error(f"unknown variants {bad}")
        with tempfile.TemporaryDirectory(prefix="dtmfguard-memleak-") as tmp:
            try:
                results = run_sip(variants, a.seconds, a.every, a.trim, Path(tmp), a.base_port, a.rtp_base)
            finally:
                if a.keep:
                    import shutil

                    shutil.copytree(tmp, a.keep, dirs_exist_ok=True)
    report = {}
    for name, pts in results.items():
        n = pts[-1]["calls"] if pts else 0
        warm = a.warmup_calls or math.ceil(0.2 * n)
        report[name] = {"calls": n, "warmup_calls": warm, "bytes_per_call": slopes(pts, warm), "points": pts}
    if a.json:
        print(json.dumps(report, indent=1))
        return 0
    for name, r in report.items():
        print(table(name, r["points"]))
        last = r["points"][-1] if r["points"] else {}
        extra = {k: last[k] for k in ("customer_calls", "customer_calls_ok", "customer_failed_by_status", "payments",
                                      "guard_exit", "session_outcomes") if k in last}
        print(f"{name}: {r['calls']} calls {extra}; bytes per call after {r['warmup_calls']} calls "
              "(all / first half / second half):")
        for fig, s in r["bytes_per_call"].items():
            print(f"    {fig:>15}: {s['all']} / {s['first_half']} / {s['second_half']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
