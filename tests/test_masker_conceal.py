# SPDX-License-Identifier: GPL-2.0-or-later
"""Audio the customer did not send (issue 12, fail closed): frames a jitter buffer made up inside or around a key.

A loaded host's jitter buffer conceals missing packets (pjmedia's WSOLA repeats the last pitch-like period: a
tone goes on as bursts with another phase) or joins the stream where it dropped frames.  The media pipeline
tells the masker (``Masker.conceal``); a press is then not closed across the made-up audio, and made-up audio
next to anything being treated is masked flat.  The blind adversary must name nothing, whatever the block grid.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp.masker import Masker
from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.testkit import synth

from _native_util import require_native, with_backend
from test_masker_native import _mask_any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import frame_faults as ff  # noqa: E402  (the benchmark's scenario: keys, faults, the blind adversary)

F = 160


@pytest.mark.parametrize("kind", ["wsola", "wsolalost"])
@pytest.mark.parametrize("offset", [65, 143])
def test_a_concealment_at_a_key_onset_is_never_named(kind, offset):
    """A frame made up a few ms into a key (its concealment repeats the key's first ms as bursts) at every frame
    position: before the masker was told, the adversary named the key blind at 3 of these 74 positions per kind
    (a 2 ms burst the short-window test took for a syllable's chance fit; 7-9 raw tone samples)."""
    frames, labs, digits = ff.leak_signal(offset)
    tone = [i for i, lb in enumerate(labs) if (lb >= 0).any()]
    named = {}
    for at in range(tone[0] - 2, tone[-1] + 3):
        blind, any_named, raw, _ = ff.leak_measure(*ff.leak_run(frames, labs, kind, at), digits)
        if blind or any_named:
            named[at] = (blind, any_named, raw)
    assert named == {}, f"frame positions where a key was named: {named}"


def _key_with_silent_frame(at: int, lead: int):
    x, spans = synth.keypresses("5", tone_ms=200, lead_ms=100, tail_ms=300, rng=np.random.default_rng(3))
    x = np.concatenate([np.zeros(lead), x])
    x = np.round(x).astype(np.int16)
    x = np.concatenate([x, np.zeros(-x.size % F, np.int16)])
    s = (spans[0].start + lead) // F * F + at * F  # a whole frame inside the key: made-up silence
    x[s: s + F] = 0
    return x, s, spans[0].start + lead, spans[0].end + lead


def test_a_press_is_one_mask_across_a_made_up_frame():
    """A 200 ms key whose middle frame the buffer concealed with silence: told, the masker keeps one mask over
    the whole key (no gap, no second fade-in over the tone after it); not told, it splits the key (at some
    block-grid offsets)."""
    split = 0
    for lead, at in [(lead, at) for lead in (0, 3, 77, 120) for at in (2, 3, 4, 5)]:
        x, s, k0, k1 = _key_with_silent_frame(at, lead)
        for told in (True, False):
            m = Masker()
            out = []
            for i in range(0, x.size, F):
                if told and i == s:
                    m.conceal(i, i + F)
                out.append(m.process(x[i: i + F]))
            out.append(m.flush())
            spans = [sp for sp in m.masked_spans if sp.end > k0 and sp.start < k1]
            if told:
                assert len(spans) == 1 and spans[0].start <= k0 and spans[0].end >= k1, (at, spans)
            else:
                split += len(spans) > 1
    assert split, "the made-up frame never split the key without the hint: the test shows nothing"


def test_made_up_audio_with_nothing_treated_is_left_alone():
    """A concealment in noise, far from any key: the agent hears exactly the same as without the hint (bit for
    bit, the delayed input)."""
    rng = np.random.default_rng(8)
    keys, _ = synth.keypresses("37", tone_ms=70, gap_ms=100, lead_ms=100, tail_ms=100, rng=rng)
    x = np.concatenate([synth.white_noise(8000, 300.0, rng), keys, synth.white_noise(8000, 300.0, rng)])
    x = np.round(x).astype(np.int16)
    x = x[: x.size // F * F]
    ref = Masker()
    ref_out = np.concatenate([ref.process(x[i: i + F]) for i in range(0, x.size, F)])
    m = Masker()
    out = []
    for i in range(0, x.size, F):
        if i in (1600, 3200, x.size - 3200):
            m.conceal(i, i + F)
        out.append(m.process(x[i: i + F]))
    out = np.concatenate(out)
    assert np.array_equal(out, ref_out) and m.masked_spans == ref.masked_spans
    assert out[ref.delay_samples: 8000].tolist() == x[: 8000 - ref.delay_samples].tolist()


def test_conceal_ignores_bad_positions():
    m = Masker()
    m.conceal(100, 50)  # ends before it starts: nothing
    m.conceal("x", 10)
    assert m.errors == 1 and not m._conceals
    out = m.process(np.zeros(F, np.int16))
    assert out.size == F and not out.any()


def _run(x, chunks, conceals):
    """Mask ``x`` cut at ``chunks`` with ``conceals``: (input position at which to call, start, end)."""
    return _mask_any(x, chunks, [(at, "conceal", (s, e)) for at, s, e in conceals])


def _conceal_corpus():
    rng = np.random.default_rng(31)
    keys, spans = synth.keypresses("159#2", tone_ms=90, gap_ms=80, lead_ms=200, tail_ms=200, rng=rng)
    x = keys + synth.white_noise(keys.size, 200.0, rng)
    # made-up frames inside keys, at their onsets and ends, in pauses, and joins (dropped frames)
    cs = [(spans[0].start + 120, 160), (spans[1].start - 40, 160), (spans[2].end - 60, 160),
          (spans[3].start + 400, 0), (spans[4].end + 300, 160), (spans[4].start + 8, 320)]
    x = x.copy()
    for s, n in cs[:3]:
        x[s: s + n] = np.resize(x[s - 57: s], n)  # a period repeated (a concealment of what preceded it)
    return np.round(x).astype(np.int16), [(max(0, s - 5000), s, s + n) for s, n in cs]


@pytest.mark.parametrize("chunks", [1, 7, 160, 161, 5000, [160, 1, 33, 400, 5000, 2]])
def test_conceal_same_output_both_backends_any_chunking(chunks):
    """Made-up spans announced before their samples: the numpy path and the C frame give the same samples and
    spans, whatever the chunking (the C frame hands every hop to Python while one is pending)."""
    require_native(masker_mod._masker_native, "dtmfguard.dsp._masker_native (C masker screen)")
    x, conceals = _conceal_corpus()
    if chunks in (1, 7):
        x = x[: 8000]
        conceals = [c for c in conceals if c[2] < 8000]
    ref = with_backend("numpy", lambda: _run(x, 160, conceals))
    assert ref[1] and ref[3] == 0
    got = with_backend("native", lambda: _run(x, chunks, conceals))
    assert np.array_equal(got[0], ref[0]) and got[1:] == ref[1:]
    if chunks == 160:  # and the hints changed something here (the test is not vacuous)
        plain = with_backend("native", lambda: _run(x, 160, []))
        assert not np.array_equal(plain[0], ref[0])


def test_pipeline_tells_the_masker_what_the_jitter_buffer_made_up():
    """note_jitter before a frame: inserted or concealed -> that frame's span; dropped -> a join at its start."""
    calls = []

    class Spy(Masker):
        def conceal(self, start, end):
            calls.append((start, end))
            super().conceal(start, end)

    p = CallPipeline(8000, masker=Spy())
    z = np.zeros(F, np.int16)
    p.process_customer_frame(z)
    p.note_jitter(1, 0)
    p.process_customer_frame(z)
    p.note_jitter(0, 2)
    p.process_customer_frame(z)
    p.note_jitter(0, 0, 1)
    p.process_customer_frame(z)
    p.process_customer_frame(z)
    p.note_jitter(1, 0)
    p.process_customer_frame(z, gap=True)  # a NONE frame: silenced by the pipeline anyway
    assert calls == [(160, 320), (320, 480), (480, 480)]


def test_made_up_silence_next_to_a_mask_is_left_silent():
    """Silent made-up frames right after a key's mask (a jitter buffer refilling in a pause): they hide nothing,
    so the agent hears the same as without the hint (a live fault test expects silence there: the guard's
    detector had failed and only the frames it skips reach the agent)."""
    x, spans = synth.keypresses("8", tone_ms=70, lead_ms=100, tail_ms=400, rng=np.random.default_rng(4))
    x = np.round(x).astype(np.int16)
    x = np.concatenate([x, np.zeros(-x.size % F, np.int16)])
    ref = Masker()
    ref_out = np.concatenate([ref.process(x[i: i + F]) for i in range(0, x.size, F)])
    # the first frame after the press has closed (its pair gone from the 16 ms window: 12 ms + 4 ms of misses)
    closed = -(-(spans[0].end + 24 * 8) // F) * F
    assert closed - 16 * 8 <= ref.masked_spans[0].end  # (the mask ended within conceal_near_ms before them)
    for first in range(closed, closed + 3 * F, F):
        m = Masker()
        out = []
        for i in range(0, x.size, F):
            if first <= i < first + 2 * F:
                m.conceal(i, i + F)
            out.append(m.process(x[i: i + F]))
        assert np.array_equal(np.concatenate(out), ref_out), first
