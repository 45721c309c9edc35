# SPDX-License-Identifier: GPL-2.0-or-later
"""Control API for the agent's desktop and the CRM: local HTTP + JSON, Server-Sent Events for the feed.

Why HTTP on 127.0.0.1 with a bearer token: the desktop and CRM integrations
run next to the guard (or behind a reverse proxy that adds TLS); a token from
the environment keeps secrets out of config files and process lists, and it
is compared in constant time (``hmac.compare_digest``) so response timing does
not reveal it.  Pure Python (``http.server``), no pjsua2 calls: starting a
payment only attaches a :class:`~dtmfguard.capture.PaymentSession` to the
call's pipeline, an atomic reference the clock thread reads.

Endpoints (all JSON; all but ``/health`` need ``Authorization: Bearer <token>``):

====== ============================== =====================================================
GET    /health                        worker health (no card data, no call details)
GET    /calls                         calls on this worker and their state; ``?call_id=<SIP Call-ID>``:
                                      only that call (how a PBX or Kamailio finds the call's id)
POST   /calls/<id>/payment            start a payment: {"amount": 1999, "currency": "GBP",
                                      "reference": "INV-1", "agent_id": "a7"} (amount in minor units)
POST   /calls/<id>/payment/cancel     cancel it (also DELETE /calls/<id>/payment)
GET    /calls/<id>/feed               text/event-stream: the masked agent feed (field progress as
                                      counts, brand and last 4 only; never digits); each event has
                                      an ``id:`` (its per-call number) and ``Last-Event-ID`` resumes;
                                      card-run alerts (``card_outside_secure_mode``: call, agent, time)
GET    /events?after=N&wait=S         long poll for the box endpoint (dtmfguard.server.endpoint): every feed
                                      and call-state event of this worker after worker-wide sequence
                                      number N, plus the worker's counters for /metrics
POST   /calls/<id>/secure             secure mode on without a payment (mask_mode "secure": keys are
                                      no longer relayed to the agent leg; a relay in mask_mode
                                      "payment": the customer masked as during a payment); DELETE: off
GET    /calls/<id>/alerts             the call's card-run alerts (no digits)
====== ============================== =====================================================

Per-call state has one owner, the guard's main loop (issue 18): starting and cancelling a payment are
handed to it as queued actions (:func:`on_owner`) and this thread waits for the answer, so two concurrent
POSTs cannot both see "no session" and create two, and a call that ends meanwhile cannot be left with a
session that never ends (the main loop refuses to start one on a call that is no longer connected, and
ends the session of every call that ends).  The feed events are collected on the main loop too
(:class:`FeedBook`), every 50 ms, into one log with per-call event ids.
"""
from __future__ import annotations

import collections
import concurrent.futures
import hmac
import http.client
import json
import logging
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from ..capture.states import is_terminal

__all__ = ["ControlServer", "FeedBook", "on_owner", "correlation_ids"]

log = logging.getLogger(__name__)

_CALL_RE = re.compile(r"^/calls/([A-Za-z0-9_-]{1,32})(/payment(/cancel)?|/feed|/secure|/alerts)?/?$")
_MAX_BODY = 16 * 1024


#: how long an HTTP thread waits for the main loop to run its action (it polls every 20 ms)
OWNER_TIMEOUT_S = 5.0


class OwnerUnavailable(RuntimeError):
    """The guard's main loop did not run the action in time (stopping, or stuck)."""


def on_owner(guard, fn: Callable[[], Any], timeout: float = OWNER_TIMEOUT_S) -> Any:
    """Run ``fn()`` on the thread that owns the calls (the guard's main loop) and return its result.

    A guard without an action queue (a test double, or the guard of a one-thread program) runs it here."""
    queue = getattr(guard, "_queue", None)
    if queue is None or not getattr(guard, "ep", True):
        return fn()
    fut: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        if not fut.set_running_or_notify_cancel():
            return  # the HTTP side gave up waiting: do nothing (it answered 503)
        try:
            fut.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed back to the waiting HTTP thread
            fut.set_exception(exc)

    run.__name__ = getattr(fn, "__name__", "control-action")
    queue(run)
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        if fut.cancel():
            raise OwnerUnavailable("the worker's main loop did not answer in time") from None
        return fut.result()  # it started just now: its answer is the truth


