# SPDX-License-Identifier: GPL-2.0-or-later
"""DTMF signal synthesis for tests, benchmarks, samples and the demo's customer.

Produces float64 samples on the int16 scale (see :mod:`levels`) together with
the true span of every tone, so measurements can compare against ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..events import DIGITS, KEYPAD
from ..dsp.levels import dbm0_to_peak
from ..dsp.params import COL_HZ, ROW_HZ

__all__ = ["digit_freqs", "dtmf_tone", "keypresses", "ToneSpan", "white_noise", "mix_at_snr"]


def digit_freqs(digit: str) -> Tuple[float, float]:
    """(row_hz, col_hz) of a key (ITU-T Q.23)."""
    if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in DIGITS:
        raise ValueError("not a DTMF key")
    d = digit.upper()
    for r, row in enumerate(KEYPAD):
        c = row.find(d)
        if c >= 0:
            return ROW_HZ[r], COL_HZ[c]
    raise AssertionError("unreachable")


def dtmf_tone(
    digit: str,
    duration_ms: float,
    rate: int = 8000,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    freq_offset: Tuple[float, float] = (0.0, 0.0),
    phase: Tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """One key's tone pair.

    ``level_dbm0`` is the low (row) tone's level; ``twist_db`` = row level minus
    column level, positive for *normal* twist (high group weaker), negative for
    reverse twist.  ``freq_offset`` is the relative error of (row, col), e.g.
    0.015 for +1.5 %.
    """
    row_hz, col_hz = digit_freqs(digit)
    n = int(round(duration_ms * rate / 1000.0))
    t = np.arange(n) / rate
    a_row = dbm0_to_peak(level_dbm0)
    a_col = dbm0_to_peak(level_dbm0 - twist_db)
    return a_row * np.sin(2 * np.pi * row_hz * (1 + freq_offset[0]) * t + phase[0]) + a_col * np.sin(
        2 * np.pi * col_hz * (1 + freq_offset[1]) * t + phase[1]
    )


@dataclass(frozen=True)
class ToneSpan:
    """Ground truth for one synthesised key press: sample span [start, end)."""

    digit: str
    start: int
    end: int


def keypresses(
    digits: str,
    rate: int = 8000,
    tone_ms: float = 70.0,
    gap_ms: float = 70.0,
    lead_ms: float = 100.0,
    tail_ms: float = 100.0,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    rng: Optional[np.random.Generator] = None,
    random_phase: bool = True,
) -> Tuple[np.ndarray, List[ToneSpan]]:
    """A sequence of key presses with silence around them, and the true spans.

    With ``rng`` the tones get random start phases (real phones do not start at 0).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    parts: List[np.ndarray] = [np.zeros(int(round(lead_ms * rate / 1000)))]
    spans: List[ToneSpan] = []
    pos = parts[0].size
    gap = np.zeros(int(round(gap_ms * rate / 1000)))
    for i, d in enumerate(digits):
        ph = tuple(rng.uniform(0, 2 * np.pi, 2)) if random_phase else (0.0, 0.0)
        t = dtmf_tone(d, tone_ms, rate, level_dbm0, twist_db, phase=ph)
        spans.append(ToneSpan(d, pos, pos + t.size))
        parts.append(t)
        pos += t.size
        if i + 1 < len(digits):
            parts.append(gap)
            pos += gap.size
    parts.append(np.zeros(int(round(tail_ms * rate / 1000))))
    return np.concatenate(parts), spans


def white_noise(n: int, rms: float, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    rng = rng if rng is not None else np.random.default_rng(0)
    return rng.standard_normal(n) * rms


def mix_at_snr(signal: np.ndarray, other: np.ndarray, snr_db: float, ref: Optional[Sequence] = None) -> np.ndarray:
    """signal + other scaled so that power(signal[ref]) / power(other) = snr_db.

    ``ref`` is a boolean mask or index selecting where the signal's power is
    measured (e.g. the tone spans only); default: where the signal is non-zero.
    """
    if other.size < signal.size:
        reps = int(np.ceil(signal.size / max(other.size, 1)))
        other = np.tile(other, reps)
    other = other[: signal.size]
    sel = (signal != 0) if ref is None else ref
    p_sig = float(np.mean(signal[sel] ** 2))
    p_oth = float(np.mean(other ** 2)) or 1.0
    return signal + other * np.sqrt(p_sig / p_oth / 10 ** (snr_db / 10.0))


def wsola_like(prev: np.ndarray, nxt: np.ndarray, merge: int = 40) -> Tuple[np.ndarray, np.ndarray]:
    """A frame concealed in the manner of pjmedia's WSOLA, for tests and benchmarks: the last pitch-like period
    of ``prev`` repeated for one frame (the period among 40-120 samples, fewer if ``prev`` is short, whose
    predecessor best matches the last 5 ms, as WSOLA searches its history), so a tone goes on nearly seamless but with a phase that is not the sender's; and ``nxt`` with its
    first ``merge`` samples (5 ms at 8 kHz) cross-faded in from that continuation, as the concealment is
    merged into the next real frame.  Returns (made-up frame, merged next frame), int16: ``len(prev)`` and
    ``len(nxt)`` long."""
    n = len(prev)
    h = np.asarray(prev, dtype=np.float64)
    templ = min(40, n // 3)
    scores = []
    for period in range(min(40, n - templ), min(120, n - templ) + 1):
        a, b = h[-templ:], h[-templ - period:-period]
        scores.append((float(np.dot(a, b) / (np.sqrt(np.dot(a, a) * np.dot(b, b)) + 1e-9)), period))
    period = max(scores)[1]
    cont = np.resize(h[-period:], n + merge)
    fade = np.linspace(0.0, 1.0, merge)
    merged = np.asarray(nxt, dtype=np.float64).copy()
    merged[:merge] = (1 - fade) * cont[n:] + fade * merged[:merge]
    clip = lambda v: np.clip(np.round(v), -32768, 32767).astype(np.int16)  # noqa: E731
    return clip(cont[:n]), clip(merged)

