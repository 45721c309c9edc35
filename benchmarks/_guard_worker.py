# SPDX-License-Identifier: GPL-2.0-or-later
"""One guard worker for benchmarks/calls.py: the production Guard, masked or (baseline) direct.

Prints ``ready`` and, on SIGTERM, one JSON line with its port and pipeline counters and CPU time.
"""
from __future__ import annotations

import argparse

import numpy as np
import json
import resource
import signal
import sys
import threading

from dtmfguard.sip.b2bua import Guard
from dtmfguard.sip.config import load_config


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--rtp-port", type=int, required=True)
    p.add_argument("--direct", action="store_true", help="baseline: bridge without the pipeline (unmasked)")
    p.add_argument("--jitter-ms", type=int, default=-1)
    p.add_argument("--passthrough", action="store_true",
                   help="baseline: the port with an identity pipeline (unmasked): isolates the port's own cost")
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    cfg = load_config(None, {"sip_host": host, "sip_port": int(port), "agent_uri": a.agent,
                             "rtp_port": a.rtp_port, "rtp_range": 20, "transports": ("udp",)})
    factory = None
    if a.passthrough:
        from dtmfguard.pipeline import CallPipeline

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

    guard = Guard(cfg, pipeline_factory=factory, _direct_bridge_for_benchmark=a.direct,
                  _jitter_ms_for_benchmark=a.jitter_ms)
    stats = []
    orig_finish = guard._finish

    def finish(b):  # keep each call's counters before the bridge is dropped
        if b.port is not None:
            stats.append({"port": dict(b.port.stats), "pipeline": b.pipeline.snapshot()})
        orig_finish(b)

    guard._finish = finish
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    guard.start()
    print("ready", flush=True)
    guard.run(stop)
    for b in list(guard.bridges.values()):
        if b.port is not None:
            stats.append({"port": dict(b.port.stats), "pipeline": b.pipeline.snapshot()})
    guard.shutdown()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"event": "done", "calls": stats, "cpu_s": ru.ru_utime + ru.ru_stime}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
