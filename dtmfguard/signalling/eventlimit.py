# SPDX-License-Identifier: GPL-2.0-or-later
"""A rate limit on RFC 4733 key presses, per call, ahead of the tracker (issue 18).

Why: every new telephone-event (a new RTP timestamp) becomes a key press for the payment session.  A
person cannot type faster than the DTMF timing allows (ITU-T Q.24: at least 40 ms of tone and 40 ms of
pause, 12.5 keys/s at the very most; real keypads far less), and a 16-digit card number is the longest
thing typed at once.  So a call may start at most ``burst`` presses at once and ``rate`` per second after
that; a press beyond the limit is dropped, and a call that overflows is treated as flooding: every
RFC 4733 event of that call is dropped for ``cooldown_s`` (a flood cannot dribble digits through at the
refill rate).  Updates and ends of an accepted press (same timestamp) pass.  Pure Python, one instance per
call, used from one thread (pjsua's media thread, where RFC 4733 callbacks run).
"""
from __future__ import annotations

import time
from typing import Callable

__all__ = ["KeyRateLimit"]


class KeyRateLimit:
    """Token bucket over new key presses (new RTP timestamps); ``allow`` says whether an event passes."""

    def __init__(self, rate: float = 10.0, burst: int = 20, cooldown_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.cooldown_s, self.clock = float(rate), float(burst), float(cooldown_s), clock
        self._tokens = float(burst)
        self._t = clock()
        self._last_ts: int | None = None
        self._last_ok = False
        self._blocked_until = 0.0
        self.accepted = 0  # presses
        self.dropped = 0  # events (packets) dropped
        self.floods = 0  # times the limit tripped

    def allow(self, timestamp: int) -> bool:
        now = self.clock()
        if now < self._blocked_until:
            self.dropped += 1
            return False
        if timestamp == self._last_ts:
            if not self._last_ok:
                self.dropped += 1
            return self._last_ok
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now
        self._last_ts = timestamp
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self._last_ok = True
            self.accepted += 1
            return True
        self._last_ok = False
        self.dropped += 1
        self.floods += 1
        self._blocked_until = now + self.cooldown_s
        return False
