# SPDX-License-Identifier: GPL-2.0-or-later
"""Secure mode's key relay: which of the customer's keys go on to the agent leg, and the card-run alarm.

Why: a contact centre puts an IVR (and its menus) behind the guard.  In
``mask_mode = "secure"`` the agent's *audio* never carries a key tone (the
masker runs all call long), and outside a payment session each key the
customer presses -- whatever path it came on: in-band, RFC 4733, SIP INFO --
is regenerated once on the agent leg as an RFC 4733 telephone-event with its
measured duration, so the IVR works.  Inside a session nothing of a key goes
on: no event, no INFO, no tone.

This module is the *decision*, pure Python and without telephony imports: the
pipeline calls :meth:`KeyRelay.offer` on the clock thread with each merged key
and the secure state; the SIP layer drains :attr:`KeyRelay.outbox` on its own
thread and sends.  Two rules keep a key of a payment away from the agent leg:

* a key is relayed only if secure mode is off when the key is complete *and*
  the key started at least ``guard_ms`` after the last frame that was
  processed in secure mode (a key that straddles the switch, either way, is
  never relayed);
* the relay never sees a key before it is complete (the SIP layer cannot send
  an open-ended event), so a half key cannot leak either.

Insider fraud: an agent who asks the customer to key the card *outside*
secure mode would send the card number to the agent leg (an agent phone
that plays RFC 4733 events as tones lets the agent hear it).
:class:`CardRunWatch` watches the relayed keys: a run of keys (no pause longer
than ``run_gap_ms``) whose trailing 13-19 digits pass the Luhn check (ISO/IEC
7812-1 §B) and begin with a payment-card major industry identifier (2-6), or
match a configured pattern, raises one alert per run.  The alert carries no
digit, no count of digits: only the fact and the time (the SIP layer adds the
call and the agent).  With ``action = "stop"`` the rest of that run is not
relayed.  The digits of a run live only in this object's memory and are
dropped when the run ends.
"""
from __future__ import annotations

import collections
import re
import time
from dataclasses import dataclass, field

from ..capture.card import luhn_valid
from ..events import DigitEvent

__all__ = ["RelayKey", "CardRunWatch", "KeyRelay", "KeySequence", "JitterLog", "luhn_ok", "RELAY_METHODS",
           "CARD_RUN_ACTIONS"]

#: how relayed keys are sent on the agent leg: RFC 4733 (SIP INFO when the agent side did not negotiate
#: telephone-event), or always SIP INFO application/dtmf-relay
RELAY_METHODS = ("rfc4733", "sip-info")
#: what a card-like run outside secure mode does: alert only, or alert and stop relaying the run
CARD_RUN_ACTIONS = ("alert", "stop")

#: RFC 4733 §2.5.1.3: the duration field is 16 bits of timestamp units (8.19 s at 8 kHz); a key shorter
#: than 40 ms is below any detector's acceptance (ITU-T Q.24 §4.2: 40 ms must be rejected) and would not be
#: a key at all, so relayed durations are clamped into this range
MIN_RELAY_MS = 40
MAX_RELAY_MS = 8000


#: the Luhn (mod 10) check of ISO/IEC 7812-1, the one the payment capture uses
luhn_ok = luhn_valid


@dataclass(frozen=True)
class RelayKey:
    """One key to regenerate on the agent leg.  Its repr hides the digit (it may be an IVR PIN)."""

    digit: str
    duration_ms: int
    source: str
    decided_mono: float = field(default_factory=time.monotonic)
    #: the key's span in the customer stream (samples; -1 unknown), for :class:`JitterLog` corrections
    start: int = -1
    end: int = -1

    def __repr__(self) -> str:
        return f"RelayKey(duration_ms={self.duration_ms}, source={self.source!r})"


