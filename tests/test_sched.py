# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-time scheduling of the media clock thread (dtmfguard.server.sched): modes, refusal, per-thread effect."""
from __future__ import annotations

import os
import resource
import threading
from pathlib import Path

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


def _sched_of_thread(body) -> tuple:
    """Run ``body`` on a fresh thread; (policy with flags, priority) that thread ends with."""
    out = []

    def run():
        body()
        out.append((os.sched_getscheduler(0), os.sched_getparam(0).sched_priority))

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    return out[0]


@linux
def test_the_clock_tick_raises_the_clock_thread_above_pjmedias_media_thread():
    """What the guard does on its port's first tick: the clock thread under SCHED_RR at RT_PRIORITY, pjmedia's
    "media" thread (the RTP poller, which busy-waits on a transport lock another thread holds:
    sched.MEDIA_THREAD_NAMES) under SCHED_RR too but below the SIP loop's priority, which is below the clock's."""
    if not sched.can_realtime():
        pytest.skip("this process may not use SCHED_RR")
    sched.configure("auto")
    done, go, out = threading.Event(), threading.Event(), []
    media = _named_thread(b"media", go, done, out)
    media.start()
    go.wait(10)
    try:
        assert _sched_of_thread(sched.on_clock_tick) == (os.SCHED_RR, sched.RT_PRIORITY)
        media_tid = [int(t.name) for t in Path("/proc/self/task").iterdir()
                     if (t / "comm").read_text().strip() == "media"]
        assert [os.sched_getparam(t).sched_priority for t in media_tid] == [sched.MEDIA_RT_PRIORITY]
    finally:
        done.set()
        media.join(10)
    assert out == [os.SCHED_RR]
    assert sched.MEDIA_RT_PRIORITY < sched.SIP_RT_PRIORITY < sched.RT_PRIORITY


@linux
@pytest.mark.parametrize("mode", ["auto", "off"])
def test_the_sip_thread_is_raised_but_what_it_starts_is_not(mode):
    """The thread that runs pjsua's SIP loop: SCHED_RR at SIP_RT_PRIORITY (it may hold the transport lock the RTP
    thread spins on); the threads it starts afterwards (control API, payment workers) run under the normal
    policy; nothing while the mode is off."""
    if mode == "auto" and not sched.can_realtime():
        pytest.skip("this process may not use SCHED_RR")
    sched.configure(mode)
    child = []

    def sip_loop():
        assert sched.raise_sip_thread() is (mode == "auto")
        t = threading.Thread(target=lambda: child.append(os.sched_getscheduler(0)))
        t.start()
        t.join(10)

    policy, priority = _sched_of_thread(sip_loop)
    if mode == "auto":
        assert (policy & ~os.SCHED_RESET_ON_FORK, priority) == (os.SCHED_RR, sched.SIP_RT_PRIORITY)
        assert policy & os.SCHED_RESET_ON_FORK
    else:
        assert (policy, priority) == (os.SCHED_OTHER, 0)
    assert child == [os.SCHED_OTHER]


@linux
@pytest.mark.sip
def test_a_media_transport_lock_held_by_the_sip_thread_does_not_stall_a_pjsua_process(tmp_path):
    """pjlib's select() ioqueue skips a readable socket whose key lock another thread holds and polls again at
    once: pjmedia's media thread busy-loops while e.g. the SIP thread holds a transport's group lock.  With that
    thread under SCHED_RR above a normal-policy SIP thread (as the guard and the test peers ran them) the holder
    did not run again until the kernel's RT throttling (950 ms of each second): the guard froze ~1 s around an
    attended transfer and a key pressed then could be lost.  Deterministic here: one process pinned to one CPU,
    a call to itself with RTP flowing, the guard's port applying the guard's media scheduling, six 20 ms holds of
    the callee's transport lock by a thread scheduled as the guard's SIP thread.  Before the fix every hold lasted
    950-970 ms."""
    from sip_peers import HERE, Proc, free_port, rtp_base

    proc = Proc([str(HERE / "ioqueue_spin_probe.py"), "--port", str(free_port()), "--rtp", str(rtp_base()),
                 "--holds", "6", "--hold-ms", "20"], "spin-probe", tmp_path)
    try:
        assert proc.wait(90) == 0, proc.output()[-3000:]
    finally:
        proc.stop()
    result = [e for e in proc.events() if "holds_ms" in e or "skip" in e or "error" in e][-1]
    if "skip" in result:
        pytest.skip(result["skip"])
    assert len(result["holds_ms"]) == 6, result
    print(f"20 ms transport-lock holds lasted {result['holds_ms']} ms (limit 300; ~950 each before)")
    assert max(result["holds_ms"]) < 300, result
    # the RTP thread stayed real time (reading RTP late loses keys under load), below the holder
    assert result["media"] and all(t["policy"] == os.SCHED_RR and t["priority"] == sched.MEDIA_RT_PRIORITY
                                   for t in result["media"].values()), result
    assert result["holder"] == {"policy": os.SCHED_RR, "priority": sched.SIP_RT_PRIORITY}, result
