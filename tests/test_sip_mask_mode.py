# SPDX-License-Identifier: GPL-2.0-or-later
"""``mask_mode = "payment"`` on a live call through ``dtmfguard serve`` (real pjsua2 peers on 127.0.0.1).

The documented choice of this mode: outside a payment the agent hears the customer's keys as they are
(an IVR menu choice, an extension); while a payment session is attached they are masked and captured;
when the payment ends, masking stops until the next payment.  The customer types a menu choice, then
(while the test starts a payment over the control API) a card, then another menu choice.  Checked on the
agent's recording with the adversarial decoder: both menu choices are named key by key (unmasked), no
key of the card is; the card was captured (three fields, payment completed); no output holds the PAN.
"""
from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.testkit.adversary import count_recovered
from dtmfguard.dsp.audio import read_audio
from dtmfguard.sip.bridge import Bridge
from dtmfguard.server.config import load_config
from dtmfguard.server.control import follow_feed
from dtmfguard.testkit.synth import keypresses

from _corpus_util import need_pjsua2, prompt
from sip_peers import SipCall, connected_call, keyed_audio, media_story
from dtmfguard.testkit.audio_match import speech_match
from test_sip_call import PAN, SPEECH
from test_sip_secure_mode import align_start
from test_sip_hold import AFTER
from test_sip_payment import TOKEN, _api

need_pjsua2("the B2BUA's Guard", module=True)  # a host without pjsua2 skips this module, naming it
from dtmfguard.sip.pj.b2bua import Guard  # noqa: E402

BEFORE, CARD, AFTER_KEYS = "2580", PAN + "#" + "1230" + "123", "1397"
PAYMENT_GAP_S = 3.0  # silence after the first menu keys: the test starts the payment in it


def _audio(path):
    first, _ = read_audio(prompt(SPEECH))
    thanks, _ = read_audio(prompt(AFTER))
    x, spans = keyed_audio(path, first, [("before", BEFORE, PAYMENT_GAP_S), ("card", CARD, 2.0),
                                         ("after", AFTER_KEYS, 0.5)], thanks, seed=3)
    return x, thanks.astype(np.int16), spans


class _Payment:
    """A payment session as the pipeline sees it: takes keys; ``finished`` once it is over."""

    def __init__(self):
        self.finished = False
        self.state = "collecting"
        self.keys = 0

    def feed(self, event):
        self.keys += event.end is not None


@pytest.mark.parametrize("wait_for_masker", [True, False])
def test_masking_stops_only_after_the_last_key_is_covered(wait_for_masker):
    """The payment ends while its last key still sounds (a gateway that answers at once): the guard keeps
    the session attached until the masker has covered that key; switching at once would let the rest of
    the tone through, and the decoder would name the key."""
    g = Guard(load_config(None, {"agent_uri": "sip:agent@127.0.0.1:5072", "mask_mode": "payment"}))
    pipeline = g._default_pipeline("c9")
    b = Bridge("c9", customer=None, pipeline=pipeline, state="connected", session=_Payment())
    pipeline.attach_session(b.session)
    keys, spans = keypresses("7", tone_ms=120, lead_ms=200, tail_ms=400, rng=np.random.default_rng(5))
    x = keys.astype(np.int16)
    out, detached_at = [], None
    for i in range(0, x.size - 159, 160):
        out.append(pipeline.process_customer_frame(x[i:i + 160]))
        if i >= spans[0].start + 480:  # 60 ms into the tone, long after its onset was masked
            b.session.finished, b.session.state = True, "completed"
            if wait_for_masker:
                g._end_payment_masking(b)
            elif pipeline.session is not None:
                pipeline.detach_session()
            if pipeline.session is None and detached_at is None:
                detached_at = i + 160
    y = np.concatenate(out).astype(np.float64)
    assert detached_at is not None and pipeline.session is None
    recovered = count_recovered(y, [(sp.digit, sp.start, sp.end) for sp in spans], 8000)
    if wait_for_masker:
        assert detached_at >= spans[0].end  # not while the key sounded
        assert recovered == 0
    else:
        assert recovered == 1  # the control: an eager switch leaks the key


