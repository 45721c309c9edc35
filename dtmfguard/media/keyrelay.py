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
from typing import Any

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
    #: the duration measured on the stream, and what the jitter-buffer correction added (:class:`JitterLog`)
    measured_ms: int = -1
    correction_ms: int = 0

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

    def offer(self, ev: DigitEvent, secure: bool, correction_ms: int = 0) -> RelayKey | None:
        """A merged complete key; returns the RelayKey if it was queued for the agent leg now.
        ``correction_ms``: added to the measured duration (an in-band key's jitter-buffer frames)."""
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
        key = RelayKey(ev.digit, max(MIN_RELAY_MS, min(MAX_RELAY_MS, ms + int(correction_ms))), ev.source,
                       start=int(ev.start), end=int(ev.end), measured_ms=ms, correction_ms=int(correction_ms))
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


def alert_record(call_id: str, agent: str, alert: dict) -> dict:
    """The audit / feed form of a card-run alert (no digits, no count of digits)."""
    return {"event": "card_outside_secure_mode", "call": call_id, "agent": agent,
            "action": alert.get("action", "alerted"), "detected_at": round(float(alert.get("t", time.time())), 3)}


def key_relay_for(cfg: Any, rate: int = 8000) -> "KeyRelay":
    """A call's key relay and card-run watch from a configuration's ``[secure]`` fields (``card_run_action``,
    ``card_run_gap_s``, ``card_run_pattern``, ``card_run_hold_after``; serve and relay mode alike)."""
    watch = CardRunWatch(rate, run_gap_ms=cfg.card_run_gap_s * 1000, pattern=cfg.card_run_pattern)
    return KeyRelay(rate, watch=watch, action=cfg.card_run_action, hold_after=cfg.card_run_hold_after)


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
    """The frames the customer stream's jitter buffer made up, taken out of the detector's timeline, so an
    in-band key's duration is measured on the sender's timeline.

    Why: an in-band key's duration is measured on the audio the guard's jitter buffer hands over, and on a
    loaded host that audio is not the sender's timeline.  Measured on live calls at load 15-20
    (``benchmarks/inband_durations.py``, the frame of each event known exactly: ``sip/pj/jbuf.py``): an
    *inserted* frame (the buffer ran empty and concealed a frame that was never sent) inside a key lengthened
    it by 10 ms in every case seen; a *concealed* frame (a packet missing, concealed in its place) changed it
    by -17 to +15 ms, depending on where the tone's edge was and how the concealment continued the tone.  A
    count of frames cannot correct that (the previous correction, polled on the SIP thread, stayed within
    +-10 ms only where it could place the event, and left +30 ms once on CI).

    What the detector is given (the masker always gets every frame: the agent's audio is masked as before):
    the jitter buffer's concealment, whether it stands for a lost packet (on the sender's timeline: nothing to
    correct) or was inserted because the buffer ran empty (not on the sender's timeline: the part of a key it
    holds is taken off the key's relayed duration, :meth:`made_up_frame`, :meth:`correction_ms`), with its
    windows never counting as a miss (``DetectorBank.mark_break`` with a span: a silent concealment does not
    split a key, a concealment that goes on as the tone counts as the tone).  pjmedia's WSOLA concealment
    goes on as the tone did for its first tens of milliseconds; left out of the detector's timeline instead
    (the previous way), a 70 ms card key kept two short pieces around a join and was lost: on CI, in 3 calls
    of one run, replayed from the guard's own frames at 26 block-grid offsets (tests/data/concealed_keys.npz):
    lost at 16, 13 and 6 offsets left out, at 0 given.  Left out
    are gap frames (no packet reached the bridge: silence would split a key, runs of up to 3) and an empty
    buffer's concealment after its second frame in a row (it fades); each marks a break for the detector (its
    windows across the join never miss: ``DetectorBank.mark_break``), and :meth:`skip` records it.

    A sender's frame the buffer *dropped* to shed latency (static discard: counted the moment it happens,
    ``sip/pj/endpoint.py``) never reaches the stream; its counter places it only within a frame (the drop happens on a packet's
    arrival or right after a read), and on live calls a drop in or at a key took 0 to 21 ms off it, 10 on
    average: half a frame is given back for each (:meth:`dropped`), at most about 10 ms off either way.

    Positions: the detector counts only the frames it was given; :meth:`skip` records each frame left out, and
    :meth:`to_stream` maps detector positions back to the stream (the masker's, the merger's and the relay's
    positions).  Clock thread only, like the rest of the pipeline.
    """

    def __init__(self, rate: int = 8000, frame_samples: int = 160, keep: int = 512):
        self.rate, self.frame = int(rate), int(frame_samples)
        #: (detector position, samples left out before it in total): from that position on
        self.breaks: collections.deque = collections.deque(maxlen=keep)
        self.drops: collections.deque = collections.deque(maxlen=keep)  # detector positions of dropped frames
        self.inserted: collections.deque = collections.deque(maxlen=keep)  # (position, samples) of inserted frames fed
        self.skipped = 0
        self.stats = {"inserted": 0, "concealed": 0, "dropped": 0}

    def __repr__(self) -> str:
        return f"JitterLog(skipped={self.skipped}, stats={self.stats})"

    def clear(self) -> None:
        """The detector restarted (positions start again from its new sample 0)."""
        self.breaks.clear()
        self.inserted.clear()
        self.drops.clear()
        self.skipped = 0

    def skip(self, det_pos: int, n: int) -> None:
        """A frame of ``n`` samples, made up by the jitter buffer (a gap frame, or an empty buffer's concealment
        gone on too long), was not given to the detector, whose next sample is ``det_pos``.  A lost packet's
        concealment is always given to the detector (:meth:`made_up_frame`), never left out."""
        self.skipped += int(n)
        self.breaks.append((int(det_pos), self.skipped))
        self.stats["inserted"] += 1

    def made_up_frame(self, det_pos: int, n: int, inserted: bool) -> None:
        """A frame the jitter buffer made up was given to the detector as it is, at ``det_pos``.  Concealed (a
        lost packet, or half of one): on the sender's timeline, nothing to correct.  ``inserted`` (the buffer ran
        empty): not on the sender's timeline, so the part of a key it holds is taken off the key
        (:meth:`correction_ms`)."""
        if inserted:
            self.inserted.append((int(det_pos), int(n)))
            self.stats["inserted"] += 1
        else:
            self.stats["concealed"] += 1

    def dropped(self, det_pos: int, frames: int) -> None:
        """The jitter buffer dropped ``frames`` of the sender's frames (static discard, to shed latency) next
        to detector position ``det_pos`` (just before it, or just after the frame there: the counter cannot
        tell).  A key around that position gets half a frame back for each (:meth:`correction_ms`)."""
        for _ in range(max(0, min(int(frames), 16))):
            self.drops.append(int(det_pos))
        self.stats["dropped"] += int(frames)

    def left_out_before(self, det_pos: int) -> int:
        """Samples left out before detector sample ``det_pos``."""
        for pos, total in reversed(self.breaks):
            if pos <= det_pos:
                return total
        return 0

    def to_stream(self, det_start: int, det_end: int) -> tuple[int, int]:
        """A detector span [start, end) as stream positions (its end after the last sample it holds)."""
        return det_start + self.left_out_before(det_start), det_end + self.left_out_before(det_end - 1)

    def correction_ms(self, det_start: int, det_end: int) -> int:
        """Milliseconds to add to a key the detector measured over [det_start, det_end): half a frame for each
        sender's frame the buffer dropped in or next to it, less the frames an empty buffer inserted into it
        that the detector was given."""
        if det_end <= det_start:
            return 0
        half = self.frame // 2
        samples = 0
        for pos in self.drops:
            if det_start - half <= pos <= det_end + half:
                samples += half
        for pos, n in self.inserted:  # concealment of an empty buffer given to the detector: it lengthened the key
            samples -= max(0, min(det_end, pos + n) - max(det_start, pos))
        return round(samples * 1000 / self.rate)
