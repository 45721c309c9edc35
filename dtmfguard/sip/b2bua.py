# SPDX-License-Identifier: GPL-2.0-or-later
"""The back-to-back user agent: customer leg in, agent leg out, masked audio between.

Call flow (one *bridge* = one customer call + one agent call)::

    customer --INVITE--> guard                       (onIncomingCall: 180 is sent once the agent rings)
                         guard --INVITE--> agent     (target: static, Request-URI template or header)
                         guard <--200----- agent
    customer <--200----- guard                       (answered only when the agent answered)
    customer audio -> PipelinePort(detector + masker) -> agent;  agent audio -> customer, untouched

Either leg's end ends the other (BYE, CANCEL); an agent that is busy, does not
answer within ``answer_timeout_s`` or fails gives the customer 486 / 480 / 503.
Re-INVITEs (hold, codec change) on either leg re-wire the bridge when media
becomes active again; hold is not relayed to the other leg.

Threads: ``threadCnt = 0``, so SIP callbacks run inside :meth:`Guard.poll` on the
main thread; every pjsua2 action they trigger is queued and run right after
``libHandleEvents`` returns (pjsua2 advises against deleting calls inside
callbacks).  RFC 4733 callbacks run on the media thread and only append to the
pipeline's queue.  Frame callbacks (clock thread) never call pjsua2.  Every
callback is wrapped: no Python exception reaches pjsua2.

Logging: call state changes, counts and reasons; never digits.  RFC 4733 and
SIP INFO digits are not forwarded to the agent leg (the bridge carries PCM
only, and the guard never sends DTMF toward the agent).
"""
from __future__ import annotations

import functools
import itertools
import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import pjsua2 as pj

from ..pipeline import CallPipeline
from . import sched
from .config import ConfigError, GuardConfig, agent_target, uses_tls
from .dialogs import DialogBook
from .endpoint import EndpointSettings, account_config, create_endpoint, destroy_endpoint, media_is_srtp, set_srtp
from .port import PipelinePort

__all__ = ["Guard", "Bridge", "MAX_BRIDGES"]

log = logging.getLogger(__name__)

#: pjsua2-python is compiled with 4 calls per process: 2 bridged calls (notes/pjsua2.md).
MAX_BRIDGES = 2

_ids = itertools.count(1)


