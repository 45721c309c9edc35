# SPDX-License-Identifier: GPL-2.0-or-later
"""The one event type every DTMF source produces.

In-band detection, RFC 4733 telephone-events and SIP INFO all yield
:class:`DigitEvent`, so the masker and the payment session never care how a
key press reached us.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["DigitEvent", "DIGITS", "KEYPAD", "SOURCES", "digit_to_event_code", "event_code_to_digit"]

#: Keypad, row by row (ITU-T Q.23): rows 697/770/852/941 Hz, columns 1209/1336/1477/1633 Hz.
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYPAD)
#: The keys of a customer's telephone keypad (ITU-T E.161's 12 keys): Q.23's fourth column (1633 Hz: A-D) is on none.
KEYPAD_KEYS = "".join(row[:3] for row in KEYPAD)

#: Where a digit came from.
SOURCES = ("inband", "rfc4733", "sip-info")

# RFC 4733 §3.2 event codes: 0-9, 10 = '*', 11 = '#', 12-15 = 'A'-'D'.
_RFC4733_DIGITS = "0123456789*#ABCD"


def event_code_to_digit(code: int) -> str:
    """Map an RFC 4733 event code (0-15) to its key; raise ValueError otherwise."""
    if not isinstance(code, int) or not 0 <= code < len(_RFC4733_DIGITS):
        raise ValueError(f"RFC 4733 event code must be 0..15 for a DTMF key, got {code!r}")
    return _RFC4733_DIGITS[code]


def digit_to_event_code(digit: str) -> int:
    """Map a key ('0'-'9', '*', '#', 'A'-'D') to its RFC 4733 event code."""
    index = _RFC4733_DIGITS.find(digit.upper()) if isinstance(digit, str) and len(digit) == 1 else -1
    if index < 0:
        raise ValueError("not a DTMF key")
    return index


@dataclass(frozen=True)
class DigitEvent:
    """One key press.

    ``start``/``end`` are sample indices at ``rate`` from the start of the
    stream (for signalled digits: the stream position the event was mapped to).
    ``end`` is ``None`` for a *start* notification: the digit is confirmed but
    still sounding; exactly one complete event (``end`` set) follows for it.

    The digit itself is card data while a payment is in progress, so ``repr``
    hides it: logging an event never leaks a key.  Read ``.digit`` explicitly.
    """

    digit: str
    start: int
    end: Optional[int]
    rate: int = 8000
    level_dbm0: float = float("nan")
    source: str = "inband"

    def __post_init__(self) -> None:
        if not (isinstance(self.digit, str) and len(self.digit) == 1 and self.digit in DIGITS):
            raise ValueError("digit must be one of 0-9, *, #, A-D")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.end is not None and self.end < self.start:
            raise ValueError("end precedes start")

    @property
    def complete(self) -> bool:
        return self.end is not None

    @property
    def start_s(self) -> float:
        return self.start / self.rate

    @property
    def end_s(self) -> Optional[float]:
        return None if self.end is None else self.end / self.rate

    @property
    def duration_ms(self) -> Optional[float]:
        return None if self.end is None else 1000.0 * (self.end - self.start) / self.rate

    def __repr__(self) -> str:  # never show the key: it may be part of a card number
        end = "…" if self.end is None else f"{self.end_s:.4f}s"
        return f"DigitEvent(digit=<hidden>, start={self.start_s:.4f}s, end={end}, source={self.source})"

    __str__ = __repr__
