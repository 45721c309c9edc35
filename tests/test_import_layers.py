# SPDX-License-Identifier: GPL-2.0-or-later
"""The import rules of the layout (ARCHITECTURE.md), checked by walking every module's imports (issue 15).

* Only ``dtmfguard/sip/pj/`` imports pjsua2 (directly, or lazily inside a function); no other module
  reaches it through its module-level imports either, so they (and their tests) run without pjsua2.
* No runtime module imports the test and benchmark tooling (``dtmfguard.testkit``, the pjsua2 test
  peers); only the apps built to show it (``dtmfguard.apps``, the ``demo`` command) may.
* DSP, signalling and capture never import telephony code: not SIP, not the server, not relay mode, not
  the media pipeline, not the apps or the CLI (lazily or not).
* The server (supervisor, config, control ...) imports nothing from ``dtmfguard/sip/pj/`` (lazily or not):
  what the supervisor reads of a worker (its dialog records) is pure text work in ``dtmfguard/sip/``.

Imports inside functions (lazy) count for the direct rules; the transitive rules follow module-level
imports, the ones that run when a module is imported.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dtmfguard"

#: the only folder that may import pjsua2
PJSUA2_HOME = "dtmfguard.sip.pj"
#: modules that may reach pjsua2 through module-level imports: the CLI commands that run the server
#: (they import it when the command runs; the CLI's entry point dispatches lazily)
PJSUA2_REACH_ALLOWED = ("dtmfguard.cli",)
#: test and benchmark tooling: what a runtime module must not import
TOOLING = ("dtmfguard.testkit", "dtmfguard.sip.pj.peers")
#: apps made to show the tooling at work (they synthesise key presses and run the decoder on purpose)
TOOLING_USERS = ("dtmfguard.apps", "dtmfguard.cli.demo")
#: the pure layers, and what they must never import
PURE_LAYERS = ("dtmfguard.dsp", "dtmfguard.signalling", "dtmfguard.capture")
TELEPHONY = ("dtmfguard.sip", "dtmfguard.server", "dtmfguard.relay", "dtmfguard.media", "dtmfguard.apps",
             "dtmfguard.cli", "pjsua2")
#: runtime modules that import tooling today: (importer, tooling module) -> why, and who removes it
KNOWN_TOOLING_IMPORTS: dict = {}


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
                for alias in child.names:  # `from dtmfguard.testkit import synth` imports the module dtmfguard.testkit.synth
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
    assert {"dtmfguard.dsp.masker", "dtmfguard.dsp.detector", "dtmfguard.sip.pj.b2bua",
            "dtmfguard.testkit.adversary", "dtmfguard.capture.session"} <= set(MODULES)
    assert ("pjsua2", False) in {(m, lazy) for m, lazy, _ in IMPORTS["dtmfguard.sip.pj.b2bua"]}
    assert _chain_to("dtmfguard.sip.pj.b2bua", lambda m: m == "pjsua2") == ["dtmfguard.sip.pj.b2bua", "pjsua2"]
    assert "dtmfguard.testkit.synth" in {m for m, _, _ in IMPORTS["dtmfguard.apps.demo.customer"]}
    assert "dtmfguard.events" in {m for m, _, _ in IMPORTS["dtmfguard.signalling.rfc4733"]}
    assert all(_in(n, PURE_LAYERS) for n in MODULES if n.startswith("dtmfguard.dsp."))
    assert sum(_in(n, PURE_LAYERS) for n in MODULES) > 20


def test_only_sip_pj_imports_pjsua2():
    direct = [f"{name}:{line}" for name in MODULES if not _in(name, [PJSUA2_HOME])
              for mod, _, line in IMPORTS[name] if mod == "pjsua2" or mod.startswith("pjsua2.")]
    assert direct == [], f"pjsua2 imported outside {PJSUA2_HOME}: {direct}"


def test_importing_sip_pj_package_does_not_load_pjsua2():
    assert _chain_to(PJSUA2_HOME, lambda m: m == "pjsua2") is None


def test_nothing_outside_sip_pj_reaches_pjsua2_when_imported():
    chains = []
    for name in MODULES:
        if _in(name, [PJSUA2_HOME, *PJSUA2_REACH_ALLOWED]):
            continue
        chain = _chain_to(name, lambda m: m == "pjsua2" or m.startswith("pjsua2."))
        if chain:
            chains.append(" -> ".join(chain))
    assert chains == [], "module-level import chains to pjsua2:\n" + "\n".join(chains)


def test_dsp_signalling_and_capture_never_import_telephony_code():
    bad = [f"{name}:{line} imports {mod}" for name in MODULES if _in(name, PURE_LAYERS)
           for mod, _, line in IMPORTS[name] if _in(mod, TELEPHONY)]
    assert bad == [], "the pure layers import telephony code:\n" + "\n".join(bad)


def test_dsp_signalling_and_capture_reach_no_telephony_code_when_imported():
    chains = [" -> ".join(c) for name in MODULES if _in(name, PURE_LAYERS)
              for c in [_chain_to(name, lambda m: _in(m, TELEPHONY))] if c]
    assert chains == [], "module-level import chains from the pure layers:\n" + "\n".join(chains)


def test_pure_layers_and_media_carry_no_pjsua2_vocabulary():
    """pjsua2's constants (``PJ_*``, ``PJSUA_*``, ``PJMEDIA_*``) are translated in sip/pj/ (e.g. the DTMF event
    flags in ``sip/pj/dtmf_cb``): the pure layers and the media pipeline neither define nor use them."""
    bad = []
    for name in MODULES:
        if not _in(name, [*PURE_LAYERS, "dtmfguard.media"]):
            continue
        for node in ast.walk(ast.parse(MODULES[name].read_text())):
            ident = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) \
                else None
            if ident and ident.startswith(("PJ_", "PJSUA", "PJMEDIA", "PJSIP")):
                bad.append(f"{name}:{node.lineno} {ident}")
    assert bad == [], "pjsua2 vocabulary outside sip/pj/:\n" + "\n".join(bad)


def test_sip_text_work_imports_only_the_shared_vocabulary():
    """``dtmfguard/sip/`` outside ``pj/`` (the bridge's state machine, request checks, identity, dialog records)
    is SIP work without a SIP stack: it imports the standard library, ``security``, ``events`` and itself."""
    allowed = ("dtmfguard", "dtmfguard.security", "dtmfguard.events", "dtmfguard.sip")
    bad = [f"{name}:{line} imports {mod}" for name in MODULES
           if _in(name, ["dtmfguard.sip"]) and not _in(name, [PJSUA2_HOME])
           for mod, _, line in IMPORTS[name] if _in(mod, ["dtmfguard"]) and not (mod in allowed or (
               _in(mod, ["dtmfguard.sip"]) and not _in(mod, [PJSUA2_HOME])))]
    assert bad == [], "sip/ text work imports beyond the shared vocabulary:\n" + "\n".join(bad)
    assert "dtmfguard.sip.bridge" in MODULES  # not vacuous


def test_server_imports_nothing_from_sip_pj():
    bad = [f"{name}:{line} imports {mod}" for name in MODULES if _in(name, ["dtmfguard.server"])
           for mod, _, line in IMPORTS[name] if _in(mod, [PJSUA2_HOME])]
    assert bad == [], "the server imports the pjsua2 folder:\n" + "\n".join(bad)
    assert "dtmfguard.sip.dialogs" in {m for m, _, _ in IMPORTS["dtmfguard.server.supervisor"]}  # not vacuous


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


def test_modules_outside_sip_pj_import_without_pjsua2():
    """The walk checked at run time: with pjsua2 made unimportable, every module outside sip/pj/ and the
    CLI imports (a fresh interpreter, so nothing is imported already)."""
    names = [n for n in MODULES if not _in(n, [PJSUA2_HOME, *PJSUA2_REACH_ALLOWED]) and n != "dtmfguard.__main__"]
    code = ("import sys, importlib\nsys.modules['pjsua2'] = None  # import pjsua2 -> ImportError\n"
            f"bad = []\nfor n in {names!r}:\n"
            "    try:\n        importlib.import_module(n)\n"
            "    except Exception as e:\n        bad.append(f'{n}: {type(e).__name__}: {e}')\n"
            "print('\\n'.join(bad))\nsys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert len(names) > 30


def test_the_public_api_is_importable_from_the_package():
    code = ("import dtmfguard, sys\n"
            "from dtmfguard import DEFAULT_PARAMS, DetectorParams, DigitEvent, DtmfDetector, detect, __version__\n"
            "assert 'dtmfguard.dsp.detector' in sys.modules\n"
            "assert not any(m.startswith(('dtmfguard.sip', 'dtmfguard.server', 'dtmfguard.testkit', 'pjsua2'))\n"
            "               for m in sys.modules), sorted(sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
