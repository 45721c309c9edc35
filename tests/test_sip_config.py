# SPDX-License-Identifier: GPL-2.0-or-later
"""Guard configuration (TOML + flags), agent targets, the serve/kamailio-config CLIs' error handling."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dtmfguard.server.config import ConfigError, GuardConfig, agent_target, load_config, parse_hostport
from dtmfguard.server.kamailio import dispatcher_list, kamailio_cfg
from dtmfguard.server.supervisor import config_to_json, worker_configs

INVITE = ("INVITE sip:7001@guard.example.com;user=phone SIP/2.0\r\n"
          "Via: SIP/2.0/UDP 10.0.0.1\r\nX-Agent-URI: <sip:desk42@10.1.1.1:5060>\r\nContent-Length: 0\r\n\r\n")


def test_defaults_and_flags_override_file(tmp_path):
    f = tmp_path / "guard.toml"
    f.write_text('[sip]\nlisten = "0.0.0.0:5080"\nrtp_port = 30000\n[agent]\nuri = "sip:a@10.0.0.2"\n'
                 '[media]\nmask_mode = "payment"\n[workers]\ncount = 3\n')
    cfg = load_config(str(f), {"sip_port": 5090, "agent_uri": None})
    assert (cfg.sip_host, cfg.sip_port, cfg.rtp_port, cfg.agent_uri) == ("0.0.0.0", 5090, 30000, "sip:a@10.0.0.2")
    assert cfg.mask_mode == "payment" and cfg.workers == 3 and cfg.transports == ("udp", "tcp")


@pytest.mark.parametrize("text, message", [
    ("[sip\nlisten=", "is not valid TOML"),
    ("[nope]\nx = 1\n", "unknown section [nope]"),
    ("[sip]\nlisten = 5070\n", "sip.listen must be a str, got int"),
    ('[sip]\nlisten = "localhost"\n', "sip.listen must be host:port"),
    ('[sip]\nlisten = "127.0.0.1:99999"\n[agent]\nuri="sip:a@b"\n', "port must be 0..65535"),
    ('[agent]\nuri = "http://x"\n', "no agent target"),
    ('[agent]\nuri = "sip:a@b"\nfrom = "dns"\n', "agent.from must be one of"),
    ('[agent]\nfrom = "request-uri"\n', "needs agent.template containing {user}"),
    ('[agent]\nuri = "sip:a@b"\n[sip]\ntransports = ["tls"]\n', "tls_cert and sip.tls_key"),
    ('[agent]\nuri = "sip:a@b"\n[media]\nmask_mode = "never"\n', "media.mask_mode must be"),
    ('[agent]\nuri = "sip:a@b"\ncolour = 1\n', "unknown key agent.colour"),
])
def test_bad_config_one_clear_error(tmp_path, text, message):
    f = tmp_path / "g.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(f))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found: /nonexistent.toml"):
        load_config("/nonexistent.toml")


def test_agent_targets():
    cfg = GuardConfig(agent_uri="sip:agent@1.2.3.4").check()
    assert agent_target(cfg, INVITE) == "sip:agent@1.2.3.4"
    cfg = GuardConfig(agent_from="request-uri", agent_template="sip:{user}@pbx.local:5060").check()
    assert agent_target(cfg, INVITE) == "sip:7001@pbx.local:5060"
    cfg = GuardConfig(agent_from="header", agent_header="x-agent-uri").check()
    assert agent_target(cfg, INVITE) == "sip:desk42@10.1.1.1:5060"
    with pytest.raises(ConfigError, match="no usable X-Other header"):
        agent_target(GuardConfig(agent_from="header", agent_header="X-Other").check(), INVITE)
    with pytest.raises(ConfigError, match="no usable user part"):
        agent_target(GuardConfig(agent_from="request-uri", agent_template="sip:{user}@x").check(),
                     "INVITE sip:guard.example.com SIP/2.0\r\n\r\n")
    # a user part that would inject URI syntax is refused
    with pytest.raises(ConfigError):
        agent_target(GuardConfig(agent_from="request-uri", agent_template="sip:{user}@x").check(),
                     "INVITE sip:a%40evil;x@guard SIP/2.0\r\n\r\n")


def test_hostport():
    assert parse_hostport("[::1]:5060") == ("::1", 5060)
    with pytest.raises(ConfigError, match="--listen must be host:port"):
        parse_hostport("5060", "--listen")


def test_workers_get_disjoint_ports_and_kamailio_lists_them():
    cfg = GuardConfig(agent_uri="sip:a@b", sip_port=5100, rtp_port=40000, workers=3, control_port=8100).check()
    ws = worker_configs(cfg)
    assert [w.sip_port for w in ws] == [5100, 5110, 5120]
    assert [w.rtp_port for w in ws] == [40000, 40100, 40200]
    assert all(w.rtp_port + w.rtp_range <= n.rtp_port for w, n in zip(ws, ws[1:]))
    assert [w.control_port for w in ws] == [8101, 8102, 8103]
    lst = dispatcher_list(cfg)
    assert lst.count("\n1 sip:127.0.0.1:51") == 3
    text = kamailio_cfg("127.0.0.1", 5060, "/tmp/d.list")
    assert 'ds_select_dst("1", "4")' in text and "listen=udp:127.0.0.1:5060" in text and "record_route()" in text
    assert '"agent_uri": "sip:a@b"' in config_to_json(ws[0])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dtmfguard", *args], capture_output=True, text=True, timeout=60)


def test_serve_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sip]\nlisten = 1\n")
    r = _cli("serve", "--config", str(bad))
    # every problem at once, on one line (issue 18)
    assert r.returncode == 2 and r.stderr.strip() == ("dtmfguard: 2 configuration problems: sip.listen must be a str, "
                                                      "got int; no agent target: set agent.uri (or --agent) to a "
                                                      "sip: or sips: URI")
    r = _cli("serve", "--listen", "127.0.0.1:5070")
    assert r.returncode == 2 and "no agent target" in r.stderr and r.stderr.count("\n") == 1
    r = _cli("serve", "--listen", "nonsense", "--agent", "sip:a@b")
    assert r.returncode == 2 and "--listen must be host:port" in r.stderr
    r = _cli("serve", "--help")
    assert r.returncode == 0 and "dtmfguard serve --listen 127.0.0.1:5070 --agent" in r.stdout


def test_kamailio_config_cli(tmp_path):
    r = _cli("kamailio-config", "--listen", "127.0.0.1:5200", "--workers", "2", "--output", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "dispatcher.list").read_text().count("sip:127.0.0.1:52") == 2


@pytest.mark.needs_program("kamailio")
def test_kamailio_accepts_the_generated_config(tmp_path):
    r = _cli("kamailio-config", "--listen", "127.0.0.1:5200", "--workers", "2", "--output", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    check = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "kamailio.cfg")], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stderr[-1500:]
