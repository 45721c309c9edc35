# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-time scheduling for the media clock thread (``[media] priority``).

Why: pjsua2's clock thread must run every 20 ms.  On a loaded machine the
kernel's fair scheduler can leave it waiting behind other processes (other
workers, the SIP peers of a benchmark, anything else), and a tick that comes
late is a frame the agent hears late or not at all.  Telephony servers give
their media threads a real-time policy for this reason (Asterisk ``-p``,
FreeSWITCH ``-rp``; pjmedia's own clock asks for its policy's highest
priority, which is 0 under ``SCHED_OTHER``).  Three threads are raised, at
low real-time priorities, in this order: the clock thread (``RT_PRIORITY``),
the thread that runs pjsua's SIP loop (``SIP_RT_PRIORITY``) and pjmedia's RTP
receive thread (``MEDIA_RT_PRIORITY``); see ``MEDIA_THREAD_NAMES`` for why the
SIP thread sits between them.  The control API, the payment and capture
threads stay ordinary (the SIP thread's raise is reset for the threads and
processes it creates), so a payment's slow work never competes with media.

Safety nets: the kernel's RT throttling (``sched_rt_runtime_us``, 95 % by
default) and ``RLIMIT_RTTIME``, set here to ``RTTIME_LIMIT_US`` of CPU without
a blocking call: a clock thread that ever spins that long gets SIGXCPU and the
worker dies (its media with it: failing closed), and the supervisor restarts it.

Modes: ``auto`` (default) tries ``SCHED_RR`` and logs once if the process may
not (no ``CAP_SYS_NICE`` / ``RLIMIT_RTPRIO``); ``realtime`` makes that a
start-up error instead; ``off`` leaves scheduling alone.  Linux only; elsewhere
``auto`` is a no-op.
"""
from __future__ import annotations

import logging
import os
import resource
import threading

__all__ = ["PRIORITY_MODES", "RT_PRIORITY", "SIP_RT_PRIORITY", "MEDIA_RT_PRIORITY", "RTTIME_LIMIT_US",
           "MEDIA_THREAD_NAMES", "can_realtime", "raise_current_thread", "configure", "on_clock_tick", "raise_named",
           "raise_sip_thread"]

log = logging.getLogger(__name__)

PRIORITY_MODES = ("auto", "realtime", "off")
#: SCHED_RR priority of the clock thread: low on the 1..99 scale, below kernel threads such as IRQ handlers (50).
RT_PRIORITY = 10
#: CPU µs a real-time thread may use without blocking before SIGXCPU (the clock thread blocks every 20 ms).
RTTIME_LIMIT_US = 2_000_000

#: pjmedia's RTP/RTCP receive thread(s) (Linux thread name): packets read late look like network jitter and
#: grow every adaptive jitter buffer downstream, so they run real time too (:data:`MEDIA_RT_PRIORITY`).  This
#: thread polls pjlib's select() ioqueue, and when a socket is readable but its key's lock is held by another
#: thread (pjmedia's transport group lock, taken to start and stop streams on the SIP thread) pjlib (2.15.1
#: ioqueue_common_abs.c ``ioqueue_dispatch_read_event``) gives up without reading and polls again at once: a
#: busy loop until the lock is free.  Above a normal-policy holder on the same CPU that loop kept the holder
#: off its CPU until the kernel's RT throttling (950 ms of every second): the guard froze ~950 ms around
#: attended transfers (transfer answered ~960 ms late in 18 of 31 pinned runs, the clock thread, which needs
#: the GIL the starved SIP thread held, stalled 1-2 s, a key pressed then lost: the CI failure "agent 2 got
#: 711 of 4711"), and a spin past 2 s ended in SIGXCPU.  Hence the order clock > SIP > RTP thread: every
#: thread that takes a media transport's lock (the SIP thread, the clock thread; with ``threadCnt = 0`` no
#: other thread calls pjsua) outranks the RTP thread and preempts its loop at once.  Making the RTP thread
#: ordinary instead (nice -10) also ended the spin, but then 2 of 4 clean-clone CI runs lost a key in other
#: SIP tests (RTP read late under load).
MEDIA_THREAD_NAMES = ("media",)
#: SCHED_RR priority of the thread that runs pjsua's SIP loop (``libHandleEvents``): above the RTP thread
#: (see :data:`MEDIA_THREAD_NAMES`), below the clock thread
SIP_RT_PRIORITY = RT_PRIORITY - 1
#: SCHED_RR priority of pjmedia's RTP thread: below every thread that may hold a media transport's lock
MEDIA_RT_PRIORITY = RT_PRIORITY - 2

_mode = "off"
_done: set[int] = set()
_lock = threading.Lock()
#: per thread: this thread's first clock tick has been handled (a thread-local attribute read is the whole cost
#: of every later tick; ``threading.get_native_id`` is a system call, paid only on the first)
_ticked = threading.local()


def raise_current_thread(priority: int = RT_PRIORITY) -> bool:
    """Put the calling thread (only it: Linux applies the policy per thread) under SCHED_RR; False if refused."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
        return True
    except (OSError, ValueError):
        return False


