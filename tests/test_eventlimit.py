# SPDX-License-Identifier: GPL-2.0-or-later
"""KeyRateLimit: a person typing a card number passes, a telephone-event flood does not become digits."""
from __future__ import annotations

from dtmfguard.signalling.eventlimit import KeyRateLimit


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _press(lim, clock, ts, packets=5, dt=0.02):
    ok = []
    for _ in range(packets):  # first packet, updates, end: one timestamp
        ok.append(lim.allow(ts))
        clock.t += dt
    return all(ok)


def test_fast_human_typing_of_a_card_number_and_more_passes():
    clock = Clock()
    lim = KeyRateLimit(clock=clock)
    # 16 digits at 8 keys/s (faster than people type), then a 4-digit CVV/PIN a second later
    assert all(_press(lim, clock, 800 * i, packets=3, dt=0.04) for i in range(16))
    clock.t += 1.0
    assert all(_press(lim, clock, 800 * (100 + i), packets=3, dt=0.04) for i in range(4))
    assert lim.dropped == 0 and lim.accepted == 20


def test_a_flood_is_cut_and_stays_cut():
    clock = Clock()
    lim = KeyRateLimit(clock=clock)
    # 10,000 packets/s, each a new event: 2 s of it
    passed = 0
    for i in range(20000):
        passed += lim.allow(160 * i)
        clock.t += 0.0001
    assert passed <= 20  # at most the burst
    assert lim.floods == 1 and lim.dropped >= 19980
    # within the cool-down even a plausible press is dropped, after it presses pass again
    assert not lim.allow(10**9)
    clock.t += 5.1
    assert lim.allow(10**9 + 800)


def test_updates_of_a_dropped_press_stay_dropped():
    clock = Clock()
    lim = KeyRateLimit(rate=1.0, burst=1, cooldown_s=0.0, clock=clock)
    assert lim.allow(1) and lim.allow(1)
    assert not lim.allow(2) and not lim.allow(2)
