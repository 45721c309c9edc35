# SPDX-License-Identifier: GPL-2.0-or-later
"""One guard worker for benchmarks/calls.py and soak.py: the production Guard, masked or (baseline) direct.

Prints ``ready`` and, on SIGTERM, one JSON line with its port and pipeline counters and CPU time.
With ``--control`` it also runs the control API with serve's payment-session factory (``--gateway-url``:
the webhook gateway), so benchmarks/soak.py takes payments through the same code as ``dtmfguard serve``;
``--totals`` sums the per-call counters instead of keeping one entry per call (long runs: no growth).

``DTMFGUARD_TEST_TAP=<dir>`` (diagnosis only, as in tests/sip_peers/guard_probe.py; test card numbers only): each
call's customer frames as the pipeline got them, with the jitter buffer's note for each (inserted, concealed,
dropped), gap flags and clock times, saved as ``tap-<call>.npz`` when the call ends.  Never for real calls.
"""
from __future__ import annotations

import argparse
import logging
import os

import dtmfguard  # noqa: F401 - before numpy: its BLAS with one thread (dtmfguard/__init__.py)
import numpy as np
import json
import resource
import signal
import sys
import threading

from dtmfguard.sip.pj.b2bua import Guard
from dtmfguard.server.config import load_config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--rtp-port", type=int, required=True)
    p.add_argument("--direct", action="store_true", help="baseline: bridge without the pipeline (unmasked)")
    p.add_argument("--jitter-ms", type=int, default=-1)
    p.add_argument("--passthrough", action="store_true",
                   help="baseline: the port with an identity pipeline (unmasked): isolates the port's own cost")
    p.add_argument("--control", help="host:port of the control API (token from $DTMFGUARD_API_TOKEN)")
    p.add_argument("--gateway-url", help="webhook gateway URL (http only to 127.0.0.1; secret from the env)")
    p.add_argument("--totals", action="store_true", help="sum per-call counters (long runs)")
    p.add_argument("--tracemalloc", type=int, default=0, metavar="N",
                   help="diagnosis: snapshot Python allocations after N calls; at exit print the top growth")
    p.add_argument("--memstats", type=int, default=0, metavar="N",
                   help="diagnosis: every N finished calls print one JSON line of RSS, mallinfo2 and live object "
                        "counts (benchmarks/_memstats.py, used by memleak.py)")
    p.add_argument("--memstats-trim", action="store_true", help="with --memstats: also RSS after malloc_trim(0)")
    a = p.parse_args()

    logging.basicConfig(level=logging.INFO if os.environ.get("DTMFGUARD_BENCH_VERBOSE") else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # to the .err file soak keeps
    host, port = a.listen.rsplit(":", 1)
    over = {"sip_host": host, "sip_port": int(port), "agent_uri": a.agent,
            "rtp_port": a.rtp_port, "rtp_range": 20, "transports": ("udp",)}
    if a.gateway_url:
        over.update(gateway="webhook", gateway_options={"url": a.gateway_url, "allow_insecure_loopback": True,
                                                        "timeout_s": 5.0, "backoff_s": 0.2})
    cfg = load_config(None, over)
    factory = None
    if a.passthrough:
        from dtmfguard.media.pipeline import CallPipeline

        class _Identity:  # benchmark only: no masking at all
            delay_samples = 0
            samples_in = 0

            def process(self, chunk):
                self.samples_in += len(chunk)
                return chunk

            def cover(self, start, end=None):
                pass

            def uncover(self, end):
                pass

            def flush(self):
                return np.zeros(0, np.int16)

        def factory(name):
            return CallPipeline(8000, masker=_Identity(), name=name)

    session_factory = None
    if a.gateway_url:
        from dtmfguard.cli.serve import _session_factory

        session_factory = _session_factory(cfg)
    guard = Guard(cfg, pipeline_factory=factory, session_factory=session_factory,
                  _direct_bridge_for_benchmark=a.direct, _jitter_ms_for_benchmark=a.jitter_ms)
    tap_dir = os.environ.get("DTMFGUARD_TEST_TAP")
    if tap_dir:
        inner_factory = guard.pipeline_factory

        def tapped_factory(name):
            import time as _time

            pl = inner_factory(name)
            rec = {"x": [], "t": [], "gap": [], "note": []}
            inner = pl.process_customer_frame

            def tapped(frame, **kw):
                rec["note"].append(tuple(pl._jitter_note))  # set by the port just before this frame
                out = inner(frame, **kw)
                rec["gap"].append(bool(kw.get("gap")))
                rec["t"].append(_time.monotonic())
                rec["x"].append(np.array(frame, dtype=np.int16))
                return out

            pl.process_customer_frame = tapped
            pl._tap = (name, rec)
            return pl

        guard.pipeline_factory = tapped_factory
    stats = []
    totals: dict = {"calls": 0, "port": {}, "pipeline_errors": 0}
    orig_finish = guard._finish

    def save_tap(b):
        tap = getattr(b.pipeline, "_tap", None)
        if not tap_dir or tap is None:
            return
        name, rec = tap
        b.pipeline._tap = None
        np.savez(os.path.join(tap_dir, f"tap-{name}-{os.getpid()}.npz"),
                 x=np.concatenate(rec["x"]) if rec["x"] else np.zeros(0, np.int16),
                 lens=np.array([len(f) for f in rec["x"]]), t=np.array(rec["t"]), gap=np.array(rec["gap"]),
                 note=np.array(rec["note"], dtype=np.int64).reshape(-1, 3),
                 digits=np.array([b.pipeline.stats.get("digits_inband", 0)]),
                 lost_at=np.array(b.port.stats.get("jb_lost_at", []) if b.port is not None else []))

    def keep(b):
        save_tap(b)
        entry = {"port": dict(b.port.stats), "pipeline": b.pipeline.snapshot()}
        if not a.totals:
            stats.append(entry)
            return
        totals["calls"] += 1
        totals["pipeline_errors"] += entry["pipeline"].get("errors", 0)
        for k, v in entry["port"].items():
            if isinstance(v, (int, float)):
                op = max if k.startswith("max") else (lambda x, y: x + y)
                totals["port"][k] = op(totals["port"].get(k, 0), v)

    snap = {}
    if a.tracemalloc:
        import tracemalloc

        tracemalloc.start(8)

    def finish(b):  # keep each call's counters before the bridge is dropped
        if b.port is not None:
            keep(b)
        orig_finish(b)
        snap["finished"] = snap.get("finished", 0) + 1  # every bridge, with or without a port (--direct)
        if a.memstats and snap["finished"] % a.memstats == 0:
            from _memstats import snapshot as mem_snapshot

            print(json.dumps(mem_snapshot(snap["finished"], trim=a.memstats_trim)), flush=True)
        if a.tracemalloc and "first" not in snap and totals["calls"] + len(stats) >= a.tracemalloc:
            snap["first"] = tracemalloc.take_snapshot()
            snap["calls"] = totals["calls"] + len(stats)

    guard._finish = finish
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    guard.start()
    api = None
    if a.control:

        from dtmfguard.server.control import ControlServer

        chost, cport = a.control.rsplit(":", 1)
        api = ControlServer(guard, chost, int(cport), os.environ["DTMFGUARD_API_TOKEN"])
        api.start()
    print("ready", flush=True)
    guard.run(stop)
    if api is not None:
        api.stop()
    for b in list(guard.bridges.values()):
        if b.port is not None:
            keep(b)
    if "first" in snap:  # diagnosis only: top Python allocation growth per call since the snapshot
        import gc

        gc.collect()
        n = totals["calls"] + len(stats) - snap["calls"]
        diff = tracemalloc.take_snapshot().compare_to(snap["first"], "traceback")
        print(f"tracemalloc: {n} calls since the snapshot", file=sys.stderr)
        for st in diff[:12]:
            print(f"{st.size_diff / max(n, 1):9.0f} B/call {st.count_diff:+6d} blocks", file=sys.stderr)
            for line in st.traceback.format()[-8:]:
                print("    " + line, file=sys.stderr)
    guard.shutdown()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"event": "done", "calls": stats, "totals": totals, "cpu_s": ru.ru_utime + ru.ru_stime}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
