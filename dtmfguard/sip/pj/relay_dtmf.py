# SPDX-License-Identifier: GPL-2.0-or-later
"""Secure mode on the SIP side: send relayed keys on the agent leg, take secure on/off from the agent side,
report card-run alerts.

The decisions are made elsewhere (:mod:`dtmfguard.media.keyrelay`, on the clock thread); this module only acts, and
only on the guard's main (SIP) thread, the one pjsua registered: pjsua2 calls from any other thread abort
the process (notes/pjsua2.md), which is why the clock thread hands keys over through a deque.

Sending: ``Call.sendDtmf`` with ``PJSUA_DTMF_METHOD_RFC2833`` and the key's measured duration.  pjmedia
(2.15.1 stream.c) queues up to 32 digits per stream and sends each with its own duration, then three end
packets (RFC 4733 §2.5.1.4); measured here: every key arrives with its duration to the millisecond.  An
agent leg that did not negotiate telephone-event gets SIP INFO application/dtmf-relay instead
(``relay_method = "sip-info"`` asks for it always).

Secure mode from the agent side (a PBX or CTI without the control API): an in-dialog SIP INFO on the
agent leg with ``Content-Type: application/x-dtmfguard-secure`` and a body ``on`` or ``off``; or any INFO
carrying the header ``X-Dtmfguard-Secure: on|off``.  See :func:`dtmfguard.signalling.sipinfo.parse_secure_request`.
"""
from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

import pjsua2 as pj

from ...media.keyrelay import RelayKey, alert_record  # noqa: F401 - alert_record: b2bua imports it from here

__all__ = ["send_key", "AlertAudit"]

log = logging.getLogger(__name__)


def send_key(call, key: RelayKey, method: str = "rfc4733") -> str:
    """Send one relayed key on ``call`` (main thread only).  Returns the method used: "rfc4733" or
    "sip-info".  Raises ``pj.Error`` if neither could be sent (the caller logs and counts it)."""
    prm = pj.CallSendDtmfParam()
    prm.digits = key.digit
    prm.duration = int(key.duration_ms)
    if method == "rfc4733":
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        try:
            call.sendDtmf(prm)
            return "rfc4733"
        except pj.Error as exc:  # e.g. PJMEDIA_RTP_EREMNORFC2833: the agent side has no telephone-event
            log.info("agent leg takes no RFC 4733 events (%s): relaying as SIP INFO", exc.reason[:80])
    prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
    call.sendDtmf(prm)
    return "sip-info"


class AlertAudit:
    """Writes card-run alerts to the payment audit trail on a thread of its own (the trail fsyncs; the SIP
    loop must not wait for a disk).  Records hold the fact, the call, the agent and the time: no digits."""

    def __init__(self, path: str):
        from ...capture.audit import AuditTrail

        self.trail = AuditTrail(path) if path else None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-audit") \
            if self.trail is not None else None

    def record(self, record: dict[str, Any]) -> None:
        if self._pool is None:
            return
        self._pool.submit(self._write, dict(record))

    def _write(self, record: dict[str, Any]) -> None:
        try:
            self.trail.append(record)
        except Exception as exc:  # noqa: BLE001 - AuditError, OSError: say so, never with a record's content
            log.error("card-run alert could not be written to the audit trail (%s)", type(exc).__name__)

    def close(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait)


