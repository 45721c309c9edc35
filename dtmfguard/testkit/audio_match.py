# SPDX-License-Identifier: GPL-2.0-or-later
"""Does a recording hold a reference (the customer's speech) as heard through a real call path?

A call's audio crosses jitter buffers (the guard's or the relay's, the agent's) that on a loaded host insert a
frame when they run empty, drop one to shed delay, conceal a lost packet or move playout to a late one.  Each
such event shifts all the audio after it by 10-20 ms (or more, summed) without making it any less heard.  One
normalised correlation over the whole reference at one lag counts the part after a shift as unrelated audio
(speech decorrelates within a millisecond): measured on loaded runs, one 20 ms slip in the middle of a 3.3 s
prompt took such a score from ~0.85 to ~0.5.

:func:`speech_match` instead scores each 200 ms piece of the reference at its own best alignment near the
whole reference's, and averages the pieces' correlations weighted by the reference's energy in them (a
prompt's silent lead-in and tail count for little).  What it still tells apart (tests/test_audio_match.py):
the speech heard with slips scores like the speech heard without them; silence, the mask tone, other speech
score far below; speech heard only in part scores about in proportion to the part.
"""
from __future__ import annotations

import numpy as np

RATE = 8000


def global_lag(recording, reference) -> int:
    """Samples by which ``reference`` appears delayed in ``recording`` (the FFT cross-correlation's peak)."""
    y = np.asarray(recording, dtype=np.float64).ravel()
    r = np.asarray(reference, dtype=np.float64).ravel()
    if r.size == 0 or y.size < r.size:
        return 0
    n = 1 << int(np.ceil(np.log2(y.size + r.size)))
    c = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(r, n)), n)[: y.size - r.size + 1]
    return int(np.argmax(c))


def piece_scores(recording, ref, *, piece_ms: float = 200.0, slack_ms: float = 100.0, rate: int = RATE):
    """``(lag, [(ref_start, weight, correlation, shift)])``: the lag (recording sample where ``ref`` starts, by
    the cross-correlation peak), and for each piece of ``ref`` its share of the reference's energy, its best
    normalised correlation with the recording within ``slack_ms`` of that lag or of the last piece found (shift
    and correlation above 0.5: slips add up), and the shift (samples) where."""
    y = np.asarray(recording, dtype=np.float64).ravel()
    r = np.asarray(ref, dtype=np.float64).ravel()
    if r.size == 0 or y.size < r.size:
        return 0, []
    lag = global_lag(y, r)
    size, slack = max(1, int(piece_ms * rate / 1000)), int(slack_ms * rate / 1000)
    starts = list(range(0, r.size, size))
    if len(starts) > 1 and r.size - starts[-1] < size // 2:
        starts.pop()  # a short last piece joins the one before
    total = float(np.dot(r, r)) + 1e-9
    out = []
    drift = 0  # the shift of the last piece found (slips add up: a buffer that keeps running empty)
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else r.size
        part = r[s:e]
        energy = float(np.dot(part, part))
        lo = max(0, lag + s + min(0, drift) - slack)
        hi = min(y.size - part.size, lag + s + max(0, drift) + slack)
        if hi < lo or energy <= 0.0:
            out.append((s, energy / total, 0.0, 0))
            continue
        window = y[lo: hi + part.size]
        dots = np.correlate(window, part, "valid")
        wins = np.convolve(window * window, np.ones(part.size), "valid")
        corr = dots / np.sqrt(np.maximum(wins, 0.0) * energy + 1e-9)
        k = int(np.argmax(corr))
        shift = lo + k - (lag + s)
        if corr[k] > 0.5:
            drift = shift
        out.append((s, energy / total, float(corr[k]), shift))
    return lag, out


def speech_match(recording, ref, **kw) -> tuple[float, int]:
    """``(similarity, lag)``: how well ``recording`` holds ``ref`` (the energy-weighted mean of its pieces'
    correlations, :func:`piece_scores`; about 0.85-0.95 for speech through two G.711 codings, below 0.35 for
    silence, the mask or other speech) and where ``ref`` starts in it."""
    lag, pieces = piece_scores(recording, ref, **kw)
    if not pieces:
        return 0.0, 0
    return float(sum(w * max(c, 0.0) for _, w, c, _ in pieces)), lag
