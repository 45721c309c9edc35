# SPDX-License-Identifier: GPL-2.0-or-later
"""Cross-references in prose point at code that exists (issue 15): after a layout change, a docstring or a
README that still names ``dtmfguard.masker`` or ``dtmfguard/sip/b2bua.py`` sends a newcomer nowhere.

Checked without importing anything (modules under ``sip/pj/`` need pjsua2): every dotted ``dtmfguard.x.y`` in
the Markdown files, in docstrings and in comments must name a module or package of the tree, optionally
followed by a name that module defines (a function, class, constant, import or ``__all__`` entry) and, for a
class, one of its members; every ``dtmfguard/...``, ``tests/...``, ``benchmarks/...`` or ``native/...`` path
written there must exist.  Code (string literals such as logger names) is not prose and is not checked.
"""
from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: dotted names that are not modules: what they are instead
NOT_MODULES = {
    "dtmfguard.gateways": "the gateway plugins' entry point group",
    "dtmfguard.service": "the systemd unit's file name",
    "dtmfguard.invalid": "a host name that cannot exist (RFC 6761 .invalid)",
    "dtmfguard.pjsip": "the logger of pjsip's own log lines (sip/pj/endpoint)",
}
#: this module names old paths on purpose
SELF = "tests/test_doc_references.py"
DOTTED = re.compile(r"(?<![\w./@-])dtmfguard(?:\.[A-Za-z_]\w*)+")
#: a path to a file of the tree (a glob such as ``tests/test_sip_*.py`` is not a path)
PATH = re.compile(r"(?<![\w./-])(?:dtmfguard|tests|benchmarks|native)/[\w./-]*\.(?:py|c|h|md|toml|xml|json|sh)\b(?!\*)")


def _files() -> list:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, timeout=30)
        names = out.stdout.split() if out.returncode == 0 else []
    except OSError:
        names = []
    if not names:  # not a git checkout (an sdist): the files on disk
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [n for n in names if n.endswith((".py", ".md")) and not n.startswith("build/")]


def _prose(path: Path) -> list:
    """(line, text) of the prose in a file: all of a Markdown file; the docstrings and comments of a module."""
    text = path.read_text(errors="replace")
    if path.suffix == ".md":
        return list(enumerate(text.splitlines(), 1))
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                out.append((tok.start[0], tok.string))
        tree = ast.parse(text)
    except (SyntaxError, tokenize.TokenError):
        return out
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                for i, line in enumerate(first.value.value.splitlines()):
                    out.append((first.lineno + i, line))
    return out


def _module_file(parts) -> Path | str | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    if base.parent.is_dir() and parts[-1].startswith("_") and parts[-1].endswith("native"):
        return "extension"  # a C extension module (built from native/)
    return None


@lru_cache(maxsize=None)
def _names(path: Path) -> dict:
    """Top-level names a module defines -> their ClassDef (for classes) or None."""
    tree = ast.parse(path.read_text())
    names: dict = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                names.update(dict.fromkeys(ast.literal_eval(node.value)))
            except ValueError:
                pass
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = None
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(dict.fromkeys((a.asname or a.name).split(".")[0] for a in node.names))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(dict.fromkeys(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            stack.extend(ast.iter_child_nodes(node))
    return names


def _members(cls: ast.ClassDef) -> set:
    out = set()
    for node in ast.walk(cls):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            out.add(node.attr)
    return out


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        found = _module_file(parts[:i])
        if found is None:
            continue
        rest = parts[i:]
        if not rest or found == "extension":
            return True
        names = _names(found)
        if rest[0] not in names:
            return False
        cls = names[rest[0]]
        return len(rest) == 1 or not isinstance(cls, ast.ClassDef) or rest[1] in _members(cls)
    return False


def _broken() -> list:
    bad = []
    for name in _files():
        if name == SELF:
            continue
        for line_no, line in _prose(ROOT / name):
            for m in DOTTED.finditer(line):
                ref = m.group(0)
                if ref not in NOT_MODULES and not resolves(ref):
                    bad.append(f"{name}:{line_no}: {ref}")
            for m in PATH.finditer(line):
                if not (ROOT / m.group(0)).exists():
                    bad.append(f"{name}:{line_no}: {m.group(0)}")
    return bad


def test_the_checker_tells_old_names_from_current_ones():
    assert resolves("dtmfguard.dsp.masker") and resolves("dtmfguard.dsp.masker.Masker")
    assert resolves("dtmfguard.sip.bridge.Bridge.remote_offer") and resolves("dtmfguard.DtmfDetector")
    assert resolves("dtmfguard.sip.pj.b2bua.Guard") and resolves("dtmfguard.dsp._native")
    for old in ("dtmfguard.masker", "dtmfguard.adversary", "dtmfguard.rfc4733", "dtmfguard.corpora",
                "dtmfguard.sip.b2bua", "dtmfguard.dsp.masker.NoSuchThing", "dtmfguard.sip.bridge.Bridge.nothing"):
        assert not resolves(old), old
    lines = dict(_prose(Path(__file__)))
    assert any("dtmfguard.masker" in text for text in lines.values())  # docstrings are read ...
    assert any("a glob such as" in text for text in lines.values())  # ... and comments
    assert [m.group(0) for m in PATH.finditer("see tests/test_sip_*.py, dtmfguard/sip/pj/b2bua.py.")] == \
        ["dtmfguard/sip/pj/b2bua.py"]
    assert "dtmfguard.gateways" in NOT_MODULES and len(_files()) > 100


def test_prose_names_only_modules_and_paths_that_exist():
    bad = _broken()
    if bad and not (ROOT / "dtmfguard").is_dir():
        pytest.skip("not run from a source tree")
    assert bad == [], "references to code that does not exist (renamed or moved?):\n" + "\n".join(bad)


def test_no_merge_conflict_markers_are_left_in_the_tree():
    """A merge that left ``<<<<<<<`` / ``>>>>>>>`` lines in a document or a source file (it happened once, in
    ARCHITECTURE.md) is caught here, not by a reader."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout: no file list")
    marker = re.compile(r"^(<{7}|>{7}) ", re.M)
    bad = []
    for name in files.stdout.split():
        path = ROOT / name
        if path.suffix not in {".md", ".py", ".c", ".h", ".toml", ".cfg", ".txt", ".sh", ".js", ".html", ".css"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if marker.search(text):
            bad.append(name)
    assert bad == [], bad
