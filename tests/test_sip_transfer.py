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

from dtmfguard.adversary import count_recovered
from dtmfguard.audio import read_audio
from dtmfguard.synth import keypresses

from sip_peers import Proc, free_port, rtp_base
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


def test_blind_transfer_keeps_the_guard_in_the_path(tmp_path):
    x, speech, after_spans = _audio(tmp_path / "c.wav")
    gport, a1port, a2port = free_port(), free_port(), free_port()
    for d in ("a1", "a2"):
        (tmp_path / d).mkdir()
    agent2 = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(a2port), "--rtp", str(rtp_base()),
                   "--record-dir", str(tmp_path / "a2"), "--timeout", "40"], "agent2", tmp_path)
    agent1 = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(a1port), "--rtp", str(rtp_base()),
                   "--record-dir", str(tmp_path / "a1"), "--refer-to", f"sip:agent2@127.0.0.1:{a2port}",
                   "--refer-at", "2.5", "--timeout", "40"], "agent1", tmp_path)
    guard = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent",
                  f"sip:agent@127.0.0.1:{a1port}", "--rtp-port", str(rtp_base())], "guard", tmp_path)
    customer = None
    try:
        agent1.wait_ready()
        agent2.wait_ready()
        guard.wait_ready()
        customer = Proc(["-m", "dtmfguard.sip.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{gport}", "--play", str(tmp_path / "c.wav"),
                         "--play-s", f"{x.size / 8000 + 0.3:.1f}", "--timeout", "40"], "customer", tmp_path)
        assert customer.wait(40) == 0
        agent1.wait(10)
        agent2.wait(10)
    finally:
        rc = guard.stop()
        agent1.stop()
        agent2.stop()
        if customer is not None:
            customer.stop()
    assert rc == 0
    ev1, ev2 = agent1.events(), agent2.events()
    refer = [e for e in ev1 if e.get("event") == "refer"]
    xfer = [e for e in ev1 if e.get("event") == "xfer_status" and e.get("final")]
    assert refer and xfer and xfer[-1]["status"] == 200, ev1[-10:]
    keys1 = [e for e in ev1 if e.get("event") == "done"][0]["calls"][0]["keys"]
    keys2 = [e for e in ev2 if e.get("event") == "done"][0]["calls"][0]["keys"]
    assert "".join(k["digit"] for k in keys1) == BEFORE, keys1
    assert "".join(k["digit"] for k in keys2) == AFTER, keys2
    # the customer's call went on: one call, answered once, ended by the customer
    states = [e for e in customer.events() if e.get("event") == "state"]
    assert [e["state"] for e in states].count("CONFIRMED") == 1
    media2 = [e for e in ev2 if e.get("event") == "media"][0]
    log = guard.err_path.read_text()
    m = re.search(r"transfer answered ([0-9.]+) ms after the REFER", log)
    assert m, log[-2000:]
    print(f"REFER -> agent 2 answered (guard): {m.group(1)} ms; REFER sent -> agent 2 media: "
          f"{(media2['t'] - refer[0]['t']) * 1000:.0f} ms")
    # agent 2 hears the customer (the speech after the keys), and no key of what was typed after the transfer
    rec, _ = sf.read(tmp_path / "a2" / "call-0.wav", dtype="int16")
    rec = rec.astype(np.float64)
    offset = align(rec, x, x.size - speech.size)
    assert count_recovered(rec, after_spans, 8000, offset=offset) == 0


