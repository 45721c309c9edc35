# SPDX-License-Identifier: GPL-2.0-or-later
"""pjsua2 Endpoint set-up and tear-down shared by the guard and the test peers.

Why each setting (measured, see the pjsua2 notes):

* the wheel has no sound device: ``setNullDev()`` makes the null device's clock
  thread drive the conference bridge;
* bridge clock 8000 Hz and frame 20 ms = ptime: a bridge frame that differs from
  ptime adds ~40 ms; G.722 legs (16 kHz) are resampled by the bridge, so the
  detector and masker always see 8 kHz;
* no VAD (silence suppression would starve the detector), echo canceller off
  (it would alter the customer's audio, and tones);
* codec priorities set explicitly: the wheel's default puts speex/16000 first;
* ``threadCnt = 0``: SIP callbacks run on the Python main loop in
  :func:`handle_events`, so pjsua2 calls happen on one registered thread;
* tear-down order that exits 0: hang up, wait, drop media objects, collect,
  then ``libDestroy`` (destroying a port after ``libDestroy`` aborts);
* SRTP (RFC 3711) is an account setting in pjsua (``srtpUse``, keys by SDES,
  RFC 4568): one account per leg gives each leg its own policy
  (:func:`set_srtp`).  pjsua itself refuses a mandatory-SRTP call whose
  signalling is not TLS when ``srtpSecureSignaling`` is 1: SDES keys travel in
  the SDP, so clear SIP would hand them to anyone who sees the signalling;
* TLS certificate verification is a transport setting: a second TLS transport
  that verifies the server (``verify_tls_transport``) carries the outgoing
  agent leg, so the customer-facing listener keeps its own behaviour.
"""
from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field

import pjsua2 as pj

from ... import logthrottle

__all__ = ["EndpointSettings", "PjLogBridge", "create_endpoint", "destroy_endpoint", "CODEC_PRIORITIES",
           "set_srtp", "media_is_srtp", "SRTP_USE"]

log = logging.getLogger(__name__)
logthrottle.install(log)  # one line per request refused: a flood must not fill the disk

#: Codec priorities (pjsua2: 0 disables, 255 highest).  Speex, GSM, iLBC, L16 are disabled on purpose:
#: lossy low-bit-rate codecs distort DTMF and the masker's tone.
CODEC_PRIORITIES = {"PCMU/8000": 255, "PCMA/8000": 254, "G722/16000": 253}


#: GuardConfig's SRTP modes -> pjmedia_srtp_use
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}

#: pjsip log levels (1 error .. 6 trace) -> Python logging levels
_PJ_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}
_pj_log = logging.getLogger("dtmfguard.pjsip")


class PjLogBridge(pj.LogWriter):
    """pjsua2's own log lines -> Python logging (logger ``dtmfguard.pjsip``), redacted.

    pjsip logs SIP messages, DTMF events and INFO bodies at its higher levels; every line goes through
    :func:`dtmfguard.security.redact` here and again through the handlers' RedactingFilter, so a key named
    by pjsip never reaches a log file (issue 8).  Called on pjsua2's threads: it must never raise.
    """

    def write(self, entry) -> None:  # pjsua2 callback
        try:
            from ...security import redact

            level = _PJ_LEVELS.get(int(entry.level), logging.DEBUG)
            if _pj_log.isEnabledFor(level):
                _pj_log.log(level, "%s", redact(str(entry.msg).rstrip()))
        except Exception:  # noqa: BLE001 - never into C++
            pass


