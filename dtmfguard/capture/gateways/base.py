# SPDX-License-Identifier: GPL-2.0-or-later
"""The gateway interface: how captured card details leave dtmfguard, and only toward the processor.

A gateway gets a :class:`PaymentRequest` (card details, amount, reference and an idempotency key) and
returns a :class:`GatewayResult`.  The idempotency key is made once per payment session and reused on
every retry, so a processor that honours it (Stripe and Adyen do: ``Idempotency-Key``) never charges
twice when a response was lost.  Tokens and keys use letters only, so they can never be mistaken for a
card number or scanned as one (PCI SSC Tokenization Guidelines: tokens distinguishable from PANs).

Exceptions raised by gateways must not carry card data in their message; the session reports
:class:`GatewayUnavailable` as an outage and any other exception as an error, showing the message only
for :class:`GatewayError` (written by us), and only the type for anything else.
"""
from __future__ import annotations

import abc
import secrets
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ..card import CardDetails

__all__ = [
    "Gateway", "GatewayConfigError", "GatewayError", "GatewayResult", "GatewayUnavailable", "PaymentRequest",
    "RESULT_STATUSES", "new_idempotency_key", "new_token",
]

#: approved/declined: an authorisation was attempted; tokenised: card stored for later use;
#: error: the processor refused the request itself; unavailable: the processor could not be reached.
RESULT_STATUSES = ("approved", "declined", "tokenised", "error", "unavailable")

_LETTERS = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"  # no digits, no l/I/O look-alikes


def _letters(count: int) -> str:
    return "".join(secrets.choice(_LETTERS) for _ in range(count))


def new_idempotency_key() -> str:
    """A random key (about 140 bits), letters only."""
    return "idem_" + _letters(25)


def new_token() -> str:
    """A random card token (about 140 bits), letters only so it can never look like a PAN."""
    return "tok_" + _letters(25)


class GatewayError(Exception):
    """The gateway refused or failed the request; the message is safe to show (no card data)."""


class GatewayUnavailable(GatewayError):
    """The processor could not be reached (connection refused, timeouts, 5xx after all retries)."""


class GatewayConfigError(GatewayError, ValueError):
    """The gateway is misconfigured (missing secret or key, bad URL, unknown plugin)."""


@dataclass(frozen=True, repr=False)
class PaymentRequest:
    """What a gateway receives.  ``amount`` is in minor units (pence, cents); None means tokenise only.

    ``fields`` holds other keyed-in fields by name (postcode, account, reference) as digit strings.
    """

    idempotency_key: str
    card: Optional[CardDetails]
    amount: Optional[int] = None
    currency: str = "GBP"
    reference: Optional[str] = None
    call_id: Optional[str] = None
    agent_id: Optional[str] = None
    session_id: Optional[str] = None
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def operation(self) -> str:
        return "tokenise" if self.amount is None else "authorise"

    def __repr__(self) -> str:
        return (f"PaymentRequest(operation={self.operation}, card={self.card!r}, amount={self.amount}, "
                f"currency={self.currency}, reference={self.reference!r}, "
                f"idempotency_key={self.idempotency_key}, fields={sorted(self.fields)})")

    __str__ = __repr__


@dataclass(frozen=True)
class GatewayResult:
    """The outcome.  ``message`` is short free text, already stripped of any card data."""

    status: str
    token: Optional[str] = None
    authorisation: Optional[str] = None
    message: str = ""
    attempts: int = 1
    gateway: str = ""

    def __post_init__(self) -> None:
        if self.status not in RESULT_STATUSES:
            raise ValueError(f"status must be one of {RESULT_STATUSES}")

    @property
    def succeeded(self) -> bool:
        return self.status in ("approved", "tokenised")


class Gateway(abc.ABC):
    """Authorise or tokenise card details.

    Implementations must be thread-safe (sessions on many calls share one instance), must honour
    ``request.idempotency_key`` (a repeated key returns the first result, never a second charge), must
    not log or raise card data, and may block: sessions call :meth:`submit` on a background thread.
    """

    name = "gateway"

    @abc.abstractmethod
    def submit(self, request: PaymentRequest) -> GatewayResult:
        """Hand the card to the processor; return the result or raise GatewayError/GatewayUnavailable."""

    def close(self) -> None:
        """Release resources (connections, database handles); the default holds none."""
        return None
