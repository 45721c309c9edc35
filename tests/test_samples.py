# SPDX-License-Identifier: GPL-2.0-or-later
"""samples/: the configuration, unit and front-door examples are accepted by the tools that read them,
and the recordings are what LICENSES.md says they are (the agent's holds speech but no digit)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dtmfguard.testkit.adversary import recover_digits
from dtmfguard.dsp.audio import read_audio
from dtmfguard.dsp.detector import detect

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def dtmfguard(*args):
    return subprocess.run([sys.executable, "-m", "dtmfguard", *args], capture_output=True, text=True, timeout=60)


def test_guard_toml_is_accepted_by_the_serve_loader():
    from dtmfguard.server.config import load_config, parse_hostport

    cfg = load_config(str(SAMPLES / "guard.toml"))
    assert (cfg.sip_host, cfg.sip_port, cfg.workers) == ("10.0.0.10", 5070, 4)
    assert cfg.agent_from == "request-uri" and "{user}" in cfg.agent_template
    assert cfg.gateway == "vault" and cfg.gateway_options["key_file"] == "/etc/dtmfguard/vault.key"
    assert cfg.audit_path == "/var/lib/dtmfguard/audit.jsonl"
    assert parse_hostport("127.0.0.1:8070") == (cfg.control_host, cfg.control_port)


def test_guard_toml_through_the_cli(tmp_path):
    # kamailio-config reads --config with serve's own loader (flags -> GuardConfig), without binding ports
    p = dtmfguard("kamailio-config", "--config", str(SAMPLES / "guard.toml"), "--output", str(tmp_path), "--json")
    assert p.returncode == 0, p.stderr
    assert '"workers": 4' in p.stdout


def test_sample_kamailio_matches_what_the_generator_makes_for_guard_toml(tmp_path):
    p = dtmfguard("kamailio-config", "--config", str(SAMPLES / "guard.toml"), "--front", "10.0.0.10:5060",
                  "--output", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "dispatcher.list").read_text() == (SAMPLES / "kamailio" / "dispatcher.list").read_text()

    def body(text: str) -> list:
        return [ln for ln in text.splitlines() if not ln.startswith(("#", "mpath")) and "list_file" not in ln]

    assert body((tmp_path / "kamailio.cfg").read_text()) == body((SAMPLES / "kamailio" / "kamailio.cfg").read_text())


@pytest.mark.needs_program("kamailio")
def test_sample_kamailio_cfg_passes_kamailio_check(tmp_path):
    cfg = (SAMPLES / "kamailio" / "kamailio.cfg").read_text()
    cfg = cfg.replace("/etc/kamailio/dtmfguard/dispatcher.list", str(SAMPLES / "kamailio" / "dispatcher.list"))
    cfg = cfg.replace("10.0.0.10:5060", "127.0.0.1:5060")  # the check binds nothing, but needs a local address
    (tmp_path / "k.cfg").write_text(cfg)
    p = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "k.cfg")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "config file ok" in p.stdout + p.stderr, p.stdout + p.stderr


@pytest.mark.needs_program("systemd-analyze", "systemd")
def test_systemd_unit_verifies(tmp_path):
    unit = (SAMPLES / "dtmfguard.service").read_text()
    assert "ExecStart=/opt/dtmfguard/bin/dtmfguard serve --config /etc/dtmfguard/guard.toml" in unit
    exe = shutil.which("dtmfguard") or sys.executable
    (tmp_path / "dtmfguard.service").write_text(unit.replace("/opt/dtmfguard/bin/dtmfguard", exe))
    p = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "dtmfguard.service")], capture_output=True,
                       text=True, timeout=60)
    problems = [ln for ln in (p.stdout + p.stderr).splitlines() if "dtmfguard.service" in ln]
    assert p.returncode == 0 and problems == [], p.stdout + p.stderr
    for directive in ("LimitCORE=0", "NoNewPrivileges=yes", "ProtectSystem=strict", "EnvironmentFile="):
        assert directive in unit


def test_demo_recordings_customer_keys_agent_none():
    customer, rate = read_audio(str(SAMPLES / "demo-customer.wav"))
    agent, rate_a = read_audio(str(SAMPLES / "demo-agent.wav"))
    assert rate == rate_a == 8000
    assert len(detect(customer, rate)) == 17  # the card number and '#', in-band
    assert detect(agent, rate) == [] and recover_digits(agent, rate) == []
    assert np.max(np.abs(agent)) > 5000  # speech and mask, not silence


def test_licences_name_every_sample_file():
    text = (SAMPLES / "LICENSES.md").read_text()
    for f in SAMPLES.glob("*.wav"):
        assert f"`{f.name}`" in text
    assert "Allison Smith" in text and "CC-BY-SA-3.0" in text
    listed = set(re.findall(r"`([\w.-]+\.(?:py|toml|service|wav))`", (SAMPLES / "README.md").read_text()))
    assert listed >= {f.name for f in SAMPLES.iterdir() if f.suffix in (".py", ".toml", ".service", ".wav")}
