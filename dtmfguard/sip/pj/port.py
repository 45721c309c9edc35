# SPDX-License-Identifier: GPL-2.0-or-later
"""The conference-bridge port that puts :class:`~dtmfguard.media.pipeline.CallPipeline` in the audio path.

pjsua2's clock thread calls, on every 20 ms tick, ``onFrameRequested`` (audio
the port sends to the agent) *before* ``onFrameReceived`` (customer audio into
the port).  The port therefore answers each request with the frame processed
on the previous tick: exactly one bridge frame (20 ms) of added delay, and the
clock thread never waits for anything.

Failing closed: if no processed frame is ready (pipeline too slow, start of
the call, an error) the agent gets silence, never the raw customer frame; the
customer frame is never copied to the output except through the pipeline.
Every callback catches everything: a Python exception must not cross into
pjsua2 (it is printed and its traceback keeps objects alive).

Ports are reused, never destroyed while the library runs (:meth:`attach` /
:meth:`detach`; the guard keeps a pool).  pjsua2 destroys a port with the GIL
released, and the clock thread can call the dying Python object's callback in
that window: the call takes a new reference to an object already being
freed, which then gets freed twice (measured: 2 of 3 ten-minute soaks lost a
worker to an AttributeError or a segfault in Python's allocator once the clock
thread ran under SCHED_RR and won that race more often).  A detached port
sends silence and touches nothing else.

Reading the frame: ``bytes(frame.buf)`` iterates element by element (~115 µs a
frame); the port reads the ``std::vector``'s data pointer through ctypes
(~2 µs) after checking once, at creation, that this gives the same bytes.
Writing it: ``pj.ByteVector(data)`` converts element by element too (~10-20 µs);
each port owns one frame-sized vector, copies the processed frame into its data
(``memmove``, ~1 µs) and hands it to ``frame.buf``, which copies it into the
frame (C++ assignment), so the port's vector is free again at once.  Both paths
are checked together, once; if either fails both use the slow, safe calls.
"""
from __future__ import annotations

import ctypes
import logging
import threading
import time

import numpy as np
import pjsua2 as pj

from ...server import sched

__all__ = ["PipelinePort", "fast_read_ok"]

log = logging.getLogger(__name__)

_AUDIO = pj.PJMEDIA_FRAME_TYPE_AUDIO


def _data_span(bv) -> tuple[int, int]:
    """``(begin, length)`` of a ByteVector's ``std::vector`` storage (its first two pointers)."""
    ptrs = ctypes.cast(int(bv.this), ctypes.POINTER(ctypes.c_void_p))
    begin, end = ptrs[0], ptrs[1]
    if not begin or not end or end < begin or end - begin > 1 << 16:
        raise ValueError("unexpected ByteVector layout")
    return begin, end - begin


def _read_ctypes(bv) -> bytes:
    begin, size = _data_span(bv)
    return ctypes.string_at(begin, size)


def _probe() -> bool:
    try:
        sample = bytes(range(256)) * 2
        bv = pj.ByteVector(sample)
        if not _read_ctypes(bv) == bytes(bv) == sample:
            return False
        out = pj.ByteVector(bytes(len(sample)))
        begin, size = _data_span(out)
        ctypes.memmove(begin, sample[::-1], size)
        frame = pj.MediaFrame()
        frame.buf = out
        ctypes.memmove(begin, sample, size)  # the frame holds its own copy
        return bytes(out) == sample and bytes(frame.buf) == sample[::-1]
    except Exception:  # noqa: BLE001 - any surprise: use the slow, safe path
        return False


_FAST = None

#: per thread: this thread keeps its Python thread state (see :func:`_keep_thread_state`)
_kept = threading.local()


def _keep_thread_state() -> None:
    """On a thread Python did not start (pjmedia's clock thread): keep its Python thread state between callbacks.

    pjsua2's callbacks take the GIL with ``PyGILState_Ensure`` and give it back with ``PyGILState_Release``; on a
    thread with no state of its own, each pair creates a thread state and deletes it again (with its frame stack,
    mapped and unmapped), twice per call on every 20 ms tick.  One more ``PyGILState_Ensure``, never released,
    keeps the counter above zero: every later callback finds the same state, the Release only lets the GIL go, and
    thread-local data lives as long as the thread.  The state is freed with the interpreter; pjsua2 stops its
    clock thread before that (the guard destroys the library first)."""
    if getattr(_kept, "on", False):
        return
    ctypes.pythonapi.PyGILState_Ensure()  # harmless on a thread Python started: it deletes its state at its end
    _kept.on = True


def fast_read_ok() -> bool:
    """True if the ctypes ByteVector read matches ``bytes()`` and a write into a vector's storage reaches a
    frame through ``frame.buf`` in this build (checked once)."""
    global _FAST
    if _FAST is None:
        _FAST = _probe()
        if not _FAST:
            log.warning("fast ByteVector access unavailable; using bytes() (slower)")
    return _FAST


def _read(bv) -> bytes:
    return _read_ctypes(bv) if _FAST else bytes(bv)


