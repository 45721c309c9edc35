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
