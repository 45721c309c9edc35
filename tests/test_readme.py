# SPDX-License-Identifier: GPL-2.0-or-later
"""The README's promises that code can check: its two commands, the CLI table, the files it names."""
from __future__ import annotations

import re
from pathlib import Path

from dtmfguard.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks_after(heading: str) -> list:
    section = README.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_two_commands_first_runs_the_demo_second_is_what_ci_runs():
    first, second = [b.strip() for b in _blocks_after("## Two commands")[:2]]
    assert first == "pip install -e . && dtmfguard demo"
    assert second == "pip install -e '.[test]' && python -m pytest -q -n 4 --dist loadfile"
    assert second.replace("pip install", "pip install -q") in (ROOT / ".ci" / "run").read_text()


def test_every_command_is_in_the_cli_table():
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in sub.choices:
        assert f"`dtmfguard {name}" in README, name


def test_files_the_readme_names_exist():
    names = set(re.findall(r"`((?:samples|benchmarks|dtmfguard|tests)/[\w./-]+?)`", README))
    names |= set(re.findall(r"python (benchmarks/\w+\.py)", README))
    assert len(names) > 15
    missing = [n for n in sorted(names) if "*" not in n and not (ROOT / n.rstrip("/")).exists()]
    assert missing == []
