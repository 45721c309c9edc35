# SPDX-License-Identifier: GPL-2.0-or-later
"""The fields a caller can key in during a payment, and how each one is checked and finished.

A field is finished by ``#``, by reaching the longest length it can have (expiry after 4 digits, a
security code after 3 or 4, an American Express number after 15), or by the session's inter-digit
timeout.  Agent-assisted payment products (Twilio ``<Pay>``, PCI Pal, Sycurio) use the same order by
default: card number, expiry, security code, with optional amount, postcode and account/reference.

Validators return a short reason or None; a reason never contains the digits that were typed, so it
can go on the agent feed and into the audit trail.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple, Union

from .card import (
    BRAND_LENGTHS, PAN_MAX_DIGITS, PAN_MIN_DIGITS, card_brand, check_card_number, check_expiry,
    check_security_code, security_code_length,
)

__all__ = ["FieldContext", "FieldSpec", "FIELDS", "DEFAULT_FIELDS", "CARD_FIELDS", "resolve_fields"]


@dataclass(frozen=True)
class FieldContext:
    """What a validator may need beyond the digits: the PAN's brand and today's date."""

    brand: Optional[str] = None
    today: _dt.date = field(default_factory=_dt.date.today)


Validator = Callable[[str, FieldContext], Optional[str]]
FinishedAt = Callable[[str, FieldContext], bool]


@dataclass(frozen=True)
class FieldSpec:
    """One field: ``name`` (machine), ``label`` (for the agent), digit count bounds, a validator, and
    when typing finishes it without ``#``.  ``card_data`` fields go to the gateway only; the others
    (amount) may be shown to the agent.  ``optional`` fields may be skipped with ``#`` alone."""

    name: str
    label: str
    min_digits: int
    max_digits: int
    validator: Optional[Validator] = None
    finished_at: Optional[FinishedAt] = None
    card_data: bool = True
    optional: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"field {self.name!r}: need 1 <= min_digits <= max_digits")

    def check(self, digits: str, context: FieldContext) -> Optional[str]:
        """None if acceptable, else a reason (never containing the digits)."""
        if len(digits) < self.min_digits:
            return f"{self.label} too short"
        if len(digits) > self.max_digits:
            return f"{self.label} too long"
        return self.validator(digits, context) if self.validator else None

    def is_finished(self, digits: str, context: FieldContext) -> bool:
        """True once no further digit could belong to this field."""
        if len(digits) >= self.max_digits:
            return True
        return bool(self.finished_at and self.finished_at(digits, context))


def _pan_finished(digits: str, context: FieldContext) -> bool:
    # Only finish early when the brand allows no longer number (Amex 15, Mastercard 16); a Visa of 16
    # may still become 19, so it needs '#' or the inter-digit timeout.
    brand = card_brand(digits) if len(digits) >= 4 else None
    return brand is not None and len(digits) >= max(BRAND_LENGTHS[brand])


def _cvv_finished(digits: str, context: FieldContext) -> bool:
    return len(digits) >= security_code_length(context.brand)


def _positive(digits: str, context: FieldContext) -> Optional[str]:
    return None if int(digits) > 0 else "amount must be more than zero"


FIELDS: Dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("card_number", "card number", PAN_MIN_DIGITS, PAN_MAX_DIGITS,
                  lambda d, c: check_card_number(d), _pan_finished),
        FieldSpec("expiry", "expiry date (MMYY)", 4, 4, lambda d, c: check_expiry(d, c.today)),
        FieldSpec("security_code", "security code", 3, 4, lambda d, c: check_security_code(d, c.brand),
                  _cvv_finished),
        # Amount in minor units (pence, cents), typed by the caller when the agent did not set it.
        FieldSpec("amount", "amount (in pence/cents)", 1, 9, _positive, card_data=False),
        FieldSpec("postcode", "postcode digits", 3, 10, optional=True),
        FieldSpec("account", "account number", 4, 20),
        FieldSpec("reference", "reference number", 1, 20),
    )
}
DEFAULT_FIELDS: Tuple[str, ...] = ("card_number", "expiry", "security_code")
CARD_FIELDS = frozenset(DEFAULT_FIELDS)


def resolve_fields(fields: Optional[Iterable[Union[str, FieldSpec]]]) -> Sequence[FieldSpec]:
    """Field specs from names and/or FieldSpec objects (None: the default card fields)."""
    items = list(DEFAULT_FIELDS if fields is None else fields)
    specs = []
    for item in items:
        if isinstance(item, FieldSpec):
            specs.append(item)
        elif isinstance(item, str) and item in FIELDS:
            specs.append(FIELDS[item])
        else:
            raise ValueError(f"unknown field {item!r}; known: {', '.join(FIELDS)}")
    names = [spec.name for spec in specs]
    if not specs or len(set(names)) != len(names):
        raise ValueError("fields must be a non-empty sequence without repeats")
    if "security_code" in names and "card_number" in names and \
            names.index("security_code") < names.index("card_number"):
        raise ValueError("security_code must come after card_number (its length depends on the brand)")
    return tuple(specs)
