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
becomes active again.  Hold is relayed (RFC 3264 §8.4): an offer that puts a leg
on hold (a=sendonly / a=inactive, or the old c=0.0.0.0) makes the guard re-INVITE
the other leg with hold, and the resume with a resume.  Relays follow the *level*
(is the other side holding us?), never the event, so a session refresh is not
relayed and a relayed hold that comes back (a peer that mirrors it) changes no
level and stops there: no ping-pong.  Masking is unaffected: the customer's
audio reaches the agent only through the pipeline's port, re-wired after resume.

SIP INFO application/dtmf (a bare key): pjsua answers only application/dtmf-relay
INFOs; sip_dialog.c answers any other in-dialog request left unanswered by the
transaction callbacks with 500 (pjproject 2.15.1), and pjsua2 has no call to answer
a server transaction.  The guard answers it from ``onCallTsxState`` (which runs
before that check) with pjsip's own C calls, exported by the wheel's extension
module: 200 for a key, 400 for a malformed body (see :func:`_answer_request`).

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

import ctypes
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


#: tries per hold relay: pjsip takes one INVITE transaction at a time per dialog (RFC 3261 §14.1), so a
#: relay waits while the other leg has one in progress, and a 491 (both sides re-INVITEd at once) is retried
_HOLD_ATTEMPTS = 5
_HOLD_RETRY_S = 0.2  # pending transaction on the leg: try again soon
_HOLD_GLARE_S = 1.0  # refused (e.g. 491): RFC 3261 §14.1 asks for a wait of up to 2-4 s; 1 s keeps it short


def sdp_offers_hold(sdp: str) -> bool:
    """True when an SDP offer puts its sender's audio on hold (RFC 3264 §8.4).

    Hold: the first audio stream is a=sendonly or a=inactive (a media-level attribute overrides the
    session level), or its connection address is 0.0.0.0 (RFC 2543 style, still sent by some phones).
    A disabled audio stream (port 0) or no audio stream is not hold.
    """
    section = "session"
    direction = {"session": "", "audio": ""}
    address = {"session": "", "audio": ""}
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if section == "audio":
                break  # only the first audio stream counts
            fields = line[2:].split()
            section = "audio" if fields and fields[0] == "audio" else "other"
            if section == "audio" and len(fields) > 1 and fields[1] == "0":
                return False
        elif section != "other":
            if line in ("a=sendonly", "a=inactive", "a=sendrecv", "a=recvonly"):
                direction[section] = line[2:]
            elif line.startswith("c=") and line.split():
                address[section] = line.split()[-1]
    if section != "audio":
        return False
    held_direction = (direction["audio"] or direction["session"]) in ("sendonly", "inactive")
    return held_direction or (address["audio"] or address["session"]) == "0.0.0.0"


@dataclass
class _HoldRelay:
    """A hold (``want``) or resume to send on one leg because the other leg's remote asked for it."""

    want: bool
    since: float  # monotonic: when the other leg's offer arrived (relay time is measured from here)
    sent: float = 0.0  # monotonic: when the re-INVITE went out; 0 = not (yet) sent
    attempts: int = 0
    retry_at: float = 0.0


_pjsip_calls: Any = None  # None: not loaded yet; False: not available; else (endpt, create, send, dec_ref)


def _pjsip() -> tuple | None:
    """pjsip's C calls that answer a server transaction, from pjsua2's extension module (which exports
    them).  ``None`` when they cannot be found: such requests then keep pjsip's 500, which loses nothing
    (the key was taken before the answer)."""
    global _pjsip_calls
    if _pjsip_calls is None:
        try:
            lib = ctypes.CDLL(pj._pjsua2.__file__)  # already loaded: dlopen returns that same library
            endpt = lib.pjsua_get_pjsip_endpt
            endpt.restype, endpt.argtypes = ctypes.c_void_p, []
            create = lib.pjsip_endpt_create_response
            create.restype = ctypes.c_int
            create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                               ctypes.POINTER(ctypes.c_void_p)]
            send = lib.pjsip_tsx_send_msg
            send.restype, send.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]
            dec_ref = lib.pjsip_tx_data_dec_ref
            dec_ref.restype, dec_ref.argtypes = ctypes.c_int, [ctypes.c_void_p]
            _pjsip_calls = (endpt, create, send, dec_ref)
        except (OSError, AttributeError) as exc:
            log.warning("pjsip's response calls are not available (%s): SIP INFO application/dtmf will be "
                        "answered 500 by pjsip", type(exc).__name__)
            _pjsip_calls = False
    return _pjsip_calls or None


