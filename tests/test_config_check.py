# SPDX-License-Identifier: GPL-2.0-or-later
"""The configuration is checked completely before anything starts (issue 18): every problem at once, the
payment gateway built with its key, the audit trail, addresses and files; ``dtmfguard config check``;
``-vv`` shows a redacted traceback for internal errors; a worker's /health answers 503 when not OK."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from dtmfguard.server.config import ConfigError, GuardConfig, load_config
from dtmfguard.server.preflight import check_addresses, check_audit, check_gateway, check_resources

PAN = "4111111111111111"
KEY = "88" * 32


def _cli(*args, env=None, cwd=None):
    import os

    return subprocess.run([sys.executable, "-m", "dtmfguard", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def _write(tmp_path, text, name="guard.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_every_value_problem_at_once(tmp_path):
    p = _write(tmp_path, '[sip]\nlisten = "127.0.0.1:5070"\ntransports = ["udp", "sctp"]\nrtp_port = 80\n'
                         '[media]\nmask = "beep"\ncolour = "red"\n[workers]\ncount = 0\n[nope]\nx = 1\n')
    with pytest.raises(ConfigError) as err:
        load_config(str(p))
    problems = err.value.problems
    assert problems == [
        "unknown key media.colour; known: mask, mask_mode, priority, customer_srtp, agent_srtp, srtp_signaling, "
        "payment_notch, keypad_burst",
        "unknown section [nope]; known: sip, agent, media, control, secure, identity, payment, workers",
        "sip.transports must be a non-empty list of udp, tcp, tls",
        "sip.rtp_port must be 1024..65000 and sip.rtp_range 2..10000",
        "no agent target: set agent.uri (or --agent) to a sip: or sips: URI",
        "media.mask must be tone, silence or noise, got 'beep'",
        "workers.count must be 1..64, got 0",
    ]
    assert str(err.value).startswith("7 configuration problems: unknown key media.colour")


def test_tls_port_is_a_port_and_counts_where_workers_must_fit(tmp_path):
    """sip.tls_port of -1 or 99999 was passed on to pjsip (serve --tls-port -1 started); with TLS on, the workers'
    TLS ports (tls_port + index x step) must fit below 65535 as their SIP ports must."""
    base = '[agent]\nuri = "sip:agent@127.0.0.1:5072"\n[sip]\nlisten = "127.0.0.1:5070"\n'
    for bad in (-1, 99999):
        with pytest.raises(ConfigError) as err:
            load_config(str(_write(tmp_path, base + f"tls_port = {bad}\n")))
        assert err.value.problems == [f"sip.tls_port must be 1..65535, or 0 for the listen port + 1, got {bad}"]
    assert load_config(str(_write(tmp_path, base + "tls_port = 5061\n"))).tls_port == 5061
    tls = ('transports = ["udp", "tls"]\ntls_cert = "c.pem"\ntls_key = "k.pem"\ntls_port = 65530\n'
           '[workers]\ncount = 2\n')
    with pytest.raises(ConfigError) as err:
        load_config(str(_write(tmp_path, base + tls)))
    assert any("2 workers do not fit below port 65535" in p for p in err.value.problems)
    ok = load_config(str(_write(tmp_path, base + tls.replace("65530", "5061"))))
    assert (ok.workers, ok.tls_port) == (2, 5061)


def test_keypad_burst_is_a_boolean_that_reaches_the_masker(tmp_path):
    """media.keypad_burst (the masker's keypad burst, MaskerParams.keypad_burst_*): on by default (the masker's own
    defaults), false gives each call's masker the parameters without it, anything else is a problem named by its key."""
    from dtmfguard.dsp.masker import Masker
    from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS

    base = '[agent]\nuri = "sip:agent@127.0.0.1:5072"\n'
    on = load_config(str(_write(tmp_path, base)))
    assert on.keypad_burst is True and "params" not in on.masker_options()
    off = load_config(str(_write(tmp_path, base + '[media]\nkeypad_burst = false\n')))
    assert off.keypad_burst is False
    m = Masker(**off.masker_options())
    assert m.params.keypad_burst_presses is None and m._burst_n == 0
    assert m.params.keypad_context_ms is None and m._ctx_len == 0  # the keypad context goes with it
    assert Masker(**on.masker_options())._burst_n == DEFAULT_MASKER_PARAMS.keypad_burst_presses >= 1
    assert Masker(**on.masker_options())._ctx_len > 0
    # the detector's keys open the burst only with it on: a call's pipeline then runs no detector for the masker
    from dtmfguard.media.pipeline import CallPipeline

    assert not m.wants_keys and Masker(**on.masker_options()).wants_keys
    assert CallPipeline(masker_options=off.masker_options())._masker_keys is False
    assert CallPipeline(masker_options=on.masker_options())._masker_keys is True
    with pytest.raises(ConfigError) as err:
        load_config(str(_write(tmp_path, base + '[media]\nkeypad_burst = 1\n')))
    assert any("keypad_burst" in p for p in err.value.problems)


