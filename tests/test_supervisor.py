# SPDX-License-Identifier: GPL-2.0-or-later
"""The supervisor tells the truth about itself (issue 18), checked with stand-in worker processes (no pjsua2):
it binds before it starts anything, says ready only when every worker is, gives up on workers that cannot
start, answers /health 503 when not OK, speaks sd_notify, and leaves no orphan when killed."""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

import pytest

from dtmfguard.server.sdnotify import Notifier
from dtmfguard.server.config import GuardConfig
from dtmfguard.server.supervisor import EXIT_START_FAILED, StartError, Supervisor, probe_listen

from sip_peers import free_port

PY = sys.executable


class FakeSupervisor(Supervisor):
    """Workers are small Python scripts: ``scripts[i]`` is worker i's code (stdout is what it 'says')."""

    def __init__(self, cfg, scripts, **kw):
        super().__init__(cfg, out=io.StringIO(), **kw)
        self.scripts = scripts
        self.spawned = []

    def worker_command(self, w):
        self.spawned.append(w.index)
        return [PY, "-c", self.scripts[w.index]]


def _cfg(workers=2, control=True):
    base = free_port()
    # control_endpoint "worker": the supervisor's own /health listener (the box endpoint, which binds at the
    # same step, has its own tests: test_control_box.py, test_serve_lifecycle.py)
    ctl = free_port() if control else 0
    sips = {base + 10 * k for k in range(workers)}  # worker k's SIP port
    while control and (ctl in sips or any(ctl + 1 + i in sips for i in range(workers))):
        ctl = free_port()
    return GuardConfig(sip_port=base, agent_uri="sip:a@127.0.0.1:5999", workers=workers,
                       control_port=ctl, control_endpoint="worker")


def test_overlapping_ports_are_refused_before_any_worker_starts():
    """Worker 0's control API on control_port + 1 is worker 1's SIP port (sip_port + 10): both free when
    probed, so only a check of the plan itself sees it (on CI worker 1 then failed three times and serve gave
    up).  serve refuses to start, naming the port and both claimants."""
    base = free_port()
    cfg = GuardConfig(sip_port=base, agent_uri="sip:a@127.0.0.1:5999", workers=2, control_port=base + 9,
                      control_endpoint="worker")
    sup = FakeSupervisor(cfg, [READY_AFTER.format(delay=0)] * 2)
    with pytest.raises(StartError) as err:
        sup.run()
    assert sup.spawned == []
    clash = [p for p in err.value.problems if p.startswith(f"port {base + 10} (TCP)")]
    assert len(clash) == 1 and "worker 0 control API" in clash[0] and "worker 1 SIP TCP" in clash[0], \
        err.value.problems


#: a stand-in worker: after ``delay`` s it serves /health on its control port (if any) and prints its ready line
READY_AFTER = """
import json, os, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer
time.sleep({delay})
port = json.loads(os.environ["DTMFGUARD_WORKER_CONFIG"])["control_port"]
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        body = b'{{"ok": true}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
if port:
    threading.Thread(target=HTTPServer(("127.0.0.1", port), H).serve_forever, daemon=True).start()
print("ready sip=x", flush=True)
time.sleep(60)
"""


def _run_in_thread(sup):
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("rc", sup.run()), daemon=True)
    t.start()
    return t, result


