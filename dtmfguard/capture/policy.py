# SPDX-License-Identifier: GPL-2.0-or-later
"""How a payment is collected: which fields, how long each may take, how many attempts.

Why a frozen object: the same policy serves every payment a box takes (it comes from the configuration
once), so it is built and checked once, can be shared between threads without a lock, and a session
cannot change it half-way through a payment.  Per-payment values (amount, reference, call, agent) and
collaborators (gateway, audit trail, feed, clock) stay arguments of
:class:`~dtmfguard.capture.session.PaymentSession`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Tuple, Union

from .fields import FieldSpec, resolve_fields

__all__ = ["PaymentPolicy", "DEFAULT_POLICY"]


@dataclass(frozen=True)
class PaymentPolicy:
    """``fields``: field names or :class:`FieldSpec` objects in keying order (None: card number, expiry,
    security code); ``interdigit_timeout_s``: a field with digits ends this long after the last key;
    ``field_timeout_s``: nothing keyed for this long costs an attempt; ``max_attempts``: failed attempts
    per field before the session ends; ``approval_timeout_s``: how long a payment over the agent's limit
    waits for a supervisor."""

    fields: Tuple[FieldSpec, ...] = None  # type: ignore[assignment]  # normalised in __post_init__
    interdigit_timeout_s: float = 6.0
    field_timeout_s: float = 60.0
    max_attempts: int = 3
    approval_timeout_s: float = 180.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(resolve_fields(self.fields)))
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError("need max_attempts >= 1 and positive timeouts")
        for name in ("interdigit_timeout_s", "field_timeout_s", "approval_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError("need max_attempts >= 1 and positive timeouts")
            object.__setattr__(self, name, float(value))

    @property
    def field_names(self) -> Tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)

    def replace(self, **changes: Any) -> "PaymentPolicy":
        """A copy with ``changes`` applied (checked like a new policy); unknown names raise TypeError."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def build(cls, base: Optional["PaymentPolicy"] = None,
              fields: Optional[Iterable[Union[str, FieldSpec]]] = None, **changes: Any) -> "PaymentPolicy":
        """``base`` (default: :data:`DEFAULT_POLICY`) with the given settings replaced; None means keep."""
        if fields is not None:
            changes["fields"] = tuple(fields)
        changes = {k: v for k, v in changes.items() if v is not None}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown payment policy setting(s): {', '.join(unknown)}")
        base = DEFAULT_POLICY if base is None else base
        return base.replace(**changes) if changes else base


DEFAULT_POLICY = PaymentPolicy()
