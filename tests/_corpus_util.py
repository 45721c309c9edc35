# SPDX-License-Identifier: GPL-2.0-or-later
"""What the tests need from the host beyond Python, in one place: real-audio corpora and programs.

Corpora come only from :mod:`dtmfguard.testkit.corpora` (``dpkg -L`` of the Debian packages, so a host with
more or fewer packages than CI sees exactly what is installed).  A test whose package is missing is
skipped with the package's name (``pytest -rs`` lists them), never dropped silently and never an error.

``DTMFGUARD_REQUIRE_CORPORA=1`` (set by ``.ci/run``, like ``DTMFGUARD_REQUIRE_NATIVE``) turns those
skips into failures for every package that ``.ci/run`` installs: CI must not pass without its audio.
Packages CI does not install (more Asterisk languages, game music) stay optional even then.
"""
from __future__ import annotations

import os
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest

from dtmfguard.testkit import corpora

ROOT = Path(__file__).resolve().parent.parent
CI_SCRIPT = ROOT / ".ci" / "run"
REQUIRE_ENV = "DTMFGUARD_REQUIRE_CORPORA"
#: the English prompts: real recorded speech, installed by CI
SPEECH_SOURCE = "en"
SPEECH_PACKAGE = corpora.SOURCES[SPEECH_SOURCE].package
#: music on hold, installed by CI
MUSIC_SOURCE = "moh"
MUSIC_PACKAGE = corpora.SOURCES[MUSIC_SOURCE].package


