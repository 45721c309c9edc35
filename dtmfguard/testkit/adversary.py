# SPDX-License-Identifier: GPL-2.0-or-later
"""An adversarial DTMF decoder: what could someone holding the agent's audio recover?

Why it exists: PCI DSS req. 3.3.1 forbids keeping the card verification code
in call recordings, and the PCI SSC guidance on telephone payments keeps the
agent out of scope only if *no* card data reaches them.  A masker that lets the
first 20-40 ms of each tone through (the detector latency of block-Goertzel
designs, see REFERENCES.md) fails that promise even though a standard
(ITU-T Q.24) receiver would not report the leaked fragment as a digit.  So the
masker is judged by an attacker, not by a receiver.

The attacker here is deliberately stronger than a Q.24 receiver:

* it uses short windows (2, 4, 8 and 16 ms by default, hop 1 ms) where Q.24
  receivers need 40 ms, so a few leaked milliseconds suffice;
* in every window it fits each of the 16 key pairs (row and column frequency,
  cosine and sine terms, so the unknown phases are solved for) by least
  squares, and names the pair that explains the window clearly better than all
  others;
* it accepts any level down to about -45 dBm0 per tone and twist well beyond
  Q.24's 8/4 dB limits.

It only names digits it can tell apart: on 2 ms of tone the 73 Hz row spacing
is barely resolvable, which is why a 1-2 ms leak recovers few digits while a
5 ms one recovers about half (measured, REFERENCES.md "Measured here").

``recover_digits(samples, rate)`` lists what the attacker names; ``score`` and
``count_recovered`` compare that with ground-truth spans, one answer per key
press, so a decoder guessing at random scores 1/16 of the presses.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..dsp.levels import dbm0_to_peak
from ..dsp.pairfit import KEYPAD_KEYS, PAIR_KEYS, PAIRS, pair_fit, pair_tables

__all__ = [
    "Detection",
    "decode",
    "pair_fit",
    "PAIR_KEYS",
    "KEYPAD_KEYS",
    "recover_digits",
    "score",
    "count_recovered",
    "CHANCE",
    "chance_bound",
    "guess_chance",
    "oracle_answers",
    "oracle_score",
    "WINDOWS_MS",
    "load_speech",
    "press_scenario",
    "CONDITIONS",
    "HARD_CONDITIONS",
]

log = logging.getLogger(__name__)

#: Window lengths the attacker tries (ms).  2 ms is 16 samples at 8 kHz.
WINDOWS_MS: Tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)
#: Hop between windows (ms).
HOP_MS = 1.0
#: Probability that a guess independent of the audio names the right key.
CHANCE = 1.0 / 16.0

# Acceptance: the best pair must explain this share of the window's energy ...
_MIN_FRACTION = 0.8
# ... and leave at most 1/_UNIQUE of the residual the second best pair leaves.
_UNIQUE = 3.0
# Per-tone amplitude floor and the twist range accepted (far wider than Q.24's 8/4 dB).
_MIN_TONE_DBM0 = -45.0
_MAX_TWIST_DB = 15.0
# Hits of one digit closer than this merge into one detection.
_MERGE_MS = 10.0

_PAIRS = PAIRS


@dataclass(frozen=True)
class Detection:
    """One run of windows naming the same key: sample span [start, end) and how many windows agreed.

    ``repr`` hides the digit (it could be card data); read ``.digit`` explicitly.
    """

    digit: str
    start: int
    end: int
    support: int

    def __repr__(self) -> str:
        return f"Detection(digit=<hidden>, start={self.start}, end={self.end}, support={self.support})"

    __str__ = __repr__


# the pair-fit maths lives in dtmfguard.dsp.pairfit (the masker uses it too)
_pair_tables = pair_tables


def _window_hits(x: np.ndarray, rate: int, length: int, hop: int):
    """Per window of ``length`` samples (hop ``hop``): best pair index or -1, and the window starts."""
    if x.size < length:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::hop]
    starts = np.arange(frames.shape[0]) * hop
    resid, beta, energy = pair_fit(frames, rate)
    order = np.argsort(resid, axis=1)
    best, second = order[:, 0], order[:, 1]
    rows = np.arange(frames.shape[0])
    r_best = resid[rows, best]
    r_second = resid[rows, second]
    coef = beta[rows, best]  # [nw, 4]
    amp_row = np.hypot(coef[:, 0], coef[:, 1])
    amp_col = np.hypot(coef[:, 2], coef[:, 3])
    floor = dbm0_to_peak(_MIN_TONE_DBM0)
    with np.errstate(divide="ignore", invalid="ignore"):
        twist = 20 * np.log10(np.maximum(amp_row, 1e-9) / np.maximum(amp_col, 1e-9))
    ok = (
        (energy > 0)
        & (r_best <= (1 - _MIN_FRACTION) * energy)
        & (r_second >= _UNIQUE * r_best)
        & (amp_row >= floor)
        & (amp_col >= floor)
        & (np.abs(twist) <= _MAX_TWIST_DB)
    )
    return np.where(ok, best, -1), starts


def decode(samples, rate: int = 8000, windows_ms: Sequence[float] = WINDOWS_MS) -> List[Detection]:
    """Every run of windows that names a key, in order of start.

    ``samples``: 1-D audio on the int16 scale (int16 arrays or float64 as produced
    by :mod:`dtmfguard.testkit.synth`).  Never logs the digits.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    hop = max(1, int(round(rate * HOP_MS / 1000.0)))
    hits = []  # (start, end, pair)
    for ms in windows_ms:
        length = max(8, int(round(rate * ms / 1000.0)))
        pair, starts = _window_hits(x, rate, length, hop)
        sel = pair >= 0
        for s, p in zip(starts[sel], pair[sel]):
            hits.append((int(s), int(s) + length, int(p)))
    hits.sort()
    merge = int(round(rate * _MERGE_MS / 1000.0))
    open_runs: dict = {}  # pair -> [start, end, support]
    done: List[Tuple[int, int, int, int]] = []
    for s, e, p in hits:
        run = open_runs.get(p)
        if run is not None and s <= run[1] + merge:
            run[1] = max(run[1], e)
            run[2] += 1
        else:
            if run is not None:
                done.append((run[0], run[1], run[2], p))
            open_runs[p] = [s, e, 1]
    for p, run in open_runs.items():
        done.append((run[0], run[1], run[2], p))
    done.sort()
    return [Detection(_PAIRS[p][2], s, e, n) for s, e, n, p in done]


