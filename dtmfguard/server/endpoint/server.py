# SPDX-License-Identifier: GPL-2.0-or-later
"""The box endpoint: an aiohttp application in front of the worker processes of one box.

Why aiohttp: one well-kept library gives the asyncio HTTP server (thousands of idle SSE followers cost a
coroutine each, not a thread each), the streaming responses SSE needs, and the HTTP client that talks to
the workers, with TLS from the standard ``ssl`` module.  Starlette + uvicorn would need a third library
(an HTTP client) for the worker side, and an ASGI server's process model (signals, reloaders, workers)
that the supervisor already provides.

Design: :class:`BoxEndpoint` runs the application on its own thread and event loop inside the supervisor.
Each worker keeps a small local control API on loopback (:mod:`dtmfguard.server.control`); the box polls
each worker's events with one long poll (:mod:`.feeds`) and answers every follower from its own per-call
logs, and forwards list/start/cancel requests to the worker that holds the call.  The worker runs
start/cancel on the thread that owns the call (issue 18).

Routes: see :mod:`.openapi` (``GET /v1/openapi.json``).  Auth: :mod:`.auth`.  CORS: an ``Origin`` in
``[control] cors_origins`` gets ``Access-Control-Allow-Origin`` and its preflight (``OPTIONS``) a 204;
any other origin's preflight gets 403.  TLS: ``[control] tls_cert``/``tls_key``; an address beyond
loopback without TLS is refused unless ``[control] plain_http = true`` (behind a TLS-terminating proxy).
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
import time
from importlib import resources
from typing import Any, Callable, Optional

import aiohttp
from aiohttp import web

from ...security import is_loopback_host
from .auth import AuthError, Authority, Principal, agent_of_target
from .feeds import FeedStore, WorkerLink
from .handles import Handle, default_box_name, parse_handle
from .metrics import CONTENT_TYPE, BoxMetrics
from .openapi import document

__all__ = ["BoxEndpoint", "build_app", "EndpointError"]

log = logging.getLogger(__name__)

_MAX_BODY = 16 * 1024
_KEEPALIVE_S = 15.0
#: open feed streams per box; more get 503 (each costs a coroutine and a socket, not a thread)
MAX_FOLLOWERS = 10_000
BOX = web.AppKey("box", object)
_PANEL_FILES = {"": ("panel.html", "text/html"), "index.html": ("panel.html", "text/html"),
                "panel.js": ("panel.js", "text/javascript"), "panel.css": ("panel.css", "text/css"),
                "embed.js": ("embed.js", "text/javascript")}


class EndpointError(RuntimeError):
    """The endpoint cannot start (bad TLS files, address in use, plain HTTP beyond loopback)."""


def _json(status: int, payload: Any, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json",
                        headers={"Cache-Control": "no-store", **(headers or {})})


class _Box:
    """The application's state: links to the workers, the feed store, auth and metrics."""

    def __init__(self, *, box: str, links: list[WorkerLink], store: FeedStore, authority: Authority,
                 metrics: BoxMetrics, origins: list, peers: dict, health: Callable[[], dict] | None,
                 version: str, feed_max_s: float = 300.0):
        self.box, self.links, self.store, self.authority = box, links, store, authority
        self.metrics, self.origins, self.peers, self.health = metrics, set(origins), dict(peers), health
        self.version = version
        #: a feed stream ends after this long and the client resumes with Last-Event-ID: proxies that cut
        #: long responses do no harm, and a ticket-opened page proves it still holds a fresh ticket
        self.feed_max_s = float(feed_max_s)
        self.followers = 0
        self.stop = asyncio.Event()

    # -- credentials -----------------------------------------------------------------------------------
    def principal(self, request: web.Request) -> Principal:
        return self.authority.bearer(request.headers.get("Authorization", ""))

    # -- calls -----------------------------------------------------------------------------------------
    def link_for(self, handle: Handle) -> Optional[WorkerLink]:
        if 0 <= handle.worker < len(self.links):
            link = self.links[handle.worker]
            if link.boot == handle.boot:
                return link
        return None

    async def worker_calls(self, link: WorkerLink) -> list[dict]:
        try:
            status, data = await link.request("GET", "/calls", timeout=5)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            return []
        if status != 200 or not isinstance(data, dict) or link.boot is None:
            return []
        out = []
        for c in data.get("calls", []):
            handle = link.handle(str(c.get("id")))
            out.append({"handle": str(handle), "box": self.box, "worker": link.index, **c})
        return out

    def all_calls(self) -> list[dict]:
        """The live calls, from the box's own logs (fed by the workers' event polls): a list or a lookup
        costs the media processes nothing, however many desktops ask."""
        return [c.summary() for c in self.store.calls.values() if c.ended_at is None]

    async def call_agent(self, handle: Handle, link: WorkerLink) -> Optional[str]:
        """The call's agent target, or None when the worker has no such call (and never had)."""
        c = self.store.get(handle)
        if c is not None and c.agent:
            return c.agent
        for item in await self.worker_calls(link):  # newer than the last poll: ask the worker
            if item["id"] == handle.call:
                return item.get("agent") or ""
        return None


