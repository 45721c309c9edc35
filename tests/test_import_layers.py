# SPDX-License-Identifier: GPL-2.0-or-later
"""The import rules of the layout, checked by walking every module's imports (issue 15).

* Only ``dtmfguard/sip/`` imports pjsua2; the DSP, signalling and capture modules do not reach it through
  other modules either, so they (and their tests) run on a host without pjsua2.
* No runtime module imports the test and benchmark tooling (the adversarial decoder, signal synthesis,
  the real-audio corpora, call scenarios); only the apps built to show it (the demo) may.

Today's exceptions are listed below by name: the walk fails on a new one, and on a listed one that is gone
(so the list stays the truth).  Imports inside functions (lazy) count for the direct rules; the transitive
rule follows module-level imports, the ones that run when a module is imported.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dtmfguard"

#: the only folder that may import pjsua2 (directly or through a module-level import chain)
PJSUA2_HOME = "dtmfguard.sip"
#: modules that may reach pjsua2 through their module-level imports: the CLI commands that run the server
#: (they import it when the command runs; the CLI's entry point dispatches lazily)
PJSUA2_REACH_ALLOWED = ("dtmfguard.cli",)
#: test and benchmark tooling: what a runtime module must not import
TOOLING = ("dtmfguard.adversary", "dtmfguard.synth", "dtmfguard.corpora", "dtmfguard.scenarios")
#: apps made to show the tooling at work (they synthesise key presses and run the decoder on purpose)
TOOLING_USERS = ("dtmfguard.demo", "dtmfguard.cli.demo")
#: runtime modules that import tooling today: (importer, tooling module) -> why, and who removes it
KNOWN_TOOLING_IMPORTS: dict = {}  # (module, tooling module) -> why; empty since the pair fit moved to pairfit.py


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(name: str) -> list:
    """The dtmfguard modules an imported name loads (itself or its longest known prefix, and its parent
    packages, whose __init__ runs first); other names (pjsua2, numpy ...) as they are."""
    if not name.startswith("dtmfguard"):
        return [name]
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _imports(name: str) -> list:
    """(imported module, lazy, line) for every import statement of module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    out = []

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    out.extend((m, lazy, child.lineno) for m in _resolve(alias.name))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    pkg = name.split(".") if _is_package(name) else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (child.level - 1)]
                    base = ".".join(pkg + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                targets = {m for m in _resolve(base)}
                for alias in child.names:  # `from dtmfguard import synth` imports the module dtmfguard.synth
                    targets.update(m for m in _resolve(f"{base}.{alias.name}") if m in MODULES)
                out.extend((m, lazy, child.lineno) for m in sorted(targets))
            visit(child, inner)

    visit(tree, False)
    return out


IMPORTS = {name: _imports(name) for name in MODULES}


def _in(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _chain_to(start: str, target) -> list | None:
    """The shortest module-level import chain from ``start`` to a module matching ``target``, or None."""
    seen, queue = {start}, [[start]]
    while queue:
        path = queue.pop(0)
        for mod, lazy, _ in IMPORTS.get(path[-1], ()):
            if lazy or mod in seen:
                continue
            if target(mod):
                return path + [mod]
            if mod in MODULES:
                seen.add(mod)
                queue.append(path + [mod])
    return None


def test_the_walk_sees_the_package():
    """The walk is not vacuous: it finds the modules and the imports the rules are about."""
    assert {"dtmfguard.masker", "dtmfguard.detector", "dtmfguard.sip.b2bua", "dtmfguard.adversary"} <= set(MODULES)
    assert ("pjsua2", False) in {(m, lazy) for m, lazy, _ in IMPORTS["dtmfguard.sip.b2bua"]}
    assert _chain_to("dtmfguard.sip.b2bua", lambda m: m == "pjsua2") == ["dtmfguard.sip.b2bua", "pjsua2"]
    assert "dtmfguard.synth" in {m for m, _, _ in IMPORTS["dtmfguard.demo.customer"]}


def test_only_the_sip_folder_imports_pjsua2():
    direct = [f"{name}:{line}" for name in MODULES if not _in(name, [PJSUA2_HOME])
              for mod, _, line in IMPORTS[name] if mod == "pjsua2" or mod.startswith("pjsua2.")]
    assert direct == [], f"pjsua2 imported outside {PJSUA2_HOME}/: {direct}"


def test_nothing_outside_sip_reaches_pjsua2_when_imported():
    chains = []
    for name in MODULES:
        if _in(name, [PJSUA2_HOME, *PJSUA2_REACH_ALLOWED]):
            continue
        chain = _chain_to(name, lambda m: m == "pjsua2" or m.startswith("pjsua2."))
        if chain:
            chains.append(" -> ".join(chain))
    assert chains == [], "module-level import chains to pjsua2:\n" + "\n".join(chains)


def _tooling_imports() -> dict:
    """(importer, tooling module) -> first line, for every runtime module importing tooling (lazily or not)."""
    found: dict = {}
    for name in MODULES:
        if _in(name, [*TOOLING, *TOOLING_USERS]):
            continue
        for mod, _, line in IMPORTS[name]:
            if _in(mod, TOOLING):
                found.setdefault((name, mod), line)
    return found


def test_no_runtime_module_imports_test_tooling():
    new = {k: v for k, v in _tooling_imports().items() if k not in KNOWN_TOOLING_IMPORTS}
    assert new == {}, ("runtime modules importing test tooling (move the shared code into a runtime module, "
                       f"or list a justified exception in KNOWN_TOOLING_IMPORTS): {new}")


def test_known_tooling_exceptions_still_exist():
    """A listed exception that was removed must leave the list, or the list stops telling the truth."""
    gone = sorted(set(KNOWN_TOOLING_IMPORTS) - set(_tooling_imports()))
    assert gone == [], f"no longer imported, remove from KNOWN_TOOLING_IMPORTS: {gone}"


def test_no_runtime_module_reaches_tooling_when_imported():
    """Transitively too: importing a runtime module never loads tooling, except through a listed exception."""
    chains = []
    for name in MODULES:
        if _in(name, [*TOOLING, *TOOLING_USERS, "dtmfguard.cli"]):
            continue
        chain = _chain_to(name, lambda m: _in(m, TOOLING))
        if chain and not any((a, b) in KNOWN_TOOLING_IMPORTS for a, b in zip(chain, chain[1:])):
            chains.append(" -> ".join(chain))
    assert chains == [], "module-level import chains to test tooling:\n" + "\n".join(chains)


def test_modules_outside_sip_import_without_pjsua2():
    """The walk checked at run time: with pjsua2 made unimportable, every module outside sip/ and the CLI
    imports (a fresh interpreter, so nothing is imported already)."""
    names = [n for n in MODULES if not _in(n, [PJSUA2_HOME, *PJSUA2_REACH_ALLOWED]) and n != "dtmfguard.__main__"]
    code = ("import sys, importlib\nsys.modules['pjsua2'] = None  # import pjsua2 -> ImportError\n"
            f"bad = []\nfor n in {names!r}:\n"
            "    try:\n        importlib.import_module(n)\n"
            "    except Exception as e:\n        bad.append(f'{n}: {type(e).__name__}: {e}')\n"
            "print('\\n'.join(bad))\nsys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert len(names) > 30
