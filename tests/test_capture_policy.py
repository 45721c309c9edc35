# SPDX-License-Identifier: GPL-2.0-or-later
"""PaymentPolicy: one frozen, checked object for a payment's fields, timeouts and attempts (issue 15),
and the session states named once (capture.states)."""
from __future__ import annotations

import dataclasses
import json

import pytest
from _capture_util import TODAY, FakeClock, load_sample, type_keys

from dtmfguard.capture import DEFAULT_POLICY, TERMINAL_STATES, PaymentPolicy, PaymentSession, is_terminal
from dtmfguard.capture import states

PAN = "4111111111111111"
plugin = load_sample("gateway_plugin")


def new_session(clock=None, **kwargs):
    return PaymentSession(plugin.TestCardGateway(), clock=clock or FakeClock(), today=lambda: TODAY, **kwargs)


def test_the_policy_is_frozen_and_shareable():
    policy = PaymentPolicy(fields=("card_number", "expiry"), max_attempts=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 5  # type: ignore[misc]
    assert policy.field_names == ("card_number", "expiry")
    assert isinstance(policy.fields, tuple) and hash(policy) == hash(PaymentPolicy(fields=("card_number", "expiry"),
                                                                                   max_attempts=2))
    assert DEFAULT_POLICY.field_names == ("card_number", "expiry", "security_code")


@pytest.mark.parametrize("bad", [dict(max_attempts=0), dict(max_attempts=True), dict(interdigit_timeout_s=0),
                                 dict(field_timeout_s=-1), dict(approval_timeout_s="60"),
                                 dict(fields=("card_number", "card_number")), dict(fields=("pin",)),
                                 dict(fields=())])
def test_a_bad_policy_is_refused_when_built(bad):
    with pytest.raises(ValueError):
        PaymentPolicy(**bad)


def test_settings_given_one_by_one_replace_the_policys():
    base = PaymentPolicy(max_attempts=2, field_timeout_s=30)
    session = new_session(policy=base, fields=["card_number", "expiry"], interdigit_timeout_s=2)
    assert session.policy == base.replace(fields=("card_number", "expiry"), interdigit_timeout_s=2.0)
    assert (session.max_attempts, session.field_timeout_s, session.interdigit_timeout_s) == (2, 30.0, 2.0)
    assert [f.name for f in session.fields] == ["card_number", "expiry"]
    assert base.field_names == ("card_number", "expiry", "security_code")  # the shared policy is untouched
    assert new_session().policy is DEFAULT_POLICY


def test_unknown_settings_are_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="colour"):
        new_session(colour="blue")
    with pytest.raises(TypeError, match="colour"):
        PaymentPolicy.build(colour="blue")


def test_the_policy_drives_the_session():
    clock = FakeClock()
    session = new_session(clock, policy=PaymentPolicy(max_attempts=1, field_timeout_s=5))
    clock.advance(4.9)
    assert session.poll() == states.COLLECTING
    clock.advance(0.2)
    assert session.poll() == states.TIMED_OUT and is_terminal(session.state)


def test_the_audit_summary_holds_no_private_bookkeeping(tmp_path):
    """The session's own timestamps used to ride in the public summary dicts under '_' keys."""
    clock = FakeClock()
    audit = tmp_path / "audit.jsonl"
    session = new_session(clock, amount=1999, audit=str(audit))
    type_keys(session, PAN + "#" + "1139" + "847", clock=clock)
    assert session.wait(5) and session.state == states.COMPLETED
    summary = [json.loads(line) for line in audit.read_text().splitlines()][-1]
    assert summary["event"] == "session_ended"
    assert all(not k.startswith("_") for f in summary["fields"] for k in f), summary["fields"]
    assert all(not k.startswith("_") for k in summary["timings_ms"]), summary["timings_ms"]
    assert summary["fields"][0]["duration_ms"] == 17 * 300  # field start to "#": 16 digits and "#", 0.3 s apart
    assert "gateway_ms" in summary["timings_ms"] and "total_ms" in summary["timings_ms"]


def test_terminal_states_are_named_once():
    assert TERMINAL_STATES == states.TERMINAL_STATES
    assert len(set(TERMINAL_STATES)) == 9 and states.COLLECTING not in TERMINAL_STATES
    assert not is_terminal(states.SUBMITTING) and not is_terminal(None)
