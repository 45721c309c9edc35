# SPDX-License-Identifier: GPL-2.0-or-later
"""Child-process helpers shared by the demo and the real-peer tests."""
from __future__ import annotations

import json
import signal
import subprocess
from typing import Optional

__all__ = ["json_events", "stop_process"]


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
