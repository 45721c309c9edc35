# SPDX-License-Identifier: GPL-2.0-or-later
"""Relay mode with SIP peers nobody here wrote: Kamailio (Debian) as the proxy, `dtmfguard relay` as its media
element over rtpengine's ng protocol, and baresip or sipp (Debian) on one side of the call.

* baresip as the customer (its own SDP, its own RTP and RFC 4733 sender, audio from a WAV): a payment over
  the control API takes the card and expiry typed in-band and the CVV sent as RFC 4733 events by baresip;
  the pjsua2 agent's recording gives the adversarial decoder nothing and carries the speech, the agent sees
  no DTMF event, and no output holds the card number.
* sipp as the agent (tests/sipp/uas_echo.xml, echoing RTP): the customer hears its own audio back through
  the relay twice (masked on the way to the agent, passed untouched on the way back): speech intact, no
  in-band key nameable (the customer also sends RFC 4733 events, which the relay consumes).
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
from dtmfguard.testkit.audio_match import piece_scores, speech_match

from _corpus_util import prompt
from sip_peers import SippUas, connected_call, free_port, keyed_audio, rtp_base
from sip_peers.kamailio import RelayCall

PAN = "4111111111111111"
TOKEN = "relay-peers-token"
SPEECH = "agent-pass.wav"  # an English prompt (asterisk-core-sounds-en-wav): see _corpus_util.prompt

pytestmark = [pytest.mark.sip, pytest.mark.slow, pytest.mark.needs_program("kamailio")]


def _feed_has(feed: list, kind: str, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for e in feed if e.get("type") == kind) >= count:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.needs_program("baresip", "baresip-core")
def test_baresip_customer_pays_through_kamailio_and_the_relay(tmp_path):
    from dtmfguard.testkit.adversary import count_recovered, recover_digits
    from sip_peers.baresip import Baresip, available

    if not available():
        pytest.skip("baresip's ctrl_tcp module is missing (package baresip-core)")
    speech, _ = read_audio(prompt(SPEECH))
    # 1 s of silence (the media path of a new call settles: the agent's jitter buffer, the relay's first
    # packets), speech, 3 s of silence (time to start the payment), the card and expiry in-band, speech (cut by
    # the hang-up, mostly), then silence long enough for the CVV baresip sends as events (aufile stops the
    # source at the file's end)
    x, parts = keyed_audio(tmp_path / "c0.wav", np.concatenate([np.zeros(8000), speech, np.zeros(3 * 8000)]),
                           [("keys", PAN + "#" + "1230", 0.5)], speech, seed=11)
    spans = parts["keys"]
    wav = tmp_path / "c.wav"
    sf.write(wav, np.concatenate([x, np.zeros(20 * 8000, np.int16)]), 8000, subtype="PCM_16")
    env = {"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_VAULT_KEY": "44" * 32,
           "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite")}
    feed: list = []
    customer = None
    with RelayCall(tmp_path, control=True, env=env) as call:
        try:
            customer = Baresip(tmp_path, "baresip-customer", free_port(span=2), free_port(), rtp_base(), str(wav),
                               user="+441632960002", auto_answer=False, display="Carol Baresip")
            customer.command("dial", f"sip:agent@127.0.0.1:{call.front}")
            assert customer.wait_for("CALL_ESTABLISHED", 20), customer.output()[-2000:]
            live = connected_call(call.ctl, TOKEN)
            status, started = control_request(call.ctl, "POST", f"/calls/{live['id']}/payment", TOKEN,
                                              {"amount": 2599, "reference": "INV-9", "agent_id": "agent-2"})
            assert status == 201, started
            reader = threading.Thread(target=follow_feed,
                                      args=(call.ctl, live["id"], TOKEN, lambda k, d: feed.append(d)), daemon=True)
            reader.start()
            # the card and the expiry arrive in-band from baresip's audio; then baresip sends the CVV as events
            told = lambda: [(e.get("type"), e.get("field")) for e in feed]  # noqa: E731
            assert _feed_has(feed, "field_complete", 2, x.size / 8000 + 15), (told(), call.relays[0].output()[-3000:])
            for key in "123":
                customer.command("sndcode", key)
                time.sleep(0.3)  # the customer's pace between keys (the stimulus, not a synchronisation)
            assert _feed_has(feed, "session_ended", 1, 15), (told(), call.relays[0].output()[-3000:])
            time.sleep(0.5)
            customer.command("hangup")
            assert call.agent.wait(20) == 0, call.agent.output()[-2000:]
            reader.join(10)
            stats = call.ng({"command": "statistics"})["statistics"]
            relay_tail = call.relays[0].output()[-3000:]  # for a failure below (a key lost on a loaded host)
        finally:
            if customer is not None:
                customer.stop()
    sent = [line for line in customer.output().splitlines() if "send DTMF digit:" in line]
    assert len(sent) == 3, sent  # baresip sent the CVV as RFC 4733 events
    assert [e.get("type") for e in feed].count("field_complete") == 3, feed
    ended = [e for e in feed if e.get("type") == "session_ended"][0]
    assert ended.get("outcome", ended.get("state")) == "completed", (ended, relay_tail)
    assert stats["calls_total"] == 1 and stats["tick_errors"] == 0
    # the agent: no key as an event, none nameable in its audio, the customer's speech heard
    done = [e for e in call.agent.events() if e.get("event") == "done"][0]
    assert done["calls"][0]["dtmf_events"] == 0 and done["calls"][0]["dtmf_digits"] == 0
    rec = call.recording()
    corr, lag = speech_match(rec, speech)
    # (failing: each 200 ms piece's correlation and shift, and the relay's counters: late ticks, losses)
    assert corr > 0.6, (corr, [(round(c, 2), sh) for _, _, c, sh in piece_scores(rec, speech)[1]], stats)
    assert count_recovered(rec.astype(np.float64), spans, 8000, offset=lag) == 0
    assert len(recover_digits(rec.astype(np.float64), 8000)) <= 2  # speech false alarms, as on the raw prompt
    text = call.output() + customer.output() + "".join(json.dumps(e) for e in feed)
    assert PAN not in text and PAN[-8:] not in text and "411111" not in text


def test_sipp_agent_echo_through_kamailio_and_the_relay(tmp_path):
    from dtmfguard.testkit.adversary import count_recovered

    speech, _ = read_audio(prompt(SPEECH))
    x, parts = keyed_audio(tmp_path / "c.wav", np.concatenate([speech, np.zeros(4000)]),
                           [("keys", "5454545454545454", 0.5)], speech, seed=12)
    spans = parts["keys"]
    with RelayCall(tmp_path, agent=False) as call, \
            SippUas(tmp_path, "uas_echo.xml", call.aport, "-rtp_echo", timeout_s=60) as sipp:
        customer = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.5:.1f}",
                                 "--record", str(tmp_path / "heard.wav"), "--rfc2833", "987", "--tail-s", "1.0")
        rc_customer = customer.wait(60)
        out = sipp.finish(30)
        deadline = time.monotonic() + 10
        while True:  # Kamailio's delete for the BYE may reach the relay just after sipp's exit
            stats = call.ng({"command": "statistics"})["statistics"]
            if stats["active_calls"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert rc_customer == 0, (customer.output()[-3000:], out[-3000:], call.relays[0].output()[-3000:])
    assert sipp.returncode == 0, out[-3000:]
    assert stats["calls_total"] == 1 and stats["tick_errors"] == 0 and stats["active_calls"] == 0
    heard, rate = sf.read(tmp_path / "heard.wav", dtype="int16")
    assert rate == 8000
    corr, lag = speech_match(heard, speech)
    assert corr > 0.6, corr  # customer -> relay -> sipp -> relay -> customer: the speech survives both ways
    assert count_recovered(x.astype(np.float64), spans, 8000) >= len(spans) - 1  # the decoder names raw keys
    assert count_recovered(heard.astype(np.float64), spans, 8000, offset=lag) == 0


@pytest.mark.parametrize("form", ["body", "header"])
def test_the_agent_sides_secure_info_travels_through_kamailio_to_the_relay(tmp_path, form):
    """mask_mode "payment" without a payment: the agent side (the pjsua2 agent standing in for a PBX or CTI)
    switches secure mode on and off again with SIP INFO (application/x-dtmfguard-secure, or the
    X-Dtmfguard-Secure header); Kamailio forks it to the relay, which masks the customer meanwhile.  Keys
    before and after are heard (an IVR behind works), the keys in between are not nameable."""
    from dtmfguard.testkit.adversary import recover_digits
    from dtmfguard.testkit.synth import keypresses

    gap = np.zeros(8000 * 3, np.int16)
    parts = [keypresses(k, rng=np.random.default_rng(20 + i))[0] for i, k in enumerate(("12", "34", "56"))]
    x = np.concatenate([gap[:8000], parts[0], gap, parts[1], gap, parts[2], gap[:8000]]).astype(np.int16)
    sf.write(tmp_path / "c.wav", x, 8000, subtype="PCM_16")
    # the switches in the middle of the gaps (the agent's media starts with the customer's, within ~0.2 s)
    on_at = (8000 + parts[0].size + gap.size / 2) / 8000
    off_at = on_at + (parts[1].size + gap.size) / 8000
    agent_args = ["--secure-info", f"on@{on_at:.2f},off@{off_at:.2f}"] + (["--secure-header"] if form == "header" else [])
    with RelayCall(tmp_path, relay_args=["--mask-mode", "payment"], agent_args=agent_args) as call:
        customer = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.5:.1f}")
        assert customer.wait(60) == 0, customer.output()[-3000:]
        assert call.agent.wait(20) == 0, call.agent.output()[-3000:]
    sent = [e for e in call.agent.events() if e.get("event") == "secure_info"]
    assert [e["value"] for e in sent] == ["on", "off"], call.agent.output()[-3000:]
    relay_log = call.relays[0].output()
    assert relay_log.count("secure mode on (agent-info)") == 1 and relay_log.count("secure mode off (agent-info)") == 1
    assert "".join(d for d, _ in recover_digits(x.astype(np.float64))) == "123456"
    heard = recover_digits(call.recording().astype(np.float64))
    # per part of the customer's audio (aligned on the first key heard): "12" heard, nothing of "34", "56" heard,
    # nothing between; a clear key may also be named as a neighbour for a window (CI run 38, a loaded run: "5" and
    # "3" named 40 ms inside the clear "2", likely a frame the agent peer's audio path made up; not confirmed, its
    # logs were gone), never the secure part
    starts = np.cumsum([8000, parts[0].size + gap.size, parts[1].size + gap.size])
    lag = next((t for d, t in heard if d == "1"), None)
    assert lag is not None, (heard, relay_log[-3000:])
    lag -= int(starts[0]) + int(np.argmax(np.abs(parts[0]) > 0))
    got = ["".join(d for d, t in heard if start + lag - 2400 <= t < start + lag + part.size + 2400)
           for start, part in zip(starts, parts)]
    assert sum(map(len, got)) == len(heard), (heard, lag, relay_log[-3000:])
    assert "12" in "".join(c for c in got[0] if c in "12") and got[1] == "" and "56" in "".join(
        c for c in got[2] if c in "56"), (got, heard, relay_log[-3000:])


def test_secure_mode_relay_gives_the_ivr_behind_it_each_key_once(tmp_path):
    """`dtmfguard relay --mask-mode secure` (serve's default mode): outside a payment each customer key —
    in-band or RFC 4733 — reaches the agent side (an IVR) once, as an RFC 4733 event, while the audio the
    agent hears carries no nameable key."""
    from dtmfguard.testkit.adversary import count_recovered
    from sip_peers import keys_of

    speech, _ = read_audio(prompt(SPEECH))
    x, parts = keyed_audio(tmp_path / "c.wav", np.concatenate([speech, np.zeros(4000)]), [("menu", "12", 1.0)],
                       np.zeros(4000), seed=13)
    with RelayCall(tmp_path, relay_args=["--mask-mode", "secure"]) as call:
        customer = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.5:.1f}",
                                 "--rfc2833", "34", "--tail-s", "1.5")
        assert customer.wait(60) == 0, customer.output()[-3000:]
        assert call.agent.wait(20) == 0, call.agent.output()[-3000:]
    got = keys_of(call.agent)
    assert got == "1234", (got, call.relays[0].output()[-3000:])
    rec = call.recording()
    corr, lag = speech_match(rec, speech)
    assert corr > 0.6, corr
    assert count_recovered(x.astype(np.float64), parts["menu"], 8000) == 2  # the raw keys are nameable
    assert count_recovered(rec.astype(np.float64), parts["menu"], 8000, offset=lag) == 0
