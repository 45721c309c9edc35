# SPDX-License-Identifier: GPL-2.0-or-later
"""The worker's dialog records fed from pjsua2's transaction events.

Why a separate module: the records and their file (:mod:`dtmfguard.sip.dialogs`) are pure text work that
the supervisor reads without pjsua2; only reading a message out of pjsua2's ``onCallTsxState`` event needs
pjsua2's constants, so that part lives here, in the one folder that imports pjsua2.
"""
from __future__ import annotations

import pjsua2 as pj

from ..dialogs import STATE_ENV, DialogBook as _DialogBook, log

__all__ = ["DialogBook", "STATE_ENV"]


class DialogBook(_DialogBook):
    """:class:`dtmfguard.sip.dialogs.DialogBook` plus :meth:`tsx_event` (pjsua2's ``onCallTsxState``)."""

    def tsx_event(self, bridge: str, role: str, ev) -> None:
        """pjsua2's ``Call.onCallTsxState`` event: the message sent or received, if any.  Never raises."""
        if not self.path:
            return
        try:
            if ev.type != pj.PJSIP_EVENT_TSX_STATE:
                return
            t = ev.body.tsxState
            if t.type == pj.PJSIP_EVENT_TX_MSG:
                outgoing, src = True, t.src.tdata
            elif t.type == pj.PJSIP_EVENT_RX_MSG:
                outgoing, src = False, t.src.rdata
            else:
                return
            method = t.tsx.method
        except Exception as exc:  # noqa: BLE001 - recording must never disturb the call it records
            log.warning("%s: dialog update not recorded (%s)", bridge, type(exc).__name__)
            return
        self.message(bridge, role, method, outgoing, lambda: src.wholeMsg)
