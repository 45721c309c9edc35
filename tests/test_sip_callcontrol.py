# SPDX-License-Identifier: GPL-2.0-or-later
"""Call control with real peers: busy, no answer, CANCEL, either side hanging up ends the other."""
from __future__ import annotations

import time

import pytest

from sip_peers import HERE, Proc, free_port, rtp_base

pytestmark = [pytest.mark.sip, pytest.mark.slow]


def scenario(tmp_path, agent_args=(), customer_args=(), guard_args=()):
    gport, aport = free_port(), free_port()
    agent = Proc(["-m", "dtmfguard.sip.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--timeout", "30", *agent_args], "agent", tmp_path)
    guard = Proc([str(HERE / "guard_probe.py"), "--listen", f"127.0.0.1:{gport}",
                  "--agent", f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(rtp_base()), "--timeout", "40",
                  *guard_args], "guard", tmp_path)
    customer = None
    try:
        agent.wait_ready()
        guard.wait_ready()
        customer = Proc(["-m", "dtmfguard.sip.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{gport}", "--timeout", "30",
                         *customer_args], "customer", tmp_path)
        t0 = time.monotonic()
        rc_customer = customer.wait(40)
        elapsed = time.monotonic() - t0
        agent.wait(10)
    finally:
        rc_guard = guard.stop()
        agent.stop()
        if customer is not None:
            customer.stop()
    done = [e for e in customer.events() if e.get("event") == "done"][0]
    agent_done = [e for e in agent.events() if e.get("event") == "done"]
    return {"customer": done, "rc_customer": rc_customer, "elapsed": elapsed, "rc_guard": rc_guard,
            "agent": agent_done[0] if agent_done else None, "guard_log": guard.err_path.read_text()}


def test_busy_agent_gives_customer_486(tmp_path):
    r = scenario(tmp_path, agent_args=["--reject", "486"])
    assert r["customer"]["status"] == 486 and not r["customer"]["connected"]
    assert r["rc_guard"] == 0 and "ended (agent-486)" in r["guard_log"]


def test_no_answer_gives_customer_480(tmp_path):
    r = scenario(tmp_path, agent_args=["--no-answer", "--calls", "1"], guard_args=["--answer-timeout", "2"])
    assert r["customer"]["status"] == 480
    assert r["agent"]["calls"][0]["status"] in (487, 0) or r["agent"]["calls"][0]["confirmed"] is False
    assert "ended (agent-480)" in r["guard_log"]


def test_customer_cancel_cancels_the_agent_leg(tmp_path):
    r = scenario(tmp_path, agent_args=["--no-answer"], customer_args=["--cancel-after", "1.5"])
    assert r["customer"]["status"] == 487
    assert r["agent"]["calls"][0]["status"] == 487 and not r["agent"]["calls"][0]["confirmed"]
    assert "ended (customer-cancel)" in r["guard_log"]


def test_agent_hangup_ends_the_customer_leg(tmp_path):
    r = scenario(tmp_path, agent_args=["--hangup-after", "1"], customer_args=["--play-s", "20"])
    assert r["customer"]["connected"] and r["customer"]["status"] == 200
    assert "ended (agent-hangup)" in r["guard_log"]
    assert r["rc_customer"] == 0 and r["elapsed"] < 12  # long before its 20 s of play: the BYE reached it


def test_customer_hangup_ends_the_agent_leg(tmp_path):
    r = scenario(tmp_path, customer_args=["--play-s", "1"])
    assert r["agent"]["calls"][0]["confirmed"] and "ended (customer-hangup)" in r["guard_log"]


def test_no_agent_target_gives_404_and_the_worker_goes_on(tmp_path):
    r = scenario(tmp_path, agent_args=["--timeout", "5"], guard_args=["--agent-header", "X-Agent-URI"])
    assert r["customer"]["status"] == 404 and not r["customer"]["connected"]
    assert r["rc_guard"] == 0 and "no agent target" in r["guard_log"] and "ended (no-target)" in r["guard_log"]