# -- middleware --------------------------------------------------------------------------------------
@web.middleware
async def _middleware(request: web.Request, handler):
    box: _Box = request.app[BOX]
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in box.origins
    if request.method == "OPTIONS":
        if not allowed:
            box.metrics.requests.labels(request.method, "403").inc()
            return _json(403, {"error": "origin not allowed (control.cors_origins)"})
        resp = web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-ID",
            "Access-Control-Max-Age": "600"})
    else:
        try:
            resp = await handler(request)
        except AuthError as exc:
            box.metrics.auth_failures.labels(reason=exc.reason).inc()
            headers = {"WWW-Authenticate": 'Bearer realm="dtmfguard"'} if exc.status == 401 else {}
            resp = _json(exc.status, {"error": "not authorised" if exc.status == 401 else "forbidden"}, headers)
        except web.HTTPException as exc:  # raised by handlers and the router (404, 405, 413, redirects)
            resp = web.Response(status=exc.status, body=exc.body, headers=exc.headers)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            resp = _json(503, {"error": "the worker holding this call did not answer"})
        except Exception as exc:  # noqa: BLE001 - say nothing specific; never stop serving
            log.error("control endpoint error (%s)", type(exc).__name__)
            resp = _json(500, {"error": "internal error"})
    if allowed and not resp.prepared:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
    if not isinstance(resp, web.StreamResponse) or not resp.prepared:
        box.metrics.requests.labels(request.method, str(resp.status)).inc()
    return resp


async def _body(request: web.Request) -> dict:
    if request.content_length and request.content_length > _MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=_MAX_BODY, actual_size=request.content_length)
    raw = await request.read()
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not valid JSON"}),
                                 content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                 content_type="application/json")
    return data


# -- handlers ----------------------------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    box: _Box = request.app[BOX]
    if box.health is None:
        return _json(200, {"ok": True, "box": box.box})
    data = await asyncio.get_running_loop().run_in_executor(None, box.health)
    # /health: monitors and load balancers read the status code (503 when not every worker is OK);
    # /workers: the same body, always 200, for dashboards that want the details of a degraded box
    code = 200 if data.get("ok") or request.path == "/workers" else 503
    return _json(code, {"box": box.box, **data})


