# SPDX-License-Identifier: GPL-2.0-or-later
"""RTP (RFC 3550) header handling and the customer stream's jitter/reorder buffer.

Why a buffer with concealment: the masker and the RFC 4733 tracker work on one continuous sample
clock (``samples_in``).  Packets arrive late, early, reordered, duplicated or not at all; a sender
pauses while it sends telephone-events.  :class:`JitterBuffer` turns that into exactly one frame per
20 ms tick: packets are placed by RTP timestamp, the tick takes the frame at the playout position, a
missing frame is concealed (the last frame at half level once, then silence: RFC 3550 leaves
concealment to the receiver, and silence is the fail-closed choice), so the masker's stream never
slips against the timestamps.  Telephone-event packets are held in the same timeline and released
when playout reaches their timestamp, so a cover starts where the key started.

Each :meth:`JitterBuffer.pop` says in :attr:`JitterBuffer.made_up` whether its frame was made up (the
buffer ran dry, or a packet was missing) or sender's frames were skipped just before it; the relay hands
that to the pipeline (``CallPipeline.note_jitter``) as serve does with pjmedia's buffer, so a key with a
concealed frame inside it stays one key (without it a 40-60 ms sender stall inside a key split it into
two digits or lost it: a card number one digit long or short).

Timestamps are compared with serial arithmetic (RFC 3550 §5.1, 32 bits).  A new SSRC, a jump beyond
``max_ahead_ms`` or a late packet while the buffer runs dry re-anchors the playout position; each is
counted in :attr:`JitterBuffer.stats`.
"""
from __future__ import annotations

import struct

import numpy as np

__all__ = ["RtpError", "RtpPacket", "parse", "parse_fields", "build_header", "JitterBuffer", "HEADER"]

_HDR = struct.Struct("!BBHII")
#: the fixed 12-byte RTP header (V/P/X/CC, M/PT, sequence, timestamp, SSRC)
HEADER = _HDR
_TS_MOD = 1 << 32
_MASK = _TS_MOD - 1
_HALF = 1 << 31
_NOTHING = (0, 0, 0)


class RtpError(ValueError):
    """Not an RTP packet the relay can use."""


class RtpPacket:
    __slots__ = ("pt", "marker", "seq", "ts", "ssrc", "payload")

    def __init__(self, pt: int, marker: bool, seq: int, ts: int, ssrc: int, payload: bytes):
        self.pt, self.marker, self.seq, self.ts, self.ssrc, self.payload = pt, marker, seq, ts, ssrc, payload


def parse(data: bytes) -> RtpPacket:
    """Parse one RTP packet (version 2; CSRCs, header extension and padding skipped)."""
    n = len(data)
    if n < 12:
        raise RtpError("shorter than an RTP header")
    b0, b1, seq, ts, ssrc = _HDR.unpack_from(data, 0)
    if b0 >> 6 != 2:
        raise RtpError("not RTP version 2")
    off = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if off + 4 > n:
            raise RtpError("truncated header extension")
        off += 4 + 4 * struct.unpack_from("!H", data, off + 2)[0]
    end = n
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or off + pad > n:
            raise RtpError("bad padding")
        end -= pad
    if off > end:
        raise RtpError("truncated packet")
    return RtpPacket(b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, bytes(data[off:end]))


def parse_fields(data: bytes) -> tuple[int, int, int, bytes]:
    """``(payload type, timestamp, SSRC, payload)`` of one RTP packet: :func:`parse` without the packet
    object, with a fast path for the common header (version 2, no padding, extension or CSRCs)."""
    if len(data) > 12 and data[0] == 0x80:
        _b0, b1, _seq, ts, ssrc = _HDR.unpack_from(data, 0)
        return b1 & 0x7F, ts, ssrc, data[12:]
    p = parse(data)
    return p.pt, p.ts, p.ssrc, p.payload


def build_header(pt: int, marker: bool, seq: int, ts: int, ssrc: int) -> bytes:
    return _HDR.pack(0x80, (0x80 if marker else 0) | (pt & 0x7F), seq & 0xFFFF, ts % _TS_MOD, ssrc)


