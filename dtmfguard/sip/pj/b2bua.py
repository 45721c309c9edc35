# SPDX-License-Identifier: GPL-2.0-or-later
"""The back-to-back user agent: customer leg in, agent leg out, masked audio between.

Call flow (one *bridge* = one customer call + one agent call)::

    customer --INVITE--> guard                       (onIncomingCall: 180 is sent once the agent rings)
                         guard --INVITE--> agent     (target: static, Request-URI template or header)
                         guard <--200----- agent
    customer <--200----- guard                       (answered only when the agent answered)
    customer audio -> PipelinePort(detector + masker) -> agent;  agent audio -> customer, untouched

Either leg's end ends the other (BYE, CANCEL); an agent that is busy, does not
answer within ``answer_timeout_s`` or fails gives the customer the agent side's answer (486, 488, 603 ...),
480 for no answer, 500 for an agent-side 5xx; 503 only for the guard's own capacity.
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

Logging: call state changes, counts and reasons; never digits.

Secure mode (``mask_mode = "secure"``, the default): the masker runs all call
long; outside a payment session (and outside secure mode switched on by the
control API, the agent side's SIP INFO or the agent phone's key sequence) each
key the customer pressed is regenerated once on the agent leg (RFC 4733, see
:mod:`.relay_dtmf`), so an IVR behind the guard works.  The clock thread decides
(:mod:`dtmfguard.media.keyrelay`), the main loop sends.  In ``always`` and ``payment``
modes no key is ever sent toward the agent.

Contact-centre call path (issue 13): the agent leg carries the caller's identity
and the configured headers (:mod:`.identity`, as ``localUri`` and extra headers),
and the agent side's P-Asserted-Identity goes back in the customer's answers; a
183 from the agent side is answered 183 to the customer (early media, bridged and
masked like the call); a REFER from the agent side (blind, or attended with
Replaces) is carried out by the guard itself, so the customer's leg and the
pipeline stay and the new agent leg replaces the old one when it answers.  The
transfer target gets the caller's identity and headers like the first agent leg
(:meth:`Guard._transfer_identity`), and the customer gets the agent side's latest
identity in each answer and, after a transfer, the target's in an UPDATE (both message
changes are made by the pjsip module in :mod:`.rewrite`).  In-band keys relayed in secure
mode are measured on the sender's timeline: the port reads the customer stream's
jitter-buffer counters frame by frame (:mod:`.jbuf`) and the detector is given no frame the
buffer made up (:class:`dtmfguard.media.keyrelay.JitterLog`).
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
from typing import Any, Callable

import pjsua2 as pj

from ... import BLAS_SINGLE_THREAD
from ...signalling.eventlimit import KeyRateLimit
from ...media.pipeline import CallPipeline, warm_up_throwaway
from ...security import log_debug_traceback
from ...server import sched
from ...server.config import ConfigError, GuardConfig, agent_target, uses_tls
from .dtmf_cb import feed_rfc4733
from .dialogs import DialogBook
from ..identity import agent_leg_identity
from .endpoint import EndpointSettings, account_config, create_endpoint, destroy_endpoint, media_is_srtp, set_srtp
from .port import PipelinePort
from ..rtplock import lock_call_media
from ..bridge import HOLD_RETRY_S, Bridge, final_code_for_customer, sdp_offers_hold
from .relay_dtmf import AlertAudit, alert_record, send_key

__all__ = ["Guard", "MAX_BRIDGES"]

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
            log_debug_traceback(log, exc)  # -vv: where (redacted)
            return None

    return wrapper


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
        self.account_for_transfer = acc  # a transfer target is called from the same account (SRTP policy)
        self.pai: list = []  # this agent leg's remote identity (P-Asserted-Identity of its responses)
        self.sip_call_id = ""
        self.bridge: Bridge | None = None

    @guarded
    def onCallState(self, prm) -> None:
        info = self.getInfo()
        self.sip_call_id = info.callIdString  # the dialog's Call-ID: the rewrite module finds REFERs by it
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED and self.bridge is not None:
            self.guard.dialogs.ended(self.bridge.id, self.role)  # nothing left for the supervisor to end
        if self.role == "agent" and self.bridge is not None:
            self.guard._agent_identity_back(self.bridge, self, prm.e)
        self.guard._leg_state(self, info.state, info.lastStatusCode, info.stateText)

    @guarded
    def onStreamCreated(self, prm) -> None:  # main thread, the stream just started
        b = self.bridge
        if self.role == "customer" and b is not None and self.guard.cfg.mask_mode == "secure":
            from .jbuf import StreamJitter, stream_pointer

            if b.jitter is None:
                b.jitter = StreamJitter()
            b.jitter.set(stream_pointer(prm))
            self.guard._queue(self.guard._verify_jitter, b)

    @guarded
    def onStreamDestroyed(self, prm) -> None:  # main thread, before pjsua destroys the stream
        b = self.bridge
        if self.role == "customer" and b is not None and b.jitter is not None:
            try:
                summary = b.jitter.summary()
                if summary is not None:
                    log.info("%s: customer stream's jitter buffer: %s", b.id,
                             ", ".join(f"{k} {v}" for k, v in summary.items()))
            finally:
                b.jitter.clear()

    @guarded
    def onCallMediaState(self, prm) -> None:
        self.guard._queue(_lock_media, self)  # RTP only from the negotiated peer (rtplock.py, issue 18)
        self.guard._queue(self.guard._rewire, self.bridge)

    @guarded
    def onDtmfDigit(self, prm) -> None:  # once per key (its start); media or SIP thread
        b = self.bridge
        if self.role == "agent" and b is not None and b.secure_keys is not None:
            on = b.secure_keys.feed(str(prm.digit))  # the agent's phone switching secure mode; never relayed
            if on is not None:
                self.guard.set_secure(b, on, "agent-keys")  # attribute writes only: fine off the main thread

    @guarded
    def onDtmfEvent(self, prm) -> None:  # media thread (RFC 4733) or SIP thread (INFO): only enqueue
        b = self.bridge
        if self.role != "customer" or b is None or b.pipeline is None:
            return  # agent-side DTMF is not relayed anywhere
        if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO:
            b.pipeline.on_sip_info_digit(prm.digit, prm.duration)
        else:
            limit = b.key_limit
            if limit is None:
                limit = b.key_limit = KeyRateLimit()
            if not limit.allow(prm.timestamp):  # a telephone-event flood is not typing (eventlimit.py)
                if limit.dropped == 1 or limit.dropped % 1000 == 0:
                    log.warning("%s: RFC 4733 events dropped by the key rate limit (%d so far)", b.id, limit.dropped)
                return
            feed_rfc4733(b.pipeline, prm)

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
        elif tsx.method == "REFER" and tsx.role == pj.PJSIP_ROLE_UAS and tsx.state == pj.PJSIP_TSX_STATE_TRYING \
                and self.role == "agent":
            self.guard._transfer_identity(self.bridge, self, ev.body.tsxState.src.rdata)
        elif tsx.method == "INVITE" and tsx.role == pj.PJSIP_ROLE_UAC and tsx.state in (
                pj.PJSIP_TSX_STATE_COMPLETED, pj.PJSIP_TSX_STATE_TERMINATED):
            self.guard._reinvite_done(self.bridge, self.role, tsx.statusCode)

    def _rx_info(self, tsx, rdata) -> None:
        """An INFO arrived.  application/dtmf (a bare key): the key goes to the pipeline (customer leg) and
        the INFO is answered here, 200 or 400; everything else is left to pjsua.  Never logs the body."""
        head, _, body = rdata.wholeMsg.partition("\r\n\r\n")
        ctype = secure_hdr = ""
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() in ("content-type", "c"):
                ctype = value.strip()
            elif key.strip().lower() == "x-dtmfguard-secure":
                secure_hdr = value.strip()
        if self.role == "agent" and self._rx_secure_switch(tsx, rdata, ctype, body, secure_hdr):
            return
        if ctype.split(";")[0].strip().lower() != "application/dtmf":
            return  # dtmf-relay: pjsua answers it (200, or 400 if malformed); other bodies: pjsip's 500
        from ...signalling.sipinfo import SipInfoError, parse_info

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

    def _rx_secure_switch(self, tsx, rdata, ctype: str, body: str, header: str) -> bool:
        """The agent side switches secure mode with a SIP INFO (see :mod:`.relay_dtmf`).  True if this INFO
        was such a switch (answered here: 200, 400 malformed, 409 when the call is not in secure mode)."""
        from ...signalling.sipinfo import SipInfoError, parse_secure_request

        b = self.bridge
        try:
            on = parse_secure_request(ctype, body, header)
        except SipInfoError as exc:
            log.warning("%s: ignored a secure-mode INFO from the agent side (%s)", b.id, exc)
            _answer_request(tsx, rdata, 400)
            return True
        if on is None:
            return False
        code = 200 if self.guard.set_secure(b, on, "sip-info") else 409
        if not _answer_request(tsx, rdata, code):
            log.warning("%s: could not answer the secure-mode INFO (pjsip answers 500)", b.id)
        return True

    @guarded
    def onCallTransferRequest(self, prm) -> None:
        """REFER on the agent leg (blind transfer; attended ones carry Replaces in the target and go the same
        way): the guard is the transferee, so it calls the new target itself and the customer's audio keeps
        flowing through the pipeline (masking continues for the new agent).  See Guard._transfer_leg_state."""
        # refused unless everything below succeeds: with a 2xx and no newCall pjsua would call the target on a
        # Call object of its own, outside any bridge (an orphan leg)
        prm.statusCode = 603  # also for a customer-side REFER, a second transfer at once, a target that is no SIP URI
        b = self.bridge
        new = self.guard._accept_transfer(b, self, prm.dstUri) if b is not None and self.role == "agent" else None
        if b is not None and self.role != "agent":
            log.warning("%s: REFER refused (only the agent side may transfer the call)", b.id)
        if new is not None:
            prm.newCall = new
            prm.statusCode = 202

    @guarded
    def onCallRxOffer(self, prm) -> None:
        """A re-INVITE or UPDATE offer from this leg's remote: note hold / resume for relaying.

        pjsua answers the offer itself (``prm`` unchanged); the relay runs from the main loop.  Answers
        to the guard's own relayed offers never come here, which keeps relays from echoing.
        """
        if self.bridge is not None:
            self.guard._queue(self.guard._remote_hold, self.bridge, self.role, sdp_offers_hold(prm.offer.wholeSdp),
                              time.monotonic())


def _started(leg) -> bool:
    """pjsua made a call of this Call object (a transfer's new leg gets its id when pjsua starts the call)."""
    try:
        return leg.getId() >= 0
    except pj.Error:
        return False


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
        self._acc_cfg: dict = {}  # id(account) -> its AccountConfig
        # supervised workers record their dialogs so the supervisor can end them if this process dies
        self.dialogs = DialogBook.from_env(cfg.sip_host, cfg.sip_port)
        self.started = time.monotonic()
        self.alert_audit = AlertAudit(cfg.audit_path) if cfg.mask_mode == "secure" else None
        self.rewriter = None  # rewrite.SipRewriter: REFER targets with the caller's headers, answers' identity

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        c = self.cfg
        try:
            if sched.configure(c.media_priority):
                # the clock thread needs the GIL for its callbacks: a thread holding it is asked to let go
                # after the switch interval (5 ms by default: a quarter of a frame)
                sys.setswitchinterval(0.001)
                if not BLAS_SINGLE_THREAD:
                    log.warning("numpy was loaded before dtmfguard with its BLAS thread pool on: a real-time "
                                "thread's BLAS call can stall this worker up to a second; set "
                                "OPENBLAS_NUM_THREADS=1 (dtmfguard/__init__.py)")
        except RuntimeError as exc:
            raise ConfigError(str(exc)) from None
        s = EndpointSettings(host=c.sip_host, port=c.sip_port, transports=tuple(c.transports),
                             tls_port=c.tls_port, tls_cert=c.tls_cert, tls_key=c.tls_key, tls_ca=c.tls_ca,
                             rtp_port=c.rtp_port, rtp_range=c.rtp_range, log_level=c.log_level,
                             jitter_ms=self._jitter_ms)  # jb_discard: pjmedia's progressive default (endpoint.py)
        known = c.agent_known_target()
        s.verify_tls_transport = "tls" in c.transports and c.agent_tls_verify and (not known or uses_tls(known))
        self.ep = create_endpoint(s)
        # the first-use set-up (0.2 s of CPU) while this thread is still under the normal scheduler: at SCHED_RR
        # it would run above every ordinary thread of the host and a neighbouring worker's RTP thread
        self._warm_up()
        # this thread runs the SIP loop (poll): above pjmedia's RTP thread, which busy-waits on a transport lock
        # this thread may hold (sched.MEDIA_THREAD_NAMES)
        sched.raise_sip_thread()
        self._create_accounts(s)
        from .rewrite import install as install_rewrite

        self.rewriter = install_rewrite(self._refer_headers)
        log.info("guard listening on %s:%d (%s), RTP %d-%d", c.sip_host, c.sip_port, "/".join(c.transports),
                 c.rtp_port, c.rtp_port + c.rtp_range)

    def _warm_up(self) -> None:
        """One throwaway pipeline before the first call, its masker's shared tables built and a few synthetic
        key presses run through it (:func:`~dtmfguard.media.pipeline.warm_up`): lazy imports and first-use set-up
        are then paid here, not by the first call's INVITE on this thread or its first key on the media clock,
        where every worker of a loaded machine met them at once (45 ms ticks).  About 0.2 s.  A failure here is
        only logged: each call then builds its own pipeline or is refused (``pipeline-failed``)."""
        t0 = time.monotonic()
        try:  # (the default pipeline: nothing of it outlives this, whatever the factory)
            warm_up_throwaway(lambda: self._default_pipeline("warm-up"))
        except Exception as exc:  # noqa: BLE001 - a call would meet the same failure and be refused
            log.warning("media pipeline warm-up failed (%s); calls will build their own", type(exc).__name__)
            return
        log.info("media pipeline ready (%.0f ms)", 1000.0 * (time.monotonic() - t0))

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
            self._acc_cfg[id(acc)] = acfg  # kept: a transfer sets the From for one call (_transfer_identity)
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
                log_debug_traceback(log, exc)
        now = time.monotonic()
        for b in list(self.bridges.values()):
            if b.state in ("calling-agent", "ringing") and now - b.created_mono > self.cfg.answer_timeout_s:
                b.timed_out = True
                self._hangup(b.agent)
            if b.transfer is not None and now - b.transfer_started > 1.0 and not _started(b.transfer):
                # pjsua accepted the REFER (202) but could not start the call to its target (its call table
                # full, a target pjsip refused): no state of that leg will ever come; without this the bridge
                # waited for it for good and held its call slots (found by benchmarks/sipfuzz.py).  The referring
                # leg keeps the object alive: pjsua2 keeps a pointer to it in that call (Call::child)
                lost = b.transfer
                if b.agent is not None:
                    b.agent.unstarted_transfer = lost
                self._transfer_leg_state(b, lost, pj.PJSIP_INV_STATE_DISCONNECTED, 500)
            if b.session is not None and hasattr(b.session, "poll"):
                try:
                    b.session.poll()
                except Exception as exc:  # noqa: BLE001
                    log.error("%s: payment session poll failed (%s)", b.id, type(exc).__name__)
            if b.hold_relays:
                self._sync_hold(b)
            if b.pipeline is not None and b.pipeline.session is not None:
                self._end_payment_masking(b)
            if b.pipeline is not None and b.pipeline.relay is not None:
                self._secure_step(b, now)
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
                    b.customer = b.agent = b.transfer = None
                self.bridges.clear()
                self._ended.clear()
                self._ports.clear()  # the clock still runs, but every port is detached (silent) by now
            # queued actions hold Call objects (e.g. _hangup(agent leg)); one left for the interpreter to
            # collect after libDestroy aborts in ~Call (pjsua_call_set_user_data asserts: issue 18)
            self._actions.clear()
            if self.rewriter is not None:
                self.rewriter.close()  # pools back to pjsip before the library goes
            self.acc = self.agent_acc = self.agent_tls_acc = None
            self._acc_cfg.clear()

        destroy_endpoint(self.ep, release)
        self.ep = None
        self.dialogs.clear()
        if self.alert_audit is not None:
            self.alert_audit.close()

    # -- call control (main thread) --------------------------------------------------------------------
    def _queue(self, fn: Callable, *args) -> None:
        self._actions.append((fn, args))

    def _default_pipeline(self, name: str) -> CallPipeline:
        return CallPipeline(8000, mask_mode=self.cfg.mask_mode, masker_options=self.cfg.masker_options(), name=name,
                            relay=self._make_relay(), payment_notch=self.cfg.payment_notch)

    def _make_relay(self):
        """mask_mode "secure": the per-call key relay and card-run watch from [secure]; else None."""
        c = self.cfg
        if c.mask_mode != "secure":
            return None
        from ...media.keyrelay import key_relay_for

        return key_relay_for(c)

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
        from ...server.control import correlation_ids  # pure Python; the control API finds calls by these

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
        b.identity = self._agent_identity(prm.rdata.wholeMsg)
        if self.cfg.mask_mode == "secure" and (self.cfg.secure_keys_on or self.cfg.secure_keys_off):
            from ...media.keyrelay import KeySequence

            b.secure_keys = KeySequence(self.cfg.secure_keys_on, self.cfg.secure_keys_off)
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
        # the agent side's identity, back, as of the agent side's latest response: pjsua builds each answer of
        # a call on the previous one (inv->last_answer), so an identity that changed (a queue's in the 180, the
        # answering agent's in the 200) replaces the one already there; unchanged, it is there already
        values = list(b.agent_pai) if code in (180, 183, 200) else []
        replace = bool(values) and values != b.pai_sent and bool(b.pai_sent)
        if values and values != b.pai_sent and not replace:
            for value in values:  # the first identity: pjsua puts these headers in the answer
                op.txOption.headers.append(_header("P-Asserted-Identity", value))
            b.pai_sent = values
        if replace:  # a changed identity replaces the one already in pjsua's reused answer (rewrite.py)
            if self.rewriter is None or not getattr(b.customer, "sip_call_id", ""):
                replace = False
                log.warning("%s: the agent side's changed identity could not replace the earlier one", b.id)
            else:
                self.rewriter.arm_answer(b.customer.sip_call_id, code, "P-Asserted-Identity", values, b.id)
        try:
            b.customer.answer(op)
        finally:
            if replace:
                if self.rewriter.disarm():
                    b.pai_sent = values
                else:
                    log.warning("%s: the agent side's changed identity could not replace the earlier one", b.id)
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
        try:
            try:
                agent.makeCall(b.target, self._agent_call_op(b, with_identity=True))
            except pj.Error as exc:
                if not (b.identity[0] or b.identity[1]):
                    raise
                # pjsip refused what the caller's INVITE gave us: call the agent as the guard instead
                log.warning("%s: caller identity refused by the SIP stack (%s); calling the agent as the guard",
                            b.id, exc.reason[:80])
                agent = self._retry_leg(b, tls)
                agent.makeCall(b.target, self._agent_call_op(b, with_identity=False))
        except pj.Error as exc:
            log.warning("%s: agent call failed to start (%s)", b.id, exc.reason)
            b.agent_gone = True
            b.reason = "agent-start-failed"
            self._answer(b, 503)

    # -- transfers (REFER from the agent side) ---------------------------------------------------------
    def _accept_transfer(self, b: Bridge, leg: _Leg, target: str):
        """SIP thread, inside onCallTransferRequest: the new agent leg for pjsua to call, or None to refuse.
        Only object creation here (no pjsua2 call: pjsua makes the call when the callback returns)."""
        import re as _re

        uri = str(target or "").strip()
        angle = _re.search(r"<([^<>]*)>", uri)  # name-addr ("Target" <sip:...>;p) or a bare URI
        inner = angle.group(1) if angle else uri
        if leg is not b.agent or b.transfer is not None or b.state != "connected" or \
                not _re.match(r"^sips?:[^\s<>]+$", inner):
            log.warning("%s: REFER refused (%s)", b.id, "not a SIP URI" if b.state == "connected" and
                        leg is b.agent and b.transfer is None else "no transfer possible now")
            return None
        new = _Leg(self, leg.account_for_transfer, "agent")
        new.bridge = b
        new.target = inner.split("?", 1)[0]
        b.transfer = new
        b.transfer_started = time.monotonic()
        log.info("%s: agent side transfers the call to %s", b.id, new.target)
        return new

    def _transfer_leg_state(self, b: Bridge, leg: _Leg, state: int, status: int) -> None:
        """States of agent legs during and after a transfer: the new leg replaces the old one when it answers;
        the old leg ending meanwhile does not end the customer's call."""
        if leg is b.transfer:
            if state == pj.PJSIP_INV_STATE_CONFIRMED:
                old, b.agent, b.transfer = b.agent, leg, None
                b.target = getattr(leg, "target", b.target)
                b.agent_gone = False
                ms = round((time.monotonic() - b.transfer_started) * 1000, 1)
                b.transfers.append(ms)
                log.info("%s: transfer answered %.1f ms after the REFER; masking continues for the new agent",
                         b.id, ms)
                self._queue(self._rewire, b)
                self._queue(self._hangup, old)
                self._queue(self._identity_update, b, leg)
            elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
                b.transfer = None
                log.warning("%s: transfer failed (%d)%s", b.id, status,
                            "; the first agent is gone: ending the call" if b.agent_gone else "")
                if b.agent_gone and not b.customer_gone:
                    b.reason = b.reason or "transfer-failed"
                    self._queue(self._hangup, b.customer)
                self._maybe_end(b)
        elif leg is b.agent and state == pj.PJSIP_INV_STATE_DISCONNECTED:
            b.agent_gone = True  # the referring agent hung up first: the customer waits for the new agent
            log.info("%s: the transferring agent left; waiting for the transfer target", b.id)

    def _refer_headers(self, call_id: str, refer_to: str):
        """SIP thread, from the rewrite module, for a REFER pjsip is about to hand to a dialog: the caller's
        identity headers for the transfer target when the REFER comes from a connected bridge's agent leg
        (the same conditions as :meth:`_accept_transfer`), else None.  The headers travel as URI headers of
        the Refer-To value pjsua calls (rewrite.py): P-Asserted-Identity per policy, Diversion/History-Info,
        UUI, configured X- headers, and the correlation header."""
        for b in list(self.bridges.values()):
            leg = b.agent
            if leg is not None and getattr(leg, "sip_call_id", "") == call_id:
                if b.transfer is not None or b.state != "connected":
                    return None
                return b.id, [*b.identity[1], ("X-Dtmfguard-Call", b.id)]
        return None

    def _transfer_identity(self, b: Bridge, leg: _Leg, rdata) -> None:
        """SIP thread, a REFER on the agent leg that pjsua is about to carry out (onCallTsxState runs first):
        the transfer target gets the same caller identity as the first agent leg.  The headers are already in
        the Refer-To value (:meth:`_refer_headers`); the From (display name and user) goes through the
        account pjsua calls from (pjsua_call_make_call takes its From from the account when no local_uri is
        given), set for this one call and set back by the next main-loop step."""
        if b is None or leg is not b.agent or b.transfer is not None or b.state != "connected":
            return  # refused in onCallTransferRequest
        if self.rewriter is None or self.rewriter.rewritten.pop(b.id, None) is None:
            log.warning("%s: caller headers not passed to the transfer target (REFER not rewritten)", b.id)
        local, _ = b.identity
        acc = leg.account_for_transfer
        cfg = self._acc_cfg.get(id(acc))
        if not local or cfg is None:
            return
        own = cfg.idUri
        try:
            cfg.idUri = local
            acc.modify(cfg)
        except pj.Error as exc:
            log.warning("%s: caller identity not set for the transfer target (%s)", b.id, exc.reason[:80])
            return
        finally:
            cfg.idUri = own
        self._queue(self._restore_account, acc)

    def _identity_update(self, b: Bridge, leg: _Leg) -> None:
        """After a transfer: the new agent side's identity to the customer, in an UPDATE without SDP (RFC 3311;
        the media stay as they are), as a phone shows who took over the call (the connected identity of
        RFC 4916, here by P-Asserted-Identity as in the answers)."""
        values = list(getattr(leg, "pai", []) or [])
        if leg is not b.agent or not values or values == b.pai_sent or b.customer is None or b.customer_gone:
            return
        b.agent_pai = values
        op = pj.CallOpParam(True)
        op.opt.flag |= pj.PJSUA_CALL_NO_SDP_OFFER
        for value in values:
            op.txOption.headers.append(_header("P-Asserted-Identity", value))
        try:
            b.customer.update(op)
        except pj.Error as exc:  # e.g. an INVITE transaction in progress on the customer leg
            log.warning("%s: the transfer target's identity was not sent to the customer (%s)", b.id,
                        exc.reason[:80])
            return
        b.pai_sent = values
        log.info("%s: the transfer target's identity sent to the customer (UPDATE)", b.id)

    def _restore_account(self, acc) -> None:
        cfg = self._acc_cfg.get(id(acc))
        try:
            acc.modify(cfg)
        except pj.Error as exc:  # the next agent call would show the last caller: say so loudly
            log.error("agent account identity not restored (%s)", exc.reason[:80])

    # -- caller identity on the agent leg ------------------------------------------------------------------
    def _agent_identity(self, invite: str) -> tuple:
        c = self.cfg
        host = c.sip_host if c.sip_host not in ("", "0.0.0.0", "::") else "dtmfguard.invalid"
        host = f"[{host}]" if ":" in host else host
        try:
            local, headers = agent_leg_identity(invite, mode=c.identity, guard_host=f"{host}:{c.sip_port}",
                                                user=c.identity_user, display=c.identity_display,
                                                copy=c.copy_headers, copy_x=c.copy_x_headers)
        except Exception as exc:  # noqa: BLE001 - never fail a call over its caller id
            log.warning("caller identity not taken over (%s)", type(exc).__name__)
            return "", ()
        return local, tuple(headers)

    def _agent_identity_back(self, b: Bridge, leg: _Leg, event) -> None:
        """SIP thread: a response on an agent leg (the first one or a transfer target); its P-Asserted-Identity
        (the agent side's, RFC 3325) is kept for the customer's 180/183/200, and for the UPDATE that tells the
        customer who answered a transfer (identity mode "pass" only: the other modes hide identities)."""
        if self.cfg.identity != "pass":
            return
        try:  # never in the way of the state change that follows (same callback)
            if event.type != pj.PJSIP_EVENT_TSX_STATE or event.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
                return
            msg = event.body.tsxState.src.rdata.wholeMsg
            if not msg.startswith("SIP/2.0"):
                return
            from ..identity import parse_identity

            # at most two (RFC 3325 §9.1: one sip/sips and one tel URI), each once (a pjsua agent side repeats
            # the 180's header in its 200, as the guard would without the rewrite module)
            values = list(dict.fromkeys(parse_identity(msg).values("P-Asserted-Identity")))[:2]
            if values:
                leg.pai = values
                if leg is b.agent:
                    b.agent_pai = values
        except Exception as exc:  # noqa: BLE001
            log.debug("%s: agent identity not read (%s)", b.id, type(exc).__name__)

    def _agent_call_op(self, b: Bridge, with_identity: bool):
        op = pj.CallOpParam(True)
        if with_identity:
            local, headers = b.identity
            if local:
                op.txOption.localUri = local
            for name, value in headers:
                op.txOption.headers.append(_header(name, value))
        op.txOption.headers.append(_header("X-Dtmfguard-Call", b.id))  # the guard's correlation header stays
        return op

    def _retry_leg(self, b: Bridge, tls: bool) -> _Leg:
        agent = _Leg(self, self.agent_tls_acc if tls else self.agent_acc, "agent")
        agent.bridge = b
        b.agent = agent
        return agent

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
        if leg.role == "agent" and (leg is not b.agent or b.transfer is not None):
            self._transfer_leg_state(b, leg, state, status)
            return
        if leg.role == "agent":
            if state == pj.PJSIP_INV_STATE_EARLY and status == 183 and not b.early_media:
                # early media (an IVR prompt before the answer): 183 with SDP to the customer as well; both
                # streams then start and _rewire bridges them through the pipeline (masked, as after 200)
                b.early_media = True
                b.state = "ringing"
                self._queue(self._answer, b, 183)
            elif state == pj.PJSIP_INV_STATE_EARLY and b.state == "calling-agent":
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
                        code = final_code_for_customer(status, b.timed_out)
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
                if b.transfer is not None:  # a transfer target still being called
                    self._queue(self._hangup, b.transfer)
                self._maybe_end(b)

    def _maybe_end(self, b: Bridge) -> None:
        if b.customer_gone and (b.agent_gone or b.agent is None) and b.transfer is None:
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
            st = b.port.stats
            if st.get("requested"):  # the clock's regularity for this call: late ticks lose or bunch audio
                log.info("%s: media clock: %d frames, %d late ticks, longest interval %.0f ms, %d missing, "
                         "%d overrun%s", b.id, st["requested"], st["late"], st["max_interval_ms"], st["missing"],
                         st["overrun"], f"; jitter buffer lost frames at {st['jb_lost_at']}" if st.get("jb_lost_at")
                         else "")
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
            b.customer = b.agent = b.transfer = None
            if self.rewriter is not None:
                self.rewriter.forget(b.id)

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
                b.port.attach(b.pipeline, b.jitter)
            except Exception as exc:  # noqa: BLE001 - fail closed: no port, the agent hears nothing of the customer
                log.error("%s: media port failed (%s); customer audio is not bridged", b.id, type(exc).__name__)
                agent.startTransmit(cust)
                return
        if b.port.jitter is not b.jitter:
            b.port.jitter = b.jitter  # the clock thread picks up the reader on its next frame
        cust.startTransmit(b.port)
        b.port.startTransmit(agent)
        agent.startTransmit(cust)
        b.legs["customer"].srtp, b.legs["agent"].srtp = media_is_srtp(b.customer), media_is_srtp(b.agent)
        if b.wired != key:
            log.info("%s: media bridged (customer -> guard port -> agent; agent -> customer); SRTP customer %s, "
                     "agent %s", b.id, b.legs["customer"].srtp, b.legs["agent"].srtp)
        else:
            log.info("%s: media re-bridged after a media update", b.id)
        b.wired = key

    # -- hold relay (main thread) ----------------------------------------------------------------------
    def _remote_hold(self, b: Bridge, role: str, held: bool, t_offer: float) -> None:
        """The remote of leg ``role`` offered hold (or resume): relay it to the other leg.

        Level-triggered (:meth:`Bridge.remote_offer`): nothing happens unless the hold level of this remote
        changed, so session refreshes and codec changes are not relayed, and a relayed hold mirrored back by
        a peer stops here.
        """
        other = b.remote_offer(role, held, t_offer)
        if other is None:
            return
        log.info("%s: %s leg %s; relaying to the %s leg", b.id, role, "put on hold" if held else "resumed", other)
        self._sync_hold(b)

    def _sync_hold(self, b: Bridge) -> None:
        """Send the pending hold / resume re-INVITEs; retried from :meth:`poll` while a leg cannot take one."""
        now = time.monotonic()
        for role, relay in b.hold_relays_due(now):
            leg = b.customer if role == "customer" else b.agent
            op = pj.CallOpParam(True)
            try:
                if relay.want:
                    leg.setHold(op)
                else:
                    op.opt.flag |= pj.PJSUA_CALL_UNHOLD  # keeps pjsua's default flags
                    leg.reinvite(op)
            except pj.Error as exc:  # e.g. another INVITE transaction still in progress on that leg
                if b.hold_relay_failed(role, relay, now + HOLD_RETRY_S):
                    self._hold_given_up(b, role, relay, exc.reason)
                continue
            relay.sent = now

    @staticmethod
    def _hold_given_up(b: Bridge, role: str, relay, why: str) -> None:
        log.warning("%s: could not relay %s to the %s leg after %d tries (%s)", b.id,
                    "hold" if relay.want else "resume", role, relay.attempts, why)

    def _reinvite_done(self, b: Bridge, role: str, status: int) -> None:
        """A re-INVITE the guard sent on leg ``role`` got its final answer (SIP thread, in a callback)."""
        now = time.monotonic()
        relay, outcome = b.reinvite_answered(role, status, now)
        if outcome == "done":
            log.info("%s: %s relayed to the %s leg in %.1f ms", b.id, "hold" if relay.want else "resume", role,
                     (now - relay.since) * 1000)
        elif outcome == "gave-up":
            self._hold_given_up(b, role, relay, f"answered {status}")

    # -- mask_mode "payment" (main thread) ---------------------------------------------------------------
    def _end_payment_masking(self, b: Bridge) -> None:
        """mask_mode "payment" / "secure": once the payment session has finished, masking stops (the
        session leaves the pipeline).  The rules (not while a key is still being masked, a mask span is
        ahead of the output, a signalled key waits or an RFC 4733 press sounds) are the pipeline's own:
        :meth:`CallPipeline.end_payment_masking`, shared with relay mode."""
        pl = b.pipeline
        if not pl.end_payment_masking():
            return
        if pl.mask_mode == "secure":
            log.info("%s: payment %s: secure mode %s", b.id, getattr(b.session, "state", "finished"),
                     "stays on (switched on before the payment)" if pl.secure_manual else "off, keys relayed again")
            return
        log.info("%s: payment %s: masking off until the next payment (mask_mode payment)", b.id,
                 getattr(b.session, "state", "finished"))

    # -- secure mode (mask_mode "secure") ----------------------------------------------------------------
    def set_secure(self, b: Bridge, on: bool, source: str) -> bool:
        """Switch secure mode without a payment on or off (any thread: attribute writes only).

        False when the call is not in mask_mode "secure" or has no media pipeline.  Switching off leaves a
        running payment session in charge: secure mode lasts until it has finished.
        """
        pl = b.pipeline
        if pl is None or pl.relay is None or b.state in ("ended", "ending"):
            return False
        if on:
            if not pl.secure_manual:
                if not pl.secure:  # already secure (a payment runs): nothing to measure
                    b.secure_requested = time.monotonic()
                    b.secure_source = source
                b.secure_manual_since = time.monotonic()
                pl.secure_manual = True
            log.info("%s: secure mode on (%s)", b.id, source)
        else:
            pl.secure_manual = False
            b.secure_manual_since = 0.0
            log.info("%s: secure mode switched off (%s)%s", b.id, source,
                     "; the payment session keeps it on until it ends" if pl.session is not None else "")
        return True

    def attach_payment(self, b: Bridge, session) -> None:
        """A payment session starts on the call: secure mode (and capture) from the next frame."""
        if b.pipeline is not None and not b.pipeline.secure:
            b.secure_requested = time.monotonic()
            b.secure_source = "payment"
        b.session = session
        b.pipeline.attach_session(session)

    def _secure_step(self, b: Bridge, now: float) -> None:
        """Main loop, mask_mode "secure": send relayed keys, report alerts, measure switches, time out."""
        pl = b.pipeline
        relay = pl.relay
        if b.secure_requested and pl.secure_since:
            ms = round((pl.secure_since - b.secure_requested) * 1000, 1)
            b.secure_switch_ms.append(ms)
            # wall clock of the first secure frame: lets a test measure from the far end's request (same host)
            b.secure_effective_at.append(round(time.time() - (time.monotonic() - pl.secure_since), 4))
            b.secure_requested = 0.0
            log.info("%s: secure mode effective %.1f ms after the %s request", b.id, ms, b.secure_source)
        if pl.secure_manual and b.secure_manual_since and now - b.secure_manual_since > self.cfg.secure_timeout_s:
            pl.secure_manual = False
            b.secure_manual_since = 0.0
            log.warning("%s: secure mode timed out after %.0f s (secure.timeout_s)", b.id, self.cfg.secure_timeout_s)
        while relay.alerts:
            alert = relay.alerts.popleft()
            record = alert_record(b.id, b.target, alert)
            b.alerts.append({"type": "card_outside_secure_mode", **record})
            log.warning("%s: ALERT a card number may have been keyed outside secure mode (agent %s); relaying %s",
                        b.id, b.target, "stopped for that run" if record["action"] == "stopped" else "continued")
            if self.alert_audit is not None:
                self.alert_audit.record(record)
        while relay.outbox:
            key = relay.outbox.popleft()
            if key.source == "inband":
                if key.correction_ms:  # on the sender's timeline again (keyrelay.JitterLog, clock thread)
                    b.relay["jitter_corrected"] = b.relay.get("jitter_corrected", 0) + 1
                if log.isEnabledFor(logging.INFO):
                    try:
                        self._log_inband(b, key)
                    except Exception as exc:  # noqa: BLE001 - a log line must not cost the key
                        log.debug("%s: in-band press not logged (%s)", b.id, type(exc).__name__)
            if not (b.state == "connected" or b.state == "ringing" and b.early_media) or b.agent is None \
                    or b.agent_gone:
                continue  # the agent leg is not (or no longer) there: nothing to relay to
            try:
                method = send_key(b.agent, key, self.cfg.relay_method)
            except pj.Error as exc:
                b.relay["errors"] += 1
                log.warning("%s: a key could not be relayed to the agent leg (%s)", b.id, exc.reason[:80])
                continue
            b.relay["sent"] += 1
            b.relay[method] += 1
            latency = round((time.monotonic() - key.decided_mono) * 1000, 1)
            b.relay["max_latency_ms"] = max(b.relay["max_latency_ms"], latency)

    def _verify_jitter(self, b: Bridge) -> None:
        """Main loop, after a customer stream started: the clock thread may read its jitter-buffer counters
        once one read matches pjsua2's own statistics (jbuf.StreamJitter.verify)."""
        if b.jitter is None or b.customer is None or b.customer_gone:
            return
        try:
            stat = b.customer.getStreamStat(0)
        except pj.Error:
            return
        if b.jitter.verify(stat.jbuf):
            log.info("%s: customer stream's jitter-buffer counters read per frame (in-band key durations)", b.id)

    def _log_inband(self, b: Bridge, key) -> None:
        """A relayed in-band key's measured duration and jitter-buffer correction (no digit)."""
        import json

        tl = b.pipeline.timeline
        log.info("%s: relayed in-band press %s", b.id, json.dumps(
            {"measured_ms": key.measured_ms, "fix_ms": key.correction_ms, "sent_ms": key.duration_ms,
             "made_up": dict(tl.stats) if tl is not None else {}}))

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
        edge = getattr(self.ep, "dtmfguard_edge", None) if self.ep is not None else None
        return {"ok": self.ep is not None, "active_calls": active, "capacity": MAX_BRIDGES,
                "uptime_s": round(time.monotonic() - self.started, 1), **self.counters, "media_errors": media_errors,
                "edge": edge.snapshot() if edge is not None else None}


def _lock_media(leg) -> None:
    """Lock the leg's RTP/RTCP sockets to the SDP peer (main thread, from the action queue)."""
    try:
        if leg.isActive():
            n = lock_call_media(leg, pj)
            b = leg.bridge
            log.debug("%s: %s leg RTP locked to its SDP peer (%d sockets)", b.id if b else "-", leg.role, n)
    except Exception as exc:  # noqa: BLE001 - the lock is a hardening; the call goes on without it
        log.warning("RTP source lock failed (%s)", type(exc).__name__)


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