def test_payment_notch_is_a_boolean(tmp_path):
    """media.payment_notch (the masker's payment profile in secure mode): on by default, false turns it off,
    anything else is a problem named by its key."""
    base = '[agent]\nuri = "sip:agent@127.0.0.1:5072"\n'
    assert load_config(str(_write(tmp_path, base))).payment_notch is True
    assert load_config(str(_write(tmp_path, base + '[media]\npayment_notch = false\n'))).payment_notch is False
    with pytest.raises(ConfigError) as err:
        load_config(str(_write(tmp_path, base + '[media]\npayment_notch = "yes"\n')))
    assert any("payment_notch" in p for p in err.value.problems)


def test_workers_must_fit_below_port_65535():
    assert "do not fit below port 65535" in " ".join(
        GuardConfig(sip_port=65000, agent_uri="sip:a@b", workers=64).problems())


def _cfg(tmp_path, **kw):
    base = dict(agent_uri="sip:agent@127.0.0.1:5072", control_port=8070)
    base.update(kw)
    return GuardConfig(**base)


def test_gateway_typos_fail_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("DTMFGUARD_VAULT_KEY", KEY)
    vault = str(tmp_path / "v.sqlite3")
    assert check_gateway(_cfg(tmp_path, gateway_options={"path": vault})) == []
    assert check_gateway(_cfg(tmp_path, gateway="vualt")) == [
        "payment gateway 'vualt': unknown gateway 'vualt'; available: vault, webhook (or give module:attribute)"]
    assert check_gateway(_cfg(tmp_path, gateway_options={"path": vault, "kye_file": "/k"})) == [
        "payment.options do not fit gateway 'vault': VaultGateway.__init__() got an unexpected keyword "
        "argument 'kye_file'"]
    monkeypatch.delenv("DTMFGUARD_VAULT_KEY")
    [problem] = check_gateway(_cfg(tmp_path, gateway_options={"path": vault}))
    assert problem.startswith("payment gateway 'vault': no vault key: set DTMFGUARD_VAULT_KEY")
    # the key that does not open the existing vault
    monkeypatch.setenv("DTMFGUARD_VAULT_KEY", "99" * 32)
    [problem] = check_gateway(_cfg(tmp_path, gateway_options={"path": vault}))
    assert "key check failed" in problem
    # no control API: no payment can start, so no gateway is built
    assert check_gateway(_cfg(tmp_path, gateway="vualt", control_port=0)) == []


def test_webhook_gateway_needs_its_secret(monkeypatch, tmp_path):
    monkeypatch.delenv("DTMFGUARD_WEBHOOK_SECRET", raising=False)
    cfg = _cfg(tmp_path, gateway="webhook", gateway_options={"url": "https://pay.example/x"})
    assert check_gateway(cfg) == ["payment gateway 'webhook': no webhook signing secret: set DTMFGUARD_WEBHOOK_SECRET"]
    # a secret that is a card number is still never echoed
    monkeypatch.setenv("DTMFGUARD_WEBHOOK_SECRET", PAN)
    assert check_gateway(cfg) == []


