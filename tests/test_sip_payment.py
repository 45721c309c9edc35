# SPDX-License-Identifier: GPL-2.0-or-later
"""End to end through ``dtmfguard serve``: a real call, a payment started over the control API, the card
typed in-band by the customer, the masked agent feed read over SSE, the card tokenised by the vault."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.dsp.audio import read_audio
from dtmfguard.server.control import follow_feed, request as control_request
from dtmfguard.testkit.synth import keypresses

from _corpus_util import prompt
from sip_peers import SipCall, connected_call

pytestmark = [pytest.mark.sip, pytest.mark.slow]

PAN = "4111111111111111"
TOKEN = "e2e-token"


def _api(port, method, path, body=None):
    return control_request(port, method, path, TOKEN, body, timeout=10)


def test_payment_over_a_live_call(tmp_path):
    speech, _ = read_audio(prompt("agent-pass.wav"))
    keys, _ = keypresses(PAN + "#" + "1230" + "123", rng=np.random.default_rng(11))
    x = np.clip(np.concatenate([speech, np.zeros(4000), keys, np.zeros(8000)]), -32768, 32767).astype(np.int16)
    sf.write(tmp_path / "c.wav", x, 8000, subtype="PCM_16")
    env = {"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_VAULT_KEY": "22" * 32,
           "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite")}
    feed: list = []
    with SipCall(tmp_path, serve=True, control=True, env=env) as sip:
        ctl = sip.ctl
        customer = sip.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{x.size / 8000 + 0.5:.1f}")
        call_id = connected_call(ctl, TOKEN)["id"]
        status, body = _api(ctl, "POST", f"/calls/{call_id}/payment",
                            {"amount": 1999, "reference": "INV-42", "agent_id": "agent-7"})
        assert status == 201, body

        def read_feed():
            follow_feed(ctl, call_id, TOKEN, lambda kind, data: feed.append(data))

        reader = threading.Thread(target=read_feed, daemon=True)
        reader.start()
        assert customer.wait(60) == 0
        reader.join(20)
    guard, agent, rc_guard = sip.guard, sip.agent, sip.rc_guard
    assert rc_guard == 0
    events = list(feed)
    kinds = [e.get("type") for e in events]
    assert "session_started" in kinds and kinds.count("field_complete") == 3, kinds
    ended = [e for e in events if e.get("type") == "session_ended"]
    assert ended and ended[0]["outcome"] == "completed", ended
    text = "".join(json.dumps(e) for e in feed) + guard.output() + agent.output()
    assert PAN not in text and "411111" not in text
    from dtmfguard.testkit.adversary import recover_digits

    rec, _ = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
    got = recover_digits(rec.astype(np.float64), 8000)
    assert len(got) <= 1, got  # at most the speech false alarm the decoder also makes on the raw prompt
