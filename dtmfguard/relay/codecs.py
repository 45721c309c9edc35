# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-call codecs of the relay: G.711 µ-law/A-law (:mod:`dtmfguard.dsp.g711`) and G.722 (spandsp).

All codecs decode to and encode from 8 kHz int16, the rate of the pipeline.  G.722 (wideband, RTP clock
8000 by RFC 3551's historical error) uses Debian's libspandsp through ctypes in its 8 kHz mode (the
low sub-band only), so the masker sees exactly what it sees for G.711; G.722 is offered only when the
library loads (:func:`g722_available`).  The G.711 tables are built once, so decoding a packet is one
numpy ``take``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

import numpy as np

from ..dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = ["Codec", "make_codec", "g722_available", "DECODE_TABLES", "ENCODE_TABLES"]

log = logging.getLogger(__name__)

_ULAW_DEC = ulaw_decode(bytes(range(256)))
_ALAW_DEC = alaw_decode(bytes(range(256)))
# encoding tables over the whole int16 range (64 Ki entries each): one take per frame
_ALL = np.arange(-32768, 32768, dtype=np.int32)
# indexed by the sample's bit pattern (int16 viewed as uint16: no widening copy per frame); shared by every
# call (64 kB each: one copy per process, not per call)
_ULAW_ENC = np.roll(np.frombuffer(ulaw_encode(_ALL), dtype=np.uint8), 32768)
_ALAW_ENC = np.roll(np.frombuffer(alaw_encode(_ALL), dtype=np.uint8), 32768)
del _ALL
#: the relay decodes and encodes all calls of one law in one lookup per tick (dtmfguard.relay.engine):
#: law -> table (decode: indexed by the byte; encode: by the int16 sample's bit pattern as uint16)
DECODE_TABLES = {"PCMU": _ULAW_DEC, "PCMA": _ALAW_DEC}
ENCODE_TABLES = {"PCMU": _ULAW_ENC, "PCMA": _ALAW_ENC}


class Codec:
    name = "?"
    #: "PCMU"/"PCMA" for a stateless G.711 codec, decoded and encoded in the relay's per-tick batches
    #: (DECODE_TABLES, ENCODE_TABLES); None for a codec with state (G.722): one call at a time
    law: str | None = None
    silence_byte = 0
    #: one encoded 20 ms frame of silence (what a failed tick sends: fail closed)
    silence = b"\x00" * 160

    def decode(self, payload: bytes) -> np.ndarray:
        raise NotImplementedError

    def encode(self, pcm: np.ndarray) -> bytes:
        raise NotImplementedError


class _G711(Codec):
    def __init__(self, name: str, dec: np.ndarray, enc: np.ndarray, silence_byte: int):
        self.name = self.law = name
        self.silence_byte = silence_byte
        self.silence = bytes([silence_byte]) * 160
        self._dec, self._enc16 = dec, enc

    def decode(self, payload: bytes) -> np.ndarray:
        return self._dec[np.frombuffer(payload, dtype=np.uint8)]

    def encode(self, pcm: np.ndarray) -> bytes:
        if pcm.dtype != np.int16:
            pcm = np.clip(pcm, -32768, 32767).astype(np.int16)
        return self._enc16[pcm.view(np.uint16)].tobytes()


_LIB = None
_LIB_TRIED = False


def _spandsp():
    global _LIB, _LIB_TRIED
    if not _LIB_TRIED:
        _LIB_TRIED = True
        for name in ("libspandsp.so.2", ctypes.util.find_library("spandsp")):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                lib.g722_encode_init.restype = ctypes.c_void_p
                lib.g722_encode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
                lib.g722_decode_init.restype = ctypes.c_void_p
                lib.g722_decode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
                lib.g722_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
                lib.g722_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
                lib.g722_encode_free.argtypes = [ctypes.c_void_p]
                lib.g722_decode_free.argtypes = [ctypes.c_void_p]
                _LIB = lib
                break
            except (OSError, AttributeError):
                continue
        if _LIB is None:
            log.info("libspandsp not loadable: G.722 is not offered by the relay")
    return _LIB


def g722_available() -> bool:
    return _spandsp() is not None


_G722_RATE_64K = 64000
_G722_SAMPLE_RATE_8000 = 0x0001  # spandsp g722.h option: 8 kHz PCM in and out


class _G722(Codec):
    name = "G722"
    silence = b"\xfa" * 160

    def __init__(self):
        lib = _spandsp()
        if lib is None:
            raise RuntimeError("G.722 needs libspandsp")
        self._lib = lib
        self._enc = lib.g722_encode_init(None, _G722_RATE_64K, _G722_SAMPLE_RATE_8000)
        self._dec = lib.g722_decode_init(None, _G722_RATE_64K, _G722_SAMPLE_RATE_8000)
        if not self._enc or not self._dec:
            raise RuntimeError("G.722 state allocation failed")

    def decode(self, payload: bytes) -> np.ndarray:
        out = np.empty(len(payload), dtype=np.int16)
        n = self._lib.g722_decode(self._dec, out.ctypes.data, payload, len(payload))
        return out[:max(0, n)]

    def encode(self, pcm: np.ndarray) -> bytes:
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        buf = ctypes.create_string_buffer(len(pcm))
        n = self._lib.g722_encode(self._enc, buf, pcm.ctypes.data, len(pcm))
        return buf.raw[:max(0, n)]

    def __del__(self):
        try:
            self._lib.g722_encode_free(self._enc)
            self._lib.g722_decode_free(self._dec)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def make_codec(name: str) -> Codec:
    """A fresh codec state for ``name`` (PCMU, PCMA, G722)."""
    name = name.upper()
    if name == "PCMU":
        return _G711("PCMU", _ULAW_DEC, _ULAW_ENC, 0xFF)
    if name == "PCMA":
        return _G711("PCMA", _ALAW_DEC, _ALAW_ENC, 0xD5)
    if name == "G722":
        return _G722()
    raise ValueError(f"unsupported codec {name}")