def recover_digits(samples, rate: int = 8000) -> List[Tuple[str, int]]:
    """What an attacker reading this audio can name: ``[(digit, start_sample), ...]`` in time order."""
    return [(d.digit, d.start) for d in decode(samples, rate)]


def _span_fields(span) -> Tuple[str, int, int]:
    if hasattr(span, "digit"):
        return span.digit, int(span.start), int(span.end)
    digit, start, end = span
    return digit, int(start), int(end)


def answers(detections: Iterable[Detection], spans: Iterable, *, offset: int = 0) -> List[Optional[str]]:
    """The attacker's one answer per ground-truth span: the key named by most windows overlapping it.

    ``offset`` is added to the spans (e.g. the masker's ``delay_samples``).  ``None``: no answer.
    """
    dets = list(detections)
    out: List[Optional[str]] = []
    for span in spans:
        _, start, end = _span_fields(span)
        start, end = start + offset, end + offset
        votes: dict = {}
        for d in dets:
            if d.start < end and d.end > start:
                votes[d.digit] = votes.get(d.digit, 0) + d.support
        out.append(max(votes, key=votes.get) if votes else None)
    return out


def score(detections_or_samples, spans: Sequence, rate: int = 8000, *, offset: int = 0) -> int:
    """How many ground-truth key presses the attacker names correctly (one answer per press).

    Takes either the output of :func:`decode` or audio samples.  ``spans`` are
    :class:`dtmfguard.testkit.synth.ToneSpan` objects or ``(digit, start, end)`` tuples.
    """
    if isinstance(detections_or_samples, np.ndarray):
        dets = decode(detections_or_samples, rate)
    else:
        dets = list(detections_or_samples)
    spans = list(spans)
    got = answers(dets, spans, offset=offset)
    return sum(1 for span, a in zip(spans, got) if a is not None and a == _span_fields(span)[0])


