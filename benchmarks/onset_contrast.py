# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12's boundary, one more test family: a key's two tones against the spectrum right around them.

The masker's onset tests measure how much of a short window's energy a key's tone pair explains (the "share").
Under louder speech that share is small: a 16 ms share test that fires on 72 % of such key windows fires on
8.3 % of espeak Mandarin's key-free windows (HISTORY.md, "The oracle-timed boundary").  Speech spreads its
energy over many frequencies, so a tone 3 dB under it may still stand well above the spectrum within a few
hundred Hz of it.  This measures that local contrast as an onset test would use it, on the first 25 ms of a key
(the 20 ms look-ahead plus 5 ms: near chance for the oracle-timed attacker needs a decision that early):

* per window (200 samples, Hann, zero-padded FFT): for each of the eight DTMF frequencies, the peak within 3 %
  of it over the median of the bins 90-250 Hz away on both sides; a key's contrast is the smaller of its two
  tones', with both tones above -40 dBm0 and within 10 dB of each other; a window's, its best key's;
* keys: the first six presses of each 24-key sequence (before a keypad burst can open) in the cells whose tones
  run 3 dB under the speech or at its level (``oracle_boundary.UNDER_SPEECH_CELLS``), the best of the windows
  starting 0, 2.5 and 5 ms into the press;
* key-free audio: every window 5 ms apart on the first minutes of each source's tune half.

It prints, per threshold, the share of keys caught and of key-free windows that would fire.  The masker's
key-free budget is 0.5 % of samples changed per source, and it already uses up to about 0.4 %.

    python benchmarks/onset_contrast.py --seeds 3200-3204 --minutes 3
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import masker_payment_cells as cells_bench  # noqa: E402
from oracle_boundary import FIRST_KEYS, UNDER_SPEECH_CELLS  # noqa: E402

from dtmfguard.dsp.levels import dbm0_to_peak  # noqa: E402
from dtmfguard.dsp.params import COL_HZ, ROW_HZ  # noqa: E402
from dtmfguard.testkit import adversary as A  # noqa: E402
from dtmfguard.testkit import corpora  # noqa: E402

RATE = 8000
WINDOW = 200  # 25 ms
NFFT = 2048
HOP = 40  # 5 ms between key-free windows
STARTS_MS = (0.0, 2.5, 5.0)
SOURCES = ("en", "espeak-cmn", "drascula", "hyperrogue")


class Contrast:
    """The local contrast of the best key in each window (dB)."""

    def __init__(self, floor_dbm0: float = -40.0, max_twist_db: float = 10.0):
        freqs = np.asarray(ROW_HZ + COL_HZ, dtype=float)
        hz = np.fft.rfftfreq(NFFT, 1.0 / RATE)
        self.win = np.hanning(WINDOW)
        self.peak_bins = [np.flatnonzero(np.abs(hz - f) <= 0.03 * f) for f in freqs]
        self.side_bins = [np.flatnonzero((np.abs(hz - f) >= 90) & (np.abs(hz - f) <= 250)) for f in freqs]
        # a tone at floor_dbm0 in one window: amplitude / 2 times the window's sum, squared
        self.floor_db = 20 * np.log10(dbm0_to_peak(floor_dbm0) / 2 * self.win.sum())
        self.max_twist_db = max_twist_db

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        spec = np.abs(np.fft.rfft(frames * self.win, NFFT)) ** 2
        peak = np.stack([spec[:, b].max(axis=1) for b in self.peak_bins], axis=1)
        side = np.stack([np.median(spec[:, b], axis=1) for b in self.side_bins], axis=1) + 1e-3
        contrast = 10 * np.log10(peak / side + 1e-12)
        level = 10 * np.log10(peak + 1e-12)
        best = np.full(frames.shape[0], -99.0)
        for r in range(4):
            for c in range(4, 8):
                ok = ((np.abs(level[:, r] - level[:, c]) <= self.max_twist_db)
                      & (level[:, r] >= self.floor_db) & (level[:, c] >= self.floor_db))
                best = np.maximum(best, np.where(ok, np.minimum(contrast[:, r], contrast[:, c]), -99.0))
        return best


def windows(x: np.ndarray, starts) -> np.ndarray:
    idx = np.asarray(starts, dtype=int)[:, None] + np.arange(WINDOW)[None, :]
    return x[idx].astype(np.float64)


def key_contrasts(seeds: List[int], cells: List[int], test: Contrast) -> np.ndarray:
    table = cells_bench.cells()
    out = []
    for seed, speech in cells_bench.seed_speech(seeds):
        for ci in cells:
            _, cond, off = table[ci]
            x, spans = A.press_scenario(np.random.default_rng(seed + off), 24, speech=speech, **cond)
            for sp in spans[:FIRST_KEYS]:
                _, s, _ = A._span_fields(sp)
                starts = [s + int(ms * RATE / 1000) for ms in STARTS_MS if s + int(ms * RATE / 1000) + WINDOW <= x.size]
                out.append(test(windows(x, starts)).max())
    return np.asarray(out)


def keyfree_contrasts(sources, minutes: float, test: Contrast) -> Dict[str, np.ndarray]:
    out = {}
    for name in sources:
        if not corpora.available(name):
            print(f"note: {name} left out (its package is not installed)")
            continue
        x = corpora.signal(name, "tune", max_seconds=minutes * 60)
        starts = np.arange(0, x.size - WINDOW, HOP)
        out[name] = np.concatenate([test(windows(x, starts[i:i + 5000])) for i in range(0, starts.size, 5000)])
    return out


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="3200-3204", help="talk-over seeds (default: tune seeds 3200-3204)")
    ap.add_argument("--cells", default=UNDER_SPEECH_CELLS)
    ap.add_argument("--minutes", type=float, default=3.0, help="key-free minutes per source (tune half)")
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--thresholds", default="9,12,15,18,21,24", help="contrast thresholds in dB")
    args = ap.parse_args(argv)
    try:
        seeds = cells_bench.seeds_arg(args.seeds)
        cells = cells_bench.seeds_arg(args.cells)
        thresholds = [float(t) for t in args.thresholds.split(",")]
    except ValueError as exc:
        ap.error(f"bad number: {exc}")
    test = Contrast()
    try:
        keys = key_contrasts(seeds, cells, test)
    except cells_bench.SpeechMissing as exc:
        print(exc)
        return 1
    free = keyfree_contrasts(args.sources.split(","), args.minutes, test)
    print(f"{keys.size} keys (first {FIRST_KEYS} of each sequence, cells {args.cells}, seeds {args.seeds}); "
          f"key-free: {args.minutes:g} min per source, windows {HOP * 1000 // RATE} ms apart")
    print(f"{'dB':>5s} {'keys caught':>12s} " + " ".join(f"{n:>12s}" for n in free))
    for t in thresholds:
        print(f"{t:5.0f} {100 * np.mean(keys >= t):11.1f}% " + " ".join(f"{100 * np.mean(v >= t):11.3f}%"
                                                                     for v in free.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
