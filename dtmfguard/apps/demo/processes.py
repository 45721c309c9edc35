# SPDX-License-Identifier: GPL-2.0-or-later
"""The demo's child processes (guard, agent, customer) and the agent desktop's side of the control API."""
from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

from ...server.procs import json_events, stop_process
from .options import DemoError

__all__ = ["free_port", "free_port_pair", "rtp_bases", "Child", "Control"]


def free_port(host: str) -> int:
    """A port free for UDP and TCP (SIP listens on both)."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind((host, port))
                t.bind((host, port))
            return port
        except OSError:
            continue
    raise DemoError("no free port on 127.0.0.1")


def free_port_pair(host: str) -> int:
    """A TCP port whose next port is free too (the box endpoint and its worker's local API)."""
    for _ in range(200):
        port = free_port(host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind((host, port + 1))
            return port
        except OSError:
            continue
    raise DemoError("no free pair of ports on 127.0.0.1")


def rtp_bases(count: int) -> List[int]:
    bases = random.sample(range(30000, 60000, 200), count)
    return bases


class Child:
    """One demo process; its stdout and stderr go to a log file the user can read afterwards."""

    def __init__(self, name: str, args: List[str], log_path: Path, env: Optional[dict] = None):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, *args], stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                                     start_new_session=True)

    def text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def events(self) -> List[dict]:
        return json_events(self.text().splitlines())

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(predicate(line) for line in self.text().splitlines()):
                return True
            if self.proc.poll() is not None:
                return any(predicate(line) for line in self.text().splitlines())
            time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 10.0) -> Optional[int]:
        code = stop_process(self.proc, grace_s)
        self._log.close()
        return code

    def last_error(self) -> str:
        lines = [ln for ln in self.text().splitlines() if ln.strip()]
        return lines[-1][:200] if lines else "no output"


# ---------------------------------------------------------------------------------------- control API

class Control:
    """The agent desktop's side of the control API (bearer token, JSON, Server-Sent Events)."""

    def __init__(self, host: str, port: int, token: str):
        self.host, self.port, self.token = host, port, token

    def _request(self, method: str, path: str, body: Optional[dict] = None, timeout: float = 5.0):
        from ...server.control import request

        status, data = request(self.port, method, path, self.token, body, host=self.host, timeout=timeout)
        return status, (data if data is not None else {})

    def calls(self) -> List[dict]:
        try:
            status, data = self._request("GET", "/calls")
        except OSError:  # the worker is still starting
            return []
        return data.get("calls", []) if status == 200 else []

    def panel_url(self, box_port: int, call_id: str, wait_s: float = 3.0) -> Optional[str]:
        """The box endpoint's agent panel for the call, with a single-use ticket (None if not available).

        The box endpoint learns of a call from the worker's feed, a moment after the worker reports it
        connected (longer on a loaded host): a call it does not list yet is asked for again for up to
        ``wait_s``."""
        from ...server.control import request

        deadline = time.monotonic() + wait_s
        try:
            while True:
                status, data = request(box_port, "GET", "/v1/calls", self.token, host=self.host)
                handle = [c["handle"] for c in (data or {}).get("calls", []) if c.get("id") == call_id]
                if status == 200 and handle:
                    break
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.05)
            status, data = request(box_port, "POST", f"/v1/calls/{handle[0]}/tickets", self.token, host=self.host)
        except OSError:
            return None
        return f"http://{self.host}:{box_port}{data['panel_url']}" if status == 201 else None

    def start_payment(self, call_id: str, **body: Any) -> dict:
        status, data = self._request("POST", f"/calls/{call_id}/payment", body)
        if status != 201:
            raise DemoError(f"control API refused the payment ({status}: {data.get('error', '?')})")
        return data

    def follow_feed(self, call_id: str, on_event: Callable[[str, dict], None], stop: threading.Event) -> None:
        """Read the call's SSE feed until ``call_ended`` or the connection closes."""
        from ...server.control import follow_feed

        follow_feed(self.port, call_id, self.token, on_event, stop, host=self.host)
