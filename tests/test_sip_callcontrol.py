# SPDX-License-Identifier: GPL-2.0-or-later
"""Call control with real peers: busy, no answer, CANCEL, either side hanging up ends the other."""
from __future__ import annotations

import time

import pytest

from sip_peers import SipCall, done_event, free_port

pytestmark = [pytest.mark.sip, pytest.mark.slow]


def scenario(tmp_path, agent_args=(), customer_args=(), guard_args=()):
    with SipCall(tmp_path, record=False, timeout=40, agent_timeout=30, agent_args=agent_args,
                 guard_args=guard_args) as sip:
        sip.customer(*customer_args, timeout=30)
        t0 = time.monotonic()
        rc_customer = sip.customers[0].wait(40)
        elapsed = time.monotonic() - t0
        sip.agent.wait(10)
    customer, agent, guard = sip.customers[0], sip.agent, sip.guard
    return {"customer": done_event(customer), "rc_customer": rc_customer, "elapsed": elapsed,
            "rc_guard": sip.rc_guard, "agent": done_event(agent), "guard_log": guard.err_path.read_text()}


def test_busy_agent_gives_customer_486(tmp_path):
    r = scenario(tmp_path, agent_args=["--reject", "486"])
    assert r["customer"]["status"] == 486 and not r["customer"]["connected"]
    assert r["rc_guard"] == 0 and "ended (agent-486)" in r["guard_log"]


def test_no_answer_gives_customer_480(tmp_path):
    r = scenario(tmp_path, agent_args=["--no-answer", "--calls", "1"], guard_args=["--answer-timeout", "2"])
    assert r["customer"]["status"] == 480
    # the guard CANCELs the ringing agent leg when its answer timeout runs out
    assert r["agent"]["calls"][0]["status"] == 487 and r["agent"]["calls"][0]["confirmed"] is False
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
    assert r["rc_customer"] == 0 and r["elapsed"] < 20  # before its 20 s of play ended: the BYE reached it


def test_customer_hangup_ends_the_agent_leg(tmp_path):
    r = scenario(tmp_path, customer_args=["--play-s", "1"])
    assert r["agent"]["calls"][0]["confirmed"] and "ended (customer-hangup)" in r["guard_log"]


def test_no_agent_target_gives_404_and_the_worker_goes_on(tmp_path):
    r = scenario(tmp_path, agent_args=["--timeout", "5"], guard_args=["--agent-header", "X-Agent-URI"])
    assert r["customer"]["status"] == 404 and not r["customer"]["connected"]
    assert r["rc_guard"] == 0 and "no agent target" in r["guard_log"] and "ended (no-target)" in r["guard_log"]


def _self_signed(tmp_path):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


def test_tls_customer_leg_through_serve(tmp_path):
    """`dtmfguard serve` with a TLS transport (certificate paths): a customer calling over TLS is bridged."""
    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    with SipCall(tmp_path, serve=True, record=False, timeout=30,
                 guard_args=["--transports", "udp,tcp,tls", "--tls-cert", cert, "--tls-key", key,
                             "--tls-port", str(tls_port)]) as sip:
        customer = sip.customer("--tls-cert", cert, "--tls-key", key, "--play-s", "1",
                                to=f"sip:guard@127.0.0.1:{tls_port};transport=tls")
        assert customer.wait(40) == 0
        sip.agent.wait(10)
    guard, agent = sip.guard, sip.agent
    assert sip.rc_guard == 0
    log = guard.err_path.read_text()
    assert "(udp/tcp/tls)" in log and "ended (customer-hangup)" in log
    done = [e for e in agent.events() if e.get("event") == "done"][0]
    assert done["calls"][0]["confirmed"]
