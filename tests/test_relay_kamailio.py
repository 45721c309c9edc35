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
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.dsp.audio import read_audio
from dtmfguard.server.control import follow_feed, request as control_request

from dtmfguard.testkit.audio_match import speech_match
from _corpus_util import prompt
from sip_peers import keyed_audio
from sip_peers.kamailio import RelayCall

PAN = "4111111111111111"
TOKEN = "relay-token"
SPEECH = "agent-pass.wav"  # an English prompt (asterisk-core-sounds-en-wav): see _corpus_util.prompt

pytestmark = [pytest.mark.sip, pytest.mark.slow, pytest.mark.needs_program("kamailio")]


def customer_wav(tmp_path, speech, keys: str, seed: int, before_s: float = 0.25, after_s: float = 0.25):
    """The customer's audio in ``tmp/c.wav``: speech, ``before_s`` of silence, ``keys`` in-band, ``after_s`` of
    silence, speech.  Returns the signal and the keys' spans [(digit, start, end)] in samples."""
    x, parts = keyed_audio(tmp_path / "c.wav", np.concatenate([speech, np.zeros(int(before_s * 8000))]),
                           [("keys", keys, after_s)], speech, seed=seed)
    return x, parts["keys"]


@pytest.fixture(scope="module")
def payment_call(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("relay_call")
    speech, rate = read_audio(prompt(SPEECH))
    # 3 s of silence before the keys: time to start the payment before the first key
    x, spans = customer_wav(tmp_path, speech, PAN + "#" + "1230", 5, before_s=3.0, after_s=0.5)
    env = {"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_VAULT_KEY": "33" * 32,
           "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite")}
    feed: list = []
    with RelayCall(tmp_path, control=True, env=env) as call:
        ctl = call.ctl
        customer = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.3:.1f}",
                                 "--rfc2833", "123", "--info", "45")
        call_id, body = None, None
        deadline = time.monotonic() + 15
        while call_id is None and time.monotonic() < deadline:
            status, body = control_request(ctl, "GET", "/calls", TOKEN)
            live = [c for c in body["calls"] if c["state"] == "connected"]
            call_id = live[0]["id"] if live else None
            time.sleep(0.1)
        assert call_id, (body, call.kam.log()[-3000:])
        status, started = control_request(ctl, "POST", f"/calls/{call_id}/payment", TOKEN,
                                          {"amount": 1999, "reference": "INV-7", "agent_id": "agent-1"})
        assert status == 201, started
        reader = threading.Thread(target=follow_feed, args=(ctl, call_id, TOKEN, lambda k, d: feed.append(d)),
                                  daemon=True)
        reader.start()
        rc_customer = customer.wait(60)
        rc_agent = call.agent.wait(15)
        reader.join(10)
        stats = call.ng({"command": "statistics"})["statistics"]
    (rc_relay,) = call.rc_relays
    rec = call.recording()
    return {"rc": (rc_customer, rc_agent, rc_relay), "feed": feed, "rec": rec, "speech": speech, "spans": spans,
            "procs": (call.relays[0], call.agent, customer), "kam": call.kam.err_path, "stats": stats}


def test_call_completes_through_kamailio_and_relay(payment_call):
    assert payment_call["rc"] == (0, 0, 0), payment_call["procs"][0].output()[-3000:]
    assert payment_call["stats"]["calls_total"] == 1 and payment_call["stats"]["tick_errors"] == 0
    assert payment_call["stats"]["active_calls"] == 0  # Kamailio's delete on BYE reached the relay


def test_payment_gets_inband_and_rfc4733_digits(payment_call):
    kinds = [e.get("type") for e in payment_call["feed"]]
    # the agent's feed (masked progress only) in short, and the relay's log tail, to place a failure
    told = [(e.get("type"), e.get("field"), e.get("length", e.get("entered"))) for e in payment_call["feed"]]
    assert "session_started" in kinds and kinds.count("field_complete") == 3, \
        (told, payment_call["procs"][0].output()[-3000:])
    ended = [e for e in payment_call["feed"] if e.get("type") == "session_ended"]
    assert ended and ended[0].get("outcome", ended[0].get("state")) == "completed", ended


