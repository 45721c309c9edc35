# SPDX-License-Identifier: GPL-2.0-or-later
"""Card number, expiry and security-code rules, and the one object that holds card data.

Why one object: PCI DSS v4.0 Req. 3.3.1 forbids keeping sensitive authentication data (the CVV2/CVC2)
after authorisation and Req. 3.5 wants the PAN unreadable wherever it is stored.  Keeping the digits in a
single :class:`CardDetails` whose ``repr``/``str`` show only brand and last 4 (the display PCI DSS
Req. 3.4.1 allows, narrowed to last 4 here) means logging, tracebacks and debuggers never print them, and
there is one place to wipe after hand-off.  Python strings are immutable and may be copied by the runtime,
so wiping is best effort: the master copy lives in ``bytearray`` buffers that are overwritten with zeros.

Brand detection uses IIN (issuer identification number) prefix ranges as published by the card schemes
(ISO/IEC 7812-1 numbering); the Luhn check is ISO/IEC 7812-1 Annex B.  No function here puts a card
digit into an exception message.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Dict, Optional, Tuple, Union

__all__ = [
    "BRANDS", "BRAND_LENGTHS", "CardDetails", "CardWipedError", "card_brand", "check_card_number",
    "check_expiry", "check_security_code", "luhn_valid", "security_code_length", "wipe",
]

#: Brand -> allowed PAN lengths (scheme rules; Maestro spans the whole ISO 7812 range).
BRAND_LENGTHS: Dict[str, Tuple[int, ...]] = {
    "visa": (13, 16, 19),
    "mastercard": (16,),
    "amex": (15,),
    "discover": (16, 17, 18, 19),
    "jcb": (16, 17, 18, 19),
    "diners": (14, 15, 16, 17, 18, 19),
    "unionpay": (16, 17, 18, 19),
    "maestro": (12, 13, 14, 15, 16, 17, 18, 19),
}
BRANDS = tuple(BRAND_LENGTHS)

# (brand, prefix length, low, high), checked in order: the more specific schemes come before the broad
# Maestro 5x/6x ranges that overlap them (6011, 644-649 and 65 are Discover, 62 is UnionPay).
_IIN_RANGES: Tuple[Tuple[str, int, int, int], ...] = (
    ("amex", 2, 34, 34),
    ("amex", 2, 37, 37),
    ("jcb", 4, 3528, 3589),
    ("diners", 3, 300, 305),
    ("diners", 4, 3095, 3095),
    ("diners", 2, 36, 36),
    ("diners", 2, 38, 39),
    ("discover", 4, 6011, 6011),
    ("discover", 3, 644, 649),
    ("discover", 2, 65, 65),
    ("unionpay", 2, 62, 62),
    ("mastercard", 2, 51, 55),
    ("mastercard", 4, 2221, 2720),  # the 2-series BINs, issued since 2017
    ("maestro", 2, 50, 50),
    ("maestro", 2, 56, 69),
    ("visa", 1, 4, 4),
)

PAN_MIN_DIGITS, PAN_MAX_DIGITS = 12, 19
#: Cards are issued for at most a few years; an expiry further ahead than this is a typing error.
EXPIRY_MAX_YEARS_AHEAD = 20

_DIGITS_RE = re.compile(r"[0-9]+")


def _is_digits(text: str) -> bool:
    return isinstance(text, str) and bool(_DIGITS_RE.fullmatch(text))


def luhn_valid(number: str) -> bool:
    """True if the digit string passes the Luhn (mod 10) check of ISO/IEC 7812-1."""
    if not _is_digits(number):
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> Optional[str]:
    """Brand from the IIN prefix, or None if the prefix belongs to no scheme we know."""
    if not _is_digits(number):
        return None
    for brand, length, low, high in _IIN_RANGES:
        if len(number) >= length and low <= int(number[:length]) <= high:
            return brand
    return None


def security_code_length(brand: Optional[str]) -> int:
    """CVV2/CVC2/CID length: 4 digits for American Express (CID), 3 for every other scheme."""
    return 4 if brand == "amex" else 3


def check_card_number(number: str) -> Optional[str]:
    """None if ``number`` is an acceptable PAN, else a reason that contains no digit of it."""
    if not _is_digits(number):
        return "card number must be digits only"
    if len(number) < PAN_MIN_DIGITS:
        return f"card number too short (needs at least {PAN_MIN_DIGITS} digits)"
    if len(number) > PAN_MAX_DIGITS:
        return f"card number too long (at most {PAN_MAX_DIGITS} digits)"
    if not luhn_valid(number):
        return "card number check digit (Luhn) failed"
    brand = card_brand(number)
    if brand is not None and len(number) not in BRAND_LENGTHS[brand]:
        return f"wrong number of digits for {brand}"
    return None


def parse_expiry(mmyy: str) -> Tuple[int, int]:
    """(month, four-digit year) from MMYY; ValueError (without the value) if malformed."""
    if not _is_digits(mmyy) or len(mmyy) != 4:
        raise ValueError("expiry must be 4 digits, MMYY")
    month, year = int(mmyy[:2]), 2000 + int(mmyy[2:])
    if not 1 <= month <= 12:
        raise ValueError("expiry month must be 01-12")
    return month, year


def check_expiry(mmyy: str, today: _dt.date) -> Optional[str]:
    """None if MMYY is a real month not in the past (a card is valid through the last day of its
    expiry month) and not absurdly far ahead; else a reason without the value."""
    try:
        month, year = parse_expiry(mmyy)
    except ValueError as exc:
        return str(exc)
    if (year, month) < (today.year, today.month):
        return "card has expired"
    if year > today.year + EXPIRY_MAX_YEARS_AHEAD:
        return f"expiry more than {EXPIRY_MAX_YEARS_AHEAD} years ahead"
    return None


def check_security_code(code: str, brand: Optional[str]) -> Optional[str]:
    """None if the security code has the length the brand uses, else a reason without the value."""
    expected = security_code_length(brand)
    if not _is_digits(code) or len(code) != expected:
        return f"security code must be {expected} digits" + (f" for {brand}" if brand else "")
    return None


def wipe(buffer: Optional[bytearray]) -> None:
    """Overwrite a bytearray with zeros and empty it (best effort: see the module docstring)."""
    if buffer is not None:
        buffer[:] = bytes(len(buffer))
        del buffer[:]


class CardWipedError(RuntimeError):
    """The card data was already wiped after hand-off."""


_Text = Union[str, bytes, bytearray]


def _as_buffer(value: Optional[_Text], what: str) -> Optional[bytearray]:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    buffer = bytearray(value)
    if not buffer.isdigit():
        wipe(buffer)
        raise ValueError(f"{what} must be digits only")
    return buffer


class CardDetails:
    """Card number, expiry (MMYY) and security code, shown to the world as brand + last 4 only.

    Read ``.pan``, ``.expiry`` and ``.security_code`` explicitly where the digits are really needed (the
    gateway hand-off); call :meth:`wipe` as soon as the gateway has them.  Pickling is refused so the
    object cannot end up in a cache, queue or file by accident.
    """

    __slots__ = ("_pan", "_expiry", "_security_code", "_brand", "_last4")

    def __init__(self, pan: _Text, expiry: Optional[_Text] = None, security_code: Optional[_Text] = None):
        self._pan = _as_buffer(pan, "card number")
        if self._pan is None or not PAN_MIN_DIGITS <= len(self._pan) <= PAN_MAX_DIGITS:
            wipe(self._pan)
            raise ValueError(f"card number must be {PAN_MIN_DIGITS}-{PAN_MAX_DIGITS} digits")
        try:
            self._expiry = _as_buffer(expiry, "expiry")
            self._security_code = _as_buffer(security_code, "security code")
        except ValueError:
            wipe(self._pan)
            raise
        text = self._pan.decode("ascii")
        self._brand = card_brand(text) or "unknown"
        self._last4 = text[-4:]

    @property
    def brand(self) -> str:
        return self._brand

    @property
    def last4(self) -> str:
        return self._last4

    @property
    def wiped(self) -> bool:
        return not self._pan

    def _read(self, buffer: Optional[bytearray]) -> Optional[str]:
        if self.wiped:
            raise CardWipedError("card data was wiped after hand-off")
        return None if buffer is None else buffer.decode("ascii")

    @property
    def pan(self) -> str:
        return self._read(self._pan)

    @property
    def expiry(self) -> Optional[str]:
        """MMYY, or None if not captured."""
        return self._read(self._expiry)

    @property
    def expiry_month_year(self) -> Optional[Tuple[int, int]]:
        expiry = self.expiry
        return None if expiry is None else parse_expiry(expiry)

    @property
    def security_code(self) -> Optional[str]:
        return self._read(self._security_code)

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of this card's number, expiry and security code replaced by
        ``[redacted]``: applied to free text that comes back from a processor before anyone sees it."""
        if self.wiped or not isinstance(text, str):
            return text
        secrets = [buf.decode("ascii") for buf in (self._pan, self._expiry, self._security_code) if buf]
        secrets.append(self._pan[:-4].decode("ascii"))
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text

    def wipe(self) -> None:
        """Zero and drop the digits; brand and last 4 stay for display."""
        for buffer in (self._pan, self._expiry, self._security_code):
            wipe(buffer)

    def __del__(self) -> None:
        try:
            self.wipe()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"CardDetails(brand={self._brand}, last4={self._last4})"

    def __str__(self) -> str:
        return f"{self._brand} ending {self._last4}"

    def __reduce__(self):
        raise TypeError("CardDetails cannot be pickled (card data must not be serialised)")
