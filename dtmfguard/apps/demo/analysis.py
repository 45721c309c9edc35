# SPDX-License-Identifier: GPL-2.0-or-later
"""Reading the agent's recording: where the mask was heard, and how far the call delayed the audio."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .options import RATE

__all__ = ["find_mask_spans", "align_lag"]


def find_mask_spans(samples: np.ndarray, rate: int = RATE, mask_hz: float = 400.0,
                    frame_ms: float = 10.0, min_share: float = 0.8,
                    min_rms: float = 300.0) -> List[Tuple[int, int]]:
    """Spans ``[(start, end), ...]`` where the audio is the masker's flat tone (for display).

    A 10 ms frame counts as mask when one sinusoid at ``mask_hz`` explains ``min_share`` of its energy
    and it is louder than ``min_rms`` (the default mask is -20 dBm0, rms about 2 270).  Speech is never
    a steady single tone for long, so this finds the masked presses in the agent's recording whichever
    way the key was sent.  A span once open goes on through frames where the tone still holds half that
    share, down to a quarter of ``min_rms`` (a mask that dips for a frame where one masked span fades into
    the next, as where a jitter buffer's made-up frames are masked beside a key, is one span, not two).
    """
    x = np.asarray(samples, dtype=np.float64)
    n = int(rate * frame_ms / 1000)
    if x.size < n:
        return []
    frames = x[: x.size // n * n].reshape(-1, n)
    t = np.arange(n) / rate
    basis = np.stack([np.cos(2 * np.pi * mask_hz * t), np.sin(2 * np.pi * mask_hz * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, frames.T, rcond=None)
    fitted = (basis @ coef).T
    energy = np.sum(frames ** 2, axis=1) + 1e-9
    share = np.sum(fitted ** 2, axis=1) / energy
    rms = np.sqrt(energy / n)
    tone = share >= min_share
    hit = tone & (rms >= min_rms)
    held = (share >= min_share / 2) & (rms >= min_rms / 4)
    spans: List[Tuple[int, int]] = []
    start = None
    for i, (h, k) in enumerate(zip(np.append(hit, False), np.append(held, False))):
        if h and start is None:
            start = i
        elif not k and start is not None:
            spans.append((start * n, i * n))
            start = None
    return [(a, b) for a, b in spans if np.any(hit[a // n: b // n])]


def align_lag(recording: np.ndarray, reference: np.ndarray) -> int:
    """Samples by which ``reference`` appears delayed in ``recording`` (FFT cross-correlation)."""
    from ...testkit.audio_match import global_lag

    return global_lag(recording, reference)
