# SPDX-License-Identifier: GPL-2.0-or-later
"""Bencoding (the BitTorrent encoding), as rtpengine's "ng" control protocol uses it.

Integers ``i42e``, byte strings ``4:spam``, lists ``l...e``, dictionaries ``d...e`` with byte-string
keys in sorted order.  Decoding is strict (one value, nothing after it, bounded nesting and size) and
raises :class:`BencodeError` with a message that never quotes the input.  Strings decode to ``str``
when they are valid UTF-8, else stay ``bytes``; dictionary keys are always ``str``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["BencodeError", "decode", "encode"]

MAX_DEPTH = 32


class BencodeError(ValueError):
    """Malformed bencoded data."""


def encode(value: Any) -> bytes:
    out: list[bytes] = []
    _enc(value, out)
    return b"".join(out)


def _enc(v: Any, out: list[bytes]) -> None:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        out.append(b"i%de" % v)
    elif isinstance(v, str):
        b = v.encode()
        out.append(b"%d:" % len(b))
        out.append(b)
    elif isinstance(v, (bytes, bytearray)):
        out.append(b"%d:" % len(v))
        out.append(bytes(v))
    elif isinstance(v, (list, tuple)):
        out.append(b"l")
        for item in v:
            _enc(item, out)
        out.append(b"e")
    elif isinstance(v, dict):
        out.append(b"d")
        items = sorted(((k.encode() if isinstance(k, str) else bytes(k)), val) for k, val in v.items())
        for k, val in items:
            out.append(b"%d:" % len(k))
            out.append(k)
            _enc(val, out)
        out.append(b"e")
    elif isinstance(v, float):
        _enc(int(v), out)
    else:
        raise TypeError(f"cannot bencode {type(v).__name__}")


def decode(data: bytes) -> Any:
    """One bencoded value filling all of ``data``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("decode() needs bytes")
    data = bytes(data)
    value, pos = _dec(data, 0, 0)
    if pos != len(data):
        raise BencodeError(f"trailing data after the value at offset {pos}")
    return value


def _dec(d: bytes, pos: int, depth: int):
    if depth > MAX_DEPTH:
        raise BencodeError("nesting too deep")
    if pos >= len(d):
        raise BencodeError("truncated value")
    c = d[pos]
    if c == 0x69:  # i
        end = d.find(b"e", pos + 1)
        if end < 0:
            raise BencodeError("unterminated integer")
        raw = d[pos + 1:end]
        if not raw or len(raw) > 20 or not (raw.isdigit() or (raw[:1] == b"-" and raw[1:].isdigit())):
            raise BencodeError(f"bad integer at offset {pos}")
        if (raw.startswith(b"0") and raw != b"0") or raw.startswith(b"-0"):
            raise BencodeError(f"non-canonical integer at offset {pos}")
        return int(raw), end + 1
    if c == 0x6C:  # l
        pos += 1
        out = []
        while True:
            if pos >= len(d):
                raise BencodeError("unterminated list")
            if d[pos] == 0x65:
                return out, pos + 1
            item, pos = _dec(d, pos, depth + 1)
            out.append(item)
    if c == 0x64:  # d
        pos += 1
        res: dict[str, Any] = {}
        while True:
            if pos >= len(d):
                raise BencodeError("unterminated dictionary")
            if d[pos] == 0x65:
                return res, pos + 1
            if not 0x30 <= d[pos] <= 0x39:
                raise BencodeError(f"dictionary key is not a string at offset {pos}")
            key, pos = _string(d, pos)
            k = key.decode("utf-8", "replace")
            res[k], pos = _dec(d, pos, depth + 1)
    if 0x30 <= c <= 0x39:
        raw, pos = _string(d, pos)
        try:
            return raw.decode("utf-8"), pos
        except UnicodeDecodeError:
            return raw, pos
    raise BencodeError(f"unexpected byte at offset {pos}")


def _string(d: bytes, pos: int):
    colon = d.find(b":", pos, pos + 12)
    if colon < 0:
        raise BencodeError(f"bad string length at offset {pos}")
    raw = d[pos:colon]
    if not raw.isdigit() or (raw.startswith(b"0") and raw != b"0"):
        raise BencodeError(f"bad string length at offset {pos}")
    n = int(raw)
    start = colon + 1
    if start + n > len(d):
        raise BencodeError("truncated string")
    return d[start:start + n], start + n
