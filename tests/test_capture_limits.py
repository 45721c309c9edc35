# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-agent limits: per payment and per day, refused or sent for supervisor approval, stated on the
agent feed; configuration errors are clear; daily totals rebuild from the audit trail."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from _capture_util import TODAY, FakeClock, load_sample, type_keys

from dtmfguard.capture import AgentLimits, DailyLedger, LimitsError, PaymentSession

PAN = "4111111111111111"
plugin = load_sample("gateway_plugin")
CONFIG = {
    "currency": "GBP",
    "default": {"per_payment": 5000, "per_day": 8000, "over_limit": "refuse"},
    "agents": {"sup-able": {"per_payment": 5000, "per_day": 20000, "over_limit": "approval"}},
}


@pytest.fixture
def limits(tmp_path):
    path = tmp_path / "limits.json"
    path.write_text(json.dumps(CONFIG))
    return AgentLimits.load(path)


def session(limits, ledger=None, agent="a1", amount=1000, gateway=None, clock=None, **kwargs):
    return PaymentSession(gateway or plugin.TestCardGateway(), amount=amount, agent_id=agent, limits=limits,
                          ledger=ledger, clock=clock or FakeClock(), today=lambda: TODAY, **kwargs)


def of_type(s, kind):
    return [e for e in s.events if e["type"] == kind]


@pytest.mark.parametrize("agent, amount, used, action", [
    ("a1", 5000, 0, "allow"), ("a1", 5001, 0, "refuse"),          # per payment, default entry
    ("a1", 3000, 5000, "allow"), ("a1", 3001, 5000, "refuse"),    # per day: 8000
    ("sup-able", 5001, 0, "approval"), ("sup-able", 100, 19950, "approval"),
    ("a1", None, 10 ** 9, "allow"),                                # tokenise only: no money moves
])
def test_decision_table(limits, agent, amount, used, action):
    ledger = DailyLedger()
    ledger.add(agent, TODAY, "GBP", used)
    assert limits.check(agent, amount, "GBP", ledger, TODAY).action == action


def test_no_authority_and_other_currency(limits):
    strict = AgentLimits(limits.agents, default=None, currency="GBP")
    assert strict.check("stranger", 1, "GBP").action == "refuse"
    assert "no payment authority" in strict.check("stranger", 1, "GBP").reason
    assert limits.check("a1", 1, "EUR").reason == "limits are set in GBP, payment is in EUR"


def test_over_limit_refused_before_the_card_is_keyed(limits):
    gateway = plugin.TestCardGateway()
    s = session(limits, amount=9000, gateway=gateway)
    assert s.state == "refused"
    refused = of_type(s, "limit_refused")[0]
    assert refused["amount"] == 9000 and refused["limit"] == 5000 and "per-payment" in refused["reason"]
    assert [e["type"] for e in s.events] == ["session_started", "limit_refused", "session_ended"]
    type_keys(s, PAN + "#1139847")
    assert s.wait(5) and gateway.charges == 0


def test_daily_limit_counts_only_approved_payments(limits):
    ledger = DailyLedger()
    gateway = plugin.TestCardGateway()
    outcomes = []
    # The processor declines the second card (not a published test card): it must not count.
    for amount, pan in ((4000, PAN), (3000, "4000056655665556"), (3000, PAN), (1001, PAN)):
        s = session(limits, ledger, amount=amount, gateway=gateway)
        type_keys(s, pan + "#1139847")
        assert s.wait(5)
        outcomes.append(s.state)
    assert outcomes == ["completed", "declined", "completed", "refused"]
    assert ledger.used("a1", TODAY, "GBP") == 7000
    assert "daily" in of_type(s, "limit_refused")[0]["reason"]


def test_supervisor_approval(limits):
    gateway = plugin.TestCardGateway()
    s = session(limits, agent="sup-able", amount=6000, gateway=gateway)
    type_keys(s, PAN + "#1139847")
    assert s.state == "awaiting_approval" and gateway.charges == 0
    required = of_type(s, "approval_required")[0]
    assert required["amount"] == 6000 and required["limit"] == 5000
    assert s.approve("sup-7") and not s.approve("sup-7")
    assert s.wait(5) and s.state == "completed" and gateway.charges == 1
    assert of_type(s, "approval_granted")[0]["supervisor"] == "sup-7"


def test_supervisor_rejection_and_timeout(limits):
    clock = FakeClock()
    rejected = session(limits, agent="sup-able", amount=6000, clock=clock)
    type_keys(rejected, PAN + "#1139847")
    assert rejected.reject("sup-7") and rejected.state == "refused"
    waiting = session(limits, agent="sup-able", amount=6000, clock=clock, approval_timeout_s=60)
    type_keys(waiting, PAN + "#1139847")
    clock.advance(59)
    assert waiting.poll() == "awaiting_approval"
    clock.advance(1)
    assert waiting.poll() == "timed_out" and not waiting.approve("late")
    assert rejected.wait(5) and waiting.wait(5)


def test_typed_amount_is_checked_after_entry(limits):
    s = session(limits, amount=None, fields=["amount", "card_number", "expiry", "security_code"])
    type_keys(s, "9000#" + PAN + "#1139847")
    assert s.wait(5) and s.state == "refused"


@pytest.mark.parametrize("config, message", [
    ({"default": {"per_payment": 10.5}}, "whole number"),
    ({"default": {"per_payment": -1}}, "whole number"),
    ({"default": {"over_limit": "shrug"}}, "over_limit"),
    ({"default": {"per_week": 1}}, "unknown key"),
    ({"agent": {}}, "unknown top-level"),
    ({"agents": []}, "keyed by agent id"),
    ([], "must be an object"),
])
def test_bad_configuration(config, message):
    with pytest.raises(LimitsError, match=message):
        AgentLimits.from_mapping(config)


def test_load_errors_and_toml(tmp_path):
    with pytest.raises(LimitsError, match="cannot read limits file"):
        AgentLimits.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LimitsError, match="not valid"):
        AgentLimits.load(bad)
    toml = tmp_path / "limits.toml"
    toml.write_text('currency = "GBP"\n[default]\nper_payment = 100\n[agents.a9]\nper_day = 5\n'
                    'over_limit = "approval"\n')
    limits = AgentLimits.load(toml)
    assert limits.check("a9", 6, "GBP").action == "approval" and limits.check("x", 101, "GBP").action == "refuse"


def test_ledger_rebuilds_from_the_audit_trail(tmp_path, limits):
    audit = tmp_path / "audit.jsonl"
    ledger = DailyLedger()
    for amount in (3000, 2000):
        s = session(limits, ledger, amount=amount, audit=audit)
        type_keys(s, PAN + "#1139847")
        assert s.wait(5) and s.state == "completed"
    today_utc = dt.datetime.now(dt.timezone.utc).date()  # audit timestamps are wall-clock UTC
    assert DailyLedger.from_audit(audit).used("a1", today_utc, "GBP") == 5000
