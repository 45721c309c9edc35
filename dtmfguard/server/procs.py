# SPDX-License-Identifier: GPL-2.0-or-later
"""Child-process helpers shared by the supervisor, the demo and the real-peer tests."""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator, Optional

__all__ = ["json_events", "stop_process", "die_with_parent", "exit_watch", "stdout_captured", "PARENT_PID_ENV",
           "STOP_DEADLINE_S", "supervisor_pid", "parent_watch_without_gil"]

#: A supervised child finds its supervisor's pid here (to notice a parent that died before it asked to follow).
PARENT_PID_ENV = "DTMFGUARD_SUPERVISOR_PID"

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def supervisor_pid() -> Optional[int]:
    """The supervisor's pid a supervised child was started with (:data:`PARENT_PID_ENV`), or None."""
    return int(os.environ.get(PARENT_PID_ENV, "0") or 0) or None


def die_with_parent(signum: int = signal.SIGTERM, parent_pid: Optional[int] = None) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    Why: a supervisor killed with SIGKILL (OOM killer, ``kill -9``, a crash) cannot stop its workers, and an
    orphaned worker keeps the SIP ports, so the next supervisor cannot start.  SIGTERM lets the worker hang
    up its calls first.  The kernel sends it when the parent *thread* that forked the child exits, so the
    supervisor forks its workers from its main thread only.  If the parent died before this call (the
    child was already re-parented), the signal is sent at once.  Returns False where prctl is unavailable.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):  # pragma: no cover - non-Linux
        return False
    if parent_pid is None:
        parent_pid = supervisor_pid()
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)
    return True


#: Seconds a worker may take from being told to stop to exiting.  Its slowest normal path: 4 s for calls to
#: end, 1 s for the BYEs to leave, ~1 s to destroy pjsua, 4 s BYE-after-stop for unacknowledged legs (~10 s).
STOP_DEADLINE_S = 15.0


def exit_watch(stop: threading.Event, parent_pid: Optional[int] = None, deadline_s: float = STOP_DEADLINE_S,
               on_overrun: Callable[[], None] = lambda: None, poll_s: float = 0.5) -> threading.Thread:
    """A daemon thread that bounds this process's stop: once ``stop`` is set (a signal) or ``parent_pid`` is no
    longer this process's parent (the supervisor died), it sets ``stop`` and, if the process still runs
    ``deadline_s`` later, calls ``on_overrun`` and exits with status 1 (``os._exit``).

    Why: an orphaned worker has nobody to SIGKILL it, and it keeps the SIP ports until it exits, so the next
    supervisor cannot start.  ``PR_SET_PDEATHSIG`` asks the main thread to stop, but a main thread stuck in C
    (a pjsua call that never returns) never runs its Python signal handler; this thread does not depend on it.
    Calls still up when the deadline passes lose their media: fail closed.
    """

    def watch() -> None:
        while not stop.wait(poll_s):
            if parent_pid is not None and os.getppid() != parent_pid:
                stop.set()
        time.sleep(deadline_s)
        try:
            on_overrun()
        finally:
            os._exit(1)

    t = threading.Thread(target=watch, name="exit-watch", daemon=True)
    t.start()
    return t


def parent_watch_without_gil(parent_pid: int, deadline_s: float = STOP_DEADLINE_S + 2.0, poll_s: float = 0.5) -> bool:
    """Behind :func:`exit_watch`, for a worker whose threads deadlock on the GIL (a pjsua2 call holding it waits on
    a pjsip lock whose owner waits for it; then neither a signal handler nor a Python thread runs again): a C
    thread (``native/procwatch.c``) that ends the process with status 1 ``deadline_s`` after ``parent_pid`` stops
    being its parent.  ``deadline_s`` is longer than :func:`exit_watch`'s, which stops a live process tidily (its
    state file, its log line) first.  False when the C module was not built (the Python watch alone)."""
    try:
        from . import _procwatch
    except ImportError:
        return False
    _procwatch.start(int(parent_pid), int(round(poll_s * 1000)), int(round(deadline_s * 1000)))
    return True


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> Optional[int]:
    """SIGTERM, wait ``grace_s``, then SIGKILL; return the exit code (pjsua2 processes need a few seconds to
    hang up and tear down cleanly, see the pjsua2 notes)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def json_events(lines) -> list:
    """The JSON objects among a child's output lines (peers and workers print one event per line);
    other lines (logs) are skipped."""
    out = []
    for line in lines:
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


@contextlib.contextmanager
def stdout_captured(line_sink: Callable[[str], None]) -> Iterator[None]:
    """Send whatever is written to file descriptor 1 meanwhile (C libraries included) to ``line_sink``,
    one line at a time, instead of stdout.

    Why: a C library may print before its own log configuration applies (pjlib prints its first start-up
    lines with ``printf``); stdout of ``serve`` carries only ready lines.  C stdio buffers are flushed before
    the descriptor is restored, so nothing captured leaks out later.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 1)
    os.close(write_fd)
    chunks: list = []

    def drain() -> None:
        while True:
            data = os.read(read_fd, 65536)
            if not data:
                break
            chunks.append(data)

    reader = threading.Thread(target=drain, name="stdout-capture", daemon=True)
    reader.start()
    try:
        yield
    finally:
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):  # pragma: no cover - non-POSIX
            pass
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        reader.join(5)
        os.close(read_fd)
        for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
            if line.strip():
                try:
                    line_sink(line)
                except Exception:  # noqa: BLE001 - a sink error must not hide the caller's own outcome
                    pass
