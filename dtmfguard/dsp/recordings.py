# SPDX-License-Identifier: GPL-2.0-or-later
"""Masking DTMF in stored call recordings (PCI DSS v4.0 req. 3.3.1: no card verification code in recordings).

Archives made before masking was in the call path still hold the tones.
:func:`mask_file` rewrites one recording with every key press replaced by the
mask, keeping the sample rate, the container, the sample encoding (subtype)
and the channels (a stereo recording with customer and agent on separate
channels has each channel masked on its own).  It returns a report of *where*
audio was masked (times and counts), never *what* was masked.

Safety of the input: the input is only ever opened for reading; the output is
written to a temporary file in the destination directory and moved into place
only when complete, so a failure leaves neither a half-written output nor a
modified input.  Overwriting the input itself needs ``overwrite_input=True``.
"""
from __future__ import annotations

import logging
import os
import struct
from typing import List, Optional

import numpy as np

from .audio import AudioError, _short, audio_info
from .keypad import KeypadMasker
from .masks import DEFAULT_LOOKAHEAD_MS, DEFAULT_MASK
from ..security import replacing

__all__ = ["mask_file", "mask_channels", "check_wav_complete", "RECORDING_LOOKAHEAD_MS"]

#: Look-ahead for files: the live default, so a recording is masked as the call would have been (issue 12:
#: one behaviour, live and files).  ``lookahead_ms`` takes another value for experiments.
RECORDING_LOOKAHEAD_MS = DEFAULT_LOOKAHEAD_MS

log = logging.getLogger(__name__)

# Subtypes whose samples are at most 16 bits: read and written as int16 so unmasked samples stay bit-exact.
_INT16_SUBTYPES = {"PCM_16", "PCM_S8", "PCM_U8", "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM", "GSM610", "G721_32",
                   "G723_24", "G723_40"}


def check_wav_complete(path: str) -> None:
    """Raise :class:`AudioError` if a RIFF/WAVE file's data chunk is shorter than its header says.

    libsndfile silently reads what is there; a truncated recording should be
    reported, not masked and archived as if complete.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = os.fstat(f.fileno()).st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            cid, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                have = size - pos - 8
                if length != 0xFFFFFFFF and length > have:
                    raise AudioError(f"{path}: truncated WAV (header announces {length} bytes of audio, "
                                     f"file holds {have})")
                return
            pos += 8 + length + (length & 1)


def mask_channels(data: np.ndarray, rate: int, *, payment: bool = False, **options):
    """Mask every column of ``data`` ([frames, channels], int16 or float in [-1, 1]); same shape and dtype.
    ``payment``: the whole recording under the masker's payment profile (:meth:`~dtmfguard.dsp.masker.Masker.notch_all`).

    Returns ``(masked, spans_per_channel)``.  Raises RuntimeError if a masker
    failed (it then masked closed, but a recording should not be archived that way).
    """
    out = np.empty_like(data)
    spans: List[list] = []
    for ch in range(data.shape[1]):
        # (the masker with its strict receiver, as a call's pipeline runs it: the same output as live)
        m = KeypadMasker(rate, dtype="int16" if data.dtype == np.int16 else "float64", **options)
        if payment:
            m.notch_all(0)
        col = np.ascontiguousarray(data[:, ch])
        res = np.concatenate([m.process(col), m.flush()])[m.delay_samples:]
        if m.errors:
            raise RuntimeError("the masker failed on this recording")
        out[:, ch] = res.astype(out.dtype, copy=False) if data.dtype == np.int16 else res
        spans.append([s for s in m.masked_spans if s.end > 0 and s.start < data.shape[0]])
    return out, spans


def mask_file(in_path: str, out_path: str, *, overwrite: bool = False, overwrite_input: bool = False,
              lookahead_ms: float = RECORDING_LOOKAHEAD_MS, mask: str = DEFAULT_MASK, hide_timing: bool = False,
              payment: bool = False, **options) -> dict:
    """Mask ``in_path`` into ``out_path``; return the JSON-ready report (spans, counts; no digits)."""
    import soundfile as sf

    in_path, out_path = str(in_path), str(out_path)
    info = audio_info(in_path)
    check_wav_complete(in_path)
    same = os.path.exists(out_path) and os.path.samefile(in_path, out_path)
    if same and not overwrite_input:
        raise AudioError(f"{out_path}: is the input; refusing to overwrite it (use --force)")
    if os.path.exists(out_path) and not same and not overwrite:
        raise AudioError(f"{out_path}: exists; refusing to overwrite it (use --force)")
    dtype = "int16" if info.subtype in _INT16_SUBTYPES else "float64"
    try:
        data, rate = sf.read(in_path, dtype=dtype, always_2d=True)
    except (RuntimeError, sf.LibsndfileError, ValueError, MemoryError) as exc:
        raise AudioError(f"{in_path}: cannot decode audio ({_short(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{in_path}: contains no samples")
    if dtype == "float64" and not np.all(np.isfinite(data)):
        raise AudioError(f"{in_path}: samples contain NaN or infinity")
    masked, spans = mask_channels(data, rate, lookahead_ms=lookahead_ms, mask=mask, hide_timing=hide_timing,
                                  payment=payment, **options)
    with replacing(out_path, suffix=os.path.splitext(out_path)[1] or ".wav") as tmp:
        sf.write(tmp, masked, rate, subtype=info.subtype, format=info.format, endian=info.endian)
    return {
        "input": in_path,
        "output": out_path,
        "rate": rate,
        "channels": data.shape[1],
        "format": info.format,
        "subtype": info.subtype,
        "duration_s": round(data.shape[0] / rate, 3),
        "lookahead_ms": lookahead_ms,
        "mask": mask,
        "hide_timing": hide_timing,
        "payment": payment,
        "per_channel": [
            {"channel": ch, "masked_spans": len(sp),
             "masked_s": round(sum(min(s.end, data.shape[0]) - max(s.start, 0) for s in sp) / rate, 3),
             "spans": [{"start_s": round(max(s.start, 0) / rate, 4),
                        "end_s": round(min(s.end, data.shape[0]) / rate, 4), "source": s.source} for s in sp]}
            for ch, sp in enumerate(spans)
        ],
    }


def default_output(in_path: str, out_dir: Optional[str]) -> str:
    return os.path.join(out_dir or ".", os.path.basename(in_path))
