# SPDX-License-Identifier: GPL-2.0-or-later
"""A guard worker for the real-peer tests: the production Guard plus test hooks.

It reports what the payment side received as a SHA-256 of the digit string and
counts per path, so the tests can check the digits without any process ever
printing them.  ``--fault`` injects failures into the media path to prove it
fails closed: ``detector`` (raises on every frame after ``--fault-after``
frames of the call), ``masker`` (same in the masker), ``slow`` (a pipeline that overruns
the 20 ms clock: the port must send silence, never raw audio), ``pipeline`` (no media
pipeline can be created: the worker answers every call 503, as a broken worker would).

``DTMFGUARD_TEST_TAP=<dir>`` (evidence for load-only media bugs, issue 12): every pipeline's frames in and
out, their clock times and gap flags, and the masker's spans are saved there as ``tap-*.npz`` at exit.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time

from dtmfguard.media.pipeline import CallPipeline, make_masker
from dtmfguard.sip.pj.b2bua import Guard
from dtmfguard.server.config import load_config


class _Faulty:
    """Raises on every call once ``after`` frames have passed: counted by ``clock()`` (the pipeline's frames,
    so the fault comes at the same point of the call whether or not the detector is given every frame: it is
    not given the frames the jitter buffer made up, many while it fills at the start of a call), else by the
    calls themselves."""

    def __init__(self, inner, after):
        self.inner, self.after, self.n = inner, after, 0
        self.clock = None

    def process(self, chunk):
        self.n += 1
        if (self.clock() if self.clock is not None else self.n) > self.after:
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
    taps: list = []

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
        if a.fault == "detector":
            det.clock = lambda: pl.stats["frames"]
        if a.fault == "slow":
            inner = pl.process_customer_frame

            def slow(frame, **kw):
                time.sleep(0.045)  # longer than two clock ticks
                return inner(frame, **kw)

            pl.process_customer_frame = slow
        pipelines.append(pl)
        tap = os.environ.get("DTMFGUARD_TEST_TAP")
        if tap:  # evidence for load-only media bugs: every frame in and out, with its clock time
            import numpy as np

            inner_tap = pl.process_customer_frame
            rec_in, rec_out, rec_t, rec_gap, rec_note = [], [], [], [], []

            def tapped(frame, **kw):
                rec_note.append(tuple(pl._jitter_note))  # what the jitter buffer made up (inserted, concealed, dropped)
                out = inner_tap(frame, **kw)
                rec_gap.append(bool(kw.get("gap")))
                rec_t.append(time.monotonic())
                rec_in.append(np.array(frame, dtype=np.int16))
                rec_out.append(np.array(out, dtype=np.int16))
                return out

            pl.process_customer_frame = tapped
            taps.append((name, pl, rec_in, rec_out, rec_t, rec_gap, rec_note))
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
    for _name, pl, rec_in, rec_out, rec_t, rec_gap, rec_note in taps:
        import numpy as np

        m = pl.masker
        np.savez(os.path.join(os.environ["DTMFGUARD_TEST_TAP"], f"tap-{len(rec_t)}-{time.time():.0f}.npz"),
                 x=np.concatenate(rec_in) if rec_in else np.zeros(0, np.int16),
                 y=np.concatenate(rec_out) if rec_out else np.zeros(0, np.int16), t=np.array(rec_t), gap=np.array(rec_gap), note=np.array(rec_note, dtype=np.int64).reshape(-1, 3),
                 lens=np.array([len(f) for f in rec_in]), delay=m.delay_samples,
                 spans=np.array([(sp.start, -1 if sp.end is None else sp.end) for sp in m.masked_spans]),
                 notched=np.array([(sp.start, -1 if sp.end is None else sp.end) for sp in m.notched_spans]))
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
