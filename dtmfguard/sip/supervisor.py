# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard serve --workers N``: N guard worker processes, restarted when they die.

Why processes: pjsua2-python is compiled for 4 calls per process, i.e. 2
bridged calls per worker, and CPU-bound Python in a media process starves
pjsua2's clock thread; separate processes scale over cores and isolate
failures (a crashed worker takes only its own 2 calls down, and its agents hear
silence, never raw audio: the media path dies with it).

Worker ``i`` gets its own SIP port (``sip_port + i*sip_port_step``), RTP range
(``rtp_port + i*rtp_port_step``) and, if the control API is on, control port
``control_port + 1 + i``; the supervisor's own control port serves ``/health``
(all workers, restarts) and ``/workers``.  A Kamailio dispatcher in front
(``dtmfguard kamailio-config``) spreads calls over the workers.  Restarts back
off from 1 s to 30 s while a worker keeps failing.  Pure Python: no pjsua2 here.

A worker that dies mid-call (SIGKILL, a crash) cannot hang up; its peers would
stay connected to nothing until their session timers expire (90 s).  Each
worker therefore records its live dialogs in a 0600 file in the supervisor's
run directory (``$RUNTIME_DIRECTORY`` under systemd, else a private temporary
directory; :mod:`dtmfguard.sip.dialogs`), and when a worker exits the
supervisor ends every leg still recorded (BYE, CANCEL or a final response,
:mod:`dtmfguard.sip.orphans`) before restarting it.  ``/health`` shows how
many calls each worker lost and how their legs were ended.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .config import GuardConfig
from .dialogs import STATE_ENV, load_records
from .orphans import end_legs

__all__ = ["Supervisor", "WORKER_CONFIG_ENV", "config_from_env"]

log = logging.getLogger(__name__)

#: The effective configuration is handed to workers as JSON in this variable (no card data in it).
WORKER_CONFIG_ENV = "DTMFGUARD_WORKER_CONFIG"


def config_to_json(cfg: GuardConfig) -> str:
    return json.dumps(dataclasses.asdict(cfg))


def config_from_env() -> GuardConfig | None:
    raw = os.environ.get(WORKER_CONFIG_ENV)
    if not raw:
        return None
    data = json.loads(raw)
    data["transports"] = tuple(data.get("transports", ("udp", "tcp")))
    return GuardConfig(**data).check()


@dataclasses.dataclass
class _Worker:
    index: int
    cfg: GuardConfig
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    backoff_s: float = 1.0
    next_start: float = 0.0
    last_exit: int | None = None
    state_path: str = ""  # the worker's dialog state file (dtmfguard.sip.dialogs)
    ending: threading.Thread | None = None  # ending a dead worker's calls; the restart waits for it
    calls_lost: int = 0
    last_loss: dict | None = None

    def info(self) -> dict:
        alive = self.proc is not None and self.proc.poll() is None
        return {"index": self.index, "pid": self.proc.pid if alive else None, "alive": alive,
                "sip": f"{self.cfg.sip_host}:{self.cfg.sip_port}", "rtp_port": self.cfg.rtp_port,
                "control_port": self.cfg.control_port or None, "restarts": self.restarts,
                "last_exit": self.last_exit, "uptime_s": round(time.monotonic() - self.started, 1) if alive else 0,
                "calls_lost": self.calls_lost, "last_loss": self.last_loss}


def worker_configs(cfg: GuardConfig) -> list[GuardConfig]:
    out = []
    for i in range(cfg.workers):
        w = cfg.for_worker(i)
        if cfg.control_port:
            w = dataclasses.replace(w, control_port=cfg.control_port + 1 + i)
            if uses_box_endpoint(cfg):  # the workers' own APIs stay on loopback behind the box endpoint
                w = dataclasses.replace(w, control_host="127.0.0.1")
        out.append(w)
    return out


def uses_box_endpoint(cfg: GuardConfig) -> bool:
    """The box endpoint (dtmfguard.control) serves the control port: with several workers, or asked for."""
    return bool(cfg.control_port) and (cfg.control_endpoint == "box" or
                                       (cfg.control_endpoint == "auto" and cfg.workers > 1))


