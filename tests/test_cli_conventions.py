# SPDX-License-Identifier: GPL-2.0-or-later
"""Every registered command follows the CLI conventions: --help with examples and exit codes, usage errors
in one line with exit code 2, no traceback."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from dtmfguard.cli import COMMANDS, build_parser


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def _all_commands():
    out = []
    for name, sub in _subparsers(build_parser()).items():
        out.append(((name,), sub))
        for action_name, action_parser in _subparsers(sub).items():
            out.append(((name, action_name), action_parser))
    return out


def test_every_module_in_commands_registers_a_command():
    names = set(_subparsers(build_parser()))
    assert len(names) == len(COMMANDS)
    assert {"demo", "live", "serve", "detect", "mask", "inspect", "audit", "info"} <= names


@pytest.mark.parametrize("path, parser", _all_commands(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_help_has_examples_and_exit_codes(path, parser):
    text = parser.format_help()
    assert "Example" in text, path
    assert "Exit codes" in text or _subparsers(parser), path


@pytest.mark.parametrize("name", sorted(_subparsers(build_parser())))
def test_usage_error_is_one_line_exit_2(name):
    p = subprocess.run([sys.executable, "-m", "dtmfguard", name, "--no-such-option"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("dtmfguard") and lines[0].endswith("--help)")


def test_inspect_json_lists_masked_spans(tmp_path):
    pytest.importorskip("matplotlib")
    import json
    from pathlib import Path

    wav = Path(__file__).resolve().parent.parent / "samples" / "customer-card.wav"
    p = subprocess.run([sys.executable, "-m", "dtmfguard", "inspect", str(wav), "--png", str(tmp_path / "i.png"),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["masked_spans"] == len(report["spans"]) >= 26  # 26 key presses in the sample
    assert (tmp_path / "i.png").read_bytes()[:4] == b"\x89PNG"


#: numbers out of range that were once accepted: a command that started anyway (a relay refusing every call,
#: a demo "timed out" at -1 s) or failed late as an "internal error" (exit 3)
BAD_NUMBERS = [
    ("mask", "--jobs", "0"), ("mask", "--lookahead-ms", "-5"), ("inspect", "--width", "-1"),
    ("inspect", "--dpi", "0"), ("demo", "--timeout", "nan"), ("relay", "--max-calls", "0"),
    ("relay", "--call-timeout", "-1"), ("relay", "--info-port", "99999"), ("serve", "--worker-index", "-1"),
]


@pytest.mark.parametrize("name, option, value", BAD_NUMBERS, ids=lambda v: str(v))
def test_a_number_out_of_range_is_a_usage_error_naming_the_option(tmp_path, name, option, value):
    args = {"mask": ["in.wav", "out.wav"], "inspect": ["in.wav", "--png", "o.png"]}.get(name, [])
    try:
        p = subprocess.run([sys.executable, "-m", "dtmfguard", name, option, value, *args], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dtmfguard {name} {option} {value} started instead of refusing")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"argument {option}: {value} is not between" in lines[0], p.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--media-address", "999.1.1.1"], "the media address must be an IPv4 or IPv6 address, got '999.1.1.1'"),
    (["--ng", "localhost:22222"], "the media address must be an IPv4 or IPv6 address, got 'localhost'"),
    (["--media-bind", "eth0"], "the media bind address must be an IPv4 or IPv6 address, got 'eth0'"),
])
def test_relay_refuses_a_media_address_that_is_not_an_address_at_start(argv, message):
    """The address goes into every SDP c= line (RFC 4566 5.7): a host name, or nonsense, used to be found at
    the first call."""
    try:
        p = subprocess.run([sys.executable, "-m", "dtmfguard", "relay", "--ng", "127.0.0.1:1", *argv],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"relay {argv} started instead of refusing")
    assert p.returncode == 2 and p.stderr.strip() == f"dtmfguard: {message}" + (
        " (name it when the ng address is a host name)" if "media address" in message else ""), p.stderr


def test_relay_with_a_control_api_checks_the_payment_gateway_at_start(tmp_path):
    """A relay with ``--control`` takes payments: a gateway that cannot be built (unknown name, no vault key) used
    to be a warning, and every payment a 503; now it is refused at start, as ``serve`` refuses it."""
    import os

    (tmp_path / "g.toml").write_text('[payment]\ngateway = "nope"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTMFGUARD_")}
    env["DTMFGUARD_API_TOKEN"] = "t" * 32
    for extra, message in ((["--config", str(tmp_path / "g.toml")], "payment gateway 'nope': unknown gateway"),
                           ([], "payment gateway 'vault': no vault key")):
        try:
            p = subprocess.run([sys.executable, "-m", "dtmfguard", "relay", "--ng", "127.0.0.1:1", "--control",
                                "127.0.0.1:1", *extra], capture_output=True, text=True, timeout=60, env=env)
        except subprocess.TimeoutExpired:
            pytest.fail(f"relay {extra} started without a usable payment gateway")
        assert p.returncode == 2 and p.stderr.startswith(f"dtmfguard: {message}"), p.stderr
