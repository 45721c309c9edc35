# SPDX-License-Identifier: GPL-2.0-or-later
"""The customer stream's jitter-buffer counters, read on pjsua2's clock thread, frame by frame.

Why: an in-band key's duration is measured on the audio the jitter buffer hands over.  When the buffer runs
empty it conceals a frame that was never sent (the key grows by 20 ms); when a packet is missing it conceals
the frame in its place (the detector does not take the concealed frame for the tone: the key shrinks).  Both
counters (``empty``, ``lost``) are counted by ``pjmedia_jbuf_get_frame`` (jbuf.c, 2.15.1), i.e. inside the
stream's ``get_frame``, which pjmedia's conference bridge calls on the clock thread in the same tick, just
before it hands the guard's port that frame (conference.c: every port is read, then every port written).
Read in the port's ``onFrameReceived``, a change in a counter therefore belongs to exactly the frame being
received.  Polled from the SIP thread (the previous way) a change could only be placed within a window of
frames, and a window that straddled a key's edge could not be used.

Reading: ``pjmedia_stream_get_stat_jbuf`` (exported by the wheel's extension) copies the counters without a
lock (stream.c / jbuf.c 2.15.1: ``pjmedia_jbuf_get_state`` is plain field reads), so the clock thread never
waits.  The stream pointer comes from pjsua2's ``onStreamCreated`` (main thread) and is given up in
``onStreamDestroyed``, which pjsua calls before ``pjmedia_stream_destroy`` (pjsua_aud.c, also on a local
hang-up: ``hanging_up`` is set only after the media are torn down); :meth:`StreamJitter.clear` waits (a few
microseconds, at most 50 ms) for a read that is under way, so the clock thread never reads a freed stream.
The structure's layout is checked once against pjsua2's own ``getStreamStat`` before the clock thread may
use it (:meth:`StreamJitter.verify`); a mismatch switches the reader off (keys then keep their measured
durations) and logs a warning.
"""
from __future__ import annotations

import ctypes
import logging
import time

import pjsua2 as pj

__all__ = ["StreamJitter"]

log = logging.getLogger(__name__)


class _JbState(ctypes.Structure):  # pjmedia_jb_state (jbuf.h 2.15.1): 15 unsigned
    _fields_ = [(name, ctypes.c_uint) for name in (
        "frame_size", "min_prefetch", "max_prefetch", "max_count", "burst", "prefetch", "size", "avg_delay",
        "min_delay", "max_delay", "dev_delay", "avg_burst", "lost", "discard", "empty")]


_FN = None  # None: not looked up; False: unavailable


def _get_stat_fn():
    global _FN
    if _FN is None:
        try:
            fn = ctypes.CDLL(pj._pjsua2.__file__).pjmedia_stream_get_stat_jbuf
            fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]
            _FN = fn
        except (OSError, AttributeError) as exc:
            log.warning("jitter-buffer counters unavailable on the clock thread (%s): in-band keys keep their "
                        "measured durations", type(exc).__name__)
            _FN = False
    return _FN or None


def stream_pointer(prm) -> int:
    """The ``pjmedia_stream*`` of an OnStreamCreated/Destroyed parameter as an int (0 if not readable)."""
    try:
        return int(prm.stream) if prm.stream is not None else 0
    except (TypeError, ValueError, AttributeError):
        return 0


class StreamJitter:
    """One stream's jitter-buffer counters for the clock thread (see module doc).

    :meth:`set`, :meth:`verify`, :meth:`clear`: main thread.  :meth:`read`: clock thread only (it reuses one
    state buffer).  ``generation`` changes with every new stream, so the reader can tell counters that
    restarted from counters that went back.
    """

    def __init__(self):
        self._ptr = 0
        self._ok = False  # verified against pjsua2's getStreamStat
        self.busy = False
        self.generation = 0
        self.disabled = False  # a layout mismatch: never again in this process's bridge
        self._state = _JbState()

    def set(self, ptr: int) -> None:
        """A new customer stream (main thread); unusable until :meth:`verify` says so."""
        self.clear()
        self._ptr = int(ptr or 0)
        self.generation += 1

    def verify(self, jbuf) -> bool:
        """Main thread: one read compared with pjsua2's ``StreamStat.jbuf`` of the same stream; True if the
        clock thread may now read."""
        fn = _get_stat_fn()
        if self.disabled or fn is None or not self._ptr:
            return False
        st = _JbState()
        if fn(self._ptr, ctypes.byref(st)) != 0:
            return False
        same = (st.frame_size, st.min_prefetch, st.max_prefetch) == (jbuf.frameSize, jbuf.minPrefetch,
                                                                       jbuf.maxPrefetch)
        close = all(0 <= mine - theirs <= 50 for mine, theirs in ((st.empty, jbuf.empty), (st.lost, jbuf.lost),
                                                                 (st.discard, jbuf.discard)))
        if not (same and close and 0 < st.frame_size <= 8192):
            self.disabled = True
            self._ptr = 0
            log.warning("jitter-buffer state layout not as expected: in-band keys keep their measured durations")
            return False
        self._ok = True
        return True

    def summary(self) -> dict | None:
        """Main thread, while the stream exists (e.g. in onStreamDestroyed, before :meth:`clear`): the buffer's
        delay and counters, for the log."""
        fn = _get_stat_fn()
        if not self._ok or fn is None or not self._ptr:
            return None
        st = _JbState()
        if fn(self._ptr, ctypes.byref(st)) != 0:
            return None
        return {"avg_delay_ms": st.avg_delay, "max_delay_ms": st.max_delay, "empty": st.empty, "lost": st.lost,
                "discard": st.discard}

    def read(self):
        """Clock thread: (empty, lost, discard) now, or None when there is no verified stream."""
        self.busy = True
        try:
            ptr = self._ptr if self._ok else 0
            if not ptr or _FN is None or _FN is False:
                return None
            st = self._state
            if _FN(ptr, ctypes.byref(st)) != 0:
                return None
            return st.empty, st.lost, st.discard
        finally:
            self.busy = False

    def clear(self) -> None:
        """The stream goes away (main thread, before pjsua destroys it): no read starts after this returns,
        and one under way has finished."""
        self._ok = False
        self._ptr = 0
        deadline = time.monotonic() + 0.05
        while self.busy and time.monotonic() < deadline:
            time.sleep(0)  # lets the clock thread (GIL) finish its read
