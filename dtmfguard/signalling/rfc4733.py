# SPDX-License-Identifier: GPL-2.0-or-later
"""RFC 4733 telephone-events: wire format and one DigitEvent per key press.

Why a tracker: a sender reports one key press as a *series* of packets that
share one RTP timestamp (RFC 4733 §2.5.1.2): a first packet, updates with a
growing duration, and an end packet (E bit) sent three times (§2.5.1.4).
Packets get lost (the end too), duplicated and reordered, a long press is split
into segments of at most 0xFFFF timestamp units (§2.5.1.3), and the 32-bit
timestamp wraps.  The payment session must still see each key exactly once and
the masker must cover the key for as long as it is held, so
:class:`Rfc4733Tracker` turns any such packet stream into one start
notification (``end=None``) and one complete :class:`~dtmfguard.events.DigitEvent`
per press, deduplicated by (SSRC, timestamp, event) as §2.5.2.1 prescribes.

Events above 15 (flash, fax and modem tones, §3.2 and RFC 4734) are not keys:
they are counted and ignored.  Positions are mapped onto the receiving
stream's sample clock (``now`` = samples of customer audio seen so far), which
is what the masker's ``cover`` and the digit merger use.

The tracker is pure Python and single-threaded by design: the media pipeline
feeds it from its own thread (see :mod:`dtmfguard.media.pipeline`).
"""
from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from dataclasses import dataclass

from ..events import DigitEvent, event_code_to_digit

__all__ = [
    "MAX_SEGMENT_UNITS",
    "Rfc4733Error",
    "Rfc4733Tracker",
    "TelephoneEvent",
    "parse_payload",
    "serialise_payload",
]

log = logging.getLogger(__name__)

#: Largest duration one packet can carry (16-bit field, RFC 4733 §2.3.5); longer presses are segmented.
MAX_SEGMENT_UNITS = 0xFFFF

_TS_MOD = 1 << 32


class Rfc4733Error(ValueError):
    """A telephone-event payload that cannot be parsed (never names the event code: it may be a key)."""


@dataclass(frozen=True)
class TelephoneEvent:
    """One 4-octet telephone-event block (RFC 4733 §2.3, figure 1).

    ``event`` 0-255, ``end`` the E bit, ``volume`` 0-63 (-dBm0, §2.3.4), ``duration`` in RTP timestamp
    units 0-65535 (§2.3.5).  The R bit is reserved: sent as 0, ignored on receipt (§2.3.3).
    """

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise Rfc4733Error("event code out of range 0..255")
        if not 0 <= self.volume <= 63:
            raise Rfc4733Error("volume out of range 0..63")
        if not 0 <= self.duration <= 0xFFFF:
            raise Rfc4733Error("duration out of range 0..65535")

    def __repr__(self) -> str:  # the event code of a DTMF key is card data during a payment
        return f"TelephoneEvent(event=<hidden>, end={self.end}, volume={self.volume}, duration={self.duration})"

    __str__ = __repr__


