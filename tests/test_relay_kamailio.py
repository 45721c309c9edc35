# SPDX-License-Identifier: GPL-2.0-or-later
"""Relay mode end to end with real processes: Kamailio (Debian) as the proxy, `dtmfguard relay` as the
media element over rtpengine's ng protocol, pjsua2 peers as customer and agent.

One call carries speech, a card number, an expiry and '#' typed in-band, a CVV sent as RFC 4733 events and
two SIP INFO keys (forked by Kamailio to the relay); a payment session is started over the control API.  Checked: the payment completes
(three fields, from both digit paths), the agent's recording gives the adversarial decoder nothing and
still carries the customer's speech, the agent never sees a DTMF event or an INFO key, no output holds
the card number.  Failover: with two relays in the set, the relay carrying a call is killed mid-call (the
agent's audio stops: fail closed) and the next call is carried by the survivor with no manual step.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.dsp.audio import read_audio
from dtmfguard.relay import bencode
from dtmfguard.server.control import follow_feed, request as control_request
from dtmfguard.testkit.synth import keypresses

from sip_peers import PYTHON, Proc, free_port, rtp_base

PAN = "4111111111111111"
TOKEN = "relay-token"
_PROMPTS = ("/usr/share/asterisk/sounds/en/agent-pass.wav", "/usr/share/asterisk/sounds/en_US_f_Allison/agent-pass.wav")
SPEECH = next((p for p in _PROMPTS if os.path.exists(p)), _PROMPTS[0])

pytestmark = [pytest.mark.sip, pytest.mark.slow,
              pytest.mark.skipif(not shutil.which("kamailio"), reason="kamailio not installed"),
              pytest.mark.skipif(not any(os.path.exists(p) for p in _PROMPTS),
                                 reason="asterisk-core-sounds-en-wav not installed")]


def ng(port: int, msg: dict, timeout: float = 2.0) -> dict:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        cookie = os.urandom(6).hex().encode()  # a repeated cookie gets the cached reply (retransmission)
        s.sendto(cookie + b" " + bencode.encode(msg), ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
    return bencode.decode(data.split(b" ", 1)[1])


def _relay(tmp_path, name, ngport, control=None, env=None):
    base = rtp_base()
    args = ["-m", "dtmfguard", "-v", "relay", "--ng", f"127.0.0.1:{ngport}", "--rtp-range", f"{base}-{base + 199}"]
    if control:
        args += ["--control", f"127.0.0.1:{control}"]
    return Proc(args, name, tmp_path, env=env)


def _kamailio(tmp_path, front, ngports, agent_port):
    relays = []
    for p in ngports:
        relays += ["--relay", f"127.0.0.1:{p}"]
    out = subprocess.run([PYTHON, "-m", "dtmfguard", "kamailio-config", "--mode", "relay", *relays,
                          "--agent", f"sip:agent@127.0.0.1:{agent_port}", "--front", f"127.0.0.1:{front}",
                          "--output", str(tmp_path / "kam"), "--json"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)["kamailio_cfg"]
    check = subprocess.run(["kamailio", "-c", "-f", cfg], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr[-2000:]
    (tmp_path / "run").mkdir(exist_ok=True)
    return subprocess.Popen(["kamailio", "-DD", "-E", "-f", cfg, "-Y", str(tmp_path / "run")],
                            stdout=open(tmp_path / "kam.out", "w"), stderr=open(tmp_path / "kam.err", "w"),
                            start_new_session=True)


def _stop_kamailio(kam):
    kam.send_signal(signal.SIGTERM)
    try:
        kam.wait(10)
    except subprocess.TimeoutExpired:
        kam.kill()
        kam.wait(5)


def _best_correlation(recording, ref):
    y, r = recording.astype(np.float64), ref.astype(np.float64)
    if y.size < r.size:
        return 0.0, 0
    n = 1 << int(np.ceil(np.log2(y.size + r.size)))
    c = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(r, n)), n)[: y.size - r.size + 1]
    lag = int(np.argmax(c))
    seg = y[lag: lag + r.size]
    return float(np.dot(seg, r) / np.sqrt(np.dot(seg, seg) * np.dot(r, r) + 1e-9)), lag


@pytest.fixture(scope="module")
def payment_call(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("relay_call")
    speech, rate = read_audio(SPEECH)
    keys, spans = keypresses(PAN + "#" + "1230", rng=np.random.default_rng(5))
    lead = np.zeros(3 * 8000)  # time to start the payment before the first key
    x = np.clip(np.concatenate([speech, lead, keys, np.zeros(4000), speech]), -32768, 32767).astype(np.int16)
    base = speech.size + lead.size
    spans = [(s.digit, s.start + base, s.end + base) for s in spans]
    sf.write(tmp_path / "c.wav", x, 8000, subtype="PCM_16")
    front, aport, ngport, ctl = free_port(), free_port(), free_port(), free_port()
    env = {"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_VAULT_KEY": "33" * 32,
           "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite")}
    (tmp_path / "agent").mkdir()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(tmp_path / "agent"), "--timeout", "60"], "agent", tmp_path)
    relay = _relay(tmp_path, "relay", ngport, ctl, env)
    feed: list = []
    customer = kam = None
    try:
        agent.wait_ready()
        relay.wait_ready()
        kam = _kamailio(tmp_path, front, [ngport], aport)  # after the relay: Kamailio pings it at start
        time.sleep(0.5)  # Kamailio's children up
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:agent@127.0.0.1:{front}", "--play", str(tmp_path / "c.wav"),
                         "--play-s", f"{x.size / 8000 + 0.3:.1f}", "--rfc2833", "123", "--info", "45",
                         "--timeout", "60"], "customer", tmp_path)
        call_id, body = None, None
        deadline = time.monotonic() + 15
        while call_id is None and time.monotonic() < deadline:
            status, body = control_request(ctl, "GET", "/calls", TOKEN)
            live = [c for c in body["calls"] if c["state"] == "connected"]
            call_id = live[0]["id"] if live else None
            time.sleep(0.1)
        assert call_id, (body, (tmp_path / "kam.err").read_text()[-3000:])
        status, started = control_request(ctl, "POST", f"/calls/{call_id}/payment", TOKEN,
                                          {"amount": 1999, "reference": "INV-7", "agent_id": "agent-1"})
        assert status == 201, started
        reader = threading.Thread(target=follow_feed, args=(ctl, call_id, TOKEN, lambda k, d: feed.append(d)),
                                  daemon=True)
        reader.start()
        rc_customer = customer.wait(60)
        rc_agent = agent.wait(15)
        reader.join(10)
        stats = ng(ngport, {"command": "statistics"})["statistics"]
    finally:
        rc_relay = relay.stop()
        if kam is not None:
            _stop_kamailio(kam)
        for p in (customer, agent):
            if p is not None:
                p.stop()
    rec, rate = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
    return {"rc": (rc_customer, rc_agent, rc_relay), "feed": feed, "rec": rec, "speech": speech, "spans": spans,
            "procs": (relay, agent, customer), "kam": tmp_path / "kam.err", "stats": stats}


def test_call_completes_through_kamailio_and_relay(payment_call):
    assert payment_call["rc"] == (0, 0, 0), payment_call["procs"][0].output()[-3000:]
    assert payment_call["stats"]["calls_total"] == 1 and payment_call["stats"]["tick_errors"] == 0
    assert payment_call["stats"]["active_calls"] == 0  # Kamailio's delete on BYE reached the relay


def test_payment_gets_inband_and_rfc4733_digits(payment_call):
    kinds = [e.get("type") for e in payment_call["feed"]]
    assert "session_started" in kinds and kinds.count("field_complete") == 3, kinds
    ended = [e for e in payment_call["feed"] if e.get("type") == "session_ended"]
    assert ended and ended[0].get("outcome", ended[0].get("state")) == "completed", ended


def test_agent_audio_gives_the_adversary_nothing(payment_call):
    from dtmfguard.testkit.adversary import count_recovered, recover_digits

    rec = payment_call["rec"]
    corr, lag = _best_correlation(rec, payment_call["speech"])
    assert corr > 0.6, corr  # the agent hears the customer
    assert count_recovered(rec.astype(np.float64), payment_call["spans"], 8000, offset=lag) == 0
    assert len(recover_digits(rec.astype(np.float64), 8000)) <= 2  # speech false alarms, as on the raw prompt


def test_agent_sees_no_dtmf_event_nor_info_key(payment_call):
    # the two INFO keys were forked by Kamailio to the relay, which took them for the call
    assert payment_call["stats"]["info_keys"] == 2 and payment_call["stats"]["sip_info_bad"] == 0
    agent = payment_call["procs"][1]
    done = [e for e in agent.events() if e.get("event") == "done"][0]
    assert done["calls"][0]["dtmf_events"] == 0 and done["calls"][0]["dtmf_digits"] == 0


def test_no_output_holds_the_card_number(payment_call):
    text = "".join(json.dumps(e) for e in payment_call["feed"]) + payment_call["kam"].read_text()
    text += "".join(p.output() for p in payment_call["procs"])
    assert PAN not in text and PAN[-8:] not in text and "411111" not in text


def test_killed_relay_fails_closed_and_the_next_call_uses_the_survivor(tmp_path):
    front, aport = free_port(), free_port()
    ngs = [free_port(), free_port()]
    (tmp_path / "agent").mkdir()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(tmp_path / "agent"), "--timeout", "60", "--calls", "2"], "agent", tmp_path)
    relays = [_relay(tmp_path, f"relay{i}", p) for i, p in enumerate(ngs)]
    kam = None
    speech, _ = read_audio(SPEECH)
    loud = np.tile(speech, 4).astype(np.int16)  # ~8 s of speech
    sf.write(tmp_path / "c.wav", loud, 8000, subtype="PCM_16")
    customers = []
    try:
        agent.wait_ready()
        for r in relays:
            r.wait_ready()
        kam = _kamailio(tmp_path, front, ngs, aport)
        time.sleep(0.5)
        c1 = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp", str(rtp_base()),
                   "--to", f"sip:agent@127.0.0.1:{front}", "--play", str(tmp_path / "c.wav"), "--play-s", "7",
                   "--timeout", "40"], "customer1", tmp_path)
        customers.append(c1)
        t_start = time.monotonic()
        assert c1.wait_for(lambda s: "CONFIRMED" in s, 20)
        setup_before = time.monotonic() - t_start  # process start to 200 OK
        carrier = None
        deadline = time.monotonic() + 15
        while carrier is None and time.monotonic() < deadline:
            for i, p in enumerate(ngs):
                if ng(p, {"command": "list"}).get("calls"):
                    carrier = i
            time.sleep(0.1)
        assert carrier is not None
        time.sleep(2.0)
        relays[carrier].kill()
        t_kill = time.monotonic()
        c2 = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp", str(rtp_base()),
                   "--to", f"sip:agent@127.0.0.1:{front}", "--play", str(tmp_path / "c.wav"), "--play-s", "2",
                   "--timeout", "40"], "customer2", tmp_path)
        customers.append(c2)
        assert c2.wait_for(lambda s: "CONFIRMED" in s, 20), c2.output()[-2000:]
        setup_after = time.monotonic() - t_kill
        assert c2.wait(40) == 0, c2.output()[-2000:]
        c1.wait(40)
        agent.wait(20)
        survivor = 1 - carrier
        stats = ng(ngs[survivor], {"command": "statistics"})["statistics"]
    finally:
        for c in customers:
            c.stop()
        for r in relays:
            r.stop()
        agent.stop()
        if kam is not None:
            _stop_kamailio(kam)
    assert stats["calls_total"] == 1  # the second call went to the survivor
    done2 = [e for e in c2.events() if e.get("event") == "done"][0]
    assert done2["status"] == 200, done2
    recs = sorted((tmp_path / "agent").glob("call-*.wav"))
    assert len(recs) == 2
    first, _ = sf.read(recs[0], dtype="int16")
    second, _ = sf.read(recs[1], dtype="int16")
    # call 1: speech until the kill (~2.5 s in), then nothing: the dead relay passes no audio
    energy = [float(np.sqrt(np.mean(first[i:i + 4000].astype(np.float64) ** 2)))
              for i in range(0, first.size - 4000, 4000)]
    assert max(energy[:4]) > 300, energy
    killed_at = next(i for i in range(len(energy)) if i >= 4 and all(e < 10 for e in energy[i:]))
    assert killed_at <= 12, energy
    assert _best_correlation(second, speech[:8000])[0] > 0.6  # the survivor carries the new call's speech
    print(f"failover: relay {carrier} killed; agent audio of call 1 silent from {killed_at * 0.5:.1f} s "
          f"(kill at ~2.5 s); call setup (peer start to 200 OK) before the kill {setup_before:.2f} s, "
          f"first call after it {setup_after:.2f} s")


def test_g722_customer_through_the_relay(tmp_path):
    """A wideband customer (G.722, decoded and re-encoded by the relay in spandsp's 8 kHz mode): keys masked,
    speech kept."""
    from dtmfguard.testkit.adversary import count_recovered
    from dtmfguard.relay.codecs import g722_available

    if not g722_available():
        pytest.skip("libspandsp (libspandsp-dev) not installed: the relay does not offer G.722")
    speech, _ = read_audio(SPEECH)
    keys, spans = keypresses(PAN, rng=np.random.default_rng(12))
    x = np.clip(np.concatenate([speech, np.zeros(2000), keys, np.zeros(2000), speech]), -32768, 32767).astype(np.int16)
    base = speech.size + 2000
    spans = [(s.digit, s.start + base, s.end + base) for s in spans]
    sf.write(tmp_path / "c.wav", x, 8000, subtype="PCM_16")
    front, aport, ngport = free_port(), free_port(), free_port()
    (tmp_path / "agent").mkdir()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(tmp_path / "agent"), "--timeout", "60"], "agent", tmp_path)
    relay = _relay(tmp_path, "relay", ngport)
    kam = customer = None
    try:
        agent.wait_ready()
        relay.wait_ready()
        kam = _kamailio(tmp_path, front, [ngport], aport)
        time.sleep(0.5)
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:agent@127.0.0.1:{front}", "--play", str(tmp_path / "c.wav"),
                         "--play-s", f"{x.size / 8000 + 0.3:.1f}", "--codec", "G722/16000", "--timeout", "60"],
                        "customer", tmp_path)
        assert customer.wait(60) == 0
        assert agent.wait(15) == 0
    finally:
        relay.stop()
        if kam is not None:
            _stop_kamailio(kam)
        for p in (customer, agent):
            if p is not None:
                p.stop()
    assert "customer codec G722" in relay.output()
    rec, _ = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
    corr, lag = _best_correlation(rec, speech)
    # two resamplings (pjsua 8 -> 16 kHz, G.722 low band only at the relay) and G.722 coding: 0.47-0.6
    # measured; noise or silence would give ~0
    assert corr > 0.35, corr
    assert count_recovered(rec.astype(np.float64), spans, 8000, offset=lag) == 0


def test_hold_and_resume_through_kamailio_keeps_masking(tmp_path):
    """The customer holds and resumes (re-INVITEs through Kamailio: rtpengine_offer/answer on a known call);
    the keys typed after the resume are still masked, and the relay accepted every re-offer."""
    from dtmfguard.testkit.adversary import count_recovered

    speech, _ = read_audio(SPEECH)
    keys, spans = keypresses(PAN, rng=np.random.default_rng(13))
    lead = np.zeros(3 * 8000)  # the hold (at 1.0 s, for 1.0 s) happens in here
    x = np.clip(np.concatenate([speech, lead, keys, np.zeros(2000), speech]), -32768, 32767).astype(np.int16)
    base = speech.size + lead.size
    spans = [(s.digit, s.start + base, s.end + base) for s in spans]
    sf.write(tmp_path / "c.wav", x, 8000, subtype="PCM_16")
    front, aport, ngport = free_port(), free_port(), free_port()
    (tmp_path / "agent").mkdir()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(tmp_path / "agent"), "--timeout", "60"], "agent", tmp_path)
    relay = _relay(tmp_path, "relay", ngport)
    kam = customer = None
    try:
        agent.wait_ready()
        relay.wait_ready()
        kam = _kamailio(tmp_path, front, [ngport], aport)
        time.sleep(0.5)
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:agent@127.0.0.1:{front}", "--play", str(tmp_path / "c.wav"),
                         "--play-s", f"{x.size / 8000 + 0.3:.1f}", "--hold-at", "1.0", "--hold-s", "1.0",
                         "--timeout", "60"], "customer", tmp_path)
        assert customer.wait(60) == 0
        assert agent.wait(15) == 0
        stats = ng(ngport, {"command": "statistics"})["statistics"]
    finally:
        relay.stop()
        if kam is not None:
            _stop_kamailio(kam)
        for p in (customer, agent):
            if p is not None:
                p.stop()
    assert any(e.get("event") == "resumed" for e in customer.events()), customer.output()[-1500:]
    assert stats["ng_errors"] == 0 and stats["ng_requests"] >= 6  # offer+answer, 2 re-offers+answers, delete
    rec, _ = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
    corr, lag = _best_correlation(rec, speech)
    assert corr > 0.6, corr
    assert count_recovered(rec.astype(np.float64), spans, 8000, offset=lag) == 0


def test_srtp_call_through_kamailio_and_relay(tmp_path):
    """Both peers insist on SRTP (SDES): the relay decrypts the customer's stream with the customer's key,
    masks it and encrypts it for the agent with its own key; keys stay masked."""
    pytest.importorskip("pylibsrtp")
    from dtmfguard.testkit.adversary import count_recovered

    speech, _ = read_audio(SPEECH)
    keys, spans = keypresses(PAN, rng=np.random.default_rng(14))
    x = np.clip(np.concatenate([speech, np.zeros(2000), keys, np.zeros(2000), speech]), -32768, 32767).astype(np.int16)
    base = speech.size + 2000
    spans = [(s.digit, s.start + base, s.end + base) for s in spans]
    sf.write(tmp_path / "c.wav", x, 8000, subtype="PCM_16")
    front, aport, ngport = free_port(), free_port(), free_port()
    (tmp_path / "agent").mkdir()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(tmp_path / "agent"), "--timeout", "60", "--srtp", "mandatory"], "agent", tmp_path)
    relay = _relay(tmp_path, "relay", ngport)
    kam = customer = None
    try:
        agent.wait_ready()
        relay.wait_ready()
        kam = _kamailio(tmp_path, front, [ngport], aport)
        time.sleep(0.5)
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:agent@127.0.0.1:{front}", "--play", str(tmp_path / "c.wav"),
                         "--play-s", f"{x.size / 8000 + 0.3:.1f}", "--srtp", "mandatory", "--timeout", "60"],
                        "customer", tmp_path)
        assert customer.wait(60) == 0, customer.output()[-1500:]
        assert agent.wait(15) == 0
        stats = ng(ngport, {"command": "statistics"})["statistics"]
    finally:
        relay.stop()
        if kam is not None:
            _stop_kamailio(kam)
        for p in (customer, agent):
            if p is not None:
                p.stop()
    done = [e for e in customer.events() if e.get("event") == "done"][0]
    assert done["status"] == 200 and done["srtp"] is True, done
    assert stats["ng_errors"] == 0
    rec, _ = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
    corr, lag = _best_correlation(rec, speech)
    assert corr > 0.6, corr  # decrypted, masked, re-encrypted, decrypted by the agent
    assert count_recovered(rec.astype(np.float64), spans, 8000, offset=lag) == 0