class PipelinePort(pj.AudioMediaPort):
    """customer AudioMedia -> [this port: pipeline] -> agent AudioMedia."""

    def __init__(self, pipeline=None, name: str = "guard", rate: int = 8000, ptime_ms: int = 20):
        super().__init__()
        fast_read_ok()
        self.pipeline = None
        self.frame_samples = rate * ptime_ms // 1000
        self._silence = bytes(2 * self.frame_samples)
        self._silence_bv = pj.ByteVector(self._silence)
        #: the clock thread's output vector and its storage (see the module's docstring); None: slow path
        self._out_bv = pj.ByteVector(self._silence)
        self._out_at = _data_span(self._out_bv)[0] if _FAST else None
        self._ready = None  # bytes for the next request
        self._late_s = 1.5 * ptime_ms / 1000  # a tick this much after the previous one is late
        self._last_tick = 0.0
        self.stats: dict = {}
        #: the customer stream's jitter-buffer counters (jbuf.StreamJitter), read on the clock thread
        self.jitter = None
        self._jb_last = None  # (generation, empty, lost) at the previous frame
        self.attach(pipeline)
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, rate, 1, ptime_ms * 1000, 16)
        self.createPort(name, fmt)

    def attach(self, pipeline, jitter=None) -> None:
        """Start serving ``pipeline`` (a new call) with fresh counters; None = detached (silence).
        ``jitter``: the customer stream's :class:`~.jbuf.StreamJitter` (secure mode's in-band durations)."""
        self.pipeline = None  # the clock thread sees either no pipeline or the new one with clean state
        self._ready = None
        self.jitter = jitter
        self._jb_last = None
        self._last_tick = 0.0
        #: counters: frames in/out, requests with no processed frame (silence sent), overwritten frames, errors
        self.stats = {"received": 0, "requested": 0, "missing": 0, "overrun": 0, "errors": 0, "late": 0,
                      "max_interval_ms": 0.0, "busy_s": 0.0}
        self.pipeline = pipeline

    def detach(self) -> None:
        """The call ended: drop its pipeline and any processed frame; the port sends silence until reused."""
        self.pipeline = None
        self._ready = None
        self.jitter = None

    def onFrameRequested(self, frame) -> None:  # clock thread
        try:
            _keep_thread_state()
            sched.on_clock_tick()
            if self.pipeline is None:  # detached: silence, no counting
                frame.type = _AUDIO
                frame.buf = self._silence_bv
                frame.size = len(self._silence)
                return
            now = time.perf_counter()
            if self._last_tick:
                interval = now - self._last_tick
                if interval > self._late_s:
                    self.stats["late"] += 1
                if interval * 1000 > self.stats["max_interval_ms"]:
                    self.stats["max_interval_ms"] = round(interval * 1000, 2)
            self._last_tick = now
            self.stats["requested"] += 1
            data, self._ready = self._ready, None
            frame.type = _AUDIO
            if data is None:
                self.stats["missing"] += 1
                frame.buf = self._silence_bv
                frame.size = len(self._silence)
            else:
                if self._out_at is not None and len(data) == len(self._silence):
                    ctypes.memmove(self._out_at, data, len(data))
                    frame.buf = self._out_bv
                else:
                    frame.buf = pj.ByteVector(data)
                frame.size = len(data)
        except BaseException:  # noqa: BLE001 - never let an exception into pjsua2; the frame stays silent
            self._count_error()

    def _note_jitter(self, pipeline) -> None:
        """Clock thread: did the jitter buffer make up the frame being received?  Its counters are counted in
        the stream's get_frame, earlier in this same tick (jbuf.py), so a change belongs to this frame."""
        jit = self.jitter
        counts = jit.read()
        if counts is None:
            self._jb_last = None
            return
        now = (jit.generation, *counts)
        last, self._jb_last = self._jb_last, now
        if last is None or last[0] != now[0]:
            return  # first frame of this stream: no difference yet
        inserted, concealed, dropped = now[1] - last[1], now[2] - last[2], now[3] - last[3]
        if inserted < 0 or concealed < 0 or dropped < 0:
            return
        if inserted or concealed or dropped:
            for name, n in (("jb_inserted", inserted), ("jb_concealed", concealed), ("jb_dropped", dropped)):
                self.stats[name] = self.stats.get(name, 0) + n
            if concealed or dropped:  # where in the call (frame index), for the call-end log: the first few
                at = self.stats.setdefault("jb_lost_at", [])
                if len(at) < 8:
                    at.append(self.stats["received"])
            pipeline.note_jitter(inserted, concealed, dropped)

    def _count_error(self) -> None:
        # Must not raise either: while pjsua2 destroys a port (its destructor releases the GIL), the clock
        # thread can still call into the Python object whose attributes are already cleared.  Then the
        # callback does nothing: an untouched MediaFrame is a NONE frame, silence (fail closed).
        try:
            self.stats["errors"] += 1
        except BaseException:  # noqa: BLE001
            pass

    def onFrameReceived(self, frame) -> None:  # clock thread
        try:
            _keep_thread_state()
            pipeline = self.pipeline
            if pipeline is None:
                self._ready = None
                return
            t0 = time.thread_time()
            self.stats["received"] += 1
            gap = not (frame.type == _AUDIO and frame.size)
            if not gap:
                pcm = np.frombuffer(_read(frame.buf), dtype="<i2")
            else:  # NONE frames (no packet, PLC off, a stream being recreated): keep the pipeline's clock
                # running on silence, and say so: the masker's look-ahead never saw what followed (issue 12)
                pcm = np.zeros(self.frame_samples, dtype=np.int16)
            if self.jitter is not None and pipeline.timeline is not None:
                self._note_jitter(pipeline)
            out = pipeline.process_customer_frame(pcm, gap=True) if gap else pipeline.process_customer_frame(pcm)
            if self._ready is not None:
                self.stats["overrun"] += 1
            self._ready = np.asarray(out, dtype="<i2").tobytes()
            self.stats["busy_s"] += time.thread_time() - t0  # CPU of this thread (not wall: preemption excluded)
        except BaseException:  # noqa: BLE001 - fail closed: the next request gets silence
            self._count_error()
            try:
                self._ready = None
            except BaseException:  # noqa: BLE001 - see _count_error
                pass
