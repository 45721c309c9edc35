# SPDX-License-Identifier: GPL-2.0-or-later
"""Streaming DTMF masker: the agent hears a flat tone where the customer pressed keys.

Why: PCI SSC "Protecting Telephone-Based Payment Card Data" (2018) keeps the
agent's desktop and call recordings out of PCI DSS scope only if no card data
reaches them, and PCI DSS v4.0 req. 3.3.1 forbids keeping the verification code
in recordings.  Maskers driven by a Q.24 receiver react 25-40 ms after a tone
starts (two 12.75 ms Goertzel blocks) and leak its onset; an attacker names a
digit from 2-5 ms of tone (REFERENCES.md "Measured here", :mod:`adversary`).

How this one leaks nothing, and leaves speech alone (issue 12):

* a **delay line** of ``lookahead_ms`` (default 20) sits between customer and agent, and every decision
  is taken before the samples it touches leave it: a sample is emitted only after the ``lookahead_ms``
  that follow it have been examined;
* a **screen** (not the strict Q.24 receiver of :mod:`dtmfguard.dsp.detector`, which decides which digits are
  *captured*): every 1 ms it fits all 16 key pairs by least squares to the windows the attacker of
  :mod:`dtmfguard.testkit.adversary` uses (2, 4, 8, 16 ms; per-1 ms-block correlations summed into windows) and
  applies the attacker's own rule, so whatever it could name in the output is seen here first; a 2 or 4 ms window
  that rule just misses is judged again as the agent hears it after a µ-law and an A-law round trip (G.711's
  noise lifts a near miss over the rule), and counts, with no press open, if its pair is one keypad oscillator;
* a **confirmed press** (that rule on an 8 or 16 ms window, or on every hop for 8 ms) gets the flat mask,
  from the first sample carrying its pair (a walk back in 2 ms windows, minus a guard, the cross-fade
  completing before it) until its pair has lost three quarters of its energy in the 16 ms window: one
  span per press, no holes when a voice starts over it;
* a **suspect** (a short window the attacker would name, kept only if the 16 ms window centred on it
  still carries the pair or it is named 3 times within 8 ms, or it fits its pair exactly (a tone alone in a gap of
  the speech over it), or a press of its pair ended just before and its tones are one keypad oscillator, or 48 ms
  at the pair's measured frequencies carry it (a key held under louder speech); or the same pair carrying half the 16 ms
  window for 4 ms without the harmonics of a note or a voice) gets a **band notch**: the projection on
  the 8 DTMF frequencies is removed (overlap-added 8 ms blocks, ramped), which removes a tone's energy
  while speech passes (-0.6 dB).  It is key-independent.  A short-window suspect's notch ends a guard
  after the last hop that named its pair.  A weak suspect whose pair carries less than
  ``weak_notch_fraction`` of the 16 ms window stays *silent* (tracked, audio untouched) until a 2-8 ms
  window passes the attacker's rule for its pair with a margin for G.711 noise, then it is notched from its
  walked-back onset.  A suspect held for ``persist_ms`` becomes a press if its two tones are off nominal
  by the same share (one keypad oscillator; a voice's or a note's partials are not); one that fails that
  test loses its notch and goes silent (``oscillator_release``: a held note is not notched for as long as
  it lasts), notched again as soon as a short window names its pair.
  Thresholds: :class:`dtmfguard.dsp.params.MaskerParams`;
* **made-up audio** (a jitter buffer's concealment or a join after dropped frames, announced by the media
  pipeline with :meth:`Masker.conceal` before it goes in): a press being masked is not closed while a
  screen window overlaps it, and it is masked flat when anything was being treated just before it or a
  window over it names or weakly holds a pair (a concealment repeats a tone as bursts with another phase,
  which the short-window tests would take for speech);
* masked spans start on a 1 ms grid and last a whole number of
  ``quantum_ms``, and the mask is a fixed signal indexed by absolute stream
  position, so its level, spectrum and duration do not depend on the key.
  ``hide_timing=True`` holds the mask ``hold_ms`` after every press so the
  number and rhythm of presses is hidden too.

Output is exactly the input delayed by :attr:`Masker.delay_samples`, except in
masked spans, their fades and notched spans.  Every decision is taken on a fixed 1 ms grid of
absolute sample positions and may only touch samples that even a 1-sample
chunking has not yet emitted, so any chunking gives bit-identical output.

Speed (issues 6 and 12): a live call runs this once per 20 ms frame with cold caches, where every numpy
call costs several µs, so when the optional C module ``native/masker.c`` was built and
``DTMFGUARD_BACKEND`` is not ``numpy``, an int16 frame is one call of ``Screen.run`` on buffers bound at
:meth:`reset` (delay line, state vector, mask table, span lists, screen outputs): it appends the frame to
the delay line, screens its hops (block correlations cached between frames, windows summed as a binary
tree, fits skipped where a bound shows no test can pass), takes every per-hop step that only updates
counters (nothing to track, a steady press, a miss inside a press), and writes the output: the delayed
input, the mask, or fades and band notches (``Output.render``: :meth:`_apply` in C).  Only a hop that
opens or closes a press or a suspect, or a pending suspect or harmonic test, continues here in Python
(:meth:`_step`, whose walk-back :meth:`_onset` is ``Output.onset`` in C); then ``Screen.finish`` writes the
output.  The span lists are rebuilt only when Python changed a span, and the state vector packed only after
Python steps.  Both backends take every sum in one fixed order (the notch projection sample by sample and
term by term, not BLAS), so the C path gives the numpy path's samples bit for bit
(``tests/test_masker_native.py``); its constants come from :class:`MaskerParams` and the masker's options by
name (:meth:`Masker.native_constants`, :meth:`Masker.native_output_constants`).

Fail closed (issue 4, project rules): :meth:`Masker.process` never raises.  If
anything inside fails, that chunk's output is the mask (or silence if even the
mask cannot be made), everything still buffered is covered, and ``errors`` is
incremented.  Digits never appear in logs or exceptions here.
"""
from __future__ import annotations

import array
import itertools
import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple

import numpy as np

from . import g711, goertzel, pairfit
from .audio import check_rate
from .levels import dbm0_to_peak
from .params import COL_HZ, DEFAULT_MASKER_PARAMS, DTMF_HZ, ROW_HZ, MaskerParams

try:  # optional C screen (native/masker.c); the numpy path below gives the same output
    from . import _masker_native  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the build
    _masker_native = None

__all__ = ["Masker", "MaskedSpan", "mask_samples", "MASKS", "DEFAULT_LOOKAHEAD_MS"]

log = logging.getLogger(__name__)

from .masks import DEFAULT_LOOKAHEAD_MS, LOOKAHEAD_RANGE_MS, MASKS  # noqa: E402  (names and default, one home: dtmfguard.dsp.masks)

_NOISE_BLOCK = 4096
_INT16 = np.dtype(np.int16)
_NSTATE = 21  # Screen.run's state vector (native/masker.c)
_NO_DUE = 1 << 62
_BATCH = 500  # hops screened per call
_SPAN_CAP = 64  # spans (and notches) the C output reads; more (never on a call): the numpy output
_APPLY_PIECE = 1 << 15  # output samples weighed and notched at a time
# spans that say nothing about the audio around them: a signalled key's cover, the payment profile's notch
_UNTREATED = ("cover", "payment")
_OPEN = (1 << 63) - 1  # an open span's end in the C span lists
# per (screen windows, hop, rate): constants every masker with those options derives the same way (costly
# linear algebra, ~2/3 of building a masker); the arrays are read-only
_QUIET_SV2_CACHE: dict = {}
#: per (rate, window length): Hann-windowed cos and sin of each DTMF frequency times (1 + g) for g on
#: ``_OFFSET_GRID``, two [8, grid, n] tables (shared by every masker: the offset rules' frequency measure); and per
#: ("bands", rate, window length): the band DFT of :meth:`Masker._band_table`
_OFFSET_TABLES: dict = {}
_OFFSET_GRID = np.round(np.arange(-0.06, 0.06 + 1e-9, 0.0025), 6)
_BOUND_GAIN_CACHE: dict = {}


@dataclass(frozen=True)
class MaskedSpan:
    """A masked input-stream span [start, end) in samples (never says which key, or whether it was one)."""

    start: int
    end: int
    source: str  # "inband", "cover", "error" ("notch", "payment", "burst": band notches only)


class _Span:
    __slots__ = ("start", "end", "source", "cut", "keep")

    def __init__(self, start: int, end: Optional[int], source: str):
        self.start = start
        self.end = end  # None: open
        self.source = source
        self.cut = 0  # a notch ended this much sooner by ``notch_tail_ms``: it joins the next as before
        self.keep = 0  # ``notch_rejoin_keeps_end``: the end a reopened notch had (it never ends before it again)


def _min_but(a: np.ndarray, i: int) -> float:
    """The smallest of ``a`` (1-D) but its element ``i`` (the same as deleting it, at a fraction of the cost)."""
    b = a.copy()
    b[i] = np.inf
    return float(b.min())


def _max_but(a: np.ndarray, i: int) -> float:
    """The largest of ``a`` (1-D) but its element ``i`` (as :func:`_min_but`)."""
    b = a.copy()
    b[i] = -np.inf
    return float(b.max())


def _g711_round_trip(x: np.ndarray, law: str) -> np.ndarray:
    """``x`` (any shape) encoded with µ-law (``"ulaw"``) or A-law and decoded again, as float64: what the agent hears."""
    return g711.round_trip(x, law)


def _best_pair_fit(cr, sr, e, quad, rows, cols, hs, ginv):
    """The screen's pair fit at every hop (numpy path; the C screen's ``best_two`` is the same): from the
    windows' cos/sin correlations ``cr``/``sr`` [8, nh] and energies ``e`` [nh], the best of the 16 pairs, its
    residual and the second smallest residual (numpy's argmin and partition), and the best pair's row and
    column amplitudes squared, its amplitudes G^-1 v [nh, 4] and every pair's explained energy [16, nh]."""
    t_cc, t_ss, t_cs = cr * cr, sr * sr, cr * sr
    terms = (t_cc[rows], t_ss[rows], t_cc[cols], t_ss[cols], t_cs[rows], t_cs[cols],
             cr[rows] * cr[cols], cr[rows] * sr[cols], sr[rows] * cr[cols], sr[rows] * sr[cols])
    ex = quad[0][:, None] * terms[0]  # [16, nh]: energy each pair explains, v^T G^-1 v
    for t in range(1, len(terms)):
        ex = ex + quad[t][:, None] * terms[t]
    resid = np.maximum(e[None, :] - ex, 0.0)
    best = np.argmin(resid, axis=0)
    r1 = resid[best, hs]
    r2 = np.partition(resid, 1, axis=0)[1]
    v = (cr[rows[best], hs], sr[rows[best], hs], cr[cols[best], hs], sr[cols[best], hs])
    g = ginv[best]  # [nh, 4, 4]
    coef = np.stack([((g[:, i, 0] * v[0] + g[:, i, 1] * v[1]) + g[:, i, 2] * v[2]) + g[:, i, 3] * v[3]
                     for i in range(4)], axis=1)  # [nh, 4]: the best pair's amplitudes
    ar2 = coef[:, 0] * coef[:, 0] + coef[:, 1] * coef[:, 1]
    ac2 = coef[:, 2] * coef[:, 2] + coef[:, 3] * coef[:, 3]
    return best, r1, r2, ar2, ac2, coef, ex


