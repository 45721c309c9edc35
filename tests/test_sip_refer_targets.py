# SPDX-License-Identifier: GPL-2.0-or-later
"""REFERs from the agent side whose transfer pjsua accepts but cannot start (found by benchmarks/sipfuzz.py).

pjsua answers a REFER 202 first and only then calls the Refer-To target (pjsua_call_make_call, which
pjsip_dlg_create_uac follows: the URI and every header parameter of it parsed as a header).  When that call
could not start, no state of the new leg ever came, and the bridge waited for it for good: after the
customer hung up its call slots stayed taken (two such REFERs and the worker answered every new call 503).

* A target pjsip cannot call (``?Call-ID=%00``, a CR LF in a header, a header pjsip will not parse, a URI it
  will not parse) is answered 400 by the rewrite module (dtmfguard/sip/pj/rewrite.py) before pjsua acts.
* A target pjsua cannot call for another reason (its call table full: two bridges use all 4 calls) is
  given up by the guard after a second: the call goes on with the first agent, and ends when hung up.

Peers: the raw UDP customer and agent of benchmarks/sipfuzz.py, the production Guard (guard_probe.py).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from sip_peers import HERE, Proc, free_port, rtp_base

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

pytestmark = [pytest.mark.sip, pytest.mark.needs_pjsua2]

#: Refer-To targets (in <...>) that pjsip_dlg_create_uac refuses: each left the bridge waiting before
BAD = [("nul-call-id", "?Call-ID=%00"), ("crlf-from", "?From=a%0D%0AX-Injected:%201"),
       ("bad-authorization", "?Authorization=x"), ("bad-replaces", "?Replaces=%3Csip:evil@192.0.2.1%3E"),
       ("tab-param", ";\t"), ("quote-param", ";\"")]


@pytest.fixture
def guard(tmp_path):
    import sipfuzz

    gport, aport, cport = free_port(), free_port(), free_port()
    agent = sipfuzz._Agent(aport)
    customer = sipfuzz._Customer(cport, gport)
    g = Proc([str(HERE / "guard_probe.py"), "--listen", f"127.0.0.1:{gport}", "--agent",
              f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(rtp_base()), "--timeout", "90",
              "--answer-timeout", "5", "--transports", "udp"], "guard", tmp_path)
    try:
        g.wait_ready(30)
        yield {"guard": g, "agent": agent, "customer": customer, "gport": gport,
               "target": f"sip:target@127.0.0.1:{aport}"}
    finally:
        g.stop()
        agent.ua.close()
        customer.ua.close()


def _case(guard, name, refer_to):
    import sipfuzz

    return sipfuzz.refer_case(guard["customer"], guard["agent"], guard["gport"], name, refer_to)


def test_a_refer_target_pjsip_cannot_call_is_refused_and_the_worker_keeps_its_slots(guard):
    target = guard["target"]
    for name, tail in BAD:
        r = _case(guard, name, f"<{target}{tail}>")
        assert r["setup"] == "200", r  # before the fix: 503 from the third case on (2 bridges stuck)
        assert r["refer"] == "400", r  # refused before pjsua accepted a transfer it could not start
        assert not r["target_invited"], r
        assert r["bye"] == "200", r
    ok = _case(guard, "ok", f"<{target}>")
    assert ok == {**ok, "setup": "200", "refer": "202", "target_invited": True, "rewritten": True, "bye": "200"}
    # a name-addr with a display name (RFC 3515 allows it): accepted and rewritten too (it got 603 before)
    named = _case(guard, "display-name", f'"Billing Desk" <{target}>')
    assert named == {**named, "setup": "200", "refer": "202", "target_invited": True, "rewritten": True,
                     "bye": "200"}
    assert guard["guard"].p.poll() is None
    log = guard["guard"].err_path.read_text()
    assert log.count("REFER refused (400)") == len(BAD), log[-3000:]


def test_a_transfer_pjsua_cannot_start_is_given_up_and_the_call_goes_on(guard):
    """Two bridges hold pjsua's 4 calls: a well-formed REFER on one is accepted (202) but pjsua cannot make the
    transfer call.  The guard gives the transfer up; once a slot is free the same leg can transfer again, both
    calls end normally and the worker takes two new calls (before: the bridge with the lost transfer never
    ended and the second new call got 503)."""
    import sipfuzz

    agent, customer, gport, target = guard["agent"], guard["customer"], guard["gport"], guard["target"]
    dialogs = []
    for _ in range(2):
        status, dialog = customer.call()
        assert status == "200"
        dialogs.append(dialog)
    time.sleep(0.2)
    n_targets = len(agent.target_invites)
    status, _ = agent.refer(agent.legs[0], f"<{target}>", gport)
    assert status == "202"
    log = guard["guard"].err_path
    deadline = time.monotonic() + 5
    while "transfer failed" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(agent.target_invites) == n_targets  # pjsua never called the target
    # with a call slot free again, the same agent leg transfers once more: pjsua calls the target this time
    assert customer.bye(dialogs[1]) == "200"
    deadline = time.monotonic() + 5
    while agent.legs[1] not in agent.byes and time.monotonic() < deadline:
        time.sleep(0.05)
    status, _ = agent.refer(agent.legs[0], f"<{target}>", gport)
    assert status == "202"
    deadline = time.monotonic() + 5
    while len(agent.target_invites) == n_targets and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(agent.target_invites) == n_targets + 1  # called (and refused 486: the call stays with agent 1)
    time.sleep(0.3)
    assert customer.bye(dialogs[0]) == "200"
    time.sleep(0.5)
    again = [customer.call() for _ in range(2)]
    assert [s for s, _ in again] == ["200", "200"], again
    for _, dialog in again:
        assert customer.bye(dialog) == "200"
    ok = sipfuzz.refer_case(customer, agent, gport, "ok", f"<{target}>")
    assert (ok["refer"], ok["target_invited"], ok["bye"]) == ("202", True, "200"), ok
    assert guard["guard"].p.poll() is None
    assert "transfer failed (500)" in log.read_text()


def test_uri_headers_are_split_and_unescaped_as_pjsip_does():
    from dtmfguard.sip.pj.rewrite import uri_headers

    assert uri_headers("<sip:t@h?Call-ID=%00>") == [(b"Call-ID", b"\x00")]
    assert uri_headers("sip:t@h?X=1&Y&Z=&W=%zz%41") == [(b"X", b"1"), (b"Y", None), (b"Z", None), (b"W", b"%zzA")]
    assert uri_headers('"a" <sip:t@h;transport=udp?Replaces=a%3Bto-tag%3Db>;p=1') == [(b"Replaces", b"a;to-tag=b")]
    assert uri_headers("<sip:t@h>") == [] and uri_headers("<sip:t@h") == [] and uri_headers("<sip:t@h?>") == []
