# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers shared by the tests of the optional C fast paths (masker screen, detector window tests)."""
from __future__ import annotations

import os

import pytest

from dtmfguard.dsp import goertzel


def with_backend(name, fn):
    """Run ``fn()`` with the kernel backend forced to ``name`` (the C fast paths follow it), then restore."""
    previous = goertzel.backend()
    goertzel.set_backend(name)
    try:
        return fn()
    finally:
        goertzel.set_backend(previous)


def require_native(module, what: str):
    """``module`` if it was built and the native backend is available; else skip, or fail in CI
    (``DTMFGUARD_REQUIRE_NATIVE=1``: a missing build must not pass silently)."""
    if module is None or "native" not in goertzel.available_backends():
        if os.environ.get("DTMFGUARD_REQUIRE_NATIVE") == "1":
            pytest.fail(f"DTMFGUARD_REQUIRE_NATIVE=1 but {what} was not built")
        pytest.skip(f"{what} not built")
    return module
