# SPDX-License-Identifier: GPL-2.0-or-later
"""Caller identity on the agent leg: dtmfguard.sip.identity (text only), then live calls with pjsua2 peers."""
from __future__ import annotations

import pytest

from dtmfguard.server.config import ConfigError, load_config
from dtmfguard.sip.identity import agent_leg_identity, parse_identity

from sip_peers import SipCall, invite_headers, response_headers

INVITE = ("INVITE sip:guard@10.0.0.10:5070 SIP/2.0\r\n"
          "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
          'From: "Alice Smith" <sip:+442071234567@carrier.example;user=phone>;tag=abc\r\n'
          "To: <sip:guard@10.0.0.10>\r\n"
          "Call-ID: 1@10.0.0.1\r\nCSeq: 1 INVITE\r\n"
          "P-Asserted-Identity: \"Alice Smith\" <sip:+442071234567@carrier.example>\r\n"
          "P-Asserted-Identity: <tel:+442071234567>\r\n"
          "Diversion: <sip:+448001234@carrier.example>;reason=unconditional\r\n"
          "History-Info: <sip:sales@pbx.example?Reason=SIP%3Bcause%3D302>;index=1\r\n"
          "User-to-User: 56a390f3d2b7310023a2;encoding=hex;purpose=isdn-uui\r\n"
          "X-Queue: billing\r\n"
          "X-Secret-Internal: do-not-copy\r\n"
          "Content-Length: 0\r\n\r\n")


def test_pass_keeps_the_callers_name_number_and_asserted_identity():
    local, headers = agent_leg_identity(INVITE, guard_host="10.0.0.10:5070",
                                        copy=("Diversion", "History-Info", "User-to-User"), copy_x=("X-Queue",))
    assert local == '"Alice Smith" <sip:+442071234567@10.0.0.10:5070>'
    names = [n for n, _ in headers]
    assert names == ["P-Asserted-Identity", "P-Asserted-Identity", "Diversion", "History-Info", "User-to-User",
                     "X-Queue"]
    assert ("X-Queue", "billing") in headers and not any(n == "X-Secret-Internal" for n in names)


def test_rewrite_and_anonymise():
    local, headers = agent_leg_identity(INVITE, mode="rewrite", guard_host="g:5070", user="+448000000",
                                        display="Contact Centre")
    assert local == '"Contact Centre" <sip:+448000000@g:5070>'
    assert headers == [("P-Asserted-Identity", local)]
    local, headers = agent_leg_identity(INVITE, mode="anonymise", copy=("Diversion",))
    assert local == '"Anonymous" <sip:anonymous@anonymous.invalid>'
    assert headers[0] == ("Privacy", "id") and all(n != "P-Asserted-Identity" for n, _ in headers)
    assert "+442071234567" not in local + repr(headers)


@pytest.mark.parametrize("from_value, expected", [
    ('"Bob \\"the\\" <Boss>" <sip:bob@x>;tag=1', '"Bob the Boss" <sip:bob@g>'),  # quotes, <> dropped
    ("Carol <sip:+4412@x>;tag=2", '"Carol" <sip:+4412@g>'),
    ("sip:dave@x;tag=3", "<sip:dave@g>"),
    ("<sip:x>;tag=4", ""),  # no user part: the guard's own From
    ('"Eve" <sip:ev il@x>;tag=5', '"Eve" <sip:guard@g>'),  # unusable user: the guard's user, her name
    ("<tel:+4420>;tag=6", ""),
    ("garbage", ""),
])
def test_hostile_or_odd_from_values_never_reach_pjsip_unchecked(from_value, expected):
    invite = INVITE.replace('"Alice Smith" <sip:+442071234567@carrier.example;user=phone>;tag=abc', from_value)
    local, _ = agent_leg_identity(invite, guard_host="g")
    assert local == expected


def test_folded_headers_are_joined_and_long_ones_dropped():
    invite = INVITE.replace("X-Queue: billing\r\n", "X-Queue: bill\r\n  ing\r\nX-Long: " + "a" * 2000 + "\r\n")
    ident = parse_identity(invite)
    assert ident.values("X-Queue") == ["bill ing"] and ident.values("X-Long") == []