def correlation_ids(invite: str, header: str = "") -> dict:
    """What a PBX/CTI knows a call by, from the customer leg's INVITE: its Call-ID and, if configured,
    the value of one more header (e.g. ``X-Correlation-ID``).  Values are cut to 128 characters; a
    value that looks like a card number is dropped (it would end up in lists and logs)."""
    from ..capture.audit import find_card_data

    out = {}
    head = (invite or "").split("\r\n\r\n", 1)[0]
    want = {"call-id": "call_id", "i": "call_id"}
    if header:
        want[header.lower()] = "header"
    for line in head.splitlines()[1:]:
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in want and want[key] not in out:
            value = value.strip()[:128]
            if value and not find_card_data(value):
                out[want[key]] = value
    return out


_TERMINAL_CALL = ("ended",)


def _session_done(b) -> bool:
    s = b.session
    return s is None or bool(getattr(s, "finished", True))


class FeedBook:
    """Every masked feed and call-state event of this worker, in order: a worker-wide sequence number
    (for the box endpoint's long poll) and a per-call event id (for SSE ``id:`` and ``Last-Event-ID``).

    :meth:`collect` runs on the guard's main loop (the owner of the bridges); readers take copies under
    the condition's lock.  Bounded: the oldest events go first (``maxlen``)."""

    def __init__(self, maxlen: int = 50_000):
        # a restarted worker has new call ids: the box must tell them apart.  Letters only, so a handle never
        # holds a digit run that a card-data scanner or the log redaction could mistake for card data
        self.boot = "".join(secrets.choice("bcdfghjkmnpqrstvwxz") for _ in range(8))
        self.cond = threading.Condition()
        self.seq = 0
        self.log: collections.deque = collections.deque(maxlen=maxlen)
        self._calls: dict[str, dict] = {}
        #: cumulative counters for /metrics (calls that ended keep counting)
        self.totals: collections.Counter = collections.Counter()
        self.gateway_ms: list = []  # gateway latencies not yet handed to the box endpoint

    def _emit(self, cid: str, kind: str, data: dict) -> None:
        c = self._calls[cid]
        c["n"] += 1
        self.seq += 1
        self.log.append({"seq": self.seq, "call": cid, "id": c["n"], "type": kind, "data": data})

    def collect(self, bridges: list) -> int:
        """Copy what changed since the last call into the log; returns the number of new events."""
        before = self.seq
        present = set()
        with self.cond:
            for b in bridges:
                present.add(b.id)
                self._collect_one(b)
            for cid in [c for c in self._calls if c not in present]:
                c = self._calls[cid]
                b = c["bridge"]
                self._collect_one(b)  # reaped since the last pass: its last events, then gone
                if not _session_done(b):
                    continue  # e.g. the card is with the gateway: its answer is still to come
                if c["state"] != "ended":
                    self._emit(cid, "call_state", {"call": cid, "state": "ended", "reason": b.reason,
                                                   "agent": b.target})
                self._account_media(c, final=True)
                del self._calls[cid]
            if self.seq != before:
                self.cond.notify_all()
        return self.seq - before

    def collect_bridge(self, b) -> None:
        """Collect one call now (before its session is replaced)."""
        with self.cond:
            before = self.seq
            self._collect_one(b)
            if self.seq != before:
                self.cond.notify_all()

    def _collect_one(self, b) -> None:
        c = self._calls.get(b.id)
        if c is None:
            c = self._calls[b.id] = {"n": 0, "state": None, "sessions": {}, "bridge": b, "media": {}}
            self.totals["calls_seen"] += 1
        s = b.session
        if s is not None:
            sid = getattr(s, "session_id", "?")
            done = c["sessions"].get(sid, 0)
            events = list(getattr(s, "events", []))
            for ev in events[done:]:
                self._emit(b.id, ev.get("type", "feed"), ev)
                self._account_event(c, ev)
            c["sessions"][sid] = len(events)
        # "ended" is the feed's last word: only once the payment session has said its own
        if b.state != c["state"] and (b.state != "ended" or _session_done(b)):
            c["state"] = b.state
            self._emit(b.id, "call_state", {"call": b.id, "state": b.state, "reason": b.reason,
                                            "agent": b.target, "correlation": dict(b.correlation or {})})
        self._account_media(c)

    def _account_event(self, c: dict, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "session_started":
            self.totals["sessions_started"] += 1
        elif kind == "submitting":
            c["submit_t"] = ev.get("t")
        elif kind == "gateway_result":
            self.totals["gateway_" + str(ev.get("status", "unknown"))] += 1
            if c.get("submit_t") is not None and ev.get("t") is not None:
                self.gateway_ms.append(max(0.0, (ev["t"] - c.pop("submit_t")) * 1000))
                del self.gateway_ms[:-1000]
        elif kind == "session_ended":
            self.totals["session_" + str(ev.get("outcome", "unknown"))] += 1

    def _account_media(self, c: dict, final: bool = False) -> None:
        """Media counters of a call (its pipeline and port: integers the clock thread increments)."""
        b = c["bridge"]
        now = {}
        pl, port = b.pipeline, getattr(b, "port", None)  # relay mode has no pjsua2 port
        if pl is not None:
            st = pl.snapshot()
            for k in ("digits_inband", "digits_rfc4733", "digits_sip_info", "errors", "frames"):
                now["pl_" + k] = st.get(k, 0)
            # masked spans the masker has finished: the length of its history deque (one atomic read, no
            # iteration over state the clock thread is changing)
            history = getattr(getattr(pl, "masker", None), "_history", None)
            if history is not None:
                now["pl_masked_spans"] = len(history)
        if port is not None:
            st = dict(port.stats)
            for k in ("late", "missing", "errors"):
                now["port_" + k] = st.get(k, 0)
        prev = c["media"]
        for k, v in now.items():
            if v > prev.get(k, 0):
                self.totals[k] += v - prev.get(k, 0)
            prev[k] = max(v, prev.get(k, 0)) if k.startswith("pl_") else v  # ports are reused: fresh counts
        if final:
            c["media"] = {}

    def after(self, seq: int, limit: int = 2000) -> tuple[list, int]:
        """Events with a worker sequence number above ``seq`` (at most ``limit``) and the next cursor."""
        with self.cond:
            if self.log and seq < self.log[0]["seq"] - 1:
                seq = self.log[0]["seq"] - 1  # older ones are gone (bounded log): the reader is told by "lost"
            out = [e for e in self.log if e["seq"] > seq][:limit]
            return out, (out[-1]["seq"] if out else max(seq, 0))

    def call_events(self, cid: str) -> list:
        with self.cond:
            return [e for e in self.log if e["call"] == cid]


class _Collector(threading.Thread):
    """Asks the main loop to collect feed events every ``interval_s`` (the main loop owns the bridges)."""

    def __init__(self, guard, book: FeedBook, stop: threading.Event, interval_s: float = 0.05):
        super().__init__(name="control-feed-collector", daemon=True)
        self.guard, self.book, self.stop, self.interval_s = guard, book, stop, interval_s

    def _bridges(self) -> list:
        bridges = getattr(self.guard, "bridges", None)
        if isinstance(bridges, dict):
            return list(bridges.values())
        b = getattr(self.guard, "bridge", None)  # test doubles with one call
        return [b] if b is not None else []

    def run(self) -> None:
        while not self.stop.wait(self.interval_s):
            try:
                on_owner(self.guard, lambda: self.book.collect(self._bridges()), timeout=2.0)
            except OwnerUnavailable:
                continue
            except Exception as exc:  # noqa: BLE001 - never stop collecting; say what kind of failure
                log.error("control API: feed collection failed (%s)", type(exc).__name__)


class _Handler(BaseHTTPRequestHandler):
    server_version = "dtmfguard-control"
    protocol_version = "HTTP/1.1"

    # quiet: the default handler prints every request to stderr
    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("control: " + fmt, *args)

    @property
    def guard(self):
        return self.server.guard  # type: ignore[attr-defined]

    def handle_one_request(self) -> None:
        # a stopping server also stops answering on kept-alive connections (shutdown() only stops accepting)
        if self.server.stopping.is_set():  # type: ignore[attr-defined]
            self.close_connection = True
            return
        super().handle_one_request()

    def _send(self, code: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, supplied = header.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(),
                                                                self.server.token.encode())  # type: ignore
        if not ok:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="dtmfguard"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        return ok

    def _json_body(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self._send(400, {"error": f"body must be JSON of at most {_MAX_BODY} bytes"})
            return None
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": "body is not valid JSON"})
            return None
        if not isinstance(data, dict):
            self._send(400, {"error": "body must be a JSON object"})
            return None
        return data

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        try:
            if self.path == "/health":
                health = self.guard.health()
                # monitors read the status code
                self._send(200 if health.get("ok") else 503, {**health, "boot": self.server.book.boot})  # type: ignore[attr-defined]
                return
            if not self._authorised():
                return
            url = urlsplit(self.path)
            if url.path.rstrip("/") == "/calls":
                calls = self._calls()
                wanted = parse_qs(url.query).get("call_id")
                if wanted:  # a PBX, CRM or Kamailio's http_client finds its call by the SIP Call-ID
                    calls = [c for c in calls if c["correlation"].get("call_id") in wanted]
                self._send(200, {"calls": calls})
                return
            if url.path == "/events":
                self._events(parse_qs(url.query))
                return
            m = _CALL_RE.match(self.path)
            if m and m.group(2) == "/feed":
                self._feed(m.group(1))
                return
            if m and m.group(2) == "/alerts":
                b = self._bridge(m.group(1))
                if b is not None:
                    self._send(200, {"call": b.id, "alerts": list(getattr(b, "alerts", []))})
                return
            self._send(404, {"error": "no such resource"})
        except (BrokenPipeError, ConnectionResetError):
            pass
        except OwnerUnavailable as exc:
            self._safe_send(503, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - never kill the worker; say nothing specific
            log.error("control API error (%s)", type(exc).__name__)
            self._safe_500()

    def do_POST(self) -> None:  # noqa: N802
        try:
            if not self._authorised():
                return
            m = _CALL_RE.match(self.path)
            if m and m.group(2) == "/secure":
                self._secure(m.group(1), True)
                return
            if not m or not m.group(2) or not m.group(2).startswith("/payment"):
                self._send(404, {"error": "no such resource"})
                return
            if m.group(3):
                self._cancel(m.group(1))
            else:
                self._start_payment(m.group(1))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except OwnerUnavailable as exc:
            self._safe_send(503, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001
            log.error("control API error (%s)", type(exc).__name__)
            self._safe_500()

    def do_DELETE(self) -> None:  # noqa: N802
        try:
            if not self._authorised():
                return
            m = _CALL_RE.match(self.path)
            if m and m.group(2) == "/secure":
                self._secure(m.group(1), False)
                return
            if not m or m.group(2) != "/payment":
                self._send(404, {"error": "no such resource"})
                return
            self._cancel(m.group(1))
        except OwnerUnavailable as exc:
            self._safe_send(503, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001
            log.error("control API error (%s)", type(exc).__name__)
            self._safe_500()

    def _safe_500(self) -> None:
        self._safe_send(500, {"error": "internal error"})

    def _safe_send(self, code: int, payload: dict) -> None:
        try:
            self._send(code, payload)
        except Exception:  # noqa: BLE001
            pass

    def _calls(self) -> list:
        """The calls with what a desktop finds them by (correlation ids, agent) and a payment summary."""
        def snapshot() -> list:
            out = []
            for b in list(getattr(self.guard, "bridges", {}).values()) if hasattr(self.guard, "bridges") \
                    else [self.guard.get_bridge(c["id"]) for c in self.guard.list_calls()]:
                if b is None:
                    continue
                item = b.summary()
                item["correlation"] = dict(getattr(b, "correlation", {}) or {})
                out.append(item)
            return out

        return on_owner(self.guard, snapshot)

    def _events(self, query: dict) -> None:
        """Long poll: events after ``after`` (waits up to ``wait`` s, at most 25, for the first one)."""
        book: FeedBook = self.server.book  # type: ignore[attr-defined]
        try:
            after = int(query.get("after", ["0"])[0])
            wait = min(max(float(query.get("wait", ["0"])[0]), 0.0), 25.0)
        except ValueError:
            self._send(400, {"error": "after must be an integer and wait a number of seconds"})
            return
        deadline = time.monotonic() + wait
        with book.cond:
            while book.seq <= after and not self.server.stopping.is_set():  # type: ignore[attr-defined]
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                book.cond.wait(min(left, 0.5))
        events, cursor = book.after(after)
        with book.cond:
            lat, book.gateway_ms = book.gateway_ms, []
            totals = dict(book.totals)
        self._send(200, {"boot": book.boot, "next": cursor, "events": events, "totals": totals,
                         "counters": dict(getattr(self.guard, "counters", {}) or {}), "gateway_ms": lat})

    def _bridge(self, call_id: str):
        b = self.guard.get_bridge(call_id)
        if b is None:
            self._send(404, {"error": f"no call {call_id} on this worker"})
        return b

    def _start_payment(self, call_id: str) -> None:
        data = self._json_body()
        if data is None:
            return
        allowed = {"amount", "currency", "reference", "agent_id", "fields"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            self._send(400, {"error": f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"})
            return
        book = self.server.book  # type: ignore[attr-defined]
        code, payload = on_owner(self.guard, lambda: _start_on_owner(self.guard, call_id, data, book))
        self._send(code, payload)

    def _secure(self, call_id: str, on: bool) -> None:
        b = self._bridge(call_id)
        if b is None:
            return
        if not self.guard.set_secure(b, on, "api"):
            self._send(409, {"error": f"call {call_id} cannot switch secure mode: no media yet, or its mask_mode "
                                     "is 'always' (masked all call long)"})
            return
        self._send(200, {"call": call_id, "secure": bool(b.pipeline.secure)})

    def _cancel(self, call_id: str) -> None:
        code, payload = on_owner(self.guard, lambda: _cancel_on_owner(self.guard, call_id))
        self._send(code, payload)

    def _feed(self, call_id: str) -> None:
        """SSE: every masked feed event of the call's payment session(s), then ``call_ended``."""
        b = self._bridge(call_id)
        if b is None:
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent: dict[int, int] = {}
        alerts_sent = 0
        last_beat = 0.0
        stop = self.server.stopping  # type: ignore[attr-defined]
        while not stop.is_set():
            session = b.session
            if session is not None:
                events = list(getattr(session, "events", []))
                start = sent.get(id(session), 0)
                for ev in events[start:]:
                    self._sse(ev.get("type", "feed"), ev)
                sent[id(session)] = len(events)
            alerts = list(getattr(b, "alerts", []))
            for ev in alerts[alerts_sent:]:
                self._sse("card_outside_secure_mode", ev)
            alerts_sent = len(alerts)
            if b.state == "ended":
                self._sse("call_ended", {"call": call_id, "reason": b.reason})
                return
            now = time.monotonic()
            if now - last_beat > 5:
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
                last_beat = now
            time.sleep(0.1)
        # the worker is stopping: it hangs up every call next; say so (a closed stream would read as lost)
        self._sse("call_ended", {"call": call_id, "reason": "worker-stopping"})

    def _sse(self, kind: str, payload: dict) -> None:
        self.wfile.write(f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode())
        self.wfile.flush()


def _start_on_owner(guard, call_id: str, data: dict, book: FeedBook | None = None) -> tuple[int, dict]:
    """Main loop: check the call and its payment, create the session and attach it, in one step.  The
    previous (finished) session's last events are collected first: the feed must not lose them."""
    b = guard.get_bridge(call_id)
    if b is None:
        return 404, {"error": f"no call {call_id} on this worker"}
    if b.state != "connected" or b.pipeline is None:
        return 409, {"error": f"call {call_id} is not connected (state {b.state})"}
    if b.session is not None and not is_terminal(getattr(b.session, "state", "")):
        return 409, {"error": f"call {call_id} already has a payment in progress"}
    factory = guard.session_factory
    if factory is None:
        return 503, {"error": "no payment gateway configured"}
    try:
        session = factory(call_id=call_id, **data)
    except (TypeError, ValueError) as exc:
        if type(exc).__module__.startswith("dtmfguard.capture.gateways"):  # e.g. no vault key
            return 503, {"error": f"payment gateway unavailable: {str(exc).splitlines()[0][:200]}"}
        return 400, {"error": str(exc).split("\n")[0][:200]}
    except Exception as exc:  # noqa: BLE001 - no card data exists yet; say which kind of failure
        log.error("%s: payment gateway could not be loaded (%s)", call_id, type(exc).__name__)
        return 503, {"error": f"payment gateway unavailable ({type(exc).__name__})"}
    if book is not None:
        book.collect_bridge(b)
    attach = getattr(guard, "attach_payment", None)  # the Guard measures the secure-mode switch
    if attach is not None:
        attach(b, session)
    else:
        b.session = session
        b.pipeline.attach_session(session)
    log.info("%s: payment session started (%s)", call_id, getattr(session, "session_id", "?"))
    return 201, {"call": call_id, "session": getattr(session, "session_id", None),
                 "state": getattr(session, "state", None)}


def _cancel_on_owner(guard, call_id: str) -> tuple[int, dict]:
    b = guard.get_bridge(call_id)
    if b is None:
        return 404, {"error": f"no call {call_id} on this worker"}
    if b.session is None:
        return 409, {"error": f"call {call_id} has no payment session"}
    b.session.cancel()
    log.info("%s: payment session cancelled by the control API", call_id)
    return 200, {"call": call_id, "session": getattr(b.session, "session_id", None),
                 "state": getattr(b.session, "state", None)}


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a burst of requests must not wait for SYN retries (listen backlog 5)


class ControlServer:
    """The control API on its own daemon thread; :meth:`stop` shuts it down."""

    def __init__(self, guard, host: str = "127.0.0.1", port: int = 8070, token: str = ""):
        if not token:
            raise ValueError("the control API needs a bearer token")
        self.httpd = _Server((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.book = FeedBook()
        self.httpd.book = self.book  # type: ignore[attr-defined]
        self.httpd.guard = guard  # type: ignore[attr-defined]
        self.httpd.token = token  # type: ignore[attr-defined]
        self.httpd.stopping = threading.Event()  # type: ignore[attr-defined]
        self.address = self.httpd.server_address
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="control-api", daemon=True)
        self._collector = _Collector(guard, self.book, self.httpd.stopping)  # type: ignore[attr-defined]

    def start(self) -> None:
        self._thread.start()
        self._collector.start()
        log.info("control API on http://%s:%d", *self.address[:2])

    def stop(self) -> None:
        self.httpd.stopping.set()  # type: ignore[attr-defined]
        self.httpd.shutdown()
        self.httpd.server_close()


def request(port: int, method: str, path: str, token: str, body: dict | None = None, *,
            host: str = "127.0.0.1", timeout: float = 10.0) -> tuple[int, Any]:
    """One control-API call, as an agent desktop or a script makes it: ``(HTTP status, decoded JSON or
    None)``.  Raises ``OSError`` when the worker cannot be reached."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, (json.loads(payload) if payload else None)
    finally:
        conn.close()


def follow_feed(port: int, call_id: str, token: str, on_event, stop=None, *, host: str = "127.0.0.1",
                timeout: float = 60.0) -> None:
    """Read a call's masked agent feed (Server-Sent Events) until ``call_ended``, the connection closing, or
    ``stop`` (a ``threading.Event``) being set; call ``on_event(kind, data)`` for each event.

    A stream that breaks without ``call_ended`` (the worker died, or sent nothing for ``timeout`` seconds
    although it sends a keep-alive every 5 s) ends with one last event, ``stream_lost``
    (``{"type": "stream_lost", "call": id, "reason": ...}``), so a desktop can show "worker lost" instead of
    a feed that just stops.  A worker that cannot be reached at all, or answers other than 200, gives no
    events (the call was never followed)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    following = False

    def lost(reason: str) -> None:
        if following and (stop is None or not stop.is_set()):
            log.info("agent feed of %s lost (%s)", call_id, reason)
            on_event("stream_lost", {"type": "stream_lost", "call": call_id, "reason": reason})

    try:
        conn.request("GET", f"/calls/{call_id}/feed", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        if resp.status != 200:
            return
        following = True
        kind, data = "message", []
        while stop is None or not stop.is_set():
            raw = resp.fp.readline()
            if not raw:
                lost("closed")
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                try:
                    on_event(kind, json.loads("\n".join(data)))
                except ValueError:
                    pass
                if kind == "call_ended":
                    return
                kind, data = "message", []
    except OSError as exc:
        log.info("agent feed connection ended (%s)", type(exc).__name__)
        lost(type(exc).__name__)
    finally:
        conn.close()