class Masker:
    """Customer audio in, agent audio out: same length, delayed, DTMF tones replaced by a mask.

    Parameters (times in ms, levels per tone in dBm0):

    ``lookahead_ms``   fixed delay; the detector must find a tone within it.
    ``mask``           ``"tone"`` (default), ``"silence"`` or ``"noise"`` (comfort noise).
    ``mask_hz``        frequency of the mask tone; one tone is never a DTMF pair (Q.23).
    ``mask_dbm0``      mask tone level; ``noise_dbm0`` comfort-noise level.
    ``fade_ms``        raised-cosine cross-fade into and out of the mask (no clicks).
    ``guard_ms``       extra margin before the estimated onset and after the detected end.
    ``quantum_ms``     masked spans last a whole number of quanta (duration hides detector jitter).
    ``hide_timing``    hold the mask ``hold_ms`` (default 2000 with ``hide_timing``) after each press.
    ``params``         screening thresholds (:class:`dtmfguard.dsp.params.MaskerParams`).
    ``dtype``          output samples: ``"int16"`` (default) or ``"float64"`` (in [-1, 1]), fixed for the
                       stream whatever each chunk's type (a call's audio never changes type mid-stream).
    """

    def __init__(
        self,
        rate: int = 8000,
        lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
        mask: str = "tone",
        *,
        mask_hz: float = 400.0,
        mask_dbm0: float = -20.0,
        noise_dbm0: float = -50.0,
        fade_ms: float = 4.0,
        guard_ms: float = 2.0,
        quantum_ms: float = 20.0,
        hide_timing: bool = False,
        hold_ms: Optional[float] = None,
        params: MaskerParams = DEFAULT_MASKER_PARAMS,
        seed: int = 0,
        dtype="int16",
    ):
        self.rate = check_rate(rate)
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {', '.join(MASKS)}, got {mask!r}")
        if not LOOKAHEAD_RANGE_MS[0] <= lookahead_ms <= LOOKAHEAD_RANGE_MS[1]:
            raise ValueError("lookahead_ms must be between %g and %g" % LOOKAHEAD_RANGE_MS)
        if not 0 < mask_hz < self.rate / 2:
            raise ValueError("mask_hz must be between 0 and half the sample rate")
        if any(_near_dtmf(mask_hz)):
            raise ValueError("mask_hz must be at least 50 Hz away from every DTMF frequency (Q.23)")
        for name, value in (("fade_ms", fade_ms), ("guard_ms", guard_ms)):
            if not 0 <= value <= 100:
                raise ValueError(f"{name} must be between 0 and 100")
        if not 1 <= quantum_ms <= 1000:
            raise ValueError("quantum_ms must be between 1 and 1000")
        if not isinstance(params, MaskerParams):
            raise TypeError("params must be a MaskerParams")
        try:
            out_dtype = np.dtype(dtype) if dtype is not None else None  # np.dtype(None) is float64
        except TypeError:
            out_dtype = None
        if out_dtype is None or out_dtype not in (np.dtype(np.int16), np.dtype(np.float64)):
            raise ValueError("dtype must be int16 or float64")
        #: output sample type, fixed for the stream: int16, or float64 in [-1, 1]
        self._out_dtype = out_dtype
        self.mask = mask
        self.mask_hz = float(mask_hz)
        self.mask_dbm0 = float(mask_dbm0)
        self.noise_dbm0 = float(noise_dbm0)
        self.lookahead_ms = float(lookahead_ms)
        self.hide_timing = bool(hide_timing)
        ms = self.rate / 1000.0
        self.delay_samples = int(round(lookahead_ms * ms))
        self._hop = max(1, int(round(ms)))  # decision grid: 1 ms
        self._fade = int(round(fade_ms * ms))
        self._guard = int(round(guard_ms * ms))
        self._quantum = max(self._hop, int(round(quantum_ms * ms)))
        hold = (2000.0 if hide_timing else 0.0) if hold_ms is None else float(hold_ms)
        if not 0 <= hold <= 60000:
            raise ValueError("hold_ms must be between 0 and 60000")
        self._hold = int(round(hold * ms))
        self.params = params
        self._short = 2 * self._hop  # 2 ms onset windows ...
        self._short_step = max(1, self._hop // 2)  # ... every 0.5 ms
        self._setup_screen(params)
        self._hold_ratio = float(params.hold_ratio)
        self._guard_db = params.harmonic_guard_db
        self._guard_pinv: dict = {}  # per pair: least squares on the pair and its guard frequencies
        self._verify_len = int(round(params.verify_window_ms * ms))
        self._verify_after = int(round(params.verify_after_ms * ms))
        self._verify_fraction = float(params.verify_fraction)
        self._verify_strong = None if params.verify_coherence is None else float(params.verify_strong_fraction)
        self._verify_coherence = None if params.verify_coherence is None else float(params.verify_coherence)
        self._verify_support = int(params.verify_support)
        self._weak_notch = float(params.weak_notch_fraction)
        self._apart_spread = None if params.weak_apart_spread is None else float(params.weak_apart_spread)
        self._apart_error = None if params.weak_apart_error is None else float(params.weak_apart_error)
        if not 2.0 <= params.weak_apart_ms <= max(params.screen_windows_ms) + 4.0:
            # (the delay line keeps the longest screen window and 4 hops behind every hop decided)
            raise ValueError("weak_apart_ms must be between 2 and the longest screen window + 4 ms")
        self._apart_len = int(round(params.weak_apart_ms * ms)) \
            if self._apart_spread is not None or self._apart_error is not None else 0
        self._spread_max = None if params.persist_spread_max is None else float(params.persist_spread_max)
        self._offset_max = None if params.offset_error_max is None else float(params.offset_error_max)
        self._offset_spread = float(params.offset_spread_max)
        self._offset_lens = tuple(int(round(w * ms)) for w in params.offset_windows_ms)
        if self._offset_max is not None and (not self._offset_lens or min(self._offset_lens) < 2 * self._hop
                                             or max(self._offset_lens) > self._kmax * self._hop):
            raise ValueError("offset_windows_ms must lie between 2 ms and the longest screen window")
        if not 0 < params.offset_fraction < 1:
            raise ValueError("offset_fraction must be between 0 and 1")
        self._offset_resid = 1.0 - float(params.offset_fraction)
        self._offset_skip = float(params.offset_skip_share)
        self._offset_every = max(1, int(round(params.offset_every_ms)))
        self._offset_verify = self._offset_max is not None and bool(params.offset_verify)
        self._offset_verify_spread = float(params.offset_verify_spread_max)
        self._osc_release = bool(params.oscillator_release)
        self._keypad_spread = None if params.press_spread_max is None else float(params.press_spread_max)
        self._keypad_error = None if params.press_tone_error_max is None else float(params.press_tone_error_max)
        self._keypad_test = self._keypad_spread is not None or self._keypad_error is not None
        self._reject_hold = int(round(params.reject_hold_ms * ms))
        self._reject_named = bool(params.reject_named)
        self._measured_hold = None if params.press_hold_measured is None else float(params.press_hold_measured)
        self._measured_len = int(round(params.press_hold_measured_ms * ms))
        if self._measured_hold is not None and not 16 * ms <= self._measured_len <= self.rate // 10:
            raise ValueError("press_hold_measured_ms must be between 16 and 100")
        self._musical_from_named = bool(params.musical_notch_from_named)
        self._musical_exact = bool(params.musical_named_exact)
        self._switch_apart = bool(params.weak_switch_apart)
        self._musical_any = bool(params.musical_named_any_pair)
        self._musical_margin_lens = tuple(int(round(w * ms)) for w in params.musical_margin_windows_ms)
        # ``press_octave_*``: a press whose two tones are one note's partials an octave apart (:meth:`_octave_notes`)
        self._octave_tol = None if params.press_octave_tolerance is None else float(params.press_octave_tolerance)
        self._octave_share = float(params.press_octave_share)
        self._octave_len = int(round(params.press_octave_ms * ms))
        self._octave_again_len = int(round(params.press_octave_again_ms * ms))
        # (None: no confirmation is tested, :meth:`_octave_again` off)
        self._octave_memory = None if params.press_octave_memory_ms is None \
            else int(round(params.press_octave_memory_ms * ms))
        self._octave_at = tuple(sorted(int(round(t * ms)) for t in params.press_octave_tests_ms))
        if self._octave_tol is not None and not 16 * ms <= self._octave_len <= self.rate // 10:
            raise ValueError("press_octave_ms must be between 16 and 100")
        # (pairs whose nominal ratio is within ``press_octave_pairs_within`` of 2:1: 2, 3, 6, B, C)
        self._octave_pairs = frozenset(p for p, (r, c, _) in enumerate(pairfit.PAIRS)
                                       if abs(COL_HZ[c] / ROW_HZ[r] / 2.0 - 1.0) <= params.press_octave_pairs_within)
        self._octave_head = float(params.press_octave_head_share)
        # ``music_context_*``: a confirmation whose context before it holds persistent notes (:meth:`_music_context`)
        self._music_persist = None if params.music_context_persist is None else float(params.music_context_persist)
        self._music_len = int(round(params.music_context_ms * ms))
        self._music_guard = int(round(params.music_context_guard_ms * ms))
        self._music_n = 1 << max(3, int(round(math.log2(params.music_context_frame_ms * ms))))
        self._music_klo = int(math.ceil(params.music_context_band_hz[0] * self._music_n / self.rate))
        self._music_khi = int(math.floor(min(params.music_context_band_hz[1], 0.5 * self.rate)
                                         * self._music_n / self.rate)) + 1
        self._music_smooth = max(1, int(round(params.music_context_smooth_hz * self._music_n / self.rate)))
        self._music_pairs = int(params.music_context_pairs)
        self._music_gap = int(round(params.music_context_gap_ms * ms))
        self._music_away = float(params.music_context_away_persist)
        self._music_after = None if params.music_context_after_ms is None \
            else int(round(params.music_context_after_ms * ms))  # (None: measured whatever came before)
        self._onset_music_after = None if params.onset_music_after_ms is None \
            else int(round(params.onset_music_after_ms * ms))  # (the gate of the onset and join rules)
        self._music_back = int(round(params.music_context_back_ms * ms))  # (how far back the treatments may lead)
        self._music_hit_run = bool(params.music_context_hit_run)  # (helper m13c: presses by a run of hits too ...)
        self._music_weak = bool(params.music_context_weak)  # (... and weak suspects notched at once)
        self._music_from_named = bool(params.music_context_from_named)  # (musical notches from the named window)
        self._music_silent = bool(params.music_context_silent)  # (silent keypad-like weak suspects)
        # (helper m13e: a press by persistence asks the measure with its own thresholds; None: as above)
        self._held_persist = self._music_persist if params.music_context_held_persist is None \
            else float(params.music_context_held_persist)
        self._held_away = self._music_away if params.music_context_held_away is None \
            else float(params.music_context_held_away)
        # (the flattened bins kept for the second correlation: none within ``music_context_dtmf_exclude`` of a DTMF
        # frequency, widened by the Hann window's main lobe)
        width = self._music_khi - self._music_klo - 2 * self._music_smooth
        hz = (self._music_klo + self._music_smooth + np.arange(max(width, 0))) * self.rate / self._music_n
        lobe = 2.0 * self.rate / self._music_n
        keep = np.ones(hz.size, dtype=bool)
        for f in DTMF_HZ:
            keep &= ~((hz >= f * (1.0 - params.music_context_dtmf_exclude) - lobe)
                      & (hz <= f * (1.0 + params.music_context_dtmf_exclude) + lobe))
        self._music_keep = np.flatnonzero(keep)
        if self._music_persist is not None and not (self._music_n <= self._music_len <= self.rate
                                                    and self._music_pairs >= 1):
            raise ValueError("music_context_ms must hold a frame and be at most 1000; music_context_pairs >= 1")
        self._conceal_merge = max(0, int(round(params.conceal_merge_ms * ms)))
        self._conceal_near = max(0, int(round(params.conceal_near_ms * ms)))
        self._keypad_nfft = 1 << max(self.rate // 4 - 1, 1).bit_length()  # >= rate / 4: bins of 4 Hz or finer
        self._osc_grid = np.linspace(-0.04, 0.04, 81)
        self._osc_tables: dict = {}
        self._named_lens = tuple(int(round(w * ms)) for w in params.named_windows_ms)
        self._named_resid = 1.0 - float(params.named_fraction)
        self._named_unique = float(params.named_unique)
        self._verify_isolated = None if params.verify_isolated is None else float(params.verify_isolated)
        self._verify_exact = None if params.verify_unique_exact is None else float(params.verify_unique_exact)
        self._recent_len = 0 if params.verify_recent_ms is None else int(round(params.verify_recent_ms * ms))
        self._sure_len = -1 if params.verify_recent_sure_ms is None else int(round(params.verify_recent_sure_ms * ms))
        self._ended_opening = bool(params.press_ended_opening)
        self._recent_weak = 0 if params.verify_recent_weak_ms is None \
            else int(round(params.verify_recent_weak_ms * ms))
        self._long_len = 0 if params.verify_long_ms is None else int(round(params.verify_long_ms * ms))
        self._recent_spread = None if params.verify_recent_spread is None else float(params.verify_recent_spread)
        self._long_fraction = float(params.verify_long_fraction)
        self._long_spread = float(params.verify_long_spread)
        # (a second look needs its notch's guard within the look-ahead: none with a shorter one)
        self._again = 0 if params.verify_again_ms is None or params.verify_again_ms > lookahead_ms - 6.0 \
            else int(round(params.verify_again_ms * ms))
        if params.verify_again_ms is not None and not params.verify_again_ms > params.verify_after_ms:
            raise ValueError("verify_again_ms must be longer than verify_after_ms")
        self._weak_coherence = None if params.verify_weak_coherence is None else float(params.verify_weak_coherence)
        self._weak_verify_fraction = float(params.verify_weak_fraction)
        self._weak_spread = float(params.verify_weak_spread)
        self._line_len = 0 if params.verify_line_ms is None else int(round(params.verify_line_ms * ms))
        self._line_fraction = float(params.verify_line_fraction)
        self._line_spread = float(params.verify_line_spread)
        self._osc_fraction = params.verify_osc_fraction
        self._common_len = 0 if params.verify_common_ms is None else int(round(params.verify_common_ms * ms))
        self._common_fraction = float(params.verify_common_fraction)
        self._common_peak = float(params.verify_common_peak)
        self._mid_len = 0 if params.verify_mid_ms is None else int(round(params.verify_mid_ms * ms))
        self._mid_fraction = float(params.verify_mid_fraction)
        self._mid_spread = float(params.verify_mid_spread)
        self._mid_peak = None if params.verify_mid_common_peak is None else float(params.verify_mid_common_peak)
        self._mid_common_fraction = float(params.verify_mid_common_fraction)
        self._mid_long = None if params.verify_mid_long_fraction is None else float(params.verify_mid_long_fraction)
        if not (self._mid_long is None or 0.0 < self._mid_long <= 1.0):
            raise ValueError("verify_mid_long_fraction: None or in (0, 1]")
        self._mid_since = None if params.verify_mid_since_fraction is None else float(params.verify_mid_since_fraction)
        self._mid_since_coherence = float(params.verify_mid_since_coherence)
        self._mid_since_twist2 = 10.0 ** (float(params.verify_mid_since_twist_db) / 10.0)
        if not (self._mid_since is None or (0.0 < self._mid_since <= 1.0 and self._mid_since_coherence > 0.0
                                            and params.verify_mid_since_twist_db >= 0.0)):
            raise ValueError("verify_mid_since_*: fraction None or in (0, 1], coherence > 0, twist >= 0")
        self._also_rival = bool(params.also_named_rival)
        self._exact_flat = bool(params.verify_exact_flat)
        # --- ``verify_lead_ms`` (helper h15d): the lead a verified short window's notch takes before the window (beyond
        # the guard every notch has); None: ``guard_ms``, as before
        lead = params.verify_lead_ms
        if lead is not None and not 0 <= lead <= 100:
            raise ValueError("verify_lead_ms must be None or between 0 and 100")
        self._verify_lead = self._guard if lead is None else int(round(lead * ms))
        self._lead_reach = max(self._guard - self._verify_lead, 0)  # (what a notch still reaches back to join)
        # --- end ``verify_lead_ms``
        # ``notch_head_ms`` (helper h16c): the guard before a verified short window's notch (and its lead); what it
        # drops of the guard, a notch still reaches back to join the one before (as ``verify_lead_ms``'s lead)
        head = params.notch_head_ms
        if head is not None and not head >= 0:
            raise ValueError("notch_head_ms must be None or at least 0")
        self._notch_head = self._guard if head is None else min(self._guard, int(round(head * ms)))
        self._lead_reach += self._guard - self._notch_head
        # ``notch_edge_*`` (helper h19a): a new notch's start moved until the windows across it name nothing
        back, ahead = params.notch_edge_back_ms, params.notch_edge_ahead_ms
        if back is not None and not (0 <= back <= 100 and 0 <= ahead <= 100):
            raise ValueError("notch_edge_*: back and ahead 0..100 ms (back None: off)")
        self._edge_back = None if back is None else int(round(back * ms))
        self._edge_ahead = int(round(ahead * ms))
        self._edge_lens = tuple(int(round(w * ms)) for w in params.notch_edge_windows_ms)
        # the windows straddling a start, per length: their offsets from it and their samples' indices in a stretch
        # from the earliest (:meth:`_edge_named_at`)
        hop = self._hop
        self._edge_lo = min([hop - n for n in self._edge_lens], default=0)
        self._edge_rel = []
        for n in self._edge_lens:
            a_rel = list(range(hop - n, 0, hop))
            if a_rel:
                self._edge_rel.append((n, a_rel, np.array(a_rel)[:, None] - self._edge_lo + np.arange(n)[None, :]))
        self._edge_notch = np.array([1, 0, _OPEN], dtype=np.int64)  # (C span lists: one open notch, no span)
        self._no_spans, self._no_table = np.zeros(1, dtype=np.int64), np.zeros(1)
        # each length's fit: a screen window's (index, quad terms, G^-1), which the C screen can run, else its own
        wi_of = {k * self._hop: i for i, k in enumerate(self._ks)}
        self._edge_fits = {}
        for n in self._edge_lens:
            if n < 2:
                raise ValueError("notch_edge_windows_ms: at least 2 samples each")
            if n in wi_of:
                self._edge_fits[n] = (wi_of[n], self._quad[wi_of[n]], self._ginv[wi_of[n]])
            else:
                ginv = np.ascontiguousarray(pairfit.pair_tables(n, self.rate)[2])
                self._edge_fits[n] = (None, self._quad_terms(ginv), ginv)
        # ``notch_rejoin_keeps_end``, ``verify_common_16_*`` (helper h20b)
        self._rejoin_keeps = bool(params.notch_rejoin_keeps_end)
        c16, c16_step = params.verify_common_16_max, params.verify_common_16_step
        if c16 is not None and not (0 < c16 <= 0.06 and 0 < c16_step <= c16):
            raise ValueError("verify_common_16_*: max in (0, 0.06] (None: off), step in (0, max]")
        self._common16 = None if c16 is None else \
            tuple(float(g) for g in np.round(np.arange(-c16, c16 + 1e-9, c16_step), 6))
        self._common16_coherence = float(params.verify_common_16_coherence)
        self._common16_twist2 = 10.0 ** (float(params.verify_common_16_twist_db) / 10.0)
        # ``notch_inside_*`` (helper h20a): a key's onset inside a running notch, its windows judged as they will be emitted
        inside = params.notch_inside_windows_ms
        if inside is not None and not all(0 < w <= 16 for w in inside):
            raise ValueError("notch_inside_windows_ms: None or lengths in (0, 16] ms")
        self._inside_lens = () if inside is None else tuple(int(round(w * ms)) for w in inside)
        self._column_coherence = params.verify_column_coherence
        self._column_error = float(params.verify_column_error)
        self._osc_spread = float(params.verify_osc_spread)
        self._column_weak = params.verify_column_weak_fraction
        self._column_weak_coherence = float(params.verify_column_weak_coherence)
        self._column_weak_error = float(params.verify_column_weak_error)
        self._column_onset = params.verify_column_onset_fraction
        self._column_onset_error = float(params.verify_column_onset_error)
        if not (self._column_onset is None or (0.0 < float(self._column_onset) <= 1.0
                                                and self._column_onset_error >= 0.0)):
            raise ValueError("verify_column_onset_*: share in (0, 1], error >= 0")
        self._column_near_error = float(params.verify_column_near_error)
        self._column_near_row = params.verify_column_near_row
        self._column_onset_row = params.verify_column_onset_row
        if not (self._column_onset_row is None or float(self._column_onset_row) >= 0.0):
            raise ValueError("verify_column_onset_row: >= 0")
        if not (self._column_near_error >= 0.0 and (self._column_near_row is None or float(self._column_near_row) >= 0.0)):
            raise ValueError("verify_column_near_*: errors >= 0")
        self._column_held = params.verify_column_held_steady
        self._onset_jump = params.verify_onset_jump  # (``verify_onset_jump``)
        if self._onset_jump is not None and not self._onset_jump >= 1.0:
            raise ValueError("verify_onset_jump must be None or at least 1")
        self._onset_before = int(round(params.verify_onset_before_ms * ms))
        self._verify_next_other = bool(params.verify_next_other)
        if not self._onset_before >= 1:
            raise ValueError("verify_onset_before_ms must be at least one sample")
        if not (self._column_held is None or float(self._column_held) > 0.0):
            raise ValueError("verify_column_held_steady: > 0")
        if not (self._column_weak is None or (0.0 < float(self._column_weak) <= 1.0
                                               and self._column_weak_coherence > 0.0
                                               and self._column_weak_error >= 0.0)):
            raise ValueError("verify_column_weak_*: share in (0, 1], coherence > 0, error >= 0")
        if not (self._osc_spread >= 0.0 and self._column_error >= 0.0 and (
                self._column_coherence is None or float(self._column_coherence) > 0.0) and (
                self._osc_fraction is None or 0.0 < float(self._osc_fraction) <= 1.0)):
            raise ValueError("verify_osc_* / verify_column_*: spreads and errors >= 0, coherence > 0, share in (0, 1]")
        # how long after a tone's end the detector closes its span: covers add it so that a signalled
        # key (RFC 4733 / SIP INFO) sounds as long as the same key in-band (the 16 ms window still holds
        # a quarter of the tone 12 ms after its end, then ``close_ms``)
        self._tail = (self._kmax - self._kmax // 4 + self._close_hops) * self._hop
        self._onset_ratio = 0.05  # share of the steady pair energy that still counts as tone ...
        self._onset_floor = 1e-9  # ... of at least this much steady energy
        self._fade_notch = float(params.fade_notch_gain)  # the notch's gain per unit mask weight in a fade
        if not self._fade_notch >= 1.0:
            raise ValueError("fade_notch_gain must be at least 1")
        rin = params.notch_ramp_in_ms
        if rin is not None and not rin >= 0:
            raise ValueError("notch_ramp_in_ms must be None or at least 0")
        # a band notch's ramp-in (samples): ``notch_ramp_in_ms``, at most the guard (None: the guard)
        self._notch_ramp_in = self._guard if rin is None else min(self._guard, int(round(rin * ms)))
        tail = params.notch_tail_ms
        if tail is not None and not tail >= 0:
            raise ValueError("notch_tail_ms must be None or at least 0")
        # ``notch_tail_ms``: a suspect's band notch ends this long after the last hop naming its pair, and every band
        # notch ramps out over that long (samples; at most the guard; None: the guard, as before)
        self._notch_tail = self._guard if tail is None else min(self._guard, int(round(tail * ms)))
        if not params.notch_join_ms >= 0:
            raise ValueError("notch_join_ms must be at least 0")
        self._notch_join = int(round(params.notch_join_ms * ms))  # (``notch_join_ms``)
        self._seed = int(seed)
        # a notch block must lie wholly in the delay line when its first sample leaves; with a look-ahead
        # too short for a 2 ms block, suspects get the flat mask instead
        nl = min(int(round(params.notch_block_ms * ms)), (self.delay_samples // self._hop) * self._hop) // 2 * 2
        self._notch_len = nl if nl >= 2 * self._hop else 0
        if self.delay_samples < self._suspect_close + 2 * self._guard + self._hop:
            self._notch_len = 0  # a notch's end (and ramp) would be decided after its samples left
        self._setup_burst(params)  # (``keypad_burst_*``: off without a notch)
        self._setup_context(params)  # (``keypad_context_ms``: off without a notch)
        self._setup_pair_hold(params)  # (``pair_hold_*``: off without a notch)
        self._notch_win = np.sin(np.pi * (np.arange(nl) + 0.5) / max(nl, 1)) ** 2
        # the band projector P = B pinv(B) as its two factors, applied in one fixed order by both backends
        # (coefficients summed sample by sample, then the projection term by term): same bits in C
        # (``notch_band_extra`` / ``notch_band_width``: the nominal frequencies, then the widened bands' vectors)
        extra = int(params.notch_band_extra)
        if not 0 <= extra <= 48 or not 0 <= params.notch_band_width < 0.2:
            raise ValueError("notch_band_extra must be 0-48 and notch_band_width in [0, 0.2)")
        self._notch_basis = np.ascontiguousarray(pairfit.band_basis(nl, self.rate, params.notch_band_width, extra)) \
            if self._notch_len else np.zeros((0, 16 + extra))
        self._notch_pinv = np.ascontiguousarray(np.linalg.pinv(self._notch_basis)) if self._notch_len \
            else np.zeros((16 + extra, 0))
        # the onset walk-back's fits (2 ms windows): basis and inverse Gram matrix per pair
        onset_b, _, onset_ginv = pairfit.pair_tables(self._short, self.rate)
        self._onset_basis = np.ascontiguousarray(onset_b)
        self._onset_ginv = np.ascontiguousarray(onset_ginv)
        self._keep = self.delay_samples + (self._kmax + 4) * self._hop + 2 * max(nl, 8 * self._hop)
        if not 0 <= self._long_len <= self.rate:
            raise ValueError("verify_long_ms must be between 0 and 1000")
        if not 0 <= self._line_len <= self.rate:
            raise ValueError("verify_line_ms must be between 0 and 1000")
        if not 0 <= self._common_len <= self.rate:
            raise ValueError("verify_common_ms must be between 0 and 1000")
        if not 0 < self._common_peak <= 1:
            raise ValueError("verify_common_peak must be above 0 and at most 1")
        if not (0 <= self._mid_len <= self.rate and 0.0 < self._mid_fraction <= 1.0 and self._mid_spread >= 0.0):
            raise ValueError("verify_mid_*: 0 <= ms <= 1000, 0 < fraction <= 1, spread >= 0")
        if not ((self._mid_peak is None or 0.0 < self._mid_peak <= 1.0) and 0.0 < self._mid_common_fraction <= 1.0):
            raise ValueError("verify_mid_common_*: 0 < peak <= 1, 0 < fraction <= 1")
        # (those windows behind every hop decided)
        self._keep = max(self._keep, self._long_len + self._hop, self._line_len + self._hop, self._common_len + self._hop,
                         self._mid_len + self._hop)
        if self._measured_hold is not None:
            self._keep = max(self._keep, self._measured_len + self._hop)
        if self._octave_tol is not None:
            self._keep = max(self._keep, self._octave_len + self._hop)
        if self._music_persist is not None:  # (the context before a press's walked-back first sample)
            self._keep = max(self._keep, self._keep + self._music_len + self._music_guard + self._music_back)
        self._screen_bufs: dict = {}
        # the C frame: chunks up to 400 ms (one batch of hops), outputs sized once
        self._frame_cap = 400 * self._hop
        hops_cap = self._frame_cap // self._hop + 1
        self._frame_outs = (np.empty(hops_cap, dtype=np.int64), np.empty(hops_cap, dtype=np.int64),
                            np.empty((hops_cap, 4)), np.empty(hops_cap, dtype=np.int64), np.empty((hops_cap, 16)))
        # the mask as a table of one period by absolute position (the C frame writes wholly masked frames
        # from it); None: a noise mask (generated here)
        self._mask_table = np.zeros(0) if mask == "silence" else self._make_tone_table() if mask == "tone" else None
        self._frame_table = self._mask_table if self._mask_table is not None else np.zeros(0)  # (mode 1 only)
        self._fade_ramp = 0.5 * (1 + np.cos(np.pi * np.arange(1, self._fade + 1) / (self._fade + 1)))
        # the C output side (notches, fades, mask, onset walk-back) and the span lists it reads
        self._native_output = _masker_native.Output(**self.native_output_constants()) \
            if self._native_screen is not None else None
        self._span_arr = array.array("q", bytes(8 * (1 + 2 * _SPAN_CAP)))
        self._notch_arr = array.array("q", bytes(8 * (1 + 2 * _SPAN_CAP)))
        self.reset()

    # ------------------------------------------------------------------ public API
    def reset(self) -> None:
        """Forget the stream: positions restart at 0, nothing masked."""
        self.samples_in = 0
        self.errors = 0
        self._pos = 0  # input samples taken in (including flush padding)
        # the delay line: ``_store[:keep]`` holds samples [pos - keep, pos) between calls; a call appends its
        # chunk behind them (``_buf`` is the view of both during the call) and moves the last keep forward
        self._store = np.zeros(self._keep + self._frame_cap)
        self._buf = self._store[: self._keep]
        # Screen.run's state (array.array: item access from Python costs far less than numpy's)
        self._native_state = array.array("q", bytes(8 * _NSTATE))
        self._native_steady = array.array("d", [0.0])
        self._c_state = False  # True: the C state vector holds the counters (the attributes below are stale)
        self._spans_dirty = True  # the C span lists must be rebuilt from _spans and _notches
        self._next_hop = self._hop
        self._spans: List[_Span] = []
        self._active: Optional[_Span] = None  # in-band span of the press being heard
        self._misses = 0
        self._notches: List[_Span] = []  # band-notched spans (suspect, not confirmed)
        self._suspect: Optional[list] = None  # [pair, first hop, last hop, notch span]
        self._pending: List[tuple] = []  # short-window suspects awaiting their centred 16 ms window
        self._weak_pair, self._weak_run = -1, 0  # pair weakly present in the last hops, and for how many
        self._hit_pair, self._hit_run = -1, 0  # pair the screen named in the last hops, and for how many
        self._press_due = _NO_DUE  # hop at which the press being masked is tested for a keypad's frequencies
        self._rejected: dict = {}  # pairs found to be no keypad -> the last hop each was seen
        self._recent: dict = {}  # pairs of presses and keypad-like suspects that ended -> the hop each ended at
        self._press_ended: dict = {}  # pairs of flat-masked presses that ended -> the hop (``verify_recent_sure_ms``)
        self._press_named = False  # the press failed the keypad test: held only while a window names its pair
        self._octave_open, self._octave_next = 0, 0  # hop the press opened at, next of ``press_octave_tests_ms``
        self._keypad_due = _NO_DUE  # hop of the press's keypad test (``press_due``: the earlier of it and the octave's)
        self._octave_last = -_NO_DUE  # hop at which notes were last measured an octave (``press_octave_memory_ms``)
        self._music_starts: Deque[int] = deque(maxlen=16)  # first samples of the notches judged musical
        self._music_seen = -_NO_DUE  # the last hop a musical suspect was open at (``music_context_after_ms``)
        self._unmusical = True  # no musical suspect for ``music_context_after_ms`` (:meth:`_step`)
        self._music_memo = (-1, -_NO_DUE, False)  # (pair, hop, judged) of the last confirmation measured
        self._conceals: List[list] = []  # made-up spans [start, end (merge included), flat-masked yet]
        self._pair = -1  # pair of the press being masked and ...
        self._opened_pair = -1  # ... the pair it opened with (``press_ended_opening``)
        self._steady = 0.0  # ... the most energy it explained in the long window
        self._history: Deque[MaskedSpan] = deque(maxlen=100000)
        self._notch_history: Deque[MaskedSpan] = deque(maxlen=100000)
        self._pay_done: List[Tuple[int, int]] = []  # retired payment-profile spans (few: one per payment)
        self._reset_burst()
        self._reset_context()
        self.inside_masks = 0  # flat masks opened by ``notch_inside_*`` (a counter for benchmarks)
        self._reset_pair_hold()
        self._inexact_until = -self._keep  # input positions below this may hold samples that are not int16
        self._exact_out = False  # the last _run returned untouched samples from int16 input
        if self._native_screen is not None:  # the C frame works on these buffers (held until the next reset)
            self._native_screen.bind(self._native_output, self._store, self._keep, self.delay_samples,
                                     self._native_state, self._native_steady, self._frame_table,
                                     int(self._mask_table is not None), self._span_arr, self._notch_arr,
                                     *self._frame_outs)

    @property
    def masked_spans(self) -> List[MaskedSpan]:
        """Masked spans with a known end (input positions; the agent hears them ``delay_samples`` later).

        Spans are listed once closed; their ends may still lie ahead of the output.
        """
        done = list(self._history) + [MaskedSpan(s.start, s.end, s.source) for s in self._spans
                                      if s.end is not None]
        return sorted(done, key=lambda s: (s.start, s.end))

    @property
    def notched_spans(self) -> List[MaskedSpan]:
        """Spans (input positions) where only the DTMF bands were removed: suspect, never confirmed."""
        return self._notch_spans(payment=False)

    @property
    def payment_spans(self) -> List[MaskedSpan]:
        """Spans of the payment profile (:meth:`notch_all`) with a known end (input positions)."""
        return self._notch_spans(payment=True)

    @property
    def burst_spans(self) -> List[MaskedSpan]:
        """Spans of the keypad-burst rule (``keypad_burst_*``: the payment profile's band notch after the masker's
        own confirmed presses) with a known end (input positions)."""
        return self._notch_spans(source="burst")

    def _notch_spans(self, payment: bool = False, source: Optional[str] = None) -> List[MaskedSpan]:
        """Band-notched spans with a known end, retired or not: the payment profile's, the keypad bursts' or the
        suspects'."""
        want = source if source is not None else "payment" if payment else "notch"
        done = [h for h in self._notch_history if h.source == want] + \
            [MaskedSpan(s.start, s.end, s.source) for s in self._notches
             if s.end is not None and s.source == want]
        return sorted(done, key=lambda s: (s.start, s.end))

    @property
    def notching_all(self) -> bool:
        """True while the payment profile is on (an open :meth:`notch_all` span)."""
        return any(s.source == "payment" and s.end is None for s in self._notches)

    def notch_all(self, start: int, end: Optional[int] = None) -> None:
        """Payment profile: remove the 8 DTMF bands from every sample of input span [start, end) that is not
        under the flat mask (``end=None``: until :meth:`notch_all_end`).

        The band notch of a suspect (least-squares projection on the 8 DTMF frequencies and ``notch_band_extra``
        vectors of the bands widened by ``notch_band_width``, blocks of ``notch_block_ms`` overlap-added, ramped in
        over ``notch_ramp_in_ms`` from ``start`` and out over ``notch_tail_ms`` before ``end``):
        speech loses about 0.8 dB, a tone at its nominal frequencies all of its energy, one 5 % off >= 24 dB.  Presses are still
        found and masked flat as without it; the key-free rules are unchanged.  Like :meth:`cover`, samples
        already emitted (input positions before ``samples_in - delay_samples``) are not changed any more:
        switch it at ``samples_in`` (or ahead) for output that is the same for any chunking.  A span
        touching the previous one continues it.  With a look-ahead too short to notch it changes nothing."""
        start = int(start)
        end = None if end is None else int(end)
        if end is not None and end <= start:
            raise ValueError("notch_all: end must lie after start")
        self._spans_dirty = True
        for span in reversed(self._notches):
            if span.source != "payment":
                continue
            if span.end is None:
                return  # already on
            if span.start <= start <= span.end:
                span.end = end if end is None else max(span.end, end)
                return
            break
        self._notches.append(_Span(start, end, "payment"))

    def notch_all_end(self, end: int) -> None:
        """Switch the payment profile off at input position ``end`` (its notch ramps out over ``notch_tail_ms``
        before it).  Without an open :meth:`notch_all` span, nothing happens."""
        end = int(end)
        for span in self._notches:
            if span.source == "payment" and span.end is None:
                span.end = max(end, span.start + 1)
        self._spans_dirty = True

    @property
    def masking(self) -> bool:
        """True while a press is being masked or a cover is open."""
        return self._active is not None or any(s.end is None for s in self._spans)

    def process(self, chunk) -> np.ndarray:
        """Take customer samples, return as many agent samples (delayed by ``delay_samples``).

        Integer (int16 range) or float ([-1, 1]) samples in; the output dtype was fixed at construction
        (``dtype``), whatever the chunk's.  Never raises:
        any internal failure yields the mask for this chunk (fail closed).
        """
        try:
            n = chunk.size if type(chunk) is np.ndarray else int(np.size(chunk))
        except Exception:  # pragma: no cover - np.size accepts nearly anything
            n = 0
        pos_before = self._pos
        try:
            # (the C frame itself declines a chunk that is not 1-D contiguous native int16: None)
            if type(chunk) is np.ndarray and chunk.dtype is _INT16 and self._native_screen is not None \
                    and self._out_dtype is _INT16 and goertzel.backend() == "native":
                if n <= self._frame_cap:
                    out = self._run_native(chunk, n)
                    if out is not None:
                        self.samples_in += n
                        return out
                elif chunk.ndim == 1 and chunk.flags.c_contiguous:
                    # a long chunk (a recording) as C frames: any chunking gives the same output
                    parts, exact = [], True
                    for i in range(0, n, self._frame_cap):
                        parts.append(self._run_native_piece(chunk[i: i + self._frame_cap]))
                        exact = exact and self._exact_out
                    self._exact_out = exact  # (the whole chunk came out untouched)
                    self.samples_in += n
                    return np.concatenate(parts)
            x = self._convert(chunk)
            out = self._run(x)
            self.samples_in += x.size
            return out
        except Exception as exc:  # fail closed: the agent hears the mask, never raw audio
            self.samples_in += n
            return self._fail(pos_before, n, exc)

    def flush(self) -> np.ndarray:
        """Return the last ``delay_samples`` samples still in the delay line (end of stream)."""
        pos_before = self._pos
        try:
            return self._run(np.zeros(self.delay_samples))
        except Exception as exc:
            return self._fail(pos_before, self.delay_samples, exc)

    def cover(self, start: int, end: Optional[int] = None) -> None:
        """Mask the input span [start, end) (``end=None``: until :meth:`uncover`), e.g. an RFC 4733 event.

        The span gets the same guard, fades and duration quantum as an in-band press,
        so the agent hears the same thing however the phone sent the key.  Samples
        already emitted cannot be masked any more; cover as early as possible.
        """
        start = int(start)
        a = self._align_down(start - self._guard)
        span = _Span(a, None, "cover")
        self._spans.append(span)
        self._spans_dirty = True
        if end is not None:
            self._close(span, int(end) + self._guard + self._tail)

    def uncover(self, end: int) -> None:
        """Close every open cover at input position ``end`` (plus guard, rounded up to the quantum)."""
        for span in self._spans:
            if span.source == "cover" and span.end is None:
                self._close(span, int(end) + self._guard + self._tail)
        self._spans_dirty = True

    def conceal(self, start: int, end: int) -> None:
        """The input span [start, end) is not the customer's audio: a frame the jitter buffer made up (its
        concealment), or, with ``end == start``, a join where it dropped frames.  Call it before those samples
        are processed (the media pipeline does, from the jitter buffer's counters).  Fail closed: a press
        being masked is not closed while a screen window overlaps the span (or the first ``conceal_merge_ms``
        after it), and the span is masked flat when anything was being treated just before it or any window
        over it names or weakly holds a pair (:class:`MaskerParams` ``conceal_*``).  Never raises."""
        try:
            start, end = int(start), int(end)
            if end < start:
                return
            # (each span judged on its own: what happens does not depend on when it was announced)
            self._conceals.append([start, end + self._conceal_merge, False])
            self._native_state[17] = 1  # the C frame leaves every hop to Python while any is pending
        except (TypeError, ValueError, OverflowError):  # not positions: counted, nothing announced
            self.errors += 1

    # ------------------------------------------------------------------ internals
    def _convert(self, chunk) -> np.ndarray:
        a = np.asarray(chunk)
        if a.ndim != 1:
            raise ValueError("chunk must be 1-D")
        if a.dtype != np.int16:
            self._inexact_until = self._pos + a.size
        if a.dtype.kind in "iu":
            return a.astype(np.float64)
        if a.dtype.kind == "f":
            x = a.astype(np.float64) * 32768.0
            if not np.all(np.isfinite(x)):
                raise ValueError("non-finite samples")
            return x
        raise TypeError("unsupported sample type")

    def _emit(self, out: np.ndarray, dtype: np.dtype) -> np.ndarray:
        # Unmasked output that came in as int16 is already whole int16 values: rounding and clipping would
        # change nothing, so skip those two passes (the common case on a live call).
        if self._exact_out and dtype == np.int16:
            return out.astype(np.int16)
        return self._to_dtype(out, dtype)

    @staticmethod
    def _to_dtype(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
        if dtype == np.int16:
            return np.clip(np.round(out), -32768, 32767).astype(np.int16)
        return out / 32768.0

    def _fail(self, pos_before: int, n: int, exc: BaseException) -> np.ndarray:
        self.errors += 1
        # Never log the message or the samples: they could carry digits.  A persistent fault would fail
        # every 20 ms frame: log the first and then every 500th, not a flood.
        if self.errors == 1 or self.errors % 500 == 0:
            log.error("masker internal error (%s, %d so far); masking this chunk and the delay line",
                      type(exc).__name__, self.errors)
        try:
            if self._c_state:
                self._unpack_state()
                self._c_state = False
            self._spans_dirty = True
            start = pos_before - self.delay_samples
            self._pos = pos_before + n
            self._store[: self._keep] = 0.0
            self._buf = self._store[: self._keep]
            self._next_hop = (self._pos // self._hop + 1) * self._hop
            self._active = None
            self._suspect = None
            self._pending = []
            self._weak_pair, self._weak_run = -1, 0
            self._hit_pair, self._hit_run = -1, 0
            self._press_due = self._keypad_due = _NO_DUE
            self._octave_last = -_NO_DUE
            self._music_seen = -_NO_DUE
            self._music_memo = (-1, -_NO_DUE, False)
            self._rejected = {}
            self._recent = {}
            self._press_ended = {}
            self._press_named = False
            self._conceals = []
            span = _Span(start, None, "error")
            self._spans.append(span)
            self._close(span, self._pos + self._hold + self._quantum)
            out = self._mask_signal(start, n)
        except Exception:
            out = np.zeros(n)  # even the mask failed: silence, still never raw audio
        try:
            return self._to_dtype(out, self._out_dtype)
        except Exception:
            return np.zeros(n, dtype=np.int16)

    def _align_down(self, pos: int) -> int:
        return (pos // self._hop) * self._hop

    def _close(self, span: _Span, end: int) -> None:
        length = max(end - span.start, 1)
        length = -(-length // self._quantum) * self._quantum
        span.end = span.start + length + self._hold
        if self._pay_hold and span.source == "inband" and self._paying(span.start):
            span.end += self._pay_hold  # ``payment_hold_ms``: under the payment profile the mask stays longer

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Append ``x`` (float64) to the delay line, decide its hops, return as many output samples in the
        output dtype."""
        n = x.size
        pos0 = self._pos
        keep = self._keep
        if self._c_state:  # the counters move to the attributes the steps below read and write
            self._unpack_state()
            self._c_state = False
        self._spans_dirty = True  # the steps below may open, close or retire spans
        if n <= self._frame_cap:
            self._store[keep: keep + n] = x
            self._buf = self._store[: keep + n]
        else:
            self._buf = np.concatenate([self._store[:keep], x])
        self._pos += n
        buf_start = self._pos - self._buf.size
        # Decisions on the 1 ms grid of absolute positions, whatever the chunking.
        last_hop = (self._pos // self._hop) * self._hop
        if last_hop >= self._next_hop:
            hops = range(self._next_hop, last_hop + 1, self._hop)
            self._decide(hops, buf_start)
            self._next_hop = last_hop + self._hop
        return self._finish(pos0, n, buf_start)

    def _finish(self, pos0: int, n: int, buf_start: int) -> np.ndarray:
        """Output of the samples [pos0 - delay, + n) once their decisions are taken; trims the delay line."""
        out_start = pos0 - self.delay_samples
        raw = self._buf[out_start - buf_start: out_start - buf_start + n]
        self._exact_out = False
        mode = self._output_mode(out_start, n) if self._spans or self._notches else 0
        # (what _apply gives in those two cases, without weighing every span and notch)
        out = raw if mode == 0 else self._mask_signal(out_start, n) if mode == 1 else \
            self._apply(raw, out_start, buf_start)
        self._exact_out = out is raw and out_start >= self._inexact_until
        out = self._emit(out, self._out_dtype)  # a new array: the delay line moves below
        keep = self._keep
        self._store[:keep] = self._buf[self._buf.size - keep:]
        self._buf = self._store[:keep]
        self._expire(out_start + n)
        return out

    def _run_native(self, chunk: np.ndarray, n: int) -> Optional[np.ndarray]:
        """The C frame (native/masker.c ``Screen.run`` on the buffers bound at reset): the same decisions and
        samples as the numpy path, in one call unless a hop needs a Python step (a press or suspect opening
        or closing, a pending suspect, a harmonic test); then the steps continue here from what it computed
        and ``Screen.finish`` writes the output.  None: the frame is not for it."""
        if not self._c_state:
            self._pack_state()
            self._c_state = True
        if self._spans_dirty:
            self._sync_spans()
        pos0 = self._pos
        out = np.empty(n, _INT16)
        screen = self._native_screen
        first_hop = self._next_hop
        code = screen.run(chunk, pos0, first_hop, out)
        if code == 3:
            return None  # not a 1-D contiguous native int16 chunk: the numpy path takes it
        self._pos = pos = pos0 + n
        hop = self._hop
        last_hop = (pos // hop) * hop
        if last_hop >= first_hop:
            self._next_hop = last_hop + hop
        if code == 1:  # hops from st[S_NEXT] on need the Python steps (between them, C takes the simple ones)
            buf_start = pos0 - self._keep
            self._buf = self._store[: self._keep + n]
            self._unpack_state()
            self._c_state = False
            self._spans_dirty = True
            st = self._native_state
            nh = (last_hop - first_hop) // hop + 1
            sus, conf, coef, weak, expl = self._frame_outs
            i = st[9]
            step = self._step_chain if self._chain_len is not None else self._step
            while i < nh:
                step(first_hop + i * hop, int(sus[i]), int(conf[i]), coef[i], int(weak[i]), expl[i], buf_start)
                i += 1
                # (a hop naming a pair with no press open always needs the Python step: C would hand it back)
                if i < nh and (self._active is not None or (sus[i] < 0 and conf[i] < 0)):
                    self._pack_state()
                    st[14] = first_hop
                    i = screen.resume(i, nh)
                    self._unpack_state()
            self._sync_spans()
            code = screen.finish(pos0, out)
        if code == 2:  # the output is the numpy path's (a noise mask, or more spans than the C lists hold)
            if self._c_state:
                self._unpack_state()
                self._c_state = False
            self._buf = self._store[: self._keep + n]
            return self._finish(pos0, n, pos0 - self._keep)
        out_start = pos0 - self.delay_samples
        self._exact_out = code >= 8 and out_start >= self._inexact_until
        if code & 4:
            self._expire(out_start + n)
        return out

    def _run_native_piece(self, piece: np.ndarray) -> np.ndarray:
        out = self._run_native(piece, piece.size)
        if out is None:  # (a slice of a contiguous int16 chunk never is declined)
            raise RuntimeError("C frame declined a piece of a contiguous int16 chunk")
        return out

    def _sync_spans(self) -> None:
        """Rebuild the C span lists (count, then start and end per span; count -1: too many, numpy output)."""
        for arr, spans in ((self._span_arr, self._spans), (self._notch_arr, self._notches)):
            if len(spans) > _SPAN_CAP:
                arr[0] = -1
                continue
            i = 1
            for span in spans:
                arr[i] = span.start
                arr[i + 1] = _OPEN if span.end is None else span.end
                i += 2
            arr[0] = len(spans)
        self._spans_dirty = False

    def _pack_state(self) -> None:
        st = self._native_state
        st[0] = self._active is not None
        st[1] = self._pair
        st[2] = self._misses
        st[3] = self._weak_pair
        st[4] = self._weak_run
        st[5] = self._hit_pair
        st[6] = self._hit_run
        sp = self._suspect
        # 2: silent, or a musical pair's notch (held only where a window names it): Python takes every hop
        st[7] = 0 if sp is None else 1 if sp[3] is not None and not self._musical(sp) else 2
        if sp is not None:
            st[10], st[11], st[12] = sp[0], sp[1], sp[2]
        pending = self._pending
        st[8] = len(pending) > 0
        st[13] = min(item[0] for item in pending) if pending else _NO_DUE
        st[15] = self._press_due
        # (the C frame leaves every hop to Python while any is remembered, or a press is held only where named)
        st[16] = 1 if self._rejected or self._press_named else 0
        st[17] = 1 if self._conceals else 0  # (... and while a made-up span is pending)
        st[18], st[19], st[20] = self._inside_ticks()  # (``notch_inside_*``: the hops Python takes inside a burst)
        self._native_steady[0] = self._steady

    def _unpack_state(self) -> None:
        st = self._native_state
        _, self._pair, self._misses, self._weak_pair, self._weak_run, self._hit_pair, self._hit_run = st[:7]
        if self._suspect is not None:
            self._suspect[2] = st[12]
        self._steady = self._native_steady[0]

    def _output_mode(self, start: int, n: int) -> int:
        """How output [start, start + n) is made: 0 the delayed input (no span or notch touches it),
        1 wholly under one span's mask, 2 mixed (fades, notches: :meth:`_apply`)."""
        f = self._fade
        end = start + n
        touched = False
        for span in self._spans:
            e = span.end
            if span.start <= start and (e is None or e >= end):
                return 1
            if (e is None or e + f > start) and span.start - f < end:
                touched = True
        if not touched:
            for sp in self._notches:
                if sp.start < end and (sp.end is None or sp.end > start):
                    return 2
            return 0
        return 2

    def _setup_screen(self, p: MaskerParams) -> None:
        ks = tuple(int(round(w)) for w in p.screen_windows_ms)
        if not ks or any(k < 2 or k & (k - 1) for k in ks) or list(ks) != sorted(set(ks)) \
                or not set(int(round(w)) for w in p.confirm_windows_ms) <= set(ks):
            raise ValueError("screen windows: whole ms, powers of two >= 2, increasing; confirm windows among them")
        for name in ("screen_fraction", "confirm_fraction", "weak_fraction", "hold_ratio"):
            if not 0 < getattr(p, name) < 1:
                raise ValueError(f"{name} must be between 0 and 1")
        self._ks = ks
        self._kmax = ks[-1]
        self._levels = tuple(k.bit_length() - 1 for k in ks)  # window k sums 2^level blocks (a binary tree)
        self._is_confirm = tuple(k in {int(round(w)) for w in p.confirm_windows_ms} for k in ks)
        self._ginv = tuple(np.ascontiguousarray(pairfit.pair_tables(k * self._hop, self.rate)[2]) for k in ks)
        self._quad = tuple(self._quad_terms(g) for g in self._ginv)
        self._pair_rows = np.array([[r, 4 + c] for r, c, _ in pairfit.PAIRS])
        self._freq_int = np.array([int(f) for f in DTMF_HZ], dtype=np.int64)
        k = np.arange(self.rate)
        self._cos = np.cos(2 * np.pi * k / self.rate)
        self._sin = np.sin(2 * np.pi * k / self.rate)
        rel = (self._freq_int[:, None] * np.arange(self._hop)[None, :]) % self.rate
        self._rel_cos, self._rel_sin = self._cos[rel], self._sin[rel]
        self._screen_amp2 = dbm0_to_peak(p.screen_min_tone_dbm0) ** 2
        self._confirm_amp2 = dbm0_to_peak(p.confirm_min_tone_dbm0) ** 2
        self._twist2 = 10.0 ** (p.max_twist_db / 10.0)
        self._screen_resid = 1.0 - p.screen_fraction
        self._confirm_resid = 1.0 - p.confirm_fraction
        self._weak_resid = 1.0 - p.weak_fraction
        self._screen_unique = float(p.screen_unique)
        self._confirm_unique = float(p.confirm_unique)
        # windows also screened as the attacker hears them through G.711 (an 8 kHz codec: not at other rates)
        g711_ks = {int(round(w)) for w in p.screen_g711_windows_ms}  # (those that are screen windows)
        if any(k > 32 for k in g711_ks) or not 0 <= p.screen_g711_margin <= 10:
            raise ValueError("screen_g711_windows_ms must be at most 32 ms, screen_g711_margin in [0, 10]")
        self._g711 = tuple(int(k in g711_ks and self.rate == 8000) for k in ks)
        self._g711_relax = 1.0 + float(p.screen_g711_margin)
        self._g711_flag = 16 * len(ks)
        self._g711_spread = None if p.screen_g711_spread is None else float(p.screen_g711_spread)
        self._g711_verify = bool(p.screen_g711_verify)
        self._notch_back = bool(p.notch_back)
        self._switch_keeps_last = bool(p.switch_keeps_last)
        self._switch_back = bool(p.switch_back)
        self._verify_keeps_named = bool(p.verify_keeps_named)
        self._g711_holds = bool(p.g711_holds_notch)
        self._pay_flat = bool(p.payment_suspect_flat)
        self._pay_hold = int(round(float(p.payment_hold_ms) * self.rate / 1000.0))
        self._pay_measured = bool(p.payment_measured_pair)
        self._offset_suspect = bool(p.offset_with_suspect)
        self._offset_at_close = bool(p.offset_at_close)  # (helper h15b)
        self._offset_found = True  # (set by each :meth:`_offset_confirms`)
        self._also_share = float(p.also_named_share)
        self._also_lens = [] if p.also_named_ms is None else \
            [k * self._hop for k in ks if k * self._hop <= int(round(p.also_named_ms * self.rate / 1000.0))]
        # cos and sin of each DTMF frequency at window-relative samples 0 .. k - 1 (the G.711 windows' fits; others
        # are added by :meth:`_fit_tabs` when first asked for)
        self._win_tabs = {k * self._hop: (self._cos[(self._freq_int[:, None] * np.arange(k * self._hop)[None, :])
                                                     % self.rate],
                                           self._sin[(self._freq_int[:, None] * np.arange(k * self._hop)[None, :])
                                                     % self.rate])
                           for k, on in zip(ks, self._g711) if on}
        self._skip_energy = self._quiet_bound()
        self._close_hops = max(1, int(round(p.close_ms)))
        self._weak_hops = max(1, int(round(p.weak_run_ms)))
        self._hit_hops = max(1, int(round(p.hit_run_ms)))
        self._suspect_close = int(round(p.suspect_close_ms * self.rate / 1000.0))
        if p.musical_margin_hold_ms is not None and not 0 <= p.musical_margin_hold_ms <= 1000:
            raise ValueError("musical_margin_hold_ms must be None or between 0 and 1000")
        self._margin_hold = None if p.musical_margin_hold_ms is None \
            else int(round(p.musical_margin_hold_ms * self.rate / 1000.0))
        self._persist = int(round(p.persist_ms * self.rate / 1000.0))
        self._native_screen = self._make_native_screen() if _masker_native is not None else None

    def native_constants(self) -> dict:
        """The C screen's constants by name (derived from :attr:`params`): what ``Screen(**...)`` takes."""
        return dict(hop=self._hop, cos=self._cos, sin=self._sin, freq=self._freq_int,
                    ks=np.array(self._ks, dtype=np.int64), is_confirm=np.array(self._is_confirm, dtype=np.int64),
                    quad=np.ascontiguousarray(np.stack(self._quad)), ginv=np.ascontiguousarray(np.stack(self._ginv)),
                    screen_amp2=self._screen_amp2, confirm_amp2=self._confirm_amp2, twist2=self._twist2,
                    screen_resid=self._screen_resid, confirm_resid=self._confirm_resid,
                    weak_resid=self._weak_resid, screen_unique=self._screen_unique,
                    confirm_unique=self._confirm_unique, skip_energy=self._skip_energy,
                    g711=np.array(self._g711, dtype=np.int64), g711_relax=self._g711_relax,
                    hold_ratio=float(self.params.hold_ratio), bound_gain=self._bound_gain(),
                    hit_hops=self._hit_hops, weak_hops=self._weak_hops, close_hops=self._close_hops,
                    persist_samples=self._persist, suspect_close_samples=self._suspect_close)

    def native_output_constants(self) -> dict:
        """The C output side's constants by name (``Output(**...)``): fade ramp, band notch, onset walk-back."""
        nl = self._notch_len
        return dict(hop=self._hop, fade=self._fade, guard=self._guard, fade_ramp=np.ascontiguousarray(self._fade_ramp),
                    notch_len=nl, notch_win=np.ascontiguousarray(self._notch_win[:nl]),
                    notch_basis=self._notch_basis, notch_pinv=self._notch_pinv, onset_len=self._short,
                    onset_step=self._short_step, onset_basis=self._onset_basis, onset_ginv=self._onset_ginv,
                    onset_ratio=float(self._onset_ratio), onset_floor=float(self._onset_floor),
                    fade_notch=self._fade_notch, notch_ramp_in=self._notch_ramp_in, notch_ramp_out=self._notch_tail,
                    notch_cols=int(self._notch_basis.shape[1]))

    def _bound_gain(self) -> np.ndarray:
        """Per window: the largest eigenvalue of any pair's inverse Gram matrix, with a margin of 1e-6 for
        rounding: no pair explains more than it times (strongest row power + strongest column power), so
        the C screen may skip fitting windows where even that is below what its tests need."""
        key = (self._ks, self._hop, self.rate)  # self._ginv comes from these alone
        gain = _BOUND_GAIN_CACHE.get(key)
        if gain is None:
            lam = [max(float(np.linalg.eigvalsh(0.5 * (g + g.T)).max()) for g in ginv) for ginv in self._ginv]
            gain = np.array(lam) * (1.0 + 1e-6)
            gain.setflags(write=False)  # shared by every masker with these windows
            gain = _BOUND_GAIN_CACHE.setdefault(key, gain)
        return gain

    def _make_native_screen(self):
        return _masker_native.Screen(**self.native_constants())

    @staticmethod
    def _quad_terms(ginv: np.ndarray) -> np.ndarray:
        """``[10, 16]``: per pair, the coefficients of ``v^T G^-1 v`` on the terms v0², v1², v2², v3², v0v1,
        v2v3, v0v2, v0v3, v1v2, v1v3 (v: row cos, row sin, column cos, column sin correlations), the order
        both screens sum them in."""
        g = ginv
        return np.ascontiguousarray(np.stack([
            g[:, 0, 0], g[:, 1, 1], g[:, 2, 2], g[:, 3, 3], g[:, 0, 1] + g[:, 1, 0], g[:, 2, 3] + g[:, 3, 2],
            g[:, 0, 2] + g[:, 2, 0], g[:, 0, 3] + g[:, 3, 0], g[:, 1, 2] + g[:, 2, 1], g[:, 1, 3] + g[:, 3, 1]]))

    def _quiet_bound(self) -> float:
        """Energy below which no window of a frame can pass any amplitude floor (the screen skips it).

        A window passes only if both fitted tones reach the screen floor, so ``|coef|^2 >= 2 floor^2``;
        ``coef = G^-1 B^T x`` gives ``|coef|^2 <= |x|^2 / s_min(B)^2``, and a window's ``|x|^2`` is at
        most the frame's.  Half that bound leaves room for rounding: a skipped frame never hides a tone.
        """
        key = (self._ks, self._hop, self.rate)  # the smallest singular value depends on these alone
        worst = _QUIET_SV2_CACHE.get(key)
        if worst is None:
            worst = min(float(np.linalg.svd(pairfit.pair_tables(k * self._hop, self.rate)[0][:, idx],
                                            compute_uv=False)[-1]) ** 2
                        for k in self._ks for idx in pairfit.PAIR_COLS)
            worst = _QUIET_SV2_CACHE.setdefault(key, worst)
        return 0.5 * 2.0 * self._screen_amp2 * worst

    # ------------------------------------------------------------------ the screen
    def _screen(self, seg: np.ndarray, b0: int, nh: int):
        """Fit the 16 key pairs to every screen window ending at each of ``nh`` hops.

        ``seg`` holds whole hop-long blocks starting at absolute block ``b0``: the longest window of the
        first hop, then one block per further hop.  Returns per hop ``(suspect pair, confirmed pair,
        the confirmed pair's 4 coefficients, weakly present pair, energy each pair explains in the
        longest window [nh, 16])`` (-1: none) and whether any hop has a suspect, confirmed or weak pair.
        The C screen (native/masker.c) computes the same numbers bit for bit: every sum is taken in the
        same order (``tests/test_masker_native.py``).
        """
        out = self._screen_bufs.get(nh)
        if out is None:
            out = (np.empty(nh, dtype=np.int64), np.empty(nh, dtype=np.int64), np.empty((nh, 4)),
                   np.empty(nh, dtype=np.int64), np.empty((nh, 16)))
            self._screen_bufs[nh] = out
        if self._native_screen is not None and goertzel.backend() == "native":
            any_hit = self._native_screen.screen(seg, b0, *out)
        else:
            any_hit = self._screen_numpy(seg, b0, nh, *out)
        return out, bool(any_hit)

    def _screen_numpy(self, seg, b0, nh, suspect, conf, conf_coef, weak, expl_long) -> int:
        hop, rate = self._hop, self.rate
        nb = seg.size // hop
        xb = seg.reshape(nb, hop)
        # per block: energy and correlations with cos/sin of the 8 frequencies at absolute positions
        energy = xb[:, 0] * xb[:, 0]
        for k in range(1, hop):
            energy = energy + xb[:, k] * xb[:, k]
        total = float(np.cumsum(energy)[-1])
        if not total >= self._skip_energy:  # no window can reach the amplitude floors: nothing to fit
            suspect.fill(-1)
            conf.fill(-1)
            conf_coef.fill(0.0)
            weak.fill(-1)
            expl_long.fill(0.0)
            return 0
        # correlations with the block-relative basis, then turned to each block's absolute phase
        ct, st = self._rel_cos, self._rel_sin  # [8, hop]
        rc = ct[:, 0, None] * xb[None, :, 0]
        rs = st[:, 0, None] * xb[None, :, 0]
        for k in range(1, hop):
            rc = rc + xb[None, :, k] * ct[:, k, None]
            rs = rs + xb[None, :, k] * st[:, k, None]
        pi = (self._freq_int[:, None] * ((b0 + np.arange(nb, dtype=np.int64)) * hop)[None, :]) % rate
        cs, sn = self._cos[pi], self._sin[pi]
        cc = cs * rc - sn * rs  # [8, nb]
        ss = sn * rc + cs * rs
        # window sums as a binary tree of block sums: level l holds sums of 2^l blocks
        levels = [np.concatenate([energy[None, :], cc, ss], axis=0)]  # [17, nb]
        for lv in range(1, self._levels[-1] + 1):
            half = 1 << (lv - 1)
            prev = levels[-1]
            levels.append(prev[:, : prev.shape[1] - half] + prev[:, half:])
        kmax = self._kmax
        suspect.fill(-1)
        conf.fill(-1)
        conf_coef.fill(0.0)
        weak.fill(-1)
        rows, cols = self._pair_rows[:, 0], self._pair_rows[:, 1]
        hs = np.arange(nh)
        g711_hit = np.full(nh, -1, dtype=np.int64)
        for wi, (k, lv, quad, ginv) in enumerate(zip(self._ks, self._levels, self._quad, self._ginv)):
            lo = kmax - k
            f = levels[lv][:, lo: lo + nh]
            e, c, s = f[0], f[1:9], f[9:17]
            start = (b0 + lo + np.arange(nh, dtype=np.int64)) * hop
            ri = (self._freq_int[:, None] * start[None, :]) % rate
            cs, sn = self._cos[ri], self._sin[ri]
            cr = c * cs + s * sn  # [8, nh]: window-relative cos and sin correlations
            sr = s * cs - c * sn
            best, r1, r2, ar2, ac2, coef, ex = _best_pair_fit(cr, sr, e, quad, rows, cols, hs, ginv)
            shape = (ar2 <= self._twist2 * ac2) & (ac2 <= self._twist2 * ar2) & (e > 0)
            amp = np.minimum(ar2, ac2)
            free = suspect < 0
            hit = free & shape & (amp >= self._screen_amp2) & (r1 <= self._screen_resid * e) \
                & (r2 >= self._screen_unique * r1)
            suspect[hit] = best[hit] + 16 * wi  # the pair and which window named it
            if self._g711[wi]:
                # windows the screen does not name but would name within the margin: named if their G.711
                # round trip (µ-law or A-law, as the agent hears them) is (the first such window per hop)
                rx = self._g711_relax
                near = (suspect < 0) & (g711_hit < 0) & (ar2 <= rx * self._twist2 * ac2) \
                    & (ac2 <= rx * self._twist2 * ar2) & (e > 0) \
                    & (rx * amp >= self._screen_amp2) & (r1 <= rx * self._screen_resid * e) \
                    & (rx * r2 >= self._screen_unique * r1)
                idx = np.flatnonzero(near)
                if idx.size:
                    n = k * hop
                    wins = seg[((lo + idx) * hop)[:, None] + np.arange(n)[None, :]]
                    named = self._g711_named(wins, wi)
                    got = named >= 0
                    g711_hit[idx[got]] = named[got] + 16 * wi
            if self._is_confirm[wi]:
                free = conf < 0
                ok = free & shape & (amp >= self._confirm_amp2) & (r1 <= self._confirm_resid * e) \
                    & (r2 >= self._confirm_unique * r1)
                conf[ok] = best[ok]
                conf_coef[ok] = coef[ok]
            if wi == len(self._ks) - 1:
                ok = shape & (amp >= self._screen_amp2) & (r1 <= self._weak_resid * e)
                weak[ok] = best[ok]
                expl_long[...] = ex.T
        # a hop named only through G.711: flagged by 16 * the number of windows (:meth:`_step` reads the flag)
        only = (suspect < 0) & (g711_hit >= 0)
        suspect[only] = g711_hit[only] + 16 * len(self._ks)
        return int(bool((suspect >= 0).any() or (weak >= 0).any()))

    def _g711_keypad(self, e: int, pair: int, buf_start: int) -> bool:
        """A window named only through G.711 counts (no press open) when the pair's two tones over the 16 ms window
        ending at ``e`` are off nominal by shares at most ``screen_g711_spread`` apart, each within
        ``offset_error_max`` (6 % without the offset rules): one keypad oscillator, not a note's or a voice's
        partials near a key pair (:class:`MaskerParams`)."""
        if self._g711_spread is None:
            return True
        n = self._kmax * self._hop
        return self._offset_keypad(self._buf[e - n - buf_start: e - buf_start], pair,
                                   0.06 if self._offset_max is None else self._offset_max, self._g711_spread) is not None

    def _g711_named(self, wins: np.ndarray, wi: int) -> np.ndarray:
        """Per row of ``wins`` (samples of screen window ``wi``): the pair the screen's test names in its µ-law
        round trip, else in its A-law one, else -1; every sum in the order of the C screen (``g711_named``):
        sample by sample, then term by term."""
        out = np.full(wins.shape[0], -1, dtype=np.int64)
        for law in ("ulaw", "alaw"):
            best, ok = self._fit_named(_g711_round_trip(wins, law), self._quad[wi], self._ginv[wi])
            ok &= out < 0
            out[ok] = best[ok]
        return out

    def _fit_named(self, y: np.ndarray, quad, ginv):
        """Per row of ``y`` (windows of one length; ``quad``, ``ginv``: that length's fit, as a screen window's): the
        best pair of the screen's fit and whether the screen's test passes on it; every sum in the order of the C
        screen (``fit_named``)."""
        n = y.shape[1]
        ct, st = self._fit_tabs(n)
        rows, cols = self._pair_rows[:, 0], self._pair_rows[:, 1]
        hs = np.arange(y.shape[0])
        e = y[:, 0] * y[:, 0]
        cr = ct[:, 0, None] * y[None, :, 0]
        sr = st[:, 0, None] * y[None, :, 0]
        for j in range(1, n):
            e = e + y[:, j] * y[:, j]
            cr = cr + y[None, :, j] * ct[:, j, None]
            sr = sr + y[None, :, j] * st[:, j, None]
        best, r1, r2, ar2, ac2, coef, ex = _best_pair_fit(cr, sr, e, quad, rows, cols, hs, ginv)
        return best, self._screen_passes(e, r1, r2, ar2, ac2)

    def _fit_tabs(self, n: int):
        """cos and sin of each DTMF frequency at window-relative samples 0 .. n - 1 (the windows' own fits)."""
        tabs = self._win_tabs.get(n)
        if tabs is None:
            rel = (self._freq_int[:, None] * np.arange(n)[None, :]) % self.rate
            tabs = self._win_tabs[n] = (self._cos[rel], self._sin[rel])
        return tabs

    def _screen_passes(self, e, r1, r2, ar2, ac2, relax: float = 1.0):
        """The screen's test on fitted windows (arrays): energy, the pair's share and uniqueness, both tones' level
        and the twist between them; ``relax`` > 1 loosens every bound by that factor (the G.711 margin's test)."""
        return (ar2 <= relax * self._twist2 * ac2) & (ac2 <= relax * self._twist2 * ar2) & (e > 0) \
            & (relax * np.minimum(ar2, ac2) >= self._screen_amp2) & (r1 <= relax * self._screen_resid * e) \
            & (relax * r2 >= self._screen_unique * r1)

    # ------------------------------------------------------------------ decisions
    def _decide(self, hops: range, buf_start: int) -> None:
        for i in range(0, len(hops), _BATCH):  # bounded memory when a whole file comes in one chunk
            self._decide_batch(hops[i: i + _BATCH], buf_start)

    def _decide_batch(self, hops: range, buf_start: int) -> None:
        nh = len(hops)
        first = hops[0] - self._kmax * self._hop
        seg = self._buf[first - buf_start: hops[-1] - buf_start]
        (suspect, conf, conf_coef, weak, expl_long), any_hit = self._screen(seg, first // self._hop, nh)
        if not any_hit and self._active is None and self._suspect is None and not self._pending \
                and not self._conceals and not self._inside_in(hops):
            self._weak_pair, self._weak_run = -1, 0  # what the steps would leave: no weak pair ...
            self._hit_pair, self._hit_run = -1, 0  # ... and no screen hit
            return  # the common case (speech, silence): nothing to track
        self._batch_first, self._batch_last = hops[0], hops[-1]
        if self._active is not None and self._steady_press(conf, suspect, weak, expl_long):
            self._weak_pair, self._weak_run = self._track_run(weak, self._weak_pair, self._weak_run)
            hits = np.where(suspect >= 0, suspect % 16, -1)
            self._hit_pair, self._hit_run = self._track_run(hits, self._hit_pair, self._hit_run)
            return  # a press held through the whole frame: what the per-hop steps would conclude
        self._steps(hops, buf_start, suspect, conf, conf_coef, weak, expl_long)

    def _steps(self, hops: range, buf_start: int, suspect, conf, conf_coef, weak, expl_long) -> None:
        step = self._step_chain if self._chain_len is not None else self._step
        for i, e in enumerate(hops):
            step(int(e), int(suspect[i]), int(conf[i]), conf_coef[i], int(weak[i]), expl_long[i],
                       buf_start)

    @staticmethod
    def _track_run(values: np.ndarray, pair: int, run: int) -> Tuple[int, int]:
        """The (pair, run length) state the per-hop steps would leave after ``values`` (-1: none)."""
        last = int(values[-1])
        if last < 0:
            return -1, 0
        differ = np.flatnonzero(values != last)
        n = values.size if differ.size == 0 else values.size - 1 - int(differ[-1])
        if differ.size == 0 and last == pair:
            n += run
        return last, n

    def _steady_press(self, conf, suspect, weak, expl_long) -> bool:
        """While a press is masked and every hop either confirms the same pair or holds it, the per-hop
        steps only raise ``_steady`` and clear the misses: do that at once (same result, no loop)."""
        p = self._pair
        if self._press_due <= self._batch_last or self._rejected or self._conceals or self._press_named:
            return False  # a keypad test due, or a rejected pair's hops: per hop (as the C frame)
        same = conf == p
        if not ((conf < 0) | same).all():
            return False
        e = expl_long[:, p]
        # steady as the steps would have it at each hop: the running maximum over confirming hops so far
        running = np.maximum.accumulate(np.where(same, e, self._steady))
        running = np.maximum(running, self._steady)
        hold = same | (e >= self._hold_ratio * running) | (weak == p) | ((suspect >= 0) & (suspect % 16 == p))
        if not hold.all():
            return False
        self._steady = float(running[-1])
        self._misses = 0
        return True

    def _step(self, e: int, sus: int, conf: int, coef: np.ndarray, weak: int, expl: np.ndarray,
              buf_start: int) -> None:
        # (``keypad_burst_chain_*`` on: the callers take :meth:`_step_chain` instead; never bound on the instance,
        # which would make every masker a reference cycle)
        if self._suspect is not None and self._suspect[4]:
            self._music_seen = e  # (a musical suspect: Python takes every hop it is open, C frame or not)
        # ``notch_join_ms`` and ``verify_onset_jump`` only away from music (``onset_music_after_ms`` after a musical
        # suspect): a chord's notches stay apart, a note's onset is not a key's
        self._unmusical = self._onset_music_after is None or e - self._music_seen > self._onset_music_after
        unsure = -1  # a window named only through G.711 whose pair failed the keypad test: verified, never trusted
        dropped = -1  # (the same window whatever ``screen_g711_verify``: what a musical suspect's notch follows)
        if sus >= self._g711_flag:  # named only through G.711 (:meth:`_screen_numpy`)
            sus -= self._g711_flag
            if self._active is None and not self._g711_keypad(e, sus % 16, buf_start):
                # (with no press open the C frame hands every named hop to these steps)
                dropped = sus
                unsure = sus if self._g711_verify else -1
                sus = -1
        lim = self._writable(e)
        concealed = self._concealment(e, sus, conf, weak, lim, buf_start) if self._conceals else False
        if self._inside_lens and self._active is None and self._inside_due(e):
            self._inside_check(e, lim, buf_start)  # (``notch_inside_*``: every half notch block inside a burst)
        if self._active is not None and e >= self._press_due:
            self._press_due = _NO_DUE
            keypad_due, self._keypad_due = e >= self._keypad_due, _NO_DUE if e >= self._keypad_due else self._keypad_due
            failed = keypad_due and not self._keypad(e, self._pair, buf_start)
            if keypad_due and not failed and (self._burst_n or self._ctx_len):
                # (``keypad_burst_*``: a key's grade, unless the octave test finds notes, or held notes before it)
                self._burst_keypad = not (self._burst_music is not None and self._music_context(
                    e, self._active.start, buf_start, self._burst_music, gated=False))
            if failed:
                if self._reject_named:
                    # two notes (a chord) near a key pair, not a keypad: its mask goes on only while a window
                    # could name the pair (a band notch would not do: it leaves a tone 4 % off nameable)
                    self._press_named = True
                else:
                    # ... the mask ends here, and the pair opens nothing while it lasts
                    self._close(self._active, e + self._guard)
                    self._active = None
                    self._rejected[self._pair] = e
            elif self._octave_notes(e, self._pair, buf_start):
                self._press_named = True  # one note's partials an octave apart, no keypad (``press_octave_*``)
            self._press_due = min(self._press_due, self._keypad_due)  # (a keypad test still to come)
        if self._rejected:
            for r, last in list(self._rejected.items()):
                if e - last > self._reject_hold:
                    del self._rejected[r]  # gone ``reject_hold_ms``: that pair is a key again
                elif conf == r or weak == r or (sus >= 0 and sus % 16 == r):
                    # a pair found to be no keypad is still there (a held note): it neither opens nor holds
                    # anything while it lasts
                    self._rejected[r] = e
                    conf = -1 if conf == r else conf
                    weak = -1 if weak == r else weak
                    sus = -1 if sus >= 0 and sus % 16 == r else sus
        if weak >= 0 and weak == self._weak_pair:
            self._weak_run += 1
        else:
            self._weak_pair, self._weak_run = weak, int(weak >= 0)
        notes = self._active is None and (conf >= 0 or sus >= 0) and self._octave_memory is not None \
            and self._octave_tol is not None and self._octave_again(e, conf, sus, buf_start)
        if not notes and conf >= 0 and self._active is None and self._music_persist is not None:
            # ``music_context_*``: a confirmation in a musical context (the notes before it persist) is notes: a
            # suspect watches them (notched where a window names them, never a press by persistence), no flat mask
            memo = self._music_memo  # (the run of hops confirming this pair: measured at its first hop only)
            judged = memo[2] if memo[0] == conf and memo[1] == e - self._hop \
                else self._music_context(e, e - self._kmax * self._hop, buf_start)
            self._music_memo = (conf, e, judged)
            if judged:
                notes = True
                self._as_notes(conf, e)
        if notes and conf >= 0:  # (as the 16 ms window naming it: the silent suspect's notch, below)
            sus, conf = conf + 16 * (len(self._ks) - 1), -1
        hit = sus % 16 if sus >= 0 else -1
        if hit >= 0 and hit == self._hit_pair:
            self._hit_run += 1
        else:
            self._hit_pair, self._hit_run = hit, int(hit >= 0)
        if notes:
            self._hit_run, hit = 0, -1  # (no press by a run of hits either)
        press = -1  # the pair a run of screen hits or the offset rule confirms as a press at this hop
        if conf < 0 and self._active is None and hit >= 0:
            if self._hit_run >= self._hit_hops:
                press = hit
            elif self._offset_max is not None and (
                    self._hit_run == 1 or (e // self._hop) % self._offset_every == 0):
                if self._offset_confirms(e, hit, expl, buf_start):
                    press = hit
                elif self._pay_measured and not self._offset_found and (
                        self._paying(e) or (self._burst_measured and self._in_burst(e))):
                    # ``payment_measured_pair``: under the payment profile, the pair the 16 ms window's spectrum
                    # peaks point at when the screen named another whose tones are not there (a key 4 % off named
                    # as a neighbour)
                    press = self._measured_confirms(e, hit, expl, buf_start)
        if press >= 0 and self._music_hit_run and self._music_notes_hit(e, press, buf_start):
            press = -1  # ``music_context_hit_run``: notes, not a press (a suspect watches them, below)
        if press >= 0:
            # the attacker's rule names the same pair at every hop for a while (a clean tone whose
            # frequency error keeps single windows under the confirmation thresholds): a press
            self._press_from_onset(e, press, expl, buf_start, lim)
            return
        if conf >= 0:
            if self._active is None:
                onset = self._onset(e, conf, 0.5 * float(coef @ coef) * self._short, buf_start, lim)
                self._open_press(max(self._align_down(onset - self._guard), lim), lim, conf)
                self._press_due = self._press_tests(e, conf)
            if self._pair != conf:
                self._pair, self._steady = conf, 0.0
                # another pair: tested as a press of its own (unless one note's octave again, :meth:`_octave_switch`)
                if self._press_named and not self._octave_switch(e, conf, buf_start):
                    self._press_named = False
                    self._press_due = self._press_tests(e, conf)
            self._steady = max(self._steady, float(expl[conf]))
            self._misses = 0
            self._end_suspect(e)
            return
        if self._active is not None:
            p = self._pair
            if self._press_named:
                held = (sus >= 0 and sus % 16 == p) or bool(self._named(e, p, buf_start))
            else:
                held = expl[p] >= self._hold_ratio * self._steady or (sus >= 0 and sus % 16 == p) or weak == p
            if held:
                self._misses = 0
            elif concealed:
                pass  # a window over made-up audio is no evidence that the press ended
            else:
                self._misses += 1
                if self._misses >= self._close_hops and not self._press_named and self._measured_hold \
                        and self._held_measured(e, p, buf_start):
                    self._misses = 0  # the pair is still there, off nominal (:meth:`_held_measured`)
                if self._misses >= self._close_hops:
                    if (self._burst_n or self._ctx_len) and not self._press_named:
                        self._burst_press(e, self._active.start, p)
                    self._close(self._active, e + self._guard)
                    self._active = None
                    self._press_due = _NO_DUE
                    if not self._press_named:
                        self._ended(p, e, self._recent_len)
                        self._press_ended[p] = e
                        q = self._opened_pair
                        if self._ended_opening and 0 <= q != p:  # the key under a louder voice's pair
                            self._ended(q, e, self._recent_len)
                            self._press_ended[q] = e
                    if self._press_named and self._suspect is None:
                        # the notes go on below the attacker's reach: a silent suspect of their pair, notched
                        # wherever a window names it again, never a press by persistence (2: after a press)
                        self._suspect = [p, e, e, None, 2]
                    self._press_named = False
            return
        sp = self._suspect
        # the same pair carrying half of the 16 ms window for a few hops: a tone under speech (or a
        # steady note); notched from its walked-back onset, masked flat if it persists
        if sp is not None and sp[3] is not None and self._musical(sp):
            # a musical pair's notch (no keypad's: its tones apart) is held only while a window
            # names it (:meth:`_musical_named`: as the agent hears it), not while it is weakly present
            # (``musical_margin_hold_ms``, helper m14a: the margin's 8 ms windows hold it only that long after its
            # start)
            margin = self._margin_hold is None or e - sp[3].start <= self._margin_hold
            if (sus < 0 or sus % 16 != sp[0]) and self._musical_named(e, sp[0], sus, dropped, buf_start, margin):
                sp[2] = e
        elif sp is not None and weak == sp[0]:
            sp[2] = e
        elif self._weak_run >= self._weak_hops and (self._weak_run - self._weak_hops) % self._weak_hops == 0 \
                and (sp is None or sp[0] != weak) and not self._harmonic(e, weak, buf_start):
            # (tested every ``weak_run_ms`` of the run, not every hop: the harmonic test costs a fit)
            apart = sp is None and self._apart(e, weak, buf_start)
            if sp is None and (apart or self._weak_share(e, weak, expl, buf_start) < self._weak_notch):
                # silent (no notch) until a short window the attacker could name, with a margin, carries
                # the pair (:meth:`_named`); a pair carrying ``weak_notch_fraction`` is notched at once,
                # unless its two tones are apart (no keypad: a note's or a voice's partials)
                notes = not apart and self._music_silent and self._music_context(
                    e, e - (self._kmax + self._weak_run) * self._hop, buf_start)
                # (``music_context_silent``: a keypad-like pair with held notes before it is notes, as below)
                self._suspect = sp = [weak, e, e, None, 2 if notes else apart]
            elif sp is None and self._music_weak and self._music_context(
                    e, e - (self._kmax + self._weak_run) * self._hop, buf_start):
                # ``music_context_weak``: a pair held in the 16 ms window with held notes before it: notes (silent,
                # notched only where a window names them, never a press by persistence)
                self._suspect = sp = [weak, e, e, None, 2]
            elif sp is None:
                steady = float(expl[weak]) * self._short / (self._kmax * self._hop)
                # a notch has no fade: it may start at the first sample not yet emitted (lim - fade)
                onset = self._onset(e, weak, steady, buf_start, lim - self._fade)
                start = max(self._align_down(onset - self._guard), lim - self._fade)
                self._suspect = sp = [weak, e, e, self._open_notch(start, lim), False]
                self._ended(weak, e, self._recent_weak)  # (a keypad-like pair held in the 16 ms window)
            else:
                # another pair held in the 16 ms window: a suspect of that pair, musical if its tones are apart
                # (``weak_switch_apart``; else a keypad's, which persistence may mask flat)
                sp[0], sp[1], sp[2], sp[4] = weak, e, e, self._switch_apart and self._apart(e, weak, buf_start)
        if sp is not None and sp[3] is None and (sus < 0 or (self._musical_exact and self._musical_any and self._musical(sp))):
            # (``musical_named_any_pair``: a window the screen names opens a silent musical suspect's notch whatever
            # its pair; a short one of another pair is then kept pending, below, as with no suspect)
            length = self._musical_named(e, sp[0], sus, dropped, buf_start) if self._musical(sp) \
                else self._named(e, sp[0], buf_start)
            if length:
                # from the pair's walked-back onset, as a press (a notch has no fade: it may start at the
                # first sample not yet emitted, lim - fade)
                named = sus if sus >= 0 else dropped
                if self._musical(sp) and (self._musical_from_named or (
                        self._musical_exact and named >= 0 and named % 16 != sp[0])
                        or self._music_named_start(e, sp, length, buf_start)):
                    # a musical pair: what the window names, not its onset (always so for another pair's window)
                    onset = e - length - self._guard
                else:
                    steady = float(expl[sp[0]]) * self._short / (self._kmax * self._hop)
                    onset = min(self._onset(e, sp[0], steady, buf_start, lim - self._fade), e - length - self._guard)
                sp[3] = self._open_notch(max(self._align_down(onset - self._guard), lim - self._fade), lim,
                                         join=not self._musical(sp))
                if sp[4] and self._music_persist is not None:
                    self._music_starts.append(sp[3].start)  # (notes, a musical pair: no key's treatment in a context)
        if unsure >= 0 and self._g711_holds and sp is not None and sp[3] is not None and sp[0] == unsure % 16:
            sp[2] = e  # ``g711_holds_notch``: a G.711-only window naming the notched pair holds its notch
        verified, at, last = self._verify_pending(e, expl, buf_start) if self._pending else (-1, e, e)
        if verified >= 0 and (sus < 0 or self._ks[sus // 16] * self._hop <= self._verify_len):
            if self._verify_keeps_named and sus >= 0 and sus % 16 != verified % 16:
                # ``verify_keeps_named``: this hop's own short window names another pair: pending as any short
                # window (an earlier window of another key sharing its column, verified here, took its place)
                self._pending.append((e + self._verify_after, e, sus % 16, self._ks[sus // 16] * self._hop))
            sus = verified
            if verified % 16 in (weak, hit):
                last = e  # the pair is still there at this hop
        else:
            at = last = e
        if unsure >= 0 and (sus < 0 or sus % 16 != unsure % 16) and self._ks[unsure // 16] * self._hop <= self._verify_len:
            # ``screen_g711_verify``: pending like any short window (its verification asks for the pair in the
            # windows around it), whatever suspect is open: nothing is trusted of a window two partials may explain
            self._pending.append((e + self._verify_after, e, unsure % 16, self._ks[unsure // 16] * self._hop))
        if sus >= 0 and self._also_lens and self._active is None and (sp is None or sp[3] is None or (
                self._musical_exact and self._musical(sp))):
            self._pend_also(e, sus % 16, self._ks[sus // 16] * self._hop, expl, buf_start)
        if sus >= 0:
            sus, length = sus % 16, self._ks[sus // 16] * self._hop
            if (sp is None or ((sp[3] is None or (self._musical_exact and self._musical(sp))) and sp[0] != sus)) \
                    and length <= self._verify_len and verified < 0 \
                    and not (self._phold_len and self._pair_held(e, sus)):
                # a short window alone is weak evidence (speech gives a few a minute): keep it pending
                # until the 16 ms window centred on it has been seen, then notch only if that window
                # still carries the pair (a tone under speech does; a chance fit of a syllable does not)
                self._pending.append((e + self._verify_after, e, sus, length))
                return
            # a verified suspect's evidence ends at the last hop that named its pair (``last``), not at the
            # hop that verified it: the notch ends a guard after the evidence, not ``verify_after_ms`` later
            if sp is None:
                # a short window may name a tone a few ms after its onset: ``verify_lead_ms`` and the guard before it
                first = at - length - (self._verify_lead if verified >= 0 else 0)
                start = max(self._align_down(first - (self._notch_head if verified >= 0 else self._guard)),
                            lim - self._fade)  # (``notch_head_ms``)
                reach = self._lead_reach if verified >= 0 else 0  # (``verify_lead_ms``, ``notch_head_ms``)
                if verified >= 0 and self._exact_flat and at - length >= e - self._kmax * self._hop \
                        and self._exact(at, length, sus, buf_start):  # (a window the delay line holds in any chunking)
                    # ``verify_exact_flat``: a tone alone in a gap of the speech is a press (flat mask): the band
                    # notch's 8 ms blocks would put the speech's own projection on the key's frequencies into the gap
                    self._open_press(max(start - reach, lim), lim, sus)  # (the flat mask keeps its lead)
                    self._pair, self._steady, self._misses = sus, float(expl[sus]), 0
                    self._press_due = self._press_tests(e, sus)
                    return
                self._suspect = sp = [sus, at, last, self._open_notch(start, lim, reach=reach), False]
            elif sp[3] is None:  # a silent weak suspect: its pair (or a verified one) is named now
                first = at - length - (self._verify_lead if verified >= 0 else 0)
                first -= self._notch_head if verified >= 0 else self._guard  # (``notch_head_ms``)
                sp[3] = self._open_notch(max(self._align_down(first), lim - self._fade), lim,
                                         reach=self._lead_reach if verified >= 0 else 0)  # (``verify_lead_ms``)
                if sp[0] != sus:
                    sp[0], sp[1], sp[2], sp[4] = sus, at, last, False
            else:
                switched = sp[0] != sus
                if switched:
                    sp[0], sp[1], sp[2], sp[4] = sus, at, self._switched_last(sp, last), False
                if sp[3].source == "notch" and (self._switch_back if switched else self._notch_back):
                    # ``notch_back``: a window naming the notched pair before the notch's start (a short window
                    # verified after a weak suspect opened the notch from a later onset): the notch reaches back to
                    # it; ``switch_back``: the same for a window naming the pair the suspect switches to (one
                    # verified after a window of another pair opened the notch)
                    first = at - length - (self._verify_lead if verified >= 0 else 0)
                    want = max(self._align_down(first - (self._notch_head if verified >= 0 else self._guard)),
                               lim - self._fade)  # (``notch_head_ms``)
                    if want < sp[3].start:
                        sp[3].start = want
            sp[2] = max(sp[2], last)
        if sp is None:
            return
        if sp[2] - sp[1] >= self._persist and not self._one_oscillator(e, sp[0], buf_start):
            sp[1] = e  # two partials of a voice or a note, not one keypad: test again after persist_ms
            if self._osc_release and sp[3] is not None and sp[3].source == "notch":
                # ... and silent from here on (a held note's notch would last as long as the note): notched
                # again from its walked-back onset as soon as a short window names its pair (:meth:`_named`)
                # or the screen does; a 16 ms window naming it is a confirmation (flat mask)
                sp[3].end = max(e + self._guard, sp[3].start + 1, sp[3].keep)
                sp[3] = None
        elif sp[2] - sp[1] >= self._persist and sp[4] == 2:
            sp[1] = e  # the notes of a press that failed the keypad test: no press again by persistence
        elif sp[2] - sp[1] >= self._persist and self._music_persist is not None and self._music_held(
                e, sp[3].start if sp[3] is not None else sp[1] - (self._kmax + self._weak_hops) * self._hop, buf_start):
            # ``music_context_*``: held notes before it, a chord's partials: notes (notched only where a window
            # names their pair, never a press by persistence)
            sp[1], sp[4] = e, 2
            if sp[3] is not None:
                self._music_starts.append(sp[3].start)
        elif sp[2] - sp[1] >= self._persist:  # a pair held this long under speech: a press, mask it flat
            self._open_press(-(-lim // self._hop) * self._hop, lim, sp[0])
            self._pair, self._steady = sp[0], float(expl[sp[0]])
            self._misses = 0
            self._end_suspect(e)
        elif e - sp[2] >= self._suspect_close:
            # ---- ``offset_at_close`` (helper h15b): a keypad-like suspect whose pair is still there at one keypad's
            # measured frequencies is a press, not a chance fit that went away (a hop the C frame hands over)
            if self._offset_at_close and self._offset_max is not None and not sp[4] and sp[3] is not None \
                    and sp[3].source == "notch" and self._offset_close(e, sp[0], expl, buf_start) \
                    and not (self._music_hit_run and self._music_context(e, sp[3].start, buf_start)):
                # (in a musical context, as ``music_context_hit_run`` judges the offset rule's other presses: notes, and
                # the suspect ends as it would without the rule)
                self._press_from_onset(e, sp[0], expl, buf_start, lim)
                return
            # ---- end ``offset_at_close``
            if self._phold_len:
                self._pair_hold_chain(sp)  # ``pair_hold_*``: the chain of its pair (the notch ends as below)
            # ``notch_tail_ms`` after the last hop naming its pair (a suspect's flat mask: the guard, as a press's); the
            # notch still joins the next one as one ending a guard after it would (``notch_join_ms``: no new hole)
            if sp[3] is not None and sp[3].source == "notch":
                self._end_suspect(sp[2] + self._notch_tail)
                sp[3].cut = self._guard - self._notch_tail
            else:
                self._end_suspect(sp[2] + self._guard)

    def _press_from_onset(self, e: int, pair: int, expl: np.ndarray, buf_start: int, lim: int) -> None:
        """A press of ``pair`` found at hop ``e`` (a run of hits, the offset rule, ``offset_at_close``): flat-masked
        from its walked-back onset (not before ``lim``), its press tests due, the suspect ended."""
        steady = float(expl[pair]) * self._short / (self._kmax * self._hop)
        onset = self._onset(e, pair, steady, buf_start, lim)
        self._open_press(max(self._align_down(onset - self._guard), lim), lim, pair)
        self._pair, self._steady, self._misses = pair, float(expl[pair]), 0
        self._press_due = self._press_tests(e, pair)
        self._end_suspect(e)

    def _music_held(self, e: int, start: int, buf_start: int) -> bool:
        """``music_context_held_*`` (helper m13e): the context measure (:meth:`_music_context`) for a pair held
        ``persist_ms`` (a press by persistence), with its own thresholds (the same gate)."""
        return self._music_context(e, start, buf_start, (self._held_persist, self._held_away))

    def _music_context(self, e: int, start: int, buf_start: int, limits: Optional[tuple] = None,
                       gated: bool = True) -> bool:
        """``music_context_*`` at hop ``e``: True when the ``music_context_ms`` ending ``music_context_guard_ms``
        before input position ``start`` (walked back through the treatments touching it) hold persistent spectral
        fine structure (held notes: :meth:`_persistence`) in the frames no treatment of the masker touches but the
        ones it judged musical (what it found of a key is left out).  Measured only within ``music_context_after_ms``
        of a hop at which a musical suspect was open (``gated``; else wherever asked)."""
        want_whole, want_away = (self._music_persist, self._music_away) if limits is None else limits
        if self._music_persist is None or (gated and self._music_after is not None
                                           and e - self._music_seen > self._music_after):
            return False
        spans = [span for spans, history in ((self._spans, self._history), (self._notches, self._notch_history))
                 for span in itertools.chain(spans, itertools.islice(reversed(history), 32))
                 if span.source not in _UNTREATED]
        # (back through the treatments that led to it: a suspect's notch before a press is the same sound)
        moved = True
        while moved:
            moved = False
            for span in spans:
                if span.start < start and (span.end is None or span.end > start - self._music_guard - self._music_gap):
                    start, moved = span.start, True
        b = start - self._music_guard
        a = b - self._music_len
        if a < buf_start:
            return False
        # the frames no other treatment touches (what the masker found of a key there is left out: a key's tone
        # held 300 ms is as persistent as a chord)
        n = self._music_n
        hop = n // 2
        nf = (b - a - n) // hop + 1 if b - a >= n else 0
        valid = np.ones(max(nf, 0), dtype=bool)
        for span in spans:
            if span.start < b and (span.end is None or span.end > a) and span.start not in self._music_starts:
                lo = max(0, (span.start - a - n) // hop + 1)
                hi = nf if span.end is None else min(nf, -(-(span.end - a) // hop))
                valid[lo:hi] = False
        whole, away = self._persistence(self._buf[a - buf_start: b - buf_start], valid)
        return whole >= want_whole and away >= want_away

    def _music_named_start(self, e: int, sp: list, length: int, buf_start: int) -> bool:
        """``music_context_from_named``: the musical suspect ``sp``, named at hop ``e`` by a window of ``length``, is
        notes (judged so already, or its context before that window holds them: :meth:`_music_context`): its notch
        starts a guard before that window, not at the pair's walked-back onset (a held note's onset is long past)."""
        if not self._music_from_named:
            return False
        return sp[4] == 2 or self._music_context(e, e - length - self._guard, buf_start)

    def _music_notes_hit(self, e: int, pair: int, buf_start: int) -> bool:
        """``music_context_hit_run`` at hop ``e``: a press by a run of screen hits naming ``pair`` (``hit_run_ms``) or
        by the offset rule (``offset_*``) in a musical context (:meth:`_music_context`, over the context before the run's 16 ms window) is
        notes: True, with a notes suspect of that pair open (silent until a window names it, never a press by
        persistence, as a confirmation judged notes) and the run of hits restarted."""
        if not self._music_context(e, e - (self._kmax + self._hit_run) * self._hop, buf_start):
            return False
        self._as_notes(pair, e)
        self._hit_run = 0
        return True

    def _as_notes(self, pair: int, e: int) -> None:
        """A notes suspect (``[pair, start, last, None, 2]``: silent until a window names it, never a press by
        persistence) of ``pair`` at hop ``e``: opened if none is open, else marked notes, restarted at ``e`` first
        when it followed another pair."""
        sp = self._suspect
        if sp is None:
            self._suspect = [pair, e, e, None, 2]
        else:
            if sp[0] != pair:
                sp[0], sp[1], sp[2] = pair, e, e
            sp[4] = 2

    def _persistence(self, x: np.ndarray, valid: np.ndarray) -> Tuple[float, float]:
        """The music-context measure (the detector's, issue 17): frames of ``_music_n`` samples of ``x`` (Hann
        window, hop half a frame), each frame's log-magnitude spectrum over the band with its mean over
        +-``_music_smooth`` bins taken away, the mean Pearson correlation of each frame with the one half the frames
        later (0.0 for silence), over every such pair whose frames are both ``valid`` (fewer than
        ``music_context_pairs`` pairs: 0.0); and the same over the bins away from the DTMF frequencies (a key's
        tone, or its sidelobes, is no note)."""
        n = self._music_n
        hop = n // 2
        nf = (x.size - n) // hop + 1 if x.size >= n else 0
        if nf < 2:
            return 0.0, 0.0
        frames = np.lib.stride_tricks.sliding_window_view(x, n)[: (nf - 1) * hop + 1: hop] * _hann(n)
        spec = np.fft.rfft(frames, axis=1)[:, self._music_klo: self._music_khi]
        lg = 10.0 * np.log10(np.maximum(spec.real ** 2 + spec.imag ** 2, 1e-6))
        k = self._music_smooth
        width = lg.shape[1] - 2 * k
        if width < 3 or self._music_keep.size < 3:
            return 0.0, 0.0
        cs = np.concatenate([np.zeros((nf, 1)), np.cumsum(lg, axis=1)], axis=1)
        flat = lg[:, k: k + width] - (cs[:, 2 * k + 1: 2 * k + 1 + width] - cs[:, :width]) / (2 * k + 1)
        lag = nf // 2
        firsts = np.flatnonzero(valid[: nf - lag] & valid[lag: nf])
        if firsts.size < self._music_pairs:
            return 0.0, 0.0
        npairs = firsts.size
        out = []
        for d in (flat, flat[:, self._music_keep]):
            total = 0.0
            for i in firsts.tolist():
                u = d[i] - d[i].mean()
                v = d[i + lag] - d[i + lag].mean()
                uu, vv = float(u @ u), float(v @ v)
                if uu > 1e-6 * u.size and vv > 1e-6 * u.size:
                    total += float(u @ v) / math.sqrt(uu * vv)
            out.append(total / npairs)
        return out[0], out[1]

    def _sure_recent(self, named: int, pair: int) -> bool:
        """``verify_recent_sure_ms``: the window (ending at hop ``named``) names the pair of a flat-masked press that
        ended at most that long before."""
        end = self._press_ended.get(pair)
        return end is not None and 0 <= named - end <= self._sure_len

    def _pend_also(self, e: int, pair: int, length: int, expl: np.ndarray, buf_start: int) -> None:
        """``also_named_ms``: the longer windows ending at ``e`` that name another pair than the screen's (by the
        screen's rule) are kept pending too, each verified as a short window of its length; looked for only where
        the screen's pair carries less than ``verify_fraction`` of the 16 ms window ending at ``e`` (or, with
        ``also_named_rival``, less than another pair) and another pair at least ``also_named_share``."""
        n16 = self._kmax * self._hop
        long = self._buf[e - n16 - buf_start: e - buf_start]
        energy = float(long @ long)
        rival = _max_but(expl, pair)
        if float(expl[pair]) >= self._verify_fraction * energy and not (self._also_rival and rival > float(expl[pair])):
            return  # the screen's pair is carried (a key's, verified as such): nothing else is looked for
        if not rival >= self._also_share * energy:
            return
        for n in self._also_lens:
            if n <= length:
                continue
            seg = self._buf[e - n - buf_start: e - buf_start]
            resid, coef, energy = pairfit.pair_fit(seg[None, :], self.rate)
            r = resid[0]
            best = int(np.argmin(r))
            r1 = float(r[best])
            if best == pair or not (energy[0] > 0 and r1 <= self._screen_resid * float(energy[0])):
                continue
            if _min_but(r, best) < self._screen_unique * r1:
                continue
            c = coef[0, best]
            ar2, ac2 = c[0] * c[0] + c[1] * c[1], c[2] * c[2] + c[3] * c[3]
            if min(ar2, ac2) >= self._screen_amp2 and ar2 <= self._twist2 * ac2 and ac2 <= self._twist2 * ar2:
                self._pending.append((e + self._verify_after, e, best, n))

    def _switched_last(self, sp: list, last: int) -> int:
        """The last hop of a notched suspect whose pair changes to one named at ``last`` (``switch_keeps_last``):
        never before the last hop of the pair it had, so its notch is never cut back."""
        return max(sp[2], last) if self._switch_keeps_last else last

    def _concealment(self, e: int, sus: int, conf: int, weak: int, lim: int, buf_start: int) -> bool:
        """Made-up spans at hop ``e``: True when the longest window ending at ``e`` overlaps one.  A span is
        masked flat (once) at the first such hop where a window names or weakly holds a pair, or where anything
        is being treated or was within ``conceal_near_ms`` before it and the made-up samples so far are not
        quieter than one tone at the screen's floor (fail closed: a concealment repeats what preceded it, a
        tone as bursts the screen cannot follow; made-up silence hides nothing); spans no window reaches any
        more are dropped."""
        lo = e - self._kmax * self._hop
        touched = False
        keep = []
        for item in self._conceals:
            start, end, masked = item
            if end <= lo:
                continue  # every window ending from here on lies after it
            keep.append(item)
            if start >= e:
                continue  # (announced ahead of its samples)
            touched = True
            if masked or self._active is not None:
                continue  # (a press being masked holds across it: judged again if the press ends)
            if sus >= 0 or conf >= 0 or weak >= 0 or (
                    (self._suspect is not None or self._pending or self._treated_since(start - self._conceal_near))
                    and self._audible(max(start, buf_start), e, buf_start)):
                first = max(self._align_down(start - self._guard), -(-lim // self._hop) * self._hop)
                for span in reversed(self._spans):  # a mask that just ended and can still be lengthened: one mask
                    if span.source != "error" and span.end is not None and lim <= span.end \
                            and first <= span.end + self._conceal_near:
                        was = span.end
                        self._close(span, end + self._guard)
                        span.end = max(span.end, was)
                        break
                else:
                    span = _Span(first, None, "inband")
                    self._spans.append(span)
                    self._close(span, end + self._guard)
                item[2] = True
        self._conceals = keep
        return touched

    def _audible(self, a: int, b: int, buf_start: int) -> bool:
        """Input [a, b) carries at least the power of one tone at the screen's floor (``screen_min_tone_dbm0``)."""
        if b <= a:
            return False
        seg = self._buf[a - buf_start: b - buf_start]
        return float(seg @ seg) >= 0.5 * self._screen_amp2 * (b - a)

    def _conceal_back(self, start: int, lim: int) -> int:
        """A press or notch starting inside made-up audio, or within ``conceal_near_ms`` after it, starts a guard
        before it instead (as far as not yet emitted): the walk-back to the onset stops at a concealment the
        pair does not fit, which may still carry the key's first ms as bursts (fail closed)."""
        for item in self._conceals:
            if item[0] < start <= item[1] + self._conceal_near:
                start = min(start, max(self._align_down(item[0] - self._guard), -(-lim // self._hop) * self._hop))
        return start

    def _treated_since(self, pos: int) -> bool:
        """A mask of the audio (in-band press, error) or a notch still open, or ending at or after input position
        ``pos`` (a signalled key's cover is not: the audio around it carries no tone the masker did not see)."""
        for spans, history in ((self._spans, self._history), (self._notches, self._notch_history)):
            for span in spans:
                if span.source not in _UNTREATED and (span.end is None or span.end >= pos):
                    return True
            for done in itertools.islice(reversed(history), 8):  # (retired in list order, not by end)
                if done.source not in _UNTREATED and done.end >= pos:
                    return True
        return False

    def _harmonic(self, e: int, pair: int, buf_start: int) -> bool:
        """True when the 16 ms window ending at ``e`` has a component at half the row frequency or twice
        the column frequency within ``harmonic_guard_db`` of the weaker tone: the pair is then a note's
        or a voice's harmonics (a DTMF generator puts nothing there)."""
        if self._guard_db is None:
            return False
        pinv = self._guard_pinv.get(pair)
        if pinv is None:
            r, c, _ = pairfit.PAIRS[pair]
            freqs = [ROW_HZ[r], COL_HZ[c], ROW_HZ[r] / 2] + ([2 * COL_HZ[c]] if 2 * COL_HZ[c] < self.rate / 2 else [])
            t = np.arange(self._kmax * self._hop)[:, None] / self.rate
            f = np.asarray(freqs)[None, :]
            pinv = np.linalg.pinv(np.concatenate([np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)], 1))
            self._guard_pinv[pair] = pinv
        n = self._kmax * self._hop
        coef = pinv @ self._buf[e - n - buf_start: e - buf_start]
        k = pinv.shape[0] // 2
        amp2 = coef[:k] ** 2 + coef[k:] ** 2
        return bool(amp2[2:].max() > min(amp2[0], amp2[1]) * 10 ** (-self._guard_db / 10))

    def _one_oscillator(self, e: int, pair: int, buf_start: int) -> bool:
        """True when the pair's two tones over the last ``persist_ms`` are off nominal by the same share
        (within ``persist_spread_max``): one keypad oscillator, not two harmonics of a voice or a note
        (whose offsets from the row and column frequencies are unrelated).  Each tone's frequency is the
        peak of the window's spectrum on a grid of relative offsets (+-4 % in 0.1 % steps)."""
        if self._spread_max is None:
            return True
        n = self._persist
        seg = self._buf[e - n - buf_start: e - buf_start]
        r, c, _ = pairfit.PAIRS[pair]
        key = (pair, n)
        tab = self._osc_tables.get(key)
        if tab is None:
            t = np.arange(n) / self.rate
            f = np.array([ROW_HZ[r], COL_HZ[c]])[:, None, None] * (1.0 + self._osc_grid)[None, :, None]
            tab = (np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t))  # [2, grid, n]
            self._osc_tables[key] = tab
        power = (tab[0] @ seg) ** 2 + (tab[1] @ seg) ** 2  # [2, grid]
        err = self._osc_grid[np.argmax(power, axis=1)]
        return bool(abs(err[0] - err[1]) <= self._spread_max + 1e-9)

    def _offset_keypad(self, seg: np.ndarray, pair: int, error_max: float,
                       spread: float) -> Optional[Tuple[float, float]]:
        """The pair's two offsets (:meth:`_offset_error` of its row and column tones) when they are one keypad
        oscillator's (:meth:`_keypad_offsets`), else None; the column tone is not measured when the row tone is already too
        far off (the same answer, at half the cost)."""
        r, c, _ = pairfit.PAIRS[pair]
        er = self._offset_error(seg, r)
        if abs(er) > error_max + 1e-9:
            return None
        ec = self._offset_error(seg, 4 + c)
        return (er, ec) if self._keypad_offsets(er, ec, spread, error_max) else None

    @staticmethod
    def _keypad_offsets(er: float, ec: float, spread: float, error_max: float) -> bool:
        """Two tones off nominal by ``er`` and ``ec`` (relative) are one keypad oscillator's: each within
        ``error_max`` and the two at most ``spread`` apart (both with 1e-9 for the grid's rounding)."""
        lim = error_max + 1e-9
        return abs(er) <= lim and abs(ec) <= lim and abs(er - ec) <= spread + 1e-9

    def prepare_shared_tables(self) -> None:
        """Build now the tables that every masker of this rate shares and otherwise builds the first time a rule
        needs one: the key-pair fits per window length, the frequency-offset grids over 16 ms and over
        ``verify_common_ms`` (the longer one 4.8 MB, 13 ms to build), the band grid and the per-pair offset fits.
        Built on first use, they cost the first key of a process's first call one long frame on the media clock
        (16 ms idle, 45 ms on a loaded machine).  The output is the same either way."""
        n16 = self._kmax * self._hop
        for k in self._ks:
            pairfit.pair_tables(k * self._hop, self.rate)
        self._offset_table(n16)
        if self._common_len:
            self._offset_table(self._common_len)
        self._band_table(n16)
        if self._common16 is not None:
            for pair in range(len(pairfit.PAIRS)):
                self._common16_tables(n16, pair)

    def _offset_error(self, seg: np.ndarray, tone: int) -> float:
        """One tone's (index into ``DTMF_HZ``) relative offset from nominal in ``seg`` (16 ms) for the offset
        rules: the peak of its Hann-windowed spectrum on a grid of offsets (+-6 % in 0.25 % steps, a table shared by
        every masker): as :meth:`_tone_errors`, at a third of its cost."""
        tab = self._offset_table(seg.size)
        re, im = tab[0][tone] @ seg, tab[1][tone] @ seg  # [grid] (views of the tables: no copy)
        return float(_OFFSET_GRID[int(np.argmax(re * re + im * im))])

    def _offset_table(self, n: int) -> tuple:
        """The Hann-windowed cos and sin tables of ``_OFFSET_GRID`` for ``n`` samples (shared by every masker)."""
        key = (self.rate, n)
        tab = _OFFSET_TABLES.get(key)
        if tab is None:
            t = np.arange(n) / self.rate
            f = np.asarray(DTMF_HZ, dtype=np.float64)[:, None, None] * (1.0 + _OFFSET_GRID)[None, :, None]
            ph = 2 * np.pi * f * t[None, None, :]
            w = _hann(n)[None, None, :]
            tab = (np.ascontiguousarray(np.cos(ph) * w), np.ascontiguousarray(np.sin(ph) * w))
            for a in tab:
                a.setflags(write=False)
            tab = _OFFSET_TABLES.setdefault(key, tab)
        return tab

    def _offset_confirms(self, e: int, pair: int, expl: np.ndarray, buf_start: int) -> bool:
        """True when the pair, fitted at its two tones' measured frequencies (the 16 ms window ending at ``e``,
        :meth:`_tone_errors`), explains ``offset_fraction`` of one ``offset_windows_ms`` window ending at ``e``:
        a key off nominal by up to ``offset_error_max`` (both tones by the same share, within
        ``offset_spread_max``), which the nominal fits of the screen lose (a 16 ms window fitted at nominal keeps
        about a fifth of a column tone 3 % off); not asked where the nominal 16 ms fit (``expl``) already carries
        ``offset_skip_share`` of the window (a key near nominal, or a key's onset).  Asked only at hops where the
        screen names ``pair`` and no press is open: hops the C frame always hands to these steps."""
        n = self._kmax * self._hop
        seg = self._buf[e - n - buf_start: e - buf_start]
        self._offset_found = True  # (for ``payment_measured_pair``: the screen's pair measured as one keypad's)
        if float(expl[pair]) >= self._offset_skip * float(seg @ seg) and not (
                self._offset_suspect and self._suspect is not None and self._suspect[0] == pair):
            # the nominal fit already carries the pair: a key near nominal, the rules above see it (unless a suspect of
            # the pair is open and none of them took it: ``offset_with_suspect``)
            return False
        offsets = self._offset_keypad(seg, pair, self._offset_max, self._offset_spread)
        if offsets is None:
            self._offset_found = False
            return False
        er, ec = offsets
        r, c, _ = pairfit.PAIRS[pair]
        w = 2.0 * np.pi * np.array([ROW_HZ[r] * (1.0 + er), COL_HZ[c] * (1.0 + ec)]) / self.rate
        ph = np.arange(n)[:, None] * w[None, :]
        basis = np.concatenate([np.cos(ph), np.sin(ph)], axis=1)  # [n, 4]: row cos, col cos, row sin, col sin
        for length in self._offset_lens:  # (a shorter window: the last rows; the fit does not depend on the origin)
            b, x = basis[n - length:], seg[n - length:]
            v = b.T @ x
            try:
                coef = np.linalg.solve(b.T @ b, v)
            except np.linalg.LinAlgError:
                continue
            energy = float(x @ x)
            resid = energy - float(v @ coef)
            ar2 = coef[0] * coef[0] + coef[2] * coef[2]
            ac2 = coef[1] * coef[1] + coef[3] * coef[3]
            if energy > 0 and resid <= self._offset_resid * energy and min(ar2, ac2) >= self._confirm_amp2 \
                    and ar2 <= self._twist2 * ac2 and ac2 <= self._twist2 * ar2:
                return True
        return False

    def _offset_close(self, e: int, pair: int, expl: np.ndarray, buf_start: int) -> bool:
        """``offset_at_close``: :meth:`_offset_confirms` asked at a suspect's closing hop (its flag for
        ``payment_measured_pair`` left as it was: that rule is asked only where the screen names a pair)."""
        found = self._offset_found
        try:
            return self._offset_confirms(e, pair, expl, buf_start)
        finally:
            self._offset_found = found

    def _measured_confirms(self, e: int, named: int, expl: np.ndarray, buf_start: int) -> int:
        """``payment_measured_pair``: the pair whose row and column tones are nearest the strongest peaks of the
        16 ms window ending at ``e`` (Hann-windowed spectrum, one peak in each group's band from 6 % under its
        lowest tone to 6 % over its highest, :meth:`_band_table`), when it is not ``named`` (the screen's pair,
        already tested), the peaks are one keypad oscillator's to the grid's step, and :meth:`_offset_confirms`
        confirms it: a press of that pair; else -1."""
        n = self._kmax * self._hop
        table, nb, split, tone, err, slack = self._band_table(n)
        v = table @ self._buf[e - n - buf_start: e - buf_start]
        power = v[:nb] * v[:nb] + v[nb:] * v[nb:]
        r = int(np.argmax(power[:split]))
        c = split + int(np.argmax(power[split:]))
        pair = int(tone[r]) * 4 + int(tone[c])  # (pairfit.PAIRS: row by row)
        if pair == named or not self._keypad_offsets(float(err[r]), float(err[c]),
                                                     self._offset_spread + float(slack[r] + slack[c]),
                                                     self._offset_max + float(max(slack[r], slack[c]))):
            return -1  # (no keypad oscillator's peaks, to the grid's step: the measure and fits would say no)
        return pair if self._offset_confirms(e, pair, expl, buf_start) else -1

    def _band_table(self, n: int) -> tuple:
        """For :meth:`_measured_confirms`, shared by every masker of the rate: the Hann-windowed DFT of ``n``
        samples on a grid of frequencies (every other bin of a ``_keypad_nfft``-point rfft, 8 Hz at 8 kHz) from 6 %
        under each group's lowest tone to 6 % over its highest: (cos rows then sin rows [2 * bins, n], bins, the
        first column-group bin, each bin's nearest tone within its group (0-3), its relative offset from that tone,
        and the grid's step relative to it)."""
        key = ("bands", self.rate, n)
        tab = _OFFSET_TABLES.get(key)
        if tab is None:
            nfft, step = self._keypad_nfft, 2
            hz, tone, err = [], [], []
            for group in (ROW_HZ, COL_HZ):
                lo = int(math.ceil(group[0] * 0.94 * nfft / self.rate))
                hi = int(math.floor(group[-1] * 1.06 * nfft / self.rate))
                f = np.arange(lo, hi + 1, step) * self.rate / nfft
                t = np.argmin(np.abs(f[:, None] / np.asarray(group)[None, :] - 1.0), axis=1)
                hz.append(f)
                tone.append(t)
                err.append(f / np.asarray(group)[t] - 1.0)
            f, t, er = np.concatenate(hz), np.concatenate(tone), np.concatenate(err)
            nominal = f / (1.0 + er)
            ph = 2 * np.pi * f[:, None] * np.arange(n)[None, :] / self.rate
            table = np.ascontiguousarray(np.concatenate([np.cos(ph), np.sin(ph)]) * _hann(n)[None, :])
            slack = step * self.rate / nfft / nominal
            for a in (table, t, er, slack):
                a.setflags(write=False)
            tab = _OFFSET_TABLES.setdefault(key, (table, f.size, hz[0].size, t, er, slack))
        return tab

    def _keypad(self, e: int, pair: int, buf_start: int) -> bool:
        """False when the pair's two tones over the last ``persist_ms`` are clearly no keypad's: one tone off
        nominal by more than ``press_tone_error_max`` (ITU-T Q.24 asks receivers to reject beyond 3.5 %) or the
        two off by shares more than ``press_spread_max`` apart.  Each tone's frequency is the peak of the
        window's spectrum within +-6 % of nominal (zero-padded FFT: 3.9 Hz bins at 8 kHz, 0.24-0.56 % of a DTMF
        tone, far finer than the 3.5 % tested; no per-masker tables: thousands of maskers run in one process)."""
        if not self._keypad_test:
            return True
        n = self._persist
        seg = self._buf[e - n - buf_start: e - buf_start]
        err = self._peak_errors(np.fft.rfft(seg, self._keypad_nfft), pair)
        spread_ok = self._keypad_spread is None or abs(err[0] - err[1]) <= self._keypad_spread + 1e-9
        error_ok = self._keypad_error is None or max(abs(err[0]), abs(err[1])) <= self._keypad_error + 1e-9
        return bool(spread_ok and error_ok)

    def _held_measured(self, e: int, pair: int, buf_start: int) -> bool:
        """A press about to close (its pair, fitted at nominal, under ``hold_ratio`` of its steady energy for
        ``close_ms``): True when the pair fitted at its two tones' measured frequencies (spectral peaks over the
        ``press_hold_measured_ms`` ending at ``e``) still explains ``press_hold_measured`` of the press's steady
        energy in the 16 ms window, its tones within 12 dB of each other, and as much power in the last 4 ms: a
        chord's notes off nominal under a drum hit, not a press that ended (a key's tones stop; masking on never
        leaks)."""
        n = self._kmax * self._hop
        k = 4 * self._hop
        need = self._measured_hold * self._steady
        last = self._buf[e - k - buf_start: e - buf_start]
        if float(last @ last) * n < need * k:
            return False  # (no fit explains more than the last 4 ms hold: a key that stopped, no FFT)
        # (4 ms resolve 250 Hz: the pair at nominal explains there about what it does at tones a few % off)
        b, cols, ginv = pairfit.pair_tables(k, self.rate)
        v = b[:, cols[pair]].T @ last
        if 2.0 * float(v @ ginv[pair] @ v) * n < need * k:
            return False
        r, c, _ = pairfit.PAIRS[pair]
        er, ec = self._tone_errors(self._buf[e - self._measured_len - buf_start: e - buf_start], pair)
        freqs = (ROW_HZ[r] * (1.0 + er), COL_HZ[c] * (1.0 + ec))
        amp, explained = self._fit_at(e - n, e, freqs, buf_start)
        ar2, ac2 = abs(amp[0]) ** 2, abs(amp[1]) ** 2
        if not (explained >= need and min(ar2, ac2) >= max(ar2, ac2) / 16.0):
            return False
        # ... and still there in the last 4 ms (as much power): a key that stopped leaves only its tail in the
        # 16 ms window, so the mask of a key ends when it did without the rule (durations independent of the key)
        _, recent = self._fit_at(e - k, e, freqs, buf_start)
        return bool(recent * n >= need * k)

    def _press_tests(self, e: int, pair: int) -> int:
        """The hop at which a press of ``pair`` opened (or tested anew) at hop ``e`` is first tested: the keypad test
        at ``persist_ms``, the octave test (:meth:`_octave_notes`, pairs near 2:1 only) at the first of
        ``press_octave_tests_ms``."""
        self._octave_open, self._octave_next = e, 0
        due = self._keypad_due = e + self._persist if self._keypad_test else _NO_DUE
        if self._octave_tol is not None and self._octave_at and pair in self._octave_pairs:
            due = min(due, e + self._octave_at[0])
        return due

    def _octave_notes(self, e: int, pair: int, buf_start: int) -> bool:
        """``press_octave_*``: True when the press's two tones over the ``press_octave_ms`` ending at ``e`` are one
        note's partials an octave apart (interpolated spectral peaks within ``press_octave_tolerance`` of 2:1, where
        a keypad's pair is 1.917:1 or 2.12:1), fitted at those frequencies carrying ``press_octave_share`` of the
        window.  Otherwise the next test of ``press_octave_tests_ms`` is made due."""
        if self._octave_tol is None or pair not in self._octave_pairs:
            return False
        found = self._octave(e, pair, buf_start)
        if not found:
            self._octave_next += 1
            if self._octave_next < len(self._octave_at):
                self._press_due = min(self._press_due, self._octave_open + self._octave_at[self._octave_next])
        return found

    def _octave(self, e: int, pair: int, buf_start: int, n: Optional[int] = None) -> bool:
        """:meth:`_octave_notes`'s measurement: the pair's tones over the ``press_octave_ms`` (or ``n`` samples) ending
        at ``e`` within ``press_octave_tolerance`` of 2:1, fitted there carrying ``press_octave_share`` of the window,
        whose first third holds ``press_octave_head_share`` of its energy (the notes filled it: a tone that began
        inside the window, from silence, is measured on its last ms only, too coarsely to tell 2:1 from 1.917:1)."""
        n = self._octave_len if n is None else n
        if pair not in self._octave_pairs or e - n < buf_start:
            return False
        seg = self._buf[e - n - buf_start: e - buf_start]
        energy = float(seg @ seg)
        head = seg[: n // 3]
        if not energy > 0 or float(head @ head) < self._octave_head * energy:
            return False
        fr, fc = self._peak_freqs(np.fft.rfft(seg * _hann(n), self._keypad_nfft), pair)
        if abs(fc / (2.0 * fr) - 1.0) > self._octave_tol + 1e-12:
            return False
        _, explained = self._fit_at(e - n, e, (fr, fc), buf_start)
        if explained >= self._octave_share * energy:
            self._octave_last = e
            return True
        return False

    def _octave_switch(self, e: int, pair: int, buf_start: int) -> bool:
        """``press_octave_*``: a press held only where named confirms another pair whose tones are one note's octave
        too (:meth:`_octave`: a note between two rows, named as either key): it stays held only where named."""
        return self._octave_tol is not None and self._octave(e, pair, buf_start)

    def _octave_again(self, e: int, conf: int, sus: int, buf_start: int) -> bool:
        """``press_octave_*``, with no press open: a window confirming a pair (``conf``), or naming one (``sus``) where
        a run of such hops would confirm it or a silent suspect watches that pair's notes, whose two tones over the
        last ``press_octave_ms`` are one note's octave (:meth:`_octave`): the notes of a held note louder again
        after a dip of its envelope (the 48 ms window is full of them; a fresh note's first confirmation still holds
        the audio before it, and is masked flat).  True: a silent suspect of the pair watches them (notched where a
        window names them, never a press by persistence), and this hop opens no press.  A key of that pair is no
        octave (1.917:1 or 2.12:1): masked flat as any."""
        sp = self._suspect
        if conf >= 0 and (e - self._octave_last <= self._octave_memory or (sp is not None and sp[4] and sp[0] == conf)):
            pair = conf
        elif sus >= 0 and ((sp is not None and sp[4] == 2 and sp[0] == sus % 16)
                           or (sus % 16 == self._hit_pair and self._hit_run + 1 >= self._hit_hops)):
            pair = sus % 16
        else:
            return False
        if sp is not None and sp[0] != pair:
            return False
        watched = sp is not None and bool(sp[4])
        if not (self._octave(e, pair, buf_start) or (watched and self._octave_again_len
                                                      and self._octave(e, pair, buf_start, self._octave_again_len))):
            return False
        self._as_notes(pair, e)  # (its pair, if one is open: checked above)
        return True

    def _peak_freqs(self, spec: np.ndarray, pair: int) -> Tuple[float, float]:
        """The row and column tones' frequencies (Hz): the strongest bin of ``spec`` (an rfft of ``_keypad_nfft``
        points) within +-6 % of each, refined by a parabola through the log powers of it and its neighbours."""
        r, c, _ = pairfit.PAIRS[pair]
        nfft = self._keypad_nfft
        out = []
        for f0 in (ROW_HZ[r], COL_HZ[c]):
            lo, hi = int(math.ceil(f0 * 0.94 * nfft / self.rate)), int(math.floor(f0 * 1.06 * nfft / self.rate))
            band = spec[lo - 1: hi + 2]
            p = np.log(band.real * band.real + band.imag * band.imag + 1e-300)
            k = 1 + int(np.argmax(p[1:-1]))
            den = p[k - 1] - 2.0 * p[k] + p[k + 1]
            d = 0.5 * (p[k - 1] - p[k + 1]) / den if den < 0 else 0.0
            out.append((lo - 1 + k + d) * self.rate / nfft)
        return out[0], out[1]

    def _musical(self, sp: list) -> bool:
        """The suspect ``sp`` is no keypad's pair: its tones were apart when it opened (:meth:`_apart`)."""
        return bool(sp[4])

    def _tone_errors(self, seg: np.ndarray, pair: int) -> Tuple[float, float]:
        """Each tone's relative offset from nominal in ``seg``: the peak of its Hann-windowed spectrum within +-6 %
        (zero-padded FFT, bins of 4 Hz or finer; no per-masker tables)."""
        err = self._peak_errors(np.fft.rfft(seg * _hann(seg.size), self._keypad_nfft), pair)
        return err[0], err[1]

    def _peak_errors(self, spec: np.ndarray, pair: int) -> List[float]:
        """The row and column tones' relative offsets from nominal: the strongest bin of ``spec`` (an rfft of
        ``_keypad_nfft`` points) within +-6 % of each."""
        return [g for _, g, _ in self._band_peaks(spec, pair)]

    def _band_peaks(self, spec: np.ndarray, pair: int) -> List[Tuple[float, float, float]]:
        """Per tone of the pair (row, column): its nominal frequency, the strongest bin of ``spec`` (an rfft of
        ``_keypad_nfft`` points) within +-6 % of it as a relative offset, and that bin's power."""
        r, c, _ = pairfit.PAIRS[pair]
        nfft = self._keypad_nfft
        out = []
        for f0 in (ROW_HZ[r], COL_HZ[c]):
            lo, hi = int(math.ceil(f0 * 0.94 * nfft / self.rate)), int(math.floor(f0 * 1.06 * nfft / self.rate))
            band = spec[lo: hi + 1]
            power = band.real * band.real + band.imag * band.imag
            k = int(np.argmax(power))
            out.append((f0, (lo + k) * self.rate / nfft / f0 - 1.0, float(power[k])))
        return out

    def _apart(self, e: int, pair: int, buf_start: int) -> bool:
        """True when the pair's two tones over the ``weak_apart_ms`` ending at ``e`` are clearly not one keypad
        oscillator's: off nominal by shares more than ``weak_apart_spread`` apart, or one more than
        ``weak_apart_error`` off (a note's or a voice's partials near a key pair)."""
        if self._apart_len <= 0:
            return False
        seg = self._buf[e - self._apart_len - buf_start: e - buf_start]
        er, ec = self._tone_errors(seg, pair)
        return bool((self._apart_spread is not None and abs(er - ec) > self._apart_spread + 1e-9)
                    or (self._apart_error is not None and max(abs(er), abs(ec)) > self._apart_error + 1e-9))

    def _weak_share(self, e: int, pair: int, expl: np.ndarray, buf_start: int) -> float:
        seg = self._buf[e - self._kmax * self._hop - buf_start: e - buf_start]
        energy = float(seg @ seg)
        return float(expl[pair]) / energy if energy > 0 else 0.0

    def _musical_named(self, e: int, pair: int, sus: int, dropped: int, buf_start: int, margin: bool = True) -> int:
        """:meth:`_named` for a musical suspect's pair; with ``musical_named_exact``, a window the attacker's own rule
        names at hop ``e`` as the agent hears it, whatever its pair (the notch takes all eight frequencies): the
        screen's at the input (``sus``) or only through its µ-law or A-law round trip (``dropped``: the keypad
        test refused it), each pair + 16 * window; its length, else (``margin``) the length of a
        ``musical_margin_windows_ms`` window naming ``pair`` with :meth:`_named`'s margin, else 0."""
        if not self._musical_exact:
            return self._named(e, pair, buf_start)
        if not self._musical_any:
            sus = sus if sus >= 0 and sus % 16 == pair else -1
            dropped = dropped if dropped >= 0 and dropped % 16 == pair else -1
        named = sus if sus >= 0 else dropped
        if named >= 0:
            return self._ks[named // 16] * self._hop
        return self._named(e, pair, buf_start, self._musical_margin_lens) if self._musical_margin_lens and margin else 0

    def _named(self, e: int, pair: int, buf_start: int, lens: Optional[Tuple[int, ...]] = None) -> int:
        """The length of the shortest window ending at ``e`` (of ``named_windows_ms``) where ``pair`` passes the
        attacker's rule with a margin (``named_fraction``, ``named_unique``): 0 if none.  The attacker
        hears the output through G.711, whose noise lifts a 2 ms window's uniqueness by 20-30 %."""
        for length in self._named_lens if lens is None else lens:
            seg = self._buf[e - length - buf_start: e - buf_start]
            resid, coef, energy = pairfit.pair_fit(seg[None, :], self.rate)
            r = resid[0]
            r1 = float(r[pair])
            if not (energy[0] > 0 and r1 <= self._named_resid * float(energy[0])):
                continue
            if _min_but(r, pair) < self._named_unique * r1:
                continue
            c = coef[0, pair]
            ar2, ac2 = c[0] * c[0] + c[1] * c[1], c[2] * c[2] + c[3] * c[3]
            if min(ar2, ac2) >= self._screen_amp2 and ar2 <= self._twist2 * ac2 and ac2 <= self._twist2 * ar2:
                return length
        return 0

    def _verify_pending(self, e: int, expl: np.ndarray, buf_start: int) -> Tuple[int, int, int]:
        """Resolve pending short-window suspects due at hop ``e``: the earliest verified one (pair + 16 *
        window index, the hop that named it and the last hop up to ``e`` that named its pair again) or
        (-1, e, e)."""
        keep = []
        verified, at, last = -1, e, e
        for item in self._pending:
            due, _, pair, length = item[:4]
            if due > e:
                keep.append(item)
                continue
            if verified >= 0:
                if self._verify_next_other and pair != verified % 16:
                    # ``verify_next_other``: a window of another pair due at this hop is judged at the next one (a
                    # neighbour's onset window verified here would otherwise drop the key's own)
                    keep.append((e + self._hop,) + tuple(item[1:]))
                continue
            # named again and again within the wait (the attacker's detections merge such runs): a key
            # (not at the second look, ``verify_again_ms``: its longer wait counts a voice's chance fits too)
            support = 0 if len(item) > 4 else sum(1 for it in self._pending if it[2] == pair and item[1] <= it[1] <= due)
            seg = self._buf[e - self._kmax * self._hop - buf_start: e - buf_start]
            energy = float(seg @ seg)
            carried = energy > 0 and expl[pair] >= self._verify_fraction * energy and (
                self._verify_strong is None or expl[pair] >= self._verify_strong * energy
                or self._coherent(item[1], length, e, self._nominal(pair), buf_start))
            if support >= self._verify_support or carried \
                    or (energy > 0 and self._weak_coherence is not None
                        and expl[pair] >= self._weak_verify_fraction * energy
                        and self._coherent_weak(item[1], length, e, pair, buf_start)) \
                    or (energy > 0 and self._isolated(item[1], length, e, buf_start, energy)) \
                    or self._exact(item[1], length, pair, buf_start) or self._sure_recent(item[1], pair) \
                    or (item[1] <= self._recent.get(pair, -1) and self._recent_keypad(e, pair, buf_start)) \
                    or self._held_long(e, pair, buf_start) or self._held_line(e, pair, buf_start) \
                    or self._common_line(e, pair, buf_start) \
                    or (self._osc_fraction is not None
                        and self._held_long(e, pair, buf_start, None, self._osc_fraction, self._osc_spread)) \
                    or (energy > 0 and self._column_coherence is not None
                        and expl[pair] >= self._verify_fraction * energy
                        and self._column_line(item[1], length, e, pair, buf_start)) \
                    or (energy > 0 and self._column_weak is not None and self._column_coherence is not None
                        and expl[pair] >= self._column_weak * energy
                        and self._column_line(item[1], length, e, pair, buf_start, self._column_weak_coherence,
                                              self._column_weak_error)) \
                    or (energy > 0 and self._column_onset is not None and self._column_coherence is not None
                        and expl[pair] >= self._column_onset * energy
                        and self._column_line(item[1], length, e, pair, buf_start, None, self._column_onset_error,
                                              True)) \
                    or self._column_held_line(e, pair, buf_start) \
                    or (len(item) > 4 and self._onset_jumped(item[1], length, e, pair, buf_start)) \
                    or (energy > 0 and self._offset_verify and self._offset_carried(item[1], length, e, pair,
                                                                                   buf_start, energy)) \
                    or (energy > 0 and self._common16 is not None
                        and self._common16_carried(item[1], length, e, pair, buf_start, energy)) \
                    or self._in_context(item[1]) or self._mid_line(item, e, buf_start):
                verified, at = pair + 16 * self._ks.index(length // self._hop), item[1]
                last = max(it[1] for it in self._pending if it[2] == pair and it[1] <= e)
            elif self._again and len(item) == 4 and item[1] + self._again > e:
                # ``verify_again_ms``: judged once more on the 16 ms window ending later (a key's onset under
                # speech: the centred window still held the speech before it)
                keep.append((item[1] + self._again, item[1], pair, length, 1))
        self._pending = keep
        return verified, at, last

    def _mid_line(self, item: tuple, e: int, buf_start: int) -> bool:
        """``verify_mid_*``: at a short window's last look (its second, ``verify_again_ms``, or its only one), the pair's
        two tones measured over the ``verify_mid_ms`` ending at ``e`` (which holds the named window) are one keypad
        oscillator's (each within ``offset_error_max``, at most ``verify_mid_spread`` apart) and the pair fitted there
        carries ``verify_mid_fraction`` of that window (:meth:`_held_long`): a key's first ms under louder speech, its
        tone begun too recently for the 48-96 ms tests and its 16 ms share the speech's (:class:`MaskerParams`)."""
        n, named, length = self._mid_len, item[1], item[3]
        if not n or (self._again and len(item) == 4) or length > self._verify_len or named - length < e - n \
                or named > e:
            return False
        if self._held_long(e, item[2], buf_start, n, self._mid_fraction, self._mid_spread):
            return True
        if self._mid_long is not None and self._held_long(e, item[2], buf_start, None, self._mid_long):
            return True  # (``verify_mid_long_fraction``: the 48 ms test at a lower share, at the last look only)
        if self._mid_since is not None and self._mid_since_named(item, e, buf_start):
            return True
        return self._mid_peak is not None and self._mid_common(e, item[2], buf_start)

    def _mid_since_named(self, item: tuple, e: int, buf_start: int) -> bool:
        """``verify_mid_since_fraction``: the pair fitted at nominal over ``[named - length, e)`` (from the named window's
        start to the last look) carries ``verify_mid_since_fraction`` of it, its two tones' amplitudes within
        ``verify_mid_since_twist_db`` of each other, and the named window's fit matches that window's within
        ``verify_mid_since_coherence`` (as :meth:`_fits_match`): a key named a few ms after its onset, where the 16 ms
        window ending at ``e`` still holds the speech before it."""
        named, pair, length = item[1], item[2], item[3]
        a = named - length
        if a < buf_start or a >= e:
            return False
        seg = self._buf[a - buf_start: e - buf_start]
        energy = float(seg @ seg)
        if not energy > 0:
            return False
        freqs = self._nominal(pair)
        long, explained = self._fit_at(a, e, freqs, buf_start)
        if explained < self._mid_since * energy:
            return False
        a2 = np.abs(long) ** 2
        if not (a2[0] <= self._mid_since_twist2 * a2[1] and a2[1] <= self._mid_since_twist2 * a2[0]):
            return False  # (``verify_mid_since_twist_db``: no keypad's twist)
        short, _ = self._fit_at(a, named, freqs, buf_start)
        return bool(np.all(np.abs(short - long) <= self._mid_since_coherence * np.abs(long)))

    def _mid_common(self, e: int, pair: int, buf_start: int) -> bool:
        """``verify_mid_common_*``: over the ``verify_mid_ms`` ending at ``e``, one of the pair's two tones' measured
        offsets (Hann-windowed spectrum peak within +-6 %, as :meth:`_tone_errors`), within ``offset_error_max``, is
        where the other tone too has at least ``verify_mid_common_peak`` of its strongest power within +-6 %, and the
        pair fitted at that one offset carries ``verify_mid_common_fraction`` of the window: one keypad oscillator whose
        other tone's peak a louder partial of the speech beside it moved (:class:`MaskerParams`)."""
        n = self._mid_len
        if self._offset_max is None or e - n < buf_start:
            return False
        seg = self._buf[e - n - buf_start: e - buf_start]
        energy = float(seg @ seg)
        if not energy > 0:
            return False
        spec = np.fft.rfft(seg * _hann(n), self._keypad_nfft)
        r, c, _ = pairfit.PAIRS[pair]
        nfft, bands = self._keypad_nfft, self._band_peaks(spec, pair)
        for _, g, _ in bands:
            if abs(g) > self._offset_max + 1e-9:
                continue
            ks = [int(round(f0 * (1.0 + g) * nfft / self.rate)) for f0, _, _ in bands]
            if all(float(spec[k].real * spec[k].real + spec[k].imag * spec[k].imag) >= self._mid_peak * top
                   for k, (_, _, top) in zip(ks, bands)):
                _, explained = self._fit_at(e - n, e, (ROW_HZ[r] * (1.0 + g), COL_HZ[c] * (1.0 + g)), buf_start)
                if explained >= self._mid_common_fraction * energy:
                    return True
        return False

    def _offset_carried(self, named: int, length: int, e: int, pair: int, buf_start: int, energy: float) -> bool:
        """:meth:`_verify_pending`'s test at the pair's measured frequencies (``offset_verify``): both tones off
        nominal by at most ``offset_error_max`` and by shares at most ``offset_verify_spread_max`` apart over the 16 ms
        window ending at ``e``, the pair fitted there at those frequencies carrying ``verify_fraction`` of it and
        (as :meth:`_coherent`) the named short window's fit matching it: a key off nominal under speech, which
        the nominal fits lose."""
        n = self._kmax * self._hop
        seg = self._buf[e - n - buf_start: e - buf_start]
        offsets = self._offset_keypad(seg, pair, self._offset_max, self._offset_verify_spread)
        if offsets is None:
            return False
        er, ec = offsets
        r, c, _ = pairfit.PAIRS[pair]
        freqs = (ROW_HZ[r] * (1.0 + er), COL_HZ[c] * (1.0 + ec))
        long, explained = self._fit_at(e - n, e, freqs, buf_start)
        if explained < self._verify_fraction * energy:
            return False
        if self._verify_coherence is None or explained >= self._verify_strong * energy:
            return True
        return self._coherent(named, length, e, freqs, buf_start, long)

    def _common16_carried(self, named: int, length: int, e: int, pair: int, buf_start: int, energy: float) -> bool:
        """``verify_common_16_*`` (helper h20b): the pair fitted over the 16 ms window ending at ``e`` at the one common
        offset g (both tones, ``|g| <= verify_common_16_max``) whose fit explains the most carries ``verify_fraction`` of
        it, that offset inside the grid (not its first or last step), its two tones within ``verify_common_16_twist_db``
        of each other, and the named short window (inside that window) fitted at those frequencies matches it within
        ``verify_common_16_coherence``: a key a few % off under speech, whose nominal 16 ms fit loses half a tone (the
        attacker's 2-4 ms windows barely notice the offset).  Phases are referred to the 16 ms window's first sample."""
        n = self._kmax * self._hop
        a = named - length - (e - n)  # the named window's start within the 16 ms window
        if a < 0 or named > e or e - n < buf_start:
            return False
        basis, pinv = self._common16_tables(n, pair)  # [G, n, 4], [G, 4, n]
        seg = self._buf[e - n - buf_start: e - buf_start]
        coef = pinv @ seg  # [G, 4]
        explained = np.sum((basis.transpose(0, 2, 1) @ seg) * coef, axis=1)  # [G]
        i = int(np.argmax(explained))
        if i in (0, explained.size - 1) or explained[i] < self._verify_fraction * energy:
            return False  # (the fit's peak beyond the grid: a broad partial rising away from the key's frequencies)
        c = coef[i]
        long = np.array([complex(c[0], -c[1]), complex(c[2], -c[3])])
        a2 = np.abs(long) ** 2
        if not (a2[0] <= self._common16_twist2 * a2[1] and a2[1] <= self._common16_twist2 * a2[0]):
            return False  # (``verify_common_16_twist_db``: no keypad's twist)
        b = basis[i, a: a + length]
        cs = np.linalg.lstsq(b, seg[a: a + length], rcond=None)[0]
        short = np.array([complex(cs[0], -cs[1]), complex(cs[2], -cs[3])])
        return bool(np.all(np.abs(short - long) <= self._common16_coherence * np.abs(long)))

    def _common16_tables(self, n: int, pair: int) -> tuple:
        """For ``verify_common_16_*``: per offset of its grid, the pair's basis over ``n`` samples (row cos, row sin,
        column cos, column sin at ``(1 + g)`` times nominal, from the window's first sample) and its pseudo-inverse
        (shared by every masker with that grid)."""
        key = ("common16", self.rate, n, self._common16, pair)
        tab = _OFFSET_TABLES.get(key)
        if tab is None:
            r, c, _ = pairfit.PAIRS[pair]
            t = np.arange(n) / self.rate
            g = np.asarray(self._common16)[:, None]
            wr, wc = 2 * np.pi * ROW_HZ[r] * (1.0 + g) * t, 2 * np.pi * COL_HZ[c] * (1.0 + g) * t  # [G, n]
            basis = np.ascontiguousarray(np.stack([np.cos(wr), np.sin(wr), np.cos(wc), np.sin(wc)], axis=2))
            pinv = np.ascontiguousarray(np.linalg.pinv(basis))
            for arr in (basis, pinv):
                arr.setflags(write=False)
            tab = _OFFSET_TABLES.setdefault(key, (basis, pinv))
        return tab

    def _column_line(self, named: int, length: int, e: int, pair: int, buf_start: int,
                     coherence: Optional[float] = None, error: Optional[float] = None,
                     since_named: bool = False) -> bool:
        """``verify_column_*``: the pair's column tone, fitted at nominal, matches between the named short window and
        the 16 ms window ending at ``e`` within ``verify_column_coherence`` (the row tone is not asked: speech's
        energy below 1 kHz is what spoils it), and measured over the ``verify_long_ms`` ending at ``e`` it lies within
        ``verify_column_error`` of nominal: a keypad's steady column line under louder speech.  ``coherence``: another
        bound than ``verify_column_coherence``, ``error`` than ``verify_column_error`` (``verify_column_weak_*``, where the
        pair's 16 ms share is lower); ``since_named``: the column measured from the named window's start to ``e``
        instead (``verify_column_onset_*``: a key's onset, where the 48 ms window is mostly the speech before it)."""
        n, nl = self._kmax * self._hop, self._long_len
        if not nl or e - nl < buf_start or named - length < e - n or named > e:
            return False
        freqs = self._nominal(pair)
        long, _ = self._fit_at(e - n, e, freqs, buf_start)
        short, _ = self._fit_at(named - length, named, freqs, buf_start)
        tol = self._column_coherence if coherence is None else coherence
        if not abs(short[1] - long[1]) <= tol * abs(long[1]):
            return False
        a = named - length if since_named else e - nl
        er, ec = self._tone_errors(self._buf[a - buf_start: e - buf_start], pair)
        if abs(ec) <= (self._column_error if error is None else error) + 1e-9 and not since_named:
            return True
        # ``verify_column_near_*``: a column one grid step further off (and any column from the named window) only
        # with the row tone near nominal too: a note near the column has no keypad row beside it
        near = self._column_near_error if error is None else (error if since_named else -1.0)
        row = self._column_onset_row if since_named else self._column_near_row
        return row is not None and abs(ec) <= near + 1e-9 and abs(er) <= row + 1e-9

    def _onset_jumped(self, named: int, length: int, e: int, pair: int, buf_start: int) -> bool:
        """``verify_onset_jump``: both tones of ``pair``, fitted at nominal over ``[named - length, e)``, have at least
        ``verify_onset_jump`` times the amplitude they had over the ``verify_onset_before_ms`` before ``named - length``:
        the pair's two lines start together at the named window (a key's onset under louder speech)."""
        a = named - length
        if self._onset_jump is None or not self._unmusical or a >= e or a < e - 2 * self._kmax * self._hop \
                or a - self._onset_before < buf_start:
            # (judged at its look only: a window left pending through a press is resolved later, where the delay line
            # may no longer hold the ms before it, whatever the chunking)
            return False
        freqs = self._nominal(pair)
        after, _ = self._fit_at(a, e, freqs, buf_start)
        before, _ = self._fit_at(a - self._onset_before, a, freqs, buf_start)
        return bool(np.all(np.abs(after) >= self._onset_jump * np.abs(before)) and np.all(np.abs(after) > 0))

    def _column_held_line(self, e: int, pair: int, buf_start: int) -> bool:
        """``verify_column_held_steady``: the pair's column tone lies within ``verify_column_weak_error`` of nominal
        measured over both the ``verify_line_ms`` and the ``verify_long_ms`` ending at ``e``, and, fitted at nominal
        (with the row tone) over the two halves of the ``verify_line_ms``, keeps its complex amplitude within
        ``verify_column_held_steady`` of the later half's: a keypad's column held for ~100 ms under much louder
        speech, whose 16 ms share and short-window fits the speech spoils."""
        n, nl = self._line_len, self._long_len
        if self._column_held is None or not n or not nl or e - n < buf_start:
            return False
        tol = self._column_weak_error + 1e-9
        _, ec = self._tone_errors(self._buf[e - n - buf_start: e - buf_start], pair)
        if abs(ec) > tol:
            return False
        _, ec = self._tone_errors(self._buf[e - nl - buf_start: e - buf_start], pair)
        if abs(ec) > tol:
            return False
        h, freqs = n // 2, self._nominal(pair)
        first, _ = self._fit_at(e - n, e - h, freqs, buf_start)
        later, _ = self._fit_at(e - h, e, freqs, buf_start)
        return bool(abs(first[1] - later[1]) <= self._column_held * abs(later[1]))

    @staticmethod
    def _nominal(pair: int) -> Tuple[float, float]:
        """The pair's row and column frequencies at nominal."""
        r, c, _ = pairfit.PAIRS[pair]
        return ROW_HZ[r], COL_HZ[c]

    def _fit_at(self, a: int, b: int, freqs, buf_start: int) -> Tuple[np.ndarray, float]:
        """Least squares of input ``[a, b)`` on two tones at ``freqs`` (phase referred to the stream position):
        their complex amplitudes and the energy they explain."""
        t = np.arange(a, b) / self.rate
        basis = np.stack([np.cos(2 * np.pi * freqs[0] * t), np.sin(2 * np.pi * freqs[0] * t),
                          np.cos(2 * np.pi * freqs[1] * t), np.sin(2 * np.pi * freqs[1] * t)], 1)
        x = self._buf[a - buf_start: b - buf_start]
        coef = np.linalg.solve(basis.T @ basis, basis.T @ x)  # (two tones >= 4 % apart: well conditioned)
        fit = basis @ coef
        return np.array([complex(coef[0], -coef[1]), complex(coef[2], -coef[3])]), float(fit @ fit)

    def _coherent(self, named: int, length: int, e: int, freqs, buf_start: int,
                  long: Optional[np.ndarray] = None) -> bool:
        """The two tones at ``freqs`` as fitted in the named short window ``[named - length, named)`` match
        (complex amplitude, phase referred to the stream position) those fitted in the 16 ms window ending at
        ``e`` (``long``, when the caller has it), within ``verify_coherence`` of the latter: one steady tone pair
        seen twice (a tone under speech, where the speech dipped), not a chance fit of a syllable or a note.  A
        window named before the 16 ms one (held while a press was open) is not judged: True."""
        return self._fits_match(named, length, e, freqs, self._verify_coherence, True, buf_start, long)

    def _fits_match(self, named: int, length: int, e: int, freqs, tol: float, outside: bool, buf_start: int,
                    long: Optional[np.ndarray] = None) -> bool:
        """The two tones at ``freqs`` as fitted in the named short window ``[named - length, named)`` match those
        fitted in the 16 ms window ending at ``e`` (``long``, when the caller has it): each complex amplitude within
        ``tol`` of the latter's (:meth:`_coherent`, :meth:`_coherent_weak`); ``outside``: the answer for a named
        window that does not lie within the 16 ms one."""
        n = self._kmax * self._hop
        if named - length < e - n or named > e:
            return outside
        if long is None:
            long, _ = self._fit_at(e - n, e, freqs, buf_start)
        short, _ = self._fit_at(named - length, named, freqs, buf_start)
        return bool(np.all(np.abs(short - long) <= tol * np.abs(long)))

    def _coherent_weak(self, named: int, length: int, e: int, pair: int, buf_start: int) -> bool:
        """``verify_weak_*``: the named short window's fit of ``pair`` (nominal frequencies) matches the 16 ms window's
        within ``verify_weak_coherence`` (far tighter than ``verify_coherence``), and the pair's two tones over the
        ``verify_long_ms`` ending at ``e`` are off nominal by shares at most ``verify_weak_spread`` apart, each within
        ``offset_error_max``: one steady keypad pair seen twice under louder speech, where its 16 ms share is
        below ``verify_fraction`` (:class:`MaskerParams`)."""
        nl = self._long_len
        if self._weak_coherence is None or not nl or self._offset_max is None or e - nl < buf_start \
                or not self._fits_match(named, length, e, self._nominal(pair), self._weak_coherence, False, buf_start):
            return False
        er, ec = self._tone_errors(self._buf[e - nl - buf_start: e - buf_start], pair)
        return self._keypad_offsets(er, ec, self._weak_spread, self._offset_max)

    def _isolated(self, named: int, length: int, e: int, buf_start: int, energy: float) -> bool:
        """The short window ``[named - length, named)`` widened by 2 ms each side holds ``verify_isolated``
        of the energy of the 16 ms window ending at ``e``: a burst the attacker names alone, with nothing
        around it that it could be a chance fit of (issue 12: a key's first ms before a stream gap)."""
        if self._verify_isolated is None:
            return False
        lo_win = e - self._kmax * self._hop
        if named - length < lo_win or named > e:  # named long ago (held while a press was open)
            return False
        margin = 2 * self.rate // 1000
        lo, hi = max(named - length - margin, lo_win, buf_start), min(named + margin, e)
        w = self._buf[lo - buf_start: hi - buf_start]
        return float(w @ w) >= self._verify_isolated * energy

    def _recent_keypad(self, e: int, pair: int, buf_start: int) -> bool:
        """For :meth:`_verify_pending`'s ``verify_recent_*`` test: the pair's two tones over the ``verify_long_ms``
        ending at ``e`` are off nominal by shares at most ``verify_recent_spread`` apart (one keypad oscillator, not
        a chord's notes after a false press)."""
        n = self._long_len
        if self._recent_spread is None or not n or e - n < buf_start:
            return True
        er, ec = self._tone_errors(self._buf[e - n - buf_start: e - buf_start], pair)
        return abs(er - ec) <= self._recent_spread + 1e-9

    def _held_line(self, e: int, pair: int, buf_start: int) -> bool:
        """``verify_line_*``: :meth:`_held_long` over the ``verify_line_ms`` ending at ``e`` with its own share and
        spread: a keypad's two tones held under much louder speech are two steady lines over ~100 ms, where a voice's
        or a note's partials near a key pair drift apart (:class:`MaskerParams`)."""
        return bool(self._line_len) and self._held_long(e, pair, buf_start, self._line_len, self._line_fraction,
                                                        self._line_spread)

    def _common_line(self, e: int, pair: int, buf_start: int) -> bool:
        """``verify_common_*``: over the ``verify_common_ms`` ending at ``e``, the offset (one for both tones, within
        ``offset_error_max``) at which the pair's two tones are strongest together (the product of their Hann-windowed
        spectra on ``_OFFSET_GRID``) holds ``verify_common_peak`` of each tone's own strongest power within +-6 %, and
        the pair fitted there carries ``verify_common_fraction`` of the window: one keypad oscillator's two steady lines
        under louder speech, where a voice's partial beside one tone moves :meth:`_held_line`'s separate peaks apart."""
        n = self._common_len
        if not n or self._offset_max is None or e - n < buf_start:
            return False
        seg = self._buf[e - n - buf_start: e - buf_start]
        energy = float(seg @ seg)
        if not energy > 0:
            return False
        r, c, _ = pairfit.PAIRS[pair]
        cos, sin = self._offset_table(n)
        re, im = cos[r] @ seg, sin[r] @ seg
        row = re * re + im * im
        re, im = cos[4 + c] @ seg, sin[4 + c] @ seg
        col = re * re + im * im
        score = np.where(np.abs(_OFFSET_GRID) <= self._offset_max + 1e-9, row * col, -1.0)
        k = int(np.argmax(score))
        if row[k] < self._common_peak * float(row.max()) or col[k] < self._common_peak * float(col.max()):
            return False
        g = float(_OFFSET_GRID[k])
        _, explained = self._fit_at(e - n, e, (ROW_HZ[r] * (1.0 + g), COL_HZ[c] * (1.0 + g)), buf_start)
        return explained >= self._common_fraction * energy

    def _held_long(self, e: int, pair: int, buf_start: int, n: Optional[int] = None,
                   fraction: Optional[float] = None, spread: Optional[float] = None) -> bool:
        """The pair, fitted at its two tones' measured frequencies (Hann-windowed spectrum peaks, :meth:`_tone_errors`)
        over the ``verify_long_ms`` ending at ``e``, carries ``verify_long_fraction`` of that window, both tones off
        nominal by shares at most ``verify_long_spread`` apart and each within ``offset_error_max``: one keypad
        oscillator held for a while under the speech around a short window that named it (:class:`MaskerParams`)."""
        n = self._long_len if n is None else n
        fraction = self._long_fraction if fraction is None else fraction
        spread = self._long_spread if spread is None else spread
        if not n or self._offset_max is None or e - n < buf_start:
            return False  # (one of the offset rules: off without them; the delay line keeps the window)
        seg = self._buf[e - n - buf_start: e - buf_start]
        energy = float(seg @ seg)
        if not energy > 0:
            return False
        er, ec = self._tone_errors(seg, pair)
        if not self._keypad_offsets(er, ec, spread, self._offset_max):
            return False
        r, c, _ = pairfit.PAIRS[pair]
        _, explained = self._fit_at(e - n, e, (ROW_HZ[r] * (1.0 + er), COL_HZ[c] * (1.0 + ec)), buf_start)
        return explained >= fraction * energy

    def _exact(self, named: int, length: int, pair: int, buf_start: int) -> bool:
        """The named short window ``[named - length, named)`` fits ``pair`` so closely that the second-best pair
        leaves ``verify_unique_exact`` times its residual (a tone alone, e.g. in a gap of the speech over it;
        a syllable's or a note's chance fit never comes near: :class:`MaskerParams`)."""
        if self._verify_exact is None or named - length < buf_start:
            return False
        seg = self._buf[named - length - buf_start: named - buf_start]
        resid, _, energy = pairfit.pair_fit(seg[None, :], self.rate)
        r = resid[0]
        r1 = float(r[pair])
        return bool(energy[0] > 0 and r1 <= self._screen_resid * float(energy[0])
                    and _min_but(r, pair) >= self._verify_exact * r1)

    def _open_press(self, start: int, lim: Optional[int], pair: int) -> None:
        """Flat-mask an in-band press of ``pair`` from ``start`` (remembered as the pair it opened with:
        ``press_ended_opening``)."""
        self._opened_pair = pair
        self._burst_keypad = not self._keypad_test  # (``keypad_burst_*``: set when the keypad test passes)
        if self._conceals and lim is not None:
            start = self._conceal_back(start, lim)
        lim = start
        # A new press inside (or within two fades of) the previous span's tail continues it: no dip.
        for span in reversed(self._spans):
            if span.source == "inband" and span.end is not None and span.end >= lim \
                    and start <= span.end + 2 * self._fade:
                span.end = None
                span.start = min(span.start, start)  # (a made-up span's mask may have opened after the onset)
                self._active = span
                return
        span = _Span(start, None, "inband")
        self._spans.append(span)
        self._active = span

    def _open_notch(self, start: int, lim: int, join: bool = True, reach: int = 0) -> _Span:
        """A band notch from ``start`` (``lim``: the first position whose output is not yet emitted, fade included);
        ``join``: one starting up to ``notch_join_ms`` after the previous notch continues it (not a musical
        suspect's, whose notch follows what a window names, nor within ``music_context_after_ms`` of one); ``reach``: it
        continues the previous notch as one starting that much earlier would (``verify_lead_ms``: the lead it dropped)."""
        if self._conceals:
            start = self._conceal_back(start, lim - self._fade)
        if not self._notch_len or (self._pay_flat and self._paying(start)):
            # look-ahead too short to notch, or the payment profile (``payment_suspect_flat``): the flat mask
            # (it needs its fade-in)
            span = _Span(max(start, -(-lim // self._hop) * self._hop), None, "inband")
            self._spans.append(span)
            return span
        for span in reversed(self._notches):  # touching the previous notch: one span (not the payment profile's)
            if span.source == "notch" and span.end is not None \
                    and start - reach <= span.end + span.cut + (self._notch_join if join and self._unmusical else 0) \
                    and span.end - self._notch_tail >= lim - self._fade:
                # (only while its ramp-out, ``notch_tail_ms``, is not yet emitted by a 1-sample chunking: else a new
                # span, which leaves the emitted ramp as it was: the same output for any chunking)
                if self._rejoin_keeps:
                    span.keep = max(span.keep, span.end)  # (``notch_rejoin_keeps_end``)
                span.end, span.cut = None, 0
                return span
        span = _Span(start, None, "notch")
        if self._edge_back is not None and not self._conceals:
            span.start = self._edge_start(start, lim)  # (``notch_edge_*``)
        self._notches.append(span)
        return span

    # ---- ``notch_edge_*`` (helper h19a) ------------------------------------------------------------------------
    def _edge_start(self, start: int, lim: int) -> int:
        """A new notch's start (``start``; ``lim``: the first position whose output is not yet emitted, fade
        included): moved back a hop at a time while a window across it names a pair (:meth:`_edge_named`), at most
        ``notch_edge_back_ms`` and not before ``lim - fade``; one that cannot move back and still names moves ahead
        to the first start, at most ``notch_edge_ahead_ms`` later, whose edge names nothing."""
        hop, floor = self._hop, lim - self._fade
        e = lim + self.delay_samples - self._fade  # the hop deciding (input up to it is in the delay line)
        buf_start = self._pos - self._buf.size
        lowest = max(floor, start - self._edge_back)
        s = start
        while s - hop >= lowest and self._edge_named(s, e, buf_start):
            s -= hop
        if s == floor and self._edge_ahead and self._edge_named(s, e, buf_start):
            for ahead in range(hop, self._edge_ahead + 1, hop):
                if not self._edge_named(s + ahead, e, buf_start, s):
                    return s + ahead
        return s

    def _edge_named(self, start: int, e: int, buf_start: int, since: Optional[int] = None) -> bool:
        """True when a window of ``notch_edge_windows_ms`` (on the 1 ms grid) straddling ``start`` passes the
        screen's rule for some pair, raw or through a G.711 round trip, as output with a notch opening at ``start``
        (the windows that need input past hop ``e`` are not judged); ``since``: a start moved ahead from there, whose
        windows left raw in between are judged too."""
        hop = self._hop
        if since is None:
            return self._edge_named_at(start, e, buf_start)
        wins = [(a, a + length) for length in self._edge_lens
                for a in range(since - length + hop, start, hop)]
        wins = [(a, b) for a, b in wins if self._edge_renders(a, b, start, e, buf_start)]
        if not wins:
            return False
        lo = min(a for a, _ in wins)
        out = self._edge_render(lo, max(b for _, b in wins), start, e, buf_start)  # (every window is a slice of it)
        by_len: dict = {}
        for a, b in wins:
            by_len.setdefault(b - a, []).append(out[a - lo: b - lo])
        for n, group in by_len.items():
            if self._edge_rows_named(np.array(group), n):
                return True
        return False

    def _edge_named_at(self, start: int, e: int, buf_start: int) -> bool:
        """:meth:`_edge_named` without ``since`` (nearly every call), at a fraction of its cost: the windows straddling
        ``start`` are fixed offsets from it (``_edge_rel``), rendered as one stretch (:meth:`_edge_stretch`)."""
        rel, lo_rel, h = self._edge_rel, self._edge_lo, self._notch_len // 2
        lo, hi = start + lo_rel, buf_start  # (hi: the end of the stretch the windows that render need)
        first = start // h - 1
        if first * h < buf_start:
            return False  # (no window straddling ``start`` has its notch blocks in the delay line)
        todo = []
        for n, a_rel, idx in rel:
            ok = [k for k, a in enumerate(a_rel) if self._edge_renders(start + a, start + a + n, start, e, buf_start)]
            if ok:
                todo.append((n, idx[ok]))
                hi = max(hi, start + a_rel[ok[-1]] + n)
        if not todo:
            return False
        lo = max(lo, buf_start)
        out = self._edge_stretch(lo, hi, start, buf_start)
        shift = lo - (start + lo_rel)  # (the windows' indices are from start + lo_rel)
        for n, idx in todo:
            y0 = out[idx - shift]
            if self._edge_rows_named(y0, n):
                return True
        return False

    def _edge_rows_named(self, y0: np.ndarray, n: int) -> bool:
        """Whether the screen's test names a pair in a row of ``y0`` (edge windows of ``n`` samples), raw or through
        µ-law or A-law: the C screen's ``edge_named`` where it runs, else the same sums in the same order."""
        wi, quad, ginv = self._edge_fits[n]
        if wi is not None and self._native_screen is not None and goertzel.backend() == "native":
            return bool(self._native_screen.edge_named(y0, n, wi))
        return any(bool(self._fit_named(y0 if law is None else _g711_round_trip(y0, law), quad, ginv)[1].any())
                   for law in (None, "ulaw", "alaw"))

    def _edge_renders(self, a: int, b: int, start: int, e: int, buf_start: int) -> bool:
        """Whether :meth:`_edge_render` can render output [a, b): its input and its notch's blocks are in the delay
        line and before hop ``e``."""
        if a < buf_start or b > e:
            return False
        lo = max(a, start)
        h = self._notch_len // 2
        return lo >= b or ((lo // h - 1) * h >= buf_start and (b - 1) // h * h + self._notch_len <= e)

    def _edge_render(self, a: int, b: int, start: int, e: int, buf_start: int) -> np.ndarray:
        """Output [a, b) with a band notch opening at ``start`` (raw before it; its ramp-in, the blocks of
        :meth:`_notched`), where :meth:`_edge_renders` says it can be rendered."""
        if max(a, start) >= b:
            return self._buf[a - buf_start: b - buf_start].copy()
        return self._edge_stretch(a, b, start, buf_start)

    def _edge_stretch(self, a: int, b: int, start: int, buf_start: int) -> np.ndarray:
        """Output [a, b) (float64, before rounding) with one band notch opening at ``start`` < b and nothing else:
        the C render where it runs (``Output.render``), else the numpy path's (the same products and sums: the
        samples the agent would hear)."""
        native = self._native_output
        if native is not None and goertzel.backend() == "native":
            out = np.empty(b - a)
            self._edge_notch[1] = start
            native.render(self._buf, buf_start, a, b - a, self._no_spans, self._edge_notch, self._no_table, out)
            return out
        raw = self._buf[a - buf_start: b - buf_start]
        lo = max(a, start)
        pos = np.arange(lo, b)
        gain = np.minimum((pos - start + 1) / (self._notch_ramp_in + 1), 1.0)
        out = raw.copy()
        out[lo - a:] = raw[lo - a:] - gain * self._notch_band(pos, buf_start)
        return out

    # ---- end ``notch_edge_*``

    # ---- ``notch_inside_*`` (helper h20a) ----------------------------------------------------------------------
    def _inside_ticks(self) -> Tuple[int, int, int]:
        """(first, end, every): hops ``e`` in [first, end) on a multiple of ``every`` (half a notch block) are judged
        while no press is open: those whose first sample not yet emitted (``lim``) lies inside the last keypad
        burst's notch; (0, 0, 0): none (the C frame hands them to the Python steps)."""
        b = self._burst
        if not self._inside_lens or b is None or b.end is None:
            return 0, 0, 0
        off = self.delay_samples - self._fade  # (lim = e - off)
        return b.start + off + 1, b.end + off, self._notch_len // 2

    def _inside_due(self, e: int) -> bool:
        first, end, every = self._inside_ticks()
        return bool(every) and first <= e < end and e % every == 0

    def _inside_in(self, hops: range) -> bool:
        """True when a hop of ``hops`` is judged (no press open: :meth:`_decide_batch` then takes the steps)."""
        first, end, every = self._inside_ticks()
        if not every:
            return False
        lo, hi = max(hops[0], first), min(hops[-1], end - 1)
        return hi >= lo and -(-lo // every) * every <= hi

    def _inside_check(self, e: int, lim: int, buf_start: int) -> None:
        """At a tick (:meth:`_inside_ticks`, ``e`` a multiple of half a notch block ``h``): the windows of
        ``notch_inside_windows_ms`` on the 1 ms grid whose notch blocks have just come in (ending in (e - 2h, e - h];
        at the first tick of a burst every such window from ``lim`` on), rendered as they will be emitted
        (:meth:`_inside_render`: the notches, flat masks ignored; a window touching a flat mask or its fade is not
        judged) and judged with the screen's rule, raw and through µ-law and A-law; the windows that name a pair get
        the flat mask, from a guard before the first (never before ``lim``, the first position whose output is not
        yet emitted, fade included) to a guard after the last."""
        hop, fade, h = self._hop, self._fade, self._notch_len // 2
        first, _, _ = self._inside_ticks()
        b_hi = e - h
        b_lo = lim if e - h < first else e - 2 * h + 1  # (window ends in [b_lo, b_hi])
        flat = [(sp.start - fade, _OPEN if sp.end is None else sp.end + fade) for sp in self._spans]
        where = []
        for length in self._inside_lens:
            for b in range(-(-max(b_lo, lim + length) // hop) * hop, b_hi + 1, hop):
                a = b - length
                if not any(s0 < b and a < s1 for s0, s1 in flat):
                    where.append((a, b))
        if not where:
            return
        lo_all = min(a for a, _ in where)
        out = self._inside_render(lo_all, b_hi, e, buf_start)
        by_len: dict = {}
        for a, b in where:
            by_len.setdefault(b - a, []).append((a, b))
        lo, hi = None, None
        rx, laws = self._g711_relax, {}
        for group in by_len.values():
            y = np.array([out[a - lo_all: b - lo_all] for a, b in group])
            # (no window below the screen's own floor can pass an amplitude test: :meth:`_quiet_bound`)
            keep = np.flatnonzero(np.einsum("ij,ij->i", y, y) >= self._skip_energy)
            hit = np.zeros(len(group), dtype=bool)
            for law in (None, "ulaw", "alaw"):
                if not keep.size:
                    break
                if law is None:
                    yk = y[keep]
                else:  # (as the screen: a window missed within its G.711 margin is judged through µ-law and A-law)
                    if law not in laws:
                        laws[law] = _g711_round_trip(out, law)  # (sample by sample: the rendered stretch at once)
                    yk = np.array([laws[law][group[int(k)][0] - lo_all: group[int(k)][1] - lo_all] for k in keep])
                resid, coef, energy = pairfit.pair_fit(yk, self.rate)
                best = np.argmin(resid, axis=1)
                rows = np.arange(yk.shape[0])
                r1 = resid[rows, best]
                r2 = np.partition(resid, 1, axis=1)[:, 1]
                c = coef[rows, best]
                ar2 = c[:, 0] * c[:, 0] + c[:, 1] * c[:, 1]
                ac2 = c[:, 2] * c[:, 2] + c[:, 3] * c[:, 3]
                passed = self._screen_passes(energy, r1, r2, ar2, ac2)
                hit[keep[passed]] = True
                if law is None:
                    near = ~passed & self._screen_passes(energy, r1, r2, ar2, ac2, rx)
                    keep = keep[near]
                else:
                    keep = keep[~passed]
            for k in np.flatnonzero(hit):
                a, b = group[int(k)]
                lo = a if lo is None else min(lo, a)
                hi = b if hi is None else max(hi, b)
        if lo is None:
            return
        span = _Span(max(self._align_down(lo - self._guard), lim), None, "inband")
        self._close(span, hi + self._guard)
        self._spans.append(span)
        self._spans_dirty = True
        self.inside_masks += 1

    def _inside_render(self, a: int, b: int, e: int, buf_start: int) -> np.ndarray:
        """Output [a, b) with the band notches as they stand (their ramps and blocks, as :meth:`_notched`; flat masks
        ignored); its notch blocks lie in input up to hop ``e`` (the caller's windows end half a block before)."""
        raw = self._buf[a - buf_start: b - buf_start]
        pos = np.arange(a, b)
        gain = np.zeros(b - a)
        r, rs = self._notch_tail + 1, self._notch_ramp_in + 1
        for span in self._notches:
            end = span.end if span.end is not None else b + r
            lo, hi = max(span.start, a), min(end, b)
            if hi > lo:
                p = pos[lo - a: hi - a]
                g = np.minimum(np.minimum((p - span.start + 1) / rs, (end - p) / r), 1.0)
                gain[lo - a: hi - a] = np.maximum(gain[lo - a: hi - a], g)
        idx = np.flatnonzero(gain > 0)
        out = raw.copy()
        if not idx.size:
            return out
        h = self._notch_len // 2
        p = pos[idx]
        if (int(p[0]) // h - 1) * h < buf_start or int(p[-1]) // h * h + self._notch_len > e:
            raise ValueError("notch_inside: a block outside the input taken in")
        out[idx] = raw[idx] - gain[idx] * self._notch_band(p, buf_start)
        return out
    # ---- end ``notch_inside_*``

    # ------------------------------------------------------------------ the keypad burst (``keypad_burst_*``)
    def _setup_burst(self, p: MaskerParams) -> None:
        n = p.keypad_burst_presses
        if n is not None and not (int(n) >= 1 and 0 <= p.keypad_burst_window_ms <= 60000
                                  and 0 < p.keypad_burst_hold_ms <= 60000 and 0 <= p.keypad_burst_min_ms <= 1000):
            raise ValueError("keypad_burst_*: presses >= 1, window 0..60000 ms, hold 0 < ms <= 60000, min 0..1000 ms")
        ms = self.rate / 1000.0
        # (a band notch needs its look-ahead: none with one too short, as the payment profile)
        self._burst_n = 0 if n is None or not self._notch_len else int(n)
        self._burst_window = int(round(p.keypad_burst_window_ms * ms))
        self._burst_hold = int(round(p.keypad_burst_hold_ms * ms))
        linger = p.keypad_burst_linger_presses
        if linger is not None and not (int(linger) >= 1 and 0 < p.keypad_burst_linger_ms <= 120000):
            raise ValueError("keypad_burst_linger_*: presses >= 1 or None, 0 < ms <= 120000")
        self._burst_linger_n = 0 if linger is None or not self._burst_n else int(linger)
        self._burst_linger = int(round(p.keypad_burst_linger_ms * ms))
        self._burst_min = int(round(p.keypad_burst_min_ms * ms))
        self._burst_pairs = max(1, int(p.keypad_burst_pairs))
        keys = p.keypad_burst_keys
        if keys is not None and (not isinstance(keys, str) or not keys or set(keys) - set(pairfit.PAIR_KEYS)):
            raise ValueError(f"keypad_burst_keys: None or keys of {pairfit.PAIR_KEYS!r}")
        #: pair -> its presses open or hold a burst or a keypad context (``keypad_burst_keys``)
        self._keypad_pairs = tuple(keys is None or k in keys for k in pairfit.PAIR_KEYS)
        self._burst_profile = bool(self._burst_n and p.keypad_burst_profile)
        self._burst_music = tuple(float(v) for v in p.keypad_burst_music) if p.keypad_burst_music else None
        self._burst_measured = bool(self._burst_n and p.keypad_burst_measured_pair)
        # ---- ``keypad_burst_chain_*`` (helper h15a): a notched suspect's pair held over a chain of suspects counts
        chain, gap = p.keypad_burst_chain_ms, p.keypad_burst_chain_gap_ms
        if chain is not None and not (0 < chain <= 1000 and 0 <= gap <= 1000):
            raise ValueError("keypad_burst_chain_*: chain 0 < ms <= 1000, gap 0..1000 ms")
        self._chain_len = None if chain is None or not self._burst_n else int(round(chain * ms))
        self._chain_gap = int(round(gap * ms))

    def _reset_burst(self) -> None:
        self._burst_closes: Deque[Tuple[int, int]] = deque()  # (close hop, pair) of the presses counted in the window
        self._burst: Optional[_Span] = None  # the last burst span opened
        self._burst_count_in = 0  # presses counted in it, those that opened it included (``keypad_burst_linger_*``)
        self._burst_done: List[Tuple[int, int]] = []  # retired burst spans (:meth:`_in_burst`)
        self._burst_keypad = False  # the press being masked passed the keypad test
        # (flat mask, pair) of the last press counted (:meth:`_burst_press`)
        self._burst_span: Optional[Tuple[_Span, int]] = None
        self.bursts = 0  # burst spans opened (a counter for benchmarks)
        self.keys_confirmed = 0  # keys a strict receiver confirmed (:meth:`key_confirmed`; a counter)
        self.keys_as_notes = 0  # of those, keys whose music context held notes: no burst (a counter)
        self.keys_not_keypad = 0  # receiver keys not in ``keypad_burst_keys``: no burst (a counter)
        # ``keypad_burst_chain_*``: [suspect, its pair, its origin hop, restarted by a test] of the suspect followed
        self._chain_rec: Optional[list] = None
        self._chain: Optional[list] = None  # ... the chain: [pair, first hop, last hop, hop counted at or None]
        self.burst_chains = 0  # chains counted towards a burst (a counter for benchmarks)

    def _burst_press(self, e: int, start: int, pair: int) -> None:
        """The flat mask of a press (from input position ``start``) closes at hop ``e``: counted when it is of a
        key's grade; ``keypad_burst_presses`` counted within ``keypad_burst_window_ms`` open a burst (the payment
        profile's band notch) from the first sample not yet emitted when they hold ``keypad_burst_pairs`` pairs, or a
        burst still on is held longer."""
        if not self._burst_keypad or e - start < self._burst_min or not self._keypad_pairs[pair]:
            return
        if self._ctx_len:
            self._context_open(e)  # (``keypad_context_ms``: the same grade opens a keypad context)
        if not self._burst_n:
            return
        span = self._active
        last = self._burst_span
        if span is not None and last is not None and last[0] is span and last[1] == pair:
            # the pair counted last, closing again on the flat mask it continued (:meth:`_open_press`): the same press
            # (a key of the same pair again would have a pause, hence a mask, of its own); it holds a burst that is
            # on from its new close
            self._hold_burst(e)
            return
        self._burst_span = (span, pair)
        self._burst_count(e, pair)

    def _burst_count(self, e: int, pair: int) -> None:
        """A press of ``pair`` counted towards a burst at hop ``e`` (:meth:`_burst_press`, :meth:`_chain_fold`)."""
        closes = self._burst_closes
        closes.append((e, pair))
        while closes and closes[0][0] < e - self._burst_window:
            closes.popleft()
        if self._burst_on(e):
            # held (the end only moves later), after a card-length run for ``keypad_burst_linger_ms``
            self._burst_count_in += 1
            self._hold_burst(e)
        elif len(closes) >= self._burst_n and len({q for _, q in closes}) >= self._burst_pairs:
            self._open_burst(e, len(closes))
        self._spans_dirty = True

    def _hold_burst(self, e: int) -> bool:
        """A burst on at hop ``e`` is held :meth:`_burst_held` from there (its end only moves later); whether one was."""
        if not self._burst_on(e):
            return False
        self._burst.end = max(self._burst.end, e + self._burst_held())
        self._spans_dirty = True
        return True

    def _open_burst(self, e: int, counted: int) -> None:
        """A burst span from the first sample not yet emitted at hop ``e`` (by a 1-sample chunking: lim - fade) until
        :meth:`_burst_held` after it, ``counted`` presses counted in it so far (``keypad_burst_linger_*``)."""
        self._burst_count_in = counted
        self._burst = _Span(e - self.delay_samples, e + self._burst_held(), "burst")
        self._notches.append(self._burst)
        self.bursts += 1

    @property
    def wants_keys(self) -> bool:
        """The keypad burst opens on keys a strict receiver confirms (``keypad_burst_receiver``): whoever runs one on
        this masker's input calls :meth:`key_confirmed` (:class:`dtmfguard.dsp.keypad.KeypadMasker`, the pipeline)."""
        return bool(self._burst_n and self.params.keypad_burst_receiver)

    def key_confirmed(self, onset: Optional[int] = None, key: Optional[str] = None) -> bool:
        """A strict receiver (the Q.24 detector) confirmed a key in the input given so far, sounding from input
        position ``onset`` (its estimate; default: 40 ms before ``samples_in``): the keypad burst is on from the first
        sample not yet emitted (``samples_in - delay_samples``) for ``keypad_burst_hold_ms``, or a burst still on is
        held that long from here (longer after a card-length run of the masker's own presses).  Unless the music
        context before the key holds notes (``keypad_burst_music``, asked as for the masker's own presses: a
        receiver's rare false key is a held chord).  Call it between chunks; at the same input position it gives the
        same output for any chunking before it.  ``key``: the key confirmed, when known; one not in
        ``keypad_burst_keys`` (A-D: on no customer's keypad) opens nothing.  Returns whether the burst is on; nothing
        happens unless :attr:`wants_keys`."""
        if not self.wants_keys:
            return False
        if key is not None and not self._keypad_pairs[pairfit.PAIR_KEYS.index(key)]:
            self.keys_not_keypad += 1
            return False
        e = int(self.samples_in)
        start = e - int(round(0.040 * self.rate)) if onset is None else min(int(onset), e)
        # (its keys are not counted towards the linger: the masker's own presses are, and most keys are both)
        if not self._hold_burst(e):
            try:
                notes = self._burst_music is not None and self._music_context(
                    e, start, self._pos - self._buf.size, self._burst_music, gated=False)
            except Exception:  # noqa: BLE001 - fail closed: the key opens the burst
                notes = False
            if notes:
                self.keys_as_notes += 1
                return False
            self._open_burst(e, 0)
        self.keys_confirmed += 1
        self._spans_dirty = True
        return True

    def _burst_held(self) -> int:
        """How long (samples) the burst stays on after the press just counted: ``keypad_burst_hold_ms``, or
        ``keypad_burst_linger_ms`` once it has counted ``keypad_burst_linger_presses``."""
        if self._burst_linger_n and self._burst_count_in >= self._burst_linger_n:
            return max(self._burst_linger, self._burst_hold)
        return self._burst_hold

    # ---- ``keypad_burst_chain_*`` (helper h15a) ----------------------------------------------------------------
    def _step_chain(self, e: int, sus: int, conf: int, coef: np.ndarray, weak: int, expl: np.ndarray,
                    buf_start: int) -> None:
        """:meth:`_step`, then the suspects it ended or switched folded into the chain of their pair.  Every change
        of the suspect (opened, switched, ended) is made by a Python step, in any backend and chunking; what is read
        here is the state before and after such a step (the C frame only moves the suspect's last hop between them):
        the same chain, hence the same output, for any of them."""
        sp = self._suspect
        pre_first, pre_last, pre_musical = (sp[1], sp[2], sp[4]) if sp is not None else (0, 0, 0)
        was_active = self._active is not None
        self._step(e, sus, conf, coef, weak, expl, buf_start)
        now = self._suspect
        rec = self._chain_rec
        if rec is not None and now is rec[0] and now[0] == rec[1] and now[1] == e != pre_first:
            # held ``persist_ms`` and restarted here: the one-oscillator test found two partials (a voice's or a
            # note's, not one keypad), or the notes of a press that failed the keypad test: no key's evidence
            rec[3] = True
        if rec is not None and (now is not rec[0] or now[0] != rec[1]):
            obj, pair = rec[0], rec[1]
            # (ended: its own last hop; switched to another pair: what it held before this step)
            last, musical = (obj[2], obj[4]) if obj[0] == pair else (pre_last, pre_musical)
            self._chain_rec = None
            if self._active is not None and not was_active and self._pair == pair:
                # it became a press (counted as one when its mask closes): a chain it went on ends below
                ch = self._chain
                if ch is not None and ch[0] == pair and rec[2] - ch[2] <= self._chain_gap:
                    ch[2] = max(ch[2], e)
            else:
                self._chain_fold(e, pair, rec[2], last, bool(musical) or rec[3], buf_start)
        if now is not None and self._chain_rec is None:
            self._chain_rec = [now, now[0], now[1], False]
        ch = self._chain
        if ch is not None and self._active is not None and not was_active and self._pair == ch[0] \
                and e - ch[2] <= self._chain_gap:
            # a press of the chain's pair opens: it is counted as a press when its mask closes, not twice
            if ch[3] is not None:
                self._uncount(ch[3], ch[0])
            self._chain = None

    def _uncount(self, e: int, pair: int) -> None:
        """The count of ``pair`` made at hop ``e`` (a chain's, :meth:`_chain_fold`) taken back: out of the window's
        closes and, when the burst it went to is still on, out of its presses (``keypad_burst_linger_*`` counts
        presses, not a chain and then the press it became)."""
        try:
            self._burst_closes.remove((e, pair))
        except ValueError:
            return  # (already out of the window)
        if self._burst_on(e) and self._burst_count_in > 0:
            self._burst_count_in -= 1

    def _burst_on(self, e: int) -> bool:
        """The last burst is on at hop ``e``, its ramp-out not begun at any chunking (its end is still past the first
        sample not yet emitted by a 1-sample chunking)."""
        b = self._burst
        return b is not None and b.end - self._guard >= e - self.delay_samples

    def _chain_fold(self, e: int, pair: int, origin: int, last: int, musical: bool, buf_start: int) -> None:
        """A suspect of ``pair`` (named from hop ``origin`` to ``last``) ended or switched at hop ``e``: it extends
        the chain of its pair when it began within ``keypad_burst_chain_gap_ms`` of the chain's last hop (else it
        starts one); a chain spanning ``keypad_burst_chain_ms`` counts once towards a burst, unless the context
        measure finds held notes before it (``keypad_burst_music``, as for a press).  A musical suspect, or one the
        one-oscillator test restarted (``musical``), ends it."""
        if musical or not self._keypad_pairs[pair]:
            self._chain = None
            return
        ch = self._chain
        if ch is not None and ch[0] == pair and origin - ch[2] <= self._chain_gap:
            ch[2] = max(ch[2], last)
        else:
            ch = self._chain = [pair, origin, last, None]
        if ch[3] is None and ch[2] - ch[1] >= self._chain_len:
            if self._burst_music is not None and self._music_context(e, ch[1], buf_start, self._burst_music,
                                                                     gated=False):
                return
            ch[3] = e
            self.burst_chains += 1
            self._burst_count(e, pair)

    # ------------------------------------------------------------------ the keypad context (``keypad_context_ms``)
    def _setup_context(self, p: MaskerParams) -> None:
        ms = p.keypad_context_ms
        if ms is not None and not 0 < ms <= 60000:
            raise ValueError("keypad_context_ms: 0 < ms <= 60000")
        # (a band notch needs its look-ahead: none with one too short, as the keypad burst; 0: off)
        self._ctx_len = 0 if ms is None or not self._notch_len else int(round(ms * self.rate / 1000.0))

    def _reset_context(self) -> None:
        self._ctx = (0, -1)  # the keypad context on: (first, last) hop naming a short window it verifies
        self.contexts = 0  # keypad contexts opened (not those a later press held longer: a counter for benchmarks)
        self.context_verified = 0  # pending short windows verified by the context alone (a counter for benchmarks)

    def _context_open(self, e: int) -> None:
        """The flat mask of a press of a key's grade (:meth:`_burst_press`) closes at hop ``e``: a keypad context is
        on from there for ``keypad_context_ms`` (a context still on is held longer)."""
        first, last = self._ctx
        if e <= last:
            self._ctx = (first, e + self._ctx_len)
        else:
            self._ctx = (e, e + self._ctx_len)
            self.contexts += 1

    def _in_context(self, named: int) -> bool:
        """``keypad_context_ms``: a pending short window named at hop ``named`` inside a keypad context is verified
        (asked last in :meth:`_verify_pending`: whatever else verified it is not counted here)."""
        first, last = self._ctx
        if first <= named <= last:
            self.context_verified += 1
            return True
        return False
    # ---- ``pair_hold_*`` (helper h16a) -------------------------------------------------------------------------
    def _setup_pair_hold(self, p: MaskerParams) -> None:
        hold, gap, span = p.pair_hold_ms, p.pair_hold_gap_ms, p.pair_hold_chain_ms
        if hold is not None and not (0 < hold <= 1000 and 0 <= gap <= 1000 and 0 <= span <= 1000):
            raise ValueError("pair_hold_*: hold 0 < ms <= 1000, gap and chain 0..1000 ms")
        ms = self.rate / 1000.0
        # (a band notch needs its look-ahead: none with one too short)
        self._phold_len = 0 if hold is None or not self._notch_len else int(round(hold * ms))
        self._phold_gap = int(round(gap * ms))
        self._phold_span = int(round(span * ms))

    def _reset_pair_hold(self) -> None:
        # the chain of the last keypad-like suspects of one pair: [pair, first hop, last hop, suspects, held until]
        self._phold: Optional[list] = None
        self.pair_holds = 0  # chains that began a hold (a counter for benchmarks)

    def _pair_hold_chain(self, sp: list) -> None:
        """A suspect closed at its natural end (its pair not named for ``suspect_close_ms``); ``pair_hold_*``: a
        keypad-like suspect (not musical, a band notch) extends the
        chain of its pair when it began within ``pair_hold_gap_ms`` of the chain's last named hop or while its hold was
        on (else it starts one); a chain of two suspects or more spanning ``pair_hold_chain_ms`` holds its pair for
        ``pair_hold_ms`` after its last named hop (a window naming it then is notched at once, :meth:`_pair_held`).
        The notch itself ends as any suspect's (``notch_tail_ms``)."""
        span, pair = sp[3], sp[0]
        if span is None or span.source != "notch" or sp[4]:
            return
        ch = self._phold
        if ch is not None and ch[0] == pair and (sp[1] <= ch[2] + self._phold_gap or sp[1] <= ch[4]):
            ch[2] = max(ch[2], sp[2])
            ch[3] += 1
        else:
            ch = self._phold = [pair, sp[1], sp[2], 1, -_NO_DUE]
        if ch[3] >= 2 and ch[2] - ch[1] >= self._phold_span:
            if ch[4] == -_NO_DUE:
                self.pair_holds += 1
            ch[4] = max(ch[4], ch[2] + self._phold_len)

    def _pair_held(self, e: int, pair: int) -> bool:
        """``pair_hold_*``: True when a chain of ``pair`` holds it at hop ``e`` (:meth:`_pair_hold_chain`): a short window
        naming it is a suspect at once, not kept pending for its verification."""
        ch = self._phold
        return ch is not None and ch[0] == pair and e <= ch[4]

    def _in_burst(self, pos: int) -> bool:
        """True if a burst span covers input position ``pos`` (retired or not: the same for any chunking)."""
        return any(s.source == "burst" and s.start <= pos < s.end for s in self._notches) \
            or any(a <= pos < b for a, b in self._burst_done)

    def _paying(self, pos: int) -> bool:
        """True if the payment profile (:meth:`notch_all`) covers input position ``pos`` (its spans retired or
        not: the same answer whenever the chunking retires them)."""
        return any(s.source == "payment" and s.start <= pos and (s.end is None or pos < s.end)
                   for s in self._notches) or any(a <= pos < b for a, b in self._pay_done) \
            or (self._burst_profile and self._in_burst(pos))

    def _ended(self, pair: int, e: int, span: int) -> None:
        """A press (``span``: ``verify_recent_ms``) or a weak suspect (``verify_recent_weak_ms``) of ``pair`` ended at
        hop ``e``: a short window naming its pair up to ``span`` later is verified (:meth:`_verify_pending`)."""
        if span > 0:
            self._recent = {p: h for p, h in self._recent.items() if h >= e}
            self._recent[pair] = max(e + span, self._recent.get(pair, e + span))

    def _end_suspect(self, end: int) -> None:
        sp = self._suspect
        if sp is not None and not sp[4] and sp[0] in self._recent:
            self._ended(sp[0], sp[2], self._recent_weak)  # (a weak suspect's: no short window's alone, no note's)
        if sp is not None and sp[3] is None:
            self._suspect = None
        elif sp is not None:
            if sp[3].source == "inband":
                if sp[3].end is None:
                    self._close(sp[3], end)
            else:
                sp[3].end = max(end, sp[3].start + 1, sp[3].keep)  # (``keep``: ``notch_rejoin_keeps_end``)
            self._suspect = None

    def _writable(self, e: int) -> int:
        # First input position whose output (incl. its fade-in) has not been emitted by a 1-sample chunking
        # when hop e is decided: keeps the output independent of chunk sizes.
        return e - self.delay_samples + self._fade

    def _onset(self, e: int, pair: int, steady: float, buf_start: int, lim: int) -> int:
        """Walk back from the confirmation to the first 2 ms window still carrying this pair's energy."""
        native = self._native_output
        if native is not None and goertzel.backend() == "native":  # the same walk in C, same bits
            return native.onset(self._buf, buf_start, e, pair, steady, lim)
        lo = max(lim - self._short, buf_start)
        seg = self._buf[lo - buf_start: e - buf_start]
        if seg.size < self._short:
            return lim
        frames = np.lib.stride_tricks.sliding_window_view(seg, self._short)[:: self._short_step]
        starts = lo + np.arange(frames.shape[0]) * self._short_step
        carrying = self._onset_explained(frames, pair) >= self._onset_ratio * max(steady, self._onset_floor)
        i = carrying.size - 1
        while i >= 0 and not carrying[i]:
            i -= 1
        if i < 0:
            return lim
        while i > 0 and carrying[i - 1]:
            i -= 1
        return int(starts[i])

    def _onset_explained(self, frames: np.ndarray, pair: int) -> np.ndarray:
        """Energy the pair explains in each 2 ms window (least squares, as :func:`pairfit.pair_fit`), every sum
        in the fixed order the C walk (native/masker.c ``onset``) takes: sample by sample, then term by term."""
        b = self._onset_basis[:, pairfit.PAIR_COLS[pair]]  # [short, 4]
        v = frames[:, 0, None] * b[0][None, :]
        energy = frames[:, 0] * frames[:, 0]
        for j in range(1, frames.shape[1]):
            v = v + frames[:, j, None] * b[j][None, :]
            energy = energy + frames[:, j] * frames[:, j]
        g = self._onset_ginv[pair]
        beta = [((g[i, 0] * v[:, 0] + g[i, 1] * v[:, 1]) + g[i, 2] * v[:, 2]) + g[i, 3] * v[:, 3] for i in range(4)]
        explained = ((v[:, 0] * beta[0] + v[:, 1] * beta[1]) + v[:, 2] * beta[2]) + v[:, 3] * beta[3]
        return energy - np.maximum(energy - explained, 0.0)

    def _expire(self, emitted: int) -> None:
        """Retire spans whose fade-out lies wholly before ``emitted`` (the next output position)."""
        self._spans_dirty = True
        if self._notches:
            keep_n = []
            for span in self._notches:
                if span.end is not None and span.end < emitted:
                    self._notch_history.append(MaskedSpan(span.start, span.end, span.source))
                    if span.source == "payment":
                        self._pay_done.append((span.start, span.end))
                    elif span.source == "burst":
                        self._burst_done.append((span.start, span.end))
                else:
                    keep_n.append(span)
            self._notches = keep_n
        keep = []
        for span in self._spans:
            if span.end is not None and span.end + self._fade < emitted - self._fade:
                self._history.append(MaskedSpan(span.start, span.end, span.source))
            else:
                keep.append(span)
        self._spans = keep

    def _weights(self, start: int, n: int) -> np.ndarray:
        w = np.zeros(n)
        f = self._fade
        for span in self._spans:
            s = span.start
            e = span.end if span.end is not None else start + n + f + 1
            if e + f <= start or s - f >= start + n:
                continue
            lo, hi = max(s, start), min(e, start + n)
            if hi > lo:
                w[lo - start: hi - start] = 1.0
            if f:
                # fade-in over [s - f, s) and fade-out over [e, e + f)
                idx = np.arange(max(s - f, start), min(s, start + n))
                if idx.size:
                    w[idx - start] = np.maximum(w[idx - start], self._fade_ramp[s - idx - 1])
                idx = np.arange(max(e, start), min(e + f, start + n))
                if idx.size:
                    w[idx - start] = np.maximum(w[idx - start], self._fade_ramp[idx - e])
        return w

    def _apply(self, raw: np.ndarray, start: int, buf_start: int) -> np.ndarray:
        """``raw`` itself (not a copy: callers convert it) where nothing is treated, else a new array."""
        if not self._spans and not self._notches:
            return raw
        n = raw.size
        if n > _APPLY_PIECE:  # a long chunk (a recording under the payment profile): bounded memory
            return np.concatenate([self._apply(raw[i: i + _APPLY_PIECE], start + i, buf_start)
                                   for i in range(0, n, _APPLY_PIECE)])
        w = self._weights(start, n) if self._spans else None
        fading = w is not None and bool(((w > 0) & (w < 1.0)).any())
        overlap = any(sp.start < start + n and (sp.end is None or sp.end > start) for sp in self._notches)
        notched = self._notched(start, n, w) if fading or overlap else None
        if notched is None and (w is None or not w.any()):
            return raw
        if notched is None and w is not None and bool((w >= 1.0).all()):
            return self._mask_signal(start, n)  # wholly under the mask
        out = raw.copy()
        if notched is not None:
            sel, values = notched
            out[sel] = values
        if w is not None and w.any():
            m = self._mask_signal(start, n)
            sel = w > 0
            out[sel] = (1.0 - w[sel]) * out[sel] + w[sel] * m[sel]
        return out

    def _notched(self, start: int, n: int, w: Optional[np.ndarray]):
        """Band-notched samples of [start, start + n) inside notch spans and mask fades (not under the
        full mask): ``(positions relative to start, values)`` or None.

        Blocks of ``notch_len`` samples at half-block steps lose their projection on the 8 DTMF
        frequencies and the widened bands' vectors (``notch_band_extra``) and are overlap-added with sin^2 weights (a partition of unity: a steady tone is
        removed exactly, block edges leave no steps).  The removal ramps in over the first ``notch_ramp_in_ms`` of
        a notch span and out over its last ``notch_tail_ms`` (0 by default: the removal stops at the span's end, the
        last hop that named its pair), and follows the mask's weight in a fade."""
        if not self._notch_len:
            return None
        gain = np.zeros(n)
        r = self._notch_tail + 1  # (the ramp-out: ``notch_tail_ms``)
        rs = self._notch_ramp_in + 1  # (``notch_ramp_in_ms``)
        for span in self._notches:
            e = span.end if span.end is not None else start + n + r
            lo, hi = max(span.start, start), min(e, start + n)
            if hi > lo:
                p = np.arange(lo, hi)
                g = np.minimum(np.minimum((p - span.start + 1) / rs, (e - p) / r), 1.0)
                gain[lo - start: hi - start] = np.maximum(gain[lo - start: hi - start], g)
        if w is not None:
            fading = (w > 0) & (w < 1.0)
            # a fade mixes the mask with notched audio (``fade_notch_gain``: whole before the mask is)
            gain[fading] = np.maximum(gain[fading], np.minimum(self._fade_notch * w[fading], 1.0))
            gain[w >= 1.0] = 0.0
        idx = np.flatnonzero(gain > 0)
        if not idx.size:
            return None
        buf_start = self._pos - self._buf.size
        pos = start + idx
        # (the blocks' projections, each from its own samples only: the same bits for any chunking; every sum in the
        # fixed order of the C render)
        return idx, self._buf[pos - buf_start] - gain[idx] * self._notch_band(pos, buf_start)

    def _notch_band(self, pos: np.ndarray, buf_start: int) -> np.ndarray:
        """What a band notch takes from the input at positions ``pos`` (increasing), before its gain: the sin^2-weighted
        projections (:meth:`_block_proj`) of the two notch blocks over each; the blocks must be in the delay line."""
        h = self._notch_len // 2
        first, last = int(pos[0]) // h - 1, int(pos[-1]) // h
        proj = self._block_proj(first, last, buf_start)
        blk = pos // h
        u1 = pos - blk * h  # offset in the block starting at this half-block ...
        u0 = u1 + h  # ... and in the one before
        return self._notch_win[u0] * proj[blk - 1 - first, u0] + self._notch_win[u1] * proj[blk - first, u1]

    def _block_proj(self, first: int, last: int, buf_start: int) -> np.ndarray:
        """The band notch's blocks ``first`` .. ``last`` (``notch_len`` samples from ``block * notch_len / 2``)
        projected on the DTMF band [blocks, notch_len], each from its own samples only (same bits any chunking),
        every sum in the fixed order of the C render: coefficients sample by sample, projection term by term."""
        nl = self._notch_len
        a = (first + np.arange(last - first + 1)) * (nl // 2) - buf_start
        if a[0] < 0 or a[-1] + nl > self._buf.size:  # (the delay line is kept long enough: never on a stream)
            raise ValueError("notch block outside the delay line")
        y = self._buf[a[:, None] + np.arange(nl)[None, :]]  # [blocks, nl]
        pinv, basis = self._notch_pinv, self._notch_basis  # [cols, nl], [nl, cols]
        coef = y[:, 0, None] * pinv[None, :, 0]
        for j in range(1, nl):
            coef = coef + y[:, j, None] * pinv[None, :, j]
        proj = coef[:, 0, None] * basis[None, :, 0]
        for k in range(1, basis.shape[1]):
            proj = proj + coef[:, k, None] * basis[None, :, k]
        return proj

    def _make_tone_table(self) -> Optional[np.ndarray]:
        """The tone mask over one period of absolute positions, when the period is short (None else).

        Phase comes from the absolute position, reduced exactly, so long calls lose no precision."""
        period_num = int(round(self.mask_hz * 1000))
        period = self.rate * 1000 // math.gcd(period_num, self.rate * 1000)
        if period > 1 << 16:
            return None
        k = (np.arange(period, dtype=np.int64) * period_num) % (self.rate * 1000)
        return dbm0_to_peak(self.mask_dbm0) * np.sin(2 * np.pi * k / (self.rate * 1000.0))

    def _mask_signal(self, start: int, n: int) -> np.ndarray:
        """The mask at absolute output positions [start, start + n): independent of keys and chunking."""
        if self.mask == "silence" or n == 0:
            return np.zeros(n)
        if self.mask == "tone":
            table = self._mask_table
            if table is not None:
                return table[np.arange(start, start + n, dtype=np.int64) % table.size]
            period_num = int(round(self.mask_hz * 1000))
            k = (np.arange(start, start + n, dtype=np.int64) * period_num) % (self.rate * 1000)
            return dbm0_to_peak(self.mask_dbm0) * np.sin(2 * np.pi * k / (self.rate * 1000.0))
        out = np.empty(n)
        rms = dbm0_to_peak(self.noise_dbm0) / math.sqrt(2)
        b0, b1 = start // _NOISE_BLOCK, (start + n - 1) // _NOISE_BLOCK
        pos = 0
        for b in range(b0, b1 + 1):
            counter = np.array([b % 2**63, 0, 0, 0], dtype=np.uint64)
            g = np.random.Generator(np.random.Philox(key=self._seed, counter=counter))
            block = g.standard_normal(_NOISE_BLOCK) * rms
            lo = max(start, b * _NOISE_BLOCK) - b * _NOISE_BLOCK
            hi = min(start + n, (b + 1) * _NOISE_BLOCK) - b * _NOISE_BLOCK
            out[pos: pos + hi - lo] = block[lo:hi]
            pos += hi - lo
        return out


_HANN: dict = {}


def _hann(n: int) -> np.ndarray:
    """A read-only Hann window of ``n`` samples, shared by every masker."""
    w = _HANN.get(n)
    if w is None:
        w = np.hanning(n)
        w.setflags(write=False)
        w = _HANN.setdefault(n, w)
    return w


def _near_dtmf(hz: float):
    from .params import DTMF_HZ

    return [abs(hz - f) < 50.0 for f in DTMF_HZ]


def mask_samples(samples, rate: int = 8000, **options) -> Tuple[np.ndarray, List[MaskedSpan]]:
    """Mask a whole recording: output aligned with the input (delay removed) and the masked spans.

    ``samples`` as for :meth:`Masker.process` (int16 or float [-1, 1]); same dtype out.
    """
    x = np.asarray(samples)
    options.setdefault("dtype", "float64" if x.dtype.kind == "f" else "int16")
    m = Masker(rate, **options)
    out = np.concatenate([m.process(x), m.flush()])[m.delay_samples:]
    if m.errors:
        raise RuntimeError("masker failed on this input; output withheld")
    spans = [s for s in m.masked_spans if s.end > 0 and s.start < x.size]
    return out, spans
