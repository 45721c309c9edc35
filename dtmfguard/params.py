# SPDX-License-Identifier: GPL-2.0-or-later
"""Detector parameters: one frozen object, each figure next to its source.

Times are in milliseconds and converted to samples for the stream's rate, so
the same parameters serve 8 kHz and 16 kHz (wideband) calls.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DetectorParams", "ROW_HZ", "COL_HZ", "DTMF_HZ", "GUARD_HZ", "DEFAULT_PARAMS"]

#: ITU-T Q.23 §2: low (row) group and high (column) group frequencies.
ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_HZ = ROW_HZ + COL_HZ
#: Talk-off guard bins: half of each row frequency (a musical note whose 2nd harmonic lands on a row tone
#: has its fundamental here) and twice each column frequency (harmonics of a voiced or musical sound).
#: A DTMF generator puts no energy at either.
GUARD_HZ = tuple(f / 2 for f in ROW_HZ) + tuple(2 * f for f in COL_HZ)


@dataclass(frozen=True)
class DetectorParams:
    """Thresholds of the in-band detector.

    Analysis runs on half-blocks of ``half_block_ms``; every window is two
    consecutive half-blocks (12.75 ms = 102 samples at 8 kHz, the block length
    of spandsp and Asterisk), so windows overlap by half and every sample is
    seen by exactly two windows.  That overlap gives the frequency check
    (phase advance between windows) and sub-window onset/offset estimates.
    """

    # 12.75 ms windows (102 samples at 8 kHz): bin spacing ~78 Hz separates the 73 Hz-spaced rows with
    # acceptable leakage while 3 windows fit in a 40 ms tone (Q.24 minimum accepted duration).
    half_block_ms: float = 6.375

    # Q.24 (North American column): accept ±1.5 %, reject beyond ±3.5 %. The limit sits between the two.
    freq_tolerance: float = 0.025

    # Talk-off guard: when other sound shares the window (tones carry less than ``clean_fraction`` of its
    # energy), the tones must sit closer to nominal. Real keypads are crystal-locked (errors << 1 %), while
    # speech harmonics that land near a DTMF pair drift 1.5-3 % off it (measured on Asterisk prompts).
    # Q.24's +-1.5 % acceptance is a clean-signal requirement and stays met.
    freq_tolerance_mixed: float = 0.005
    clean_fraction: float = 0.6

    # Q.24: accept normal twist (high group weaker) up to 8 dB and reverse twist up to 4 dB.
    # One dB of margin each for estimation error in noise.
    normal_twist_db: float = 9.0
    reverse_twist_db: float = 5.0

    # Q.24 / REFERENCES.md: operate down to about -26 dBm0 per tone; we must detect -30 dBm0 per tone
    # (issue 3). spandsp's default threshold is -42 dBm0; -38 keeps 8 dB of margin below -30.
    min_tone_dbm0: float = -38.0

    # In each group the strongest bin must beat every other bin of that group by this much
    # (spandsp and Asterisk use ~8 dB relative-peak tests); a tone 1.5 % off leaks ~-13 dB into its
    # neighbour at 78 Hz spacing, so 8 dB still accepts it.
    relative_peak_db: float = 8.0

    # Share of the window's total energy that the two tones must carry. 15 dB S/N white noise keeps it
    # above 0.95; speech at the digit's own level (0 dB) about 0.5. Low enough for talk-down at -6 dB.
    min_tone_fraction: float = 0.18

    # Talk-off guard (music): a component at half the row frequency, or at twice the column frequency,
    # stronger than the tone minus this many dB marks the "tone" as a harmonic of a musical or voiced sound.
    # Real DTMF measured here stays below -33 dB at these bins, even clipped at 0 dBm0 and G.711 coded.
    # Measured trade-off (benchmarks/detector.py input, 30 keys at -12 dBm0 over speech; Asterisk music
    # at 8 playback speeds): 18 dB -> 23/30 keys, 3 false; 12 dB -> 26/30, 4 false; no guard -> 28/30, 7.
    harmonic_guard_db: float = 12.0
    # In windows shared with other sound (speech under a digit), only a guard component more than 3 dB above
    # the tone (a note's fundamental over its own 2nd harmonic) rejects the window: speech energy there is
    # common. Measured trade-off: 0 dB here costs ~3 % more talk-down at 0 dB digit-to-speech.
    harmonic_guard_mixed_db: float = -3.0

    # Duration: Q.24 accepts >= 40 ms and rejects <= 23 ms (ETSI ES 201 235: reject < 20 ms).
    # A tone is confirmed once its estimated duration reaches this value, centred between the two.
    min_tone_ms: float = 30.0

    # Talk-off guard: a digit is confirmed only after this many windows passed the frequency (phase) test.
    # With 3, no false digit remained on 0.73 h of Asterisk prompts and music (2 left 2.7 false digits/h);
    # a 40 ms tone holds 4-5 such windows, so Q.24's 40 ms acceptance is unaffected.
    confirm_checked_windows: int = 3

    # Q.24: a break of <= 10 ms must not split a digit; a pause of >= 40 ms separates two digits.
    # A digit ends after this many consecutive windows without it (4 x 6.375 = 25.5 ms of window hops:
    # no window lies wholly inside a 10 ms break, at least 4 lie wholly inside a 40 ms pause).
    end_miss_windows: int = 4

    # A window's own tone amplitude relative to the digit's steady amplitude below which it does not
    # count as covering the tone (used for onset/offset estimates).
    edge_coverage_min: float = 0.08

    def half_block_samples(self, rate: int) -> int:
        return max(8, int(round(rate * self.half_block_ms / 1000.0)))


DEFAULT_PARAMS = DetectorParams()


@dataclass(frozen=True)
class MaskerParams:
    """Screening thresholds of the masker (:mod:`dtmfguard.masker`); the numpy path and the C screen
    (native/masker.c) read the same object.  Tuned on the ``tune`` half of :mod:`dtmfguard.corpora`
    only (``benchmarks/masker.py`` reports the ``report`` half).

    Every 1 ms the masker fits the 16 key pairs to the windows of ``screen_windows_ms`` that end there
    (the attacker of :mod:`dtmfguard.adversary` uses 2, 4, 8 and 16 ms windows, hop 1 ms).
    """

    # Windows (ms) of the screen: the attacker's own lengths, so whatever it could name in the output is
    # seen here first.  The longest must fit in the look-ahead (with the fade), see Masker.
    screen_windows_ms: tuple = (2.0, 4.0, 8.0, 16.0)
    # Screen (more liberal than the attacker: best pair explains >= 0.8, residual 3x below the second
    # best, tones >= -45 dBm0, twist <= 15 dB): a window passing it is *suspect*.  A suspect window that
    # is not confirmed gets the band notch (below), never the flat mask.
    screen_fraction: float = 0.8
    screen_unique: float = 3.0
    screen_min_tone_dbm0: float = -45.0
    max_twist_db: float = 15.0
    # Confirmation (flat mask): the attacker's rule on an 8 or 16 ms window.  On the tune half of the
    # corpora no key-free window of that length passes it (speech harmonics move and come in families;
    # a 16 ms window resolves them), while every real press of >= 23 ms has such windows.
    confirm_windows_ms: tuple = (8.0, 16.0)
    confirm_fraction: float = 0.8
    confirm_unique: float = 3.0
    confirm_min_tone_dbm0: float = -45.0
    # The screen naming the same pair at every hop for this long is a press too (a tone 2 % off keeps
    # single 8/16 ms windows just under the confirmation thresholds).
    hit_run_ms: float = 8.0
    # Weak presence (16 ms window): the best pair there explains this share of the window and both tones
    # reach the screen floor.  ``weak_run_ms`` of hops in a row with the same weak pair make it a suspect
    # (a tone under speech: found within ~15 ms at 10 dB under, the onset walked back to); a suspect
    # weakly present ``persist_ms`` after it was first named is a press: flat mask from then on.
    # Tune half: weak runs of 4 ms at 0.5 occur 0-15 times a minute on key-free audio.
    weak_fraction: float = 0.5
    weak_run_ms: float = 4.0
    persist_ms: float = 40.0
    # ... unless the window has a component at half the row or twice the column frequency this close to
    # the weaker tone (dB): harmonics of a note or a voice (as DetectorParams.harmonic_guard_db).
    # None: no harmonic test.
    harmonic_guard_db: float = 0.0
    # A suspect ends after this long without the pair; a confirmed press after ``close_ms`` below
    # ``hold_ratio`` of its steady energy (16 ms window, which bridges Q.24's 10 ms breaks).
    suspect_close_ms: float = 8.0
    close_ms: float = 4.0
    hold_ratio: float = 0.25
    # A suspect named only by a window of <= ``verify_window_ms`` waits ``verify_after_ms`` (within the
    # look-ahead) for the 16 ms window centred on it, and is notched only if its pair explains
    # ``verify_fraction`` of that window: a tone under speech keeps its pair there, a syllable's chance
    # fit does not.
    verify_window_ms: float = 4.0
    verify_after_ms: float = 8.0
    verify_fraction: float = 0.2
    # ... or if short windows named the same pair at this many hops during the wait
    verify_support: int = 3
    # Band notch while undecided: remove the projection on all 8 DTMF frequencies (key-independent) in
    # aligned blocks of this length.
    notch_block_ms: float = 8.0


DEFAULT_MASKER_PARAMS = MaskerParams()
__all__ += ["MaskerParams", "DEFAULT_MASKER_PARAMS"]
