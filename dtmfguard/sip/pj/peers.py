# SPDX-License-Identifier: GPL-2.0-or-later
"""Small pjsua2 customer and agent peers for tests, benchmarks and demos.

Why in the package: the real-peer tests, ``benchmarks/calls.py`` and a
first-try demo all need a caller that plays speech and key presses (in-band,
RFC 4733, SIP INFO) and an agent that answers and records what it hears.
pjsua is a per-process singleton, so each peer is its own process::

    python -m dtmfguard.sip.pj.peers agent --port 5072 --rtp 42000 --record-dir /tmp/agent
    python -m dtmfguard.sip.pj.peers customer --port 5080 --rtp 43000 --to sip:guard@127.0.0.1:5070 \\
        --play speech_and_keys.wav --rfc2833 123 --info 45 --info-dtmf 6

Each prints JSON lines on stdout: ``{"event": "ready"}`` once listening, and a
final ``{"event": "done", ...}`` summary.  Timing is driven from the main loop
(``threadCnt = 0``), so all pjsua2 calls happen on one thread.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

import pjsua2 as pj

from ...server import sched
from ..bridge import sdp_offers_hold  # imported up front: a first import inside a callback delays the answer
from .endpoint import EndpointSettings, account_config, create_endpoint, destroy_endpoint, media_is_srtp, set_srtp

#: pjmedia's threads (Linux names) that clock this peer's audio out and read its RTP in (--priority); the
#: RTP thread below the peer's SIP loop, as in the guard (sched.MEDIA_THREAD_NAMES)
PEER_CLOCK_THREADS = ("clock",)
PEER_MEDIA_THREADS = sched.MEDIA_THREAD_NAMES


def _raise_media_threads() -> None:
    sched.raise_named(PEER_CLOCK_THREADS)
    sched.raise_named(PEER_MEDIA_THREADS, sched.MEDIA_RT_PRIORITY)

__all__ = ["main"]


def say(**kw) -> None:
    print(json.dumps(kw), flush=True)


class _Call(pj.Call):
    def __init__(self, peer, acc, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.peer = peer
        self.state = None
        self.status = 0
        self.media_active = False
        self.dtmf_events = 0
        self.dtmf_digits = 0
        self.media_status = None  # audio status name: active, local-hold, remote-hold, none, error
        self.media_changes = 0  # onCallMediaState count (a re-INVITE recreates the stream)
        self.offers = []  # re-INVITE/UPDATE offers received: True for a hold offer
        # players feeding the call, recorders fed by it: connected again after each media update (a hold
        # or resume from the far end recreates the stream, as pjsua2's samples do in onCallMediaState)
        self.sources: list = []
        self.sinks: list = []
        self.confirmed_at = None
        self.disconnected_at = None
        self.index = 0
        self.srtp = None  # the audio stream was SRTP (RTP/SAVP), read when media started
        self.keys: list[dict] = []  # DTMF keys received (onDtmfEvent), see there
        self.open_keys: dict = {}

    def onCallState(self, prm):
        try:
            self._response_identity(prm.e)
        except Exception as exc:  # noqa: BLE001 - never into pjsua2, never in the way of the state below
            say(event="error", where="response_identity", error=type(exc).__name__)
        try:
            info = self.getInfo()
            self.state = info.state
            self.status = info.lastStatusCode
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
                self.confirmed_at = time.time()
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.disconnected_at = time.time()
            say(event="state", call=self.index, state=info.stateText, status=info.lastStatusCode, t=time.time())
        except Exception as exc:  # noqa: BLE001 - never into pjsua2
            say(event="error", where="onCallState", error=type(exc).__name__)

    def _response_identity(self, e) -> None:
        """Print the identity headers of each response this peer receives (what a phone would display)."""
        if e.type != pj.PJSIP_EVENT_TSX_STATE or e.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
            return
        msg = e.body.tsxState.src.rdata.wholeMsg
        if msg.startswith("SIP/2.0"):
            code = int(msg.split(None, 2)[1])
            say(event="response", call=self.index, status=code, headers=_identity_headers(msg))

    def onCallMediaState(self, prm):
        try:
            info = self.getInfo()
            self.media_active = any(m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                                    for m in info.media)
            self.media_changes += 1
            if self.media_active:  # (--priority) the threads that send and receive this peer's audio
                _raise_media_threads()
            status = next((_MEDIA_STATUS.get(m.status, "?") for m in info.media if m.type == pj.PJMEDIA_TYPE_AUDIO),
                          "none")
            if status != self.media_status:  # hold / resume as this peer sees it, with the time
                self.media_status = status
                say(event="media_state", call=self.index, status=status, t=time.time())
            if self.media_active and (self.sources or self.sinks):
                am = self.getAudioMedia(-1)
                for source in self.sources:
                    source.startTransmit(am)
                for sink in self.sinks:
                    am.startTransmit(sink)
        except Exception as exc:  # noqa: BLE001
            say(event="error", where="onCallMediaState", error=type(exc).__name__)

    def onCallRxOffer(self, prm):
        try:
            self.offers.append(sdp_offers_hold(prm.offer.wholeSdp))
            say(event="offer", call=self.index, hold=self.offers[-1], t=time.time())
        except Exception as exc:  # noqa: BLE001
            say(event="error", where="onCallRxOffer", error=type(exc).__name__)

    def onCallTsxState(self, prm):  # the final answer to each INFO this peer sent (code only, no body)
        try:
            e = prm.e
            if e.type != pj.PJSIP_EVENT_TSX_STATE:
                return
            tsx = e.body.tsxState.tsx
            if tsx.role == pj.PJSIP_ROLE_UAS and tsx.state == pj.PJSIP_TSX_STATE_TRYING and tsx.method in (
                    "INVITE", "UPDATE") and e.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
                # an in-dialog INVITE/UPDATE (session refresh, identity update): its identity headers
                say(event="request", call=self.index, method=tsx.method, t=time.time(),
                    headers=_identity_headers(e.body.tsxState.src.rdata.wholeMsg))
            if tsx.method in ("INVITE", "UPDATE") and tsx.role == pj.PJSIP_ROLE_UAC and tsx.state in (
                    pj.PJSIP_TSX_STATE_COMPLETED, pj.PJSIP_TSX_STATE_TERMINATED) and tsx.statusCode >= 200 \
                    and e.body.tsxState.prevState < pj.PJSIP_TSX_STATE_COMPLETED:
                say(event="answered", call=self.index, method=tsx.method, status=tsx.statusCode, t=time.time())
            if tsx.method == "INFO" and tsx.role == pj.PJSIP_ROLE_UAC and tsx.state in (
                    pj.PJSIP_TSX_STATE_COMPLETED, pj.PJSIP_TSX_STATE_TERMINATED) and tsx.statusCode >= 200 \
                    and e.body.tsxState.prevState < pj.PJSIP_TSX_STATE_COMPLETED:
                say(event="info_response", call=self.index, status=tsx.statusCode)
        except Exception as exc:  # noqa: BLE001
            say(event="error", where="onCallTsxState", error=type(exc).__name__)

    def onDtmfEvent(self, prm):
        """Every RFC 4733 packet callback / SIP INFO key: one entry per key press with its final duration.

        pjsua2 calls this with flags 0 at an event's start, 1 (IS_UPDATE) for updates and 3 (END) at its
        end; a SIP INFO key comes once with flags 2.  The agent peer is a test tool: it reports the keys it
        received (tests check that none arrive in secure mode, and that relayed ones arrive exactly once).
        """
        try:
            self.dtmf_events += 1
            method = "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
            key = (method, int(prm.timestamp), str(prm.digit))
            cur = self.open_keys.get(key)
            if cur is None:
                cur = {"digit": str(prm.digit), "method": method, "t": time.time(), "duration_ms": 0, "end": False}
                self.open_keys[key] = cur
                self.keys.append(cur)
            cur["duration_ms"] = max(cur["duration_ms"], int(prm.duration) & 0xFFFFFFFF)
            if int(prm.flags) & 2 or method == "info":
                cur["end"] = True
                cur["t_end"] = time.time()
                self.open_keys.pop(key, None)
                say(event="dtmf", call=self.index, **cur)
        except Exception as exc:  # noqa: BLE001
            say(event="error", where="onDtmfEvent", error=type(exc).__name__)

    def onDtmfDigit(self, prm):
        self.dtmf_digits += 1

    def onCallReplaceRequest(self, prm):  # the INVITE with Replaces (attended transfer): what the phone shows
        try:
            say(event="invite", call=self.index, replaces=True, headers=_identity_headers(prm.rdata.wholeMsg))
        except Exception as exc:  # noqa: BLE001
            say(event="error", where="onCallReplaceRequest", error=type(exc).__name__)

    def onCallReplaced(self, prm):  # an attended transfer replaced this call: the new one is tracked like any
        try:
            new = _Call(self.peer, self.peer.acc, prm.newCallId)
            new.index = len(self.peer.calls)
            self.peer.calls.append(new)
            prm.newCall = new
            say(event="replaced", call=self.index, by=new.index, t=time.time())
        except Exception as exc:  # noqa: BLE001
            say(event="error", where="onCallReplaced", error=type(exc).__name__)

    def onCallTransferStatus(self, prm):  # --refer-to: the far end's progress on the transfer (NOTIFY)
        try:
            say(event="xfer_status", call=self.index, status=prm.statusCode, final=bool(prm.finalNotify),
                t=time.time())
            if prm.finalNotify:
                self.xfer_done = True  # the main loop hangs up (never inside a callback)
                prm.cont = False
        except Exception as exc:  # noqa: BLE001
            say(event="error", where="onCallTransferStatus", error=type(exc).__name__)


_MEDIA_STATUS = {pj.PJSUA_CALL_MEDIA_ACTIVE: "active", pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local-hold",
                 pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote-hold", pj.PJSUA_CALL_MEDIA_NONE: "none",
                 pj.PJSUA_CALL_MEDIA_ERROR: "error"}


class _Account(pj.Account):
    def __init__(self, peer):
        super().__init__()
        self.peer = peer

    def onIncomingCall(self, prm):
        try:
            self.peer.incoming(prm)
        except Exception as exc:  # noqa: BLE001
            say(event="error", where="onIncomingCall", error=type(exc).__name__)


_SHOWN = ("from", "p-asserted-identity", "privacy", "diversion", "history-info", "user-to-user", "session-expires",
          "x", "min-se")


def _identity_headers(msg: str) -> dict:
    """Identity-related headers of a request: name (lower case) -> list of values."""
    out: dict = {}
    for line in msg.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        name = {"f": "from"}.get(name.strip().lower(), name.strip().lower())
        if sep and (name in _SHOWN or name.startswith("x-")):
            out.setdefault(name, []).append(value.strip())
    return out


def _silence_source(media):
    """A looped player of 1 s of silence transmitting to ``media`` (its WAV lives in a private temp dir)."""
    import tempfile
    import wave

    path = os.path.join(tempfile.mkdtemp(prefix="dtmfguard-peer-"), "silence.wav")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(16000))
    player = pj.AudioMediaPlayer()
    player.createPlayer(path, 0)
    player.startTransmit(media)
    return player


def _sip_header(name: str, value: str):
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h


def _settings(a) -> EndpointSettings:
    s = EndpointSettings(host=a.host, port=a.port, transports=("udp",), rtp_port=a.rtp,
                         rtp_range=40, user_agent=f"dtmfguard-{a.role}-peer", edge_legs_per_call=1)
    if a.codec:
        s.codecs = {a.codec: 255}
    s.jitter_ms = a.jitter_ms
    if a.tls_cert:
        s.transports = ("udp", "tls")
        s.tls_port, s.tls_cert, s.tls_key = a.port + 1, a.tls_cert, a.tls_key
        s.tls_ca, s.tls_verify_server = a.tls_ca or "", a.tls_verify
    return s


def _account(a, user: str):
    return set_srtp(account_config(_settings(a), user, session_expires_s=a.session_expires), a.srtp,
                    a.srtp_require_tls)


_next_raise = [0.0]


def _raise_late_threads() -> None:
    """(--priority) Once a second: raise pjmedia threads started after the last look.  The conference clock
    (null device) starts with the first port connected, which may come after onCallMediaState raised the media
    thread (an agent that neither records nor plays: measured under the normal scheduler until this)."""
    now = time.monotonic()
    if now >= _next_raise[0]:
        _next_raise[0] = now + 1.0
        _raise_media_threads()


def _run_loop(ep, until, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ep.libHandleEvents(10)
        _raise_late_threads()
        if until():
            return True
    return False


class Agent:
    """Answers calls (or rejects them), records each call's audio to a WAV file, optionally echoes it."""

    def __init__(self, a):
        self.a = a
        self.calls: list[_Call] = []
        self.recorders = []
        self.pending = []

    def incoming(self, prm):
        call = _Call(self, self.acc, prm.callId)
        call.index = len(self.calls)
        # what an agent phone would show: the identity headers of the INVITE (tests check them)
        say(event="invite", call=call.index, headers=_identity_headers(prm.rdata.wholeMsg))
        self.calls.append(call)
        self.pending.append(call)

    def _hold_and_record(self, call) -> None:
        """``--hold-at``: hold the call that long after its media started, resume ``--hold-s`` later.
        After any media change (a re-INVITE recreates the stream) the recorder is connected again."""
        a = self.a
        media_t = getattr(call, "media_t", None)
        if a.hold_at and media_t and call.state == pj.PJSIP_INV_STATE_CONFIRMED:
            since = time.monotonic() - media_t
            held = getattr(call, "held", False)
            try:
                if not held and since >= a.hold_at:
                    call.held = True
                    call.setHold(pj.CallOpParam(True))
                    say(event="hold", call=call.index, t=time.time())
                elif held and not getattr(call, "resumed", False) and since >= a.hold_at + a.hold_s:
                    call.resumed = True
                    op = pj.CallOpParam(True)
                    op.opt.flag = pj.PJSUA_CALL_UNHOLD
                    call.reinvite(op)
                    say(event="resume", call=call.index, t=time.time())
            except pj.Error as exc:
                say(event="error", where="hold", error=exc.reason)
        rec = getattr(call, "recorder", None)
        if rec is not None and call.media_active and call.state == pj.PJSIP_INV_STATE_CONFIRMED:
            if getattr(call, "recorded_gen", None) not in (None, call.media_changes):
                call.getAudioMedia(-1).startTransmit(rec)  # connecting twice is harmless
            call.recorded_gen = call.media_changes

    def _agent_keys(self, call) -> None:
        """``--keys '*#1@3,*#0@6'``: the agent's phone sends these keys (RFC 4733) that long after media
        started (a secure-mode switch sequence; the customer must never hear them)."""
        media_t = getattr(call, "media_t", None)
        if not self.a.keys or not media_t or call.state != pj.PJSIP_INV_STATE_CONFIRMED:
            return
        done = call.__dict__.setdefault("keys_sent", set())
        for i, item in enumerate(self.a.keys.split(",")):
            keys, _, at = item.rpartition("@")
            if i in done or time.monotonic() - media_t < float(at):
                continue
            done.add(i)
            if not getattr(call, "silence", None):  # pjmedia sends RFC 4733 only while a source feeds the call
                call.silence = _silence_source(call.getAudioMedia(-1))
                call.sources.append(call.silence)
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
            prm.digits = keys
            prm.duration = 80
            try:
                call.sendDtmf(prm)
                say(event="keys_sent", call=call.index, n=len(keys), t=time.time())
            except pj.Error as exc:
                say(event="error", where="keys", error=exc.reason)

    def _codec_change(self, call) -> None:
        """``--reinvite-codec PCMA/8000 --reinvite-at S``: S seconds after media started, prefer only that codec
        and re-INVITE (a mid-call codec change); prints the codec before and after."""
        a = self.a
        media_t = getattr(call, "media_t", None)
        if not a.reinvite_codec or not media_t or call.state != pj.PJSIP_INV_STATE_CONFIRMED:
            return
        if not getattr(call, "codec_changed", False) and time.monotonic() - media_t >= a.reinvite_at:
            call.codec_changed = True
            try:
                before = call.getStreamInfo(0).codecName
                for c in self.ep.codecEnum2():
                    self.ep.codecSetPriority(c.codecId, 255 if c.codecId.startswith(a.reinvite_codec) else 0)
                call.reinvite(pj.CallOpParam(True))
                say(event="reinvite", call=call.index, before=before, t=time.time())
            except pj.Error as exc:
                say(event="error", where="reinvite", error=exc.reason)
        if getattr(call, "codec_changed", False) and not getattr(call, "codec_reported", False) \
                and call.media_changes >= 2 and call.media_active:
            call.codec_reported = True
            say(event="codec", call=call.index, codec=call.getStreamInfo(0).codecName, t=time.time())

    def _attended(self, call, since: float) -> None:
        """``--consult URI --consult-at S --refer-at S2``: attended transfer.  The agent calls URI (a colleague)
        at S, then at S2 sends REFER with Replaces on the customer's call (``xferReplaces``)."""
        a = self.a
        consult = getattr(self, "consult_call", None)
        if consult is None and since >= a.consult_at:
            consult = self.consult_call = _Call(self, self.acc)
            consult.index = len(self.calls)
            self.calls.append(consult)
            consult.makeCall(a.consult, pj.CallOpParam(True))
            say(event="consult", call=consult.index, t=time.time())
        elif consult is not None and not getattr(call, "referred", False) and since >= a.refer_at \
                and consult.state == pj.PJSIP_INV_STATE_CONFIRMED:
            call.referred = True
            try:
                call.xferReplaces(consult, pj.CallOpParam(True))
                say(event="refer", call=call.index, replaces=True, t=time.time())
            except pj.Error as exc:
                say(event="error", where="xferReplaces", error=exc.reason)

    def _transfer(self, call) -> None:
        """``--refer-to URI --refer-at S``: blind transfer (REFER) S seconds after media started; hang up once
        the transfer's final NOTIFY arrived."""
        a = self.a
        media_t = getattr(call, "media_t", None)
        if a.consult and call.index == 0 and media_t and call.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self._attended(call, time.monotonic() - media_t)
        if not a.refer_to or not media_t or call.state != pj.PJSIP_INV_STATE_CONFIRMED:
            if getattr(call, "xfer_done", False) and not getattr(call, "hung", False) and \
                    call.state == pj.PJSIP_INV_STATE_CONFIRMED:
                call.hung = True
                try:
                    call.hangup(pj.CallOpParam())
                except pj.Error:
                    pass
            return
        if not getattr(call, "referred", False) and time.monotonic() - media_t >= a.refer_at:
            call.referred = True
            try:
                call.xfer(a.refer_to, pj.CallOpParam(True))
                say(event="refer", call=call.index, to=a.refer_to, t=time.time())
            except pj.Error as exc:
                say(event="error", where="refer", error=exc.reason)
        if getattr(call, "xfer_done", False) and not getattr(call, "hung", False):
            call.hung = True
            try:
                call.hangup(pj.CallOpParam())
            except pj.Error:
                pass

    def _secure_infos(self, call) -> None:
        """``--secure-info on@3,off@6``: the agent side (a PBX/CTI) switches the guard's secure mode with
        SIP INFO application/x-dtmfguard-secure that long after media started; prints when each went out."""
        media_t = getattr(call, "media_t", None)
        if not self.a.secure_info or not media_t or call.state != pj.PJSIP_INV_STATE_CONFIRMED:
            return
        done = call.__dict__.setdefault("secure_sent", set())
        for i, item in enumerate(self.a.secure_info.split(",")):
            word, _, at = item.partition("@")
            if i in done or time.monotonic() - media_t < float(at):
                continue
            done.add(i)
            req = pj.CallSendRequestParam()
            req.method = "INFO"
            if self.a.secure_header:
                req.txOption.headers.append(_sip_header("X-Dtmfguard-Secure", word))
                req.txOption.contentType = "text/plain"
                req.txOption.msgBody = "secure switch"
            else:
                req.txOption.contentType = "application/x-dtmfguard-secure"
                req.txOption.msgBody = word
            try:
                call.sendRequest(req)
                say(event="secure_info", call=call.index, value=word, t=time.time())
            except pj.Error as exc:
                say(event="error", where="secure_info", error=exc.reason)

    def run(self, ep) -> int:
        a = self.a
        self.ep = ep
        self.acc = _Account(self)
        self.acc.create(_account(a, "agent"))
        say(event="ready", port=a.port)
        stop = {"flag": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
        deadline = time.monotonic() + a.timeout
        wired = set()
        answered = set()
        rec = am = None
        while not stop["flag"] and time.monotonic() < deadline:
            ep.libHandleEvents(10)
            _raise_late_threads()
            while self.pending:
                call = self.pending.pop(0)
                op = pj.CallOpParam()
                op.statusCode = a.reject or (183 if a.early_media else 180)  # 183: with SDP, early media
                if a.pai:
                    op.txOption.headers.append(_sip_header("P-Asserted-Identity", a.pai))
                call.answer(op)
                if not a.reject and not a.no_answer:
                    call.answer_due = time.monotonic() + (a.early_media or a.answer_delay)
            for call in self.calls:
                due = getattr(call, "answer_due", None)
                if due is not None and call.index not in answered and time.monotonic() >= due:
                    answered.add(call.index)
                    op = pj.CallOpParam()
                    op.statusCode = 200
                    if a.pai:
                        op.txOption.headers.append(_sip_header("P-Asserted-Identity", a.pai))
                    try:
                        call.answer(op)
                    except pj.Error:
                        pass
                if call.media_active and call.index not in wired and (call.state == pj.PJSIP_INV_STATE_CONFIRMED or (
                        a.early_media and call.state == pj.PJSIP_INV_STATE_EARLY)):
                    wired.add(call.index)
                    am = call.getAudioMedia(-1)
                    if a.record_dir:
                        rec = pj.AudioMediaRecorder()
                        rec.createRecorder(os.path.join(a.record_dir, f"call-{call.index}.wav"))
                        am.startTransmit(rec)
                        self.recorders.append(rec)
                        call.recorder = rec
                    if a.echo:
                        am.startTransmit(am)
                    if a.play:  # an IVR prompt (during early media with --early-media)
                        player = pj.AudioMediaPlayer()
                        player.createPlayer(a.play, pj.PJMEDIA_FILE_NO_LOOP)
                        player.startTransmit(am)
                        self.recorders.append(player)
                        call.sources.append(player)
                        player = None
                    call.srtp = media_is_srtp(call)
                    say(event="media", call=call.index, t=time.time(), srtp=call.srtp)
                    call.media_t = time.monotonic()
                if a.hangup_after and getattr(call, "media_t", None) and not getattr(call, "hung", False) \
                        and time.monotonic() - call.media_t > a.hangup_after:
                    call.hung = True
                    try:
                        call.hangup(pj.CallOpParam())
                    except pj.Error:
                        pass
                self._hold_and_record(call)
                self._secure_infos(call)
                self._transfer(call)
                self._codec_change(call)
                self._agent_keys(call)
                if call.disconnected_at and getattr(call, "recorder", None) is not None:
                    # close the WAV and free its conference slot (media_ports is small): long runs
                    # (benchmarks/soak.py) take hundreds of calls; in the main loop, not in a callback
                    self.recorders.remove(call.recorder)
                    call.recorder = None
            if a.calls and sum(1 for c in self.calls if c.disconnected_at) >= a.calls:
                break
        call = rec = am = None  # noqa: F841 - no pjsua2 object may outlive libDestroy (it aborts the process)
        summary = [{"call": c.index, "status": c.status, "dtmf_events": c.dtmf_events,
                    "dtmf_digits": c.dtmf_digits, "keys": c.keys, "confirmed": c.confirmed_at is not None, "srtp": c.srtp}
                   for c in self.calls]
        say(event="done", calls=summary)

        def release():
            self.recorders.clear()
            self.calls.clear()
            self.consult_call = None
            self.acc = None

        destroy_endpoint(ep, release, wait_s=0.5)
        return 0


class Customer:
    """Calls ``--to``, plays ``--play``, then sends RFC 2833 and SIP INFO digits, then hangs up."""

    def __init__(self, a):
        self.a = a

    def incoming(self, prm):  # a customer peer takes no calls
        c = pj.Call(self.acc, prm.callId)
        op = pj.CallOpParam()
        op.statusCode = 486
        c.answer(op)

    def run_many(self, ep) -> int:
        """``--count K`` calls at once (benchmarks): play ``--play`` looped on all, record each, hang up."""
        a = self.a
        self.calls = []
        for i in range(a.count):
            c = _Call(self, self.acc)
            c.index = i
            c.makeCall(a.to, pj.CallOpParam(True))
            self.calls.append(c)
            _run_loop(ep, lambda: False, 0.05)
        done = lambda c: c.state == pj.PJSIP_INV_STATE_DISCONNECTED or (  # noqa: E731
            c.media_active and c.state == pj.PJSIP_INV_STATE_CONFIRMED)
        _run_loop(ep, lambda: all(done(c) for c in self.calls), a.timeout)
        live = [c for c in self.calls if c.state == pj.PJSIP_INV_STATE_CONFIRMED and c.media_active]
        self.media = []
        for c in live:  # recorders and players all start within one loop iteration
            am = c.getAudioMedia(-1)
            rec = pj.AudioMediaRecorder()
            rec.createRecorder(os.path.join(a.record_dir, f"{a.port}-{c.index}.wav"))
            am.startTransmit(rec)
            player = pj.AudioMediaPlayer()
            player.createPlayer(a.play, 0)
            player.startTransmit(am)
            self.media += [rec, player]
        am = rec = player = None
        say(event="connected", calls=len(live), t=time.time())
        _run_loop(ep, lambda: False, a.play_s)
        for c in live:
            if c.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                try:
                    c.hangup(pj.CallOpParam())
                except pj.Error:
                    pass
        _run_loop(ep, lambda: all(c.state == pj.PJSIP_INV_STATE_DISCONNECTED for c in self.calls), 5)
        say(event="done", connected=len(live), statuses=[c.status for c in self.calls])
        c = live = None

        def release():
            self.media.clear()
            self.calls.clear()
            self.acc = None

        destroy_endpoint(ep, release, wait_s=0.5)
        return 0

    def run(self, ep) -> int:
        a = self.a
        self.acc = _Account(self)
        self.acc.create(_account(a, "customer"))
        say(event="ready", port=a.port)
        if a.count > 1 or a.record_dir:
            return self.run_many(ep)
        call = self.call = _Call(self, self.acc)
        op = pj.CallOpParam(True)
        if a.from_user or a.from_display:  # a carrier's caller id: who the agent's phone should show
            uri = f"sip:{a.from_user or 'customer'}@127.0.0.1:{a.port}"
            op.txOption.localUri = f'"{a.from_display}" <{uri}>' if a.from_display else f"<{uri}>"
        for item in a.header or ():
            name, _, value = item.partition(":")
            op.txOption.headers.append(_sip_header(name.strip(), value.strip()))
        call.makeCall(a.to, op)
        early = {}

        def record_early() -> None:  # --early: record and play from the first media (183 early media) on
            if a.early and call.media_active and not early:
                am = call.getAudioMedia(-1)
                early["on"] = True
                if a.record:
                    early["rec"] = pj.AudioMediaRecorder()
                    early["rec"].createRecorder(a.record)
                    am.startTransmit(early["rec"])
                    call.sinks.append(early["rec"])
                if a.play:
                    early["player"] = pj.AudioMediaPlayer()
                    early["player"].createPlayer(a.play, pj.PJMEDIA_FILE_NO_LOOP)
                    early["player"].startTransmit(am)
                    call.sources.append(early["player"])
                say(event="recording", early=call.state != pj.PJSIP_INV_STATE_CONFIRMED, t=time.time())

        def connected_or_gone() -> bool:
            record_early()
            return call.media_active and call.state == pj.PJSIP_INV_STATE_CONFIRMED \
                or call.state == pj.PJSIP_INV_STATE_DISCONNECTED

        ok = _run_loop(ep, connected_or_gone, a.cancel_after or a.timeout)
        if a.cancel_after and call.state not in (pj.PJSIP_INV_STATE_CONFIRMED, pj.PJSIP_INV_STATE_DISCONNECTED):
            call.hangup(pj.CallOpParam())  # CANCEL while ringing
            _run_loop(ep, lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 5)
            ok = False
        result = {"event": "done", "status": call.status, "connected": bool(ok and call.media_active)}
        player = recorder = None
        if result["connected"] and call.state == pj.PJSIP_INV_STATE_CONFIRMED:
            am = call.getAudioMedia(-1)
            if a.record and not early:
                recorder = pj.AudioMediaRecorder()
                recorder.createRecorder(a.record)
                am.startTransmit(recorder)
                call.sinks.append(recorder)
            if a.play and not early:
                player = pj.AudioMediaPlayer()
                player.createPlayer(a.play, pj.PJMEDIA_FILE_NO_LOOP)
                player.startTransmit(am)
                call.sources.append(player)
            result["media_t"] = time.time()
            result["srtp"] = media_is_srtp(call)
            try:  # the negotiated codec, e.g. "G722/16000": tests check that a codec choice took effect
                info = call.getStreamInfo(0)
                result["codec"] = f"{info.codecName}/{info.codecClockRate}"
            except pj.Error:
                result["codec"] = None
            info = None
            alive = lambda: call.state != pj.PJSIP_INV_STATE_DISCONNECTED  # noqa: E731
            if a.hold_at and a.hold_at < a.play_s:
                _run_loop(ep, lambda: not alive(), a.hold_at)
                call.setHold(pj.CallOpParam(True))
                say(event="hold", call=0, t=time.time())
                _run_loop(ep, lambda: not alive(), a.hold_s)
                unhold = pj.CallOpParam(True)
                unhold.opt.flag = pj.PJSUA_CALL_UNHOLD
                call.reinvite(unhold)
                say(event="resume", call=0, t=time.time())
                _run_loop(ep, lambda: not alive(), 0.3)
                if call.media_active:  # the player's connection survives a re-INVITE; re-attach to be sure
                    am = call.getAudioMedia(-1)
                    if player is not None:
                        player.startTransmit(am)
                    if recorder is not None:
                        am.startTransmit(recorder)
                    am = None
                say(event="resumed", media=call.media_active)
                _run_loop(ep, lambda: not alive(), a.play_s - a.hold_at - a.hold_s - 0.3)
            else:
                _run_loop(ep, lambda: not alive(), a.play_s)
            if (a.rfc2833 or a.info) and alive():
                # pjmedia sends RFC 4733 packets from the stream's put_frame, which the conference bridge calls
                # with audio only while a source feeds the call: after --play ended, keys came out late or
                # not at all (measured).  A looped silent source keeps the stream clocked.
                call.sources.append(_silence_source(call.getAudioMedia(-1)))
            if a.rfc2833 and alive():
                prm = pj.CallSendDtmfParam()
                prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
                prm.digits = a.rfc2833
                prm.duration = a.digit_ms
                call.sendDtmf(prm)
                _run_loop(ep, lambda: not alive(), len(a.rfc2833) * (a.digit_ms + 120) / 1000 + 0.5)
            for d in a.info or "":
                if not alive():
                    break
                prm = pj.CallSendDtmfParam()
                prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
                prm.digits = d
                prm.duration = a.digit_ms
                call.sendDtmf(prm)
                _run_loop(ep, lambda: not alive(), 0.3)
            bodies = [("application/dtmf", d) for d in a.info_dtmf or ""]
            for ctype, body in bodies + [tuple(x.split("|", 1)) for x in a.info_body or ()]:
                if not alive():
                    break
                req = pj.CallSendRequestParam()
                req.method = "INFO"
                req.txOption.contentType = ctype
                req.txOption.msgBody = body
                call.sendRequest(req)
                _run_loop(ep, lambda: not alive(), 0.3)
            _run_loop(ep, lambda: not alive(), a.tail_s)
            if alive():
                call.hangup(pj.CallOpParam())
                _run_loop(ep, lambda: not alive(), 3)
        result["status"] = call.status
        result["offers"] = list(call.offers)
        say(**result)

        def release():
            nonlocal player, recorder, call
            early.clear()
            call.sources.clear()
            call.sinks.clear()
            player = recorder = call = None
            self.call = None
            self.acc = None

        destroy_endpoint(ep, release, wait_s=0.5)
        return 0 if result["connected"] else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtmfguard.sip.pj.peers",
                                description="pjsua2 test peers: a customer that calls, an agent that answers.")
    p.add_argument("role", choices=("customer", "agent"))
    p.add_argument("--port", type=int, required=True, help="local SIP port (UDP, on --host)")
    p.add_argument("--host", default="127.0.0.1", help="local address for SIP and RTP (default 127.0.0.1)")
    p.add_argument("--rtp", type=int, required=True, help="first local RTP port (40 ports are used)")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    p.add_argument("--tls-cert", help="also open a TLS transport on --port + 1 with this certificate (PEM)")
    p.add_argument("--tls-key", help="its private key (PEM)")
    p.add_argument("--tls-ca", help="CA file (PEM) for verifying TLS peers (with --tls-verify)")
    p.add_argument("--tls-verify", action="store_true", help="verify the server certificate of outgoing TLS")
    p.add_argument("--srtp", choices=("off", "optional", "mandatory"), default="off", help="SRTP (SDES) use")
    p.add_argument("--srtp-require-tls", action="store_true",
                   help="mandatory SRTP only over TLS signalling (pjsua srtpSecureSignaling = 1)")
    p.add_argument("--jitter-ms", type=int, default=-1, help="fixed jitter-buffer prefetch (benchmarks)")
    p.add_argument("--codec", help="offer/accept only this codec, e.g. G722/16000 or PCMA/8000")
    p.add_argument("--hold-at", type=float, default=0.0,
                   help="put the call on hold this far into --play (customer) or after media starts (agent)")
    p.add_argument("--hold-s", type=float, default=1.0, help="hold this long, then resume")
    # customer
    p.add_argument("--to", help="URI to call (customer)")
    p.add_argument("--play", help="16-bit mono WAV to play once connected (customer), or once media starts (agent)")
    p.add_argument("--play-s", type=float, default=0.0, help="seconds to let --play run before the signalled digits")
    p.add_argument("--record", help="WAV file for the audio the customer hears")
    p.add_argument("--early", action="store_true",
                   help="customer: start --record and --play with the first media (early media), not at the answer")
    p.add_argument("--rfc2833", default="", help="digits sent as RFC 4733 events after --play")
    p.add_argument("--info", default="", help="digits sent as SIP INFO application/dtmf-relay")
    p.add_argument("--info-dtmf", default="", help="digits sent as SIP INFO application/dtmf")
    p.add_argument("--info-body", action="append", metavar="CTYPE|BODY",
                   help="customer: also send a SIP INFO with this Content-Type and body (repeatable)")
    p.add_argument("--digit-ms", type=int, default=100)
    p.add_argument("--from-user", default="", help="customer: From user part (the caller's number)")
    p.add_argument("--from-display", default="", help="customer: From display name")
    p.add_argument("--header", action="append", metavar="NAME: VALUE",
                   help="customer: an extra INVITE header, e.g. 'P-Asserted-Identity: <sip:+4420@carrier>'")
    p.add_argument("--count", type=int, default=1, help="customer: this many simultaneous calls (max 4)")
    p.add_argument("--cancel-after", type=float, default=0.0, help="customer: hang up (CANCEL) if not answered by then")
    p.add_argument("--tail-s", type=float, default=0.5)
    p.add_argument("--session-expires", type=int, default=0,
                   help="offer RFC 4028 session timers with this interval (s, >= 90; 0: pjsua's defaults)")
    # agent
    p.add_argument("--record-dir", help="agent: write call-N.wav here; customer with --count: <port>-N.wav")
    p.add_argument("--echo", action="store_true", help="agent: send each call's audio back (latency)")
    p.add_argument("--calls", type=int, default=1, help="agent: exit after this many calls ended (0: never)")
    p.add_argument("--reject", type=int, default=0, help="agent: answer every call with this code (e.g. 486)")
    p.add_argument("--no-answer", action="store_true", help="agent: ring forever")
    p.add_argument("--answer-delay", type=float, default=0.1)
    p.add_argument("--hangup-after", type=float, default=0.0, help="agent: hang up this long after media starts")
    p.add_argument("--pai", default="", help="agent: P-Asserted-Identity in its answers (the agent's identity)")
    p.add_argument("--early-media", type=float, default=0.0,
                   help="agent: answer 183 with SDP (early media: --play is heard before the answer), 200 after this")
    p.add_argument("--keys", default="", help="agent: send RFC 4733 keys, e.g. '*#1@3,*#0@6' (seconds after media)")
    p.add_argument("--reinvite-codec", default="", help="agent: change to this codec mid-call (re-INVITE)")
    p.add_argument("--reinvite-at", type=float, default=2.0, help="agent: ... this long after media started")
    p.add_argument("--consult", default="", help="agent: attended transfer: consult this URI first (see --refer-at)")
    p.add_argument("--consult-at", type=float, default=1.0, help="agent: ... this long after media started")
    p.add_argument("--refer-to", default="", help="agent: transfer the call (REFER) to this URI")
    p.add_argument("--refer-at", type=float, default=2.0, help="agent: ... this long after media started")
    p.add_argument("--secure-info", default="",
                   help="agent: switch the guard's secure mode by SIP INFO, e.g. on@3,off@6 (seconds after media)")
    p.add_argument("--secure-header", action="store_true",
                   help="agent: send --secure-info as an X-Dtmfguard-Secure header instead of the body")
    p.add_argument("--priority", choices=("auto", "off"), default="auto",
                   help="auto: run pjmedia's clock and media threads and the SIP loop under SCHED_RR where "
                        "allowed, so that the peer's audio goes out every 20 ms on a loaded test machine as a "
                        "carrier's would "
                        "(default auto; off: the normal scheduler)")
    a = p.parse_args(argv)
    sched.configure(a.priority)
    ep = create_endpoint(_settings(a))
    sched.raise_sip_thread()  # this thread runs the SIP loop: above the RTP thread (sched.MEDIA_THREAD_NAMES)
    peer = Customer(a) if a.role == "customer" else Agent(a)
    return peer.run(ep)


if __name__ == "__main__":
    sys.exit(main())
