# SPDX-License-Identifier: GPL-2.0-or-later
"""The box endpoint's credentials: admin token, signed per-agent tokens, single-use tickets, handles."""
from __future__ import annotations

import pytest

from dtmfguard.server.endpoint.auth import AuthError, Authority, Principal, agent_of_target
from dtmfguard.server.endpoint.handles import Handle, parse_handle

ADMIN = "admin-token-0123456789"


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self):
        return self.t


def test_admin_token_and_bad_bearers():
    a = Authority(ADMIN)
    assert a.bearer(f"Bearer {ADMIN}").is_admin
    assert a.bearer(f"bearer  {ADMIN}").is_admin  # scheme is case-insensitive (RFC 7235)
    for header in ("", "Bearer", f"Basic {ADMIN}", f"Bearer {ADMIN}x", "Bearer " + ADMIN[:-1], "Bearer dgt1.x.y",
                   "Bearer dgt1.!!.??", "Bearer dgt1." + "A" * 2000):
        with pytest.raises(AuthError) as e:
            a.bearer(header)
        assert e.value.status == 401
    with pytest.raises(ValueError):
        Authority("")


def test_agent_tokens_are_signed_scoped_and_expire():
    clock = Clock()
    a = Authority(ADMIN, clock=clock)
    token, exp = a.issue_token("agent7", ttl_s=60)
    who = a.bearer(f"Bearer {token}")
    assert who == Principal("agent", agent="agent7") and exp == clock.t + 60
    # another box with the same admin token accepts it; a box with another admin token does not
    assert Authority(ADMIN, clock=clock).bearer(f"Bearer {token}").agent == "agent7"
    with pytest.raises(AuthError):
        Authority(ADMIN + "-rotated", clock=clock).bearer(f"Bearer {token}")
    # a forged payload (another agent) with the old signature is refused
    import base64
    import json

    prefix, payload, mac = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"sub": "agent8", "exp": exp}).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthError, match="bad-token"):
        a.bearer(f"Bearer {prefix}.{forged}.{mac}")
    clock.t += 61
    with pytest.raises(AuthError, match="expired"):
        a.bearer(f"Bearer {token}")
    for bad in ("", "a b", "x" * 200):
        with pytest.raises(ValueError):
            a.issue_token(bad)
    with pytest.raises(ValueError):
        a.issue_token("agent7", ttl_s=10 ** 9)


def test_agents_see_only_their_calls():
    agent7 = Principal("agent", agent="agent7")
    assert agent7.may_see("b.0.x.c1", "sip:agent7@10.0.0.5:5060")
    assert not agent7.may_see("b.0.x.c1", "sip:agent8@10.0.0.5:5060")
    assert not agent7.may_see("b.0.x.c1", "sip:agent77@10.0.0.5")
    assert not agent7.may_see("b.0.x.c1", "")
    assert Principal("admin").may_see("b.0.x.c1", "")
    assert agent_of_target("sips:a7@pbx;transport=tls") == ("sips:a7@pbx;transport=tls", "a7")


def test_tickets_are_single_use_short_lived_and_for_one_call():
    clock = Clock()
    a = Authority(ADMIN, ticket_ttl_s=60, clock=clock)
    agent7 = Principal("agent", agent="agent7")
    t, ttl = a.issue_ticket(agent7, "b.0.x.c1")
    assert ttl == 60
    who = a.redeem_ticket(t, "b.0.x.c1")
    assert who.agent == "agent7" and who.call == "b.0.x.c1"
    assert who.may_see("b.0.x.c1", "sip:agent7@pbx") and not who.may_see("b.0.x.c2", "sip:agent7@pbx")
    with pytest.raises(AuthError, match="bad-ticket"):
        a.redeem_ticket(t, "b.0.x.c1")  # used
    t2, _ = a.issue_ticket(agent7, "b.0.x.c1")
    with pytest.raises(AuthError) as e:
        a.redeem_ticket(t2, "b.0.x.c2")
    assert e.value.status == 403
    with pytest.raises(AuthError):
        a.redeem_ticket(t2, "b.0.x.c1")  # a ticket tried on the wrong call is gone too
    t3, _ = a.issue_ticket(agent7, "b.0.x.c1")
    clock.t += 61
    with pytest.raises(AuthError, match="expired-ticket"):
        a.redeem_ticket(t3, "b.0.x.c1")
    t4, _ = a.issue_ticket(agent7, "b.0.x.c1")
    tid, _, secret = t4.partition(".")
    with pytest.raises(AuthError):
        a.redeem_ticket(tid + "." + secret[:-1] + ("A" if secret[-1] != "A" else "B"), "b.0.x.c1")
    for junk in ("", ".", "x", "x.y.z"):
        with pytest.raises(AuthError):
            a.redeem_ticket(junk, "b.0.x.c1")


def test_handles():
    h = parse_handle("boxa.3.qxvnfdvq.c12")
    assert h == Handle("boxa", 3, "qxvnfdvq", "c12") and str(h) == "boxa.3.qxvnfdvq.c12"
    for bad in ("", "c1", "a.b.c.d", "boxa.1.x", "boxa.1.x.c1.extra", "bo/x.1.x.c1", "boxa.-1.x.c1",
                "b" * 33 + ".1.x.c1"):
        assert parse_handle(bad) is None, bad
