# SPDX-License-Identifier: GPL-2.0-or-later
"""PaymentSession.feed: what a key press costs the media thread, and whether a slow screen or a slow
processor can stall it.

``feed`` runs on pjsua2's audio clock thread, whose budget per 20 ms frame is shared by every call on the
conference bridge.  We time ``feed`` for complete key events (the whole entry: card number, expiry,
security code, hand-off to the gateway) on the caller's thread, three ways:

* ``fast``: instant gateway, no callbacks;
* ``slow screen``: a feed callback that sleeps 50 ms per event (a stuck agent desktop);
* ``slow processor``: a gateway that takes 2 s (a slow or retrying webhook).

and print median / 99th percentile / worst in microseconds next to the 20 ms frame budget.  If feed
blocked on callbacks or the gateway, the slow rows would show tens of milliseconds or seconds.

Run:  python benchmarks/capture_feed.py [--sessions 200]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import threading
import time

from dtmfguard.capture import GatewayResult, PaymentSession
from dtmfguard.capture.gateways import Gateway
from dtmfguard.events import DigitEvent

KEYS = "4111111111111111#1139847"
FRAME_BUDGET_US = 20_000.0


class Instant(Gateway):
    name = "instant"

    def submit(self, request):
        return GatewayResult("approved", authorisation="BENCH")


class Slow(Gateway):
    name = "slow"

    def __init__(self, delay_s):
        self.delay_s = delay_s

    def submit(self, request):
        time.sleep(self.delay_s)
        return GatewayResult("approved", authorisation="BENCH")


def run(label, sessions, gateway, on_event=None):
    events = [DigitEvent(k, i * 1280, i * 1280 + 640) for i, k in enumerate(KEYS)]
    timings = []
    live = []
    for _ in range(sessions):
        session = PaymentSession(gateway, amount=100, on_event=on_event, today=lambda: dt.date(2026, 11, 23))
        for event in events:
            t0 = time.perf_counter()
            session.feed(event)
            timings.append((time.perf_counter() - t0) * 1e6)
        live.append(session)
    for session in live:
        session.wait(60)
    timings.sort()
    row = {
        "case": label,
        "feeds": len(timings),
        "median_us": round(statistics.median(timings), 1),
        "p99_us": round(timings[int(0.99 * (len(timings) - 1))], 1),
        "max_us": round(timings[-1], 1),
        "completed": sum(s.state == "completed" for s in live),
    }
    row["p99_share_of_frame"] = round(row["p99_us"] / FRAME_BUDGET_US, 5)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    stall = threading.Event()
    rows = [
        run("fast", args.sessions, Instant()),
        run("slow screen (50 ms/event)", max(2, args.sessions // 50), Instant(),
            on_event=lambda e: stall.wait(0.05)),
        run("slow processor (2 s)", max(2, args.sessions // 10), Slow(2.0)),
    ]
    print(f"{'case':28s} {'feeds':>6s} {'median us':>10s} {'p99 us':>9s} {'max us':>9s} "
          f"{'p99/20ms':>9s} {'completed':>9s}")
    for r in rows:
        print(f"{r['case']:28s} {r['feeds']:6d} {r['median_us']:10.1f} {r['p99_us']:9.1f} {r['max_us']:9.1f} "
              f"{r['p99_share_of_frame']:9.5f} {r['completed']:9d}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
