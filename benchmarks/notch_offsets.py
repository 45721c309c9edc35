# SPDX-License-Identifier: GPL-2.0-or-later
"""How much of a tone a few % off nominal the masker's band notch removes, per block size, and what it costs speech.

The masker's undecided treatment (and the payment profile's / keypad bursts'): a band notch on the whole stream
(detection switched off, one open notch span), run through ``Masker.process`` in 20 ms chunks.  Per block length
(``notch_block_ms``) and basis (``notch_band_extra`` vectors of the bands widened by ``notch_band_width``; 0: the 8
nominal frequencies only): the residual energy of a steady tone at each of the 8 DTMF frequencies ``* (1 + offset)``
(worst of the 8, dB; the phase varies per frequency) and the energy speech alone loses (dB).

Run:  python benchmarks/notch_offsets.py [--blocks 4,8,16] [--extra 0,4,6,8] [--source en --split tune]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from dtmfguard.dsp.masker import Masker, _Span
from dtmfguard.dsp.params import COL_HZ, DEFAULT_MASKER_PARAMS, ROW_HZ
from dtmfguard.testkit import corpora

OFFSETS = (0.0, 0.02, -0.02, 0.03, -0.03, 0.04, -0.04, 0.05, -0.05)


def notch_only(x: np.ndarray, params) -> np.ndarray:
    """``x`` (int16) through the masker's band notch alone, aligned with the input."""
    m = Masker(params=params)
    m._decide = lambda *a, **k: None
    m._native_screen = None  # (the C frame decides too)
    m._notches.append(_Span(-10 ** 6, None, "notch"))
    out = np.concatenate([m.process(x[i: i + 160]) for i in range(0, x.size, 160)] + [m.flush()])
    return out[m.delay_samples:]


def residual_db(params, offset: float) -> float:
    """Worst residual (dB) over the 8 frequencies of a steady -10 dBm0-ish tone ``offset`` off."""
    worst = -np.inf
    n = np.arange(8000)
    for k, f in enumerate(ROW_HZ + COL_HZ):
        tone = 8000.0 * np.cos(2 * np.pi * f * (1 + offset) * n / 8000 + 0.4 + 0.7 * k)
        out = notch_only(np.round(tone).astype(np.int16), params)[400:-400].astype(float)
        ref = tone[400:-400]
        worst = max(worst, 10 * np.log10(max(float(out @ out), 1e-9) / float(ref @ ref)))
    return worst


def speech_db(params, speech: np.ndarray) -> float:
    out = notch_only(speech, params)[400:].astype(float)
    a = speech[400:].astype(float)
    return -10 * np.log10(float(out @ out) / float(a @ a))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", default="4,8,16", help="notch_block_ms values")
    ap.add_argument("--extra", default="0,4,6,8", help="notch_band_extra values")
    ap.add_argument("--width", type=float, default=DEFAULT_MASKER_PARAMS.notch_band_width)
    ap.add_argument("--speech-seconds", type=float, default=60.0)
    ap.add_argument("--source", default="en", help="speech source (dtmfguard.testkit.corpora)")
    ap.add_argument("--split", default="tune", choices=("tune", "report"))
    args = ap.parse_args(argv)
    try:
        sp = corpora.signal(args.source, args.split, max_seconds=args.speech_seconds)
        speech = np.clip(np.round(sp), -32768, 32767).astype(np.int16)
    except corpora.CorpusMissing:
        speech = None
    print(f"band notch residual of a steady tone (worst of the 8 frequencies, dB) and speech lost "
          f"(width {args.width:g}; speech: {'none' if speech is None else f'{args.source} {args.split} {speech.size / 8000:.0f} s'})")
    print("block  extra | " + " ".join(f"{o:+6.0%}" for o in OFFSETS) + " | speech dB")
    for blk in (float(b) for b in args.blocks.split(",")):
        for extra in (int(e) for e in args.extra.split(",")):
            p = dataclasses.replace(DEFAULT_MASKER_PARAMS, notch_block_ms=blk, notch_band_extra=extra,
                                    notch_band_width=args.width)
            res = [residual_db(p, o) for o in OFFSETS]
            sl = f"{speech_db(p, speech):.2f}" if speech is not None else "-"
            print(f"{blk:4.0f}ms {extra:5d} | " + " ".join(f"{r:6.1f}" for r in res) + f" | {sl}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