@dataclass
class EndpointSettings:
    host: str = "127.0.0.1"
    port: int = 5070
    transports: tuple = ("udp", "tcp")
    tls_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    rtp_port: int = 40000
    rtp_range: int = 100
    log_level: int = 0
    user_agent: str = "dtmfguard"
    codecs: dict = field(default_factory=lambda: dict(CODEC_PRIORITIES))
    media_ports: int = 16
    #: > 0: a fixed jitter-buffer prefetch in ms (benchmarks: makes delays comparable run to run);
    #: -1: pjsua's adaptive default
    jitter_ms: int = -1
    #: how the jitter buffer sheds latency after a burst: "progressive" (pjmedia's default: it marks a frame
    #: inside the buffer and skips it when that frame's turn comes, without a counter at that moment) or
    #: "static" (it drops the frame at the head and counts it at once; the buffer keeps up to twice the burst
    #: level).  "static" counts a drop on the frame it happens to (sip/pj/jbuf.py), so relayed in-band
    #: durations were exact (216 of 216 keys within 2 ms; progressive: 214 within 5 ms, worst -19 ms), but
    #: after a stall it drops frames at the head one tick after another: with it in secure mode, 2 of 3
    #: clean-clone suite runs lost or corrupted a key (a relayed key missing, a G.722 card captured wrong),
    #: never seen with progressive.  So the guard keeps progressive; "static" stays available.
    jb_discard: str = "progressive"
    #: also open a TLS transport (ephemeral port, same certificate) that verifies the servers it connects to
    #: against ``tls_ca``, name included (RFC 5922 §7); its id lands in ``ep.dtmfguard_verify_tls_id``
    verify_tls_transport: bool = False
    #: the main TLS listener's own verifyServer (peers' --tls-verify; the guard keeps it off, see above)
    tls_verify_server: bool = False
    #: check every request before pjsua acts on it (:mod:`dtmfguard.sip.pj.edge`); its EdgeGuard lands in
    #: ``ep.dtmfguard_edge`` (None when off or unavailable)
    edge_checks: bool = True
    #: pjsua calls an incoming INVITE needs (the guard: customer + agent leg; a test phone: 1); the edge
    #: answers 503 when the call table cannot take that many more
    edge_legs_per_call: int = 2


def _set_jb_discard(m, algo: int) -> bool:
    """``MediaConfig.jbDiscardAlgo = algo`` (pjmedia_jb_discard_algo: 0 none, 1 static, 2 progressive).  The
    wheel wraps that enum as an opaque pointer and exports none of its values, so the value the getter hands
    out (a heap copy) is changed through ctypes and set back, then read back to check.  False (pjmedia's
    default stays, with a warning) if anything does not match."""
    import ctypes

    try:
        value = m.jbDiscardAlgo
        cell = ctypes.c_int.from_address(int(value))
        if cell.value not in (0, 1, 2):
            raise ValueError("unexpected discard value")
        cell.value = int(algo)
        m.jbDiscardAlgo = value
        if ctypes.c_int.from_address(int(m.jbDiscardAlgo)).value != algo:
            raise ValueError("discard setting not taken")
        return True
    except (TypeError, ValueError, AttributeError) as exc:
        log.warning("jitter-buffer discard setting not applied (%s): relayed in-band durations may be a frame "
                    "short under jitter", exc)
        return False


def create_endpoint(s: EndpointSettings) -> pj.Endpoint:
    """Create, configure and start the Endpoint; return it.  Raises pj.Error on failure."""
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.maxCalls = 4
    cfg.uaConfig.userAgent = s.user_agent
    # pjsip's log goes only through PjLogBridge (redacted, Python logging); nothing straight to the console
    ep._dtmfguard_log_bridge = writer = PjLogBridge()  # keep it alive as long as the endpoint
    cfg.logConfig.writer = writer
    cfg.logConfig.level = s.log_level
    cfg.logConfig.consoleLevel = s.log_level
    m = cfg.medConfig
    m.clockRate = 8000
    m.sndClockRate = 8000
    m.audioFramePtime = 20
    m.ptime = 20
    m.noVad = True
    m.ecTailLen = 0
    m.maxMediaPorts = s.media_ports
    if s.jitter_ms > 0:
        m.jbInit = m.jbMinPre = m.jbMaxPre = s.jitter_ms
        m.jbMax = max(4 * s.jitter_ms, 200)
    if s.jb_discard != "progressive":
        _set_jb_discard(m, {"none": 0, "static": 1}[s.jb_discard])
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    # a transport must exist before any account (else pjsua asserts)
    if "udp" in s.transports:
        t = pj.TransportConfig()
        t.boundAddress = s.host
        t.port = s.port
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, t)
    if "tcp" in s.transports:
        t = pj.TransportConfig()
        t.boundAddress = s.host
        t.port = s.port
        ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, t)
    ep.dtmfguard_verify_tls_id = None
    if "tls" in s.transports:
        ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, _tls_transport(s, s.tls_port or s.port + 1, s.tls_verify_server))
        if s.verify_tls_transport:
            ep.dtmfguard_verify_tls_id = ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, _tls_transport(s, 0, True))
    ep.libStart()
    ep.dtmfguard_edge = None
    if s.edge_checks:
        from .edge import install

        ep.dtmfguard_edge = install(_log_refusal, s.edge_legs_per_call)
    for info in ep.codecEnum2():
        ep.codecSetPriority(info.codecId, 0)
    for cid, prio in s.codecs.items():
        try:
            ep.codecSetPriority(cid, int(prio))
        except pj.Error:
            log.warning("codec %s not available in this pjsua2 build", cid)
    return ep


