# SPDX-License-Identifier: GPL-2.0-or-later
"""The bridge's state machine without a SIP stack (``dtmfguard.sip.bridge``): its states and their moves,
per-leg state, hold relays (RFC 3264 §8.4) and hold detection in SDP offers.  Runs without pjsua2: the
B2BUA (``sip/pj/b2bua``) only sends what these rules decide (its own tests, with pjsua2, are in
test_sip_hold.py)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from dtmfguard.sip.bridge import (HOLD_ATTEMPTS, HOLD_GLARE_S, TRANSITIONS, Bridge, BridgeState, LegState,
                                  other_role, sdp_offers_hold)

S = BridgeState


def _offer(direction_lines: str, c_addr: str = "127.0.0.1", extra_media: str = "") -> str:
    return ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 " + c_addr + "\r\nt=0 0\r\n" + extra_media
            + "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n" + direction_lines)


@pytest.mark.parametrize("sdp, held", [
    (_offer("a=sendrecv\r\n"), False),
    (_offer(""), False),
    (_offer("a=sendonly\r\n"), True),
    (_offer("a=inactive\r\n"), True),
    (_offer("a=recvonly\r\n"), False),
    (_offer("", c_addr="0.0.0.0"), True),  # RFC 2543 hold
    (_offer("a=sendonly\r\n").replace("m=audio 4000", "m=audio 0"), False),  # stream disabled
    (_offer("").replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n"), True),  # session-level attribute
    (_offer("a=sendrecv\r\n").replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n"), False),  # media level wins
    (_offer("a=sendrecv\r\n", extra_media="m=video 5000 RTP/AVP 96\r\na=inactive\r\n"), False),
    ("v=0\r\ns=-\r\nm=video 5000 RTP/AVP 96\r\na=sendonly\r\n", False),  # no audio
])
def test_sdp_offers_hold(sdp, held):
    assert sdp_offers_hold(sdp) is held
    assert sdp_offers_hold(sdp.replace("\r\n", "\n")) is held


# -- states ----------------------------------------------------------------------------------------------

def test_a_call_walks_its_states_and_the_control_api_sees_its_words():
    b = Bridge("c1", customer=None)
    assert b.state is S.INCOMING
    for name in ("calling-agent", "ringing", "ringing", "answering-customer", "connected", "ending", "ended"):
        b.state = name  # the B2BUA's words are the enum's values
        assert b.state is S(name) and b.state == name
    summary = b.summary()
    assert summary["state"] == "ended" and type(summary["state"]) is str
    assert json.loads(json.dumps(summary))["state"] == "ended"
    assert f"{S.CALLING_AGENT}" == "calling-agent" and "%s" % S.CALLING_AGENT == "calling-agent"


def test_the_summary_counts_the_customer_frames_its_jitter_buffer_lost():
    """The control API's per-call media figures say how many customer frames the jitter buffer concealed or
    dropped (the port's counters): an in-band key can be lost with them, so an operator (and the soak) can tell
    a key lost to the network from one the guard missed."""

    class Port:
        stats = {"missing": 2, "errors": 0, "jb_concealed": 3, "jb_dropped": 1}

    b = Bridge("c1", customer=None)
    assert b.summary()["media"]["customer_frames_lost"] == 0  # no port yet
    b.port = Port()
    media = b.summary()["media"]
    assert media["customer_frames_lost"] == 4 and media["missing_frames"] == 2


def test_every_state_can_end_and_none_comes_back_from_ended():
    for state in S:
        assert state is S.ENDED or S.ENDED in TRANSITIONS[state], state
    assert TRANSITIONS[S.ENDED] == frozenset()
    assert set(TRANSITIONS) == set(S)
    # every state is reachable from incoming
    seen, todo = {S.INCOMING}, [S.INCOMING]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(S)


@pytest.mark.parametrize("start, bad", [(S.INCOMING, S.CONNECTED), (S.REFUSING, S.CALLING_AGENT),
                                        (S.CONNECTED, S.RINGING), (S.RINGING, S.CALLING_AGENT)])
def test_a_move_the_table_does_not_hold_is_a_programming_error(start, bad):
    b = Bridge("c2", customer=None, state=start)
    with pytest.raises(ValueError, match=f"no move from {start} to {bad}"):
        b.state = bad
    assert b.state is start


def test_an_unknown_state_name_fails_loudly():
    with pytest.raises(ValueError):
        Bridge("c3", customer=None, state="conected")
    b = Bridge("c3", customer=None)
    with pytest.raises(ValueError):
        b.state = "answered"
    assert b.state is S.INCOMING


@pytest.mark.parametrize("late", [S.ANSWERING_CUSTOMER, S.CONNECTED, S.RINGING])
def test_a_late_answer_does_not_bring_an_ending_call_back(late, caplog):
    """The agent's 200 crossing the customer's CANCEL, the customer's ACK after the agent's BYE: the call
    stays ending (and later ended), and the ignored move is logged."""
    for ending in (S.ENDING, S.ENDED):
        b = Bridge("c4", customer=None, state=ending)
        with caplog.at_level(logging.INFO, logger="dtmfguard.sip.bridge"):
            b.state = late
        assert b.state is ending
        assert f"c4: {late} ignored, the call is {ending}" in caplog.text


# -- legs ------------------------------------------------------------------------------------------------

def test_each_leg_has_its_own_state():
    b = Bridge("c5", customer=None)
    assert set(b.legs) == {"customer", "agent"} and all(isinstance(v, LegState) for v in b.legs.values())
    b.customer_gone = True
    assert b.legs["customer"].gone and not b.legs["agent"].gone and not b.agent_gone
    b.legs["agent"].srtp = True
    assert b.summary()["srtp"] == {"customer": None, "agent": True}
    assert Bridge("c6", customer=None).legs["customer"] is not b.legs["customer"]  # not shared between bridges
    assert other_role("customer") == "agent" and other_role("agent") == "customer"
    with pytest.raises(ValueError):
        other_role("caller")


# -- hold relay ------------------------------------------------------------------------------------------

class _Sender:
    """What the B2BUA does with the relays due: sends them (or fails like a leg with an INVITE in progress)."""

    def __init__(self, b: Bridge, busy: dict | None = None):
        self.b, self.busy, self.sent = b, dict(busy or {}), []

    def sync(self, now: float = 1e9) -> None:
        for role, relay in self.b.hold_relays_due(now):
            if self.busy.get(role):
                self.busy[role] -= 1
                self.b.hold_relay_failed(role, relay, now + 0.2)
                continue
            relay.sent = now
            self.sent.append((role, "hold" if relay.want else "resume"))


def test_relays_follow_the_level_not_the_event():
    b = Bridge("c7", customer=None, state=S.CONNECTED)
    tx = _Sender(b)
    assert b.remote_offer("customer", True, 1.0) == "agent"
    tx.sync()
    assert b.remote_offer("customer", True, 2.0) is None  # a session refresh that still says sendonly
    assert b.reinvite_answered("agent", 200, 3.0)[1] == "done"
    assert b.reinvite_answered("agent", 200, 3.0)[1] == ""  # a second final answer changes nothing
    assert b.remote_offer("customer", False, 4.0) == "agent"
    tx.sync()
    relay, outcome = b.reinvite_answered("agent", 200, 4.25)
    assert outcome == "done" and relay.since == 4.0 and relay.want is False
    assert tx.sent == [("agent", "hold"), ("agent", "resume")] and b.hold_relays == {}


def test_a_mirrored_hold_stops_after_one_round():
    """Both far ends echo each hold offer they get as an offer of their own: the relays stop."""
    b = Bridge("c8", customer=None, state=S.CONNECTED)
    tx = _Sender(b)
    b.remote_offer("customer", True, 0.0)
    for _ in range(20):
        before = len(tx.sent)
        tx.sync()
        new = tx.sent[before:]
        for role in ("customer", "agent"):
            b.reinvite_answered(role, 200, 0.0)
        if not new:
            break
        for role, what in new:
            b.remote_offer(role, what == "hold", 0.0)  # the peer that got it offers the same back
    assert tx.sent == [("agent", "hold"), ("customer", "hold")] and b.hold_relays == {}


def test_relays_wait_for_the_call_and_for_a_busy_leg_then_give_up():
    b = Bridge("c9", customer=None, state=S.ANSWERING_CUSTOMER)
    tx = _Sender(b, busy={"agent": 2})
    b.remote_offer("customer", True, 0.0)
    tx.sync()
    assert tx.sent == [] and b.hold_relays["agent"].attempts == 0  # kept until both legs are up
    b.state = S.CONNECTED
    tx.sync(now=10.0)
    tx.sync(now=10.1)  # too early for the retry
    assert tx.sent == [] and b.hold_relays["agent"].attempts == 1
    tx.sync(now=10.3)
    tx.sync(now=10.6)
    assert tx.sent == [("agent", "hold")]
    relay, outcome = b.reinvite_answered("agent", 491, 11.0)  # glare: sent again after the glare wait
    assert outcome == "retry" and relay.retry_at == 11.0 + HOLD_GLARE_S and not relay.sent
    tx.sync(now=11.0 + HOLD_GLARE_S / 2)
    assert len(tx.sent) == 1
    tx.sync(now=11.0 + HOLD_GLARE_S)
    assert b.reinvite_answered("agent", 200, 13.0)[1] == "done" and len(tx.sent) == 2 and b.hold_relays == {}
    # a leg that never takes the relay: given up after HOLD_ATTEMPTS tries
    b.remote_offer("customer", False, 20.0)
    tx.busy["agent"] = 99
    for i in range(HOLD_ATTEMPTS + 3):
        tx.sync(now=30.0 + i)
    assert b.hold_relays == {} and tx.busy["agent"] == 99 - HOLD_ATTEMPTS


def test_a_new_level_supersedes_a_relay_in_flight():
    b = Bridge("c10", customer=None, state=S.CONNECTED)
    tx = _Sender(b)
    b.remote_offer("customer", True, 0.0)
    tx.sync()
    b.remote_offer("customer", False, 1.0)  # resumed while the hold re-INVITE is in flight
    assert b.reinvite_answered("agent", 200, 1.1)[1] == ""  # the hold's answer: not the resume's
    assert b.hold_relays["agent"].want is False
    tx.sync()
    assert b.reinvite_answered("agent", 200, 1.2)[1] == "done"
    assert tx.sent == [("agent", "hold"), ("agent", "resume")] and b.hold_relays == {}


def test_an_ending_call_drops_its_relays_and_takes_no_new_ones():
    b = Bridge("c11", customer=None, state=S.CONNECTED)
    b.remote_offer("agent", True, 0.0)
    b.state = S.ENDING
    assert b.hold_relays_due(1.0) == [] and b.hold_relays == {}
    assert b.remote_offer("customer", True, 2.0) is None and b.hold_relays == {}


def test_the_bridge_imports_without_pjsua2():
    code = ("import sys\nsys.modules['pjsua2'] = None\n"
            "import dtmfguard.sip.bridge, dtmfguard.sip.identity\n"
            "assert not any(m.startswith(('dtmfguard.sip.pj', 'dtmfguard.media')) for m in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