def guarded(fn: Callable) -> Callable:
    """Run a pjsua2 callback body; log and swallow any exception (pjsua2 must never see one)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - see docstring
            log.error("callback %s failed (%s)", fn.__name__, type(exc).__name__)
            return None

    return wrapper


def _final_code_for_customer(agent_status: int, timed_out: bool) -> int:
    if timed_out or agent_status in (408, 480, 487):
        return 480  # Temporarily Unavailable: no answer
    if agent_status in (486, 600, 603):
        return 486  # Busy Here
    if agent_status in (404, 484, 604):
        return 404
    return 503


@dataclass
class Bridge:
    """One customer <-> agent pair and its media pipeline.  Fields are read by the control API."""

    id: str
    customer: Any
    agent: Any = None
    target: str = ""
    pipeline: CallPipeline | None = None
    port: Any = None
    state: str = "incoming"  # incoming -> calling-agent -> ringing -> connected -> ended
    created: float = field(default_factory=time.time)  # wall clock, for display only
    #: monotonic: timeouts must not jump with the wall clock (NTP steps, manual changes)
    created_mono: float = field(default_factory=time.monotonic)
    connected_at: float | None = None
    ended_at: float | None = None
    reason: str = ""
    agent_status: int = 0
    timed_out: bool = False
    customer_answered: bool = False
    customer_gone: bool = False
    agent_gone: bool = False
    wired: tuple = ()
    session: Any = None
    payment: dict = field(default_factory=dict)
    #: per leg: the audio stream is SRTP (True), plain RTP (False), not known yet (None)
    srtp: dict = field(default_factory=lambda: {"customer": None, "agent": None})

    def summary(self) -> dict:
        stats = self.pipeline.snapshot() if self.pipeline is not None else {}
        port = dict(self.port.stats) if self.port is not None else {}
        return {"id": self.id, "state": self.state, "agent": self.target, "created": self.created,
                "connected_at": self.connected_at, "ended_at": self.ended_at, "reason": self.reason,
                "masking": self.pipeline.mask_mode if self.pipeline else None, "srtp": dict(self.srtp),
                "payment": getattr(self.session, "state", None) if self.session is not None else None,
                "media": {"frames": stats.get("frames", 0), "errors": stats.get("errors", 0) + port.get("errors", 0),
                          "digits": stats.get("digits", 0), "missing_frames": port.get("missing", 0)}}


class _Account(pj.Account):
    def __init__(self, guard: Guard):
        super().__init__()
        self.guard = guard

    @guarded
    def onIncomingCall(self, prm) -> None:
        self.guard._incoming(prm, self)


class _Leg(pj.Call):
    def __init__(self, guard: Guard, acc, role: str, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.guard = guard
        self.role = role
        self.bridge: Bridge | None = None

    @guarded
    def onCallState(self, prm) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED and self.bridge is not None:
            self.guard.dialogs.ended(self.bridge.id, self.role)  # nothing left for the supervisor to end
        self.guard._leg_state(self, info.state, info.lastStatusCode, info.stateText)

    @guarded
    def onCallMediaState(self, prm) -> None:
        self.guard._queue(self.guard._rewire, self.bridge)

    @guarded
    def onDtmfEvent(self, prm) -> None:  # media thread (RFC 4733) or SIP thread (INFO): only enqueue
        b = self.bridge
        if self.role != "customer" or b is None or b.pipeline is None:
            return  # agent-side DTMF is not relayed anywhere
        if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO:
            b.pipeline.on_sip_info_digit(prm.digit, prm.duration)
        else:
            b.pipeline.on_rfc4733(prm.digit, prm.timestamp, prm.duration, prm.flags)

    @guarded
    def onCallTsxState(self, prm) -> None:
        if self.bridge is not None:  # dialog identifiers for the supervisor (never raises, no bodies kept)
            self.guard.dialogs.tsx_event(self.bridge.id, self.role, prm.e)
        # application/dtmf INFO bodies: pjsua parses only application/dtmf-relay itself
        if self.role != "customer" or self.bridge is None or self.bridge.pipeline is None:
            return
        ev = prm.e
        if ev.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = ev.body.tsxState.tsx
        if tsx.method != "INFO" or tsx.role != pj.PJSIP_ROLE_UAS or tsx.state != pj.PJSIP_TSX_STATE_TRYING:
            return
        msg = ev.body.tsxState.src.rdata.wholeMsg
        head, _, body = msg.partition("\r\n\r\n")
        ctype = ""
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() in ("content-type", "c"):
                ctype = value.strip()
        if ctype.split(";")[0].strip().lower() != "application/dtmf":
            return
        from ..sipinfo import SipInfoError

        try:  # the response is pjsua's own (the pjsua2 API gives no handle on a UAS INFO transaction)
            self.bridge.pipeline.on_sip_info(ctype, body)
        except SipInfoError as exc:
            log.warning("%s: ignored a SIP INFO body (%s)", self.bridge.id, exc)


class Guard:
    """Owns the Endpoint, the account and the bridges of one worker process."""

    def __init__(self, cfg: GuardConfig, *, pipeline_factory: Callable[[str], CallPipeline] | None = None,
                 session_factory: Callable[..., Any] | None = None, _direct_bridge_for_benchmark: bool = False,
                 _jitter_ms_for_benchmark: int = -1):
        self.cfg = cfg
        # Baseline for benchmarks/calls.py only (customer -> agent without the pipeline, i.e. UNMASKED);
        # deliberately not reachable from the CLI or the configuration.
        self._direct = _direct_bridge_for_benchmark
        self._jitter_ms = _jitter_ms_for_benchmark
        self.pipeline_factory = pipeline_factory or self._default_pipeline
        self.session_factory = session_factory
        self.ep: pj.Endpoint | None = None
        self.acc: _Account | None = None  # customer leg (incoming calls)
        self.agent_acc: _Account | None = None  # agent leg
        self.agent_tls_acc: _Account | None = None  # agent leg over the verifying TLS transport
        self.bridges: dict[str, Bridge] = {}
        self._lock = threading.Lock()  # bridges dict: main loop vs control API thread
        self._actions: deque = deque()
        self._ended: list[Bridge] = []
        self.counters = {"calls": 0, "refused": 0, "connected": 0, "failed": 0, "media_errors": 0}
        # supervised workers record their dialogs so the supervisor can end them if this process dies
        self.dialogs = DialogBook.from_env(cfg.sip_host, cfg.sip_port)
        self.started = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        c = self.cfg
        try:
            if sched.configure(c.media_priority):
                # the clock thread needs the GIL for its callbacks: a thread holding it is asked to let go
                # after the switch interval (5 ms by default: a quarter of a frame)
                sys.setswitchinterval(0.001)
        except RuntimeError as exc:
            raise ConfigError(str(exc)) from None
        s = EndpointSettings(host=c.sip_host, port=c.sip_port, transports=tuple(c.transports),
                             tls_port=c.tls_port, tls_cert=c.tls_cert, tls_key=c.tls_key, tls_ca=c.tls_ca,
                             rtp_port=c.rtp_port, rtp_range=c.rtp_range, log_level=c.log_level,
                             jitter_ms=self._jitter_ms)
        known = c.agent_known_target()
        s.verify_tls_transport = "tls" in c.transports and c.agent_tls_verify and (not known or uses_tls(known))
        self.ep = create_endpoint(s)
        self._create_accounts(s)
        log.info("guard listening on %s:%d (%s), RTP %d-%d", c.sip_host, c.sip_port, "/".join(c.transports),
                 c.rtp_port, c.rtp_port + c.rtp_range)

    def _create_accounts(self, s: EndpointSettings) -> None:
        """One account per leg, because SRTP policy is an account setting in pjsua (endpoint.set_srtp).

        Same identity on both; the customer account comes first and ranks higher, so pjsua's matching of
        incoming INVITEs (ties go to the first account) always picks it.  Agent TLS goes through the
        verifying TLS transport when there is one (agent.tls_verify).
        """
        c = self.cfg
        require_tls = c.srtp_signaling == "tls"

        def make(srtp: str, priority: int, transport_id=None) -> _Account:
            acfg = set_srtp(account_config(s, "guard", session_expires_s=90), srtp, require_tls)
            acfg.priority = priority
            if transport_id is not None:
                acfg.sipConfig.transportId = transport_id
            acc = _Account(self)
            acc.create(acfg)
            return acc

        self.acc = make(c.customer_srtp, 10)
        self.acc.setDefault()
        self.agent_acc = make(c.agent_srtp, 0)
        self.agent_tls_acc = None
        if self.ep.dtmfguard_verify_tls_id is not None:
            self.agent_tls_acc = make(c.agent_srtp, 0, self.ep.dtmfguard_verify_tls_id)
        log.info("media encryption: customer leg SRTP %s, agent leg SRTP %s; agent TLS certificate %s",
                 c.customer_srtp, c.agent_srtp, "verified" if self.agent_tls_acc is not None else "not verified")

    def poll(self, ms: int = 20) -> None:
        """One main-loop step: SIP events, queued actions, timeouts, clean-up."""
        self.ep.libHandleEvents(ms)
        while self._actions:
            fn, args = self._actions.popleft()
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - one call's failure must not stop the worker
                log.error("action %s failed (%s)", getattr(fn, "__name__", fn), type(exc).__name__)
        now = time.monotonic()
        for b in list(self.bridges.values()):
            if b.state in ("calling-agent", "ringing") and now - b.created_mono > self.cfg.answer_timeout_s:
                b.timed_out = True
                self._hangup(b.agent)
            if b.session is not None and hasattr(b.session, "poll"):
                try:
                    b.session.poll()
                except Exception as exc:  # noqa: BLE001
                    log.error("%s: payment session poll failed (%s)", b.id, type(exc).__name__)
        self._reap()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll(20)

    def shutdown(self) -> None:
        if self.ep is None:
            return

        def release():
            with self._lock:
                for b in list(self.bridges.values()) + self._ended:
                    self._drop_media(b)
                    b.customer = b.agent = None
                self.bridges.clear()
                self._ended.clear()
            self.acc = self.agent_acc = self.agent_tls_acc = None

        destroy_endpoint(self.ep, release)
        self.ep = None
        self.dialogs.clear()

    # -- call control (main thread) --------------------------------------------------------------------
    def _queue(self, fn: Callable, *args) -> None:
        self._actions.append((fn, args))

    def _default_pipeline(self, name: str) -> CallPipeline:
        return CallPipeline(8000, mask_mode=self.cfg.mask_mode, masker_options={"mask": self.cfg.mask}, name=name)

    def _incoming(self, prm, acc=None) -> None:
        self.counters["calls"] += 1
        call = _Leg(self, acc or self.acc, "customer", prm.callId)
        bid = f"c{next(_ids)}"
        b = Bridge(bid, call)
        call.bridge = b
        if acc is not None and acc is not self.acc:
            # only pjsua's account matching could bring a call here (it never should: see _create_accounts);
            # an agent-side account has the agent leg's SRTP policy, not the customer's
            log.warning("%s: refused, incoming call matched an agent-side account", bid)
            self._refuse(b, 403, "wrong-account")
            return
        self.dialogs.incoming(bid, prm.rdata.wholeMsg, prm.rdata.srcAddress)
        active = sum(1 for x in self.bridges.values() if x.state != "ended")
        if active >= MAX_BRIDGES:
            log.warning("%s: refused, this worker already bridges %d calls", bid, active)
            self._refuse(b, 503, "busy-worker")
            return
        try:
            b.target = agent_target(self.cfg, prm.rdata.wholeMsg)
        except ConfigError as exc:
            log.warning("%s: no agent target (%s)", bid, exc)
            self._refuse(b, 404, "no-target")
            return
        with self._lock:
            self.bridges[bid] = b
        log.info("%s: incoming call, calling agent %s", bid, b.target)
        self._queue(self._call_agent, b)

    def _refuse(self, b: Bridge, code: int, reason: str) -> None:
        """Final answer without an agent leg; the bridge ends when the customer leg is DISCONNECTED (the
        Call object must outlive that callback, so it is not dropped here)."""
        self.counters["refused"] += 1
        b.state = "refusing"
        b.reason = reason
        self._queue(self._answer, b, code)

    def _answer(self, b: Bridge, code: int) -> None:
        if b.customer is None or b.customer_gone:
            return
        op = pj.CallOpParam()
        op.statusCode = code
        b.customer.answer(op)
        if code == 200:
            b.customer_answered = True

    def _call_agent(self, b: Bridge) -> None:
        if b.customer_gone:
            return
        try:
            b.pipeline = self.pipeline_factory(b.id)
        except Exception as exc:  # noqa: BLE001 - no pipeline, no call: never bridge unmasked
            log.error("%s: media pipeline could not be created (%s); refusing the call", b.id, type(exc).__name__)
            b.reason = "pipeline-failed"  # before the answer: its DISCONNECTED callback runs inside it
            self._answer(b, 503)
            return
        tls = self.agent_tls_acc is not None and uses_tls(b.target)
        agent = _Leg(self, self.agent_tls_acc if tls else self.agent_acc, "agent")
        agent.bridge = b
        b.agent = agent
        b.state = "calling-agent"
        op = pj.CallOpParam(True)
        op.txOption.headers.append(_header("X-Dtmfguard-Call", b.id))
        try:
            agent.makeCall(b.target, op)
        except pj.Error as exc:
            log.warning("%s: agent call failed to start (%s)", b.id, exc.reason)
            b.agent_gone = True
            b.reason = "agent-start-failed"
            self._answer(b, 503)

    def _hangup(self, call) -> None:
        if call is None:
            return
        try:
            if call.isActive():
                call.hangup(pj.CallOpParam())
        except pj.Error:
            pass

    def _leg_state(self, leg: _Leg, state: int, status: int, text: str) -> None:
        b = leg.bridge
        if b is None:
            return
        log.info("%s: %s leg %s (%d)", b.id, leg.role, text, status)
        if leg.role == "agent":
            if state == pj.PJSIP_INV_STATE_EARLY and b.state == "calling-agent":
                b.state = "ringing"
                self._queue(self._answer, b, 180)
            elif state == pj.PJSIP_INV_STATE_CONFIRMED:
                b.state = "answering-customer"
                self._queue(self._answer, b, 200)
            elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
                b.agent_gone = True
                b.agent_status = status
                if not b.customer_gone:
                    if b.customer_answered:
                        b.reason = b.reason or "agent-hangup"
                        self._queue(self._hangup, b.customer)
                    else:
                        code = _final_code_for_customer(status, b.timed_out)
                        # e.g. 488 (SRTP policy), 503 with a TLS certificate reason; never a digit in it
                        log.warning("%s: agent leg failed: %d %s", b.id, status, _last_reason(leg))
                        b.reason = b.reason or f"agent-{code}"
                        self.counters["failed"] += 1
                        self._queue(self._answer, b, code)
                self._maybe_end(b)
        else:
            if state == pj.PJSIP_INV_STATE_CONFIRMED:
                b.state = "connected"
                b.connected_at = time.time()
                self.counters["connected"] += 1
            elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
                b.customer_gone = True
                b.reason = b.reason or ("customer-hangup" if b.customer_answered else "customer-cancel")
                if not b.agent_gone:
                    self._queue(self._hangup, b.agent)
                self._maybe_end(b)

    def _maybe_end(self, b: Bridge) -> None:
        if b.customer_gone and (b.agent_gone or b.agent is None):
            if b.state != "ended":
                b.state = "ended"
                b.ended_at = time.time()
                log.info("%s: ended (%s)", b.id, b.reason)
                self._queue(self._finish, b)
        elif b.customer_gone or b.agent_gone:
            b.state = "ending"

    def _finish(self, b: Bridge) -> None:
        if b.session is not None and not getattr(b.session, "finished", True):
            try:
                b.session.cancel()
            except Exception:  # noqa: BLE001
                pass
        self._drop_media(b)
        with self._lock:
            self._ended.append(b)

    def _drop_media(self, b: Bridge) -> None:
        if b.port is not None:
            for leg in (b.customer, b.agent):
                try:
                    if leg is not None and leg.hasMedia():
                        leg.getAudioMedia(-1).stopTransmit(b.port)
                except pj.Error:
                    pass
            b.port = None
        if b.pipeline is not None:
            self.counters["media_errors"] += b.pipeline.stats["errors"]
        b.wired = ()

    def _reap(self) -> None:
        """Drop ended bridges one loop after they ended (never inside a callback)."""
        if not self._ended:
            return
        with self._lock:
            done, self._ended = self._ended, []
            for b in done:
                self.bridges.pop(b.id, None)
        for b in done:
            b.customer = b.agent = None

    def _media_active(self, leg) -> bool:
        if leg is None:
            return False
        info = leg.getInfo()
        return any(m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE for m in info.media)

    def _rewire(self, b: Bridge | None) -> None:
        """customer -> port(pipeline) -> agent; agent -> customer.  Idempotent; runs on media changes."""
        if b is None or b.state in ("ended", "ending") or (b.pipeline is None and not self._direct):
            return
        if not (self._media_active(b.customer) and self._media_active(b.agent)):
            return
        cust = b.customer.getAudioMedia(-1)
        agent = b.agent.getAudioMedia(-1)
        key = (cust.getPortId(), agent.getPortId())
        # No "already wired" shortcut: a re-INVITE (hold/resume, codec change) recreates the streams and
        # pjsua drops their bridge connections even when the slot numbers stay; connecting twice is harmless.
        if self._direct:
            cust.startTransmit(agent)
            agent.startTransmit(cust)
            b.wired = key
            return
        if b.port is None:
            try:
                b.port = PipelinePort(b.pipeline, name=b.id)
            except Exception as exc:  # noqa: BLE001 - fail closed: no port, the agent hears nothing of the customer
                log.error("%s: media port failed (%s); customer audio is not bridged", b.id, type(exc).__name__)
                agent.startTransmit(cust)
                return
        cust.startTransmit(b.port)
        b.port.startTransmit(agent)
        agent.startTransmit(cust)
        b.srtp = {"customer": media_is_srtp(b.customer), "agent": media_is_srtp(b.agent)}
        if b.wired != key:
            log.info("%s: media bridged (customer -> guard port -> agent; agent -> customer); SRTP customer %s, "
                     "agent %s", b.id, b.srtp["customer"], b.srtp["agent"])
        else:
            log.info("%s: media re-bridged after a media update", b.id)
        b.wired = key

    # -- control API (any thread; no pjsua2 calls) ----------------------------------------------------
    def list_calls(self) -> list[dict]:
        with self._lock:
            return [b.summary() for b in self.bridges.values()]

    def get_bridge(self, call_id: str) -> Bridge | None:
        with self._lock:
            return self.bridges.get(call_id)

    def health(self) -> dict:
        with self._lock:
            active = sum(1 for b in self.bridges.values() if b.state != "ended")
            media_errors = self.counters["media_errors"] + sum(
                b.pipeline.stats["errors"] for b in self.bridges.values() if b.pipeline is not None)
        return {"ok": self.ep is not None, "active_calls": active, "capacity": MAX_BRIDGES,
                "uptime_s": round(time.monotonic() - self.started, 1), **self.counters, "media_errors": media_errors}


def _last_reason(call) -> str:
    try:
        return str(call.getInfo().lastReason)[:120]
    except pj.Error:
        return ""


def _header(name: str, value: str):
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h
