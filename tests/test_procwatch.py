# SPDX-License-Identifier: GPL-2.0-or-later
"""A worker whose threads deadlock on the GIL still leaves when its supervisor dies (native/procwatch.c).

Clean-clone run 62: a worker outlived its SIGKILLed supervisor by 25 s with no Python line run after it (no
"shutting down", no exit_watch overrun line): every thread waited on a futex, the GIL's owner stuck in C.  Here a
child blocks in C holding the GIL (``ctypes.PyDLL``: the call does not release it) and its parent is killed: with
only the Python watch (``server.procs.exit_watch``) it is still there seconds later; with the C watch it is gone.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from sip_peers import process_alive, wait_until

try:
    from dtmfguard.server import _procwatch  # noqa: F401
except ImportError:  # pragma: no cover - a build without a C compiler
    pytest.skip("native/procwatch.c not built (dtmfguard.server._procwatch): no C compiler at install",
                allow_module_level=True)

#: the child: arms a watch on its parent, says so, then blocks in C holding the GIL
CHILD = """
import ctypes, os, sys, threading
from dtmfguard.server import procs
if sys.argv[1] == "c":
    assert procs.parent_watch_without_gil(os.getppid(), deadline_s=0.3, poll_s=0.05)
else:
    procs.exit_watch(threading.Event(), os.getppid(), deadline_s=0.3, poll_s=0.05)
print("armed", flush=True)
ctypes.PyDLL(None).pause()
"""
#: the parent: starts the child, passes on its pid and its "armed", then waits to be killed
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True)
print(child.pid, flush=True)
print(child.stdout.readline().strip(), flush=True)
time.sleep(120)
"""


def _orphan(kind: str) -> int:
    """Start the parent and its child, kill the parent; the child's pid."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, kind], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "armed"
    finally:
        parent.kill()
        parent.wait(10)
    return pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_child_stuck_holding_the_gil_leaves_when_its_parent_dies():
    pid = _orphan("python")
    try:
        time.sleep(2.0)
        assert process_alive(pid), "the Python watch ran although the GIL was held: the case below proves nothing"
    finally:
        os.kill(pid, signal.SIGKILL)
    pid = _orphan("c")
    if not wait_until(lambda: not process_alive(pid), 10.0):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the C watch did not end a child whose parent died")


def test_bad_values_and_a_second_start_are_refused():
    code = ("from dtmfguard.server import _procwatch as w\n"
            "import os\n"
            "for bad in ((1, 100, 100), (os.getppid(), 0, 100), (os.getppid(), 100, -1)):\n"
            "    try:\n        w.start(*bad)\n    except ValueError:\n        pass\n"
            "    else:\n        raise SystemExit(f'accepted {bad}')\n"
            "w.start(os.getppid(), 100, 100000)\n"
            "try:\n    w.start(os.getppid(), 100, 100000)\nexcept RuntimeError:\n    print('ok')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
