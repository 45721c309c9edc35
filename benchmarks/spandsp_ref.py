# SPDX-License-Identifier: GPL-2.0-or-later
"""spandsp's DTMF receiver through ctypes: the reference detector for benchmarks.

Issue 3 measures dtmfguard against the detector most open-source telephony
uses (spandsp ``dtmf.c``, in FreeSWITCH, rtpengine, Asterisk add-ons), on the
same signals.  Debian's ``libspandsp2`` (``libspandsp.so.2``, package
``libspandsp-dev``) is loaded at run time; nothing in the ``dtmfguard``
package imports this module.

spandsp analyses whole blocks of 102 samples and decides at block ends, so
feeding it one block per call (``dtmf_rx`` is cheap) gives every report an
exact sample position: the end of the block in which it was made.  Two
callbacks exist: the digit-buffer callback (``dtmf_rx_init``) and the
real-time callback (``dtmf_rx_set_realtime_callback``), which reports each
digit's start (its ASCII code) and end (code 0).  When the real-time callback
is set spandsp 0.0.6 reports through it only, so :class:`SpanDtmf` uses one
or the other (``realtime=True`` for start/end events, else digit reports).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

__all__ = ["SpanDtmf", "SpanDigit", "SpanDspUnavailable", "load", "spandsp_detect", "BLOCK"]

#: spandsp's DTMF analysis block (DTMF_SAMPLES_PER_BLOCK in dtmf.c), 12.75 ms at 8 kHz.
BLOCK = 102

_DIGITS_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int)
_TONE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int)


class SpanDspUnavailable(RuntimeError):
    """libspandsp could not be loaded (install Debian's libspandsp-dev / libspandsp2)."""


_lib = None


def load():
    """The loaded libspandsp (cached), with argument types declared."""
    global _lib
    if _lib is not None:
        return _lib
    names = ["libspandsp.so.2", ctypes.util.find_library("spandsp")]
    errors = []
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    else:
        raise SpanDspUnavailable("cannot load libspandsp (apt-get install libspandsp-dev): "
                                 + "; ".join(errors))
    lib.dtmf_rx_init.restype = ctypes.c_void_p
    lib.dtmf_rx_init.argtypes = [ctypes.c_void_p, _DIGITS_CB, ctypes.c_void_p]
    lib.dtmf_rx.restype = ctypes.c_int
    lib.dtmf_rx.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]
    lib.dtmf_rx_parms.restype = None
    lib.dtmf_rx_parms.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.dtmf_rx_set_realtime_callback.restype = None
    lib.dtmf_rx_set_realtime_callback.argtypes = [ctypes.c_void_p, _TONE_CB, ctypes.c_void_p]
    lib.dtmf_rx_free.restype = ctypes.c_int
    lib.dtmf_rx_free.argtypes = [ctypes.c_void_p]
    lib.dtmf_rx_status.restype = ctypes.c_int
    lib.dtmf_rx_status.argtypes = [ctypes.c_void_p]
    _lib = lib
    return lib


@dataclass(frozen=True)
class SpanDigit:
    """One spandsp report: ``position`` is the sample index (stream so far) when it was made.

    With ``realtime=True`` a digit has ``start`` (position of the start report) and ``end``
    (position of the end report, None if the stream ended first); otherwise only ``start``.
    """

    digit: str
    start: int
    end: Optional[int] = None
    level: Optional[int] = None


class SpanDtmf:
    """One spandsp DTMF receiver (one channel).

    ``twist_db``/``reverse_twist_db``/``threshold_dbm0``/``filter_dialtone`` map to
    ``dtmf_rx_parms``; None leaves spandsp's defaults (nominally 8 dB normal and 4 dB reverse
    twist, -42 dBm0, no dial-tone filter; what it really accepts is measured by conformance.py).
    """

    def __init__(self, realtime: bool = True, filter_dialtone: Optional[bool] = None,
                 twist_db: Optional[int] = None, reverse_twist_db: Optional[int] = None,
                 threshold_dbm0: Optional[int] = None):
        self._lib = load()
        self.realtime = realtime
        self.digits: List[SpanDigit] = []
        self._open: Optional[SpanDigit] = None
        self.position = 0
        # Keep the callback objects alive as long as the state: spandsp holds raw pointers to them.
        self._digits_cb = _DIGITS_CB(self._on_digits)
        self._tone_cb = _TONE_CB(self._on_tone)
        self._state = self._lib.dtmf_rx_init(None, self._digits_cb, None)
        if not self._state:
            raise SpanDspUnavailable("dtmf_rx_init failed")
        if realtime:
            self._lib.dtmf_rx_set_realtime_callback(self._state, self._tone_cb, None)
        self._lib.dtmf_rx_parms(
            self._state,
            -1 if filter_dialtone is None else int(filter_dialtone),
            -1 if twist_db is None else int(twist_db),
            -1 if reverse_twist_db is None else int(reverse_twist_db),
            -99 if threshold_dbm0 is None else int(threshold_dbm0),
        )

    def _on_digits(self, _user, digits, length):
        for ch in digits[:length].decode("ascii"):
            self.digits.append(SpanDigit(ch, self.position))

    def _on_tone(self, _user, code, level, _delay):
        if self._open is not None:
            self.digits.append(SpanDigit(self._open.digit, self._open.start, self.position, self._open.level))
            self._open = None
        if code:
            self._open = SpanDigit(chr(code), self.position, None, level)

    def rx(self, samples: np.ndarray, block: int = BLOCK) -> None:
        """Feed int16 samples (anything else is rounded and clipped to int16).

        ``block`` samples per ``dtmf_rx`` call; reports are stamped with the end of the call's
        samples, so the default (spandsp's own block) gives exact positions.  ``block=0``: one call.
        """
        x = np.asarray(samples)
        if x.dtype != np.int16:
            x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
        x = np.ascontiguousarray(x)
        ptr = x.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        step = block if block > 0 else max(x.size, 1)
        start = 0
        while start < x.size:
            n = min(step, x.size - start)
            self.position += n
            self._lib.dtmf_rx(self._state, ctypes.cast(ctypes.addressof(ptr.contents) + 2 * start,
                                                       ctypes.POINTER(ctypes.c_int16)), n)
            start += n

    def finish(self) -> List[SpanDigit]:
        """Close a digit still sounding at the end of the stream (end=None) and return all reports."""
        if self._open is not None:
            self.digits.append(self._open)
            self._open = None
        return self.digits

    def close(self) -> None:
        if self._state:
            self._lib.dtmf_rx_free(self._state)
            self._state = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def spandsp_detect(samples: np.ndarray, realtime: bool = True, **parms) -> List[SpanDigit]:
    """All digits spandsp reports for an 8 kHz signal (int16 scale)."""
    det = SpanDtmf(realtime=realtime, **parms)
    try:
        det.rx(samples)
        return det.finish()
    finally:
        det.close()
