# SPDX-License-Identifier: GPL-2.0-or-later
"""Background work for payment sessions, off the media thread.

``PaymentSession.feed`` is called from pjsua2's audio clock thread, which must never block (a late
frame is heard as a gap on every call in the conference bridge).  Everything slow — callbacks, JSON
lines, audit writes with fsync, the gateway's HTTPS round trips — runs here instead.  Each session gets a
:class:`SerialRunner` so its events keep their order; all sessions share two small thread pools (one for
events, one for gateway calls, so slow processors cannot starve the agent feeds), which keeps thousands
of concurrent calls from needing thousands of threads.  The pools start when the first session is
created (on the control thread), never inside ``feed`` on the media thread.
"""
from __future__ import annotations

import atexit
import collections
import logging
import queue
import threading
from typing import Callable, Optional

__all__ = ["SerialRunner", "WorkerPool", "event_pool", "gateway_pool"]

logger = logging.getLogger(__name__)


class WorkerPool:
    """A fixed set of pre-started daemon threads fed by a ``queue.SimpleQueue``.

    Not ``concurrent.futures.ThreadPoolExecutor``: its ``submit`` starts worker threads lazily, on the
    caller's thread, and waits for each to start (measured: up to ~0.5 ms on the media thread).  Here
    the threads exist before the first call and ``submit`` is one ``SimpleQueue.put``, which never
    blocks.  At exit the queue is drained (bounded wait) so pending audit records are written.
    """

    def __init__(self, name: str, size: int):
        self.name = name
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"dtmfguard-{name}-{i}", daemon=True)
                         for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable, *args) -> None:
        if self._closed:
            raise RuntimeError(f"worker pool {self.name} is shut down")
        self._queue.put((fn, args))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception as exc:  # type only: an arbitrary exception's text could carry card data
                logger.error("worker %s: task %s failed (%s)", self.name, getattr(fn, "__name__", "?"),
                             type(exc).__name__)
            finally:
                # an idle thread must not keep its last task alive (a session and its payment request)
                del item, fn, args

    def shutdown(self, timeout_s: float = 10.0) -> None:
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout_s / max(1, len(self._threads)))


_pools = {}
_pools_lock = threading.Lock()
_POOL_SIZES = {"events": 4, "gateway": 16}


def _pool(name: str) -> WorkerPool:
    with _pools_lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = WorkerPool(name, _POOL_SIZES[name])
        return pool


def event_pool() -> WorkerPool:
    """Shared pool that delivers feed events and audit records."""
    return _pool("events")


def gateway_pool() -> WorkerPool:
    """Shared pool that runs gateway hand-offs (possibly seconds long, with retries)."""
    return _pool("gateway")


@atexit.register
def _shutdown() -> None:  # pragma: no cover - process exit
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.shutdown()


class SerialRunner:
    """Runs callables one at a time in submission order on a shared executor.

    :meth:`submit` only appends to a deque and, when the runner is idle, schedules one drain job: it
    never waits for the work itself.  Exceptions from a task are logged by type only (the message of an
    arbitrary exception could carry card data) and do not stop later tasks.
    """

    def __init__(self, executor=None, name: str = "session"):
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
