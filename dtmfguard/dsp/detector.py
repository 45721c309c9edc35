# SPDX-License-Identifier: GPL-2.0-or-later
"""Streaming in-band DTMF detector (ITU-T Q.24 timing).

How it works
------------
The Goertzel kernel (:mod:`goertzel`) gives complex DFT values of the 8 DTMF
frequencies over half-blocks of 6.375 ms.  Two consecutive half-blocks make a
12.75 ms window (102 samples at 8 kHz), so windows overlap by half and each
sample is seen by exactly two of them.  Per window we test:

* level: each tone above ``min_tone_dbm0``;
* purity: in each group the strongest bin beats the other three;
* twist: row minus column level within the Q.24 limits;
* energy share: the two tones carry a minimum share of the window's energy;
* frequency: the phase advance of each tone between two overlapping windows
  measures its frequency; it must lie within a tolerance of nominal that
  depends on context: ``freq_tolerance`` where the two tones (counted at
  their measured frequencies) carry nearly all of the window's energy,
  ``freq_tolerance_mixed`` where other sound shares the window, linear in
  between. This is what lets us accept ±1.5 % and reject ±3.5 % (Q.24),
  which bin energies of a 12.75 ms window alone cannot separate;
* harmonic guards: no strong component at half the row frequency, twice the
  column frequency or three times the row frequency (partials of a note).

Timing uses the windows' amplitudes: a window that holds a fraction ``c`` of
a tone shows about ``c`` times the tone's steady amplitude, which places the
tone's onset and end to within a few samples.  A digit is confirmed (start
event) once it has lasted ``min_tone_ms``, passed the phase test in
``confirm_checked_windows`` windows, kept its frequencies steady over the
press so far and its row and column errors together (one oscillator: a
musical interval, e.g. an octave on keys 2, 6 and C, pulls them apart) and
passed the long-baseline test over its last 32 ms (each tone's frequency from
the phase advance between the segment's halves must match the mean of its
per-window estimates: two partials beating in a bin do not; presses shared
with other sound; :func:`_segment_drift`), the harmonic-neighbours test there
(the two tones taken out, no note an octave below the column with its 3rd
partial, no partial beside either tone: :func:`_neighbours`) and the partials
test (both tones harmonics of one 70-400 Hz fundamental whose other harmonics
are as strong: a voice or an instrument; :func:`_comb_ratio`) and, for presses
shared with other sound, the music-context test (the 300 ms before the onset
must not hold persistent spectral fine structure, as held notes do;
:func:`_context_persistence`); it ends after
``end_miss_windows`` windows without it (complete event).  Every
threshold, its source and its measured trade-off are in
:class:`~dtmfguard.dsp.params.DetectorParams` (talk-off measured by
``benchmarks/talkoff.py`` on the tune half of the real-audio corpora).

State is explicit and small (spandsp's habit), and the output does not depend
on how the stream is cut into chunks.

Two paths, the same events
--------------------------
With the native backend (``DTMFGUARD_BACKEND``, chosen when a detector is
created or reset) one C call per frame (``native/detector.c``,
``Frames.process``; ``Frames.events`` is ``DtmfDetector.process`` itself for
int16 frames) buffers the partial half-block, runs the kernel, every window
test and the state machine.  Otherwise the numpy kernel and window tests and
the Python state machine below run (only for channels with a candidate window
or a digit in progress).  Both give the same events
(``tests/test_detector_native.py``; ``benchmarks/detector.py`` and
``benchmarks/talkoff.py`` compare them).
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from . import goertzel
from .audio import AudioError, as_samples, check_rate
from ..events import KEYPAD, DigitEvent
from .levels import DBM0_PEAK
from .params import DEFAULT_PARAMS, DTMF_HZ, GUARD_HZ, DetectorParams

try:  # optional C window tests (native/detector.c); the numpy path below gives the same events
    from . import _detector_native  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the build
    _detector_native = None

__all__ = ["DtmfDetector", "DetectorBank", "detect"]

log = logging.getLogger(__name__)

_DIGIT_OF = [KEYPAD[r][c] for r in range(4) for c in range(4)]  # index r*4+c
_NO_DIGIT = -1
_WEAK = 16  # offset of weak-hit codes, see _classify
_INT16 = np.dtype(np.int16)


@dataclass
class _Tables:
    """Values derived from (params, rate); shared by all channels of one rate."""

    half: int
    window: int
    omegas: np.ndarray
    rot: np.ndarray  # exp(-j*omega*H): moves a half-block's phase reference back by H
    advance: np.ndarray  # omega*H: nominal phase advance between windows
    min_amp: float
    rel_peak_pow: float
    normal_twist_db: float
    reverse_twist_db: float
    freq_tol: float
    freq_tol_mixed: float
    full_fraction: float
    mixed_fraction: float
    pair_spread: float
    octave_spread: float
    octave_tone: float
    steady_spread: float
    ratio_spread: float  # the pair's amplitude-ratio test (DetectorParams.pair_ratio_*; inf: off)
    ratio_min_share: float
    ratio_cover: float
    press_offset: float  # DetectorParams.mixed_press_offset_max (inf: off) and mixed_press_share
    press_offset_share: float
    pre_level: float  # the pair-before-the-onset test (DetectorParams.pre_onset_*; inf: off)
    pre_n: int  # samples of each of its two segments
    pre_gap: int  # samples between the earlier segment's end and the onset
    pre_min_share: float
    pre_max_share: float
    env_spread: float  # the press's sub-window amplitude-ratio test (DetectorParams.press_env_*; inf: off)
    env_min_share: float
    env_max_share: float
    env_offset_min: float
    env_cover: float
    env_step: int  # samples between its windows (each one half-block long)
    glide_level: float  # the slid-into-the-key test (DetectorParams.glide_*; inf: off)
    glide_hold: float
    glide_offset: float
    glide_hop: int  # samples between its segments' ends
    glide_segments: int
    glide_step: float
    glide_k: int  # its grid: glide_step * (-glide_k .. glide_k)
    glide_max_share: float
    glide_screen: float
    harmonic_guard: float
    harmonic_guard_mixed: float
    third_guard: float
    third_guard_mixed: float
    double_guard: float
    double_skip: np.ndarray  # [16] 1.0 where the key's column is too near twice its row for that guard
    clean_fraction: float
    min_fraction: float
    min_tone: int
    min_tone_mixed: int
    press_clean_share: float
    rate: float
    comb_ratio: float
    comb_f0_min: float
    comb_max_share: float
    comb_f0_max: float
    comb_tol: float
    comb_f_lo: float
    comb_f_hi: float
    drift_max: float
    drift_max_share: float
    nb_max_share: float
    nb_low: float  # amplitude ratio limits of the harmonic-neighbours test (inf: that part off)
    nb_third: float
    nb_row_third: float
    nb_high: float
    ctx_persist: float  # the music-context test (DetectorParams.context_*; inf: off)
    ctx_max_share: float
    ctx_always_share: float  # below it every press is judged; up to ctx_max_share only off-nominal ones
    ctx_offset_min: float
    ctx_span: int  # samples of context before the onset
    ctx_guard: int  # samples between the context's end and the onset
    ctx_n: int  # frame length (a power of two)
    ctx_klo: int  # the band's first and last + 1 DFT bins of a frame
    ctx_khi: int
    ctx_smooth: int  # half-width (bins) of the mean taken away from each log spectrum
    ctx_pairs: int  # frame pairs correlated (spread evenly over the context)
    ctx_halves: int  # half-blocks of audio kept before a confirming window's end (the context's reach)
    hist_halves: int  # half-blocks of history kept per channel (>= 5: the partials test's segment; C: int16 ring)
    confirm_checked: int
    end_misses: int
    edge_min: float
    break_guard: int  # samples after a break whose windows neither hit nor miss (DetectorParams.break_guard_ms)
    long_on: float  # the long window (DetectorParams.long_window; 1.0 on, 0.0 off) and its purity limit
    long_rel_peak_pow: float
    long_after_weak: float
    long_checked: float
    long_min_strong: float
    long_comb_ratio: float  # the partials test for presses with long-window hits (DetectorParams.long_comb_*)
    long_comb_max_share: float
    long_ctx_max_share: float  # the music-context test for presses with long-window hits (long_context_max_share)
    long_guard_mixed: float  # the long window's half-row / twice-column guard under other sound (long_harmonic_guard_mixed_db)
    long_in_ratio: float  # long-window hits count in the amplitude-ratio range (DetectorParams.long_in_pair_ratio)
    long_skip_mask: float  # bit r*4+c set: key (r, c) gets no long-window hits (DetectorParams.long_harmonic_*)
    td_row_peak_pow: float  # the relaxed window (DetectorParams.td_*): its row purity, energy share, strict hits
    td_min_fraction: float  # min(min_tone_fraction, td_min_tone_fraction): the candidate filter's share
    td_min_strong: float
    td_freq_tol_mixed: float  # max(freq_tolerance_mixed, td_freq_tolerance_mixed)
    td_press_offset: float  # DetectorParams.td_press_offset_max
    td_min_tone: int  # samples (DetectorParams.td_min_tone_ms)
    td_min_density: float
    td_guard_mixed: float  # the half-row / twice-column guard's ratio under other sound (td_harmonic_guard_mixed_db)
    td_comb_ratio: float  # the partials test for presses with relaxed hits (DetectorParams.td_comb_*)
    td_comb_max_share: float
    td_skip_mask: float  # bit r*4+c set: key (r, c) gets no relaxed hits (DetectorParams.td_harmonic_*)
    rot2: np.ndarray  # rot * rot: moves a window's phase reference back by 2H (the long window's second half)
    native_consts: Optional[np.ndarray]  # the C window tests' constants (native/detector.c's layout)
    native_tables: Optional[bytes] = None  # the C path's window and twiddle tables (frame_tables(native_consts))

    @classmethod
    def cached(cls, params: DetectorParams, rate: int) -> "_Tables":
        """``build(params, rate)``, made once per (params, rate) and shared (read only): a new detector (one
        per call, and one after every flush) then costs no table building."""
        try:
            key = (params, rate, _detector_native)  # (tests swap the C module out)
            tab = _TABLES.get(key)
        except TypeError:  # a params object that is not hashable: built each time
            return cls.build(params, rate)
        if tab is None:
            tab = _TABLES[key] = cls.build(params, rate)
        return tab

    @classmethod
    def build(cls, params: DetectorParams, rate: int) -> "_Tables":
        half = params.half_block_samples(rate)
        ctx_n = 1 << max(3, int(round(np.log2(params.context_frame_ms * rate / 1000.0))))
        ctx_halves = int(np.ceil(params.context_reach_ms * rate / 1000.0 / half))
        omegas = 2 * np.pi * np.asarray(DTMF_HZ + GUARD_HZ) / rate
        tab = cls(
            half=half,
            window=2 * half,
            omegas=omegas,
            rot=np.exp(-1j * omegas * half),
            advance=omegas * half,
            min_amp=DBM0_PEAK * 10 ** (params.min_tone_dbm0 / 20.0),
            rel_peak_pow=10 ** (params.relative_peak_db / 10.0),
            normal_twist_db=params.normal_twist_db,
            reverse_twist_db=params.reverse_twist_db,
            freq_tol=params.freq_tolerance,
            freq_tol_mixed=params.freq_tolerance_mixed,
            full_fraction=params.full_tolerance_fraction,
            mixed_fraction=params.mixed_tolerance_fraction,
            pair_spread=params.pair_spread_max,
            octave_spread=params.octave_spread_max,
            octave_tone=params.octave_tone_max,
            steady_spread=params.steady_spread_max,
            ratio_spread=10 ** (params.pair_ratio_spread_db / 20.0),
            ratio_min_share=params.pair_ratio_min_share,
            ratio_cover=params.pair_ratio_min_cover,
            press_offset=params.mixed_press_offset_max,
            press_offset_share=params.mixed_press_share,
            pre_level=10 ** (params.pre_onset_level_db / 20.0),
            pre_n=int(round(params.pre_onset_ms * rate / 1000.0)),
            pre_gap=int(round(params.pre_onset_gap_ms * rate / 1000.0)),
            pre_min_share=params.pre_onset_min_share,
            pre_max_share=params.pre_onset_max_share,
            env_spread=10 ** (params.press_env_spread_db / 20.0),
            env_min_share=params.press_env_min_share,
            env_max_share=params.press_env_max_share,
            env_offset_min=params.press_env_offset_min,
            env_cover=params.press_env_cover,
            env_step=max(1, half // 3),
            glide_level=10 ** (params.glide_level_db / 20.0),
            glide_hold=10 ** (params.glide_hold_db / 20.0),
            glide_hop=int(round(params.glide_hop_ms * rate / 1000.0)),
            glide_segments=params.glide_segments,
            glide_offset=params.glide_offset_min,
            glide_step=params.glide_step,
            glide_k=int(round(params.glide_span / params.glide_step)),
            glide_max_share=params.glide_max_share,
            glide_screen=10 ** (params.glide_screen_db / 20.0),
            harmonic_guard=10 ** (-params.harmonic_guard_db / 20.0),
            harmonic_guard_mixed=10 ** (-params.harmonic_guard_mixed_db / 20.0),
            third_guard=10 ** (-params.third_guard_db / 20.0),
            third_guard_mixed=10 ** (-params.third_guard_mixed_db / 20.0),
            double_guard=10 ** (-params.double_guard_db / 20.0),
            double_skip=np.array([float(abs(2 * DTMF_HZ[d // 4] - DTMF_HZ[4 + d % 4])
                                        < params.double_guard_skip_bins * rate / (2 * half)) for d in range(16)]),
            clean_fraction=params.clean_fraction,
            min_fraction=params.min_tone_fraction,
            min_tone=int(round(params.min_tone_ms * rate / 1000.0)),
            min_tone_mixed=int(round(params.min_tone_mixed_ms * rate / 1000.0)),
            press_clean_share=params.press_clean_share,
            rate=float(rate),
            comb_ratio=10 ** (params.comb_guard_db / 20.0),
            comb_f0_min=params.comb_f0_min_hz,
            comb_max_share=params.comb_max_share,
            comb_f0_max=params.comb_f0_max_hz,
            comb_tol=params.comb_tolerance,
            comb_f_lo=params.comb_band_hz[0],
            comb_f_hi=min(params.comb_band_hz[1], 0.45 * rate),
            drift_max=params.segment_drift_max,
            drift_max_share=params.drift_max_share,
            nb_max_share=params.neighbour_max_share,
            nb_low=10 ** (params.octave_below_guard_db / 20.0),
            nb_third=10 ** (params.octave_below_third_db / 20.0),
            nb_row_third=10 ** (params.octave_below_row_third_db / 20.0),
            nb_high=10 ** (params.neighbour_guard_db / 20.0),
            ctx_persist=params.context_persist_max,
            ctx_max_share=params.context_max_share,
            ctx_always_share=params.context_always_share,
            ctx_offset_min=params.context_offset_min,
            ctx_span=int(round(params.context_ms * rate / 1000.0)),
            ctx_guard=int(round(params.context_guard_ms * rate / 1000.0)),
            ctx_n=ctx_n,
            ctx_klo=int(np.ceil(params.context_band_hz[0] * ctx_n / rate)),
            ctx_khi=int(np.floor(min(params.context_band_hz[1], 0.5 * rate) * ctx_n / rate)) + 1,
            ctx_smooth=max(1, int(round(params.context_smooth_hz * ctx_n / rate))),
            ctx_pairs=params.context_pairs,
            ctx_halves=ctx_halves,
            hist_halves=max(5, ctx_halves) if params.context_persist_max < float("inf") else 5,
            confirm_checked=params.confirm_checked_windows,
            end_misses=params.end_miss_windows,
            edge_min=params.edge_coverage_min,
            break_guard=int(round(params.break_guard_ms * rate / 1000.0)),
            long_on=1.0 if params.long_window else 0.0,
            long_rel_peak_pow=10 ** (params.long_relative_peak_db / 10.0),
            long_after_weak=1.0 if params.long_after_weak else 0.0,
            long_checked=1.0 if params.long_checked else 0.0,
            long_min_strong=float(params.long_min_strong),
            long_comb_ratio=10 ** (params.long_comb_guard_db / 20.0),
            long_comb_max_share=params.long_comb_max_share,
            long_ctx_max_share=params.long_context_max_share,
            long_guard_mixed=10 ** (-params.long_harmonic_guard_mixed_db / 20.0),
            long_in_ratio=1.0 if params.long_in_pair_ratio else 0.0,
            long_skip_mask=float(_harmonic_keys(params.long_harmonic_max_q, params.long_harmonic_tolerance)),
            td_row_peak_pow=10 ** (min(params.td_row_peak_db, params.relative_peak_db) / 10.0),
            td_min_fraction=min(params.td_min_tone_fraction, params.min_tone_fraction),
            td_min_strong=float(params.td_min_strong),
            td_freq_tol_mixed=max(params.td_freq_tolerance_mixed, params.freq_tolerance_mixed),
            td_comb_ratio=10 ** (params.td_comb_guard_db / 20.0),
            td_press_offset=params.td_press_offset_max,
            td_min_tone=int(round(params.td_min_tone_ms * rate / 1000.0)),
            td_min_density=params.td_min_density,
            td_guard_mixed=10 ** (-min(params.td_harmonic_guard_mixed_db, params.harmonic_guard_mixed_db) / 20.0),
            td_comb_max_share=params.td_comb_max_share,
            td_skip_mask=float(_harmonic_keys(params.td_harmonic_max_q, params.td_harmonic_tolerance)),
            rot2=np.exp(-1j * omegas * half) * np.exp(-1j * omegas * half),
            native_consts=None,
        )
        if _detector_native is not None and half <= _detector_native.MAX_HALF:
            tab.native_consts = tab._pack()
            tab.native_tables = _detector_native.frame_tables(tab.native_consts)
        return tab

    def _pack(self) -> np.ndarray:
        """The constants in native/detector.c's ``consts`` table, placed by name (the module's
        ``CONST_LAYOUT``: name -> (offset, length)); every name must be filled exactly once."""
        bins = np.empty(5 * self.omegas.size)
        _detector_native.bin_table(np.ascontiguousarray(self.omegas), self.half, bins)  # libm, as the kernel
        blocks = {"bins": bins, "omegas": self.omegas, "double_skip": self.double_skip, "rot": self.rot.view(np.float64),
                  "rot2": self.rot2.view(np.float64), "advance": self.advance,
                  "dbm0_peak": DBM0_PEAK}
        layout = _detector_native.CONST_LAYOUT
        consts = np.full(_detector_native.CONSTS, np.nan)
        filled = np.zeros(consts.size, dtype=int)
        for name, (offset, length) in layout.items():
            value = blocks[name] if name in blocks else getattr(self, name, None)
            if value is None:
                raise RuntimeError(f"native/detector.c wants constant {name!r}, which detector._Tables lacks")
            value = np.asarray(value, dtype=np.float64).ravel()
            if value.size != length:
                raise RuntimeError(f"native/detector.c's constant {name!r} has {length} values, "
                                   f"detector._Tables {value.size}")
            consts[offset:offset + length] = value
            filled[offset:offset + length] += 1
        if not np.all(filled == 1):
            raise RuntimeError("native/detector.c's CONST_LAYOUT does not cover its constants exactly once")
        return consts


_TABLES: dict = {}  # (params, rate, C module) -> _Tables (see _Tables.cached)


def _harmonic_keys(max_q: int, tol: float) -> int:
    """Bit r*4+c set for each key whose column/row frequency ratio lies within ``tol`` (relative) of a
    fraction p/q with 1 <= q <= ``max_q``: both tones are harmonics (q-th and p-th) of one fundamental,
    row/q, so a voice at that pitch can sound both at once (key A: 1633/697 is 7/3 + 0.43 %)."""
    mask = 0
    for key in range(16):
        ratio = DTMF_HZ[4 + key % 4] / DTMF_HZ[key // 4]
        for q in range(1, int(max_q) + 1):
            p = round(ratio * q)
            if p > 0 and abs(ratio / (p / q) - 1.0) <= tol:
                mask |= 1 << key
                break
    return mask


def _classify(tab: _Tables, win: np.ndarray, prev_first: np.ndarray, energy: np.ndarray):
    """Vectorised window tests.

    ``win``: complex [C, nw, 8] window DFTs; ``prev_first``: complex [C, 8], the
    window before the first one (for the phase test); ``energy``: [C, nw].
    Returns (digit index or -1 [C, nw], frequency-checked [C, nw], amplitude per
    bin [C, nw, 8], row level dBm0 [C, nw], col level dBm0 [C, nw], relative frequency
    error of the row tone [C, nw] and of the column tone [C, nw] (0 where not measured)).

    The cheap tests (level, energy share) run on every window; the rest only on
    the few windows that pass them, which keeps a bank of channels fast.
    """
    n = tab.window
    amp = np.abs(win[..., :8]) * (2.0 / n)  # peak amplitude of an on-bin sine (guard bins: candidates only)
    rows, cols = amp[..., :4], amp[..., 4:8]
    r = np.argmax(rows, axis=-1)
    c = np.argmax(cols, axis=-1)
    ar = np.take_along_axis(rows, r[..., None], -1)[..., 0]
    ac = np.take_along_axis(cols, c[..., None], -1)[..., 0]
    fraction = (ar * ar + ac * ac) * (n / 2.0) / np.maximum(energy, 1e-9)
    digit = np.full(r.shape, _NO_DIGIT)
    checked_out = np.zeros(r.shape, dtype=np.int8)  # 1: phase-checked hit; 2: long-window hit (_long_windows)
    lr_out = np.full(r.shape, -np.inf)
    lc_out = np.full(r.shape, -np.inf)
    relr_out = np.zeros(r.shape)
    relc_out = np.zeros(r.shape)
    share_out = np.zeros(r.shape)
    ci, wi = np.nonzero((ar >= tab.min_amp) & (ac >= tab.min_amp) & (fraction >= tab.td_min_fraction))
    if ci.size == 0:
        return digit, checked_out, amp, lr_out, lc_out, relr_out, relc_out, share_out
    r, c, ar, ac, fraction = r[ci, wi], c[ci, wi], ar[ci, wi], ac[ci, wi], fraction[ci, wi]
    rows_sq, cols_sq = rows[ci, wi] ** 2, cols[ci, wi] ** 2

    # purity: every other bin of the group at least relative_peak_db below the peak
    second_row = np.sort(rows_sq, axis=-1)[:, -2]
    second_col = np.sort(cols_sq, axis=-1)[:, -2]

    # frequency from the phase advance between this window and the previous one (overlap H)
    kc = c + 4
    w_r, w_c = win[ci, wi, r], win[ci, wi, kc]
    prev_w = wi - 1
    p_r = np.where(prev_w >= 0, win[ci, np.maximum(prev_w, 0), r], prev_first[ci, r])
    p_c = np.where(prev_w >= 0, win[ci, np.maximum(prev_w, 0), kc], prev_first[ci, kc])
    d_r = np.angle(w_r * np.conj(p_r)) - tab.advance[r]
    d_c = np.angle(w_c * np.conj(p_c)) - tab.advance[kc]
    d_r = (d_r + np.pi) % (2 * np.pi) - np.pi  # radians per H samples
    d_c = (d_c + np.pi) % (2 * np.pi) - np.pi
    rel_r = d_r / tab.half / tab.omegas[r]  # relative frequency error
    rel_c = d_c / tab.half / tab.omegas[kc]
    # the phase test is only meaningful when the previous window already held the tone
    checked = (np.abs(p_r) >= 0.5 * np.abs(w_r)) & (np.abs(p_c) >= 0.5 * np.abs(w_c))
    # an off-bin tone is attenuated by the window's Dirichlet kernel: undo it for the twist test and the
    # level, using the measured offset (only where it was measured and plausible)
    def dirichlet(dw):
        x = dw / tab.half  # radians per sample
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.abs(np.sin(n * x / 2) / (n * np.sin(x / 2)))
        return np.where(np.abs(x) < 1e-9, 1.0, np.clip(g, 0.5, 1.0))

    g_r, g_c = dirichlet(d_r), dirichlet(d_c)
    # Frequency tolerance by context: the full Q.24 tolerance only where the two tones carry nearly all
    # of the window's energy, the narrow one where other sound shares the window, linear in between.
    # The share counts each tone at its measured frequency (an off-bin tone loses up to ~2.5 dB in its
    # bin: a clean tone 2 % off must not look like a tone sharing its window).
    share = ((ar / g_r) ** 2 + (ac / g_c) ** 2) * (n / 2.0) / np.maximum(energy[ci, wi], 1e-9)
    ramp = np.clip((share - tab.mixed_fraction) / (tab.full_fraction - tab.mixed_fraction), 0.0, 1.0)
    tol = tab.freq_tol_mixed + (tab.freq_tol - tab.freq_tol_mixed) * ramp
    freq_ok = ~checked | ((np.abs(rel_r) <= tol) & (np.abs(rel_c) <= tol))

    measured = checked & freq_ok
    lr = 20 * np.log10(np.maximum(ar / np.where(measured, g_r, 1.0), 1e-9) / DBM0_PEAK)
    lc = 20 * np.log10(np.maximum(ac / np.where(measured, g_c, 1.0), 1e-9) / DBM0_PEAK)
    twist = lr - lc
    # harmonic guard: amplitude at row/2 against the row tone, at 2*col against the column tone
    sub = np.abs(win[ci, wi, 8 + r]) * (2.0 / n)
    over = np.abs(win[ci, wi, 12 + c]) * (2.0 / n)
    # (strict where the tones dominate the window; under speech, whose own energy sits in these bins, only
    # a component stronger than the tone itself counts — a musical note's fundamental usually is)
    clean = fraction >= tab.clean_fraction
    guard = np.where(clean, tab.harmonic_guard, tab.harmonic_guard_mixed)
    third = np.abs(win[ci, wi, 16 + r]) * (2.0 / n)  # a note's 3rd partial (issue 17)
    other_guards = (third < ar * np.where(clean, tab.third_guard, tab.third_guard_mixed))
    # a note's 2nd partial at twice the row frequency (not where the key's column tone leaks into that bin)
    double = np.abs(win[ci, wi, 20 + r]) * (2.0 / n)
    other_guards &= (tab.double_skip[r * 4 + c] > 0) | (double < ar * tab.double_guard)
    guard_ok = (sub < ar * guard) & (over < ac * guard) & other_guards
    td_guard = np.where(clean, tab.harmonic_guard, tab.td_guard_mixed)
    td_guard_ok = (sub < ar * td_guard) & (over < ac * td_guard) & other_guards

    rest_ok = ((cols_sq.max(-1) >= tab.rel_peak_pow * second_col)
               & (twist <= tab.normal_twist_db)
               & (twist >= -tab.reverse_twist_db))
    max_row = rows_sq.max(-1)
    shape_ok = (max_row >= tab.rel_peak_pow * second_row) & rest_ok & (fraction >= tab.min_fraction)
    ok = shape_ok & freq_ok & guard_ok
    # A window with the digit's shape that fails only the phase test or the harmonic guard is a *weak* hit
    # (code 16 + digit): it cannot start or confirm a digit, but it keeps a confirmed one going. A short
    # break (with or without a phase restart) spoils those tests in the windows around it, and must not
    # split the digit (Q.24).
    digit[ci, wi] = np.where(ok, r * 4 + c, np.where(shape_ok, _WEAK + r * 4 + c, _NO_DIGIT))
    checked_out[ci, wi] = checked & ok
    td_tol = tab.td_freq_tol_mixed + (tab.freq_tol - tab.td_freq_tol_mixed) * ramp
    td_freq_ok = (np.abs(rel_r) <= td_tol) & (np.abs(rel_c) <= td_tol)
    relaxed = _td_relaxed(tab, ok, checked & td_freq_ok & td_guard_ok & rest_ok & ((int(tab.td_skip_mask) >> (r * 4 + c)) & 1 == 0),
                          max_row, second_row)
    digit[ci[relaxed], wi[relaxed]] = (r * 4 + c)[relaxed]
    checked_out[ci[relaxed], wi[relaxed]] = 3
    lr_out[ci, wi] = lr
    lc_out[ci, wi] = lc
    relr_out[ci, wi] = np.where(checked, rel_r, 0.0)
    relc_out[ci, wi] = np.where(checked, rel_c, 0.0)
    share_out[ci, wi] = share
    return digit, checked_out, amp, lr_out, lc_out, relr_out, relc_out, share_out


def _td_relaxed(tab: _Tables, ok: np.ndarray, other_ok: np.ndarray, max_row: np.ndarray,
                second_row: np.ndarray) -> np.ndarray:
    """The relaxed window (DetectorParams.td_*) among the candidate windows: not a hit by the strict tests,
    phase-checked and passing every test but the row purity, the energy share and the frequency (``other_ok``:
    the frequency at its relaxed limit), and those two at theirs (the share: the candidate filter's)."""
    return ~ok & other_ok & (max_row >= tab.td_row_peak_pow * second_row)


def _td_refused(tab: _Tables, run: "_Run", w: int) -> bool:
    """Whether a press that needs its relaxed hits is not confirmed at window ``w`` (DetectorParams.td_*):
    too few strict hits, too few hits among its windows, or a tone's mean error over the press too far from
    nominal."""
    if run.checked - run.td_hits - run.long_hits < tab.td_min_strong:
        return True
    if run.hits < tab.td_min_density * (w - run.first_w + 1):
        return True
    return abs(run.s_r / run.checked) >= tab.td_press_offset or abs(run.s_c / run.checked) >= tab.td_press_offset


def _long_test(tab: _Tables, w2, wk, wp, e2: float, ek: float, prev_code: int):
    """The long window (DetectorParams.long_window) at window k: ``w2``, ``wk``, ``wp`` the complex DFTs (24
    bins, Python complex) of windows k-2, k and k-1, ``e2``, ``ek`` the energies of windows k-2 and k,
    ``prev_code`` window k-1's code. Returns None, or (key, row level, column level, row and column relative
    frequency errors, the long window's energy share) of a hit. Python scalars throughout, in the order of
    native/detector.c's long_test (the same decisions)."""
    n = tab.window
    rot2 = tab.rot2
    amp = [abs(w2[k] + complex(rot2[k]) * wk[k]) / n for k in range(8)]  # peak amplitude over 2n samples
    rows, cols = amp[:4], amp[4:]
    r = max(range(4), key=lambda i: (rows[i], -i))
    c = max(range(4), key=lambda i: (cols[i], -i))
    key = r * 4 + c
    if (int(tab.long_skip_mask) >> key) & 1:
        return None
    if prev_code != key and (prev_code != _WEAK + key or not tab.long_after_weak):
        return None
    ar, ac = rows[r], cols[c]
    if not (ar >= tab.min_amp and ac >= tab.min_amp):
        return None
    energy = e2 + ek
    frac = (ar * ar + ac * ac) * n / (energy if energy > 1e-9 else 1e-9)
    if not frac >= tab.min_fraction:
        return None
    rp = tab.long_rel_peak_pow
    if not (ar * ar >= rp * sorted(x * x for x in rows)[2] and ac * ac >= rp * sorted(x * x for x in cols)[2]):
        return None
    twist = 20 * math.log10(ar / ac)
    if twist > tab.normal_twist_db or twist < -tab.reverse_twist_db:
        return None
    # the phase test of the 12.75 ms windows k-1 and k at the key's bins (before the guard bins, as in C)
    kc = c + 4
    w_r, w_c, p_r, p_c = wk[r], wk[kc], wp[r], wp[kc]
    if not (abs(p_r) >= 0.5 * abs(w_r) and abs(p_c) >= 0.5 * abs(w_c)):
        return None
    z_r, z_c = w_r * p_r.conjugate(), w_c * p_c.conjugate()
    d_r = (math.atan2(z_r.imag, z_r.real) - float(tab.advance[r]) + math.pi) % (2 * math.pi) - math.pi
    d_c = (math.atan2(z_c.imag, z_c.real) - float(tab.advance[kc]) + math.pi) % (2 * math.pi) - math.pi
    rel_r = d_r / tab.half / float(tab.omegas[r])
    rel_c = d_c / tab.half / float(tab.omegas[kc])
    # the tolerance by context, as the 12.75 ms windows' (_classify's ramp), on the long window's share
    ramp = min(1.0, max(0.0, (frac - tab.mixed_fraction) / (tab.full_fraction - tab.mixed_fraction)))
    tol = tab.freq_tol_mixed + (tab.freq_tol - tab.freq_tol_mixed) * ramp
    if not (abs(rel_r) <= tol and abs(rel_c) <= tol):
        return None

    def guard(k: int) -> float:
        return abs(w2[k] + complex(rot2[k]) * wk[k]) / n

    clean = frac >= tab.clean_fraction
    g = tab.harmonic_guard if clean else tab.long_guard_mixed
    if not (guard(8 + r) < ar * g and guard(12 + c) < ac * g
            and guard(16 + r) < ar * (tab.third_guard if clean else tab.third_guard_mixed)
            and (tab.double_skip[key] > 0 or guard(20 + r) < ar * tab.double_guard)):
        return None
    return (key, 20 * math.log10(ar / DBM0_PEAK), 20 * math.log10(ac / DBM0_PEAK), rel_r, rel_c, frac)


def _long_windows(tab: _Tables, win: np.ndarray, wenergy: np.ndarray, last_win: np.ndarray, long_state: np.ndarray,
                  digit, checked, lr, lc, relr, relc, share) -> None:
    """The long window over this call's windows (DetectorParams.long_window), in place: a window that is
    not a hit becomes one when _long_test passes. ``long_state``: [C, 2K + 4] per channel, window k-2's DFT
    (K complex), the energies of the last two windows, the last window's code and how many windows the
    stream has had (capped at 2); updated here."""
    nch, nw, nb = win.shape
    if nw == 0:
        return
    last_win2 = long_state[:, :2 * nb].view(complex)
    e1, e2 = long_state[:, 2 * nb], long_state[:, 2 * nb + 1]
    prev_code, seen = long_state[:, 2 * nb + 2], long_state[:, 2 * nb + 3]
    # candidates: channels whose previous window names a key, or with any window naming one
    named = (digit >= 0).any(axis=1) | (prev_code >= 0)
    for ci in np.flatnonzero(named).tolist():
        code = int(prev_code[ci])
        s = int(seen[ci])
        for k in range(nw):
            d = int(digit[ci, k])
            if code >= 0 and not 0 <= d < _WEAK and s + k >= 2:
                if k >= 2:
                    w2, e_2 = win[ci, k - 2], float(wenergy[ci, k - 2])
                elif k == 1:
                    w2, e_2 = last_win[ci], float(e1[ci])
                else:
                    w2, e_2 = last_win2[ci], float(e2[ci])
                wp = win[ci, k - 1] if k >= 1 else last_win[ci]
                hit = _long_test(tab, w2.tolist(), win[ci, k].tolist(), wp.tolist(), e_2, float(wenergy[ci, k]),
                                 code)
                if hit is not None:
                    d, lr[ci, k], lc[ci, k], relr[ci, k], relc[ci, k], share[ci, k] = hit
                    digit[ci, k], checked[ci, k] = d, 2 if tab.long_checked > 0 else 0
            code = d
    # the state for the next call
    if nw >= 2:
        last_win2[:] = win[:, -2]
        e2[:] = wenergy[:, -2]
    else:
        last_win2[:] = last_win
        e2[:] = e1
    e1[:] = wenergy[:, -1]
    prev_code[:] = digit[:, -1]
    np.minimum(seen + nw, 2, out=seen)


def _lw_context(tab: _Tables, run: "_Run") -> bool:
    """Whether a press the long window helped gets the music-context test at any share and offset
    (DetectorParams.long_context_max_share; native/detector.c's lw_context)."""
    return run.long_hits > 0 and run.s_share < tab.long_ctx_max_share * run.hits


def _hann(n: int) -> tuple:
    """Sample indices 0..n-1 and the symmetric Hann window over them (the window the sub-window tests and the
    partials test share with native/detector.c)."""
    idx = np.arange(n)
    return idx, 0.5 - 0.5 * np.cos(2.0 * np.pi * idx / (n - 1))


def _as_int16(x: np.ndarray) -> np.ndarray:
    """Float samples rounded and clipped as int16 (the values native/detector.c's ring holds: to_int16)."""
    return np.clip(np.round(x), -32768, 32767)


def _bin_amp(xw: np.ndarray, f: float, rate: int, idx: np.ndarray) -> float:
    """|DFT| of the (already windowed) samples ``xw`` at ``f`` Hz; ``idx`` their indices 0..n-1."""
    return float(abs(np.sum(xw * np.exp(-1j * (2.0 * np.pi * f / rate) * idx))))


def _comb_ratio(tab: _Tables, seg: np.ndarray, fr: float, fc: float) -> float:
    """The partials test (issue 17), native/detector.c's comb_ratio: over ``seg`` (Hann window), for every
    fundamental f0 in [comb_f0_min, comb_f0_max] of which the row tone ``fr`` is the n-th harmonic and the
    column tone ``fc`` the m-th (within comb_tol), the mean amplitude of its 3 strongest other harmonics in
    [comb_f_lo, comb_f_hi]; the largest such mean over the weaker tone's amplitude (0.0 if none)."""
    size = seg.size
    idx, hw = _hann(size)
    xw = seg * hw

    def amp(f: float) -> float:
        return _bin_amp(xw, f, tab.rate, idx)

    weaker = min(amp(fr), amp(fc))
    best = 0.0
    n = 2
    while fr / n >= tab.comb_f0_min:
        f0 = fr / n
        m = round(fc / f0)
        if f0 <= tab.comb_f0_max and abs(fc / (m * f0) - 1.0) <= tab.comb_tol:
            f0 = (fr + fc) / (n + m)
            top = [0.0, 0.0, 0.0]
            count = 0
            k = 1
            while k * f0 <= tab.comb_f_hi:
                if k != n and k != m and k * f0 >= tab.comb_f_lo:
                    a = amp(k * f0)
                    count += 1
                    if a > top[2]:
                        top[2] = a
                        top.sort(reverse=True)
                k += 1
            if count >= 3:
                best = max(best, (top[0] + top[1] + top[2]) / 3.0)
        n += 1
    return best / max(weaker, 1e-9)


def _neighbours(tab: _Tables, seg: np.ndarray, fr: float, fc: float):
    """The harmonic-neighbours test (issue 17), native/detector.c's neighbours: the tones at ``fr`` and ``fc``
    (Hz) taken out of ``seg`` (each tone's complex amplitude from its Hann-windowed DFT), what remains
    (Hann window) at half the column frequency, at 1.5 times it, the largest of it at 1.5 times the row
    and the column and 2/3 and 4/3 of the column, at half the row frequency and at 1.5 times it, each over
    the weaker tone's amplitude."""
    size = seg.size
    idx, w = _hann(size)
    xw = seg * w
    res = seg.astype(np.float64, copy=True)
    mags = []
    for f in (fr, fc):
        om = 2.0 * np.pi * f / tab.rate
        c, s = np.cos(om * idx), np.sin(om * idx)
        re, im = float(np.sum(xw * c)), -float(np.sum(xw * s))  # sum w x exp(-j om n)
        mags.append(np.hypot(re, im))
        g = 2.0 / float(np.sum(w))
        res -= (g * re) * c - (g * im) * s  # Re(a exp(j om n)), a = g * (re + j im)
    weaker = max(min(mags), 1e-9)
    rw = res * w

    def amp(f: float) -> float:
        return _bin_amp(rw, f, tab.rate, idx)

    third, third_r = amp(1.5 * fc), amp(1.5 * fr)
    high = max(third_r, third, amp(fc * 2.0 / 3.0), amp(fc * 4.0 / 3.0))
    return amp(0.5 * fc) / weaker, third / weaker, high / weaker, amp(0.5 * fr) / weaker, third_r / weaker


def _log2_fast(p: np.ndarray) -> np.ndarray:
    """native/detector.c's log2_fast: log2 of ``p`` (> 0) from frexp and 4 terms of the atanh series of the
    mantissa in [sqrt(1/2), sqrt(2)) (within 1e-7 of log2; the same operations in the same order)."""
    m, e = np.frexp(p)
    m = 2.0 * m
    e = e - 1
    hi = m >= 1.4142135623730951
    m = np.where(hi, m * 0.5, m)
    e = np.where(hi, e + 1, e)
    t = (m - 1.0) / (m + 1.0)
    t2 = t * t
    return e + t * (2.8853900817779268 + t2 * (0.9617966939259756 + t2 * (0.5770780163555853
                                                                            + t2 * 0.4121985831111324)))


def _context_persistence(tab: _Tables, x: np.ndarray) -> float:
    """The music-context test (issue 17), native/detector.c's context_persistence: frames of ``tab.ctx_n``
    samples of ``x`` (Hann window, hop half a frame), each frame's log-magnitude spectrum over the band's
    bins with its mean over +-``ctx_smooth`` bins taken away, the mean Pearson correlation of every frame
    with the one half the frames later (0.0 for a flat pair); once the mean cannot reach ``ctx_persist``
    (even if every pair left correlated fully), that bound."""
    n = tab.ctx_n
    hop = n // 2
    nf = (x.size - n) // hop + 1 if x.size >= n else 0
    if nf < 2:
        return 0.0
    idx, hw = _hann(n)
    frames = np.stack([x[i * hop: i * hop + n] for i in range(nf)]) * hw
    spec = np.fft.rfft(frames, axis=1)[:, tab.ctx_klo: tab.ctx_khi]
    lg = 3.0102999566398120 * _log2_fast(np.maximum(spec.real ** 2 + spec.imag ** 2, 1e-6))  # 20 log10 |X|
    k = tab.ctx_smooth
    width = lg.shape[1] - 2 * k
    if width < 3:
        return 0.0
    cs = np.concatenate([np.zeros((nf, 1)), np.cumsum(lg, axis=1)], axis=1)
    d = lg[:, k: k + width] - (cs[:, 2 * k + 1: 2 * k + 1 + width] - cs[:, :width]) / (2 * k + 1)
    lag = nf // 2
    total = 0.0
    npairs = min(tab.ctx_pairs, nf - lag)
    for j in range(npairs):
        i = (j * (nf - lag - 1)) // (npairs - 1) if npairs > 1 else 0
        a = d[i] - d[i].mean()
        b = d[i + lag] - d[i + lag].mean()
        va, vb = float(np.dot(a, a)), float(np.dot(b, b))
        if va > 1e-6 * width and vb > 1e-6 * width:
            total += float(np.dot(a, b)) / np.sqrt(va * vb)
        bound = (total + (npairs - 1 - j)) / npairs  # decided already: the pairs left cannot reach the limit
        if j + 1 < npairs and bound < tab.ctx_persist:
            return bound
    return total / npairs


def _pre_onset_level(tab: _Tables, pre: np.ndarray, press: np.ndarray, fr: float, fc: float) -> float:
    """The pair-before-the-onset test (issue 17), native/detector.c's pre_onset_level: each tone's amplitude
    (Hann-windowed DFT at ``fr`` / ``fc`` Hz) over ``pre`` relative to the same over ``press`` (as long),
    the smaller of the two ratios."""
    n = pre.size
    idx, hw = _hann(n)

    def amp(x: np.ndarray, f: float) -> float:
        return _bin_amp(x * hw, f, tab.rate, idx)

    return min(amp(pre, fr) / max(amp(press, fr), 1e-9), amp(pre, fc) / max(amp(press, fc), 1e-9))


def _press_ratio_spread(tab: _Tables, x: np.ndarray, fr: float, fc: float) -> float:
    """The press's sub-window amplitude-ratio test (issue 17), native/detector.c's press_ratio_spread: each
    tone's amplitude (Hann-windowed DFT at ``fr`` / ``fc`` Hz) in windows of ``tab.half`` samples every
    ``tab.env_step`` over ``x``; over the windows whose two amplitudes sum to at least ``tab.env_cover`` of
    the largest sum, the largest row/column amplitude ratio over the smallest (1.0 with fewer than 2
    windows)."""
    n, step = tab.half, tab.env_step
    count = (x.size - n) // step + 1 if x.size >= n else 0
    if count < 2:
        return 1.0
    idx, hw = _hann(n)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[: (count - 1) * step + 1: step]
    ar = np.abs(frames @ (hw * np.exp(-1j * (2.0 * np.pi * fr / tab.rate) * idx)))
    ac = np.abs(frames @ (hw * np.exp(-1j * (2.0 * np.pi * fc / tab.rate) * idx)))
    pa = ar + ac
    keep = pa >= tab.env_cover * pa.max()
    q = ar[keep] / np.maximum(ac[keep], 1e-9)
    return float(q.max() / max(q.min(), 1e-300))


def _glided(tab: _Tables, pre: np.ndarray, press: np.ndarray, fr: float, fc: float) -> bool:
    """The slid-into-the-key test (issue 17), native/detector.c's glided: ``pre`` holds the samples before the
    onset, its segments of ``press.size`` samples end 0, hop, 2 hop ... (``tab.glide_hop``) before it (the
    latest first). For each tone, in each segment (Hann window) the strongest component on the grid
    ``f (1 + glide_step k)``, k in -glide_k .. glide_k (the first of equal ones), and its amplitude over the
    tone's over ``press`` at ``f``. True if for either tone every segment's component lies inside the grid
    on the same side of ``f``, no nearer to it than the later segment's, the latest at least
    ``glide_offset`` away and ``glide_level`` strong, the others ``glide_hold`` strong: a note that slid
    into the key."""
    n = press.size
    idx, hw = _hann(n)
    rel = tab.glide_step * np.arange(-tab.glide_k, tab.glide_k + 1)
    latest = pre[pre.size - n:] * hw
    for f in (fr, fc):
        ref = max(_bin_amp(press * hw, f, tab.rate, idx), 1e-9)
        if _bin_amp(latest, f, tab.rate, idx) < tab.glide_screen * ref:
            continue  # nothing near the tone just before the onset (DetectorParams.glide_screen_db)
        grid = np.exp(-1j * (2.0 * np.pi * f / tab.rate) * np.outer(1.0 + rel, idx))
        last = 0.0
        for j in range(tab.glide_segments):
            end = pre.size - j * tab.glide_hop
            a = np.abs(grid @ (pre[end - n: end] * hw))
            k = int(np.argmax(a))
            level = float(a[k]) / ref
            if not 0 < k < rel.size - 1:
                break
            if j == 0:
                if abs(rel[k]) < tab.glide_offset or level < tab.glide_level:
                    break
            elif rel[k] * last <= 0.0 or abs(rel[k]) < abs(last) or level < tab.glide_hold:
                break
            last = float(rel[k])
        else:
            return True
    return False


def _segment_drift(tab: _Tables, seg: np.ndarray, f_nom: float, rel: float) -> float:
    """The long-baseline frequency test (issue 17), native/detector.c's segment_drift: the phase of the tone
    at ``f_nom * (1 + rel)`` (its frequency averaged over the press's windows) over the first and the last
    ``L = len(seg) // 2`` samples of ``seg`` (Hann window each), ``D = len(seg) - L`` samples apart, gives
    the tone's frequency over the whole segment; returns how far it lies from ``rel``, relative to ``f_nom``."""
    size = seg.size
    half = size // 2
    lag = size - half
    idx, hw = _hann(half)
    om = 2.0 * np.pi * f_nom * (1.0 + rel) / tab.rate
    kern = hw * np.exp(-1j * om * idx)
    x1 = complex(np.sum(seg[:half] * kern))
    x2 = complex(np.sum(seg[lag:] * kern))
    d = float(np.angle(x2 * x1.conjugate())) - om * lag
    d = (d + np.pi) % (2 * np.pi) - np.pi
    return abs(d) / (2.0 * np.pi * f_nom / tab.rate * lag)


_NO_BREAKS = (-1, -2, -1, -2)


def neutral_windows(pos: int, half: int, guard: int) -> tuple:
    """The windows (inclusive index range) that hold a break before sample ``pos`` or one of the ``guard``
    samples after it: window w spans samples [w * half, (w + 2) * half).  native/detector.c computes the same."""
    return (pos - 2 * half) // half + 1, -(-(pos + guard) // half) - 1


class _Busy:
    """A non-blocking hold of a bank's lock: the state has one owner thread at a time (fails loudly)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: threading.Lock):
        self._lock = lock

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("detector in use by another thread (a DetectorBank or DtmfDetector has one owner "
                               "thread; give each thread its own)")

    def __exit__(self, *exc) -> None:
        self._lock.release()


class _Run:
    """The digit currently being tracked on one channel."""

    __slots__ = ("digit", "first_w", "a_prev", "a_first", "a_ref", "last_w", "a_last", "a_after",
                 "misses", "checked", "confirmed", "onset", "level", "rival", "r_lo", "r_hi", "c_lo", "c_hi",
                 "s_r", "s_c", "hits", "s_share", "ctx_onset", "ctx_value", "q_lo", "q_hi", "long_hits", "refused", "td_hits")

    def __init__(self, digit: int, w: int, a_prev: float, a_first: float, checked: bool, level: float,
                 rel_r: float, rel_c: float, share: float):
        self.digit = digit
        self.first_w = w
        self.a_prev = a_prev  # amplitude at this digit's bins in the window before the first hit
        self.a_first = a_first
        self.a_ref = a_first  # steady amplitude: the largest seen so far
        self.last_w = w
        self.a_last = a_first
        self.a_after = 0.0  # amplitude in the first window after the last hit
        self.misses = 0
        self.checked = int(checked != 0)
        self.long_hits = int(checked == 2)  # long-window hits among the checked windows (DetectorParams.long_*)
        self.td_hits = int(checked == 3)  # relaxed hits among them (DetectorParams.td_*)
        self.confirmed = False
        self.onset = 0
        self.level = level
        self.rival: Optional[_Run] = None  # another digit's run, started in the latest window
        # range of the frequency errors measured over the press (windows that passed the phase test)
        inf = float("inf")
        self.r_lo, self.r_hi, self.c_lo, self.c_hi = (rel_r, rel_r, rel_c, rel_c) if checked else (inf, -inf, inf, -inf)
        self.s_r, self.s_c = (rel_r, rel_c) if checked else (0.0, 0.0)  # their sums
        self.hits = 1  # windows that passed every test, and the sum of the tones' energy share in them
        self.s_share = share
        self.ctx_onset: Optional[int] = None  # the onset the music-context value was measured for
        self.ctx_value = 0.0
        # the row/column amplitude ratio's range over the hit windows after the first (see _step)
        self.q_lo = float("inf")
        self.q_hi = 0.0
        self.refused = False  # failed a test whose verdict holds for the rest of the press (press_env_*)

    def measured(self, rel_r: float, rel_c: float) -> None:
        self.s_r += rel_r
        self.s_c += rel_c
        self.wobble(rel_r, rel_c)

    def wobble(self, rel_r: float, rel_c: float) -> None:
        if rel_r < self.r_lo:
            self.r_lo = rel_r
        if rel_r > self.r_hi:
            self.r_hi = rel_r
        if rel_c < self.c_lo:
            self.c_lo = rel_c
        if rel_c > self.c_hi:
            self.c_hi = rel_c


class DetectorBank:
    """In-band DTMF detectors for ``channels`` synchronous streams of one rate.

    ``process(block)`` takes ``[channels, n]`` samples: one call covers every
    channel (with the native backend one C call does the kernel, the window
    tests and the state machine, releasing the GIL for large batches; otherwise
    vectorised numpy, and only channels with a candidate digit or a digit in
    progress enter the Python state machine).  Returns one list of
    :class:`DigitEvent` per channel.
    """

    def __init__(self, channels: int, rate: int = 8000, params: Optional[DetectorParams] = None):
        if int(channels) < 1:
            raise ValueError("channels must be >= 1")
        self.rate = check_rate(rate)
        self.params = params or DEFAULT_PARAMS
        self._tab = _Tables.cached(self.params, self.rate)
        self._half = self._tab.half
        self.channels = int(channels)
        self.reset()

    def reset(self) -> None:
        c, h, k = self.channels, self._tab.half, self._tab.omegas.size
        # One float64 row per channel holds the stream state both paths read and update, in
        # native/detector.c's layout; the names below are views into it.
        self._state = np.zeros((c, h + 4 * k + 1 + 8 + 2 * k + 4))
        self._pending = self._state[:, :h]  # samples that do not fill a half-block yet (first _n_pending)
        self._n_pending = 0
        self._half_index = 0  # index of the next half-block to complete (same on every channel)
        # samples of the last hist_halves half-blocks (numpy path's partials and music-context tests)
        self._hist = np.zeros((c, self._tab.hist_halves * h))
        self._seg = None
        self._seg_base = 0  # the stream position of _seg's buffer's first sample
        self._have_half = False  # a previous half-block exists (it starts the next window)
        self._last_half = self._state[:, h: h + 2 * k].view(complex)  # [C, K]: previous half-block
        self._last_half_energy = self._state[:, h + 2 * k]
        self._last_win = self._state[:, h + 2 * k + 1: h + 4 * k + 1].view(complex)  # window before the next
        self._last_amp = self._state[:, h + 4 * k + 1: h + 4 * k + 9]  # [C, 8]: that window's amplitudes
        self._long = self._state[:, h + 4 * k + 9:]  # the long window's state (see _long_windows)
        self._runs: List[Optional[_Run]] = [None] * c
        # per channel, the windows of the last two breaks (mark_break): (lo, hi, lo, hi), inclusive; empty ranges
        self._neutral: List[tuple] = [_NO_BREAKS] * c
        self._busy = threading.Lock()
        self._active = np.zeros(c, dtype=bool)  # mirror of "self._runs[ch] is not None"
        consts = self._tab.native_consts
        # the C window tests hold these arrays' buffers (one frame then exports only its samples' buffer)
        self._native = None if consts is None else _detector_native.Frames(self._state, consts, self._active,
                                                                           self._tab.native_tables)
        # With the native backend (chosen when the bank is created or reset) one C call per frame does
        # everything, state machine included (Frames.process); the numpy path below gives the same events.
        self._use_native = self._native is not None and goertzel.backend() == "native"

    def process(self, block) -> List[List[DigitEvent]]:
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"block must be [channels={self.channels}, samples]")
        if block.dtype == np.int16 or block.dtype.kind == "f":  # the common cases, without a per-row copy
            if block.dtype.kind == "f" and not np.all(np.isfinite(block)):
                raise AudioError("samples contain NaN or infinity")
            return self._advance(block if block.dtype is _INT16 else block.astype(np.float64, copy=False))
        return self._advance(np.stack([as_samples(row) for row in block]))  # as_samples' rules for the rest

    def flush(self) -> List[List[DigitEvent]]:
        """End the streams: pad with silence to close any digit still sounding, then reset."""
        tab = self._tab
        n_pending = self._native.n_pending if self._use_native else self._n_pending
        need = (tab.half - n_pending) % tab.half + (tab.end_misses + 3) * tab.half
        out = self._advance(np.zeros((self.channels, need)))
        self.reset()
        return out

    def mark_break(self, ch: int = 0, span: int = 0) -> None:
        """The next sample of channel ``ch`` does not follow the last one (audio was left out between them:
        a frame a jitter buffer made up, see :class:`dtmfguard.media.keyrelay.JitterLog`), or its next ``span``
        samples are not the sender's (a concealment given in their place).  The windows that hold the join,
        those samples or the ``DetectorParams.break_guard_ms`` after them never count as a miss (nor does a
        failed window's frequency count against a digit's steadiness); a window there that passes counts as
        any hit.  A key on both sides stays one key.  Calling it again at the same position changes nothing."""
        ch, span = int(ch), int(span)
        if not 0 <= ch < self.channels:
            raise ValueError(f"channel {ch} out of range (0..{self.channels - 1})")
        if span < 0:
            raise ValueError("span must be >= 0")
        if self._use_native:
            self._native.mark_break(ch, self._tab.break_guard + span)
            return
        rng = neutral_windows(self._half_index * self._half + self._n_pending, self._half,
                              self._tab.break_guard + span)
        old = self._neutral[ch]
        if rng != old[2:]:
            self._neutral[ch] = (old[2], old[3], *rng)

    # -- internals -------------------------------------------------------------------------------
    def _owner(self) -> "_Busy":
        """Held while the numpy path works on the stream state (the C path has its own flag): a second
        thread using the same bank meanwhile gets a RuntimeError, never interleaved state."""
        return _Busy(self._busy)

    def _advance(self, x: np.ndarray) -> List[List[DigitEvent]]:
        """``x``: float64 or int16 samples ``[channels, m]``, already validated."""
        out: List[List[DigitEvent]] = [[] for _ in range(self.channels)]
        if self._use_native:
            events = self._native.process(x)
            if events is not None:
                rate = self.rate
                for ch, d, start, end, level in events:
                    out[ch].append(DigitEvent(_DIGIT_OF[d], start, end, rate, level, "inband"))
            return out
        with self._owner():
            first_w, busy = self._windows(x, x.shape[-1])
            if busy is not None:
                self._state_machine(first_w, busy, out)
        return out

    def _windows(self, x: np.ndarray, m: int):
        """Kernel and window tests on ``m`` new samples per channel (``x`` may be 1-D for one channel).

        Returns the index of the first new window and, for the channels with a candidate window or a digit
        in progress, their window results as Python lists (``None`` if there are none: most frames).
        Kept short: it runs on every frame of every call (see the module docstring).
        """
        n_pending, have_half = self._n_pending, self._have_half
        total = n_pending + m
        nh = total // self._half
        # the samples of the last 4 half-blocks before this call and of the new ones, for the partials test
        # at confirmation (_comb_ratio): window k of this call ends 5 half-blocks after buf[(k + base) * H]
        new = np.asarray(x, dtype=np.float64)
        new = new[None, :] if new.ndim == 1 else new
        buf = np.concatenate([self._hist, self._pending[:, :n_pending], new], axis=1)
        nhist = self._tab.hist_halves
        if nh:
            self._hist = np.ascontiguousarray(buf[:, nh * self._half: (nh + nhist) * self._half])
        if self._native is not None and goertzel.backend() == "native":
            busy = self._native.run(x, n_pending, have_half)
        else:
            busy = self._windows_numpy(x, nh)
        first_w = self._half_index - have_half  # window w spans half-blocks w and w+1
        # window w's 5 half-blocks (w - 3 .. w + 1) start at buf[(w - that) * H]
        self._seg = (buf, self._half_index + 3 - nhist)
        self._seg_base = (self._half_index - nhist) * self._half
        self._half_index += nh
        self._n_pending = total % self._half
        if nh:
            self._have_half = True
        return first_w, busy

    def _state_machine(self, first_w: int, busy: list, out: List[List[DigitEvent]]) -> None:
        # The per-window loop touches no numpy scalars: the rows are Python lists.
        for ch, d_row, c_row, a_rows, lr_row, lc_row, rr_row, rc_row, sh_row in busy:
            was_active = self._runs[ch] is not None
            self._channel_windows(ch, first_w, d_row, c_row, a_rows, lr_row, lc_row, rr_row, rc_row, sh_row,
                                  out[ch])
            if (self._runs[ch] is not None) != was_active:  # a numpy store only when a digit starts or ends
                self._active[ch] = not was_active

    def _windows_numpy(self, x: np.ndarray, nh: int) -> Optional[list]:
        """The numpy path of ``_native.run`` (native/detector.c): the same state updates and results."""
        tab = self._tab
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        n_pending = self._n_pending
        data = np.concatenate([self._pending[:, :n_pending], x], axis=1) if n_pending else x
        self._pending[:, : data.shape[1] - nh * tab.half] = data[:, nh * tab.half:]
        if nh == 0:
            return None
        spec, energy = goertzel.halfblock_dft(data[:, : nh * tab.half], tab.half, tab.omegas)
        if self._have_half:
            halves = np.concatenate([self._last_half[:, None, :], spec], axis=1)
            henergy = np.concatenate([self._last_half_energy[:, None], energy], axis=1)
        else:
            halves, henergy = spec, energy
        self._last_half[:] = spec[:, -1]
        self._last_half_energy[:] = energy[:, -1]
        if halves.shape[1] < 2:
            return None
        win = halves[:, :-1] + tab.rot * halves[:, 1:]
        wenergy = henergy[:, :-1] + henergy[:, 1:]
        digit, checked, amp, lr, lc, relr, relc, share = _classify(tab, win, self._last_win, wenergy)
        if tab.long_on:
            _long_windows(tab, win, wenergy, self._last_win, self._long, digit, checked, lr, lc, relr, relc, share)
        amp = np.concatenate([self._last_amp[:, None], amp], axis=1)  # row 0: the window before the first
        self._last_win[:] = win[:, -1]
        self._last_amp[:] = amp[:, -1]
        strong = ((digit >= 0) & (digit < _WEAK)).any(axis=1)
        busy = np.flatnonzero(strong | self._active)
        if busy.size == 0:
            return None
        return list(zip(busy.tolist(), digit[busy].tolist(), checked[busy].tolist(), amp[busy].tolist(),
                        lr[busy].tolist(), lc[busy].tolist(), relr[busy].tolist(), relc[busy].tolist(),
                        share[busy].tolist()))

    def _channel_windows(self, ch: int, first_w: int, digit: list, checked: list, amp: list, lr: list,
                         lc: list, rel_r: list, rel_c: list, share: list, events: List[DigitEvent]) -> None:
        # amp[k + 1] is window k's amplitudes, amp[k] the window before it
        lo0, hi0, lo1, hi1 = self._neutral[ch]
        for k, d in enumerate(digit):
            if self._runs[ch] is None and not 0 <= d < _WEAK:
                continue
            if lo0 <= first_w + k <= hi0 or lo1 <= first_w + k <= hi1:
                # holds a break (mark_break): never a miss (nor a failed window's frequencies); the run's own
                # digit, or a digit starting one, counts as any hit, but its frequencies are not measured: a
                # join's phase jump, or a concealment merged into the real audio, can pass the window tests
                # 2 % off the sender's frequency (a soak's 100 ms key with half a frame concealed was lost so:
                # its steadiness failed for the rest of the press)
                run = self._runs[ch]
                if run is not None and d != run.digit:
                    continue
                measure = run is None
            else:
                measure = True
            self._step(ch, first_w + k, d, checked[k], amp[k + 1], amp[k], lr[k], lc[k], rel_r[k], rel_c[k],
                       share[k], events, measure)

    @staticmethod
    def _pair_amp(digit: int, amp8) -> float:
        return 0.5 * (amp8[digit // 4] + amp8[4 + digit % 4])

    def _step(self, ch: int, w: int, d: int, checked: bool, amp8, prev_amp8, lr: float, lc: float,
              rel_r: float, rel_c: float, share: float, events: List[DigitEvent], measure: bool = True) -> None:
        """Window ``w`` for channel ``ch``'s run; ``measure`` False: a hit's frequencies are not measured (a
        window that holds a break, see _channel_windows)."""
        tab = self._tab
        run = self._runs[ch]
        if run is not None:
            if d == _WEAK + run.digit and run.confirmed:  # keeps the digit alive; not a frequency check
                run.misses = 0
                run.last_w = w
                run.a_last = self._pair_amp(run.digit, amp8)
                return
            if d == run.digit:
                a = self._pair_amp(d, amp8)
                run.misses = 0
                run.last_w = w
                run.a_last = a
                run.hits += 1
                run.s_share += share
                if checked:
                    run.checked += 1
                    if checked == 2:
                        run.long_hits += 1
                    elif checked == 3:
                        run.td_hits += 1
                    if measure:
                        run.measured(rel_r, rel_c)
                if a > run.a_ref:
                    run.a_ref = a
                    run.level = 0.5 * (lr + lc)
                if not run.confirmed:
                    ac = amp8[4 + d % 4]
                    # the pair's amplitude ratio, in windows wholly inside the press (DetectorParams.pair_ratio_*)
                    if ac > 0.0 and a >= tab.ratio_cover * run.a_ref and (checked != 2 or tab.long_in_ratio):
                        q = amp8[d // 4] / ac
                        if q < run.q_lo:
                            run.q_lo = q
                        if q > run.q_hi:
                            run.q_hi = q
                    self._maybe_confirm(run, w, a, events, ch)
                return
            run.misses += 1
            if d == _WEAK + run.digit and not run.confirmed and (rel_r != 0.0 or rel_c != 0.0):
                run.wobble(rel_r, rel_c)  # a measured window that failed: its frequencies count for steadiness
            if run.misses == 1:
                run.a_after = self._pair_amp(run.digit, amp8)
            if 0 <= d < _WEAK and checked != 3:  # (a relaxed hit starts nothing: DetectorParams.td_*)
                # another digit takes over only if it holds for two windows in a row: one stray window (a
                # tone's own bins cancelling across a short break) is just a miss
                rival = run.rival
                if rival is not None and rival.digit == d and rival.first_w == w - 1:
                    self._finish(ch, events)
                    self._runs[ch] = rival
                    self._step(ch, w, d, checked, amp8, prev_amp8, lr, lc, rel_r, rel_c, share, events)
                    return
                run.rival = self._new_run(d, w, checked, amp8, prev_amp8, lr, lc, rel_r, rel_c, share)
            if run.misses >= tab.end_misses:
                self._finish(ch, events)
            run = self._runs[ch]
        if run is None and 0 <= d < _WEAK and checked != 3:
            self._runs[ch] = self._new_run(d, w, checked, amp8, prev_amp8, lr, lc, rel_r, rel_c, share)

    def _new_run(self, d: int, w: int, checked: bool, amp8, prev_amp8, lr: float, lc: float, rel_r: float,
                 rel_c: float, share: float) -> _Run:
        return _Run(d, w, self._pair_amp(d, prev_amp8), self._pair_amp(d, amp8), checked, 0.5 * (lr + lc), rel_r,
                    rel_c, share)

    def _onset(self, run: _Run) -> int:
        tab = self._tab
        c_prev = min(1.0, run.a_prev / run.a_ref)
        if c_prev >= tab.edge_min:  # the window before the first hit already held part of the tone
            return int(round((run.first_w - 1) * tab.half + (1.0 - c_prev) * tab.window))
        c_first = min(1.0, run.a_first / run.a_ref)
        return int(round(run.first_w * tab.half + (1.0 - c_first) * tab.window))

    def _end(self, run: _Run, onset: int, w: int, a: float, a_after: float = 0.0) -> int:
        tab = self._tab
        start_w = w * tab.half
        if onset > start_w:  # tone began inside this window and is still on at its end
            end = start_w + tab.window
        else:
            end = start_w + min(1.0, a / run.a_ref) * tab.window
        c_after = min(1.0, a_after / run.a_ref)
        if c_after >= tab.edge_min:  # the next window still held the tone's tail
            end = max(end, (w + 1) * tab.half + c_after * tab.window)
        return int(round(end))

    def _maybe_confirm(self, run: _Run, w: int, a: float, events: List[DigitEvent], ch: int) -> None:
        tab = self._tab
        if run.checked < tab.confirm_checked or run.refused:
            return
        if run.long_hits and run.checked - run.long_hits < tab.long_min_strong:
            return  # a press the long window made: enough 12.75 ms hits of its own (DetectorParams.long_min_strong)
        # a press that needs its relaxed hits to reach confirm_checked (DetectorParams.td_*)
        td = run.td_hits > 0 and run.checked - run.td_hits < tab.confirm_checked
        if td and _td_refused(tab, run, w):
            return
        # the pair's frequencies steady over the press so far (a keypad's are; a voice's or an
        # instrument's glide, vibrato or beat)
        if run.r_hi - run.r_lo > tab.steady_spread or run.c_hi - run.c_lo > tab.steady_spread:
            return
        # Both tones of a keypad come from one oscillator: their mean errors over the press do not pull
        # apart by more than Q.24's corner (-1.5 % / +1.5 %). Two musical notes a consonant interval apart
        # do: keys 2, 6 and C sit 4.3 % below an octave, so a flat row note and a sharp column note make one.
        spread = (run.s_c - run.s_r) / run.checked
        if abs(spread) > tab.pair_spread or (run.digit % 4 == run.digit // 4 + 1 and spread > tab.octave_spread):
            return
        if run.digit % 4 == run.digit // 4 + 1 and spread > 0 and (-run.s_r / run.checked > tab.octave_tone
                                                                   or run.s_c / run.checked > tab.octave_tone):
            return
        # One circuit, constant levels: where the tones carry nearly all the energy their amplitude ratio
        # does not move (two notes' envelopes do; DetectorParams.pair_ratio_spread_db)
        if run.s_share >= tab.ratio_min_share * run.hits and run.q_hi > run.q_lo * tab.ratio_spread:
            return
        # a press under other sound: its tones near nominal (DetectorParams.mixed_press_offset_max)
        if run.s_share < tab.press_offset_share * run.hits and (
                abs(run.s_r / run.checked) >= tab.press_offset or abs(run.s_c / run.checked) >= tab.press_offset):
            return
        onset = self._onset(run)
        # a press shared with other sound must last longer (see DetectorParams.press_clean_share)
        need = tab.min_tone if run.s_share >= tab.press_clean_share * run.hits else tab.min_tone_mixed
        if td and need < tab.td_min_tone:
            need = tab.td_min_tone
        if self._end(run, onset, w, a) - onset >= need:
            # Partials: in a press shared with other sound the two tones must not both be harmonics of one
            # fundamental with other strong harmonics beside them (a voice or an instrument), over the
            # last 5 half-blocks (32 ms)
            buf, w0 = self._seg
            h = tab.half
            # window w's last 5 half-blocks, as int16 (native/detector.c's ring keeps them so: to_int16)
            seg = _as_int16(buf[ch, (w - w0) * h: (w - w0 + 5) * h])
            mr, mc = run.s_r / run.checked, run.s_c / run.checked
            fr_nom, fc_nom = DTMF_HZ[run.digit // 4], DTMF_HZ[4 + run.digit % 4]
            # Long baseline: each tone's frequency over the whole 32 ms (first half against last half) must
            # match the mean of the per-window estimates (a keypad's tones are steady; two partials beating
            # in one bin, or a note gliding between windows, are not). Not across a break (mark_break): the
            # join's phase jump says nothing of the tones.
            if (tab.drift_max < float("inf") and run.s_share < tab.drift_max_share * run.hits
                    and not self._seg_broken(ch, w)) and (
                    _segment_drift(tab, seg, fr_nom, mr) > tab.drift_max
                    or _segment_drift(tab, seg, fc_nom, mc) > tab.drift_max):
                return
            fr = fr_nom * (1.0 + mr)
            fc = fc_nom * (1.0 + mc)
            if ((tab.nb_low < float("inf") or tab.nb_high < float("inf"))
                    and run.s_share < tab.nb_max_share * run.hits):
                low, third, high, low_r, third_r = _neighbours(tab, seg, fr, fc)
                if ((low >= tab.nb_low and third >= tab.nb_third) or high >= tab.nb_high
                        or (low_r >= tab.nb_low and third_r >= tab.nb_row_third)):
                    return
            # the same test, stricter, for a press the long window helped (DetectorParams.long_comb_*) and for
            # one with relaxed hits (DetectorParams.td_comb_*): one partials value for all three, measured once
            comb = None
            for applies, limit, max_share in ((True, tab.comb_ratio, tab.comb_max_share),
                                              (run.long_hits > 0, tab.long_comb_ratio, tab.long_comb_max_share),
                                              (td, tab.td_comb_ratio, tab.td_comb_max_share)):
                if applies and limit < float("inf") and run.s_share < max_share * run.hits:
                    if comb is None:
                        comb = _comb_ratio(tab, seg, fr, fc)
                    if comb >= limit:
                        return
            # Music context: the sound before the press holds its spectral fine structure (held notes)
            if tab.ctx_persist < float("inf") and (run.s_share < tab.ctx_max_share * run.hits and (
                    run.s_share < tab.ctx_always_share * run.hits or abs(mr) >= tab.ctx_offset_min
                    or abs(mc) >= tab.ctx_offset_min) or _lw_context(tab, run)):
                lo = onset - tab.ctx_span
                if lo >= (w + 2 - tab.ctx_halves) * h and tab.ctx_guard < tab.ctx_span:
                    if run.ctx_onset != onset:  # measured once per onset estimate (the same samples)
                        base = self._seg_base
                        ctx = _as_int16(buf[ch, lo - base: onset - tab.ctx_guard - base])
                        run.ctx_value = _context_persistence(tab, ctx)  # (as int16: native/detector.c's ring)
                        run.ctx_onset = onset
                    if run.ctx_value >= tab.ctx_persist:
                        return
            # The pair before the onset: were both tones already there? (DetectorParams.pre_onset_*)
            if (tab.pre_level < float("inf") and tab.ctx_persist < float("inf")
                    and tab.pre_min_share * run.hits <= run.s_share < tab.pre_max_share * run.hits):
                lo = onset - tab.pre_gap - tab.pre_n
                plo = (w + 2) * h - tab.pre_n
                if lo >= (w + 2 - tab.ctx_halves) * h and plo >= onset:
                    base = self._seg_base
                    pre = _as_int16(buf[ch, lo - base: lo - base + tab.pre_n])
                    press = _as_int16(buf[ch, plo - base: plo - base + tab.pre_n])
                    if _pre_onset_level(tab, pre, press, fr, fc) >= tab.pre_level:
                        return
            # A tone that slid into the key (DetectorParams.glide_*)
            if (tab.glide_level < float("inf") and tab.ctx_persist < float("inf")
                    and run.s_share < tab.glide_max_share * run.hits):
                lo = onset - tab.pre_n - (tab.glide_segments - 1) * tab.glide_hop
                plo = (w + 2) * h - tab.pre_n
                if lo >= (w + 2 - tab.ctx_halves) * h and plo >= onset:
                    base = self._seg_base
                    pre = _as_int16(buf[ch, lo - base: onset - base])
                    press = _as_int16(buf[ch, plo - base: plo - base + tab.pre_n])
                    if _glided(tab, pre, press, fr, fc):
                        run.refused = True  # the note was there before the onset: not judged again
                        return
            # The pair's amplitude ratio over the press at sub-window resolution (DetectorParams.press_env_*)
            if (tab.env_spread < float("inf") and tab.ctx_persist < float("inf")
                    and tab.env_min_share * run.hits <= run.s_share < tab.env_max_share * run.hits
                    and (abs(mr) >= tab.env_offset_min or abs(mc) >= tab.env_offset_min)
                    and not self._seg_broken(ch, w)):
                hi = (w + 2) * h
                lo = max(onset, (w + 2 - tab.ctx_halves) * h, 0)
                if hi - lo >= tab.half + tab.env_step:
                    base = self._seg_base
                    x = _as_int16(buf[ch, lo - base: hi - base])
                    if _press_ratio_spread(tab, x, fr, fc) >= tab.env_spread:
                        run.refused = True  # two envelopes do not become one: not judged again
                        return
            run.confirmed = True
            run.onset = onset
            events.append(DigitEvent(_DIGIT_OF[run.digit], onset, None, self.rate, run.level, "inband"))

    def _seg_broken(self, ch: int, w: int) -> bool:
        """Whether window ``w``'s last 5 half-blocks (windows w - 3 .. w) hold a break (mark_break)."""
        lo0, hi0, lo1, hi1 = self._neutral[ch]
        return (lo0 <= w and hi0 >= w - 3) or (lo1 <= w and hi1 >= w - 3)

    def _finish(self, ch: int, events: List[DigitEvent]) -> None:
        run = self._runs[ch]
        self._runs[ch] = None
        if run is None or not run.confirmed:
            return
        end = self._end(run, run.onset, run.last_w, run.a_last, run.a_after)
        events.append(DigitEvent(_DIGIT_OF[run.digit], run.onset, max(end, run.onset), self.rate, run.level,
                                 "inband"))


class DtmfDetector:
    """Streaming detector for one channel.

    ``process(chunk)`` returns the events started or completed in that chunk:
    a start event (``end is None``) once a digit is confirmed, and one complete
    event when it ends.  ``flush()`` ends the stream.  Sample positions count
    from the first sample ever given.
    """

    def __init__(self, rate: int = 8000, params: Optional[DetectorParams] = None):
        self._bank = DetectorBank(1, rate, params)
        self.rate = self._bank.rate
        self.params = self._bank.params
        self._bind()

    def _bind(self) -> None:
        """With the native backend ``process`` is the C ``Frames.events`` itself (no Python frame per call:
        a live call's 20 ms int16 frame costs one C call); other input goes through ``_process``."""
        bank = self._bank
        self._fast = bank._native.process if bank._use_native else None
        if self._fast is not None:
            rate = self.rate

            def factory(d, start, end, level):
                return DigitEvent(_DIGIT_OF[d], start, end, rate, level, "inband")

            bank._native.bind(factory, self._process, np.ndarray)
            self.process = bank._native.events
        else:
            self.__dict__.pop("process", None)

    def process(self, chunk) -> List[DigitEvent]:
        """The events started or completed in ``chunk`` (see the class docstring)."""
        return self._process(chunk)

    def _process(self, chunk) -> List[DigitEvent]:
        if type(chunk) is np.ndarray and chunk.dtype is _INT16 and chunk.ndim == 1:
            x = chunk  # a call's frames: int16 is taken as it is (as_samples' rule), without a float copy
        else:
            x = as_samples(chunk)
        fast = self._fast
        if fast is not None:  # the native backend: one C call (see DetectorBank._advance)
            events = fast(x)
            if events is None:
                return []
            rate = self.rate
            return [DigitEvent(_DIGIT_OF[d], start, end, rate, level, "inband") for _ch, d, start, end, level in events]
        with self._bank._owner():
            first_w, busy = self._bank._windows(x, x.size)
            if busy is None:  # no candidate and no digit in progress: most frames
                return []
            out: List[List[DigitEvent]] = [[]]
            self._bank._state_machine(first_w, busy, out)
        return out[0]

    def mark_break(self, span: int = 0) -> None:
        """The next chunk does not follow the last one, or its first ``span`` samples are not the sender's
        (see :meth:`DetectorBank.mark_break`)."""
        self._bank.mark_break(0, span)

    def flush(self) -> List[DigitEvent]:
        out = self._bank.flush()[0]  # ends with a reset: a new C state object
        self._bind()
        return out

    def reset(self) -> None:
        self._bank.reset()
        self._bind()


def detect(samples, rate: int = 8000, params: Optional[DetectorParams] = None) -> List[DigitEvent]:
    """Detect every DTMF digit in ``samples`` (int16 or float in [-1, 1]); complete events only."""
    det = DtmfDetector(rate, params)
    events = det.process(samples) + det.flush()
    return [e for e in events if e.complete]
