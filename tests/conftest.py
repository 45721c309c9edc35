# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared fixtures: every backend-dependent test runs once per kernel backend; a test marked
``needs_program(name, package)`` skips naming the package when the program is missing (or fails under
``DTMFGUARD_REQUIRE_CORPORA=1`` when CI installs it: see _corpus_util.py); one marked ``needs_pjsua2`` skips
naming pjsua2-python when it cannot be imported (tests that start pjsua2 processes through
``sip_peers.Proc`` check it there)."""
from __future__ import annotations

import os

import pytest

from dtmfguard.dsp import goertzel

import _corpus_util
import _realtime_slots

try:  # property tests check behaviour, not speed: no per-example time limit (a loaded host takes 400 ms now and
    # then, which Hypothesis reports as a flaky failure); speed goals live in benchmarks/
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("dtmfguard", deadline=None)
    _hypothesis_settings.load_profile("dtmfguard")
except ImportError:  # Hypothesis is in the test extra; without it its tests fail to import, as they should
    pass

_BACKENDS = ["numpy", "native"]


@pytest.fixture(params=_BACKENDS)
def backend(request):
    """Select a kernel backend for the test; restore the previous one after it.

    With DTMFGUARD_REQUIRE_NATIVE=1 (set by CI) a missing C kernel fails the
    test instead of skipping it, which proves CI built and used it.
    """
    name = request.param
    if name not in goertzel.available_backends():
        if os.environ.get("DTMFGUARD_REQUIRE_NATIVE") == "1":
            pytest.fail("DTMFGUARD_REQUIRE_NATIVE=1 but the C kernel dtmfguard.dsp._native was not built")
        pytest.skip("C kernel not built")
    previous = goertzel.backend()
    goertzel.set_backend(name)
    try:
        yield name
    finally:
        goertzel.set_backend(previous)


@pytest.fixture
def en_speech():
    """Real English speech is installed (asterisk-core-sounds-en-wav); else skip naming the package."""
    return _corpus_util.need_speech(_corpus_util.speech(1.0))


def pytest_configure(config):
    # the file order below is the work queue's order (xdist would otherwise sort files by their test count,
    # which leaves the SIP files, with few but long tests, to the end: 15 min instead of 13 with two slots)
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(session, config, items):
    """Files in the order the real-time slots (_realtime_slots.py) keep busy: one with live SIP calls, then two
    without, and so on, each kind by test count, most first; a file's own order is kept.  Simulated on a full
    run's durations: 790 s against 890 s for xdist's own order (the bound with two slots: 756 s)."""
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    ranked = sorted(files.values(), key=lambda f: -len(f))
    live = [f for f in ranked if any(i.get_closest_marker("sip") is not None for i in f)]
    other = [f for f in ranked if all(i.get_closest_marker("sip") is None for i in f)]
    order = []
    while live or other:
        if live:
            order.append(live.pop(0))
        for _ in range(2 if live else len(other)):
            if other:
                order.append(other.pop(0))
    items[:] = [i for f in order for i in f]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test marked ``sip`` runs in a real-time slot (_realtime_slots.py), held to its teardown's end."""
    if item.get_closest_marker("sip") is not None:
        _realtime_slots.hold()
    try:
        yield
    finally:
        _realtime_slots.release()


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs_program"):
        _corpus_util.program(*mark.args, **mark.kwargs)
    if item.get_closest_marker("needs_pjsua2") is not None:
        _corpus_util.need_pjsua2()
