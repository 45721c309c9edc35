# SPDX-License-Identifier: GPL-2.0-or-later
"""A worker's warm-up: the synthetic audio it runs through a throwaway pipeline, and the masker's shared tables.

Why: the masker builds tables shared by every pipeline of a process the first time a rule needs one; the first
key of a worker's first call paid for them on the media clock (one 16 ms frame idle, 45 ms ticks in every worker
at once on a loaded machine).  The guard now builds them, and runs a few keys through, before it takes calls.
"""
from __future__ import annotations

import numpy as np
import pytest

from dtmfguard.dsp import masker as masker_mod
from dtmfguard.dsp import pairfit
from dtmfguard.dsp.detector import detect
from dtmfguard.dsp.masker import Masker
from dtmfguard.dsp.warmup import warm_audio
from dtmfguard.testkit import adversary as A


def _shared_keys() -> set:
    return set(masker_mod._OFFSET_TABLES) | {("pairfit",) + k for k in pairfit._CACHE}


@pytest.fixture
def empty_tables():
    """Start from no shared tables (the state of a new worker); put back what the process had."""
    saved = dict(masker_mod._OFFSET_TABLES), dict(pairfit._CACHE)
    masker_mod._OFFSET_TABLES.clear()
    pairfit._CACHE.clear()
    yield
    masker_mod._OFFSET_TABLES.update(saved[0])
    pairfit._CACHE.update(saved[1])


def test_the_warm_up_audio_is_six_meaningless_keys_and_the_same_each_time():
    a, b = warm_audio(), warm_audio()
    assert a.dtype == np.int16 and np.array_equal(a, b)
    assert 2.0 < a.size / 8000 < 3.0
    assert "".join(d.digit for d in detect(a, 8000)) == "591280"  # no card number, no Luhn run


def test_prepared_tables_are_all_a_keyed_call_under_speech_needs(empty_tables):
    m = Masker(8000)
    m.prepare_shared_tables()
    prepared = _shared_keys()
    assert len(prepared) > 4
    # keys under louder speech, 2-4 % off nominal, long presses: the rules that build tables on first use
    rng = np.random.default_rng(7)
    speech = A.load_speech(30.0, seed=7)
    if speech is None:
        speech = (rng.standard_normal(30 * 8000) * 2000).astype(np.int16)
    for cond in ({"speech_under_db": -3.0}, {"speech_under_db": -3.0, "freq_error": 0.03},
                 {"duration_ms": 1000.0, "speech_under_db": 0.0}, {"freq_error": 0.04, "speech_around": True}):
        x, _ = A.press_scenario(rng, 8, speech=speech, **cond)
        Masker(8000).process(x)
    assert _shared_keys() == prepared


def test_prepared_tables_change_no_output(empty_tables):
    rng = np.random.default_rng(3)
    x, _ = A.press_scenario(rng, 6, speech_around=True, freq_error=0.03)
    cold = Masker(8000).process(x)
    m = Masker(8000)
    m.prepare_shared_tables()
    assert np.array_equal(m.process(x), cold)


def test_warm_up_runs_the_keys_through_a_pipeline_and_leaves_it_closable(empty_tables):
    from dtmfguard.media.pipeline import CallPipeline, warm_up

    p = CallPipeline(8000, mask_mode="always")
    warm_up(p)
    assert p.stats["frames"] == warm_audio().size // 160 and p.stats["errors"] == 0
    assert ("pairfit", 128, 8000) in _shared_keys()
    p.close()


def test_a_relay_warms_up_once_whoever_calls_first():
    """``dtmfguard relay`` warms the relay up before its loop thread takes SCHED_RR; the loop's own call is then
    a no-op (one throwaway pipeline, not two)."""
    import threading

    from dtmfguard.relay.engine import Relay
    from sip_peers import rtp_base

    built = []

    def factory(call_id):
        built.append(call_id)
        return object()  # (a factory's own kind of pipeline is only built and dropped)

    base = rtp_base()
    relay = Relay(ng=("127.0.0.1", 0), rtp_range=(base, base + 199), pipeline_factory=factory)
    try:
        relay.warm_up()
        stop = threading.Event()
        stop.set()
        relay.run(stop)  # returns at once: stop is set
    finally:
        relay.close()
    assert built == ["warm-up"]


def test_a_throwaway_pipeline_is_closed_whatever_its_warm_up_does(empty_tables, monkeypatch):
    """The guard and the relay share ``warm_up_throwaway``: a pipeline of ours is run and closed, another kind is
    only built and closed, and a warm-up that raises still closes it and hands the error to the caller."""
    from dtmfguard.media import pipeline as P

    closed = []

    class Other:
        def close(self):
            closed.append("other")

    P.warm_up_throwaway(Other)
    assert closed == ["other"]

    ours = []

    def build():
        p = P.CallPipeline(8000, mask_mode="always")
        monkeypatch.setattr(p, "close", lambda: closed.append("ours"))
        ours.append(p)
        return p

    P.warm_up_throwaway(build)
    assert closed == ["other", "ours"] and ours[0].stats["frames"] == warm_audio().size // 160

    def broken(pipeline):
        raise RuntimeError("no tables")

    monkeypatch.setattr(P, "warm_up", broken)
    with pytest.raises(RuntimeError, match="no tables"):
        P.warm_up_throwaway(build)
    assert closed[-1] == "ours" and len(closed) == 3