def _answer_request(tsx, rdata, code: int) -> bool:
    """Final response ``code`` (no body) on the server transaction of a pjsua2 ``onCallTsxState`` event.

    Only on the SIP thread, inside that callback, while the transaction is TRYING: pjsua does the same
    for the INFO bodies it knows (pjsua_call.c), then sip_dialog.c sends 500 if nothing answered.
    Returns False if no response could be sent.
    """
    calls = _pjsip()
    if calls is None or tsx.pjTransaction is None or rdata.pjRxData is None:
        return False
    endpt, create, send, dec_ref = calls
    tdata = ctypes.c_void_p()
    if create(endpt(), int(rdata.pjRxData), int(code), None, ctypes.byref(tdata)) != 0 or not tdata.value:
        return False
    if send(int(tsx.pjTransaction), tdata) != 0:
        dec_ref(tdata)  # pjsip_tsx_send_msg keeps the reference when it fails
        return False
    return True


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
    #: per leg: its remote has put us on hold (from its last offer); relays still to send, by leg
    remote_hold: dict = field(default_factory=lambda: {"customer": False, "agent": False})
    hold_relay: dict = field(default_factory=dict)
    wired: tuple = ()
    session: Any = None
    payment: dict = field(default_factory=dict)
    #: per leg: the audio stream is SRTP (True), plain RTP (False), not known yet (None)
    srtp: dict = field(default_factory=lambda: {"customer": None, "agent": None})
    #: what the PBX/CTI knows the call by (customer leg's Call-ID, a configured header): control API lookups
    correlation: dict = field(default_factory=dict)

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
        ev = prm.e
        if self.bridge is None or ev.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = ev.body.tsxState.tsx
        if tsx.method == "INFO" and tsx.role == pj.PJSIP_ROLE_UAS and tsx.state == pj.PJSIP_TSX_STATE_TRYING:
            self._rx_info(tsx, ev.body.tsxState.src.rdata)
        elif tsx.method == "INVITE" and tsx.role == pj.PJSIP_ROLE_UAC and tsx.state in (
                pj.PJSIP_TSX_STATE_COMPLETED, pj.PJSIP_TSX_STATE_TERMINATED):
            self.guard._reinvite_done(self.bridge, self.role, tsx.statusCode)

    def _rx_info(self, tsx, rdata) -> None:
        """An INFO arrived.  application/dtmf (a bare key): the key goes to the pipeline (customer leg) and
        the INFO is answered here, 200 or 400; everything else is left to pjsua.  Never logs the body."""
        head, _, body = rdata.wholeMsg.partition("\r\n\r\n")
        ctype = ""
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() in ("content-type", "c"):
                ctype = value.strip()
        if ctype.split(";")[0].strip().lower() != "application/dtmf":
            return  # dtmf-relay: pjsua answers it (200, or 400 if malformed); other bodies: pjsip's 500
        from ..sipinfo import SipInfoError, parse_info

        b = self.bridge
        code = 200
        try:
            if self.role == "customer" and b.pipeline is not None:
                b.pipeline.on_sip_info(ctype, body)  # masked for the agent and delivered like any key
            else:
                parse_info(ctype, body)  # agent-side keys are checked and answered, never relayed
        except SipInfoError as exc:  # its message never repeats the body
            code = 400
            log.warning("%s: ignored a SIP INFO body on the %s leg (%s)", b.id, self.role, exc)
        if not _answer_request(tsx, rdata, code):
            log.warning("%s: could not answer a SIP INFO on the %s leg (pjsip answers 500)", b.id, self.role)

    @guarded
    def onCallRxOffer(self, prm) -> None:
        """A re-INVITE or UPDATE offer from this leg's remote: note hold / resume for relaying.

        pjsua answers the offer itself (``prm`` unchanged); the relay runs from the main loop.  Answers
        to the guard's own relayed offers never come here, which keeps relays from echoing.
        """
        if self.bridge is not None:
            self.guard._queue(self.guard._remote_hold, self.bridge, self.role, sdp_offers_hold(prm.offer.wholeSdp),
                              time.monotonic())


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
        self._ports: list[PipelinePort] = []  # detached ports for reuse (main thread only)
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
            if not c.tls_ca:  # targets named per call (agent.from = header): check() could not refuse this
                log.warning("agent.tls_verify is on but sip.tls_ca is not set: every TLS agent target will fail "
                            "certificate verification")
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
            if b.hold_relay:
                self._sync_hold(b)
            if b.pipeline is not None and b.pipeline.session is not None:
                self._end_payment_masking(b)
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
                self._ports.clear()  # the clock still runs, but every port is detached (silent) by now
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
        from .control import correlation_ids  # pure Python; the control API finds calls by these

        b.correlation = correlation_ids(prm.rdata.wholeMsg, self.cfg.control_correlation_header)
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
                        media = leg.getAudioMedia(-1)
                        media.stopTransmit(b.port)
                        b.port.stopTransmit(media)
                except pj.Error:
                    pass
            # back to the pool, never destroyed mid-run (see port.py: destroying races the clock thread)
            b.port.detach()
            self._ports.append(b.port)
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
                b.port = self._ports.pop() if self._ports else PipelinePort(name=f"guard-port-{b.id}")
                b.port.attach(b.pipeline)
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

    # -- hold relay (main thread) ----------------------------------------------------------------------
    def _remote_hold(self, b: Bridge, role: str, held: bool, t_offer: float) -> None:
        """The remote of leg ``role`` offered hold (or resume): relay it to the other leg.

        Level-triggered: nothing happens unless the hold level of this remote changed, so session
        refreshes and codec changes are not relayed, and a relayed hold mirrored back by a peer stops here.
        """
        if b.state in ("ended", "ending") or b.remote_hold.get(role) == held:
            return
        b.remote_hold[role] = held
        other = "agent" if role == "customer" else "customer"
        b.hold_relay[other] = _HoldRelay(want=held, since=t_offer)
        log.info("%s: %s leg %s; relaying to the %s leg", b.id, role, "put on hold" if held else "resumed", other)
        self._sync_hold(b)

    def _sync_hold(self, b: Bridge) -> None:
        """Send the pending hold / resume re-INVITEs; retried from :meth:`poll` while a leg cannot take one."""
        if b.state != "connected":
            if b.state in ("ended", "ending"):
                b.hold_relay.clear()
            return  # the relay waits until both legs are up (it is kept, and sent then)
        now = time.monotonic()
        for role, relay in list(b.hold_relay.items()):
            if relay.sent or now < relay.retry_at:
                continue
            leg = b.customer if role == "customer" else b.agent
            op = pj.CallOpParam(True)
            try:
                if relay.want:
                    leg.setHold(op)
                else:
                    op.opt.flag |= pj.PJSUA_CALL_UNHOLD  # keeps pjsua's default flags
                    leg.reinvite(op)
            except pj.Error as exc:  # e.g. another INVITE transaction still in progress on that leg
                self._hold_retry(b, role, relay, now + _HOLD_RETRY_S, exc.reason)
                continue
            relay.sent = now

    def _hold_retry(self, b: Bridge, role: str, relay: _HoldRelay, at: float, why: str) -> None:
        relay.attempts += 1
        relay.sent = 0.0
        relay.retry_at = at
        if relay.attempts >= _HOLD_ATTEMPTS:
            b.hold_relay.pop(role, None)
            log.warning("%s: could not relay %s to the %s leg after %d tries (%s)", b.id,
                        "hold" if relay.want else "resume", role, relay.attempts, why)

    def _reinvite_done(self, b: Bridge, role: str, status: int) -> None:
        """A re-INVITE the guard sent on leg ``role`` got its final answer (SIP thread, in a callback)."""
        relay = b.hold_relay.get(role)
        if relay is None or not relay.sent:
            return  # not a relay (e.g. the first INVITE to the agent), or a superseded one
        now = time.monotonic()
        if 200 <= status < 300:
            del b.hold_relay[role]
            log.info("%s: %s relayed to the %s leg in %.1f ms", b.id, "hold" if relay.want else "resume", role,
                     (now - relay.since) * 1000)
        else:  # 491 glare, 488 ...: pjsua has reverted its own hold state; try again a little later
            self._hold_retry(b, role, relay, now + _HOLD_GLARE_S, f"answered {status}")

    # -- mask_mode "payment" (main thread) ---------------------------------------------------------------
    def _end_payment_masking(self, b: Bridge) -> None:
        """mask_mode "payment": once the payment session has finished, masking stops (the session leaves
        the pipeline; the agent hears the customer's keys unmasked again, the documented choice of this
        mode).  Not while the masker is still masking a key or has a mask span ahead of its output: the
        switch would cut the mask short and could let the tail of the last card key through."""
        pl = b.pipeline
        if pl.mask_mode != "payment" or not getattr(pl.session, "finished", False):
            return
        m = pl.masker
        try:
            out_pos = int(m.samples_in) - int(getattr(m, "delay_samples", 0))
            spans = getattr(m, "masked_spans", [])[-4:]  # masked spans are sorted by start: the latest last
            if getattr(m, "masking", False) or any(span.end > out_pos for span in spans):
                return
        except Exception as exc:  # noqa: BLE001 - read while the clock thread runs: try at the next poll
            log.debug("%s: masker state not readable yet (%s)", b.id, type(exc).__name__)
            return
        pl.detach_session()
        log.info("%s: payment %s: masking off until the next payment (mask_mode payment)", b.id,
                 getattr(b.session, "state", "finished"))

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