def test_agent_audio_gives_the_adversary_nothing(payment_call):
    from dtmfguard.testkit.adversary import count_recovered, recover_digits

    rec = payment_call["rec"]
    corr, lag = speech_match(rec, payment_call["speech"])
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
    speech, _ = read_audio(prompt(SPEECH))
    loud = np.tile(speech, 4).astype(np.int16)  # ~8 s of speech
    sf.write(tmp_path / "c.wav", loud, 8000, subtype="PCM_16")
    with RelayCall(tmp_path, relays=2, agent_args=["--calls", "2"], timeout=60) as call:
        c1 = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", "7", name="customer1", timeout=40)
        t_start = time.monotonic()
        assert c1.wait_for(lambda s: "CONFIRMED" in s, 20)
        setup_before = time.monotonic() - t_start  # process start to 200 OK
        carrier = None
        deadline = time.monotonic() + 15
        while carrier is None and time.monotonic() < deadline:
            for i in range(2):
                if call.ng({"command": "list"}, relay=i).get("calls"):
                    carrier = i
            time.sleep(0.1)
        assert carrier is not None
        time.sleep(2.0)
        call.relays[carrier].kill()
        t_kill = time.monotonic()
        c2 = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", "2", name="customer2", timeout=40)
        assert c2.wait_for(lambda s: "CONFIRMED" in s, 20), c2.output()[-2000:]
        setup_after = time.monotonic() - t_kill
        assert c2.wait(40) == 0, c2.output()[-2000:]
        c1.wait(40)
        call.agent.wait(20)
        survivor = 1 - carrier
        stats = call.ng({"command": "statistics"}, relay=survivor)["statistics"]
    assert stats["calls_total"] == 1  # the second call went to the survivor
    done2 = [e for e in c2.events() if e.get("event") == "done"][0]
    assert done2["status"] == 200, done2
    assert len(sorted((tmp_path / "agent").glob("call-*.wav"))) == 2
    first, second = call.recording(0), call.recording(1)
    # call 1: speech until the kill (~2.5 s in), then nothing: the dead relay passes no audio
    energy = [float(np.sqrt(np.mean(first[i:i + 4000].astype(np.float64) ** 2)))
              for i in range(0, first.size - 4000, 4000)]
    assert max(energy[:4]) > 300, energy
    killed_at = next(i for i in range(len(energy)) if i >= 4 and all(e < 10 for e in energy[i:]))
    assert killed_at <= 12, energy
    assert speech_match(second, speech[:8000])[0] > 0.6  # the survivor carries the new call's speech
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
    speech, _ = read_audio(prompt(SPEECH))
    x, spans = customer_wav(tmp_path, speech, PAN, 12)
    with RelayCall(tmp_path) as call:
        customer = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.3:.1f}",
                                 "--codec", "G722/16000")
        assert customer.wait(60) == 0
        assert call.agent.wait(15) == 0
    assert "customer codec G722" in call.relays[0].output()
    rec = call.recording()
    corr, lag = speech_match(rec, speech)
    # two resamplings (pjsua 8 -> 16 kHz, G.722 low band only at the relay) and G.722 coding: 0.47-0.6
    # measured; noise or silence would give ~0
    assert corr > 0.35, corr
    assert count_recovered(rec.astype(np.float64), spans, 8000, offset=lag) == 0


def test_hold_and_resume_through_kamailio_keeps_masking(tmp_path):
    """The customer holds and resumes (re-INVITEs through Kamailio: rtpengine_offer/answer on a known call);
    the keys typed after the resume are still masked, and the relay accepted every re-offer."""
    from dtmfguard.testkit.adversary import count_recovered

    speech, _ = read_audio(prompt(SPEECH))
    x, spans = customer_wav(tmp_path, speech, PAN, 13, before_s=3.0)  # the hold (at 1.0 s, for 1.0 s) is in those 3 s
    with RelayCall(tmp_path) as call:
        customer = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.3:.1f}",
                                 "--hold-at", "1.0", "--hold-s", "1.0")
        assert customer.wait(60) == 0
        assert call.agent.wait(15) == 0
        stats = call.ng({"command": "statistics"})["statistics"]
    assert any(e.get("event") == "resumed" for e in customer.events()), customer.output()[-1500:]
    assert stats["ng_errors"] == 0 and stats["ng_requests"] >= 6  # offer+answer, 2 re-offers+answers, delete
    rec = call.recording()
    corr, lag = speech_match(rec, speech)
    assert corr > 0.6, corr
    assert count_recovered(rec.astype(np.float64), spans, 8000, offset=lag) == 0


def test_srtp_call_through_kamailio_and_relay(tmp_path):
    """Both peers insist on SRTP (SDES): the relay decrypts the customer's stream with the customer's key,
    masks it and encrypts it for the agent with its own key; keys stay masked."""
    pytest.importorskip("pylibsrtp")
    from dtmfguard.testkit.adversary import count_recovered

    speech, _ = read_audio(prompt(SPEECH))
    x, spans = customer_wav(tmp_path, speech, PAN, 14)
    with RelayCall(tmp_path, agent_args=["--srtp", "mandatory"]) as call:
        customer = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.3:.1f}",
                                 "--srtp", "mandatory")
        assert customer.wait(60) == 0, customer.output()[-1500:]
        assert call.agent.wait(15) == 0
        stats = call.ng({"command": "statistics"})["statistics"]
    done = [e for e in customer.events() if e.get("event") == "done"][0]
    assert done["status"] == 200 and done["srtp"] is True, done
    assert stats["ng_errors"] == 0
    rec = call.recording()
    corr, lag = speech_match(rec, speech)
    assert corr > 0.6, corr  # decrypted, masked, re-encrypted, decrypted by the agent
    assert count_recovered(rec.astype(np.float64), spans, 8000, offset=lag) == 0
