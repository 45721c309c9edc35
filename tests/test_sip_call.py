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

import hashlib

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.dsp.audio import read_audio
from dtmfguard.testkit.synth import keypresses

from _corpus_util import prompt
from sip_peers import SipCall, done_event

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


def _best_correlation(recording, ref, pieces=4, slack_ms=80.0):
    """``(similarity, lag)``: where ``ref`` stands in ``recording`` (the cross-correlation peak) and how alike
    they are there: the median, over ``pieces`` parts of ``ref``, of each part's normalised correlation at its
    own best alignment within ``slack_ms`` of that lag.  A jitter-buffer jump or a lost packet on a loaded
    host shifts the audio after it by some milliseconds without making it unheard; silence, the mask or
    other audio stays far below."""
    y = recording.astype(np.float64)
    r = ref.astype(np.float64)
    if y.size < r.size:
        return 0.0, 0
    n = 1 << int(np.ceil(np.log2(y.size + r.size)))
    c = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(r, n)), n)[: y.size - r.size + 1]
    lag = int(np.argmax(c))
    size, slack = r.size // pieces, int(slack_ms * 8)
    sims = []
    for k in range(pieces):
        part = r[k * size:(k + 1) * size]
        lo = max(0, lag + k * size - slack)
        hi = min(y.size - part.size, lag + k * size + slack)
        if hi < lo:
            sims.append(0.0)
            continue
        window = y[lo: hi + part.size]
        dots = np.correlate(window, part, "valid")
        energy = np.convolve(window ** 2, np.ones(part.size), "valid")
        sims.append(float(np.max(dots / np.sqrt(energy * np.dot(part, part) + 1e-9))))
    return float(np.median(sims)), lag


@pytest.fixture(scope="module")
def call(tmp_path_factory):
    # pjsip's own log on at the highest level a guard allows: its lines must not leak either
    return run_call(tmp_path_factory.mktemp("call"), pj_log_level=3)


def test_processes_exit_cleanly(call):
    assert call["rc"] == (0, 0, 0), call["guard"].err_path.read_text()[-3000:]


def test_customer_leg_negotiates_the_first_codec_by_default(call):
    assert done_event(call["customer"])["codec"] == "PCMU/8000"  # cf. test_g722_customer_leg


def test_agent_hears_the_customer_speech(call):
    corr, lag = _best_correlation(call["recording"], call["speech"])
    # two G.711 codings and the masker's delay: measured ~0.84
    assert corr > 0.6, (corr, lag)


def _recovered_in_keys(r):
    """Key presses the adversarial decoder names correctly in the agent's recording (aligned by speech)."""
    from dtmfguard.testkit.adversary import count_recovered

    _, lag = _best_correlation(r["recording"], r["speech"])
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
    assert probe["digits_sha256"] == hashlib.sha256(expected.encode()).hexdigest(), probe
    assert probe["sources"] == {"inband": 16, "rfc4733": 3, "sip-info": 3}
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
    """A wideband (16 kHz G.722) customer: the 8 kHz bridge resamples, digits are still found and masked."""
    r = run_call(tmp_path, rfc="", info="", info_dtmf="", customer_extra=["--codec", "G722/16000"])
    assert r["rc"] == (0, 0, 0)
    assert r["probe"]["digits_sha256"] == hashlib.sha256(PAN.encode()).hexdigest()
    assert done_event(r["customer"])["codec"] == "G722/16000"  # what the customer leg negotiated
    assert _recovered_in_keys(r) == 0
    assert _best_correlation(r["recording"], r["speech"])[0] > 0.5


def test_hold_and_resume_keeps_masking(tmp_path):
    """The customer puts the call on hold during the first prompt and resumes: the bridge is re-wired,
    the key presses after the resume are still masked and still reach the payment side."""
    r = run_call(tmp_path, rfc="", info="", info_dtmf="", customer_extra=["--hold-at", "1.0", "--hold-s", "1.0"])
    assert r["rc"] == (0, 0, 0)
    assert any(e.get("event") == "resumed" and e.get("media") for e in r["customer"].events())
    assert r["probe"]["digits_sha256"] == hashlib.sha256(PAN.encode()).hexdigest(), r["probe"]
    from dtmfguard.testkit.adversary import count_recovered

    # alignment from the second half of the audio (after the resume)
    rec = r["recording"]
    assert count_recovered(rec.astype(np.float64), r["spans"], 8000,
                           offset=_best_correlation(rec, r["speech"])[1]) == 0
    from dtmfguard.dsp.detector import detect

    assert detect(rec) == []
