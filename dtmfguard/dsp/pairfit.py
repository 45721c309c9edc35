# SPDX-License-Identifier: GPL-2.0-or-later
"""Least-squares fits of the 16 DTMF key pairs to short windows: the maths the masker and the
adversarial decoder share.

A key is two sinusoids (Q.23 row and column frequency) of unknown amplitude and phase, so on a window
of ``L`` samples each key is a 4-dimensional subspace spanned by ``cos``/``sin`` of its two
frequencies.  Fitting a key is projecting the window on that subspace; the share of the window's
energy the best key explains says how much the window looks like that key.  On windows of 2-4 ms the
73 Hz row spacing is barely resolved, hence the full 4x4 Gram matrix per key rather than
independent single-frequency fits.

The basis is *window-relative* (``n = 0 .. L-1`` from the window's first sample); since the span of
``cos(wn), sin(wn)`` is shift-invariant, correlations taken with an absolute-time basis are rotated
into it (:func:`rotate`), which lets a stream sum per-block correlations into windows of any length.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..events import KEYPAD, KEYPAD_KEYS
from .params import COL_HZ, ROW_HZ

__all__ = ["PAIRS", "PAIR_KEYS", "KEYPAD_KEYS", "PAIR_COLS", "basis", "pair_tables", "pair_fit", "band_projector", "band_basis"]

#: (row index, column index, key) of each pair, in the order every fit returns them.
PAIRS: Tuple[Tuple[int, int, str], ...] = tuple((r, c, KEYPAD[r][c]) for r in range(4) for c in range(4))
#: Key of each pair index.
PAIR_KEYS = "".join(k for _, _, k in PAIRS)
#: Per pair: its columns in :func:`basis` (row cos, row sin, column cos, column sin).
PAIR_COLS = np.array([[r, 8 + r, 4 + c, 12 + c] for r, c, _ in PAIRS])


def basis(length: int, rate: int) -> np.ndarray:
    """``[length, 16]``: cos of the 8 DTMF frequencies (rows then columns), then their sin, n from 0."""
    n = np.arange(length)[:, None]
    w = 2 * np.pi * np.asarray(ROW_HZ + COL_HZ)[None, :] / rate
    return np.concatenate([np.cos(w * n), np.sin(w * n)], axis=1)


_CACHE: dict = {}


def pair_tables(length: int, rate: int):
    """``(basis [length, 16], PAIR_COLS [16, 4], inverse Gram matrix per pair [16, 4, 4])``."""
    key = (length, rate)
    tab = _CACHE.get(key)
    if tab is None:
        b = basis(length, rate)
        ginv = np.empty((len(PAIRS), 4, 4))
        for p, idx in enumerate(PAIR_COLS):
            g = b[:, idx].T @ b[:, idx]
            ginv[p] = np.linalg.pinv(g)
        tab = (b, PAIR_COLS, ginv)
        _CACHE[key] = tab
    return tab


def pair_fit(frames: np.ndarray, rate: int):
    """Least-squares fit of every key's tone pair (unknown phases) to each row of ``frames``.

    Returns ``(residual [nw, 16], coefficients [nw, 16, 4], energy [nw])``; the coefficients are
    (row cos, row sin, column cos, column sin) amplitudes and pair ``p`` is key ``PAIR_KEYS[p]``.
    """
    length = frames.shape[-1]
    b, cols, ginv = pair_tables(length, rate)
    proj = frames @ b  # [nw, 16]
    energy = np.einsum("wn,wn->w", frames, frames)
    bp = proj[:, cols]  # [nw, 16 pairs, 4]
    beta = np.einsum("pij,wpj->wpi", ginv, bp)
    explained = np.einsum("wpi,wpi->wp", bp, beta)
    resid = np.maximum(energy[:, None] - explained, 0.0)
    return resid, beta, energy


def band_projector(length: int, rate: int) -> np.ndarray:
    """``[length, length]`` orthogonal projector on the span of all 8 DTMF frequencies (cos and sin):
    ``x - P @ x`` removes from a block everything a tone pair of any key could explain."""
    b = basis(length, rate)
    return b @ np.linalg.pinv(b)



def band_basis(length: int, rate: int, width: float = 0.0, extra: int = 0) -> np.ndarray:
    """``[length, 16 + extra]``: :func:`basis`, then the ``extra`` blocks of ``length`` samples outside its span
    that keep the most of their energy in the two DTMF bands widened by ``width`` (row band from the lowest row
    frequency ``* (1 - width)`` to the highest ``* (1 + width)``, column band likewise).

    They are the leading eigenvectors of the band-limiting operator (the sum of the two bands' ideal band-pass
    kernels, ``sin(2 pi f n) / (pi n)`` differences) restricted to the complement of the nominal span: the
    discrete prolate spheroidal idea applied to what the 8 nominal frequencies leave.  Projecting a block on
    this basis removes a tone at a nominal frequency exactly and one a few % off nearly all (the nominal
    frequencies alone leave most of a tone 4 % off in 8 ms blocks), for little more of a voice's energy."""
    b = basis(length, rate)
    if extra <= 0 or length == 0:
        return b
    q = np.eye(length) - b @ np.linalg.pinv(b)
    d = (np.arange(length)[:, None] - np.arange(length)[None, :]).astype(float)
    k = np.zeros((length, length))
    for band in (ROW_HZ, COL_HZ):
        lo, hi = min(band) * (1.0 - width) / rate, max(band) * (1.0 + width) / rate
        with np.errstate(divide="ignore", invalid="ignore"):
            kern = (np.sin(2 * np.pi * hi * d) - np.sin(2 * np.pi * lo * d)) / (np.pi * d)
        kern[d == 0] = 2 * (hi - lo)
        k += kern
    w, v = np.linalg.eigh(q @ k @ q)
    top = v[:, np.argsort(w)[::-1][:extra]]
    return np.concatenate([b, top], axis=1)