@pytest.mark.skipif(not __import__("shutil").which("sipp"), reason="sipp (Debian package sip-tester) not installed")
def test_refer_from_sipp_reaches_the_new_agent(tmp_path):
    """sipp (a non-PJSIP agent side) answers and sends REFER; the guard calls the pjsua2 agent 2, which then
    gets the customer's keys (relayed, once) and masked audio; sipp gets its NOTIFYs and the BYE."""
    import subprocess
    from pathlib import Path

    x, speech, after_spans = _audio(tmp_path / "c.wav")
    gport, sport, a2port = free_port(), free_port(), free_port()
    (tmp_path / "a2").mkdir()
    agent2 = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(a2port), "--rtp", str(rtp_base()),
                   "--record-dir", str(tmp_path / "a2"), "--timeout", "40"], "agent2", tmp_path)
    guard = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent",
                  f"sip:agent1@127.0.0.1:{sport}", "--rtp-port", str(rtp_base())], "guard", tmp_path)
    sipp = subprocess.Popen(["sipp", "-sf", str(Path(__file__).parent / "sipp" / "uas_refer.xml"), "-m", "1",
                             "-p", str(sport), "-i", "127.0.0.1", "-mp", str(rtp_base()), "-timeout", "30s",
                             "-key", "refer_to", f"sip:agent2@127.0.0.1:{a2port}", "-nostdin", "-trace_err"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    customer = None
    try:
        agent2.wait_ready()
        guard.wait_ready()
        customer = Proc(["-m", "dtmfguard.sip.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{gport}", "--play", str(tmp_path / "c.wav"),
                         "--play-s", f"{x.size / 8000 + 0.3:.1f}", "--timeout", "40"], "customer", tmp_path)
        assert customer.wait(40) == 0
        out, _ = sipp.communicate(timeout=20)
        agent2.wait(10)
    finally:
        if sipp.poll() is None:
            sipp.kill()
        rc = guard.stop()
        agent2.stop()
        if customer is not None:
            customer.stop()
    assert rc == 0
    assert sipp.returncode == 0, out[-3000:]
    keys2 = [e for e in agent2.events() if e.get("event") == "done"][0]["calls"][0]["keys"]
    assert "".join(k["digit"] for k in keys2) == AFTER, keys2
    m = re.search(r"transfer answered ([0-9.]+) ms after the REFER", guard.err_path.read_text())
    assert m
    print(f"sipp REFER -> agent 2 answered (guard): {m.group(1)} ms")
    rec, _ = sf.read(tmp_path / "a2" / "call-0.wav", dtype="int16")
    rec = rec.astype(np.float64)
    offset = align(rec, x, x.size - speech.size)
    assert count_recovered(rec, after_spans, 8000, offset=offset) == 0


def test_codec_change_by_reinvite_keeps_masking_and_relaying(tmp_path):
    """The agent side re-INVITEs mid-call to change codec (PCMU -> PCMA): the guard re-bridges the new
    stream through the same pipeline; keys after the change are masked in the audio and relayed once."""
    x, speech, after_spans = _audio(tmp_path / "c.wav")
    gport, aport = free_port(), free_port()
    (tmp_path / "a").mkdir()
    agent = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(tmp_path / "a"), "--reinvite-codec", "PCMA/8000", "--reinvite-at", "2.5",
                  "--timeout", "40"], "agent", tmp_path)
    guard = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent",
                  f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(rtp_base())], "guard", tmp_path)
    customer = None
    try:
        agent.wait_ready()
        guard.wait_ready()
        customer = Proc(["-m", "dtmfguard.sip.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{gport}", "--play", str(tmp_path / "c.wav"),
                         "--play-s", f"{x.size / 8000 + 0.3:.1f}", "--timeout", "40"], "customer", tmp_path)
        assert customer.wait(40) == 0
        agent.wait(10)
    finally:
        rc = guard.stop()
        agent.stop()
        if customer is not None:
            customer.stop()
    assert rc == 0
    ev = agent.events()
    change = [e for e in ev if e.get("event") == "reinvite"]
    codec = [e for e in ev if e.get("event") == "codec"]
    assert change and change[0]["before"].startswith("PCMU") and codec and codec[0]["codec"].startswith("PCMA"), ev
    keys = [e for e in ev if e.get("event") == "done"][0]["calls"][0]["keys"]
    assert "".join(k["digit"] for k in keys) == BEFORE + AFTER, keys
    log = guard.err_path.read_text()
    assert log.count("media bridged") + log.count("media re-bridged") >= 2, log[-2000:]  # the new stream too
    rec, _ = sf.read(tmp_path / "a" / "call-0.wav", dtype="int16")
    rec = rec.astype(np.float64)
    offset = align(rec, x, x.size - speech.size)
    assert count_recovered(rec, after_spans, 8000, offset=offset) == 0


