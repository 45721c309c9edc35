# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for tests of the box control endpoint: a real ``serve`` with workers, an agent, and
HTTP/SSE clients written here with the standard library (nothing of the endpoint's own code)."""
from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from _control_util import http_json
from sip_peers import Proc, free_port, rtp_base

PAN = "4111111111111111"
ADMIN = "admin-token-for-tests-0123"


def req(port, method, path, body=None, token=ADMIN, headers=None, timeout=20):
    return http_json(port, method, path, body, token, headers, timeout=timeout)


def sse(port, path, token=ADMIN, last_event_id=None, stop_after=None, timeout=60):
    """Read an SSE stream: list of (id or None, event, data); stops after ``stop_after`` events with an id,
    at ``call_ended``, or when the stream closes.  Returns (status, events)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Accept": "text/event-stream"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    if last_event_id is not None:
        h["Last-Event-ID"] = str(last_event_id)
    c.request("GET", path, headers=h)
    r = c.getresponse()
    if r.status != 200:
        r.read()
        c.close()
        return r.status, []
    out, eid, kind, data, with_id = [], None, "message", [], 0
    try:
        while True:
            line = r.fp.readline()
            if not line:
                break
            line = line.decode().rstrip("\r\n")
            if line.startswith("id:"):
                eid = int(line[3:].strip())
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line:
                if data:
                    out.append((eid, kind, json.loads("\n".join(data))))
                    with_id += eid is not None
                    if kind == "call_ended" or (stop_after is not None and with_id >= stop_after):
                        break
                eid, kind, data = None, "message", []
    finally:
        c.close()
    return 200, out


def customer_wav(path: Path, seconds: float) -> None:
    sf.write(path, np.zeros(int(8000 * seconds), np.int16), 8000, subtype="PCM_16")


class Box:
    """``dtmfguard serve --workers N`` with the box endpoint, and one agent peer answering every call."""

    def __init__(self, tmp: Path, workers: int = 2, agent_user: str = "agent7", extra_control: str = "",
                 calls: int = 0, log_json: bool = False, origins: tuple = ("http://crm.example",)):
        self.tmp = tmp
        self.gport, self.aport, self.ctl = free_port(), free_port(), free_port()
        taken = {self.aport} | {self.gport + 10 * k for k in range(workers)}  # worker k's SIP port: + 10 * k
        while self.ctl + workers + 1 > 65535 or self.ctl in taken or any(self.ctl + 1 + i in taken
                                                                         for i in range(workers)):
            self.ctl = free_port()
        (tmp / "agent").mkdir(exist_ok=True)
        (tmp / "guard.toml").write_text(f"""
[sip]
listen = "127.0.0.1:{self.gport}"
rtp_port = {rtp_base()}
[agent]
uri = "sip:{agent_user}@127.0.0.1:{self.aport}"
[control]
listen = "127.0.0.1:{self.ctl}"
endpoint = "box"
box = "boxa"
correlation_header = "X-Correlation-ID"
cors_origins = {json.dumps(list(origins))}
{extra_control}
[payment]
gateway = "vault"
audit = "{tmp / 'audit.jsonl'}"
[workers]
count = {workers}
""")
        self.env = {"DTMFGUARD_API_TOKEN": ADMIN, "DTMFGUARD_VAULT_KEY": "22" * 32,
                    "DTMFGUARD_VAULT_PATH": str(tmp / "vault.sqlite")}
        self.agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(self.aport), "--rtp", str(rtp_base()),
                           "--calls", str(calls), "--timeout", "300"], "agent", tmp)
        self.guard = Proc(["-m", "dtmfguard", *(["--log-format", "json"] if log_json else []), "serve",
                           "--config", str(tmp / "guard.toml")], "guard", tmp,
                          env=self.env)
        self.customers: list = []
        self.agent.wait_ready()
        self.guard.wait_ready(30)
        self.wait_workers()

    def wait_workers(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body, _ = req(self.ctl, "GET", "/health")
            if status == 200 and all((w.get("health") or {}).get("ok") for w in body["workers"]):
                return
            time.sleep(0.2)
        raise AssertionError(f"workers not healthy: {body}")

    def call(self, name: str, play_s: float = 2.0, rfc2833: str = "", timeout: float = 60, count: int = 1,
             worker: int = 0) -> Proc:
        wav = self.tmp / f"{name}.wav"
        customer_wav(wav, play_s)
        p = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp", str(rtp_base()),
                  "--to", f"sip:guard@127.0.0.1:{self.gport + 10 * worker}", "--play", str(wav), "--play-s", f"{play_s:.1f}",
                  "--rfc2833", rfc2833, "--count", str(count), "--timeout", str(timeout)]
                 + (["--record-dir", str(self.tmp / "agent")] if count > 1 else []), name, self.tmp)
        self.customers.append(p)
        return p

    def wait_calls(self, n: int, token=ADMIN, query: str = "", timeout=20) -> list:
        deadline = time.monotonic() + timeout
        calls = []
        while time.monotonic() < deadline:
            status, body, _ = req(self.ctl, "GET", "/v1/calls" + query, token=token)
            calls = [c for c in body["calls"] if c["state"] == "connected"]
            if len(calls) >= n:
                return calls
            time.sleep(0.1)
        raise AssertionError(f"only {len(calls)} connected calls")

    def stop(self) -> int:
        for p in self.customers:
            p.stop()
        rc = self.guard.stop()
        self.agent.stop()
        return rc

    def output(self) -> str:
        text = self.guard.output() + self.agent.output() + "".join(p.output() for p in self.customers)
        return text
