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
from typing import Callable, Iterator, Optional

__all__ = ["json_events", "stop_process", "die_with_parent", "stdout_captured", "PARENT_PID_ENV"]

#: A supervised child finds its supervisor's pid here (to notice a parent that died before it asked to follow).
PARENT_PID_ENV = "DTMFGUARD_SUPERVISOR_PID"

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
        parent_pid = int(os.environ.get(PARENT_PID_ENV, "0") or 0) or None
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)
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
