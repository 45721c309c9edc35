# SPDX-License-Identifier: GPL-2.0-or-later
"""The states of a payment session, named once.

Why a module of its own with no imports: the worker's control API, the box endpoint and the demo all ask
"has this payment ended?"; they import the names from here instead of repeating the strings, and
importing them costs nothing (no gateways, no thread pools).
"""
from __future__ import annotations

__all__ = [
    "COLLECTING", "AWAITING_APPROVAL", "SUBMITTING", "COMPLETED", "DECLINED", "ABANDONED", "TIMED_OUT",
    "FAILED_VALIDATION", "REFUSED", "GATEWAY_UNAVAILABLE", "GATEWAY_ERROR", "ERROR", "TERMINAL_STATES",
    "is_terminal",
]

#: while the session runs
COLLECTING, AWAITING_APPROVAL, SUBMITTING = "collecting", "awaiting_approval", "submitting"

#: how a session ends (``PaymentSession.state`` once finished); see :mod:`.session` for each meaning
COMPLETED = "completed"
DECLINED = "declined"
ABANDONED = "abandoned"
TIMED_OUT = "timed_out"
FAILED_VALIDATION = "failed_validation"
REFUSED = "refused"
GATEWAY_UNAVAILABLE = "gateway_unavailable"
GATEWAY_ERROR = "gateway_error"
ERROR = "error"

TERMINAL_STATES = (COMPLETED, DECLINED, ABANDONED, TIMED_OUT, FAILED_VALIDATION, REFUSED,
                   GATEWAY_UNAVAILABLE, GATEWAY_ERROR, ERROR)


def is_terminal(state: object) -> bool:
    """True once a session in ``state`` has ended (any value that is not a state name: False)."""
    return state in TERMINAL_STATES
