# SPDX-License-Identifier: GPL-2.0-or-later
"""A worker's orderly stop: every call ends with the answer its state calls for, then the endpoint goes.

What each leg gets when ``serve`` (or one worker) stops:

* customer leg not answered yet (the agent still rings): ``503 Service Unavailable`` with ``Retry-After``
  (RFC 3261 §21.5.4: the server is temporarily unable; a proxy in front may try another worker), and
  the agent leg a CANCEL;
* answered and acknowledged, on hold or not: a BYE on both legs;
* answered but never acknowledged (the ACK was lost, e.g. behind a proxy whose Record-Route the peer
  ignored): pjsip rightly waits for the ACK or for the 2xx retransmissions to time out (64*T1 = 32 s,
  RFC 3261 §13.3.1.4) before it sends the BYE (§15: a UAS may not send BYE before the ACK).  A stopping
  process cannot wait 32 s (systemd's stop timeout, the supervisor's), and the customer believes the call
  is up.  So such a leg's dialog (recorded by :class:`~dtmfguard.sip.pj.dialogs.DialogBook` from the messages
  themselves) is ended after the endpoint is gone, with a BYE of our own (:mod:`dtmfguard.sip.orphans`):
  the 2xx retransmissions have stopped by then, the customer's UA has the dialog confirmed and answers it.

Before issue 18 the stop of a worker with an unacknowledged leg aborted the process (a Call object left in
the main loop's action queue was collected after ``libDestroy``: an assertion in
``pjsua_call_set_user_data``); :meth:`Guard.shutdown` now drops the queue first.
"""
from __future__ import annotations

import copy
import logging
import time

import pjsua2 as pj

__all__ = ["end_all_calls"]

log = logging.getLogger(__name__)

#: seconds a caller told 503 should wait before retrying this guard (it is restarting or going away)
RETRY_AFTER_S = 5


def _state(leg) -> int:
    try:
        return leg.getInfo().state if leg is not None and leg.isActive() else pj.PJSIP_INV_STATE_DISCONNECTED
    except pj.Error:
        return pj.PJSIP_INV_STATE_DISCONNECTED


def end_all_calls(guard, grace_s: float = 4.0) -> dict:
    """End every call of ``guard`` (main thread), destroy its endpoint, BYE unacknowledged legs; summary."""
    with guard._lock:
        bridges = list(guard.bridges.values())
    summary = {"calls": 0, "unanswered": 0, "unacknowledged": 0, "confirmed": 0, "bye_after_stop": []}
    unacked = []
    for b in bridges:
        if b.state == "ended":
            continue
        summary["calls"] += 1
        state = _state(b.customer)
        try:
            if state in (pj.PJSIP_INV_STATE_INCOMING, pj.PJSIP_INV_STATE_EARLY) and not b.customer_gone:
                summary["unanswered"] += 1
                b.reason = b.reason or "guard-stopping"
                op = pj.CallOpParam()
                op.statusCode = 503
                op.reason = "Service Unavailable"
                h = pj.SipHeader()
                h.hName, h.hValue = "Retry-After", str(RETRY_AFTER_S)
                op.txOption.headers.append(h)
                b.customer.answer(op)
            elif state == pj.PJSIP_INV_STATE_CONNECTING:
                summary["unacknowledged"] += 1
                rec = guard.dialogs.legs.get(f"{b.id}/customer")
                if rec is not None and rec.confirmed:
                    unacked.append(copy.deepcopy(rec))
                b.reason = b.reason or "guard-stopping"
                guard._hangup(b.customer)
            elif state == pj.PJSIP_INV_STATE_CONFIRMED:
                summary["confirmed"] += 1
                b.reason = b.reason or "guard-stopping"
                guard._hangup(b.customer)
        except pj.Error as exc:
            log.warning("%s: customer leg not ended cleanly (%s)", b.id, exc.reason)
        guard._hangup(b.agent)  # BYE, or CANCEL while it rings
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        guard.poll(20)
        with guard._lock:
            if all(b.state == "ended" for b in guard.bridges.values()):
                break
    guard.poll(20)  # the last queued actions (agent CANCEL/BYE after a customer leg ended)
    guard.shutdown()
    if unacked:
        from ..orphans import end_legs

        summary["bye_after_stop"] = end_legs(unacked, timeout_s=min(4.0, grace_s))
    return summary