@lru_cache(maxsize=None)
def ci_packages() -> frozenset:
    """The Debian packages ``.ci/run`` installs (its ``apt-get install`` command, continuation lines joined)."""
    try:
        text = CI_SCRIPT.read_text()
    except OSError:
        return frozenset()
    text = re.sub(r"\\\n", " ", text)
    out = set()
    for line in text.splitlines():
        words = line.split()
        if "apt-get" in words and "install" in words:
            out.update(w for w in words[words.index("install") + 1:]
                       if not w.startswith("-") and re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", w))
    return frozenset(out)


def required(package: str) -> bool:
    """A missing ``package`` fails instead of skipping (``DTMFGUARD_REQUIRE_CORPORA=1`` and CI installs it)."""
    return os.environ.get(REQUIRE_ENV) == "1" and package in ci_packages()


def missing(package: str, what: str = "") -> None:
    """Skip the calling test, naming ``package``; or fail it when the package is required (see above)."""
    if required(package):
        pytest.fail(f"{REQUIRE_ENV}=1 but the Debian package {package} is not installed"
                    + (f" ({what} needs it)" if what else ""), pytrace=False)
    pytest.skip((f"{what}: " if what else "") + f"needs the Debian package {package} (apt-get install {package})")


def source_files(name: str, split: str = "all", what: str = "") -> List[str]:
    """The usable files of a :data:`dtmfguard.testkit.corpora.SOURCES` entry, or skip/fail naming its package."""
    try:
        out = corpora.files(name, split)
    except corpora.CorpusMissing:
        out = []
    if not out:
        missing(corpora.SOURCES[name].package, what or f"corpus {name!r}")
    return out


def program(name: str, package: Optional[str] = None) -> str:
    """The path of program ``name``, or skip/fail naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        missing(package or name, f"the program {name}")
    return path


#: the wheel that provides pjsua2 (a dependency of the package, installed by ``pip install -e .``)
PJSUA2_PACKAGE = "pjsua2-python"


@lru_cache(maxsize=None)
def _pjsua2_error() -> Optional[str]:
    try:
        import pjsua2

        pjsua2.Endpoint  # noqa: B018 - the wheel's package imports without its bindings; they load on first use
    except (ImportError, AttributeError) as exc:  # AttributeError: a pjsua2 folder without the wheel's module
        return f"{type(exc).__name__}: {exc}"
    return None


def need_pjsua2(what: str = "", module: bool = False) -> None:
    """Skip the calling test (or, with ``module``, the calling test module at import) when pjsua2 cannot be
    imported, naming the Python package; under ``DTMFGUARD_REQUIRE_CORPORA=1`` (CI installs it with pip)
    fail instead."""
    error = _pjsua2_error()
    if error is None:
        return
    text = (f"{what}: " if what else "") + f"needs the Python package {PJSUA2_PACKAGE} (pip install {PJSUA2_PACKAGE}; {error})"
    if os.environ.get(REQUIRE_ENV) == "1":
        if module:
            raise ImportError(f"{REQUIRE_ENV}=1 but " + text)
        pytest.fail(f"{REQUIRE_ENV}=1 but " + text, pytrace=False)
    pytest.skip(text, allow_module_level=module)


def file_of(package: str, path: str) -> str:
    """A data file another package ships (e.g. sipp's pcap samples), or skip/fail naming the package."""
    if not os.path.isfile(path):
        missing(package, path)
    return path


# --- speech -----------------------------------------------------------------------------------------
def prompt(basename: str) -> str:
    """The path of one English prompt by file name (e.g. ``agent-pass.wav``), wherever the package put it
    (Debian has no ``sounds/en`` link without the recommended ``asterisk-core-sounds-en``)."""
    matches = [p for p in source_files(SPEECH_SOURCE, what=f"the prompt {basename}")
               if os.path.basename(p) == basename]
    if not matches:
        raise AssertionError(f"{SPEECH_PACKAGE} is installed but has no prompt {basename!r}")
    return min(matches, key=len)  # the voice's top-level prompt, not a same-named one in a subfolder


@lru_cache(maxsize=None)
def _speech(seconds: float, seed: int) -> Optional[np.ndarray]:
    try:
        files = corpora.files(SPEECH_SOURCE)
    except corpora.CorpusMissing:
        return None
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    parts, total = [], 0
    for i in order:
        x = corpora.read_8k(files[i])
        parts.append(x)
        total += x.size
        if total >= seconds * corpora.RATE:
            break
    x = np.concatenate(parts) if parts else None
    if x is not None:
        x.setflags(write=False)  # shared between tests through the cache
    return x


def speech(seconds: float, seed: int = 0) -> Optional[np.ndarray]:
    """About ``seconds`` of real English speech (8 kHz, float64 on the int16 scale, prompts picked at random
    by ``seed``), or ``None`` when the package is missing: call :func:`need_speech` in the test that uses it."""
    return _speech(float(seconds), int(seed))


def need(x, package: str, what: str = ""):
    """``x``, a test case built from ``package``'s audio, or skip/fail naming the package when it is None
    (the case exists on every host, so a missing package shows as a skip, not as a case that vanished)."""
    if x is None:
        missing(package, what)
    return x


def need_speech(x: Optional[np.ndarray], what: str = "") -> np.ndarray:
    """``x`` (from :func:`speech`), or skip/fail naming the speech package."""
    return need(x, SPEECH_PACKAGE, what)


def music(count: int, seconds: float) -> List[Optional[np.ndarray]]:
    """The first ``seconds`` of the first ``count`` music-on-hold files (8 kHz, float64 on the int16 scale);
    ``None`` in each place when the package is missing (use :func:`need` with :data:`MUSIC_PACKAGE`)."""
    try:
        files = corpora.files(MUSIC_SOURCE)[:count]
    except corpora.CorpusMissing:
        files = []
    out: List[Optional[np.ndarray]] = [corpora.read_8k(p)[: int(seconds * corpora.RATE)] for p in files]
    return out + [None] * (count - len(out))


def condition_needs_speech(cond: dict) -> bool:
    """An adversary condition (``adversary.CONDITIONS``) that mixes real speech in."""
    return bool(cond.get("speech_around")) or cond.get("speech_under_db") is not None
