# SPDX-License-Identifier: GPL-2.0-or-later
"""Early media (183 with SDP from the agent side: an IVR prompt before the answer) through the guard.

The agent side answers 183 with SDP, plays its prompt, answers 200 later.  The guard answers the customer
183 with SDP at once and bridges both streams through the pipeline (masked, as after the answer): the
customer hears the prompt before the 200, the agent side hears the customer before the 200, and keys
pressed during early media are masked in the audio (and relayed as events in secure mode).  Peers: the
repository's pjsua2 agent (prompt + recording) and sipp (a non-PJSIP UAS echoing RTP).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.testkit.adversary import count_recovered
from dtmfguard.dsp.audio import read_audio
from dtmfguard.testkit.synth import keypresses

from sip_peers import Proc, free_port, rtp_base
from test_sip_call import _best_correlation
from test_sip_secure_mode import speech_prompt

pytestmark = [pytest.mark.sip, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
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
    gport, aport = free_port(), free_port()
    (tmp_path / "agent").mkdir()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--early-media", str(EARLY_S), "--play", prompt_path, "--record-dir", str(tmp_path / "agent"),
                  "--hangup-after", str(EARLY_S + 1.5), "--timeout", "30"], "agent", tmp_path)
    guard = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent",
                  f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(rtp_base())], "guard", tmp_path)
    try:
        agent.wait_ready()
        guard.wait_ready()
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{gport}", "--record", str(tmp_path / "c.wav"),
                         "--early", "--play", str(tmp_path / "cust.wav"), "--play-s", "3", "--timeout", "30"],
                        "customer", tmp_path)
        customer.wait(30)
        agent.wait(15)
    finally:
        assert guard.stop() == 0
        agent.stop()
        customer.stop()
    states = _first_times(customer)
    assert 183 in states and 200 in states, states
    rec_started = _events(customer, "recording")
    assert rec_started and rec_started[0]["early"], rec_started
    agent_183 = [e["t"] for e in _events(agent, "state") if e["status"] == 183][0]
    print(f"agent 183 -> customer 183: {(states[183] - agent_183) * 1000:.1f} ms; "
          f"early media lasted {states[200] - states[183]:.2f} s")
    # the customer heard the agent side's prompt, and it started before the answer
    heard, _ = sf.read(tmp_path / "c.wav", dtype="int16")
    corr, lag = _best_correlation(heard, prompt[: 8000])
    assert corr > 0.6, corr
    assert rec_started[0]["t"] + lag / 8000 < states[200], "the prompt was not heard before the answer"
    # the agent side heard the customer during early media, keys masked
    rec, _ = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
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
    gport, sport = free_port(), free_port()
    guard = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent",
                  f"sip:ivr@127.0.0.1:{sport}", "--rtp-port", str(rtp_base())], "guard", tmp_path)
    sipp = subprocess.Popen(["sipp", "-sf", str(HERE / "sipp" / "uas_183.xml"), "-m", "1", "-p", str(sport),
                             "-i", "127.0.0.1", "-mp", str(rtp_base()), "-rtp_echo", "-timeout", "30s", "-nostdin",
                             "-trace_err"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        guard.wait_ready()
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{gport}", "--record", str(tmp_path / "c.wav"),
                         "--early", "--play", str(tmp_path / "cust.wav"), "--play-s", "2.5",
                         "--timeout", "30"], "customer", tmp_path)
        customer.wait(30)
        out, _ = sipp.communicate(timeout=30)
    finally:
        if sipp.poll() is None:
            sipp.kill()
        assert guard.stop() == 0
        customer.stop()
    assert sipp.returncode == 0, out[-2000:]
    states = _first_times(customer)
    assert 183 in states and 200 in states and states[200] - states[183] > 1.0, states
    rec_started = _events(customer, "recording")
    assert rec_started and rec_started[0]["early"], rec_started
    # sipp echoes the RTP it gets: the customer hears its own speech back through the guard (both ways bridged),
    # and already before the 200
    heard, _ = sf.read(tmp_path / "c.wav", dtype="int16")
    early = heard[: int((states[200] - rec_started[0]["t"]) * 8000)]
    corr, _ = _best_correlation(early, speech[: 4000])
    print(f"sipp 183: early media {states[200] - states[183]:.2f} s, echo correlation before the answer {corr:.2f}")
    assert corr > 0.5, corr
