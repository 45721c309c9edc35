# SPDX-License-Identifier: GPL-2.0-or-later
"""Audio input: validation, the one sample convention, WAV reading.

One convention everywhere: samples are int16 arrays or float arrays **on the
int16 scale** (full scale = 32768, see :mod:`levels`); no module rescales
floats.  :func:`read_audio` converts files to that scale.
Bad input raises :class:`AudioError` with a message a user can act on; it
never names sample values (they could encode digits).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

__all__ = ["AudioError", "as_samples", "audio_info", "check_rate", "read_audio", "MIN_RATE", "MAX_RATE"]

MIN_RATE, MAX_RATE = 8000, 48000


class AudioError(ValueError):
    """Audio that cannot be processed (format, rate, shape, content)."""


def check_rate(rate) -> int:
    """Accept integer rates 8000..48000 Hz (narrowband 8 kHz and wideband 16 kHz are the telephony ones;
    the detector scales its blocks to any rate in that range, so nothing is resampled)."""
    try:
        r = int(rate)
    except (TypeError, ValueError):
        raise AudioError(f"sample rate must be an integer in Hz, got {rate!r}") from None
    if r != rate or not MIN_RATE <= r <= MAX_RATE:
        raise AudioError(f"unsupported sample rate {rate} Hz: supported are {MIN_RATE}..{MAX_RATE} Hz "
                         "(telephony uses 8000 or 16000)")
    return r


def as_samples(x, *, allow_empty: bool = True) -> np.ndarray:
    """Return a 1-D float64 array on the int16 scale.

    int16 (and other integer types) are taken as they are; floats are taken as
    already on the int16 scale (multiply [-1, 1] audio by 32768 first, as
    :func:`read_audio` does).  NaN/inf are rejected.
    """
    a = np.asarray(x)
    if a.ndim != 1:
        raise AudioError(f"expected mono samples (1-D array), got shape {a.shape}; pick a channel first")
    if a.size == 0 and not allow_empty:
        raise AudioError("no samples")
    if a.dtype.kind in "iu":
        out = a.astype(np.float64)
        if a.dtype.kind == "u" and a.dtype.itemsize == 1:  # 8-bit unsigned PCM
            out = (out - 128.0) * 256.0
        elif a.dtype.itemsize > 2:
            # 24/32-bit integer PCM on its own scale: only int16 is unambiguous; refuse the rest
            if np.max(np.abs(out), initial=0) > 32768:
                raise AudioError("integer samples exceed the 16-bit range; pass int16 or float on the int16 scale")
        return out
    if a.dtype.kind == "f":
        out = a.astype(np.float64)
        if not np.all(np.isfinite(out)):
            raise AudioError("samples contain NaN or infinity")
        return out
    if a.dtype.kind == "b":
        raise AudioError("boolean array is not audio")
    raise AudioError(f"unsupported sample type {a.dtype}")


def audio_info(path):
    """soundfile's description of ``path`` once it is known to be readable audio with samples at a supported
    rate; otherwise :class:`AudioError` with a one-line reason.  The file is only read."""
    import os

    import soundfile as sf

    if not os.path.lexists(path):  # libsndfile reports a missing file only as "System error"
        raise AudioError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AudioError(f"{path}: is a directory") from None
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({_short(exc)})") from None
    if info.frames <= 0:
        raise AudioError(f"{path}: contains no samples")
    try:
        check_rate(info.samplerate)
    except AudioError as exc:
        raise AudioError(f"{path}: {exc}") from None
    return info


def read_audio(path, channel: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """Read a sound file (anything libsndfile reads) as one channel, int16 scale.

    A multi-channel file needs ``channel`` (0-based); the file is never modified.
    """
    import soundfile as sf

    info = audio_info(path)
    if info.channels > 1 and channel is None:
        raise AudioError(f"{path}: has {info.channels} channels; choose one with --channel N (0-based)")
    if channel is not None and not 0 <= channel < info.channels:
        raise AudioError(f"{path}: channel {channel} does not exist (file has {info.channels})")
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, ValueError, MemoryError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({_short(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples")
    mono = data[:, channel or 0]
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{path}: samples contain NaN or infinity")
    return mono * 32768.0, int(rate)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
