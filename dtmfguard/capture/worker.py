# SPDX-License-Identifier: GPL-2.0-or-later
"""Background work for payment sessions, off the media thread.

``PaymentSession.feed`` is called from pjsua2's audio clock thread, which must never block (a late
frame is heard as a gap on every call in the conference bridge).  Everything slow — callbacks, JSON
lines, audit writes with fsync, the gateway's HTTPS round trips — runs here instead.  Each session gets a
:class:`SerialRunner` so its events keep their order; all sessions share two small thread pools (one for
events, one for gateway calls, so slow processors cannot starve the agent feeds), which keeps thousands
of concurrent calls from needing thousands of threads.
"""
from __future__ import annotations

import atexit
import collections
import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Callable, Optional

__all__ = ["SerialRunner", "event_pool", "gateway_pool"]

logger = logging.getLogger(__name__)

_pools = {}
_pools_lock = threading.Lock()
_POOL_SIZES = {"events": 4, "gateway": 16}


def _pool(name: str) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(max_workers=_POOL_SIZES[name],
                                                     thread_name_prefix=f"dtmfguard-{name}")
        return pool


def event_pool() -> ThreadPoolExecutor:
    """Shared pool that delivers feed events and audit records."""
    return _pool("events")


def gateway_pool() -> ThreadPoolExecutor:
    """Shared pool that runs gateway hand-offs (possibly seconds long, with retries)."""
    return _pool("gateway")


@atexit.register
def _shutdown() -> None:  # pragma: no cover - process exit
    with _pools_lock:
        for pool in _pools.values():
            pool.shutdown(wait=True)


class SerialRunner:
    """Runs callables one at a time in submission order on a shared executor.

    :meth:`submit` only appends to a deque and, when the runner is idle, schedules one drain job: it
    never waits for the work itself.  Exceptions from a task are logged by type only (the message of an
    arbitrary exception could carry card data) and do not stop later tasks.
    """

    def __init__(self, executor: Optional[Executor] = None, name: str = "session"):
        self._executor = executor
        self._name = name
        self._queue: "collections.deque[tuple]" = collections.deque()
        self._lock = threading.Lock()
        self._running = False
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, fn: Callable, *args) -> None:
        with self._lock:
            self._queue.append((fn, args))
            self._idle.clear()
            if self._running:
                return
            self._running = True
        try:
            (self._executor or event_pool()).submit(self._drain)
        except RuntimeError:  # interpreter shutting down: run here rather than lose the audit record
            self._drain()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._running = False
                    self._idle.set()
                    return
                fn, args = self._queue.popleft()
            try:
                fn(*args)
            except Exception as exc:
                logger.error("%s: background task %s failed (%s)", self._name,
                             getattr(fn, "__name__", "?"), type(exc).__name__)

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Block (never from the media thread) until queued work is done; False on timeout."""
        return self._idle.wait(timeout)
