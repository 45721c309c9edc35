# SPDX-License-Identifier: GPL-2.0-or-later
"""Memory figures of the running process for the leak diagnosis (benchmarks/memleak.py, issue 8).

Why more than RSS: RSS mixes memory in use with memory the allocator keeps after ``free`` (glibc returns
a heap's top to the system only past a threshold and never returns holes below it; each thread that
allocates may get its own arena).  ``mallinfo2`` (glibc >= 2.33, summed over all arenas) tells in-use
bytes (``uordblks``) from free-but-kept bytes (``fordblks``); ``malloc_trim(0)`` then shows how much of
the RSS was only kept by the allocator.  A leak grows ``uordblks`` (native) or the Python object counts;
fragmentation or allocator settling grows only ``fordblks`` / arenas and flattens out.

Python objects are counted by class name (``gc.get_objects``), so a per-call object that survives its
call (a reference cycle holding a pjsua2 Call or port, a session kept by a pool thread) shows as a
count that rises with the calls.  Linux and glibc only; elsewhere the native figures are None.
"""
from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import os
import re
import tempfile
import threading
from pathlib import Path

__all__ = ["rss_kb", "mallinfo2", "malloc_trim", "arena_count", "object_counts", "snapshot", "WATCHED"]

#: classes whose live instances are counted: one set per call in flight, so a count that grows with the
#: number of finished calls is a leak
WATCHED = ("_Leg", "Bridge", "PipelinePort", "CallPipeline", "Masker", "DtmfDetector", "PaymentSession",
           "SerialRunner", "WebhookGateway", "Call", "AudioMedia", "AudioMediaPort", "ByteVector", "MediaFrame",
           "CallInfo", "Thread", "ndarray", "HoldRelay", "LegState", "SipHeader", "CallOpParam")

_MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2_FIELDS]


_libc = None


def _c():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.mallinfo2.restype = _Mallinfo2
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
            _libc.malloc_trim.restype = ctypes.c_int
            _libc.fopen.restype = ctypes.c_void_p
            _libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
            _libc.fclose.argtypes = [ctypes.c_void_p]
            _libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def _status(pid: int | str = "self") -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "Threads", "VmData"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def rss_kb(pid: int | str = "self") -> int | None:
    return _status(pid).get("VmRSS")


def mallinfo2() -> dict[str, int] | None:
    """glibc's allocator totals in bytes (all arenas); None without glibc >= 2.33."""
    c = _c()
    if c is None:
        return None
    m = c.mallinfo2()
    return {name: int(getattr(m, name)) for name in ("arena", "hblkhd", "uordblks", "fordblks", "keepcost")}


def malloc_trim() -> bool:
    """Give free heap pages back to the system (all arenas); True if any memory was released."""
    c = _c()
    return bool(c.malloc_trim(0)) if c is not None else False


def arena_count() -> int | None:
    """Number of glibc malloc arenas (from ``malloc_info``): threads that allocate may each add one."""
    c = _c()
    if c is None:
        return None
    fd, path = tempfile.mkstemp(prefix="dtmfguard-malloc-info-")
    os.close(fd)
    try:
        fp = c.fopen(path.encode(), b"w")
        if not fp:
            return None
        c.malloc_info(0, fp)
        c.fclose(fp)
        return len(re.findall(r"<heap nr=", Path(path).read_text()))
    finally:
        os.unlink(path)


def object_counts(names=WATCHED) -> dict[str, int]:
    """Live Python objects per class name in ``names`` (tracked by the garbage collector)."""
    wanted = set(names)
    counts: collections.Counter = collections.Counter()
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in wanted:
            counts[name] += 1
    return dict(counts)


def snapshot(calls: int, trim: bool = False, objects: bool = True) -> dict:
    """One JSON-able line of figures after ``calls`` finished calls.  With ``trim``, RSS is read again
    after ``malloc_trim(0)`` (the difference is memory glibc kept, not memory in use)."""
    st = _status()
    out = {"event": "mem", "calls": calls, "rss_kb": st.get("VmRSS"), "rss_anon_kb": st.get("RssAnon"),
           "native_threads": st.get("Threads"), "py_threads": threading.active_count(),
           "mallinfo": mallinfo2(), "arenas": arena_count(), "gc_garbage": len(gc.garbage)}
    if objects:
        out["objects"] = object_counts()
    if trim:
        malloc_trim()
        out["rss_after_trim_kb"] = rss_kb()
        out["mallinfo_after_trim"] = mallinfo2()
    return out
