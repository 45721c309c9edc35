# SPDX-License-Identifier: GPL-2.0-or-later
"""Goertzel filter bank over half-blocks, in numpy or in the optional C kernel.

For every channel ``c``, half-block ``h`` and frequency ``k`` the kernel returns
the complex DFT value (phase referenced to the half-block's first sample)

    S[c, h, k] = sum_{n=0}^{H-1} x[c, h*H + n] * exp(-1j * omega_k * n)

and the half-block energy ``E[c, h] = sum x**2``.  The detector combines two
consecutive half-blocks into one window; keeping the phase lets it measure
each tone's frequency from the phase advance between overlapping windows.

Backend: ``DTMFGUARD_BACKEND=auto|numpy|native`` (default ``auto``: native
when it was built).  Both give the same values to within float rounding.
The same switch selects the other optional C parts, each with a numpy path of
identical output: the detector's per-frame window tests (``native/detector.c``,
whose kernel repeats this one's operations bit for bit) and the masker's
onset screen (``native/masker.c``).
"""
from __future__ import annotations

import os
from typing import Tuple

import numpy as np

__all__ = ["halfblock_dft", "backend", "available_backends", "set_backend", "BackendError"]


class BackendError(RuntimeError):
    """The requested kernel backend cannot be used."""


try:  # the C kernel is optional: installs without a compiler fall back to numpy
    from . import _native  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the build
    _native = None

_VALID = ("auto", "numpy", "native")
_backend = "numpy"


def available_backends() -> Tuple[str, ...]:
    return ("numpy", "native") if _native is not None else ("numpy",)


def set_backend(name: str) -> str:
    """Select the kernel; ``native`` when it was not built raises :class:`BackendError`."""
    global _backend
    name = (name or "auto").strip().lower()
    if name not in _VALID:
        raise BackendError(f"DTMFGUARD_BACKEND must be one of {', '.join(_VALID)}, got {name!r}")
    if name == "native" and _native is None:
        raise BackendError(
            "DTMFGUARD_BACKEND=native but the C kernel dtmfguard.dsp._native was not built "
            "(reinstall with a C compiler available: pip install -e .)"
        )
    _backend = "native" if name == "native" or (name == "auto" and _native is not None) else "numpy"
    return _backend


def backend() -> str:
    """The active backend: ``numpy`` or ``native``."""
    return _backend


set_backend(os.environ.get("DTMFGUARD_BACKEND", "auto"))

_TABLES: dict = {}


def _tables(half_block: int, omegas: np.ndarray):
    key = (half_block, omegas.tobytes())
    tab = _TABLES.get(key)
    if tab is None:
        n = np.arange(half_block)[:, None]
        tab = (np.cos(omegas[None, :] * n), -np.sin(omegas[None, :] * n))
        _TABLES[key] = tab
    return tab


def halfblock_dft(x: np.ndarray, half_block: int, omegas: np.ndarray):
    """Complex DFT values and energies of every whole half-block of ``x``.

    ``x`` is 1-D (one channel) or 2-D ``[channels, samples]``; trailing samples
    that do not fill a half-block are ignored (the caller buffers them).
    Returns ``(S, E)``: complex128 ``[..., nh, K]`` and float64 ``[..., nh]``.
    """
    x = np.asarray(x, dtype=np.float64)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError("x must be 1-D or 2-D [channels, samples]")
    omegas = np.ascontiguousarray(omegas, dtype=np.float64)
    channels, n = x.shape
    nh = n // half_block
    if _backend == "native":
        x = np.ascontiguousarray(x[:, : nh * half_block])
        out = np.empty((channels, nh, omegas.size, 2), dtype=np.float64)
        energy = np.empty((channels, nh), dtype=np.float64)
        _native.halfblock_dft(x, half_block, omegas, out, energy)
        spec = out.view(np.complex128)[..., 0]
    else:
        frames = x[:, : nh * half_block].reshape(channels, nh, half_block)
        cos_t, msin_t = _tables(half_block, omegas)
        spec = (frames @ cos_t) + 1j * (frames @ msin_t)
        energy = np.einsum("chn,chn->ch", frames, frames)
    if squeeze:
        return spec[0], energy[0]
    return spec, energy
