# SPDX-License-Identifier: GPL-2.0-or-later
"""One call through the guard with real pjsua2 peers on 127.0.0.1 (separate processes).

The customer plays Asterisk speech, then a test card number as in-band key
presses, then RFC 4733 digits, then SIP INFO digits (application/dtmf-relay and
application/dtmf).  The agent answers and records what it hears.  Checked: the
agent hears the customer's speech (cross-correlation), neither the adversarial
decoder nor a detector recovers any digit from the agent's recording, the
payment side received exactly the typed digits (compared by hash: no process
prints them), the agent received no DTMF events, and no output holds the PAN.
Faults injected into the media path must leave the agent with silence.
"""
from __future__ import annotations

import json
import re
import threading

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.dsp.audio import read_audio
from dtmfguard.testkit.synth import keypresses

from dtmfguard.testkit.audio_match import speech_match
from _corpus_util import prompt
from sip_peers import SipCall, digits_hash_within_loss, done_event, keys_lost_bound, lost_packets, media_story

pytestmark = [pytest.mark.sip, pytest.mark.slow]

PAN = "4111111111111111"
SPEECH = "agent-pass.wav"  # an English prompt (asterisk-core-sounds-en-wav): see _corpus_util.prompt


def _customer_audio(path, digits=PAN, speech_after=True):
    speech, rate = read_audio(prompt(SPEECH))
    assert rate == 8000
    keys, spans = keypresses(digits, level_dbm0=-10, rng=np.random.default_rng(7))
    parts = [speech, np.zeros(1600), keys, np.zeros(1600)] + ([speech] if speech_after else [])
    x = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    sf.write(path, x, 8000, subtype="PCM_16")
    base = speech.size + 1600
    return x, speech.astype(np.int16), [(sp.digit, sp.start + base, sp.end + base) for sp in spans]


def run_call(tmp_path, *, rfc="123", info="45", info_dtmf="6", fault="none", fault_after=0,
             digits=PAN, speech_after=True, customer_extra=(), pj_log_level=0):
    wav = tmp_path / "customer.wav"
    x, speech, spans = _customer_audio(wav, digits, speech_after)
    with SipCall(tmp_path, guard_args=["--fault", fault, "--fault-after", str(fault_after),
                                       "--pj-log-level", str(pj_log_level)]) as sip:
        sip.customer("--play", str(wav), "--play-s", f"{len(x) / 8000 + 0.3:.2f}", "--rfc2833", rfc,
                     "--info", info, "--info-dtmf", info_dtmf, *customer_extra)
        sip.wait(60, 15)
    return {"customer": sip.customers[0], "agent": sip.agent, "guard": sip.guard, "rc": sip.rc,
            "probe": done_event(sip.guard), "recording": sip.recording(), "sent": x, "speech": speech,
            "spans": spans}


@pytest.fixture(scope="module")
def call(tmp_path_factory):
    # pjsip's own log on at the highest level a guard allows: its lines must not leak either
    return run_call(tmp_path_factory.mktemp("call"), pj_log_level=3)


def test_processes_exit_cleanly(call):
    assert call["rc"] == (0, 0, 0), call["guard"].err_path.read_text()[-3000:]


def test_customer_leg_negotiates_the_first_codec_by_default(call):
    assert done_event(call["customer"])["codec"] == "PCMU/8000"  # cf. test_g722_customer_leg


def test_agent_hears_the_customer_speech(call):
    similarity, lag = speech_match(call["recording"], call["speech"])
    # two G.711 codings and the masker's delay: 0.97-1.0 on loaded runs (one window over the whole prompt: 0.64-1.0)
    assert similarity > 0.6, (similarity, lag)


def _recovered_in_keys(r):
    """Key presses the adversarial decoder names correctly in the agent's recording (aligned by speech)."""
    from dtmfguard.testkit.adversary import count_recovered

    _, lag = speech_match(r["recording"], r["sent"])  # the prompt is in it twice: either copy could win alone
    return count_recovered(r["recording"].astype(np.float64), r["spans"], 8000, offset=lag)


def test_no_digit_recoverable_from_agent_audio(call):
    from dtmfguard.testkit.adversary import recover_digits
    from dtmfguard.dsp.detector import detect

    rec = call["recording"]
    assert detect(rec) == []
    assert _recovered_in_keys(call) == 0
    # the decoder's only hits are the speech false alarms it also makes on the raw prompt (a '1' per copy)
    assert len(recover_digits(rec.astype(np.float64), 8000)) <= 2


