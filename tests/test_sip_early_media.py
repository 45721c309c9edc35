# SPDX-License-Identifier: GPL-2.0-or-later
"""Early media (183 with SDP from the agent side: an IVR prompt before the answer) through the guard.

The agent side answers 183 with SDP, plays its prompt, answers 200 later.  The guard answers the customer
183 with SDP at once and bridges both streams through the pipeline (masked, as after the answer): the
customer hears the prompt before the 200, the agent side hears the customer before the 200, and keys
pressed during early media are masked in the audio (and relayed as events in secure mode).  Peers: the
repository's pjsua2 agent (prompt + recording) and sipp (a non-PJSIP UAS echoing RTP).
"""
from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

from dtmfguard.testkit.adversary import count_recovered
from dtmfguard.dsp.audio import read_audio
from dtmfguard.testkit.synth import keypresses

from sip_peers import SipCall, SippUas, free_port
from dtmfguard.testkit.audio_match import speech_match
from test_sip_secure_mode import speech_prompt

pytestmark = [pytest.mark.sip, pytest.mark.slow]

EARLY_S = 3.0


def _events(proc, kind):
    return [e for e in proc.events() if e.get("event") == kind]


def _first_times(proc):
    """status code -> when the customer first saw it (183 early, 200 the answer; BYE's 200 comes later)."""
    out: dict = {}
    for e in _events(proc, "state"):
        out.setdefault(e["status"], e["t"])
    return out


def test_early_media_with_the_pjsua2_agent(tmp_path):
    prompt_path = speech_prompt()
    prompt, _ = read_audio(prompt_path)
    keys, spans = keypresses("73", tone_ms=150, lead_ms=300, rng=np.random.default_rng(4))
    cust = np.concatenate([keys, np.zeros(8000)]).astype(np.int16)  # played from the 183 on: keys before 200
    sf.write(tmp_path / "cust.wav", cust, 8000, subtype="PCM_16")
    with SipCall(tmp_path, serve=True, timeout=30, agent_args=["--early-media", str(EARLY_S), "--play", prompt_path,
                                                               "--hangup-after", str(EARLY_S + 1.5)]) as call:
        customer = call.customer("--record", str(tmp_path / "c.wav"), "--early", "--play", str(tmp_path / "cust.wav"),
                                 "--play-s", "3")
        call.wait(30, 15)
    assert call.rc_guard == 0
    agent = call.agent
    states = _first_times(customer)
    assert 183 in states and 200 in states, states
    rec_started = _events(customer, "recording")
    assert rec_started and rec_started[0]["early"], rec_started
    agent_183 = [e["t"] for e in _events(agent, "state") if e["status"] == 183][0]
    print(f"agent 183 -> customer 183: {(states[183] - agent_183) * 1000:.1f} ms; "
          f"early media lasted {states[200] - states[183]:.2f} s")
    # the customer heard the agent side's prompt, and it started before the answer
    heard, _ = sf.read(tmp_path / "c.wav", dtype="int16")
    corr, lag = speech_match(heard, prompt[: 8000])
    assert corr > 0.6, corr
    assert rec_started[0]["t"] + lag / 8000 < states[200], "the prompt was not heard before the answer"
    # the agent side heard the customer during early media, keys masked
    rec = call.recording()
    assert np.abs(rec).max() > 500  # the mask / customer audio reached the agent side before 200
    assert all(count_recovered(rec.astype(np.float64), [(s.digit, s.start, s.end) for s in spans], 8000,
                               offset=o) == 0 for o in range(0, 16001, 160))
    # secure mode (default): the keys pressed during early media reached the agent side as events, once
    done = _events(agent, "done")[0]
    assert "".join(k["digit"] for k in done["calls"][0]["keys"]) == "73", done


@pytest.mark.needs_program("sipp", "sip-tester")
def test_early_media_with_sipp_as_the_agent_side(tmp_path):
    speech, _ = read_audio(speech_prompt())
    sf.write(tmp_path / "cust.wav", speech.astype(np.int16), 8000, subtype="PCM_16")
    sport = free_port()
    with SipCall(tmp_path, serve=True, agent=False, agent_uri=f"sip:ivr@127.0.0.1:{sport}", timeout=30) as call, \
            SippUas(tmp_path, "uas_183.xml", sport, "-rtp_echo") as sipp:
        customer = call.customer("--record", str(tmp_path / "c.wav"), "--early", "--play",
                                 str(tmp_path / "cust.wav"), "--play-s", "2.5")
        customer.wait(30)
        out = sipp.finish(30)
    assert call.rc_guard == 0
    assert sipp.returncode == 0, out[-2000:]
    states = _first_times(customer)
    assert 183 in states and 200 in states and states[200] - states[183] > 1.0, states
    rec_started = _events(customer, "recording")
    assert rec_started and rec_started[0]["early"], rec_started
    # sipp echoes the RTP it gets: the customer hears its own speech back through the guard (both ways bridged),
    # and already before the 200.  The echo comes after a round trip through both legs' jitter buffers, which
    # on a loaded host take a while to settle at the start of a call (measured: the first word's echo 1.04 s
    # after the 183 while the 200 came at 1.47 s, the delay shrinking by 0.3 s over the next 2.5 s): the echo
    # is found in the whole recording, and the part of it heard before the answer is compared
    heard, _ = sf.read(tmp_path / "c.wav", dtype="int16")
    answered = int((states[200] - rec_started[0]["t"]) * 8000)
    _, echo_at = speech_match(heard, speech[: 4000])  # where the echo of the first half second starts
    before = min(answered - echo_at, 4000)
    assert before >= 1600, f"the echo started {echo_at / 8000:.2f} s into the recording, the answer at " \
                           f"{answered / 8000:.2f} s: less than 0.2 s of it heard before the answer"
    corr, _ = speech_match(heard[:answered], speech[:before])
    print(f"sipp 183: early media {states[200] - states[183]:.2f} s, echo after {echo_at / 8000:.2f} s, "
          f"correlation of the {before / 8000:.2f} s heard before the answer {corr:.2f}")
    assert corr > 0.5, corr