def _log_refusal(refusal, method: str) -> None:
    """One line per request refused at the edge (SIP thread): status, method, reason; never the request."""
    if refusal.code:
        log.info("refused %s at the edge: %d %s", method if method.isalpha() else "request", refusal.code,
                 refusal.reason)
    else:
        log.info("dropped a malformed ACK at the edge (%s)", refusal.reason)


def _tls_transport(s: EndpointSettings, port: int, verify_server: bool) -> pj.TransportConfig:
    t = pj.TransportConfig()
    t.boundAddress = s.host
    t.port = port
    t.tlsConfig.certFile = s.tls_cert
    t.tlsConfig.privKeyFile = s.tls_key
    if s.tls_ca:
        t.tlsConfig.CaListFile = s.tls_ca
    # on failure pjsip closes the connection and the INVITE fails (PJSIP_TLS_ECERTVERIF): nothing is sent
    t.tlsConfig.verifyServer = verify_server
    return t


def set_srtp(acfg: pj.AccountConfig, mode: str, require_tls: bool) -> pj.AccountConfig:
    """Media encryption of the calls of ``acfg``: ``mode`` off | optional | mandatory, keys by SDES.

    ``require_tls`` (mandatory only) sets ``srtpSecureSignaling = 1``: pjsua then answers a call whose
    signalling is not TLS with 488 and refuses to place one.  Optional SRTP never requires it (it would
    refuse the plain-SIP calls optional is meant to let through).
    """
    m = acfg.mediaConfig
    m.srtpUse = SRTP_USE[mode]
    m.srtpSecureSignaling = 1 if (require_tls and mode == "mandatory") else 0
    m.srtpOpt.keyings = pj.IntVector([pj.PJMEDIA_SRTP_KEYING_SDES])  # no DTLS-SRTP: OpenSSL 1.0.2 here
    return acfg


def media_is_srtp(call: pj.Call) -> bool | None:
    """Whether ``call``'s active audio stream is encrypted (SRTP active); None without active audio.

    The SDP profile is not enough: optional SRTP runs over an RTP/AVP m-line carrying a=crypto, so the
    answer comes from the SRTP transport itself, as pjsua's call dump reports it ("SRTP status: Active").
    The dump holds stream statistics and the crypto-suite name, never keys or DTMF.
    """
    try:
        info = call.getInfo()  # keep it: iterating getInfo().media directly reads freed memory (SWIG)
        if not any(m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE for m in info.media):
            return None
        return "SRTP status: Active" in call.dump(True, "")
    except pj.Error:
        return None


def account_config(s: EndpointSettings, user: str = "guard", session_expires_s: int = 0) -> pj.AccountConfig:
    """An account without registrar, with this process's own RTP port range.

    ``session_expires_s`` > 0 offers RFC 4028 session timers: if a worker dies mid-call, peers that
    support them end the orphaned legs within that time instead of keeping them up forever.
    """
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{user}@{s.host}:{s.port}"
    if session_expires_s:
        acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
        acfg.callConfig.timerMinSESec = min(90, session_expires_s)
        acfg.callConfig.timerSessExpiresSec = max(90, session_expires_s)
    tc = acfg.mediaConfig.transportConfig
    tc.port = s.rtp_port
    tc.portRange = s.rtp_range
    tc.boundAddress = s.host
    return acfg


def handle_events(ep: pj.Endpoint, ms: int = 20) -> None:
    ep.libHandleEvents(ms)


def destroy_endpoint(ep: pj.Endpoint, release=lambda: None, wait_s: float = 1.0) -> None:
    """Hang up everything, let BYEs go out, drop media objects (``release``), then destroy the library."""
    try:
        ep.hangupAllCalls()
    except pj.Error:
        pass
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        ep.libHandleEvents(20)
    try:
        release()
    finally:
        gc.collect()
        ep.libDestroy()
