# SPDX-License-Identifier: GPL-2.0-or-later
"""The masker with its strict receiver: what a call's pipeline does live, for recordings and benchmarks.

A key the Q.24 receiver (:class:`dtmfguard.dsp.detector.DtmfDetector`) confirms opens the masker's keypad burst at
once (``MaskerParams.keypad_burst_receiver``, :meth:`Masker.key_confirmed`), so a sequence's second key on is
band-notched from its first sample.  Live, the call pipeline (:mod:`dtmfguard.media.pipeline`) runs its own detector
on the same 20 ms frames and calls the masker alike; :class:`KeypadMasker` does the same for any other caller: it
gives the receiver the input in 20 ms frames counted from the stream's first sample, each before the masker takes
it, and tells the masker of a key the receiver confirmed in it first, so its output is the same for any chunking,
and the same as the pipeline's on its frames.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .detector import DtmfDetector
from .masker import Masker

__all__ = ["KeypadMasker", "FRAME_MS"]

#: the receiver's frame: a call's packet time, the grid the pipeline tells the masker on
FRAME_MS = 20


class KeypadMasker(Masker):
    """:class:`~dtmfguard.dsp.masker.Masker` (same arguments) that runs the strict receiver on its own input and
    opens the keypad burst on the keys it confirms (when :attr:`wants_keys`).  ``receiver_starts`` counts them."""

    #: the call pipeline does not run its detector for it (:mod:`dtmfguard.media.pipeline`)
    runs_receiver = True

    def __init__(self, *args: Any, **kwargs: Any):
        self._frame = 0  # (Masker.__init__ resets before this class has set up)
        super().__init__(*args, **kwargs)
        self._frame = self.rate * FRAME_MS // 1000
        self._receiver = DtmfDetector(self.rate) if self.wants_keys else None

    def reset(self) -> None:
        """Forget the stream (:meth:`Masker.reset`), the receiver's too."""
        super().reset()
        self._parts: list = []  # received pieces of the frame not yet complete
        self._held = 0  # their samples
        self.receiver_starts = 0
        if self._frame:
            self._receiver = DtmfDetector(self.rate) if self.wants_keys else None

    def process(self, chunk) -> np.ndarray:
        """Mask ``chunk``.  The receiver hears each 20 ms frame before the masker does, so a key it confirms in a frame
        opens the burst from the first sample the masker has not yet emitted before that frame: one frame (20 ms) of
        the key earlier than after it.  So the masker takes the input a whole frame at a time: a chunk that ends inside
        a frame returns only what the frames completed so far gave (the rest comes with the frame's last sample, or
        :meth:`flush`); the stream, concatenated, is the same for any chunking."""
        receiver = self._receiver
        if receiver is None:
            return super().process(chunk)
        x = chunk if type(chunk) is np.ndarray else np.asarray(chunk)
        if x.ndim != 1 or x.dtype.kind not in "iuf":
            # (the masker fails closed on it, after the samples held for the frame)
            return np.concatenate([self._release(), super().process(chunk)]) if self._held else \
                super().process(chunk)
        out = []
        i, n = 0, x.size
        while i < n:
            take = min(n - i, self._frame - self._held)
            piece = x[i: i + take]
            i += take
            if take == self._frame:  # a whole frame in one piece (a call's frames): no copy
                self._receive(receiver, piece)
                out.append(super().process(piece))
                continue
            self._parts.append(piece)
            self._held += take
            if self._held == self._frame:
                frame = np.concatenate(self._parts)
                self._parts, self._held = [], 0
                self._receive(receiver, frame)
                out.append(super().process(frame))
        if len(out) == 1:
            return out[0]
        return np.concatenate(out) if out else super().process(x[:0])

    def flush(self) -> np.ndarray:
        """The samples held for an incomplete last frame (the receiver never hears a partial frame, as live), then
        the delay line (:meth:`Masker.flush`)."""
        return np.concatenate([self._release(), super().flush()]) if self._held else super().flush()

    def _release(self) -> np.ndarray:
        """The samples held for the frame not yet complete, masked without the receiver (end of stream, bad input)."""
        piece = np.concatenate(self._parts)
        self._parts, self._held = [], 0
        return super().process(piece)

    def _receive(self, receiver: DtmfDetector, frame: np.ndarray) -> None:
        """One whole frame to the receiver; a key it confirms in it opens (or holds) the keypad burst."""
        try:
            if frame.dtype.kind == "f":  # the masker's floats are [-1, 1]; the receiver's, the int16 scale
                frame = frame * 32768.0
            elif frame.dtype != np.int16:
                frame = frame.astype(np.int16)
            events = receiver.process(frame)
        except Exception:  # noqa: BLE001 - no receiver: the masker's own rules, as before it
            self._receiver = None
            return
        starts = [ev for ev in events if ev.end is None]
        if starts:
            self.receiver_starts += 1
            first = min(starts, key=lambda ev: ev.start)
            # (the receiver's positions are the stream's: it saw every sample)
            self.key_confirmed(first.start, first.digit)
