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
GET    /calls                         calls on this worker and their state
POST   /calls/<id>/payment            start a payment: {"amount": 1999, "currency": "GBP",
                                      "reference": "INV-1", "agent_id": "a7"} (amount in minor units)
POST   /calls/<id>/payment/cancel     cancel it (also DELETE /calls/<id>/payment)
GET    /calls/<id>/feed               text/event-stream: the masked agent feed (field progress as
                                      counts, brand and last 4 only; never digits), and card-run
                                      alerts (``card_outside_secure_mode``: call, agent, time)
POST   /calls/<id>/secure             secure mode on without a payment (mask_mode "secure": keys are
                                      no longer relayed to the agent leg); DELETE: off again
GET    /calls/<id>/alerts             the call's card-run alerts (no digits)
====== ============================== =====================================================
"""
from __future__ import annotations

import hmac
import http.client
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ControlServer"]

log = logging.getLogger(__name__)

_CALL_RE = re.compile(r"^/calls/([A-Za-z0-9_-]{1,32})(/payment(/cancel)?|/feed|/secure|/alerts)?/?$")
_MAX_BODY = 16 * 1024
_FINISHED = ("completed", "declined", "abandoned", "timed_out", "failed_validation", "refused",
             "gateway_unavailable", "gateway_error", "error")


class _Handler(BaseHTTPRequestHandler):
    server_version = "dtmfguard-control"
    protocol_version = "HTTP/1.1"

    # quiet: the default handler prints every request to stderr
    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("control: " + fmt, *args)

    @property
    def guard(self):
        return self.server.guard  # type: ignore[attr-defined]

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
                self._send(200 if health.get("ok") else 503, health)  # monitors read the status code
                return
            if not self._authorised():
                return
            if self.path.rstrip("/") == "/calls":
                self._send(200, {"calls": self.guard.list_calls()})
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
        except Exception as exc:  # noqa: BLE001
            log.error("control API error (%s)", type(exc).__name__)
            self._safe_500()

    def _safe_500(self) -> None:
        try:
            self._send(500, {"error": "internal error"})
        except Exception:  # noqa: BLE001
            pass

    def _bridge(self, call_id: str):
        b = self.guard.get_bridge(call_id)
        if b is None:
            self._send(404, {"error": f"no call {call_id} on this worker"})
        return b

    def _start_payment(self, call_id: str) -> None:
        data = self._json_body()
        if data is None:
            return
        b = self._bridge(call_id)
        if b is None:
            return
        if b.state != "connected" or b.pipeline is None:
            self._send(409, {"error": f"call {call_id} is not connected (state {b.state})"})
            return
        if b.session is not None and getattr(b.session, "state", "") not in _FINISHED:
            self._send(409, {"error": f"call {call_id} already has a payment in progress"})
            return
        allowed = {"amount", "currency", "reference", "agent_id", "fields"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            self._send(400, {"error": f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"})
            return
        factory = self.guard.session_factory
        if factory is None:
            self._send(503, {"error": "no payment gateway configured"})
            return
        try:
            session = factory(call_id=call_id, **data)
        except (TypeError, ValueError) as exc:
            if type(exc).__module__.startswith("dtmfguard.capture.gateways"):  # e.g. no vault key
                self._send(503, {"error": f"payment gateway unavailable: {str(exc).splitlines()[0][:200]}"})
            else:
                self._send(400, {"error": str(exc).split("\n")[0][:200]})
            return
        except Exception as exc:  # noqa: BLE001 - no card data exists yet; say which kind of failure
            log.error("%s: payment gateway could not be loaded (%s)", call_id, type(exc).__name__)
            self._send(503, {"error": f"payment gateway unavailable ({type(exc).__name__})"})
            return
        attach = getattr(self.guard, "attach_payment", None)  # the Guard measures the secure-mode switch
        if attach is not None:
            attach(b, session)
        else:
            b.session = session
            b.pipeline.attach_session(session)
        log.info("%s: payment session started (%s)", call_id, getattr(session, "session_id", "?"))
        self._send(201, {"call": call_id, "session": getattr(session, "session_id", None),
                         "state": getattr(session, "state", None)})

    def _secure(self, call_id: str, on: bool) -> None:
        b = self._bridge(call_id)
        if b is None:
            return
        if not self.guard.set_secure(b, on, "api"):
            self._send(409, {"error": f"call {call_id} is not in mask_mode 'secure' or has no media yet"})
            return
        self._send(200, {"call": call_id, "secure": bool(b.pipeline.secure)})

    def _cancel(self, call_id: str) -> None:
        b = self._bridge(call_id)
        if b is None:
            return
        if b.session is None:
            self._send(409, {"error": f"call {call_id} has no payment session"})
            return
        b.session.cancel()
        log.info("%s: payment session cancelled by the control API", call_id)
        self._send(200, {"call": call_id, "state": getattr(b.session, "state", None)})

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


class ControlServer:
    """The control API on its own daemon thread; :meth:`stop` shuts it down."""

    def __init__(self, guard, host: str = "127.0.0.1", port: int = 8070, token: str = ""):
        if not token:
            raise ValueError("the control API needs a bearer token")
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.guard = guard  # type: ignore[attr-defined]
        self.httpd.token = token  # type: ignore[attr-defined]
        self.httpd.stopping = threading.Event()  # type: ignore[attr-defined]
        self.address = self.httpd.server_address
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="control-api", daemon=True)

    def start(self) -> None:
        self._thread.start()
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
