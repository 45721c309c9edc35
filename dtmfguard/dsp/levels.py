# SPDX-License-Identifier: GPL-2.0-or-later
"""Level conventions shared by every module.

Samples are handled as float64 on the 16-bit scale (int16 values, or floats in
[-1, 1] multiplied by 32768).  0 dBm0 follows ITU-T G.711's µ-law convention: a
full-scale sine is +3.17 dBm0, so a 0 dBm0 sine has a peak of
32768 * 10**(-3.17/20) ≈ 22 748 (A-law's +3.14 dBm0 gives 22 827; the
difference, 0.03 dB, is below anything measured here).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["FULL_SCALE", "DBM0_PEAK", "dbm0_to_peak", "peak_to_dbm0", "tone"]

FULL_SCALE = 32768.0
#: Peak amplitude (16-bit scale) of a 0 dBm0 sine (G.711 µ-law: full scale = +3.17 dBm0).
DBM0_PEAK = FULL_SCALE * 10.0 ** (-3.17 / 20.0)


def dbm0_to_peak(level_dbm0: float) -> float:
    """Peak amplitude (16-bit scale) of a sine at ``level_dbm0``."""
    return DBM0_PEAK * 10.0 ** (level_dbm0 / 20.0)


def peak_to_dbm0(peak: float) -> float:
    """Level in dBm0 of a sine whose peak amplitude is ``peak`` (16-bit scale)."""
    return 20.0 * math.log10(peak / DBM0_PEAK) if peak > 0 else float("-inf")


def tone(freqs_hz, duration_s: float, rate: int = 8000, level_dbm0=-10.0, phase=0.0) -> np.ndarray:
    """Sum of sines (float64, 16-bit scale); ``level_dbm0`` per tone, scalar or one per frequency."""
    n = int(round(duration_s * rate))
    t = np.arange(n) / rate
    freqs = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
    levels = np.broadcast_to(np.asarray(level_dbm0, dtype=float), freqs.shape)
    phases = np.broadcast_to(np.asarray(phase, dtype=float), freqs.shape)
    out = np.zeros(n)
    for f, lv, ph in zip(freqs, levels, phases):
        out += dbm0_to_peak(lv) * np.sin(2 * np.pi * f * t + ph)
    return out
