# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for tests with real SIP peers: processes with ready lines, ports, clean termination."""
from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from dtmfguard.procs import json_events, stop_process

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both)."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def rtp_base() -> int:
    return random.randrange(30000, 60000, 200)


class Proc:
    """A child process whose stdout is JSON/ready lines; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args, name: str, logdir: Path, env=None):
        self.name = name
        self.out_path = logdir / f"{name}.out"
        self.err_path = logdir / f"{name}.err"
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        self.p = subprocess.Popen([PYTHON, *args], stdout=self._out, stderr=self._err,
                                  env={**os.environ, **(env or {})}, start_new_session=True)

    def lines(self):
        return self.out_path.read_text().splitlines()

    def events(self):
        return json_events(self.lines())

    def wait_for(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(line) for line in self.lines()):
                return True
            if self.p.poll() is not None:
                return any(predicate(line) for line in self.lines())
            time.sleep(0.05)
        return False

    def wait_ready(self, timeout=20.0):
        if not self.wait_for(lambda s: s.startswith("ready") or '"ready"' in s, timeout):
            self.stop()
            raise AssertionError(f"{self.name} not ready: {self.err_path.read_text()[-2000:]}")

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def stop(self, grace=15.0):
        code = stop_process(self.p, grace)
        self._out.close()
        self._err.close()
        return code

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        return self.p.returncode

    def output(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()
