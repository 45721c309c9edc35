# SPDX-License-Identifier: GPL-2.0-or-later
"""One DigitEvent stream from in-band, RFC 4733 and SIP INFO digits.

Why: a sender may signal one key press twice, in-band *and* as an RFC 4733
event (RFC 4733 §2.6 allows it; PCI Pal documents handling it), and some
gateways send SIP INFO beside either.  A payment session that counted both
would read a 16-digit card as 32 digits.  The rule here: two complete events for
the same key from *different* paths whose spans overlap (within
``tolerance_ms``: the paths reach us at slightly different times) are one key
press; the first to arrive is passed on, the other dropped.  Two presses of the
same key through the same path are never merged: each path deduplicates itself
(the detector by its pause rule, :class:`~dtmfguard.signalling.rfc4733.Rfc4733Tracker` by
(SSRC, timestamp, event)).

Start notifications (``end=None``) are not merged here; the pipeline uses them
for masking only.  Pure Python, no locks: the pipeline calls it from one thread.
"""
from __future__ import annotations

from collections import deque

from ..events import DigitEvent

__all__ = ["DigitMerger"]


class DigitMerger:
    """Merge complete DigitEvents from several paths into one stream (see module doc)."""

    def __init__(self, rate: int = 8000, tolerance_ms: float = 60.0, history_ms: float = 3000.0):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = int(rate)
        self.tolerance = int(tolerance_ms * rate / 1000)
        self.history = int(history_ms * rate / 1000)
        # passed-on events, each with the paths whose duplicate it has already absorbed (one per path)
        self._recent: deque[tuple[DigitEvent, set[str]]] = deque()
        #: duplicates dropped (a count only: never which keys)
        self.merged = 0

    def _scaled(self, ev: DigitEvent):
        if ev.rate == self.rate:
            return ev.start, ev.end
        return ev.start * self.rate // ev.rate, ev.end * self.rate // ev.rate

    def feed(self, event: DigitEvent) -> list[DigitEvent]:
        """Return ``[event]`` if it is a new key press, ``[]`` if it repeats one already passed on
        (or is a start notification)."""
        if event.end is None:
            return []
        start, end = self._scaled(event)
        while self._recent and self._scaled(self._recent[0][0])[1] < start - self.history:
            self._recent.popleft()
        for prev, absorbed in self._recent:
            if prev.source == event.source or prev.digit != event.digit or event.source in absorbed:
                continue
            p_start, p_end = self._scaled(prev)
            if start < p_end + self.tolerance and p_start < end + self.tolerance:
                absorbed.add(event.source)
                self.merged += 1
                return []
        self._recent.append((event, set()))
        return [event]