class Supervisor:
    def __init__(self, cfg: GuardConfig, **_ignored):
        self.cfg = cfg
        self.workers = [_Worker(i, w) for i, w in enumerate(worker_configs(cfg))]
        self.stop = threading.Event()
        self._httpd = None
        self._box = None  # the box control endpoint (dtmfguard.control.server.BoxEndpoint)
        self.run_dir = tempfile.mkdtemp(prefix="dtmfguard-run-", dir=os.environ.get("RUNTIME_DIRECTORY") or None)
        for w in self.workers:
            w.state_path = os.path.join(self.run_dir, f"worker-{w.index}.dialogs.json")

    def _spawn(self, w: _Worker) -> None:
        env = {**os.environ, WORKER_CONFIG_ENV: config_to_json(w.cfg), STATE_ENV: w.state_path}
        cmd = [sys.executable, "-m", "dtmfguard.cli", "serve", "--worker-index", str(w.index)]
        w.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        w.started = time.monotonic()
        log.info("worker %d started (pid %d, sip %s:%d)", w.index, w.proc.pid, w.cfg.sip_host, w.cfg.sip_port)

    def health(self) -> dict:
        workers = [w.info() for w in self.workers]
        for info, w in zip(workers, self.workers):
            if info["alive"] and w.cfg.control_port:
                try:
                    with urllib.request.urlopen(f"http://{w.cfg.control_host}:{w.cfg.control_port}/health",
                                                timeout=0.5) as r:
                        info["health"] = json.loads(r.read())
                except Exception as exc:  # noqa: BLE001 - a slow worker is reported, not fatal
                    info["health"] = {"ok": False, "error": type(exc).__name__}
        return {"ok": all(w["alive"] for w in workers), "workers": workers}

    def _serve_health(self) -> None:
        sup = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                if self.path not in ("/health", "/workers"):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(sup.health()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        if uses_box_endpoint(self.cfg):
            self._serve_box_endpoint()
            return
        self._httpd = ThreadingHTTPServer((self.cfg.control_host, self.cfg.control_port), H)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="supervisor-health", daemon=True).start()

    def _serve_box_endpoint(self) -> None:
        """The box control endpoint (issue 14), bound before any worker starts; raises ConfigError."""
        from ..control.server import BoxEndpoint, EndpointError
        from .config import ConfigError

        c = self.cfg
        try:
            self._box = BoxEndpoint(
                c.control_host, c.control_port, os.environ.get(c.token_env, ""),
                [f"http://127.0.0.1:{w.cfg.control_port}" for w in self.workers], box=c.control_box,
                origins=c.control_cors_origins, peers=c.control_peers, tls_cert=c.control_tls_cert,
                tls_key=c.control_tls_key, plain_http=c.control_plain_http, health=self.health,
                workers_info=lambda: [w.info() for w in self.workers], feed_max_s=c.control_feed_max_s)
            self._box.start()
        except EndpointError as exc:
            raise ConfigError(str(exc)) from None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        if self.cfg.control_port:
            self._serve_health()  # bind first: a taken port must not leave workers behind
        for w in self.workers:
            self._spawn(w)
        print(f"ready workers={len(self.workers)} sip=" + ",".join(f"{w.cfg.sip_host}:{w.cfg.sip_port}"
                                                                for w in self.workers)
              + (f" control={self._box.url}" if self._box is not None else ""), flush=True)
        while not self.stop.wait(0.2):
            now = time.monotonic()
            for w in self.workers:
                if w.proc is not None and w.proc.poll() is not None:
                    w.last_exit = w.proc.returncode
                    lived = now - w.started
                    w.backoff_s = 1.0 if lived > 60 else min(w.backoff_s * 2, 30.0)
                    w.next_start = now + (0.5 if lived > 60 else w.backoff_s)
                    log.warning("worker %d exited with %s after %.1f s; restarting in %.1f s",
                                w.index, w.last_exit, lived, w.next_start - now)
                    w.proc = None
                    w.ending = threading.Thread(target=self.end_lost_calls, args=(w,), daemon=True,
                                                name=f"end-calls-{w.index}")
                    w.ending.start()
                if w.proc is None and now >= w.next_start and not (w.ending and w.ending.is_alive()):
                    w.restarts += 1
                    self._spawn(w)
        self._shutdown()
        return 0

    def end_lost_calls(self, w: _Worker) -> None:
        """End the calls a dead worker left behind (its recorded dialogs); count them for /health."""
        legs = load_records(w.state_path)
        try:
            os.unlink(w.state_path)
        except FileNotFoundError:
            pass
        if not legs:
            return
        calls = len({leg.bridge for leg in legs})
        w.calls_lost += calls
        w.last_loss = {"at": time.time(), "exit": w.last_exit, "calls": calls, "legs": len(legs), "ending": True}
        log.warning("worker %d left %d call(s) (%d legs): ending them", w.index, calls, len(legs))
        reports = end_legs(legs)
        w.last_loss = {**w.last_loss, "ending": False, "results": reports}

    def _shutdown(self) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(5)
        for w in self.workers:  # a worker that had to be killed (or died meanwhile) may have left calls
            if w.ending is not None:
                w.ending.join(10)
            self.end_lost_calls(w)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._box is not None:
            self._box.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
