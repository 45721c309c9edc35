# SPDX-License-Identifier: GPL-2.0-or-later
"""ITU-T G.711 µ-law and A-law codecs in numpy (``audioop`` left Python in 3.13).

Written from the segment tables of G.711 (1988) §2-3.  Linear samples are
int16-scale; encoders take any integer or float array and clip.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode", "round_trip"]

_ULAW_BIAS = 0x84  # 132: G.711 µ-law bias, added before the segment search
_ULAW_CLIP = 32635


def _to_int(x) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, dtype=np.float64)), -32768, 32767).astype(np.int32)


def ulaw_encode(samples) -> bytes:
    x = _to_int(samples)
    sign = np.where(x < 0, 0x80, 0x00)
    # G.711 works on 14-bit µ-law input: quantise with an arithmetic shift first, so negative values round
    # toward minus infinity exactly as the reference encoder does.
    mag = np.abs((x >> 2) << 2)
    mag = np.minimum(mag, _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return code.astype(np.uint8).tobytes()


def ulaw_decode(data) -> np.ndarray:
    b = ~np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (b >> 4) & 0x07
    mantissa = b & 0x0F
    mag = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(b & 0x80, -mag, mag).astype(np.int16)


def alaw_encode(samples) -> bytes:
    x = _to_int(samples)
    positive = x >= 0
    mag = np.where(positive, x, -x - 1) >> 3  # 13-bit magnitude 0..4095
    mag = np.clip(mag, 0, 4095)
    seg = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4)
    mant = np.where(seg == 0, mag >> 1, (mag >> np.maximum(seg, 1)) & 0x0F)
    code = (seg << 4) | mant | np.where(positive, 0x80, 0x00)
    return (code ^ 0x55).astype(np.uint8).tobytes()


def alaw_decode(data) -> np.ndarray:
    v = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int32) ^ 0x55
    seg = (v >> 4) & 0x07
    mant = v & 0x0F
    mag = np.where(seg == 0, (mant << 1) + 1, ((mant << 1) + 33) << np.maximum(seg - 1, 0))
    lin = mag << 3
    return np.where(v & 0x80, lin, -lin).astype(np.int16)


_ROUND_TRIP: dict = {}


def round_trip(samples, law: str) -> np.ndarray:
    """``samples`` (any shape, int16 scale) encoded with µ-law (``"ulaw"``) or A-law (``"alaw"``) and decoded again,
    as float64: what a G.711 listener hears. One table lookup per sample (the 65,536 int16 values' round trips,
    built once per law from the encoders above), so the same values as ``*_decode(*_encode(samples))``."""
    table = _ROUND_TRIP.get(law)
    if table is None:
        if law not in ("ulaw", "alaw"):
            raise ValueError("law must be 'ulaw' or 'alaw'")
        every = np.arange(-32768, 32768)
        enc, dec = (ulaw_encode, ulaw_decode) if law == "ulaw" else (alaw_encode, alaw_decode)
        table = _ROUND_TRIP[law] = dec(enc(every)).astype(np.float64)
    x = np.asarray(samples, dtype=np.float64)
    return table[_to_int(x) + 32768]