def test_a_gateway_error_message_is_redacted(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "badgw.py").write_text(f"def make(**kw):\n    raise RuntimeError('card {PAN} refused')\n")
    [problem] = check_gateway(_cfg(tmp_path, gateway="badgw:make"))
    assert PAN not in problem and "[redacted]" in problem


def test_audit_trail_checks(tmp_path):
    assert check_audit(_cfg(tmp_path, audit_path=str(tmp_path / "audit.jsonl"))) == []
    assert not (tmp_path / "audit.jsonl").exists()  # checking creates nothing
    assert check_audit(_cfg(tmp_path, audit_path="/nonexistent/dir/audit.jsonl")) == [
        "payment.audit: directory /nonexistent/dir does not exist"]
    assert check_audit(_cfg(tmp_path, audit_path=str(tmp_path))) == [f"payment.audit: {tmp_path} is a directory"]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"seq": 0, "hash": "ab"}\n{"seq": 1, "ha')
    [problem] = check_audit(_cfg(tmp_path, audit_path=str(broken)))
    assert "ends with a partial record" in problem


def test_addresses_and_files(tmp_path, monkeypatch):
    monkeypatch.delenv("DTMFGUARD_API_TOKEN", raising=False)
    monkeypatch.delenv("DTMFGUARD_VAULT_KEY", raising=False)
    cfg = _cfg(tmp_path, sip_host="10.255.255.1", agent_uri="sip:agent@no-such-host.invalid:5060",
               transports=("udp", "tls"), tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem"),
               control_port=0)
    real = socket.getaddrinfo

    def fake(host, *a, **kw):  # resolvers differ (offline: "temporary failure"): a definite "no such name"
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert check_addresses(cfg) == ["sip.listen: 10.255.255.1 is not an address of this host",
                                    "agent target host no-such-host.invalid does not resolve "
                                    "(Name or service not known)"]
    assert check_addresses(dataclass_replace(cfg, sip_host="a..b", agent_uri="sip:x@c..d")) == [
        "sip.listen: a..b is not a valid host name", "agent target host 'c..d' is not a valid host name"]
    problems = check_resources(dataclass_replace(cfg, control_port=8070))
    assert f"sip.tls_cert: {tmp_path / 'cert.pem'} does not exist" in problems
    assert "control API needs a bearer token in the environment variable DTMFGUARD_API_TOKEN" in problems
    assert len(problems) == 6, problems  # 2 addresses, 2 TLS files, the token, the vault key


def dataclass_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


# -------------------------------------------------------------------------------------------------- CLI
GOOD = """
[sip]
listen = "127.0.0.1:5070"
[agent]
uri = "sip:agent@127.0.0.1:5072"
[control]
listen = "127.0.0.1:8070"
[payment]
gateway = "vault"
options = {{ path = "{vault}" }}
audit = "{audit}"
"""


def test_config_check_cli(tmp_path):
    env = {"DTMFGUARD_API_TOKEN": "t", "DTMFGUARD_VAULT_KEY": KEY}
    good = _write(tmp_path, GOOD.format(vault=tmp_path / "v.sqlite3", audit=tmp_path / "a.jsonl"))
    r = _cli("config", "check", str(good), env=env)
    assert r.returncode == 0 and r.stdout.startswith(f"{good}: OK (values and host"), r
    bad = _write(tmp_path, GOOD.format(vault=tmp_path / "v.sqlite3", audit="/nonexistent/a.jsonl")
                 .replace('"vault"', '"vualt"'), "bad.toml")
    r = _cli("config", "check", "--json", str(bad), env=env)
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["ok"] is False and out["checked"] == ["values", "host"]
    assert out["problems"] == [
        "payment gateway 'vualt': unknown gateway 'vualt'; available: vault, webhook (or give module:attribute)",
        "payment.audit: directory /nonexistent does not exist"]
    r = _cli("config", "check", "--values-only", str(bad), env=env)
    assert r.returncode == 0, r
    r = _cli("config", "check", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and r.stderr.strip() == f"dtmfguard: config file not found: {tmp_path / 'missing.toml'}"
    _write(tmp_path, "[sip\n", "syntax.toml")
    r = _cli("config", "check", str(tmp_path / "syntax.toml"))
    assert r.returncode == 1 and "is not valid TOML" in r.stdout


def test_serve_fails_at_start_on_a_payment_typo(tmp_path):
    bad = _write(tmp_path, GOOD.format(vault=tmp_path / "v.sqlite3", audit=tmp_path / "nodir" / "a.jsonl")
                 .replace("path =", "pth ="))
    r = _cli("serve", "--config", str(bad), env={"DTMFGUARD_API_TOKEN": "t", "DTMFGUARD_VAULT_KEY": KEY})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        "dtmfguard: 2 configuration problems: payment.options do not fit gateway 'vault': VaultGateway.__init__() "
        f"got an unexpected keyword argument 'pth'; payment.audit: directory {tmp_path / 'nodir'} does not exist")


# ---------------------------------------------------------------------------------------- -vv, /health
def test_vv_shows_a_redacted_traceback(monkeypatch, capsys):
    from dtmfguard import cli
    from dtmfguard.cli import info

    def boom(args):
        raise ValueError(f"card {PAN} and 4111 1111 1111 1111 went wrong")

    monkeypatch.setattr(info, "run", boom)
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), boom))
    assert cli.main(["info"]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err == "dtmfguard: internal error (ValueError); run with -vv for details\n"
    assert cli.main(["-vv", "info"]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in boom" in err
    assert "ValueError: card [redacted] and [redacted] went wrong" in err
    assert PAN not in err and "4111 1111" not in err
    assert err.endswith("dtmfguard: internal error (ValueError); traceback above (redacted)\n")


def _with_func(parser, func):
    parser.set_defaults()
    for action in parser._actions:
        if getattr(action, "choices", None) and "info" in action.choices:
            action.choices["info"].set_defaults(func=func)
    return parser


def test_log_debug_traceback_redacts(caplog):
    import logging

    from dtmfguard.security import log_debug_traceback

    log = logging.getLogger("dtmfguard.test")
    try:
        raise RuntimeError(f"digits {PAN}")
    except RuntimeError as exc:
        with caplog.at_level(logging.DEBUG, logger="dtmfguard.test"):
            log_debug_traceback(log, exc)
    [rec] = caplog.records
    assert "Traceback" in rec.getMessage() and PAN not in rec.getMessage()


def test_worker_health_is_503_when_not_ok():
    import urllib.error
    import urllib.request

    from dtmfguard.server.control import ControlServer

    class G:
        ok = False

        def health(self):
            return {"ok": self.ok}

    g = G()
    server = ControlServer(g, "127.0.0.1", 0, "tok")
    server.start()
    try:
        url = f"http://127.0.0.1:{server.address[1]}/health"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=5)
        assert err.value.code == 503 and json.loads(err.value.read())["ok"] is False
        g.ok = True
        assert urllib.request.urlopen(url, timeout=5).status == 200
    finally:
        server.stop()


def test_tls_material_must_load(tmp_path):
    """pjsip starts with a garbage certificate (measured: ready, then every TLS handshake fails); the
    check loads certificate, key and CA the way a TLS stack would."""
    from _capture_util import make_tls_cert

    cert, key = make_tls_cert(tmp_path)
    base = dict(transports=("udp", "tls"), tls_cert=str(cert), tls_key=str(key), control_port=0)
    assert check_resources(_cfg(tmp_path, **base)) == []
    assert check_resources(_cfg(tmp_path, **base, tls_ca=str(cert))) == []
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    [problem] = check_resources(_cfg(tmp_path, **{**base, "tls_cert": str(junk)}))
    assert problem.startswith("sip.tls_cert/sip.tls_key: not a matching PEM certificate and private key")
    other_cert, _ = make_tls_cert(tmp_path / "other") if (tmp_path / "other").mkdir() is None else None
    [problem] = check_resources(_cfg(tmp_path, **{**base, "tls_cert": str(other_cert)}))  # key of another cert
    assert "not a matching PEM certificate and private key" in problem
    [problem] = check_resources(_cfg(tmp_path, **base, tls_ca=str(junk)))
    assert problem.startswith("sip.tls_ca: no usable PEM certificates")