def _get(port, path="/health"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


# ------------------------------------------------------------------------------------------------ binding
def test_probe_listen_reports_taken_ports_and_foreign_addresses():
    port = free_port()
    assert probe_listen("127.0.0.1", port, "udp") == "" and probe_listen("127.0.0.1", port, "tcp") == ""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", port))
        assert "in use" in probe_listen("127.0.0.1", port, "udp")
    with socket.socket() as t:
        t.bind(("127.0.0.1", port))
        t.listen()
        assert "in use" in probe_listen("127.0.0.1", port, "tcp")
    assert "assign" in probe_listen("10.255.255.1", port, "udp")  # "Cannot assign requested address"


def test_control_port_taken_starts_no_worker():
    cfg = _cfg()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", cfg.control_port))
        holder.listen()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sip1:  # and worker 1's SIP port: both reported
            sip1.bind(("127.0.0.1", cfg.sip_port + cfg.sip_port_step))
            sup = FakeSupervisor(cfg, [READY_AFTER.format(delay=0)] * 2)
            with pytest.raises(StartError) as err:
                sup.run()
    assert sup.spawned == []
    assert len(err.value.problems) == 2, err.value.problems
    assert f"control API 127.0.0.1:{cfg.control_port}: Address already in use" in err.value.problems[0]
    assert f"worker 1 SIP UDP 127.0.0.1:{cfg.sip_port + 10}" in err.value.problems[1]
    assert probe_listen("127.0.0.1", cfg.control_port, "tcp") == ""  # nothing of ours still holds a port


# ---------------------------------------------------------------------------------------------- readiness
def test_ready_only_when_every_worker_is_and_health_follows():
    cfg = _cfg()
    sup = FakeSupervisor(cfg, [READY_AFTER.format(delay=0), READY_AFTER.format(delay=1.5)])
    t0 = time.monotonic()
    thread, result = _run_in_thread(sup)
    try:
        assert _wait(lambda: sup.workers[0].ready_at, 10)
        code, body = _get(cfg.control_port)
        assert code == 503 and body["state"] == "starting" and not body["ok"]  # worker 1 not ready yet
        assert sup.out.getvalue() == ""
        assert _wait(lambda: sup.out.getvalue(), 10)
        assert time.monotonic() - t0 >= 1.5
        assert sup.out.getvalue().startswith("ready workers=2 ")
        code, body = _get(cfg.control_port)
        assert code == 200 and body["ok"] and all(w["ready"] for w in body["workers"])
        os.kill(sup.workers[1].proc.pid, signal.SIGKILL)
        assert _wait(lambda: _get(cfg.control_port)[0] == 503, 5)
        assert _wait(lambda: _get(cfg.control_port)[0] == 200, 15)  # restarted and ready again
        assert sup.workers[1].restarts == 1 and sup.out.getvalue().count("ready") == 1
    finally:
        sup.stop.set()
        thread.join(30)
    assert result["rc"] == 0


def test_gives_up_on_a_worker_that_cannot_start():
    cfg = _cfg(control=False)
    sup = FakeSupervisor(cfg, [READY_AFTER.format(delay=0), "import sys; sys.exit(1)"])
    t0 = time.monotonic()
    rc = sup.run()
    took = time.monotonic() - t0
    assert rc == EXIT_START_FAILED
    assert sup.out.getvalue() == ""  # never said ready
    assert "worker 1" in sup.gave_up and "3 times in a row" in sup.gave_up
    assert sup.spawned.count(1) == 3 and took < 15, (sup.spawned, took)
    assert not sup.workers[0].alive()  # the healthy worker was stopped too


def test_a_worker_that_never_says_ready_is_killed_and_counted():
    cfg = _cfg(workers=1, control=False)
    sup = FakeSupervisor(cfg, ["import time; time.sleep(60)"], start_timeout_s=0.5)
    assert sup.run() == EXIT_START_FAILED
    assert sup.spawned == [0, 0, 0]


# --------------------------------------------------------------------------------------------- sd_notify
def _notify_socket(tmp_path, abstract=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"dtmfguard-test-{os.getpid()}-{time.monotonic_ns()}"
        s.bind("\0" + name)
        addr = "@" + name
    else:
        addr = str(tmp_path / "notify")
        s.bind(addr)
    s.settimeout(5)
    return s, addr


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_speaks_the_protocol(tmp_path, abstract):
    sock, addr = _notify_socket(tmp_path, abstract)
    n = Notifier({"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "2000000"})
    assert n.ready("2/2 workers\nready")
    assert sock.recv(1024) == b"READY=1\nSTATUS=2/2 workers ready"
    assert n.watchdog(now=100.0) and not n.watchdog(now=100.5) and n.watchdog(now=101.1)
    assert sock.recv(1024) == b"WATCHDOG=1" and sock.recv(1024) == b"WATCHDOG=1"
    n.stopping()
    assert sock.recv(1024) == b"STOPPING=1\nSTATUS=stopping"
    n.close()
    sock.close()


def test_notifier_without_systemd_is_silent():
    assert not Notifier({}).ready("x") and not Notifier({}).watchdog()
    # WATCHDOG_PID names another process: the pings are not ours to send
    assert Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
                    ).watchdog_interval_s == 0


def test_supervisor_notifies_ready_status_watchdog_and_stopping(tmp_path):
    sock, addr = _notify_socket(tmp_path)
    cfg = _cfg(control=False)
    sup = FakeSupervisor(cfg, [READY_AFTER.format(delay=0.3)] * 2,
                         notifier=Notifier({"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "400000"}))
    thread, result = _run_in_thread(sup)
    msgs = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (any(m.startswith("READY") for m in msgs)
                                                   and sum(m.startswith("WATCHDOG") for m in msgs) >= 3):
            msgs.append(sock.recv(1024).decode())
            if msgs[-1].startswith("READY=1"):
                assert all(w.ready_at for w in sup.workers)  # READY=1 only once every worker is ready
    finally:
        sup.stop.set()
        thread.join(30)
    sock.settimeout(5)
    while not msgs[-1].startswith("STOPPING"):  # watchdog pings sent before the stop may still be queued
        msgs.append(sock.recv(1024).decode())
    assert msgs[0] == "STATUS=starting 2 workers"
    assert [m for m in msgs if m.startswith("READY")] == ["READY=1\nSTATUS=2/2 workers ready, 0 restarts, 0 calls lost"]
    assert msgs[-1] == "STOPPING=1\nSTATUS=stopping"
    assert result["rc"] == 0
    # workers must not talk to systemd themselves (NotifyAccess=main)
    sock.close()


# ----------------------------------------------------------------------------------------------- orphans
def test_die_with_parent_follows_a_sigkilled_parent(tmp_path):
    """A middle process forks a child that asked for PR_SET_PDEATHSIG; SIGKILL the middle: the child goes."""
    child_code = textwrap.dedent("""
        import os, signal, sys, time
        sys.path.insert(0, %r)
        from dtmfguard.server.procs import die_with_parent
        signal.signal(signal.SIGTERM, lambda *a: (open(%r, 'w').write('sigterm'), os._exit(0)))
        assert die_with_parent()
        print(os.getpid(), flush=True)
        time.sleep(60)
    """) % (os.getcwd(), str(tmp_path / "child.txt"))
    middle = textwrap.dedent("""
        import os, subprocess, sys, time
        env = dict(os.environ, DTMFGUARD_SUPERVISOR_PID=str(os.getpid()))
        p = subprocess.Popen([sys.executable, "-c", %r], env=env, stdout=subprocess.PIPE, text=True)
        print(p.stdout.readline().strip(), flush=True)
        time.sleep(60)
    """) % child_code
    m = subprocess.Popen([PY, "-c", middle], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    child = int(m.stdout.readline())
    m.kill()
    m.wait()
    # the handler creates the file, then writes it: wait for the word, not for the file (seen empty once)
    note = tmp_path / "child.txt"
    assert _wait(lambda: note.exists() and note.read_text() == "sigterm", 5), \
        note.read_text() if note.exists() else "no SIGTERM"
    assert _wait(lambda: not os.path.exists(f"/proc/{child}") or
                 open(f"/proc/{child}/stat").read().split()[2] == "Z", 5)


def test_die_with_parent_when_the_parent_is_already_gone():
    code = ("import signal, os, sys; from dtmfguard.server.procs import die_with_parent; "
            "signal.signal(signal.SIGTERM, lambda *a: os._exit(42)); die_with_parent(parent_pid=1234567); "
            "import time; time.sleep(5); sys.exit(0)")
    r = subprocess.run([PY, "-c", code], timeout=30)
    assert r.returncode == 42


def test_exit_watch_ends_a_process_whose_main_thread_is_stuck_after_a_stop():
    """SIGTERM sets the stop, but the main thread sits in a read that never returns (as in a pjsua call that
    hangs): the watch exits 1 after its deadline and runs its last words first; without the watch the process
    would still run (the read retries after the handler)."""
    code = textwrap.dedent("""
        import os, signal, sys, threading
        from dtmfguard.server.procs import exit_watch
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        if sys.argv[1] == "watch":
            exit_watch(stop, deadline_s=0.5, on_overrun=lambda: print("overrun", flush=True))
        r, w = os.pipe()
        print("stuck", flush=True)
        os.read(r, 1)
    """)
    for mode in ("watch", "none"):
        p = subprocess.Popen([PY, "-c", code, mode], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": os.getcwd()})
        try:
            assert p.stdout.readline() == "stuck\n"
            p.send_signal(signal.SIGTERM)
            if mode == "watch":
                assert p.wait(10) == 1
                assert p.stdout.read() == "overrun\n"
            else:
                with pytest.raises(subprocess.TimeoutExpired):
                    p.wait(2)
        finally:
            p.kill()
            p.wait()


def test_exit_watch_stops_a_process_whose_parent_died_without_a_signal(tmp_path):
    """No PR_SET_PDEATHSIG here: the watch itself notices the parent is gone, sets the stop, and the main
    thread's normal shutdown runs (it writes its note and exits 0, before the deadline)."""
    note = tmp_path / "stopped.txt"
    child_code = textwrap.dedent("""
        import os, sys, threading
        from dtmfguard.server.procs import exit_watch
        stop = threading.Event()
        exit_watch(stop, parent_pid=os.getppid(), deadline_s=30, poll_s=0.1)
        print(os.getpid(), flush=True)
        stop.wait(60)
        open(%r, "w").write("stopped" if stop.is_set() else "timeout")
    """) % str(note)
    middle = textwrap.dedent("""
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", %r], stdout=subprocess.PIPE, text=True)
        print(p.stdout.readline().strip(), flush=True)
        time.sleep(60)
    """) % child_code
    m = subprocess.Popen([PY, "-c", middle], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    child = int(m.stdout.readline())
    try:
        m.kill()
        m.wait()
        assert _wait(lambda: note.exists() and note.read_text() == "stopped", 10)
    finally:
        if os.path.exists(f"/proc/{child}"):
            os.kill(child, signal.SIGKILL)


def test_stdout_captured_takes_c_level_output():
    code = textwrap.dedent("""
        import ctypes, os, sys
        from dtmfguard.server.procs import stdout_captured
        got = []
        with stdout_captured(got.append):
            libc = ctypes.CDLL(None)
            libc.printf(b"from C printf\\n")   # buffered by C stdio: must be flushed into the capture
            os.write(1, b"raw fd 1\\n")
            print("python print")
        print("after", got)
    """)
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.stdout == "after ['from C printf', 'raw fd 1', 'python print']\n" or \
        r.stdout == "after ['raw fd 1', 'python print', 'from C printf']\n", r.stdout
