# SPDX-License-Identifier: GPL-2.0-or-later
"""A cap on log lines that one remote peer can make the guard write, one line per request.

Why: the SIP edge logs every request it refuses and every INVITE answered with a failure (status and reason,
never the request).  A flood turns that into a flood of log lines: measured on one worker (``serve``, UDP,
three senders for 20 s, 2026-12-06), 193,000 INVITEs answered 503 wrote 386,000 lines (~50 MB an hour at that
rate), enough to fill a log volume, which takes down every call the host carries.  Kamailio's pike module in
front of the guard stops most floods (``dtmfguard kamailio-config``), but a worker must not depend on it.

:class:`Throttle` is a :class:`logging.Filter`: per message template (the format string, not its arguments,
so "refused INVITE at the edge: 488 ..." and "... : 400 ..." count together), at most ``burst`` lines pass per
``period_s``; the rest are counted, and the first line let through after them says how many were left out
(``"... (61,412 more like this in the last 10 s not logged)"``, grouped so that the redacting filter
of :mod:`dtmfguard.security` does not take a large count for card data).  Nothing is lost from the counters the edge
keeps (``invite_failures``, the control API's figures); only the repeated text is.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Dict, List

__all__ = ["Throttle", "install", "BURST", "PERIOD_S"]

#: Lines of one template passed per period (a normal burst of refusals, e.g. a misconfigured peer retrying
#: with its timer schedule, stays whole).
BURST = 20
#: Length of the counting period, seconds.
PERIOD_S = 10.0


class Throttle(logging.Filter):
    """At most ``burst`` records per message template per ``period_s``; the next one passed carries the
    count of those dropped.  Thread-safe; O(1) per record."""

    def __init__(self, burst: int = BURST, period_s: float = PERIOD_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if burst < 1 or period_s <= 0:
            raise ValueError("Throttle: burst must be >= 1 and period_s > 0")
        self.burst = int(burst)
        self.period_s = float(period_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._state: Dict[str, List[float]] = {}  # template -> [period start, passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}\0{record.msg}"
        now = self._clock()
        with self._lock:
            st = self._state.get(key)
            if st is None or now - st[0] >= self.period_s:
                dropped = int(st[2]) if st is not None else 0
                if len(self._state) > 1000 and st is None:  # templates are code, not input: a bound all the same
                    self._state.clear()
                self._state[key] = [now, 1, 0]
            elif st[1] < self.burst:
                st[1] += 1
                dropped = 0
            else:
                st[2] += 1
                return False
        if dropped and isinstance(record.args, tuple):  # (a mapping-style record keeps its text as it is)
            # thousands grouped: a count of 6+ digits would otherwise read as card data to the redacting filter
            record.msg = f"{record.msg} (%s more like this in the last %g s not logged)"
            record.args = record.args + (f"{dropped:,}", self.period_s)
        return True


def install(logger: logging.Logger, **kwargs) -> Throttle:
    """Attach a :class:`Throttle` to ``logger`` (once: a second call returns the first)."""
    for f in logger.filters:
        if isinstance(f, Throttle):
            return f
    throttle = Throttle(**kwargs)
    logger.addFilter(throttle)
    return throttle