def test_attended_transfer_with_replaces(tmp_path):
    """Attended transfer: agent 1 consults agent 2 (a call of its own), then sends REFER with Replaces on the
    customer's call; the guard calls agent 2 with Replaces, agent 2 swaps its consultation call for it, and
    the customer's keys after the transfer reach agent 2 (relayed once, masked in the audio)."""
    x, speech, after_spans = _audio(tmp_path / "c.wav")
    gport, a1port, a2port = free_port(), free_port(), free_port()
    for d in ("a1", "a2"):
        (tmp_path / d).mkdir()
    agent2 = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(a2port), "--rtp", str(rtp_base()),
                   "--record-dir", str(tmp_path / "a2"), "--calls", "2", "--timeout", "40"], "agent2", tmp_path)
    agent1 = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(a1port), "--rtp", str(rtp_base()),
                   "--record-dir", str(tmp_path / "a1"), "--consult", f"sip:agent2@127.0.0.1:{a2port}",
                   "--consult-at", "1.0", "--refer-at", "2.5", "--calls", "2", "--timeout", "40"], "agent1", tmp_path)
    guard = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent",
                  f"sip:agent@127.0.0.1:{a1port}", "--rtp-port", str(rtp_base())], "guard", tmp_path)
    customer = None
    try:
        agent1.wait_ready()
        agent2.wait_ready()
        guard.wait_ready()
        customer = Proc(["-m", "dtmfguard.sip.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{gport}", "--play", str(tmp_path / "c.wav"),
                         "--play-s", f"{x.size / 8000 + 0.3:.1f}", "--timeout", "40"], "customer", tmp_path)
        assert customer.wait(40) == 0
        agent1.wait(10)
        agent2.wait(10)
    finally:
        rc = guard.stop()
        agent1.stop()
        agent2.stop()
        if customer is not None:
            customer.stop()
    assert rc == 0
    ev1, ev2 = agent1.events(), agent2.events()
    assert [e for e in ev1 if e.get("event") == "refer" and e.get("replaces")], ev1[-10:]
    assert [e for e in ev2 if e.get("event") == "replaced"], ev2[-10:]
    calls2 = [e for e in ev2 if e.get("event") == "done"][0]["calls"]
    keys2 = "".join(k["digit"] for c in calls2 for k in c["keys"])
    assert keys2 == AFTER, calls2
    keys1 = "".join(k["digit"] for c in [e for e in ev1 if e.get("event") == "done"][0]["calls"] for k in c["keys"])
    assert keys1 == BEFORE
    m = re.search(r"transfer answered ([0-9.]+) ms after the REFER", guard.err_path.read_text())
    assert m
    print(f"attended transfer: REFER -> agent 2 answered (guard): {m.group(1)} ms")
    rec, _ = sf.read(tmp_path / "a2" / "call-1.wav", dtype="int16")
    rec = rec.astype(np.float64)
    offset = align(rec, x, x.size - speech.size)
    assert count_recovered(rec, after_spans, 8000, offset=offset) == 0


@pytest.mark.skipif(not __import__("shutil").which("sipp"), reason="sipp (Debian package sip-tester) not installed")
def test_a_customer_side_refer_is_refused_and_the_call_stays(tmp_path):
    """Only the agent side may transfer: a REFER on the customer leg gets 603, no call goes to its target,
    and the call with the agent goes on until the customer hangs up."""
    import subprocess
    from pathlib import Path

    gport, aport, sport, elsewhere = free_port(), free_port(), free_port(), free_port()
    agent = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--timeout", "30"], "agent", tmp_path)
    other = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(elsewhere), "--rtp", str(rtp_base()),
                  "--timeout", "30", "--calls", "0"], "elsewhere", tmp_path)
    guard = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent",
                  f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(rtp_base())], "guard", tmp_path)
    try:
        agent.wait_ready()
        other.wait_ready()
        guard.wait_ready()
        r = subprocess.run(["sipp", "-sf", str(Path(__file__).parent / "sipp" / "uac_refer.xml"), "-m", "1",
                            "-p", str(sport), "-i", "127.0.0.1", "-mp", str(rtp_base()), "-timeout", "20s",
                            "-key", "refer_to", f"sip:mallory@127.0.0.1:{elsewhere}", "-nostdin", "-trace_err",
                            f"127.0.0.1:{gport}"], cwd=tmp_path, capture_output=True, text=True, timeout=40)
        agent.wait(10)
    finally:
        rc = guard.stop()
        agent.stop()
        other.stop()
    assert rc == 0
    assert r.returncode == 0, r.stdout[-2000:] + "".join(p.read_text() for p in tmp_path.glob("*errors*"))
    assert not [e for e in other.events() if e.get("event") == "invite"]  # nobody called the REFER target
    done = [e for e in agent.events() if e.get("event") == "done"][0]
    assert done["calls"][0]["confirmed"]
    assert "REFER refused" in guard.err_path.read_text()