def test_config_validation(tmp_path):
    def load(text):
        f = tmp_path / "g.toml"
        f.write_text('[agent]\nuri = "sip:a@b"\n' + text)
        return load_config(str(f))

    cfg = load('[identity]\nmode = "rewrite"\nuser = "+448000"\ndisplay = "CC"\nx_headers = ["X-Queue"]\n')
    assert cfg.identity == "rewrite" and cfg.copy_x_headers == ("X-Queue",)
    for text, msg in (('[identity]\nmode = "hide"\n', "identity.mode"),
                      ('[identity]\nmode = "rewrite"\n', "identity.user"),
                      ('[identity]\nx_headers = ["Via"]\n', "cannot be copied"),
                      ('[identity]\nheaders = ["Bad Name"]\n', "SIP header names"),
                      ('[identity]\ndisplay = "a\\"b"\n', "identity.display"),
                      ('[secure]\ncard_run_action = "block"\n', "card_run_action"),
                      ('[secure]\ncard_run_pattern = "("\n', "card_run_pattern"),
                      ('[secure]\nrelay_method = "inband"\n', "relay_method")):
        with pytest.raises(ConfigError, match=msg):
            load(text)


# -- live: customer -> guard -> agent, pjsua2 peers ------------------------------------------------------------
def _live(tmp_path, customer_args=(), guard_args=(), agent_args=()):
    """One short call through ``dtmfguard serve``; the agent's view of the INVITE and the customer peer."""
    with SipCall(tmp_path, serve=True, timeout=30, record=False, guard_args=guard_args,
                 agent_args=["--hangup-after", "0.5", *agent_args]) as call:
        customer = call.customer("--play-s", "2", *customer_args)
        call.wait(30, 15)
    assert call.rc_guard == 0
    invites = invite_headers(call.agent)
    assert len(invites) == 1, call.agent.output()[-2000:]
    return invites[0], customer


def _live_identity(tmp_path, identity_toml: str, customer_args=()):
    (tmp_path / "guard.toml").write_text('[media]\nmask_mode = "secure"\n' + identity_toml)
    return _live(tmp_path, customer_args, guard_args=["--config", str(tmp_path / "guard.toml")])[0]


CALLER = ["--from-user", "+442071234567", "--from-display", "Alice Smith",
          "--header", "P-Asserted-Identity: \"Alice Smith\" <sip:+442071234567@carrier.example>",
          "--header", "Diversion: <sip:+448001234@carrier.example>;reason=unconditional",
          "--header", "History-Info: <sip:sales@pbx.example>;index=1",
          "--header", "User-to-User: 56a390f3d2b7310023a2;encoding=hex",
          "--header", "X-Queue: billing", "--header", "X-Internal: not-for-agents"]


@pytest.mark.sip
@pytest.mark.slow
def test_agent_phone_sees_the_caller(tmp_path):
    h = _live_identity(tmp_path, '[identity]\nmode = "pass"\nx_headers = ["X-Queue"]\n', CALLER)
    assert h["from"][0].startswith('"Alice Smith" <sip:+442071234567@'), h
    assert h["p-asserted-identity"] == ['"Alice Smith" <sip:+442071234567@carrier.example>'], h
    assert h["diversion"] == ["<sip:+448001234@carrier.example>;reason=unconditional"]
    assert h["history-info"] == ["<sip:sales@pbx.example>;index=1"]
    assert h["user-to-user"] == ["56a390f3d2b7310023a2;encoding=hex"]
    assert h["x-queue"] == ["billing"] and "x-internal" not in h
    assert len(h["x-dtmfguard-call"]) == 1  # the guard's correlation header stays
    # session timers (RFC 4028) are offered on the agent leg, as on every guard leg
    assert int(h["session-expires"][0].split(";")[0]) >= 90, h


@pytest.mark.sip
@pytest.mark.slow
def test_agent_phone_sees_an_anonymised_caller(tmp_path):
    h = _live_identity(tmp_path, '[identity]\nmode = "anonymise"\n', CALLER)
    assert h["from"][0].startswith('"Anonymous" <sip:anonymous@anonymous.invalid>'), h
    assert h["privacy"] == ["id"] and "p-asserted-identity" not in h
    assert "+442071234567" not in repr(h)


@pytest.mark.sip
@pytest.mark.slow
def test_the_customer_sees_the_agent_sides_identity(tmp_path):
    """Reverse direction: the agent side's P-Asserted-Identity (a PBX naming the agent) reaches the customer in
    the guard's 180 and 200."""
    _, customer = _live(tmp_path, agent_args=["--pai", '"Billing Team" <sip:4001@pbx.example>',
                                              "--answer-delay", "0.3"])
    seen = response_headers(customer)
    assert seen[180].get("p-asserted-identity") == ['"Billing Team" <sip:4001@pbx.example>'], seen
    assert seen[200].get("p-asserted-identity") == ['"Billing Team" <sip:4001@pbx.example>'], seen
