# SPDX-License-Identifier: GPL-2.0-or-later
"""Prototype, not the detector: rescue windows under speech with a 25.5 ms window (issue 17, talk-down).

Analysis only (numpy path, monkeypatched). Built since as ``DetectorParams.long_window`` (both paths, off by
default; causal, key A excluded: README, detector section, "The long window"); this script keeps the prototype's
rules for comparison.  A 12.75 ms window that
fails the purity, energy-share or harmonic-guard tests is classified as a key when the 25.5 ms window of
half-blocks k-2 .. k+1 (``win[k-2] + rot^2 win[k]``) passes those tests (relative peak ``--rp`` dB) and the
short windows' phase test passes at that window's bins (tolerance ``freq_tolerance_mixed`` below
``mixed_fraction``); with ``--cont`` only next to a window already naming the same key.  A key under speech
is a steady pair for 40+ ms, speech harmonics over 25 ms less often, so the longer window wins keys back; it
also lets some speech through (README, detector section).

Run:  python benchmarks/talkdown_longwindow.py [--rp 8] [--cont]                  (tune talk-down)
      python benchmarks/talkdown_longwindow.py --cont --talkoff --split tune --offset 0 --detectors numpy
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from dtmfguard.dsp import detector as D  # noqa: E402
from dtmfguard.dsp import goertzel  # noqa: E402
from dtmfguard.dsp.levels import DBM0_PEAK  # noqa: E402

_orig = D._classify
STATE = {"rescued": 0, "rp": None, "cont": False}


def classify(tab, win, prev_first, energy):
    """detector._classify, then the rescue over the windows of this call (a whole signal is one call)."""
    digit, checked, amp, lr, lc, relr, relc, share = _orig(tab, win, prev_first, energy)
    nch, nw, _ = win.shape
    if nw < 3:
        return digit, checked, amp, lr, lc, relr, relc, share
    n = tab.window
    long_win = np.zeros_like(win)
    long_win[:, 2:] = win[:, :-2] + tab.rot ** 2 * win[:, 2:]
    long_energy = np.zeros_like(energy)
    long_energy[:, 2:] = energy[:, :-2] + energy[:, 2:]
    amp_l = np.abs(long_win) * (1.0 / n)  # peak amplitude of an on-bin sine over 2n samples
    rp = STATE["rp"] or tab.rel_peak_pow
    for ci in range(nch):
        for k in range(2, nw):
            if 0 <= digit[ci, k] < D._WEAK:
                continue
            a = amp_l[ci, k]
            rows, cols = a[:4], a[4:8]
            r, c = int(np.argmax(rows)), int(np.argmax(cols))
            ar, ac = rows[r], cols[c]
            if ar < tab.min_amp or ac < tab.min_amp:
                continue
            frac = (ar * ar + ac * ac) * n / max(long_energy[ci, k], 1e-9)
            if frac < tab.min_fraction:
                continue
            rs, cs = np.sort(rows ** 2), np.sort(cols ** 2)
            if rs[-1] < rp * rs[-2] or cs[-1] < rp * cs[-2]:
                continue
            twist = 20 * np.log10(ar / ac)
            if twist > tab.normal_twist_db or twist < -tab.reverse_twist_db:
                continue
            clean = frac >= tab.clean_fraction
            g = tab.harmonic_guard if clean else tab.harmonic_guard_mixed
            if a[8 + r] >= ar * g or a[12 + c] >= ac * g:
                continue
            if a[16 + r] >= ar * (tab.third_guard if clean else tab.third_guard_mixed):
                continue
            if not (tab.double_skip[r * 4 + c] > 0 or a[20 + r] < ar * tab.double_guard):
                continue
            kc = c + 4  # the phase test on the short windows at these bins
            w_r, w_c, p_r, p_c = win[ci, k, r], win[ci, k, kc], win[ci, k - 1, r], win[ci, k - 1, kc]
            if not (abs(p_r) >= 0.5 * abs(w_r) and abs(p_c) >= 0.5 * abs(w_c)):
                continue
            d_r = (np.angle(w_r * np.conj(p_r)) - tab.advance[r] + np.pi) % (2 * np.pi) - np.pi
            d_c = (np.angle(w_c * np.conj(p_c)) - tab.advance[kc] + np.pi) % (2 * np.pi) - np.pi
            rel_r, rel_c = d_r / tab.half / tab.omegas[r], d_c / tab.half / tab.omegas[kc]
            tol = tab.freq_tol_mixed if frac < tab.mixed_fraction else tab.freq_tol
            if abs(rel_r) > tol or abs(rel_c) > tol:
                continue
            key = r * 4 + c
            if STATE["cont"] and digit[ci, k - 1] not in (key, D._WEAK + key) and digit[ci, min(k + 1, nw - 1)] != key:
                continue
            digit[ci, k], checked[ci, k] = key, True
            lr[ci, k], lc[ci, k] = 20 * np.log10(ar / DBM0_PEAK), 20 * np.log10(ac / DBM0_PEAK)
            relr[ci, k], relc[ci, k], share[ci, k] = rel_r, rel_c, frac
            STATE["rescued"] += 1
    return digit, checked, amp, lr, lc, relr, relc, share

def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rp = 8.0
    if "--rp" in argv:
        i = argv.index("--rp")
        rp = float(argv[i + 1])
        del argv[i:i + 2]
    STATE.update(rp=10 ** (rp / 10), cont="--cont" in argv)
    argv = [a for a in argv if a != "--cont"]
    goertzel.set_backend("numpy")
    D._classify = classify
    if "--talkoff" in argv:
        import talkoff  # its worker processes are forked after the patch

        return talkoff.main([a for a in argv if a != "--talkoff"])
    import talkdown

    return talkdown.main(argv)


if __name__ == "__main__":
    sys.exit(main())
