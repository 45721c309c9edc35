# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP INFO application/dtmf (a bare key as the body) on a real call: answered 200, not pjsip's 500.

pjsua answers only application/dtmf-relay INFOs itself; the guard answers application/dtmf from its
transaction callback (dtmfguard.sip.pj.b2bua._answer_request).  Checked with real peers: every INFO gets
the right final answer (200 for a key on either content type, 400 for a body that is not a key, from
the guard as from pjsua), the keys reach the payment side exactly once, and no output holds a body.
"""
from __future__ import annotations

import hashlib

import pytest

from test_sip_call import PAN, _recovered_in_keys, run_call



@pytest.mark.needs_pjsua2
def test_pjsip_response_calls_are_found_in_this_wheel():
    from dtmfguard.sip.pj import b2bua

    calls = b2bua._pjsip()
    assert calls is not None and len(calls) == 4


@pytest.mark.needs_pjsua2
def test_without_the_pjsip_calls_nothing_is_sent_and_nothing_breaks(monkeypatch):
    """If a pjsua2 build does not export pjsip's symbols the INFO keeps pjsip's 500 (the key was taken)."""
    import pjsua2 as pj

    from dtmfguard.sip.pj import b2bua

    monkeypatch.setattr(b2bua, "_pjsip_calls", False)
    assert b2bua._answer_request(pj.SipTransaction(), pj.SipRxData(), 200) is False
    monkeypatch.setattr(b2bua, "_pjsip_calls", None)
    monkeypatch.setattr(b2bua.pj._pjsua2, "__file__", "/nonexistent/_pjsua2.so")
    assert b2bua._pjsip() is None and b2bua._pjsip_calls is False


@pytest.mark.needs_pjsua2
def test_null_transaction_pointers_are_not_used():
    import pjsua2 as pj

    from dtmfguard.sip.pj import b2bua

    assert b2bua._answer_request(pj.SipTransaction(), pj.SipRxData(), 200) is False  # pointers are None

#: (Content-Type, body, expected final answer), sent after --info "9" (dtmf-relay) and --info-dtmf "47".
#: The last is pjsua's own answer: its dtmf-relay parser takes the CR after "Signal=" as the key and
#: answers 200; the pipeline drops that key as a bad event (counted, not delivered).
EXTRA = [("application/dtmf", "x", 400), ("application/dtmf", "55", 400),
         ("application/dtmf; charset=us-ascii", "#", 200), ("application/dtmf-relay", "Signal=\r\nDuration=100", 200)]


@pytest.fixture(scope="module")
def call(tmp_path_factory):
    extra = []
    for ctype, body, _ in EXTRA:
        extra += ["--info-body", f"{ctype}|{body}"]
    return run_call(tmp_path_factory.mktemp("info"), rfc="", info="9", info_dtmf="47", customer_extra=extra,
                    pj_log_level=3)


@pytest.mark.sip
@pytest.mark.slow
def test_every_info_gets_its_final_answer(call):
    assert call["rc"] == (0, 0, 0), call["guard"].err_path.read_text()[-3000:]
    codes = [e["status"] for e in call["customer"].events() if e.get("event") == "info_response"]
    # dtmf-relay '9' (pjsua), application/dtmf '4' and '7' (the guard), then EXTRA in order
    assert codes == [200, 200, 200] + [code for _, _, code in EXTRA], codes
    assert "could not answer" not in call["guard"].output()


@pytest.mark.sip
@pytest.mark.slow
def test_keys_reach_the_payment_side_once(call):
    probe = call["probe"]
    assert probe["digits_sha256"] == hashlib.sha256((PAN + "9" + "47#").encode()).hexdigest(), probe
    assert probe["sources"] == {"inband": 16, "sip-info": 4}
    assert probe["pipelines"][0]["bad_events"] == 1  # pjsua's CR "key"


@pytest.mark.sip
@pytest.mark.slow
def test_info_keys_are_masked_and_never_logged(call):
    assert _recovered_in_keys(call) == 0
    text = call["guard"].output() + call["customer"].output() + call["agent"].output()
    assert "application/dtmf\r\n" not in text and "Content-Type: application/dtmf" not in text
    assert PAN not in text and "Signal=" not in text
    assert "ignored a SIP INFO body on the customer leg" in text  # the 400s say why, without the body
