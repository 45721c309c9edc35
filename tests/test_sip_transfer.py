# SPDX-License-Identifier: GPL-2.0-or-later
"""A blind transfer (REFER) from the agent side: the guard stays in the media path and keeps masking.

customer -> guard -> agent 1; agent 1 sends REFER to agent 2; the guard (the transferee) calls agent 2
itself, swaps the agent leg when agent 2 answers and hangs up agent 1.  The customer's call is never
interrupted.  Checked: keys before the transfer reach agent 1 (as relayed events, masked in the audio), keys
after it reach agent 2 the same way; agent 2's audio carries no recoverable key; the time from the REFER to
agent 2's answer is measured.  Peers: the repository's pjsua2 agent (REFER sender and target).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.testkit.adversary import count_recovered
from dtmfguard.dsp.audio import read_audio
from dtmfguard.testkit.synth import keypresses

from sip_peers import SipCall, SippUas, done_event, free_port, keys_of, rtp_base, timeline
from test_sip_secure_mode import align, speech_prompt

pytestmark = [pytest.mark.sip, pytest.mark.slow]

BEFORE, AFTER = "12", "4711"


def _audio(path):
    speech, _ = read_audio(speech_prompt())
    rng = np.random.default_rng(21)
    k1, s1 = keypresses(BEFORE, tone_ms=120, gap_ms=150, lead_ms=500, rng=rng)
    k2, s2 = keypresses(AFTER, tone_ms=100, gap_ms=150, lead_ms=0, rng=rng)
    gap = np.zeros(int(5.0 * 8000) - k1.size)
    x = np.concatenate([k1, gap, k2, np.zeros(4000), speech]).astype(np.int16)
    base2 = k1.size + gap.size
    sf.write(path, x, 8000, subtype="PCM_16")
    return x, speech, [(s.digit, s.start + base2, s.end + base2) for s in s2]


def _play(call, x, path):
    """The customer plays the keys and speech, then hangs up; the test waits for it and every agent."""
    call.customer("--play", str(path), "--play-s", f"{x.size / 8000 + 0.3:.1f}")
    assert call.wait(40, 10) == 0


def _nothing_recovered_after_the_transfer(rec, x, speech, after_spans):
    """Agent 2 heard the customer (the speech after the keys) and no key typed after the transfer."""
    rec = rec.astype(np.float64)
    offset = align(rec, x, x.size - speech.size)
    assert count_recovered(rec, after_spans, 8000, offset=offset) == 0


def _story(call, *peers) -> str:
    """For a failing key check: the peers' events merged in time order and the guard's log tail."""
    return timeline(*peers) + "\n" + call.guard_log()[-3000:]


def _answer_ms(call) -> str:
    m = re.search(r"transfer answered ([0-9.]+) ms after the REFER", call.guard_log())
    assert m, call.guard_log()[-2000:]
    return m.group(1)


def test_blind_transfer_keeps_the_guard_in_the_path(tmp_path):
    x, speech, after_spans = _audio(tmp_path / "c.wav")
    a2port = free_port()
    with SipCall(tmp_path, serve=True, timeout=40, agent_args=[
            "--refer-to", f"sip:agent2@127.0.0.1:{a2port}", "--refer-at", "2.5"]) as call:
        agent2 = call.add_agent("agent2", port=a2port)
        _play(call, x, tmp_path / "c.wav")
    assert call.rc_guard == 0
    ev1, ev2 = call.agent.events(), agent2.events()
    refer = [e for e in ev1 if e.get("event") == "refer"]
    xfer = [e for e in ev1 if e.get("event") == "xfer_status" and e.get("final")]
    assert refer and xfer and xfer[-1]["status"] == 200, ev1[-10:]
    assert (keys_of(call.agent), keys_of(agent2)) == (BEFORE, AFTER), \
        _story(call, call.customers[0], call.agent, agent2)
    # the customer's call went on: one call, answered once, ended by the customer
    states = [e for e in call.customers[0].events() if e.get("event") == "state"]
    assert [e["state"] for e in states].count("CONFIRMED") == 1
    media2 = [e for e in ev2 if e.get("event") == "media"][0]
    print(f"REFER -> agent 2 answered (guard): {_answer_ms(call)} ms; REFER sent -> agent 2 media: "
          f"{(media2['t'] - refer[0]['t']) * 1000:.0f} ms")
    _nothing_recovered_after_the_transfer(call.recording(agent="agent2"), x, speech, after_spans)


@pytest.mark.needs_program("sipp", "sip-tester")
def test_refer_from_sipp_reaches_the_new_agent(tmp_path):
    """sipp (a non-PJSIP agent side) answers and sends REFER; the guard calls the pjsua2 agent 2, which then
    gets the customer's keys (relayed, once) and masked audio; sipp gets its NOTIFYs and the BYE."""
    x, speech, after_spans = _audio(tmp_path / "c.wav")
    sport, a2port = free_port(), free_port()
    with SippUas(tmp_path, "uas_refer.xml", sport, "-key", "refer_to", f"sip:agent2@127.0.0.1:{a2port}") as sipp, \
            SipCall(tmp_path, serve=True, timeout=40, agent=False, agent_uri=f"sip:agent1@127.0.0.1:{sport}") as call:
        agent2 = call.add_agent("agent2", port=a2port)
        _play(call, x, tmp_path / "c.wav")
        out = sipp.finish(20)
    assert call.rc_guard == 0
    assert sipp.returncode == 0, out[-3000:]
    assert keys_of(agent2) == AFTER, _story(call, call.customers[0], agent2)
    print(f"sipp REFER -> agent 2 answered (guard): {_answer_ms(call)} ms")
    _nothing_recovered_after_the_transfer(call.recording(agent="agent2"), x, speech, after_spans)