async def metrics(request: web.Request) -> web.Response:
    box: _Box = request.app[BOX]
    box.metrics.calls_active.set(box.store.active())
    return web.Response(body=box.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return _json(200, document(request.app[BOX].version))


async def issue_token(request: web.Request) -> web.Response:
    box: _Box = request.app[BOX]
    if not box.principal(request).is_admin:
        raise AuthError("not-admin", 403)
    data = await _body(request)
    try:
        token, exp = box.authority.issue_token(data.get("agent"), data.get("ttl_s", 8 * 3600))
    except ValueError as exc:
        return _json(400, {"error": str(exc)})
    return _json(201, {"token": token, "agent": data["agent"], "expires": exp})


async def list_calls(request: web.Request) -> web.Response:
    box: _Box = request.app[BOX]
    who = box.principal(request)
    calls = [c for c in box.all_calls() if who.may_see(c["handle"], c.get("agent", ""))]
    want = request.query.get("correlation")
    if want is not None:
        calls = [c for c in calls if want == c["handle"] or want in (c.get("correlation") or {}).values()
                 or want in agent_of_target(c.get("agent", ""))]
    agent = request.query.get("agent")
    if agent is not None:
        calls = [c for c in calls if agent in agent_of_target(c.get("agent", ""))]
    return _json(200, {"box": box.box, "calls": calls})


async def _call_context(request: web.Request, principal: Optional[Principal] = None):
    """(box, handle, link, principal) for a call route; redirects to the owner box; 404s; 403s."""
    box: _Box = request.app[BOX]
    raw = request.match_info["handle"]
    handle = parse_handle(raw)
    if handle is None:
        raise web.HTTPNotFound(text=json.dumps({"error": f"not a call handle: {raw[:80]!r}"}),
                               content_type="application/json")
    if handle.box != box.box:
        peer = box.peers.get(handle.box)
        if peer is None:
            raise web.HTTPNotFound(text=json.dumps({"error": f"unknown box {handle.box!r}"}),
                                   content_type="application/json")
        raise web.HTTPTemporaryRedirect(peer.rstrip("/") + str(request.rel_url))
    who = principal or box.principal(request)
    link = box.link_for(handle)
    agent = None if link is None else await box.call_agent(handle, link)
    if agent is None and box.store.get(handle) is not None:
        agent = box.store.get(handle).agent
    if agent is None:
        raise web.HTTPNotFound(text=json.dumps({"error": f"no call {raw} on this box"}),
                               content_type="application/json")
    if not who.may_see(str(handle), agent):
        # the same answer as for a call that does not exist would hide nothing from an agent that
        # guesses handles; 403 tells the desktop its credential is the problem
        raise AuthError("other-agent", 403)
    return box, handle, link, who


async def get_call(request: web.Request) -> web.Response:
    box, handle, link, _ = await _call_context(request)
    c = box.store.get(handle)
    if c is not None:
        return _json(200, c.summary())
    for item in await box.worker_calls(link) if link is not None else []:
        if item["id"] == handle.call:
            return _json(200, item)
    raise web.HTTPNotFound(text=json.dumps({"error": f"no call {handle} on this box"}),
                           content_type="application/json")


async def start_payment(request: web.Request) -> web.Response:
    box, handle, link, who = await _call_context(request)
    data = await _body(request)
    if link is None:
        return _json(409, {"error": f"call {handle} has ended"})
    if not who.is_admin:
        if data.get("agent_id") not in (None, who.agent):
            raise AuthError("other-agent", 403)
        data["agent_id"] = who.agent
    status, payload = await link.request("POST", f"/calls/{handle.call}/payment", data)
    if isinstance(payload, dict) and "call" in payload:
        payload["call"] = str(handle)
    return _json(status, payload)


async def cancel_payment(request: web.Request) -> web.Response:
    box, handle, link, who = await _call_context(request)
    if link is None:
        return _json(409, {"error": f"call {handle} has ended"})
    status, payload = await link.request("POST", f"/calls/{handle.call}/payment/cancel")
    if isinstance(payload, dict) and "call" in payload:
        payload["call"] = str(handle)
    return _json(status, payload)


async def issue_ticket(request: web.Request) -> web.Response:
    box, handle, link, who = await _call_context(request)
    ticket, ttl = box.authority.issue_ticket(who, str(handle))
    return _json(201, {"ticket": ticket, "expires_in": ttl, "call": str(handle),
                       "feed_url": f"/v1/calls/{handle}/feed?ticket={ticket}",
                       "panel_url": f"/panel/#call={handle}&ticket={ticket}"})


def _sse(eid: Optional[int], kind: str, data: dict) -> bytes:
    head = f"id: {eid}\n" if eid is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def feed(request: web.Request) -> web.StreamResponse:
    box: _Box = request.app[BOX]
    ticket = request.query.get("ticket")
    principal = None
    if ticket is not None:
        handle = parse_handle(request.match_info["handle"])
        principal = box.authority.redeem_ticket(ticket, str(handle) if handle else "")
    box, handle, link, who = await _call_context(request, principal)
    raw_last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or "0"
    try:
        last = max(0, int(raw_last))
    except ValueError:
        return _json(400, {"error": "Last-Event-ID must be an event id (an integer)"})
    if box.followers >= MAX_FOLLOWERS:
        return _json(503, {"error": "too many open feeds on this box; retry later"}, {"Retry-After": "5"})
    log_ = box.store.get(handle) or box.store.ensure(handle)
    if log_.ended_at is not None and last >= log_.last_id:
        return web.Response(status=204)  # an EventSource stops reconnecting on 204
    resp = web.StreamResponse(status=200, headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    origin = request.headers.get("Origin")
    if origin in box.origins:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
    await resp.prepare(request)
    box.metrics.requests.labels("GET", "200").inc()
    box.metrics.followers.inc()
    box.followers += 1
    renew_at = 0.0
    until = time.monotonic() + box.feed_max_s
    try:
        await resp.write(b"retry: 1000\n\n")
        while not box.stop.is_set() and time.monotonic() < until:
            if ticket is not None and time.monotonic() >= renew_at:  # the page's reconnect credential
                fresh, ttl = box.authority.issue_ticket(who, str(handle))
                await resp.write(_sse(None, "ticket", {"ticket": fresh, "expires_in": ttl}))
                renew_at = time.monotonic() + ttl / 2
            wait = min(_KEEPALIVE_S, max(0.05, until - time.monotonic()))
            if ticket is not None:
                wait = min(wait, max(1.0, renew_at - time.monotonic()))
            events = await log_.wait_after(last, wait)
            if not events:
                if log_.ended_at is not None:
                    break
                await resp.write(b": keep-alive\n\n")
                continue
            await resp.write(b"".join(_sse(eid, kind, data) for eid, kind, data in events))
            last = events[-1][0]
            if events[-1][1] == "call_ended":
                break
        if box.stop.is_set():
            await resp.write(_sse(None, "stream_end", {"reason": "endpoint-stopping"}))
    except (ConnectionResetError, aiohttp.ClientConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        box.metrics.followers.dec()
        box.followers -= 1
    return resp


async def panel(request: web.Request) -> web.Response:
    box: _Box = request.app[BOX]
    name = request.match_info.get("name", "")
    if name not in _PANEL_FILES:
        raise web.HTTPNotFound()
    fname, ctype = _PANEL_FILES[name]
    body = resources.files("dtmfguard.web").joinpath(fname).read_bytes()
    ancestors = " ".join(["'self'", *sorted(box.origins)])
    return web.Response(body=body, content_type=ctype, charset="utf-8", headers={
        "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": f"default-src 'self'; frame-ancestors {ancestors}; base-uri 'none'"})


async def panel_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/panel/")


def build_app(box: _Box) -> web.Application:
    app = web.Application(middlewares=[_middleware], client_max_size=_MAX_BODY)
    app[BOX] = box
    r = app.router
    r.add_get("/health", health)
    r.add_get("/workers", health)
    r.add_get("/metrics", metrics)
    r.add_get("/v1/openapi.json", openapi)
    r.add_post("/v1/tokens", issue_token)
    r.add_get("/v1/calls", list_calls)
    r.add_get("/v1/calls/{handle}", get_call)
    r.add_post("/v1/calls/{handle}/payment", start_payment)
    r.add_delete("/v1/calls/{handle}/payment", cancel_payment)
    r.add_post("/v1/calls/{handle}/payment/cancel", cancel_payment)
    r.add_post("/v1/calls/{handle}/tickets", issue_ticket)
    r.add_get("/v1/calls/{handle}/feed", feed)
    r.add_get("/panel", panel_redirect)
    r.add_get("/panel/", panel)
    r.add_get("/panel/{name}", panel)
    return app


class BoxEndpoint:
    """The box endpoint on its own thread and event loop.  :meth:`start` binds (raising
    :class:`EndpointError`) and returns once it listens; :meth:`stop` ends every stream and closes."""

    def __init__(self, host: str, port: int, admin_token: str, worker_urls: list[str], *, box: str = "",
                 origins: list | None = None, peers: dict | None = None, tls_cert: str = "", tls_key: str = "",
                 plain_http: bool = False, health: Callable[[], dict] | None = None,
                 workers_info: Callable[[], list] | None = None, worker_token: str | None = None,
                 feed_max_s: float = 300.0):
        from ... import __version__

        if not is_loopback_host(host) and not tls_cert and not plain_http:
            raise EndpointError(f"the control endpoint on {host} (beyond loopback) needs TLS: set control.tls_cert "
                                "and control.tls_key, or control.plain_http = true behind a TLS proxy")
        try:
            self.authority = Authority(admin_token)
        except ValueError as exc:
            raise EndpointError(str(exc)) from None
        self.ssl: Optional[ssl.SSLContext] = None
        if tls_cert:
            try:
                self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
                self.ssl.load_cert_chain(tls_cert, tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise EndpointError(f"cannot load control.tls_cert/tls_key ({type(exc).__name__}: "
                                    f"{getattr(exc, 'strerror', None) or exc})") from None
        self.host, self.port = host, port
        self.box_name = box or default_box_name()
        self.worker_urls = list(worker_urls)
        self.worker_token = worker_token or admin_token
        self.origins, self.peers = list(origins or []), dict(peers or {})
        self.health, self.metrics = health, BoxMetrics(workers_info)
        self.version = __version__
        self.feed_max_s = feed_max_s
        self.address: tuple = ()
        self.box: Optional[_Box] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._started = threading.Event()
        self._error: Optional[BaseException] = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.address[0]}:{self.address[1]}"

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._run, name="box-endpoint", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise EndpointError("the control endpoint did not start in time")
        if self._error is not None:
            err = self._error
            raise EndpointError(f"cannot serve the control endpoint on {self.host}:{self.port} "
                                f"({getattr(err, 'strerror', None) or type(err).__name__})")
        log.info("control endpoint on %s (box %s, %d worker(s))", self.url, self.box_name, len(self.worker_urls))

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            if not self._started.is_set():
                self._error = exc
                self._started.set()
            else:
                log.error("control endpoint stopped (%s)", type(exc).__name__)
        finally:
            loop.close()

    async def _main(self) -> None:
        store = FeedStore()
        m = self.metrics
        links = [WorkerLink(i, url, self.worker_token, self.box_name, store,
                            on_poll=lambda link, data: m.worker_poll(link.index, link.boot or "", data))
                 for i, url in enumerate(self.worker_urls)]
        box = self.box = _Box(box=self.box_name, links=links, store=store, authority=self.authority, metrics=m,
                              origins=self.origins, peers=self.peers, health=self.health, version=self.version,
                              feed_max_s=self.feed_max_s)
        app = build_app(box)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        connector = aiohttp.TCPConnector(limit=64, limit_per_host=32)
        async with aiohttp.ClientSession(connector=connector) as session:
            for link in links:
                link.session = session
            try:
                site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl, backlog=1024)
                await site.start()
                sock = site._server.sockets[0]  # the bound address (port 0 -> the port chosen)
                self.address = sock.getsockname()[:2]
                self._started.set()
                pollers = [asyncio.create_task(link.run(box.stop)) for link in links]
                await box.stop.wait()
                for t in pollers:
                    t.cancel()
                await asyncio.gather(*pollers, return_exceptions=True)
            finally:
                await runner.cleanup()

    def stop(self) -> None:
        if self._loop is None or self.box is None or self._thread is None:
            return
        try:
            self._loop.call_soon_threadsafe(self.box.stop.set)
        except RuntimeError:
            return  # the loop is gone already
        self._thread.join(10)
