# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-time scheduling of the media clock thread (dtmfguard.server.sched): modes, refusal, per-thread effect."""
from __future__ import annotations

import os
import resource
import threading

import pytest

from dtmfguard.server import sched
from dtmfguard.server.config import ConfigError, load_config

linux = pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="Linux scheduling API")


@pytest.fixture(autouse=True)
def _reset():
    yield
    sched._mode = "off"
    sched._done.clear()


def _policy_seen_by_a_clock_thread() -> int:
    seen = []

    def tick():
        sched.on_clock_tick()
        seen.append(os.sched_getscheduler(0))

    t = threading.Thread(target=tick)
    t.start()
    t.join()
    return seen[0]


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="auto, realtime, off"):
        sched.configure("fast")


def test_config_key_and_bad_value(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('[agent]\nuri = "sip:a@127.0.0.1:5072"\n[media]\npriority = "off"\n')
    assert load_config(str(f)).media_priority == "off"
    assert load_config(None, {"agent_uri": "sip:a@127.0.0.1:5072"}).media_priority == "auto"
    f.write_text('[agent]\nuri = "sip:a@127.0.0.1:5072"\n[media]\npriority = "max"\n')
    with pytest.raises(ConfigError, match="media.priority"):
        load_config(str(f))


@linux
def test_off_leaves_the_thread_alone():
    assert sched.configure("off") is False
    assert _policy_seen_by_a_clock_thread() == os.SCHED_OTHER


@linux
def test_without_permission_auto_falls_back_and_realtime_is_a_startup_error(monkeypatch):
    monkeypatch.setattr(sched, "raise_current_thread", lambda priority=sched.RT_PRIORITY: False)
    assert sched.configure("auto") is False
    assert _policy_seen_by_a_clock_thread() == os.SCHED_OTHER
    with pytest.raises(RuntimeError, match="CAP_SYS_NICE"):
        sched.configure("realtime")


@linux
def test_auto_raises_only_the_clock_thread_with_an_rttime_safety_net():
    if not sched.can_realtime():
        pytest.skip("this process may not use SCHED_RR (the fallback is tested above)")
    assert sched.configure("auto") is True
    soft, _hard = resource.getrlimit(resource.RLIMIT_RTTIME)
    assert soft != resource.RLIM_INFINITY and soft <= sched.RTTIME_LIMIT_US
    assert _policy_seen_by_a_clock_thread() == os.SCHED_RR
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the calling (main) thread is not touched


def _named_thread(name: bytes, go: threading.Event, done: threading.Event, out: list) -> threading.Thread:
    """A thread whose Linux name (what pjmedia sets, /proc/self/task/*/comm) is ``name``, reporting its policy."""
    import ctypes

    def body():
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # PR_SET_NAME
        go.set()
        done.wait(10)
        out.append(os.sched_getscheduler(0))

    return threading.Thread(target=body)


@linux
@pytest.mark.parametrize("mode", ["auto", "off"])
def test_raise_named_raises_threads_by_name_only_when_allowed(mode):
    """The test peers' --priority: pjmedia's "clock" and "media" threads raised by name, others untouched;
    nothing at all while the mode is off."""
    if mode == "auto" and not sched.can_realtime():
        pytest.skip("this process may not use SCHED_RR")
    sched.configure(mode)
    threads, results = [], {}
    done = threading.Event()
    for name in (b"clock", b"media", b"ev_thread"):
        go, out = threading.Event(), []
        t = _named_thread(name, go, done, out)
        t.start()
        go.wait(10)
        threads.append(t)
        results[name] = out
    sched.raise_named(("clock", "media"))
    done.set()
    for t in threads:
        t.join(10)
    raised = os.SCHED_RR if mode == "auto" else os.SCHED_OTHER
    assert results[b"clock"] == [raised] and results[b"media"] == [raised]
    assert results[b"ev_thread"] == [os.SCHED_OTHER]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
