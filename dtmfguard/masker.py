# SPDX-License-Identifier: GPL-2.0-or-later
"""Streaming DTMF masker: the agent hears a flat tone where the customer pressed keys.

Why: PCI SSC "Protecting Telephone-Based Payment Card Data" (2018) keeps the
agent's desktop and call recordings out of PCI DSS scope only if no card data
reaches them, and PCI DSS v4.0 req. 3.3.1 forbids keeping the verification code
in recordings.  Maskers driven by a Q.24 receiver react 25-40 ms after a tone
starts (two 12.75 ms Goertzel blocks) and leak its onset; an attacker names a
digit from 2-5 ms of tone (REFERENCES.md "Measured here", :mod:`adversary`).

How this one leaks nothing:

* a **delay line** of ``lookahead_ms`` sits between customer and agent, so the
  decision for an output sample is taken after hearing ``lookahead_ms`` of what
  follows it;
* an **early, liberal onset detector** (not the strict Q.24 receiver of
  :mod:`dtmfguard.detector`, which decides which digits are *captured*): every
  1 ms it fits all 16 key pairs by least squares to the last 4 ms and 8 ms and
  reacts when any pair explains half the energy.  It does not care which key it
  is; masking speech by mistake costs little, a leaked tone is a failure;
* on detection it **walks back** through the look-ahead in 2 ms windows to the
  first sample carrying that pair's energy, and masks from there minus a guard
  margin, with a raised-cosine cross-fade that completes *before* that point;
* masked spans start on a 1 ms grid and last a whole number of
  ``quantum_ms``, and the mask is a fixed signal indexed by absolute stream
  position, so its level, spectrum and duration do not depend on the key.
  ``hide_timing=True`` holds the mask ``hold_ms`` after every press so the
  number and rhythm of presses is hidden too.

Output is exactly the input delayed by :attr:`Masker.delay_samples`, except in
masked spans and their fades.  Every decision is taken on a fixed 1 ms grid of
absolute sample positions and may only touch samples that even a 1-sample
chunking has not yet emitted, so any chunking gives bit-identical output.

Speed (issue 6): a live call runs this once per 20 ms frame with cold caches, where every numpy call
costs several µs, so the per-hop screen of a frame (both windows' fits and the three rules) is one call
of the optional C routine ``native/masker.c`` when it was built and ``DTMFGUARD_BACKEND`` is not
``numpy``; quiet frames skip the fits, and unmasked int16 samples skip rounding.  The numpy path gives
the same output (``tests/test_masker_native.py``; ``benchmarks/pipeline_frame.py`` measures both).

Fail closed (issue 4, project rules): :meth:`Masker.process` never raises.  If
anything inside fails, that chunk's output is the mask (or silence if even the
mask cannot be made), everything still buffered is covered, and ``errors`` is
incremented.  Digits never appear in logs or exceptions here.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple

import numpy as np

from . import goertzel
from .adversary import _pair_tables, pair_fit
from .audio import check_rate
from .levels import dbm0_to_peak

try:  # optional C screen (native/masker.c); the numpy path below gives the same output
    from . import _masker_native  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the build
    _masker_native = None

__all__ = ["Masker", "MaskedSpan", "mask_samples", "MASKS", "DEFAULT_LOOKAHEAD_MS"]

log = logging.getLogger(__name__)

#: Mask signals.
MASKS = ("tone", "silence", "noise")

#: Default look-ahead, chosen by ``benchmarks/masker.py`` (smallest value with zero leaked samples and
#: zero digits recovered on the adversarial corpus, plus margin).
DEFAULT_LOOKAHEAD_MS = 16.0

_NOISE_BLOCK = 4096


@dataclass(frozen=True)
class MaskedSpan:
    """A masked input-stream span [start, end) in samples (never says which key, or whether it was one)."""

    start: int
    end: int
    source: str  # "inband", "cover" or "error"


class _Span:
    __slots__ = ("start", "end", "source")

    def __init__(self, start: int, end: Optional[int], source: str):
        self.start = start
        self.end = end  # None: open
        self.source = source


class Masker:
    """Customer audio in, agent audio out: same length, delayed, DTMF tones replaced by a mask.

    Parameters (times in ms, levels per tone in dBm0):

    ``lookahead_ms``   fixed delay; the detector must find a tone within it.
    ``mask``           ``"tone"`` (default), ``"silence"`` or ``"noise"`` (comfort noise).
    ``mask_hz``        frequency of the mask tone; one tone is never a DTMF pair (Q.23).
    ``mask_dbm0``      mask tone level; ``noise_dbm0`` comfort-noise level.
    ``fade_ms``        raised-cosine cross-fade into and out of the mask (no clicks).
    ``guard_ms``       extra margin before the estimated onset and after the detected end.
    ``quantum_ms``     masked spans last a whole number of quanta (duration hides detector jitter).
    ``hide_timing``    hold the mask ``hold_ms`` (default 2000 with ``hide_timing``) after each press.
    ``min_tone_dbm0``  weakest tone masked (per tone); Q.24 receivers work to about -26 dBm0.
    """

    def __init__(
        self,
        rate: int = 8000,
        lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
        mask: str = "tone",
        *,
        mask_hz: float = 400.0,
        mask_dbm0: float = -20.0,
        noise_dbm0: float = -50.0,
        fade_ms: float = 4.0,
        guard_ms: float = 2.0,
        quantum_ms: float = 20.0,
        hide_timing: bool = False,
        hold_ms: Optional[float] = None,
        min_tone_dbm0: float = -42.0,
        detect_fraction: float = 0.9,
        detect_fraction_long: float = 0.7,
        detect_fraction_persist: float = 0.5,
        max_twist_db: float = 15.0,
        seed: int = 0,
    ):
        self.rate = check_rate(rate)
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {', '.join(MASKS)}, got {mask!r}")
        if not 0 <= lookahead_ms <= 1000:
            raise ValueError("lookahead_ms must be between 0 and 1000")
        if not 0 < mask_hz < self.rate / 2:
            raise ValueError("mask_hz must be between 0 and half the sample rate")
        if any(_near_dtmf(mask_hz)):
            raise ValueError("mask_hz must be at least 50 Hz away from every DTMF frequency (Q.23)")
        for name, value in (("fade_ms", fade_ms), ("guard_ms", guard_ms)):
            if not 0 <= value <= 100:
                raise ValueError(f"{name} must be between 0 and 100")
        if not 1 <= quantum_ms <= 1000:
            raise ValueError("quantum_ms must be between 1 and 1000")
        if not (0 < detect_fraction < 1 and 0 < detect_fraction_long < 1):
            raise ValueError("detect_fraction and detect_fraction_long must be between 0 and 1")
        self.mask = mask
        self.mask_hz = float(mask_hz)
        self.mask_dbm0 = float(mask_dbm0)
        self.noise_dbm0 = float(noise_dbm0)
        self.lookahead_ms = float(lookahead_ms)
        self.hide_timing = bool(hide_timing)
        ms = self.rate / 1000.0
        self.delay_samples = int(round(lookahead_ms * ms))
        self._hop = max(1, int(round(ms)))  # decision grid: 1 ms
        self._fade = int(round(fade_ms * ms))
        self._guard = int(round(guard_ms * ms))
        self._quantum = max(self._hop, int(round(quantum_ms * ms)))
        hold = (2000.0 if hide_timing else 0.0) if hold_ms is None else float(hold_ms)
        if not 0 <= hold <= 60000:
            raise ValueError("hold_ms must be between 0 and 60000")
        self._hold = int(round(hold * ms))
        # (window, share of its energy the best pair must explain): a fast 4 ms window and an 8 ms one
        # that still sees a tone under speech; thresholds chosen on speech talk-off (benchmarks/masker.py).
        self._windows = ((4 * self._hop, detect_fraction), (8 * self._hop, detect_fraction_long))
        # A third rule finds tones under speech: the same pair explaining half of the 8 ms window in
        # ``persist`` consecutive hops (speech formants move; a key's pair does not).
        self._persist_fraction = float(detect_fraction_persist)
        self._persist = 3
        self._short = 2 * self._hop  # 2 ms onset windows ...
        self._short_step = max(1, self._hop // 2)  # ... every 0.5 ms
        self._close_misses = 4  # 4 ms without a hit ends a press
        # how long after a tone's end the detector closes its span: covers add it so that a signalled
        # key (RFC 4733 / SIP INFO) sounds as long as the same key in-band
        self._tail = self._close_misses * self._hop + 4 * self._hop
        self._min_amp = dbm0_to_peak(min_tone_dbm0)
        self._twist2 = 10.0 ** (float(max_twist_db) / 10.0)  # amplitude ratio, squared
        self._onset_ratio = 0.05  # share of the steady pair energy that still counts as tone
        self._hold_ratio = 0.25  # a press lasts while its pair keeps a quarter of its energy (half amplitude)
        self._seed = int(seed)
        self._keep = self.delay_samples + max(w for w, _ in self._windows) + 4 * self._hop
        self._qr: dict = {}
        self._native_bufs: dict = {}  # per hop count: the C screen's output arrays (reused every frame)
        self._fade_ramp = 0.5 * (1 + np.cos(np.pi * np.arange(1, self._fade + 1) / (self._fade + 1)))
        self.reset()

    # ------------------------------------------------------------------ public API
    def reset(self) -> None:
        """Forget the stream: positions restart at 0, nothing masked."""
        self.samples_in = 0
        self.errors = 0
        self._pos = 0  # input samples taken in (including flush padding)
        self._buf = np.zeros(self._keep)  # samples [pos - len(buf), pos)
        self._next_hop = self._hop
        self._spans: List[_Span] = []
        self._active: Optional[_Span] = None  # in-band span of the press being heard
        self._misses = 0
        self._recent = np.full(self._persist - 1, -1, dtype=np.int64)  # weak-rule pair of the last hops (persistence rule)
        self._pair = -1  # pair of the press being masked and ...
        self._steady = 0.0  # ... the most energy it explained in the long window
        self._history: Deque[MaskedSpan] = deque(maxlen=100000)
        self._out_dtype = np.dtype(np.int16)
        self._inexact_until = -self._keep  # input positions below this may hold samples that are not int16
        self._exact_out = False  # the last _run returned untouched samples from int16 input

    @property
    def masked_spans(self) -> List[MaskedSpan]:
        """Masked spans with a known end (input positions; the agent hears them ``delay_samples`` later).

        Spans are listed once closed; their ends may still lie ahead of the output.
        """
        done = list(self._history) + [MaskedSpan(s.start, s.end, s.source) for s in self._spans
                                      if s.end is not None]
        return sorted(done, key=lambda s: (s.start, s.end))

    @property
    def masking(self) -> bool:
        """True while a press is being masked or a cover is open."""
        return self._active is not None or any(s.end is None for s in self._spans)

    def process(self, chunk) -> np.ndarray:
        """Take customer samples, return as many agent samples (delayed by ``delay_samples``).

        int16 in gives int16 out; float in ([-1, 1]) gives float64 out.  Never raises:
        any internal failure yields the mask for this chunk (fail closed).
        """
        try:
            n = chunk.size if type(chunk) is np.ndarray else int(np.size(chunk))
        except Exception:  # pragma: no cover - np.size accepts nearly anything
            n = 0
        pos_before = self._pos
        try:
            x, dtype = self._convert(chunk)
            out = self._run(x)
            self.samples_in += x.size
            return self._emit(out, dtype)
        except Exception as exc:  # fail closed: the agent hears the mask, never raw audio
            self.samples_in += n
            return self._fail(pos_before, n, exc)

    def flush(self) -> np.ndarray:
        """Return the last ``delay_samples`` samples still in the delay line (end of stream)."""
        pos_before = self._pos
        try:
            return self._emit(self._run(np.zeros(self.delay_samples)), self._out_dtype)
        except Exception as exc:
            return self._fail(pos_before, self.delay_samples, exc)

    def cover(self, start: int, end: Optional[int] = None) -> None:
        """Mask the input span [start, end) (``end=None``: until :meth:`uncover`), e.g. an RFC 4733 event.

        The span gets the same guard, fades and duration quantum as an in-band press,
        so the agent hears the same thing however the phone sent the key.  Samples
        already emitted cannot be masked any more; cover as early as possible.
        """
        start = int(start)
        a = self._align_down(start - self._guard)
        span = _Span(a, None, "cover")
        self._spans.append(span)
        if end is not None:
            self._close(span, int(end) + self._guard + self._tail)

    def uncover(self, end: int) -> None:
        """Close every open cover at input position ``end`` (plus guard, rounded up to the quantum)."""
        for span in self._spans:
            if span.source == "cover" and span.end is None:
                self._close(span, int(end) + self._guard + self._tail)

    # ------------------------------------------------------------------ internals
    def _convert(self, chunk) -> Tuple[np.ndarray, np.dtype]:
        a = np.asarray(chunk)
        if a.ndim != 1:
            raise ValueError("chunk must be 1-D")
        if a.dtype != np.int16:
            self._inexact_until = self._pos + a.size
        if a.dtype.kind in "iu":
            self._out_dtype = np.dtype(np.int16)
            return a.astype(np.float64), self._out_dtype
        if a.dtype.kind == "f":
            x = a.astype(np.float64) * 32768.0
            if not np.all(np.isfinite(x)):
                raise ValueError("non-finite samples")
            self._out_dtype = np.dtype(np.float64)
            return x, self._out_dtype
        raise TypeError("unsupported sample type")

    def _emit(self, out: np.ndarray, dtype: np.dtype) -> np.ndarray:
        # Unmasked output that came in as int16 is already whole int16 values: rounding and clipping would
        # change nothing, so skip those two passes (the common case on a live call).
        if self._exact_out and dtype == np.int16:
            return out.astype(np.int16)
        return self._to_dtype(out, dtype)

    @staticmethod
    def _to_dtype(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
        if dtype == np.int16:
            return np.clip(np.round(out), -32768, 32767).astype(np.int16)
        return out / 32768.0

    def _fail(self, pos_before: int, n: int, exc: BaseException) -> np.ndarray:
        self.errors += 1
        # Never log the message or the samples: they could carry digits.  A persistent fault would fail
        # every 20 ms frame: log the first and then every 500th, not a flood.
        if self.errors == 1 or self.errors % 500 == 0:
            log.error("masker internal error (%s, %d so far); masking this chunk and the delay line",
                      type(exc).__name__, self.errors)
        try:
            start = pos_before - self.delay_samples
            self._pos = pos_before + n
            self._buf = np.zeros(self._keep)
            self._next_hop = (self._pos // self._hop + 1) * self._hop
            self._active = None
            span = _Span(start, None, "error")
            self._spans.append(span)
            self._close(span, self._pos + self._hold + self._quantum)
            out = self._mask_signal(start, n)
        except Exception:
            out = np.zeros(n)  # even the mask failed: silence, still never raw audio
        try:
            return self._to_dtype(out, self._out_dtype)
        except Exception:
            return np.zeros(n, dtype=np.int16)

    def _align_down(self, pos: int) -> int:
        return (pos // self._hop) * self._hop

    def _close(self, span: _Span, end: int) -> None:
        length = max(end - span.start, 1)
        length = -(-length // self._quantum) * self._quantum
        span.end = span.start + length + self._hold

    def _run(self, x: np.ndarray) -> np.ndarray:
        n = x.size
        pos0 = self._pos
        self._buf = np.concatenate([self._buf, x])
        self._pos += n
        buf_start = self._pos - self._buf.size
        # Decisions on the 1 ms grid of absolute positions, whatever the chunking.
        last_hop = (self._pos // self._hop) * self._hop
        if last_hop >= self._next_hop:
            hops = range(self._next_hop, last_hop + 1, self._hop)
            self._decide(hops, buf_start)
            self._next_hop = last_hop + self._hop
        out_start = pos0 - self.delay_samples
        raw = self._buf[out_start - buf_start: out_start - buf_start + n]
        self._exact_out = False
        out = self._apply(raw, out_start)
        self._exact_out = out is raw and out_start >= self._inexact_until
        self._buf = self._buf[-self._keep:]  # a view: the next concatenate copies it
        self._expire(out_start + n)
        return out

    def _fit(self, seg: np.ndarray, nh: int):
        """The onset detector's core: fit the 16 key pairs to the windows ending at ``nh`` hops.

        ``seg`` holds the long window of the first hop followed by ``(nh - 1) * hop`` samples.  Returns
        ``(best_pair [nh] (-1: no key), coef [nh, 4], explained [nh, 16] (long window), any hit)``.
        The C screen does it in one call when built and selected (``DTMFGUARD_BACKEND``, as for the
        detector's kernel): a live call runs this once per 20 ms frame with cold caches, where the
        numpy path's few dozen calls cost ~3x what a tight loop shows (benchmarks/pipeline_frame.py).
        """
        if _masker_native is not None and goertzel.backend() == "native":
            return self._fit_native(seg, nh)
        return self._fit_numpy(seg, nh)

    def _fit_native(self, seg: np.ndarray, nh: int):
        bufs = self._native_bufs.get(nh)
        if bufs is None:
            (w_short, f_short), (w_long, f_long) = self._windows
            bufs = (np.empty(nh, dtype=np.int64), np.empty((nh, 4)), np.empty((nh, 16)),
                    (*self._qr_tables(w_short), *self._qr_tables(w_long)),
                    (self._hop, f_short, f_long, self._persist_fraction, self._min_amp ** 2, self._twist2),
                    self._skip_energy())
            self._native_bufs[nh] = bufs
        best_pair, coef, explained, tables, params, skip = bufs
        # a quiet frame is skipped only while no press is active (then ``explained`` is not read)
        any_hit = _masker_native.screen(seg, *tables, self._recent, best_pair, coef, explained, *params,
                                        skip if self._active is None else 0.0)
        return best_pair, coef, explained, bool(any_hit)

    def _skip_energy(self) -> float:
        """Energy below which no window in a frame can pass the amplitude test (the C screen skips it).

        A window passes only if both fitted tones reach ``min_amp``, so ``|coef|^2 >= 2 min_amp^2``;
        ``coef = R^-1 Q^T x`` with orthonormal ``Q`` gives ``|coef|^2 <= s^2 |x|^2`` (``s``: largest
        singular value of ``R^-1``), and a window's ``|x|^2`` is at most the whole frame's energy.
        Half that bound leaves room for rounding: a skipped frame can never hide a tone.
        """
        s2 = max(float(np.linalg.norm(r, 2)) ** 2
                 for w, _ in self._windows for r in self._qr_tables(w)[1])
        return 0.5 * 2.0 * self._min_amp ** 2 / s2

    def _fit_numpy(self, seg: np.ndarray, nh: int):
        long_w = self._windows[-1][0]
        frames = np.lib.stride_tricks.sliding_window_view(seg, long_w)[:: self._hop]
        hit = np.zeros(nh, dtype=bool)
        best_pair = np.full(nh, -1)
        coef = np.zeros((nh, 4))
        for w, fraction in self._windows:  # each window ends at the hop: the short one is the long one's tail
            last = w == long_w
            pairs, c, explained = self._rule(frames[:, long_w - w:],
                                             (fraction, self._persist_fraction) if last else (fraction,))
            ok = (pairs[0] >= 0) & ~hit
            best_pair[ok] = pairs[0][ok]
            coef[ok] = c[ok]
            hit |= ok
        # persistence rule on the longest window (its explained energies stay in ``explained``)
        weak_pair = pairs[1]
        hist = np.concatenate([self._recent, weak_pair])
        k = self._persist
        same = weak_pair >= 0
        for j in range(1, k):
            same &= hist[k - 1 - j: k - 1 - j + nh] == weak_pair
        persistent = same & ~hit
        best_pair[persistent] = weak_pair[persistent]
        coef[persistent] = c[persistent]
        hit |= persistent
        self._recent = hist[-(k - 1):].copy()
        return best_pair, coef, explained, bool(hit.any())

    def _project(self, frames: np.ndarray):
        """Least-squares fit of the 16 key pairs to each frame via orthonormal bases (one matrix product).

        Returns (explained energy per pair [nw, 16], projections [nw, 16, 4], window energy [nw]).
        """
        q = self._qr_tables(frames.shape[1])[0]
        proj = (frames @ q).reshape(frames.shape[0], 16, 4)
        explained = np.einsum("wpi,wpi->wp", proj, proj)
        energy = np.einsum("wn,wn->w", frames, frames)
        return explained, proj, energy

    def _qr_tables(self, length: int):
        tab = self._qr.get(length)
        if tab is None:
            basis, cols, _ = _pair_tables(length, self.rate)
            qs, rinvs = [], []
            for idx in cols:
                q, r = np.linalg.qr(basis[:, idx])
                qs.append(q)
                rinvs.append(np.linalg.inv(r))
            tab = (np.ascontiguousarray(np.concatenate(qs, axis=1)), np.ascontiguousarray(np.stack(rinvs)))
            self._qr[length] = tab
        return tab

    def _rule(self, frames: np.ndarray, fractions: Tuple[float, ...]):
        """Per frame and threshold: best pair (or -1 when the window does not look like a key); the best
        pair's 4 coefficients and every pair's explained energy."""
        explained, proj, energy = self._project(frames)
        best = np.argmax(explained, axis=1)
        rows = np.arange(frames.shape[0])
        top = explained[rows, best]
        coef = np.einsum("wij,wj->wi", self._qr_tables(frames.shape[1])[1][best], proj[rows, best])
        amp_r2 = coef[:, 0] ** 2 + coef[:, 1] ** 2
        amp_c2 = coef[:, 2] ** 2 + coef[:, 3] ** 2
        ok = (
            (energy > 0)
            & (np.minimum(amp_r2, amp_c2) >= self._min_amp ** 2)
            & (amp_r2 <= self._twist2 * amp_c2)
            & (amp_c2 <= self._twist2 * amp_r2)
        )
        return [np.where(ok & (top >= f * energy), best, -1) for f in fractions], coef, explained

    def _decide(self, hops: range, buf_start: int) -> None:
        long_w = self._windows[-1][0]
        seg = self._buf[hops[0] - long_w - buf_start: hops[-1] - buf_start]
        best_pair, coef, explained, any_hit = self._fit(seg, len(hops))
        if self._active is None and not any_hit:
            return  # the common case (speech, silence): nothing to track
        # energy each pair explains in the longest window: keeps a press alive while speech covers it
        for i, e in enumerate(hops):
            e = int(e)
            if best_pair[i] >= 0:
                self._on_hit(e, int(best_pair[i]), coef[i], buf_start)
                if self._pair == best_pair[i]:
                    self._steady = max(self._steady, float(explained[i, self._pair]))
            elif self._active is not None:
                if explained[i, self._pair] >= self._hold_ratio * self._steady:
                    self._misses = 0
                    continue
                self._misses += 1
                if self._misses >= self._close_misses:
                    self._close(self._active, e + self._guard)
                    self._active = None

    def _writable(self, e: int) -> int:
        # First input position whose output (incl. its fade-in) has not been emitted by a 1-sample chunking
        # when hop e is decided: keeps the output independent of chunk sizes.
        return e - self.delay_samples + self._fade

    def _on_hit(self, e: int, pair: int, coef: np.ndarray, buf_start: int) -> None:
        self._misses = 0
        if self._pair != pair:
            self._pair, self._steady = pair, 0.0
        if self._active is not None:
            return
        lim = self._writable(e)
        onset = self._onset(e, pair, coef, buf_start, lim)
        start = max(self._align_down(onset - self._guard), lim)
        # A new press inside (or within two fades of) the previous span's tail continues it: no dip.
        for span in reversed(self._spans):
            if span.source == "inband" and span.end is not None and span.end >= lim \
                    and start <= span.end + 2 * self._fade:
                span.end = None
                self._active = span
                return
        span = _Span(start, None, "inband")
        self._spans.append(span)
        self._active = span

    def _onset(self, e: int, pair: int, coef: np.ndarray, buf_start: int, lim: int) -> int:
        """Walk back from the detection to the first 2 ms window still carrying this pair's energy."""
        lo = max(lim - self._short, buf_start)
        seg = self._buf[lo - buf_start: e - buf_start]
        if seg.size < self._short:
            return lim
        frames = np.lib.stride_tricks.sliding_window_view(seg, self._short)[:: self._short_step]
        starts = lo + np.arange(frames.shape[0]) * self._short_step
        resid, _, energy = pair_fit(frames, self.rate)
        explained = energy - resid[:, pair]
        steady = 0.5 * float(coef @ coef) * self._short
        carrying = explained >= self._onset_ratio * max(steady, 1e-9)
        # the last window is inside the detection window; walk back while windows carry the pair
        i = carrying.size - 1
        while i >= 0 and not carrying[i]:
            i -= 1
        if i < 0:
            return max(e - max(w for w, _ in self._windows), lim)
        while i > 0 and carrying[i - 1]:
            i -= 1
        return int(starts[i])

    def _expire(self, emitted: int) -> None:
        """Retire spans whose fade-out lies wholly before ``emitted`` (the next output position)."""
        keep = []
        for span in self._spans:
            if span.end is not None and span.end + self._fade < emitted - self._fade:
                self._history.append(MaskedSpan(span.start, span.end, span.source))
            else:
                keep.append(span)
        self._spans = keep

    def _weights(self, start: int, n: int) -> np.ndarray:
        w = np.zeros(n)
        f = self._fade
        for span in self._spans:
            s = span.start
            e = span.end if span.end is not None else start + n + f + 1
            if e + f <= start or s - f >= start + n:
                continue
            lo, hi = max(s, start), min(e, start + n)
            if hi > lo:
                w[lo - start: hi - start] = 1.0
            if f:
                # fade-in over [s - f, s) and fade-out over [e, e + f)
                idx = np.arange(max(s - f, start), min(s, start + n))
                if idx.size:
                    w[idx - start] = np.maximum(w[idx - start], self._fade_ramp[s - idx - 1])
                idx = np.arange(max(e, start), min(e + f, start + n))
                if idx.size:
                    w[idx - start] = np.maximum(w[idx - start], self._fade_ramp[idx - e])
        return w

    def _apply(self, raw: np.ndarray, start: int) -> np.ndarray:
        """``raw`` itself (not a copy: callers convert it) where nothing is masked, else a new array."""
        if not self._spans:
            return raw
        w = self._weights(start, raw.size)
        if not w.any():
            return raw
        m = self._mask_signal(start, raw.size)
        out = raw.copy()
        sel = w > 0
        out[sel] = (1.0 - w[sel]) * raw[sel] + w[sel] * m[sel]
        return out

    def _mask_signal(self, start: int, n: int) -> np.ndarray:
        """The mask at absolute output positions [start, start + n): independent of keys and chunking."""
        if self.mask == "silence" or n == 0:
            return np.zeros(n)
        if self.mask == "tone":
            # phase from the absolute position, reduced exactly so long calls lose no precision
            period_num = int(round(self.mask_hz * 1000))
            k = (np.arange(start, start + n, dtype=np.int64) * period_num) % (self.rate * 1000)
            return dbm0_to_peak(self.mask_dbm0) * np.sin(2 * np.pi * k / (self.rate * 1000.0))
        out = np.empty(n)
        rms = dbm0_to_peak(self.noise_dbm0) / math.sqrt(2)
        b0, b1 = start // _NOISE_BLOCK, (start + n - 1) // _NOISE_BLOCK
        pos = 0
        for b in range(b0, b1 + 1):
            counter = np.array([b % 2**63, 0, 0, 0], dtype=np.uint64)
            g = np.random.Generator(np.random.Philox(key=self._seed, counter=counter))
            block = g.standard_normal(_NOISE_BLOCK) * rms
            lo = max(start, b * _NOISE_BLOCK) - b * _NOISE_BLOCK
            hi = min(start + n, (b + 1) * _NOISE_BLOCK) - b * _NOISE_BLOCK
            out[pos: pos + hi - lo] = block[lo:hi]
            pos += hi - lo
        return out


def _near_dtmf(hz: float):
    from .params import DTMF_HZ

    return [abs(hz - f) < 50.0 for f in DTMF_HZ]


def mask_samples(samples, rate: int = 8000, **options) -> Tuple[np.ndarray, List[MaskedSpan]]:
    """Mask a whole recording: output aligned with the input (delay removed) and the masked spans.

    ``samples`` as for :meth:`Masker.process` (int16 or float [-1, 1]); same dtype out.
    """
    m = Masker(rate, **options)
    x = np.asarray(samples)
    out = np.concatenate([m.process(x), m.flush()])[m.delay_samples:]
    if m.errors:
        raise RuntimeError("masker failed on this input; output withheld")
    spans = [s for s in m.masked_spans if s.end > 0 and s.start < x.size]
    return out, spans