def can_realtime() -> bool:
    """True if this process may give a thread SCHED_RR (tried on a throw-away thread)."""
    result = []
    t = threading.Thread(target=lambda: result.append(raise_current_thread()), name="dtmfguard-rt-probe")
    t.start()
    t.join()
    return bool(result and result[0])


def configure(mode: str) -> bool:
    """Set the mode for clock threads of this process; True if real time will be used.

    ``realtime`` raises RuntimeError when the process may not use it (a start-up error, not a media one).
    """
    global _mode
    if mode not in PRIORITY_MODES:
        raise ValueError(f"media priority must be one of {', '.join(PRIORITY_MODES)}, got {mode!r}")
    if mode == "off":
        _mode = "off"
        return False
    ok = can_realtime()
    if not ok:
        if mode == "realtime":
            raise RuntimeError("media.priority = 'realtime' but this process may not use SCHED_RR "
                               "(needs CAP_SYS_NICE or an RLIMIT_RTPRIO, e.g. LimitRTPRIO= in the systemd unit)")
        log.info("media clock thread stays under the normal scheduler (no permission for SCHED_RR)")
        _mode = "off"
        return False
    try:  # safety net first, then allow real time
        soft, hard = resource.getrlimit(resource.RLIMIT_RTTIME)
        limit = RTTIME_LIMIT_US if hard == resource.RLIM_INFINITY else min(RTTIME_LIMIT_US, hard)
        resource.setrlimit(resource.RLIMIT_RTTIME, (limit, hard))
    except (OSError, ValueError, AttributeError):
        if mode == "realtime":
            raise RuntimeError("cannot set RLIMIT_RTTIME; refusing real-time scheduling without it") from None
        log.info("media clock thread stays under the normal scheduler (RLIMIT_RTTIME unavailable)")
        _mode = "off"
        return False
    _mode = mode
    return True


def raise_named(names: tuple[str, ...], priority: int = RT_PRIORITY) -> None:
    """SCHED_RR for this process's threads whose name is in ``names`` (pjmedia names its threads), each once;
    a thread the kernel refuses stays as it is. Only after :func:`configure` allowed real time."""
    if _mode == "off":
        return
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return
    for t in tids:
        try:
            with open(f"/proc/self/task/{t}/comm") as fh:
                name = fh.read().strip()
            if name in names and int(t) not in _done:
                os.sched_setscheduler(int(t), os.SCHED_RR, os.sched_param(priority))
                _done.add(int(t))
                log.info("pjmedia thread %s (%s) runs under SCHED_RR priority %d", t, name, priority)
        except (OSError, ValueError):
            continue


def on_clock_tick() -> None:
    """Called from a media callback on the clock thread: raise it once; every later tick of the thread (under the
    same :func:`configure` mode) costs one thread-local read."""
    if _mode == "off" or getattr(_ticked, "mode", None) == _mode:
        return
    _ticked.mode = _mode
    tid = threading.get_native_id()
    if tid in _done:
        return
    with _lock:
        if tid in _done:
            return
        _done.add(tid)
    if raise_current_thread():
        log.info("media clock thread %d runs under SCHED_RR priority %d", tid, RT_PRIORITY)
        raise_named(MEDIA_THREAD_NAMES, MEDIA_RT_PRIORITY)
    else:
        log.warning("media clock thread %d: SCHED_RR refused; it stays under the normal scheduler", tid)


def raise_sip_thread() -> bool:
    """SCHED_RR at :data:`SIP_RT_PRIORITY` for the calling thread, the one that runs pjsua's SIP loop, once
    :func:`configure` allowed real time; True if done.  With ``SCHED_RESET_ON_FORK``: the threads and
    processes it starts (control API, payment workers, pjmedia's own) begin under the normal policy."""
    if _mode == "off" or not hasattr(os, "SCHED_RESET_ON_FORK"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(SIP_RT_PRIORITY))
    except (OSError, ValueError):
        log.warning("SIP thread: SCHED_RR refused; it stays under the normal scheduler")
        return False
    log.info("SIP thread %d runs under SCHED_RR priority %d", threading.get_native_id(), SIP_RT_PRIORITY)
    return True
