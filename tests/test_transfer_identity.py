# SPDX-License-Identifier: GPL-2.0-or-later
"""Caller identity across a transfer, both ways (issue 13).

Forward: the transfer target (the new agent leg the guard places after a REFER from the agent side, blind or
attended) must show the caller exactly as the first agent leg did: From display name and user, P-Asserted-
Identity (identity mode "pass"), Diversion, History-Info, User-to-User, the configured X- headers, and the
guard's correlation header with the same call id.  Reverse: the customer gets the agent side's
P-Asserted-Identity in the 180 and the 200, and, once the transfer target answers, that target's identity
(in an UPDATE without SDP).  Peers: the repository's pjsua2 customer and agents (REFER sender and target),
and sipp as an agent side whose 180 and 200 name different identities.
"""
from __future__ import annotations


import pytest

from sip_peers import SipCall, SippUas, free_port, invite_headers, response_headers
from test_sip_identity import CALLER

pytestmark = [pytest.mark.sip, pytest.mark.slow]

AGENT1_PAI = '"Billing Team" <sip:4001@pbx.example>'
AGENT2_PAI = '"Bob Jones" <sip:4002@pbx.example>'
SHOWN = ("p-asserted-identity", "diversion", "history-info", "user-to-user", "x-queue", "x-dtmfguard-call")


def test_refer_target_gets_the_headers_escaped_and_keeps_its_own():
    from urllib.parse import unquote

    from dtmfguard.sip.identity import refer_target_with_headers

    got = refer_target_with_headers('<sip:b@pbx.example?Replaces=abc%40h%3Bto-tag%3D1&X-Queue=vip>;x=1',
                                    [("P-Asserted-Identity", '"Alice Smith" <sip:+4420@carrier.example>'),
                                     ("X-Queue", "billing"), ("User-to-User", "56a3;encoding=hex")])
    assert got.startswith("<sip:b@pbx.example?Replaces=abc%40h%3Bto-tag%3D1&X-Queue=vip&") and got.endswith(">;x=1")
    extra = got[got.index("vip&") + 4:got.index(">")].split("&")
    assert [p.split("=", 1)[0] for p in extra] == ["P-Asserted-Identity", "User-to-User"]  # X-Queue: theirs
    assert unquote(extra[0].split("=", 1)[1]) == '"Alice Smith" <sip:+4420@carrier.example>'
    # every character outside RFC 3261's hvalue set is escaped: nothing can end the URI or add a parameter
    assert not any(c in extra[0].split("=", 1)[1] for c in ' "<>;@&=,')
    assert refer_target_with_headers("sip:c@pbx.example", [("X-Dtmfguard-Call", "c7")]) == \
        "<sip:c@pbx.example?X-Dtmfguard-Call=c7>"


def test_an_agent_cannot_forge_or_suppress_the_guards_headers_for_the_transfer_target():
    """The agent side's Refer-To names the guard's correlation header (empty: to suppress it) and a
    P-Asserted-Identity of its choosing: the target gets the guard's values only; the agent's own X-Queue
    and Replaces stay."""
    from urllib.parse import unquote

    from dtmfguard.sip.identity import refer_target_with_headers

    got = refer_target_with_headers(
        "<sip:t@pbx.example?X-Dtmfguard-Call=&p-asserted-identity=%3Csip%3Aboss%40bank%3E&X-Queue=vip"
        "&Replaces=a%40h%3Bto-tag%3D1>",
        [("P-Asserted-Identity", "<sip:+4420@carrier.example>"), ("X-Queue", "billing"), ("X-Dtmfguard-Call", "c7")])
    query = got[got.index("?") + 1:got.index(">")].split("&")
    pairs = [(unquote(p.split("=", 1)[0]).lower(), unquote(p.split("=", 1)[1])) for p in query]
    assert pairs == [("x-queue", "vip"), ("replaces", "a@h;to-tag=1"),
                     ("p-asserted-identity", "<sip:+4420@carrier.example>"), ("x-dtmfguard-call", "c7")]


def _caller_view(headers: dict) -> dict:
    """What the agent's phone and CTI get: display name and user of From, and the copied headers."""
    frm = headers["from"][0]
    return {"from": frm.split(";tag=")[0].split("@")[0], **{k: headers.get(k) for k in SHOWN},
            "x-internal": headers.get("x-internal")}


def _transfer(tmp_path, attended: bool):
    (tmp_path / "guard.toml").write_text('[identity]\nmode = "pass"\nx_headers = ["X-Queue"]\n')
    a2port = free_port()
    a2uri = f"sip:agent2@127.0.0.1:{a2port}"
    calls = "2" if attended else "1"
    xfer = ["--consult", a2uri, "--consult-at", "0.5", "--refer-at", "1.5"] if attended else \
        ["--refer-to", a2uri, "--refer-at", "1.0"]
    with SipCall(tmp_path, serve=True, guard_args=["--config", str(tmp_path / "guard.toml")], record=False,
                 agent_args=["--pai", AGENT1_PAI, "--calls", calls, *xfer], timeout=30) as call:
        agent2 = call.add_agent("agent2", "--pai", AGENT2_PAI, "--calls", calls, port=a2port, record=False)
        customer = call.customer("--play-s", "3.5", *CALLER)
        assert call.wait(customer_s=30, agent_s=10) == 0, customer.output()[-3000:]
    assert call.rc_guard == 0
    return call, customer, agent2