def test_payment_side_got_every_digit_once_from_all_three_paths(call):
    probe = call["probe"]
    expected = PAN + "123" + "45" + "6"
    # (failing, say where keys went missing: the count per path and what the guard's jitter buffer and clock saw)
    log = call["guard"].err_path.read_text()
    why = (probe["sources"], media_story(log))
    # every digit, once, in order; an in-band key may be missing only when the customer's packets were lost on
    # the way to the guard (its jitter buffer says how many: CI run 32, a loaded 2-core run, lost 20 and 4 keys
    # with them), never a signalled one (its events are repeated), never one added
    may_lose = keys_lost_bound(lost_packets(log))
    left_out = digits_hash_within_loss(probe["digits_sha256"], expected, probe["count"], may_lose)
    assert left_out is not None, why
    assert probe["sources"] == {"inband": 16 - left_out, "rfc4733": 3, "sip-info": 3}, why
    assert probe["pipelines"][0]["errors"] == 0


def test_agent_received_no_dtmf_events(call):
    done = [e for e in call["agent"].events() if e.get("event") == "done"][0]
    assert done["calls"][0]["dtmf_events"] == 0 and done["calls"][0]["dtmf_digits"] == 0


def test_no_output_holds_the_card_number(call):
    for proc in (call["guard"], call["agent"]):
        text = proc.output()
        assert PAN not in text and PAN[-8:] not in text and "Signal=" not in text


def test_media_clock_thread_scheduling_is_reported(call):
    from dtmfguard.server import sched

    text = call["guard"].output()
    if sched.can_realtime():  # same permissions as the guard process
        assert "media clock thread" in text and "runs under SCHED_RR" in text
    else:
        assert "stays under the normal scheduler" in text


def test_signalled_digits_are_masked_not_silenced_out_of_band(call):
    """While RFC 4733 / INFO digits are pressed the agent hears the mask (energy), not the tones."""
    rec = call["recording"].astype(np.float64)
    tail = rec[-3 * 8000:]  # the signalled digits come after the played audio
    assert np.max(np.abs(tail)) > 500  # mask audible (a flat tone), cf. silence between
    from dtmfguard.testkit.adversary import recover_digits

    assert recover_digits(tail, 8000) == []


@pytest.mark.parametrize("fault", ["detector", "masker"])
def test_media_fault_fails_closed(tmp_path, fault):
    r = run_call(tmp_path, rfc="", info="", info_dtmf="", fault=fault, fault_after=50, speech_after=False)
    rec = r["recording"].astype(np.float64)
    assert _recovered_in_keys(r) == 0
    # after the fault (50 frames into the pipeline: 1 s after the bridge was wired, which a loaded host can
    # delay by some 100 ms against the agent's recording) the agent hears silence; the keys came 3.3 s into
    # the customer's audio, which starts no earlier in the recording (the agent answered first)
    start = int(2.5 * 8000)
    assert np.max(np.abs(rec[start:])) < 64, np.max(np.abs(rec[start:]))
    assert r["probe"]["pipelines"][0]["errors"] > 100
    assert r["rc"][2] == 0  # the worker survived
    text = r["guard"].output()
    assert "RuntimeError" in text and "injected fault" not in text and PAN not in text


def test_overloaded_pipeline_never_leaks_tones(tmp_path):
    r = run_call(tmp_path, rfc="", info="", info_dtmf="", fault="slow", speech_after=False)
    assert _recovered_in_keys(r) == 0
    assert r["rc"][2] == 0


