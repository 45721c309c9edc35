# SPDX-License-Identifier: GPL-2.0-or-later
"""A guard worker for the real-peer tests: the production Guard plus test hooks.

It reports what the payment side received as a SHA-256 of the digit string and
counts per path, so the tests can check the digits without any process ever
printing them.  ``--fault`` injects failures into the media path to prove it
fails closed: ``detector`` (raises on every frame after ``--fault-after``
frames), ``masker`` (same in the masker), ``slow`` (a pipeline that overruns
the 20 ms clock: the port must send silence, never raw audio), ``pipeline`` (no media
pipeline can be created: the worker answers every call 503, as a broken worker would).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import threading
import time

from dtmfguard.media.pipeline import CallPipeline, make_masker
from dtmfguard.sip.pj.b2bua import Guard
from dtmfguard.server.config import load_config


class _Faulty:
    def __init__(self, inner, after):
        self.inner, self.after, self.n = inner, after, 0

    def process(self, chunk):
        self.n += 1
        if self.n > self.after:
            raise RuntimeError("injected fault")
        return self.inner.process(chunk)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--rtp-port", type=int, required=True)
    p.add_argument("--fault", choices=("none", "detector", "masker", "slow", "pipeline"), default="none")
    p.add_argument("--fault-after", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--answer-timeout", type=float, default=30)
    p.add_argument("--agent-header", help="take the agent URI from this INVITE header instead of --agent")
    p.add_argument("--pj-log-level", type=int, default=0, help="pjsip's own log level (through the redacting bridge)")
    p.add_argument("--config", help="TOML file (SRTP, TLS ...); the flags above override it")
    p.add_argument("--transports", default="udp,tcp")
    a = p.parse_args()
    import logging

    from dtmfguard.security import install_log_redaction

    logging.basicConfig(level=logging.DEBUG if a.pj_log_level else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()  # as dtmfguard's CLI does for every command
    host, port = a.listen.rsplit(":", 1)
    cfg = load_config(a.config, {"sip_host": host, "sip_port": int(port), "agent_uri": a.agent,
                             "rtp_port": a.rtp_port, "transports": tuple(a.transports.split(",")),
                             "answer_timeout_s": a.answer_timeout,
                             "agent_from": "header" if a.agent_header else "static",
                             "agent_header": a.agent_header or "X-Agent-URI", "log_level": a.pj_log_level})
    digits: list = []
    pipelines: list = []

    def factory(name):
        if a.fault == "pipeline":
            raise RuntimeError("injected fault")
        from dtmfguard.dsp.detector import DtmfDetector

        det = DtmfDetector(8000)
        masker = make_masker(8000)
        if a.fault == "detector":
            det = _Faulty(det, a.fault_after)
        elif a.fault == "masker":
            masker = _Faulty(masker, a.fault_after)
        pl = CallPipeline(8000, masker=masker, detector=det, name=name, on_digit=digits.append)
        if a.fault == "slow":
            inner = pl.process_customer_frame

            def slow(frame):
                time.sleep(0.045)  # longer than two clock ticks
                return inner(frame)

            pl.process_customer_frame = slow
        pipelines.append(pl)
        return pl

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    guard = Guard(cfg, pipeline_factory=factory)
    guard.start()
    print(json.dumps({"event": "ready"}), flush=True)
    deadline = time.monotonic() + a.timeout
    while not stop.is_set() and time.monotonic() < deadline:
        guard.poll(20)
    health = guard.health()
    guard.shutdown()
    text = "".join(e.digit for e in digits)
    sources: dict = {}
    for e in digits:
        sources[e.source] = sources.get(e.source, 0) + 1
    print(json.dumps({"event": "done", "digits_sha256": hashlib.sha256(text.encode()).hexdigest(),
                      "count": len(text), "sources": sources, "health": health,
                      "pipelines": [pl.snapshot() for pl in pipelines]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