def _check(call, customer, agent2, target_pai=AGENT2_PAI):
    inv1, inv2 = invite_headers(call.agent), invite_headers(agent2)
    assert len(inv1) == 1 and inv2, (inv1, inv2)
    first, target = _caller_view(inv1[0]), _caller_view(inv2[-1])  # attended: the guard's INVITE comes last
    assert first["from"] == '"Alice Smith" <sip:+442071234567', first
    assert first["x-internal"] is None and first["x-queue"] == ["billing"], first
    assert target == first, (target, first)
    # the reverse direction: agent 1's identity in the 180 and 200, the target's once it answered
    cev = customer.events()
    seen = response_headers(customer)
    assert seen[180].get("p-asserted-identity") == [AGENT1_PAI], seen
    assert seen[200].get("p-asserted-identity") == [AGENT1_PAI], seen
    updates = [e for e in cev if e.get("event") == "request" and e.get("method") == "UPDATE"]
    if target_pai:
        assert updates and updates[-1]["headers"].get("p-asserted-identity") == [target_pai], cev[-12:]
        answered = [e["t"] for e in agent2.events() if e.get("event") == "state" and e.get("state") == "CONFIRMED"]
        print(f"\ntransfer target answered -> the customer got its identity: "
              f"{(updates[-1]['t'] - answered[-1]) * 1000:.0f} ms")
    else:  # the target named nobody: the customer is not told anything new
        assert not updates, updates
    states = [e["state"] for e in cev if e.get("event") == "state"]
    assert states.count("CONFIRMED") == 1  # one call all along


def test_blind_transfer_target_sees_the_caller_and_the_customer_sees_the_target(tmp_path):
    _check(*_transfer(tmp_path, attended=False))


def test_attended_transfer_target_sees_the_caller_and_the_customer_sees_the_target(tmp_path):
    call, customer, agent2 = _transfer(tmp_path, attended=True)
    inv2 = invite_headers(agent2)
    assert len(inv2) == 2  # agent 1's consultation call, then the guard's INVITE with Replaces
    # pjsua answers an INVITE with Replaces itself (pjsua_call.c), without the agent peer's P-Asserted-Identity
    _check(call, customer, agent2, target_pai=None)


@pytest.mark.needs_program("sipp", "sip-tester")
def test_an_identity_that_changes_from_ringing_to_answer_replaces_the_earlier_one(tmp_path):
    """sipp as the agent side: its 180 names a queue, its 200 the agent who answered.  The customer's 180 and
    200 carry each in turn, the 200 only the new one (pjsua reuses the 180 for the 200: the guard removes the
    queue's identity from it first)."""
    sport = free_port()
    with SipCall(tmp_path, serve=True, agent=False, agent_uri=f"sip:queue@127.0.0.1:{sport}", timeout=30) as call, \
            SippUas(tmp_path, "uas_pai_change.xml", sport) as sipp:
        customer = call.customer("--play-s", "1.0")
        assert customer.wait(30) == 0, customer.output()[-2000:]
        out = sipp.finish(20)
    assert call.rc_guard == 0
    assert sipp.returncode == 0, out[-2000:]
    seen = response_headers(customer)
    assert seen[180].get("p-asserted-identity") == ['"Billing Queue" <sip:4000@pbx.example>'], seen
    assert seen[200].get("p-asserted-identity") == ['"Carol Lee" <sip:4003@pbx.example>'], seen


@pytest.mark.needs_program("sipp", "sip-tester")
def test_a_refer_from_sipp_gives_its_target_the_caller_and_the_customer_the_target(tmp_path):
    """sipp as the transferring agent side (a REFER no PJSIP stack wrote): the guard's rewrite module puts the
    caller's headers into that REFER's target before pjsua acts on it, so the pjsua2 target sees the caller as
    the first agent leg did; the customer then gets the target's identity in an UPDATE."""
    (tmp_path / "guard.toml").write_text('[identity]\nmode = "pass"\nx_headers = ["X-Queue"]\n')
    sport, a2port = free_port(), free_port()
    with SipCall(tmp_path, serve=True, timeout=30, agent=False, record=False,
                 guard_args=["--config", str(tmp_path / "guard.toml")],
                 agent_uri=f"sip:agent1@127.0.0.1:{sport}") as call, \
            SippUas(tmp_path, "uas_refer.xml", sport, "-key", "refer_to", f"sip:agent2@127.0.0.1:{a2port}") as sipp:
        agent2 = call.add_agent("agent2", "--pai", AGENT2_PAI, port=a2port, record=False)
        customer = call.customer("--play-s", "5.0", *CALLER)  # sipp refers at 2.5 s
        assert call.wait(customer_s=30) == 0, customer.output()[-3000:]
        out = sipp.finish(20)
    assert call.rc_guard == 0
    assert sipp.returncode == 0, out[-3000:]
    inv2 = invite_headers(agent2)
    assert len(inv2) == 1, inv2
    target = _caller_view(inv2[0])
    assert target["from"] == '"Alice Smith" <sip:+442071234567', target
    assert target["p-asserted-identity"] == ['"Alice Smith" <sip:+442071234567@carrier.example>'], target
    assert target["diversion"] and target["history-info"] and target["user-to-user"], target
    assert target["x-queue"] == ["billing"] and target["x-internal"] is None, target
    assert target["x-dtmfguard-call"] and target["x-dtmfguard-call"][0].startswith("c"), target
    updates = [e for e in customer.events() if e.get("event") == "request" and e.get("method") == "UPDATE"]
    assert updates and updates[-1]["headers"].get("p-asserted-identity") == [AGENT2_PAI], customer.events()[-12:]


def test_a_target_with_a_display_name_keeps_it_and_gets_the_headers():
    from dtmfguard.sip.identity import refer_target_with_headers

    assert refer_target_with_headers('"Billing Desk" <sip:b@pbx.example>;x=1', [("X-Dtmfguard-Call", "c7")]) == \
        '"Billing Desk" <sip:b@pbx.example?X-Dtmfguard-Call=c7>;x=1'
