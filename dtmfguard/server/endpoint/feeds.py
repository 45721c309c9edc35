# SPDX-License-Identifier: GPL-2.0-or-later
"""Worker links and per-call feed logs of the box endpoint (asyncio, one event loop thread).

Each worker's local control API is long-polled (``GET /events?after=N&wait=2``: at least every 2 s, so /metrics is at most 2 s behind): the worker returns its
events after sequence number ``N`` and the box moves its cursor only past what it received, so nothing
is lost or repeated between the two, whatever breaks.  Each call's events are kept in order with the
worker's per-call id, which becomes the SSE ``id:``; a follower resuming with ``Last-Event-ID: k`` gets
exactly the events after ``k``.  Many followers of one call share one log (one poll per worker, not one
worker connection per follower).

A worker that restarts (new boot id) or stops answering ends its calls in the log with reason
``worker-lost``: a desktop sees that, never a feed that just stops.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

import aiohttp

from .handles import Handle

__all__ = ["CallLog", "WorkerLink", "FeedStore"]

log = logging.getLogger(__name__)

#: an ended call's log is kept this long for late followers and resumes
ENDED_RETENTION_S = 600.0
MAX_EVENTS_PER_CALL = 5000


#: feed event -> the payment state it means (None: the event's outcome)
_PAYMENT_STATES = {"session_started": "collecting", "approval_required": "awaiting_approval",
                   "submitting": "submitting", "session_ended": None}


class CallLog:
    """One call's events ``(id, type, data)`` in order; followers wait on :meth:`wait_after`."""

    def __init__(self, handle: Handle):
        self.handle = handle
        self.events: list[tuple[int, str, dict]] = []
        self.agent = ""
        self.state = ""
        self.correlation: dict = {}
        self.payment: Optional[str] = None  # the payment session's state, as the feed tells it
        self.created = time.time()
        self.ended_at: Optional[float] = None
        self._changed = asyncio.Event()

    def summary(self) -> dict:
        """What lists and lookups show of the call (no worker round trip)."""
        h = self.handle
        return {"handle": str(h), "box": h.box, "worker": h.worker, "id": h.call, "state": self.state,
                "agent": self.agent, "correlation": dict(self.correlation), "payment": self.payment,
                "created": self.created}

    @property
    def last_id(self) -> int:
        return self.events[-1][0] if self.events else 0

    def add(self, eid: int, kind: str, data: dict) -> None:
        if eid <= self.last_id:
            return  # already have it (never re-sent by the cursor protocol; kept as a guard)
        if kind == "call_state":
            self.agent = data.get("agent") or self.agent
            self.state = data.get("state", self.state)
            self.correlation = data.get("correlation") or self.correlation
            if self.state == "ended":
                kind = "call_ended"
                self.ended_at = time.monotonic()
        elif kind in _PAYMENT_STATES:
            self.payment = _PAYMENT_STATES[kind] or data.get("outcome")
        self.events.append((eid, kind, data))
        if len(self.events) > MAX_EVENTS_PER_CALL:
            del self.events[: len(self.events) - MAX_EVENTS_PER_CALL]
        self._changed.set()
        self._changed = asyncio.Event()

    def after(self, eid: int) -> list[tuple[int, str, dict]]:
        if not self.events or eid >= self.last_id:
            return []
        # ids are dense and increasing: index arithmetic, with a scan as fallback after trimming
        first = self.events[0][0]
        start = max(0, eid - first + 1)
        if start < len(self.events) and self.events[start][0] == eid + 1:
            return self.events[start:]
        return [e for e in self.events if e[0] > eid]

    async def wait_after(self, eid: int, timeout: float) -> list[tuple[int, str, dict]]:
        got = self.after(eid)
        if got or self.ended_at is not None:
            return got
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except asyncio.TimeoutError:
            return []
        return self.after(eid)


class FeedStore:
    """Every call log of this box, by handle string."""

    def __init__(self):
        self.calls: dict[str, CallLog] = {}

    def get(self, handle: Handle) -> Optional[CallLog]:
        return self.calls.get(str(handle))

    def ensure(self, handle: Handle) -> CallLog:
        key = str(handle)
        c = self.calls.get(key)
        if c is None:
            c = self.calls[key] = CallLog(handle)
        return c

    def end_worker_calls(self, worker: int, boot: str, reason: str) -> None:
        for c in list(self.calls.values()):
            if c.handle.worker == worker and c.handle.boot == boot and c.ended_at is None:
                c.add(c.last_id + 1, "call_state", {"call": c.handle.call, "state": "ended", "reason": reason,
                                                   "agent": c.agent})

    def expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, c in self.calls.items() if c.ended_at is not None
                    and now - c.ended_at > ENDED_RETENTION_S]:
            del self.calls[key]

    def active(self) -> int:
        return sum(1 for c in self.calls.values() if c.ended_at is None)


class WorkerLink:
    """The box's connection to one worker's local control API."""

    def __init__(self, index: int, base_url: str, token: str, box: str, store: FeedStore,
                 on_poll: Callable[["WorkerLink", dict], None] | None = None):
        self.index, self.base_url, self.token, self.box = index, base_url.rstrip("/"), token, box
        self.store = store
        self.on_poll = on_poll
        self.boot: Optional[str] = None
        self.cursor = 0
        self.failures = 0
        self.session: Optional[aiohttp.ClientSession] = None

    def handle(self, call: str) -> Handle:
        return Handle(self.box, self.index, self.boot or "0", call)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    async def request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
        """One call to the worker; (status, JSON).  Raises aiohttp.ClientError / asyncio.TimeoutError."""
        assert self.session is not None
        async with self.session.request(method, self.base_url + path, json=body, headers=self.headers,
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            data = await r.json(content_type=None) if r.content_length != 0 else None
            return r.status, data

    async def run(self, stop: asyncio.Event) -> None:
        """Long-poll the worker's events until ``stop``; its calls end as ``worker-lost`` when it goes."""
        while not stop.is_set():
            try:
                status, data = await self.request("GET", f"/events?after={self.cursor}&wait=2", timeout=30)
                if status != 200 or not isinstance(data, dict):
                    raise aiohttp.ClientError(f"status {status}")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                self.failures += 1
                if self.failures == 3 and self.boot is not None:
                    log.warning("worker %d does not answer (%s): its calls are reported lost", self.index,
                                type(exc).__name__)
                    self.store.end_worker_calls(self.index, self.boot, "worker-lost")
                try:
                    await asyncio.wait_for(stop.wait(), 0.5 if self.failures < 10 else 2.0)
                except asyncio.TimeoutError:
                    pass
                continue
            self.failures = 0
            boot = str(data.get("boot", ""))
            if boot != self.boot:
                if self.boot is not None:
                    self.store.end_worker_calls(self.index, self.boot, "worker-lost")
                if self.cursor:  # a new process: its sequence starts again
                    self.boot, self.cursor = boot, 0
                    continue
                self.boot = boot
            for ev in data.get("events", []):
                log_ = self.store.ensure(self.handle(str(ev["call"])))
                log_.add(int(ev["id"]), str(ev["type"]), ev.get("data") or {})
            self.cursor = int(data.get("next", self.cursor))
            if self.on_poll is not None:
                try:
                    self.on_poll(self, data)
                except Exception as exc:  # noqa: BLE001 - metrics must not stop the feed
                    log.error("metrics update failed (%s)", type(exc).__name__)
            self.store.expire()