def count_recovered(samples, spans: Sequence, rate: int = 8000, *, offset: int = 0) -> int:
    """Decode ``samples`` and return how many of the ground-truth ``spans`` it names correctly."""
    return score(decode(samples, rate), spans, rate, offset=offset)


def oracle_answers(samples, spans: Sequence, rate: int = 8000, *, offset: int = 0,
                   keys: str = PAIR_KEYS) -> List[str]:
    """The attacker who knows exactly when each press is (e.g. from the mask's timing): for each span, the
    key whose tone pair explains most energy over the whole span (one least-squares fit per key), or
    over its 16 ms sub-windows summed when the span is long (so frequency errors cost little).  ``keys``: the
    keys it chooses among (one who knows a customer's keypad has 12 answers among :data:`KEYPAD_KEYS`:
    chance 1/12)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    among = np.array([PAIR_KEYS.index(k) for k in keys])
    out = []
    w = int(round(rate * 0.016))
    for span in spans:
        _, start, end = _span_fields(span)
        seg = x[max(start + offset, 0): max(end + offset, 0)]
        if seg.size < 8:
            out.append(keys[0])
            continue
        if seg.size < 2 * w:
            resid, _, energy = pair_fit(seg[None, :], rate)
            expl = energy[:, None] - resid
        else:
            frames = np.lib.stride_tricks.sliding_window_view(seg, w)[:: w // 2]
            resid, _, energy = pair_fit(frames, rate)
            expl = energy[:, None] - resid
        out.append(PAIR_KEYS[int(among[np.argmax(expl.sum(axis=0)[among])])])
    return out


def oracle_score(samples, spans: Sequence, rate: int = 8000, *, offset: int = 0, keys: str = PAIR_KEYS) -> int:
    """How many presses the oracle-timed attacker (:func:`oracle_answers`) names correctly (chance 1/16; 1/12
    among ``keys`` = :data:`KEYPAD_KEYS`)."""
    got = oracle_answers(samples, spans, rate, offset=offset, keys=keys)
    return sum(1 for span, a in zip(spans, got) if a == _span_fields(span)[0])


def guess_chance(answers: Sequence[str], truth: Sequence[str], pool: Optional[Sequence[str]] = None) -> Tuple[float, float]:
    """(expected score, its 10^-4 upper bound) of a guesser that answers each press independently of its key, with the
    answer frequencies of ``pool`` (default ``answers``), on presses whose keys are ``truth``.

    The oracle-timed attacker's answers on well masked audio are nearly constant (the flat mask's fit is the same
    whatever the key), so its chance score is the number of presses of the keys it favours, not n/16.  The
    benchmarks' key sequences repeat across seeds (``press_scenario`` is seeded with seed + cell offset), so a run's
    count of those keys, hence a 1/16 chance, can be far off; this is the chance of those very presses.  The bound is
    the normal approximation of the Poisson-binomial sum (one-sided 10^-4: 3.72 standard deviations).
    """
    pool = list(answers if pool is None else pool)
    if not pool or not truth:
        return 0.0, 0.0
    share = {k: pool.count(k) / len(pool) for k in set(pool)}
    p = np.array([share.get(k, 0.0) for k in truth])
    return float(p.sum()), float(p.sum() + 3.72 * np.sqrt(np.sum(p * (1.0 - p))))


def chance_bound(n_presses: int, p_false: float = 1e-4, p: float = CHANCE) -> int:
    """Largest count a key-independent guesser reaches with probability >= 1 - ``p_false``.

    Binomial(n, ``p``) upper quantile (1/16; 1/12 for a guesser among a keypad's keys): a masked stream scoring
    above it leaks.
    """
    from scipy.stats import binom

    return int(binom.ppf(1.0 - p_false, n_presses, p))


# ---------------------------------------------------------------------------------------------------
# The scenarios the attacker is run on (tests, benchmarks/masker.py, the demo).

SPEECH_DIR = "/usr/share/asterisk/sounds/en"  # Debian asterisk-core-sounds-en-wav: real recorded speech


def load_speech(seconds: float = 60.0, seed: int = 0, directory: str = SPEECH_DIR) -> Optional[np.ndarray]:
    """Concatenated real speech (8 kHz prompts, int16 scale, float64), or ``None`` if none is installed."""
    import glob
    import os

    import soundfile as sf

    files = sorted(glob.glob(os.path.join(directory, "*.wav")))
    if not files and directory == SPEECH_DIR:  # newer packages install under sounds/en_US_f_Allison
        from . import corpora

        files = corpora.files("en") if corpora.available("en") else []
    if not files:
        return None
    rng = np.random.default_rng(seed)
    rng.shuffle(files)
    parts, total = [], 0
    for path in files:
        try:
            data, rate = sf.read(path, dtype="int16")
        except Exception:  # a broken prompt is skipped, not fatal
            continue
        if rate != 8000 or data.ndim != 1:
            continue
        parts.append(data.astype(np.float64))
        total += data.size
        if total >= seconds * 8000:
            break
    return np.concatenate(parts) if parts else None


def press_scenario(
    rng: np.random.Generator,
    presses: int,
    *,
    speech: Optional[np.ndarray] = None,
    fast: bool = False,
    level_dbm0: Optional[float] = None,
    twist_db: Optional[float] = None,
    noise_snr_db: Optional[float] = None,
    speech_around: bool = False,
    speech_under_db: Optional[float] = None,
    ulaw: bool = False,
    duration_ms=None,
    gap_ms=None,
    freq_error: float = 0.0,
    voice_mid_press_db: Optional[float] = None,
    codec: Optional[str] = None,
    rate: int = 8000,
    keys: str = PAIR_KEYS,
):
    """Random key presses as a phone sends them, with ground truth: ``(int16 samples, [ToneSpan])`` at 8 kHz.

    Durations log-uniform 40 ms..1 s with 45-400 ms gaps (``fast``: 45 ms tone / 45 ms gap, 11 keys/s);
    levels -30..0 dBm0 and twist -4..+8 dB (Q.24's accepted range) unless fixed; random start phases.
    ``speech_around``: real speech in the gaps at -22..-12 dBm0; ``speech_under_db``: speech also under
    each tone, that many dB below it.  ``noise_snr_db``: white noise relative to the weakest tone.
    ``ulaw``: a G.711 µ-law round trip at the end, as on a PSTN leg (``codec``: ``"ulaw"`` or ``"alaw"``).
    ``duration_ms`` / ``gap_ms``: fixed, or ``(low, high)`` uniform; ``freq_error``: relative error of both
    tones (e.g. 0.02); ``voice_mid_press_db``: a second voice starts in the middle of each press, that many
    dB below the tone (negative: louder); ``rate``: 16000 makes wideband audio (speech resampled); ``keys``: the keys
    drawn from (default all 16; a customer's keypad has :data:`KEYPAD_KEYS`).
    """
    from ..dsp import g711
    from .synth import ToneSpan, dtmf_tone

    if not keys or set(keys) - set(PAIR_KEYS):
        raise ValueError(f"keys: some of {PAIR_KEYS!r}")
    ms = rate / 1000.0
    if speech is not None:
        speech = np.asarray(speech, dtype=np.float64)  # (int16 speech too: it is scaled in place below)
    if speech is not None and rate != 8000:
        from scipy.signal import resample_poly

        speech = resample_poly(speech, rate // 1000, 8)

    def pick(v, default):
        if v is None:
            return default()
        if isinstance(v, tuple):
            return float(rng.uniform(*v))
        return float(v)

    parts: List[np.ndarray] = [np.zeros(int(rng.integers(10 * ms, 100 * ms)))]
    pos = parts[0].size
    spans = []
    for _ in range(presses):
        digit = keys[int(rng.integers(len(keys)))]
        dur = pick(duration_ms, lambda: 45.0 if fast else float(np.exp(rng.uniform(np.log(40.0), np.log(1000.0)))))
        gap = pick(gap_ms, lambda: 45.0 if fast else float(rng.uniform(45.0, 400.0)))
        level = float(rng.uniform(-30.0, 0.0)) if level_dbm0 is None else level_dbm0
        twist = float(rng.uniform(-4.0, 8.0)) if twist_db is None else twist_db
        tone = dtmf_tone(digit, dur, rate, level, twist, freq_offset=(freq_error, freq_error),
                         phase=tuple(rng.uniform(0, 2 * np.pi, 2)))
        spans.append(ToneSpan(digit, pos, pos + tone.size))
        gap_n = int(round(gap * rate / 1000))
        parts += [tone, np.zeros(gap_n)]
        pos += tone.size + gap_n
    parts.append(np.zeros(int(100 * ms)))
    x = np.concatenate(parts)
    if speech is not None and voice_mid_press_db is not None:
        sp = np.zeros(x.size)
        off = int(rng.integers(0, max(speech.size - x.size, 1)))
        src = np.resize(speech[off:], x.size)
        for s in spans:
            mid = (s.start + s.end) // 2
            seg = src[mid: s.end]
            tone_rms = float(np.sqrt(np.mean(x[s.start: s.end] ** 2)))
            seg_rms = float(np.sqrt(np.mean(seg ** 2))) + 1e-9
            sp[mid: s.end] = seg * tone_rms / seg_rms * 10 ** (-voice_mid_press_db / 20)
        x = x + sp
    if speech is not None and (speech_around or speech_under_db is not None):
        if speech.size <= x.size + 1:
            speech = np.tile(speech, x.size // max(speech.size, 1) + 2)
        off = int(rng.integers(0, speech.size - x.size))
        sp = speech[off: off + x.size].copy()
        rms = float(np.sqrt(np.mean(sp ** 2))) + 1e-9
        sp *= dbm0_to_peak(float(rng.uniform(-22.0, -12.0))) / np.sqrt(2) / rms
        for s in spans:
            if speech_under_db is None:
                sp[s.start: s.end] = 0.0
            else:
                seg = sp[s.start: s.end]
                tone_rms = float(np.sqrt(np.mean(x[s.start: s.end] ** 2)))
                seg_rms = float(np.sqrt(np.mean(seg ** 2))) + 1e-9
                sp[s.start: s.end] = seg * tone_rms / seg_rms * 10 ** (-speech_under_db / 20)
        x = x + sp
    if noise_snr_db is not None:
        p = min(float(np.mean(x[s.start: s.end] ** 2)) for s in spans)
        x = x + rng.standard_normal(x.size) * np.sqrt(p / 10 ** (noise_snr_db / 10))
    if ulaw or codec == "ulaw":
        return g711.ulaw_decode(g711.ulaw_encode(x)), spans
    if codec == "alaw":
        return g711.alaw_decode(g711.alaw_encode(x)), spans
    return np.clip(np.round(x), -32768, 32767).astype(np.int16), spans


#: Named conditions of the evaluation (issue 4): keyword arguments of :func:`press_scenario`.
CONDITIONS = {
    "clean": {},
    "fast-typing": {"fast": True},
    "-30dBm0": {"level_dbm0": -30.0},
    "twist+8/-30dBm0": {"twist_db": 8.0, "level_dbm0": -30.0},
    "reverse-twist-4": {"twist_db": -4.0},
    "noise-15dB": {"noise_snr_db": 15.0},
    "speech-around": {"speech_around": True},
    "speech-under-10dB": {"speech_under_db": 10.0},
    "speech-around+ulaw": {"speech_around": True, "ulaw": True},
    "fast+speech+ulaw": {"fast": True, "speech_around": True, "ulaw": True},
}
#: Harder than the zero-leak claim covers: speech only 6 dB under the tone (reported, not promised).
HARD_CONDITIONS = {
    "speech-under-6dB+ulaw": {"speech_under_db": 6.0, "ulaw": True},
}