class CardRunWatch:
    """Alerts once per run of keys that looks like a card number (see module doc)."""

    def __init__(self, rate: int = 8000, *, run_gap_ms: float = 4000.0, min_len: int = 13, max_len: int = 19,
                 pattern: str = ""):
        if not 1 <= min_len <= max_len <= 64:
            raise ValueError("card run lengths must satisfy 1 <= min_len <= max_len <= 64")
        if run_gap_ms <= 0:
            raise ValueError("run_gap_ms must be positive")
        try:
            self.pattern = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise ValueError(f"card pattern is not a valid regular expression ({exc.msg})") from None
        self.rate = int(rate)
        self.gap = int(run_gap_ms * rate / 1000)
        self.min_len, self.max_len = int(min_len), int(max_len)
        self._digits: list[str] = []
        self._last_end: int | None = None
        self.alerted = False  # the current run raised its alert
        self.runs_alerted = 0

    def __repr__(self) -> str:  # never the digits
        return f"CardRunWatch(alerted={self.alerted}, runs_alerted={self.runs_alerted})"

    def feed(self, ev: DigitEvent) -> bool:
        """A complete key outside secure mode; True if it makes the current run look like a card (once)."""
        if self._last_end is not None and ev.start - self._last_end > self.gap:
            self.reset()
        self._last_end = ev.end if ev.end is not None else ev.start
        if not ev.digit.isdigit():
            self._digits.clear()  # '*', '#', A-D end the digits of a card; the run (and its alert) go on
            return False
        self._digits.append(ev.digit)
        del self._digits[:-64]
        if self.alerted:
            return False
        if self._looks_like_card():
            self.alerted = True
            self.runs_alerted += 1
            return True
        return False

    def _looks_like_card(self) -> bool:
        text = "".join(self._digits)
        if self.pattern is not None and self.pattern.search(text):
            return True
        for n in range(self.min_len, min(self.max_len, len(text)) + 1):
            tail = text[-n:]
            if tail[0] in "23456" and luhn_ok(tail):
                return True
        return False

    def reset(self) -> None:
        self._digits.clear()
        self._last_end = None
        self.alerted = False


class KeyRelay:
    """Decides, on the clock thread, which complete keys go to the agent leg (see module doc).

    ``outbox`` (keys to send) and ``alerts`` (dicts without digits) are deques: the clock thread appends,
    the SIP thread pops, both atomic without a lock.

    ``action = "stop"``: from the ``hold_after + 1``-th digit of a run on, keys are held back until the run
    ends (a pause longer than the watch's ``run_gap_ms``, or a '*' / '#' key); then they are released if the
    run did not look like a card, and dropped (with the key that ended the run) if it did.  So the agent leg
    gets at most ``hold_after`` digits of a card keyed outside secure mode (6 by default: the issuer
    identification number, which PCI DSS req. 3.4.1 allows to display), at the price of a delay for long
    IVR entries (an account number is released when it is complete).  Without holding, the Luhn check digit
    would make any 15 relayed digits of a 16-digit card worth the whole card.
    """

    def __init__(self, rate: int = 8000, *, watch: CardRunWatch | None = None, action: str = "alert",
                 guard_ms: float = 40.0, hold_after: int = 6):
        if action not in CARD_RUN_ACTIONS:
            raise ValueError(f"card run action must be one of {CARD_RUN_ACTIONS}, got {action!r}")
        if not 0 <= hold_after <= 64:
            raise ValueError("hold_after must be 0..64")
        self.rate = int(rate)
        self.watch = watch if watch is not None else CardRunWatch(rate)
        self.action = action
        self.hold_after = int(hold_after)
        self.guard_samples = int(guard_ms * rate / 1000)
        self.blocked_before = 0  # keys starting before this stream position are never relayed
        self.outbox: collections.deque[RelayKey] = collections.deque()
        self.alerts: collections.deque[dict] = collections.deque()
        self._held: list[RelayKey] = []
        self._run_digits = 0
        self._run_last_end: int | None = None
        #: counters only
        self.stats = {"relayed": 0, "held_secure": 0, "dropped_card_run": 0, "card_runs": 0}

    def __repr__(self) -> str:
        return f"KeyRelay(action={self.action!r}, stats={self.stats})"

    def secure_frame(self, end_position: int) -> None:
        """The frame ending at ``end_position`` was processed in secure mode: what is held is dropped."""
        self.blocked_before = end_position + self.guard_samples
        if self._held:
            self.stats["dropped_card_run"] += len(self._held)
            self._held.clear()

    def tick(self, position: int) -> None:
        """Once a frame (stream ``position``): a run that paused longer than the gap has ended."""
        if self._run_last_end is not None and position - self._run_last_end > self.watch.gap:
            self._end_run()

    def offer(self, ev: DigitEvent, secure: bool) -> RelayKey | None:
        """A merged complete key; returns the RelayKey if it was queued for the agent leg now."""
        if ev.end is None:
            return None
        if secure or ev.start < self.blocked_before:
            self.stats["held_secure"] += 1
            return None
        self.tick(ev.start)
        self._run_last_end = ev.end
        if self.watch.feed(ev):
            self.stats["card_runs"] += 1
            self.alerts.append({"type": "card_outside_secure_mode", "t": time.time(),
                                "action": "stopped" if self.action == "stop" else "alerted"})
        ms = round((ev.end - ev.start) * 1000 / ev.rate)
        key = RelayKey(ev.digit, max(MIN_RELAY_MS, min(MAX_RELAY_MS, ms)), ev.source, start=int(ev.start),
                       end=int(ev.end))
        if self.action == "stop":
            if not ev.digit.isdigit():  # '*' / '#' ends the digits of a run: release or drop what is held
                card = self.watch.alerted
                self._end_run()
                if card:
                    self.stats["dropped_card_run"] += 1
                    return None
            else:
                self._run_digits += 1
                if self.watch.alerted or self._run_digits > self.hold_after:
                    self._held.append(key)
                    return None
        self._send(key)
        return key

    def _end_run(self) -> None:
        if self._held:
            if self.watch.alerted:
                self.stats["dropped_card_run"] += len(self._held)
            else:
                for key in self._held:
                    self._send(key)
            self._held.clear()
        self._run_digits = 0
        self._run_last_end = None
        self.watch.reset()

    def _send(self, key: RelayKey) -> None:
        self.outbox.append(key)
        self.stats["relayed"] += 1


