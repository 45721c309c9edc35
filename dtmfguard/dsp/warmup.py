# SPDX-License-Identifier: GPL-2.0-or-later
"""A few seconds of synthetic audio that takes a new call pipeline through its key paths once.

The masker and the detector build some tables the first time a rule needs them (frequency-offset grids,
fits of the 16 key pairs per window length, numpy's FFT module on its first use).  They are shared by every
pipeline of the process, so the first key press of the process's first call paid for them, on the media
clock: 16 ms for one frame on an idle machine, 45 ms on a loaded one, where every worker met its first key at
about the same moment.  A worker runs this audio through a throwaway pipeline before it takes calls.

The audio holds no card data: six keys of no meaning (5 9 1 2 8 0), some on their own, one 2 % off nominal,
one under a louder voiced sound, three keyed fast, between voiced sounds and silence.  It is the same on
every run (fixed phases), so the warm-up's cost is the same too.
"""
from __future__ import annotations

import numpy as np

from ..events import KEYPAD
from .levels import dbm0_to_peak, tone
from .params import COL_HZ, ROW_HZ

__all__ = ["warm_audio"]


def _key(key: str, ms: float, rate: int, level_dbm0: float, off: float = 0.0) -> np.ndarray:
    r = next(i for i, row in enumerate(KEYPAD) if key in row)
    c = KEYPAD[r].index(key)
    # each tone 3 dB under the pair
    return tone((ROW_HZ[r] * (1 + off), COL_HZ[c] * (1 + off)), ms / 1000, rate, level_dbm0 - 10 * np.log10(2),
                phase=(0.3, 1.1))


def _voiced(ms: float, rate: int, level_dbm0: float, f0: tuple = (120.0, 160.0)) -> np.ndarray:
    """A vowel-like sound: 25 harmonics of a gliding pitch, falling 6 dB an octave, with a slow swell."""
    n = int(ms * rate / 1000)
    pitch = np.linspace(f0[0], f0[1], n)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    x = sum(np.sin(k * phase + 0.7 * k) / k for k in range(1, 26) if k * f0[1] < rate / 2 - 200)
    x *= np.sin(np.pi * np.arange(n) / n) ** 0.5
    return x * (dbm0_to_peak(level_dbm0) / np.sqrt(np.mean(x * x) * 2))


def warm_audio(rate: int = 8000) -> np.ndarray:
    """About 2.4 s of int16 audio at ``rate`` (module docstring)."""
    gap = lambda ms: np.zeros(int(ms * rate / 1000))  # noqa: E731
    under = _key("1", 150, rate, -18.0)
    voice = _voiced(150, rate, -15.0)
    parts = [gap(200), _voiced(400, rate, -20.0), gap(120),
             _key("5", 90, rate, -10.0), gap(80),
             _key("9", 60, rate, -20.0, off=0.02), gap(150),
             under + voice, gap(200)]
    for k in "280":
        parts += [_key(k, 45, rate, -12.0), gap(45)]
    parts += [gap(150), _voiced(300, rate, -18.0, f0=(180.0, 140.0)), gap(250)]
    x = np.concatenate(parts)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