def test_g722_customer_leg(tmp_path):
    """A wideband (16 kHz G.722) customer pays by card: the 8 kHz bridge resamples, the keys are found (the
    payment session gets the card) and masked (the agent hears neither key nor digit).

    G.722 is ADPCM: a frame pjmedia never decodes in order (a packet lost, or late for the jitter buffer, as a
    loaded host makes them) leaves the decoder's predictors out of step with the sender's for some 60-80 ms, and
    a 70 ms key inside that is lost, as on any network that loses a packet (on a loaded 2-core run: 8 frames in
    15 s, both of two entries hit).  So the customer does what a caller does when the card is refused (a key
    missing: the length or the Luhn check fails): types it again, up to the session's three attempts.  Still
    checked: the card found whole, and each refused entry explained by frames the jitter buffer reports lost,
    late or discarded (keys refused on a clean line are a detection bug)."""
    from dtmfguard.capture.policy import PaymentPolicy
    from dtmfguard.testkit.adversary import count_recovered
    from dtmfguard.server.control import follow_feed, request as control_request
    from sip_peers import connected_call

    token = "g722-token"
    attempts = PaymentPolicy().max_attempts
    speech, _ = read_audio(prompt(SPEECH))
    pause = np.zeros(2 * 8000)  # the caller hears the card refused, then types it again
    parts, spans = [speech, np.zeros(1600)], []
    for k in range(attempts):
        keys, key_spans = keypresses(PAN + "#", level_dbm0=-10, rng=np.random.default_rng(7 + k))
        base = sum(part.size for part in parts)
        spans += [(sp.digit, sp.start + base, sp.end + base) for sp in key_spans]
        parts += [keys, pause]
    parts += [speech]
    x = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    sf.write(tmp_path / "c.wav", x, 8000, subtype="PCM_16")
    env = {"DTMFGUARD_API_TOKEN": token, "DTMFGUARD_VAULT_KEY": "44" * 32,
           "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite")}
    feed: list = []
    with SipCall(tmp_path, serve=True, control=True, env=env) as sip:
        customer = sip.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.5:.1f}",
                                "--codec", "G722/16000")
        call_id = connected_call(sip.ctl, token)["id"]
        status, body = control_request(sip.ctl, "POST", f"/calls/{call_id}/payment", token,
                                       {"amount": 1999, "reference": "INV-722", "fields": ["card_number"]},
                                       timeout=10)
        assert status == 201, body
        reader = threading.Thread(target=follow_feed, args=(sip.ctl, call_id, token, lambda k, d: feed.append(d)),
                                  daemon=True)
        reader.start()
        assert customer.wait(60) == 0
        reader.join(20)
    assert sip.rc_guard == 0, sip.guard.output()[-3000:]
    assert done_event(customer)["codec"] == "G722/16000"  # what the customer leg negotiated
    log = sip.guard.err_path.read_text()
    jb = re.search(r"customer stream's jitter buffer: .*empty (\d+), lost (\d+), discard (\d+)", log)
    assert jb, log[-3000:]
    out_of_order = sum(int(n) for n in jb.groups())  # frames the decoder did not get in the sender's order
    cards = [e for e in feed if e.get("type") == "field_complete" and e.get("field") == "card_number"]
    valid = [e for e in cards if e.get("valid")]
    print(f"G.722 card entries needed: {len(cards)}; jitter buffer: {jb.group(0).split(': ', 1)[1]}")
    # the card in the first entry, or (keys lost to the decoder) refused and taken from a later one
    assert len(valid) == 1 and cards[-1] is valid[0], [(e.get("valid"), e.get("reason")) for e in cards]
    assert (valid[0]["brand"], valid[0]["last4"]) == ("visa", PAN[-4:]), valid
    assert len(cards) - 1 <= out_of_order, (len(cards), jb.group(0))  # no entry refused on a clean line
    ended = [e for e in feed if e.get("type") == "session_ended"]
    assert ended and ended[0]["outcome"] == "completed", ended
    rec = sip.recording()
    similarity, _ = speech_match(rec, speech)
    assert similarity > 0.6, similarity  # the agent hears the wideband customer
    # aligned on all the customer sent (the prompt is in it twice: either copy could win alone)
    assert count_recovered(rec.astype(np.float64), spans, 8000, offset=speech_match(rec, x)[1]) == 0
    text = "".join(json.dumps(e) for e in feed) + sip.guard.output() + sip.agent.output()
    assert PAN not in text and PAN[-8:] not in text


def test_hold_and_resume_keeps_masking(tmp_path):
    """The customer puts the call on hold during the first prompt and resumes: the bridge is re-wired,
    the key presses after the resume are still masked and still reach the payment side."""
    r = run_call(tmp_path, rfc="", info="", info_dtmf="", customer_extra=["--hold-at", "1.0", "--hold-s", "1.0"])
    assert r["rc"] == (0, 0, 0)
    assert any(e.get("event") == "resumed" and e.get("media") for e in r["customer"].events())
    # every key once, in order; as in test_payment_side_got_every_digit_once_from_all_three_paths, a key may be
    # missing only when the guard's jitter buffer reports the customer's packets lost on the way (two clean-clone
    # runs on the loaded 2-core host gave 15 of the 16 keys, with no account of why: it is printed now)
    log = r["guard"].err_path.read_text()
    left_out = digits_hash_within_loss(r["probe"]["digits_sha256"], PAN, r["probe"]["count"],
                                       keys_lost_bound(lost_packets(log)))
    assert left_out is not None, (r["probe"]["count"], media_story(log))
    from dtmfguard.testkit.adversary import count_recovered

    # alignment from the second half of the audio (after the resume)
    rec = r["recording"]
    assert count_recovered(rec.astype(np.float64), r["spans"], 8000,
                           offset=speech_match(rec, r["sent"])[1]) == 0
    from dtmfguard.dsp.detector import detect

    assert detect(rec) == []