class KeySequence:
    """Watches the agent side's keys for the secure-mode switch sequences (``on`` / ``off``, e.g. "*#1").

    The agent's phone sends them as RFC 4733 events or SIP INFO, which the guard never passes to the customer
    (only audio goes agent -> customer), so the customer does not hear them.  Keys further apart than
    ``gap_ms`` start over.  :meth:`feed` returns True (on), False (off) or None.
    """

    def __init__(self, on: str = "", off: str = "", gap_ms: float = 3000.0):
        for seq in (on, off):
            if seq and (len(seq) > 8 or any(c not in "0123456789*#ABCD" for c in seq)):
                raise ValueError("a secure-mode key sequence is 1-8 of 0-9, *, #, A-D")
        if on and off and (on.endswith(off) or off.endswith(on)):
            raise ValueError("the on and off key sequences must not end with each other")
        self.on, self.off, self.gap_s = on, off, gap_ms / 1000
        self._keys = ""
        self._last = 0.0

    def __repr__(self) -> str:
        return f"KeySequence(on={'set' if self.on else 'none'}, off={'set' if self.off else 'none'})"

    def feed(self, digit: str, now: float | None = None) -> bool | None:
        now = time.monotonic() if now is None else now
        if now - self._last > self.gap_s:
            self._keys = ""
        self._last = now
        self._keys = (self._keys + str(digit)[:1])[-8:]
        if self.on and self._keys.endswith(self.on):
            self._keys = ""
            return True
        if self.off and self._keys.endswith(self.off):
            self._keys = ""
            return False
        return None


class JitterLog:
    """Where the customer stream's jitter buffer bent the audio timeline, so in-band key durations can be
    given back on the sender's timeline.

    Why: an in-band key's duration is measured on the audio the guard's jitter buffer hands over, and on a
    loaded host that audio is not the sender's timeline.  Measured on live calls (load average 9-14): every
    in-band duration error beyond 2 ms lay on a frame where the jitter buffer counted an *empty* read (no
    packet: a concealment frame is inserted, the key grows by one frame, +20 ms each) or a *lost* packet (a
    concealment frame replaces the real one; the detector does not take the concealed frame for the tone:
    -10 to -22 ms).  The SIP layer polls the counters on its own thread and notes each change with the
    number of frames the pipeline had processed then (:meth:`note`); a key gets one frame back per lost
    packet and one frame less per empty read noted entirely inside its span (:meth:`correction_ms`).  A change
    whose frame window reaches outside the key is not counted (its frame is uncertain), so a correction is
    never made on a guess about the key's edges.
    """

    def __init__(self, rate: int = 8000, frame_samples: int = 160, keep: int = 512):
        self.rate, self.frame = int(rate), int(frame_samples)
        self.windows: collections.deque = collections.deque(maxlen=keep)  # (first_frame, last_frame, empty, lost)
        self._last: tuple | None = None  # (frames, empty, lost) at the previous poll

    def note(self, frames: int, empty: int, lost: int) -> None:
        """Counters read at a poll, with the pipeline's processed-frame count at that moment."""
        last = self._last
        self._last = (int(frames), int(empty), int(lost))
        if last is None or empty < last[1] or lost < last[2] or frames < last[0]:
            return  # first reading, or a new stream (re-INVITE): counters restarted
        d_empty, d_lost = empty - last[1], lost - last[2]
        if d_empty or d_lost:
            # the event's frame is one of those processed since the previous poll (+1: the stream is read
            # in the tick before the port gets the frame)
            self.windows.append((last[0], int(frames) + 1, d_empty, d_lost))

    def correction_ms(self, start: int, end: int) -> int:
        """Milliseconds to add to a key spanning samples [start, end) of the customer stream."""
        if start < 0 or end <= start:
            return 0
        first, last = start // self.frame, (end - 1) // self.frame
        frames = 0
        for w_first, w_last, d_empty, d_lost in self.windows:
            if first <= w_first and w_last <= last:
                frames += d_lost - d_empty
        return round(frames * self.frame * 1000 / self.rate)