def test_codec_change_by_reinvite_keeps_masking_and_relaying(tmp_path):
    """The agent side re-INVITEs mid-call to change codec (PCMU -> PCMA): the guard re-bridges the new
    stream through the same pipeline; keys after the change are masked in the audio and relayed once."""
    x, speech, after_spans = _audio(tmp_path / "c.wav")
    with SipCall(tmp_path, serve=True, timeout=40,
                 agent_args=["--reinvite-codec", "PCMA/8000", "--reinvite-at", "2.5"]) as call:
        _play(call, x, tmp_path / "c.wav")
    assert call.rc_guard == 0
    ev = call.agent.events()
    change = [e for e in ev if e.get("event") == "reinvite"]
    codec = [e for e in ev if e.get("event") == "codec"]
    assert change and change[0]["before"].startswith("PCMU") and codec and codec[0]["codec"].startswith("PCMA"), ev
    assert keys_of(call.agent) == BEFORE + AFTER, _story(call, call.customers[0], call.agent)
    log = call.guard_log()
    assert log.count("media bridged") + log.count("media re-bridged") >= 2, log[-2000:]  # the new stream too
    _nothing_recovered_after_the_transfer(call.recording(), x, speech, after_spans)


def test_attended_transfer_with_replaces(tmp_path):
    """Attended transfer: agent 1 consults agent 2 (a call of its own), then sends REFER with Replaces on the
    customer's call; the guard calls agent 2 with Replaces, agent 2 swaps its consultation call for it, and
    the customer's keys after the transfer reach agent 2 (relayed once, masked in the audio)."""
    x, speech, after_spans = _audio(tmp_path / "c.wav")
    a2port = free_port()
    with SipCall(tmp_path, serve=True, timeout=40, agent_args=[
            "--consult", f"sip:agent2@127.0.0.1:{a2port}", "--consult-at", "1.0", "--refer-at", "2.5",
            "--calls", "2"]) as call:
        agent2 = call.add_agent("agent2", "--calls", "2", port=a2port)
        _play(call, x, tmp_path / "c.wav")
    assert call.rc_guard == 0
    ev1, ev2 = call.agent.events(), agent2.events()
    assert [e for e in ev1 if e.get("event") == "refer" and e.get("replaces")], ev1[-10:]
    assert [e for e in ev2 if e.get("event") == "replaced"], ev2[-10:]
    assert (keys_of(call.agent, None), keys_of(agent2, None)) == (BEFORE, AFTER), \
        _story(call, call.customers[0], call.agent, agent2)
    print(f"attended transfer: REFER -> agent 2 answered (guard): {_answer_ms(call)} ms")
    _nothing_recovered_after_the_transfer(call.recording(1, agent="agent2"), x, speech, after_spans)


@pytest.mark.needs_program("sipp", "sip-tester")
def test_a_customer_side_refer_is_refused_and_the_call_stays(tmp_path):
    """Only the agent side may transfer: a REFER on the customer leg gets 603, no call goes to its target,
    and the call with the agent goes on until the customer hangs up."""
    import subprocess
    from pathlib import Path

    sport, elsewhere = free_port(), free_port()
    with SipCall(tmp_path, serve=True, timeout=30, record=False) as call:
        other = call.add_agent("elsewhere", "--calls", "0", port=elsewhere, record=False)
        r = subprocess.run(["sipp", "-sf", str(Path(__file__).parent / "sipp" / "uac_refer.xml"), "-m", "1",
                            "-p", str(sport), "-i", "127.0.0.1", "-mp", str(rtp_base()), "-timeout", "20s",
                            "-key", "refer_to", f"sip:mallory@127.0.0.1:{elsewhere}", "-nostdin", "-trace_err",
                            f"127.0.0.1:{call.gport}"], cwd=tmp_path, capture_output=True, text=True, timeout=40)
        call.agent.wait(10)
    assert call.rc_guard == 0
    assert r.returncode == 0, r.stdout[-2000:] + "".join(p.read_text() for p in tmp_path.glob("*errors*"))
    assert not [e for e in other.events() if e.get("event") == "invite"]  # nobody called the REFER target
    assert done_event(call.agent)["calls"][0]["confirmed"]
    assert "REFER refused" in call.guard_log()