def _media(ctl, call_id):
    (c,) = [c for c in _api(ctl, "GET", "/calls")[1]["calls"] if c["id"] == call_id]
    return c["media"]


def _frames_when(ctl, call_id, seconds, timeout=30.0):
    """Wait until the guard has processed ``seconds`` of the call's customer audio (20 ms frames)."""
    want, frames = int(seconds * 50), 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = _media(ctl, call_id)["frames"]
        if frames >= want:
            return frames
        time.sleep(0.02)
    raise AssertionError(f"the guard processed {frames} frames in {timeout} s, not {want}")


@pytest.mark.sip
@pytest.mark.slow
def test_payment_mode_masks_only_during_the_payment(tmp_path):
    x, thanks, spans = _audio(tmp_path / "c.wav")
    env = {"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_VAULT_KEY": "33" * 32,
           "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite")}
    feed: list = []
    with SipCall(tmp_path, serve=True, control=True, env=env, guard_args=["--mask-mode", "payment"]) as sip:
        ctl = sip.ctl
        customer = sip.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.3:.1f}",
                                "--tail-s", "1.0")
        call = connected_call(ctl, TOKEN)
        assert call["masking"] == "payment", call
        # the first menu keys end ~1.5 s before the card starts: start the payment half-way through the gap,
        # counted in the customer frames the guard has processed (its media clock), not on the test's clock
        before_end_s = spans["before"][-1][2] / 8000
        _frames_when(ctl, call["id"], before_end_s + PAYMENT_GAP_S / 2)
        status, body = _api(ctl, "POST", f"/calls/{call['id']}/payment", {"amount": 1250, "reference": "INV-7"})
        assert status == 201, body
        late = _media(ctl, call["id"])["frames"] - (before_end_s + PAYMENT_GAP_S) * 50
        assert late < 0, f"the payment started {late * 20:.0f} ms after the card's first key reached the guard"
        reader = threading.Thread(target=follow_feed, args=(ctl, call["id"], TOKEN, lambda k, d: feed.append(d)),
                                  daemon=True)
        reader.start()
        assert customer.wait(60) == 0
        reader.join(20)
    guard, agent, rc_guard = sip.guard, sip.agent, sip.rc_guard
    assert rc_guard == 0
    kinds = [e.get("type") for e in feed]
    story = media_story(guard.err_path.read_text())  # (failing: lost packets or a late clock, the guard's account)
    # the card was captured, the menu keys were not (a failure prints every event: pytest cuts a long list)
    assert kinds.count("field_complete") == 3, f"{[(e.get('type'), e.get('field'), e.get('outcome')) for e in feed]}" \
        f" {story}"
    ended = [e for e in feed if e.get("type") == "session_ended"]
    assert ended and ended[0].get("outcome") == "completed", ended
    rec, _ = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
    rec = rec.astype(np.float64)
    corr, lag = speech_match(rec, thanks)  # the prompt at the very end
    assert corr > 0.6, corr
    after = lag - (x.size - thanks.size)
    # on a loaded host the agent's adaptive jitter buffer shifts the recording by tens of milliseconds over the
    # call (measured: 45-130 ms between the first keys and the last prompt): each part is scored at its own
    # alignment, found on the speech next to it, and the card at every offset in between (an attacker's best)
    before = align_start(rec, x, spans["before"][0][1])
    heard = {"before": count_recovered(rec, spans["before"], 8000, offset=before),
             "after": count_recovered(rec, spans["after"], 8000, offset=after)}
    lo, hi = sorted((before, after))
    heard["card"] = max(count_recovered(rec, spans["card"], 8000, offset=o) for o in range(lo - 160, hi + 161, 40))
    # outside the payment every key is named from the agent's audio; during it, none
    assert heard == {"before": len(BEFORE), "card": 0, "after": len(AFTER_KEYS)}, (heard, story)
    log = guard.err_path.read_text()
    assert len(re.findall(r"payment completed: masking off until the next payment", log)) == 1, log[-2000:]

    text = "".join(json.dumps(e) for e in feed) + guard.output() + agent.output() + customer.output()
    assert PAN not in text and PAN[:6] not in text and PAN[-8:] not in text
