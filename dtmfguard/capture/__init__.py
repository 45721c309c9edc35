# SPDX-License-Identifier: GPL-2.0-or-later
"""Payment capture: key presses in, card details to the processor only, masked progress to the agent.

Why a package of its own: this is the only part of dtmfguard that ever holds card data, so it is kept
small and separate (PCI DSS v4.0 Req. 1-3 scope: the fewer components touch card data, the fewer are in
scope).  Modules, one concern each:

* :mod:`.card` — Luhn, IIN brands, expiry, security code; :class:`CardDetails` (repr: brand + last 4).
* :mod:`.fields` — the field sequence (card number, expiry, security code, optional amount, postcode …).
* :mod:`.session` — :class:`PaymentSession`, the state machine fed DigitEvents from the media path.
* :mod:`.policy` — :class:`PaymentPolicy`: fields, timeouts and attempts, frozen, shared by sessions.
* :mod:`.states` — the session states by name (:data:`TERMINAL_STATES`), importable at no cost.
* :mod:`.feed` — masked agent-feed events (callbacks, JSON lines).
* :mod:`.gateways` — the Gateway interface, built-in ``vault`` and ``webhook``, plugin loading.
* :mod:`.limits` — per-agent authority limits and supervisor approval.
* :mod:`.audit` — hash-chained JSON lines audit trail and its verifier.
"""
from __future__ import annotations

from .audit import AuditError, AuditReport, AuditTrail, verify_file
from .card import CardDetails, card_brand, check_card_number, check_expiry, check_security_code, luhn_valid
from .feed import EVENT_TYPES, AgentFeed
from .fields import DEFAULT_FIELDS, FIELDS, FieldSpec
from .gateways import (
    Gateway, GatewayConfigError, GatewayError, GatewayResult, GatewayUnavailable, PaymentRequest,
    available_gateways, load_gateway,
)
from .limits import AgentLimit, AgentLimits, DailyLedger, LimitDecision, LimitsError
from .policy import DEFAULT_POLICY, PaymentPolicy
from .session import PaymentSession
from .states import TERMINAL_STATES, is_terminal

__all__ = [
    "AgentFeed", "AgentLimit", "DEFAULT_POLICY", "PaymentPolicy", "is_terminal", "AgentLimits", "AuditError", "AuditReport", "AuditTrail", "CardDetails",
    "DailyLedger", "DEFAULT_FIELDS", "EVENT_TYPES", "FIELDS", "FieldSpec", "Gateway", "GatewayConfigError",
    "GatewayError", "GatewayResult", "GatewayUnavailable", "LimitDecision", "LimitsError", "PaymentRequest",
    "PaymentSession", "TERMINAL_STATES", "available_gateways", "card_brand", "check_card_number",
    "check_expiry", "check_security_code", "load_gateway", "luhn_valid", "verify_file",
]