def parse_payload(data: bytes) -> TelephoneEvent:
    """Parse one RTP telephone-event payload (exactly one 4-octet block, RFC 4733 §2.3).

    Raises :class:`Rfc4733Error` on anything else.  Several blocks in one payload
    only occur with RFC 2198 redundancy, which has its own payload type.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise Rfc4733Error(f"payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != 4:
        raise Rfc4733Error(f"telephone-event payload must be 4 octets (RFC 4733 §2.3), got {len(data)}")
    event, flags, duration = struct.unpack("!BBH", data)
    return TelephoneEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


def serialise_payload(ev: TelephoneEvent) -> bytes:
    """The 4-octet wire form of ``ev`` (R bit 0)."""
    return struct.pack("!BBH", ev.event, (0x80 if ev.end else 0) | ev.volume, ev.duration)


def _ts_newer(a: int, b: int) -> bool:
    """True if RTP timestamp ``a`` is after ``b`` in serial-number arithmetic (RFC 3550 §5.1 wrap)."""
    return a != b and ((a - b) % _TS_MOD) < (_TS_MOD // 2)


@dataclass
class _Active:
    ssrc: int
    timestamp: int  # timestamp of the first segment: identifies the press
    seg_timestamp: int  # timestamp of the current segment
    code: int
    start: int  # stream sample
    seg_base_units: int  # units covered by the finished segments
    units: int  # total units reported so far
    last_seen: int  # stream sample of the last packet


class Rfc4733Tracker:
    """Telephone-event packets (or a SIP stack's decoded key reports) -> one DigitEvent per key press.

    ``rate`` is the stream's sample rate (the positions of produced events);
    ``event_rate`` the telephone-event clock (RTP timestamp units per second, 8000 for
    ``telephone-event/8000``).  A press whose end packet never arrives is ended
    ``lost_end_ms`` after its last packet (:meth:`poll`); the next press also
    ends it.  Durations longer than ``max_event_ms`` are clamped: a stuck sender
    cannot make one press last forever.
    """

    def __init__(self, rate: int = 8000, event_rate: int = 8000, *, lost_end_ms: float = 200.0,
                 max_event_ms: float = 10_000.0, source: str = "rfc4733", remember: int = 64):
        if rate <= 0 or event_rate <= 0:
            raise ValueError("rates must be positive")
        self.rate = int(rate)
        self.event_rate = int(event_rate)
        self.source = source
        self.lost_end_samples = int(lost_end_ms * rate / 1000)
        self.max_event_samples = int(max_event_ms * rate / 1000)
        self._active: _Active | None = None
        self._done: OrderedDict[tuple[int, int, int], None] = OrderedDict()
        self._remember = remember
        self._latest: OrderedDict[int, int] = OrderedDict()  # newest press timestamp per SSRC
        #: counters (no digits): packets seen, duplicates/stale dropped, non-key events, lost ends, clamps
        self.stats = {"packets": 0, "dropped": 0, "non_key": 0, "lost_end": 0, "clamped": 0}

    # -- inputs ---------------------------------------------------------------------------------------
    def packet(self, ssrc: int, timestamp: int, payload, now: int) -> list[DigitEvent]:
        """Feed one received packet: ``payload`` is the 4 wire octets or a :class:`TelephoneEvent`.

        ``now`` is the stream sample position at arrival.  Raises :class:`Rfc4733Error` on a bad payload.
        """
        ev = payload if isinstance(payload, TelephoneEvent) else parse_payload(payload)
        return self._observe(int(ssrc) & 0xFFFFFFFF, int(timestamp) % _TS_MOD, ev.event, ev.end, ev.duration, now)

    def key(self, digit: str, timestamp: int, duration_ms: int, *, end: bool, now: int,
            ssrc: int = 0) -> list[DigitEvent]:
        """Feed one key report from a SIP stack that decodes the packets itself: ``digit``, the press's
        ``timestamp`` (identifies the press; the stack's own units, e.g. ms), ``duration_ms`` so far, and
        ``end`` (the press is over).  Reports of one press repeat with a growing duration, like packets.
        The stack's own flag values are translated where that stack is imported (:mod:`dtmfguard.sip.pj`)."""
        from ..events import digit_to_event_code

        try:
            code = digit_to_event_code(digit)
        except ValueError:
            self.stats["non_key"] += 1
            return []
        units = int(min(max(int(duration_ms), 0), 10_000_000) * self.event_rate / 1000)
        end = bool(end)
        if units > MAX_SEGMENT_UNITS:  # the stack already joined segments: keep the full duration
            return self._observe(ssrc, int(timestamp) % _TS_MOD, code, end, units, now, joined=True)
        return self._observe(ssrc, int(timestamp) % _TS_MOD, code, end, units, now)

    def poll(self, now: int) -> list[DigitEvent]:
        """End a press whose end packet was lost (no packet for ``lost_end_ms``)."""
        a = self._active
        if a is not None and now - a.last_seen >= self.lost_end_samples:
            self.stats["lost_end"] += 1
            return self._finish(a)
        return []

    @property
    def active(self) -> bool:
        """True while a press is sounding (the masker must keep covering)."""
        return self._active is not None

    # -- internals ------------------------------------------------------------------------------------
    def _units_to_samples(self, units: int) -> int:
        return int(units * self.rate // self.event_rate)

    def _observe(self, ssrc: int, ts: int, code: int, end: bool, units: int, now: int,
                 joined: bool = False) -> list[DigitEvent]:
        self.stats["packets"] += 1
        out: list[DigitEvent] = []
        if code > 15:  # flash, fax/modem tones: not a key (RFC 4733 §3.2, RFC 4734)
            self.stats["non_key"] += 1
            return out
        a = self._active
        if a is not None and a.ssrc == ssrc and a.code == code and ts == a.seg_timestamp:
            self._update(a, units, now)
            if end:
                out += self._finish(a)
            return out
        if a is not None and a.ssrc == ssrc and a.code == code and ts != a.seg_timestamp \
                and _ts_newer(ts, a.seg_timestamp) and a.units - a.seg_base_units >= MAX_SEGMENT_UNITS \
                and (ts - a.seg_timestamp) % _TS_MOD <= MAX_SEGMENT_UNITS + self.event_rate // 10:
            # next segment of a long press (§2.5.1.3): same key, timestamp where the last segment stopped
            a.seg_base_units = a.units = a.seg_base_units + ((ts - a.seg_timestamp) % _TS_MOD)
            a.seg_timestamp = ts
            self._update(a, units, now)
            if end:
                out += self._finish(a)
            return out
        key = (ssrc, ts, code)
        if key in self._done:  # repeated end packets, late updates of a finished press
            self.stats["dropped"] += 1
            return out
        latest = self._latest.get(ssrc)
        if latest is not None and not _ts_newer(ts, latest):
            self.stats["dropped"] += 1  # a stale packet from before the newest press (serial arithmetic)
            return out
        self._latest[ssrc] = ts
        self._latest.move_to_end(ssrc)
        while len(self._latest) > 16:
            self._latest.popitem(last=False)
        if a is not None:
            out += self._finish(a)  # a new press implies the previous one ended (its end was lost)
            self.stats["lost_end"] += 1
        if not joined:
            units = min(units, MAX_SEGMENT_UNITS)
        dur = min(self._units_to_samples(units), self.max_event_samples)
        start = max(0, int(now) - dur)
        a = _Active(ssrc, ts, ts, code, start, 0, units, int(now))
        self._active = a
        out.append(DigitEvent(event_code_to_digit(code), start, None, self.rate, source=self.source))
        if end:
            out += self._finish(a)
        return out

    def _update(self, a: _Active, units: int, now: int) -> None:
        a.units = max(a.units, a.seg_base_units + units)  # durations never shrink (reordered updates)
        a.last_seen = max(a.last_seen, int(now))

    def _finish(self, a: _Active) -> list[DigitEvent]:
        self._active = None
        self._done[(a.ssrc, a.timestamp, a.code)] = None
        if a.seg_timestamp != a.timestamp:
            self._done[(a.ssrc, a.seg_timestamp, a.code)] = None
        while len(self._done) > self._remember:
            self._done.popitem(last=False)
        dur = self._units_to_samples(a.units)
        if dur > self.max_event_samples:
            self.stats["clamped"] += 1
            dur = self.max_event_samples
        end = a.start + max(dur, 1)
        return [DigitEvent(event_code_to_digit(a.code), a.start, end, self.rate, source=self.source)]