def _quiet(pcm: np.ndarray, n: int) -> bool:
    """A whole frame (``n`` samples) whose mean level is below ~-50 dBm0: no tone, no speech in it."""
    return len(pcm) == n and float(np.mean(np.abs(pcm))) < 100.0


def _diff(a: int, b: int) -> int:
    """a - b in serial arithmetic (signed, 32-bit timestamps)."""
    return ((a - b + _HALF) % _TS_MOD) - _HALF


class JitterBuffer:
    """Decoded customer audio by RTP timestamp -> one ``frame`` of samples per tick (see module doc).

    Timestamps are in 8 kHz units and samples are 8 kHz (G.722 is decoded to 8 kHz), so one unit is one
    sample.  ``depth_ms`` is the playout delay given to the first packet (and after a re-anchor).
    """

    def __init__(self, frame: int = 160, depth_ms: float = 20.0, max_ahead_ms: float = 300.0):
        self.frame = int(frame)
        self.depth = int(depth_ms * 8)
        self.max_ahead = int(max_ahead_ms * 8)
        self.play_ts: int | None = None
        self.ssrc: int | None = None
        self._audio: dict[int, np.ndarray] = {}
        self._events: list[tuple[int, int, bytes]] = []
        self._last: np.ndarray | None = None
        self._missing_run = 0
        self._pops = 0
        self._min_ahead = 1 << 30
        self._surplus = 0
        self.stats = {"packets": 0, "late": 0, "duplicate": 0, "concealed": 0, "resync": 0, "overflow": 0,
                      "events": 0, "shrunk": 0}
        #: what the last :meth:`pop` made up, as ``CallPipeline.note_jitter`` takes it: (inserted: the buffer
        #: was empty, concealed: a packet was missing with later ones waiting, dropped: quiet frames skipped
        #: just before this one to give back delay)
        self.made_up = _NOTHING
        self._dropped = 0
        self._quiet_run = 0  # quiet frames played in a row (while giving back delay)

    @property
    def started(self) -> bool:
        return self.play_ts is not None

    def reset(self) -> None:
        """Forget the stream (a pause): the next packet anchors playout again; counters are kept."""
        self.play_ts = self.ssrc = None
        self._audio.clear()
        self._events.clear()
        self._last = None

    def _anchor(self, ts: int) -> None:
        self._audio.clear()
        self.play_ts = (ts - self.depth) % _TS_MOD

    def put_audio(self, ssrc: int, ts: int, pcm: np.ndarray) -> None:
        self.stats["packets"] += 1
        play = self.play_ts
        if play is not None and ssrc == self.ssrc and (ts - play) & _MASK <= self.max_ahead:
            # the common case (same stream, not late, not too far ahead): one dict store
            audio = self._audio
            if ts not in audio and len(audio) < 64:
                audio[ts] = pcm
                return
        if self.play_ts is None or ssrc != self.ssrc:
            if self.play_ts is not None:
                self.stats["resync"] += 1
            self.ssrc = ssrc
            self._anchor(ts)
        d = _diff(ts, self.play_ts)
        if d < 0:
            if not self._audio and d > -self.max_ahead:
                # late, and nothing else to play: move playout back to this packet (the sender's clock is
                # slower than ours, or the network held it): better than concealing forever
                self.stats["resync"] += 1
                self.play_ts = ts
            else:
                self.stats["late"] += 1
                return
        elif d > self.max_ahead:
            self.stats["resync"] += 1
            self._anchor(ts)
        if ts in self._audio:
            self.stats["duplicate"] += 1
            return
        if len(self._audio) >= 64:
            self.stats["overflow"] += 1
            return
        self._audio[ts] = pcm

    def put_event(self, ssrc: int, ts: int, payload: bytes) -> list[tuple[int, int, bytes]]:
        """Queue one telephone-event packet; returns the events due now (all of them before playout starts)."""
        self.stats["events"] += 1
        if self.play_ts is None or abs(_diff(ts, self.play_ts)) > self.max_ahead:
            return [(ssrc, ts, payload)]
        self._events.append((ssrc, ts, payload))
        return []

    @property
    def has_events(self) -> bool:
        """Telephone-event packets are waiting for playout to reach them."""
        return bool(self._events)

    def due_events(self) -> list[tuple[int, int, bytes]]:
        if not self._events or self.play_ts is None:
            return []
        limit = self.play_ts + self.frame
        due = [e for e in self._events if _diff(e[1], limit) < 0]
        if due:
            self._events = [e for e in self._events if _diff(e[1], limit) >= 0]
        return due

    def pop(self) -> np.ndarray | None:
        """The next frame (int16, ``frame`` samples), concealed if missing; None before the first packet."""
        if self.play_ts is None:
            return None
        ts, n = self.play_ts, self.frame
        self.play_ts = (ts + n) & _MASK
        pcm = self._audio.pop(ts, None)
        if self._dropped:
            self.made_up, self._dropped = (0, 0, self._dropped), 0
        elif self.made_up is not _NOTHING:
            self.made_up = _NOTHING
        if pcm is not None and len(pcm) == n:
            self._last = pcm
            self._missing_run = 0
            if self._surplus:  # only needed while there is delay to give back
                self._quiet_run = self._quiet_run + 1 if _quiet(pcm, n) else 0
            # _adapt's bookkeeping inline (it runs for every frame); the rest only when there is work
            ahead = len(self._audio)
            if ahead < self._min_ahead:
                self._min_ahead = ahead
            self._pops += 1
            if self._surplus or self._pops >= 50:
                self._adapt(counted=True)
            return pcm
        if pcm is not None:
            self._audio[ts] = pcm  # other ptime: assemble below
        out = None
        if self._audio:
            out = self._assemble(ts, n)
        if out is not None:
            self._last = out
            self._missing_run = 0
            self._quiet_run = 0
            return out
        self.stats["concealed"] += 1
        self._missing_run += 1
        self._quiet_run = 0
        self.made_up = (0, 1, self.made_up[2]) if self._audio else (1, 0, self.made_up[2])
        if self._missing_run == 1 and self._last is not None:
            return (self._last >> 1).astype(np.int16)
        return np.zeros(n, dtype=np.int16)

    def _adapt(self, counted: bool = False) -> None:
        """Give back delay that late packets added once the network calmed down: when for a whole second
        every tick found more frames waiting than ``depth`` asks for, skip that surplus, one quiet frame at
        a time (never a frame with a tone or speech in it: mean level below ~-50 dBm0), and only after two
        quiet frames were played.  So a pause keeps at least 40 ms: skipping two frames of a 70 ms pause
        between two presses of the same key merged them into one (Q.24: a 40 ms pause separates two keys),
        a card number one digit short."""
        if not counted:
            ahead = len(self._audio)
            if ahead < self._min_ahead:
                self._min_ahead = ahead
            self._pops += 1
        if self._surplus:
            nxt = self._audio.get(self.play_ts)
            if nxt is not None and self._quiet_run >= 2 and _quiet(nxt, self.frame):
                del self._audio[self.play_ts]
                self.play_ts = (self.play_ts + self.frame) % _TS_MOD
                self.stats["shrunk"] += 1
                self._dropped += 1
                self._surplus -= 1
        if self._pops >= 50:
            if not self._surplus:
                self._quiet_run = 0  # counted from here on
            self._surplus = max(0, self._min_ahead - self.depth // self.frame)
            self._pops, self._min_ahead = 0, 1 << 30

    def _assemble(self, ts: int, n: int) -> np.ndarray | None:
        """Frames from packets of another size (10, 30 ms ...): copy the overlapping parts."""
        out = np.zeros(n, dtype=np.int16)
        got = False
        for key in list(self._audio):
            pcm = self._audio[key]
            start = _diff(key, ts)
            end = start + len(pcm)
            if end <= 0:
                del self._audio[key]  # entirely in the past
                continue
            if start >= n:
                continue
            lo, hi = max(start, 0), min(end, n)
            out[lo:hi] = pcm[lo - start:hi - start]
            got = True
            del self._audio[key]
            if end > n:  # keep the rest for the next frame
                self._audio[(ts + n) % _TS_MOD] = pcm[n - start:]
        return out if got else None
