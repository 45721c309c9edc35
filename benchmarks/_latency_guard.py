# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard serve`` (one worker, in this process) with timestamps at every stage of a payment's end,
for benchmarks/payment_latency.py.  Benchmark tooling only: nothing in the runtime imports it.

Each stage appends one JSON line ``{"sid", "stage", "t"}`` (``time.monotonic()``) to the file named by
``$DTMFGUARD_BENCH_TRACE``.  No digit is ever written: stages, session ids and times only.  The hooks wrap
methods by name and skip any a tree does not have, so the same wrapper measures an older checkout too.

Stages (in order):
  key_end        the frame holding the last sample of the key that completed the last field reached the
                 pipeline (stream time mapped to the clock thread's time)
  key_fed        that key went into the session (detector's verdict, merge)
  submitting     the session handed the card to its worker (state ``submitting``)
  runner_pickup  the session's serial runner started the audited hand-off (event pool thread)
  gateway_pickup a gateway pool thread took the hand-off
  gateway_sent   the gateway's ``submit`` was called (request goes out)
  gateway_answer ``submit`` returned (the processor's / vault's answer)
  session_ended  the session's outcome (``completed`` ...) was set
  done           the session's queued events were delivered (``wait()`` returns)
  secure_off     the owner thread detached the finished session: secure mode off, keys relayed again
  feed           the control API's feed book published ``session_ended`` (what the desktop reads)
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque

_OUT = open(os.environ["DTMFGUARD_BENCH_TRACE"], "a", buffering=1, encoding="utf-8")
_LOCK = threading.Lock()
_KEY = threading.local()


def mark(sid, stage: str, t: float | None = None, **extra) -> None:
    line = json.dumps({"sid": sid, "stage": stage, "t": time.monotonic() if t is None else t, **extra})
    with _LOCK:
        _OUT.write(line + "\n")


def _wrap(cls, name: str, make):
    orig = getattr(cls, name, None)
    if orig is not None:
        setattr(cls, name, make(orig))


def install() -> None:
    from dtmfguard.capture import session as session_mod
    from dtmfguard.media import pipeline as pipeline_mod
    from dtmfguard.server import control as control_mod

    Pipeline, Session = pipeline_mod.CallPipeline, session_mod.PaymentSession

    def process_customer_frame(orig):
        def run(self, frame):
            frames = self.__dict__.get("_bench_frames")
            if frames is None:
                frames = self.__dict__["_bench_frames"] = deque(maxlen=400)
            frames.append((int(self.masker.samples_in), len(frame), time.monotonic()))
            return orig(self, frame)
        return run

    def deliver(orig):
        def run(self, ev):
            t_end = None
            for start, n, t in reversed(self.__dict__.get("_bench_frames", ())):
                if start <= ev.end < start + n:
                    t_end = t
                    break
            _KEY.times = (t_end, time.monotonic())
            try:
                return orig(self, ev)
            finally:
                _KEY.times = None
        return run

    def emit(orig):
        def run(self, kind, **data):
            orig(self, kind, **data)
            if kind == "field_complete" and data.get("valid") and not data.get("skipped") and \
                    self._field_index == len(self.fields) - 1:
                times = getattr(_KEY, "times", None)  # the key that finished the last field (clock thread)
                if times:
                    mark(self.session_id, "key_end", times[0])
                    mark(self.session_id, "key_fed", times[1])
            if kind in ("submitting", "session_ended", "session_started"):
                mark(self.session_id, kind, outcome=data.get("outcome"))
            elif kind in ("field_complete", "field_cleared", "field_timeout"):  # no digits: names, counts, reasons
                mark(self.session_id, kind, field=data.get("field"), valid=data.get("valid"),
                     reason=data.get("reason"), finished_by=data.get("finished_by"),
                     digits=len(self._values.get(data.get("field"), b"")) or None)
        return run

    def init(orig):
        def run(self, *args, **kwargs):
            orig(self, *args, **kwargs)
            sid, done = self.session_id, self._done

            class _Done(type(done)):
                def set(inner):
                    mark(sid, "done")
                    super().set()

            if not done.is_set():
                self._done = _Done()
        return run

    def audited(orig):
        def run(self, request):
            mark(self.session_id, "runner_pickup")
            return orig(self, request)
        return run

    def hand_off(orig):
        def run(self, request):
            mark(self.session_id, "gateway_pickup")
            gw, sid = self.gateway, self.session_id
            submit = gw.submit

            def timed(req):
                mark(sid, "gateway_sent")
                try:
                    return submit(req)
                finally:
                    mark(sid, "gateway_answer")

            gw.submit = timed
            try:
                return orig(self, request)
            finally:
                gw.__dict__.pop("submit", None)
        return run

    def end_masking(orig):
        def run(self):
            session = self.session
            done = orig(self)
            if done and session is not None:
                mark(getattr(session, "session_id", "?"), "secure_off")
            return done
        return run

    def book_emit(orig):
        def run(self, cid, kind, data):
            orig(self, cid, kind, data)
            if kind == "session_ended":
                mark(data.get("session"), "feed")
        return run

    _wrap(Pipeline, "process_customer_frame", process_customer_frame)
    _wrap(Pipeline, "_deliver", deliver)
    _wrap(Pipeline, "end_payment_masking", end_masking)
    _wrap(Session, "_emit", emit)
    _wrap(Session, "__init__", init)
    _wrap(Session, "_audited_hand_off", audited)
    _wrap(Session, "_hand_off", hand_off)
    _wrap(control_mod.FeedBook, "_emit", book_emit)


if __name__ == "__main__":
    install()
    from dtmfguard.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
