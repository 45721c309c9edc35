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

Telling the truth about itself (issue 18):

* everything it listens on is bound in :meth:`Supervisor.bind` *before* any
  worker starts (the control port; further listeners belong there too), and
  every worker's SIP (UDP, TCP, TLS) and control port is probed there: a port
  in use or an address this host does not have is reported, all at once, and
  no worker is started (:class:`StartError`, ``serve`` exits 1);
* workers die with it: each asks the kernel for SIGTERM when the supervisor
  dies (``PR_SET_PDEATHSIG``, :func:`dtmfguard.server.procs.die_with_parent`), so even
  a SIGKILLed supervisor leaves no worker holding the SIP ports; workers stay
  in its process group, so a terminal's Ctrl-C reaches them too;
* ``ready`` is printed (and ``READY=1`` sent to systemd) only when every worker
  has printed its own ready line, i.e. listens on SIP (and its control API);
* a worker that exits before its ready line, or is not ready within
  ``start_timeout_s``, failed to start; ``max_start_failures`` such failures of
  one worker in a row make the supervisor stop everything and return
  :data:`EXIT_START_FAILED` (a worker that ran and then died is restarted for
  ever, with back-off);
* under systemd (``NOTIFY_SOCKET``) it sends ``READY=1``, ``STATUS=``,
  ``WATCHDOG=1`` and ``STOPPING=1`` (:mod:`dtmfguard.server.sdnotify`);
* ``/health`` answers 503 whenever it is not OK: starting, stopping, a worker
  down, not ready or reporting itself not OK.

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
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .procs import PARENT_PID_ENV
from .sdnotify import Notifier
from ..security import redact
from .config import GuardConfig
from ..sip.dialogs import STATE_ENV, load_records
from ..sip.orphans import end_legs

__all__ = ["Supervisor", "StartError", "WORKER_CONFIG_ENV", "EXIT_START_FAILED", "config_from_env",
           "probe_listen"]

#: ``serve``'s exit code when it could not start: a port in use, an address the host does not have, or a
#: worker that failed to start ``max_start_failures`` times in a row.
EXIT_START_FAILED = 1

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


class StartError(RuntimeError):
    """The supervisor could not start; ``problems`` lists every reason (one line each)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def probe_listen(host: str, port: int, kind: str) -> str:
    """Bind ``host:port`` for ``kind`` (udp | tcp) and release it; "" if it could be bound, else the reason.

    TCP is probed with SO_REUSEADDR (as pjsip and http.server bind it), so connections of a previous run in
    TIME_WAIT do not count as "in use"; a listening socket still does.
    """
    stype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(host, port, type=stype)
    except socket.gaierror as exc:
        return f"{host} does not resolve ({exc.strerror})"
    except UnicodeError:
        return f"{host!r} is not a valid host name"
    family, _, _, _, addr = infos[0]
    with socket.socket(family, stype) as sock:
        if kind != "udp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            return exc.strerror or type(exc).__name__
    return ""


@dataclasses.dataclass
class _Worker:
    index: int
    cfg: GuardConfig
    proc: subprocess.Popen | None = None
    started: float = 0.0
    ready_at: float = 0.0  # monotonic time of this process's ready line; 0 = not ready yet
    restarts: int = 0
    start_failures: int = 0  # exits before the ready line, in a row
    backoff_s: float = 1.0
    next_start: float = 0.0
    last_exit: int | None = None
    state_path: str = ""  # the worker's dialog state file (dtmfguard.sip.dialogs)
    ending: threading.Thread | None = None  # ending a dead worker's calls; the restart waits for it
    calls_lost: int = 0
    last_loss: dict | None = None

    def alive(self) -> bool:
        proc = self.proc  # read once: the main loop replaces it while /health (another thread) reads
        return proc is not None and proc.poll() is None

    def info(self) -> dict:
        proc = self.proc
        alive = proc is not None and proc.poll() is None
        return {"index": self.index, "pid": proc.pid if alive else None, "alive": alive,
                "ready": alive and bool(self.ready_at),
                "sip": f"{self.cfg.sip_host}:{self.cfg.sip_port}", "rtp_port": self.cfg.rtp_port,
                "control_port": self.cfg.control_port or None, "restarts": self.restarts,
                "start_failures": self.start_failures,
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
    """The box endpoint (dtmfguard.server.endpoint) serves the control port: with several workers, or asked for."""
    return bool(cfg.control_port) and (cfg.control_endpoint == "box" or
                                       (cfg.control_endpoint == "auto" and cfg.workers > 1))


class Supervisor:
    """Runs and watches ``cfg.workers`` worker processes; :meth:`run` returns serve's exit code.

    ``worker_args`` go before ``serve`` on each worker's command line (``-v``/``-vv``: the workers log as
    verbosely as the supervisor); ``serve_args`` after it (``-q``).
    """

    def __init__(self, cfg: GuardConfig, *, worker_args: tuple = (), serve_args: tuple = (),
                 max_start_failures: int = 3, start_timeout_s: float = 30.0, notifier: Notifier | None = None,
                 out=None, **_ignored):
        self.cfg = cfg
        self.workers = [_Worker(i, w) for i, w in enumerate(worker_configs(cfg))]
        self.worker_args = tuple(worker_args)
        self.serve_args = tuple(serve_args)
        self.max_start_failures = max_start_failures
        self.start_timeout_s = start_timeout_s
        self.notifier = notifier if notifier is not None else Notifier()
        self.out = out if out is not None else sys.stdout
        self.stop = threading.Event()
        self.state = "starting"  # starting -> running -> stopping
        self.ready_at = 0.0
        self.gave_up = ""
        self._httpd = None
        self._httpd_serving = False
        self._status = ""
        self._box = None  # the box control endpoint (dtmfguard.server.endpoint.server.BoxEndpoint)
        self.run_dir = ""

    # -- listeners: everything is bound here, before the first worker starts ----------------------------
    def bind(self) -> list[str]:
        """Bind the supervisor's own listeners and probe every worker's; return all problems ([] = ok).

        Further listeners of the supervisor (another control endpoint) are bound here too, so that a port in
        use stops ``serve`` before any worker runs.
        """
        problems = []
        if self.cfg.control_port and uses_box_endpoint(self.cfg):
            problems += self._start_box_endpoint()
        elif self.cfg.control_port:
            try:
                self._httpd = self._make_health_server()
            except OSError as exc:
                problems.append(f"control API {self.cfg.control_host}:{self.cfg.control_port}: "
                                f"{exc.strerror or type(exc).__name__}")
        problems += self._port_overlaps()
        for w in self.workers:
            c = w.cfg
            probes = [(k, c.sip_port) for k in ("udp", "tcp") if k in c.transports]
            if "tls" in c.transports:
                probes.append(("tcp", c.tls_port or c.sip_port + 1))
            for kind, port in probes:
                reason = probe_listen(c.sip_host, port, kind)
                if reason:
                    problems.append(f"worker {w.index} SIP {kind.upper()} {c.sip_host}:{port}: {reason}")
            if c.control_port:
                reason = probe_listen(c.control_host, c.control_port, "tcp")
                if reason:
                    problems.append(f"worker {w.index} control API {c.control_host}:{c.control_port}: {reason}")
        return problems

    def _port_overlaps(self) -> list[str]:
        """Two listeners of this box on one TCP or UDP port: each is free when probed, but the first to bind
        takes it and the other fails for good (seen: worker 0's control API on ``control_port + 1`` was worker
        1's SIP port ``sip_port + 10``; worker 1 then failed to start three times and serve gave up)."""
        claims: dict = {}
        if self.cfg.control_port:
            claims.setdefault(("tcp", self.cfg.control_port), []).append("the control API")
        for w in self.workers:
            c = w.cfg
            for kind in ("udp", "tcp"):
                if kind in c.transports:
                    claims.setdefault((kind, c.sip_port), []).append(f"worker {w.index} SIP {kind.upper()}")
            if "tls" in c.transports:
                claims.setdefault(("tcp", c.tls_port or c.sip_port + 1), []).append(f"worker {w.index} SIP TLS")
            if c.control_port:
                claims.setdefault(("tcp", c.control_port), []).append(f"worker {w.index} control API")
        return [f"port {port} ({kind.upper()}) is claimed by {' and '.join(who)}: choose ports apart (worker k "
                f"takes the SIP port + 10 * k and the control port + 1 + k)"
                for (kind, port), who in sorted(claims.items()) if len(who) > 1]

    def _start_box_endpoint(self) -> list[str]:
        """The box control endpoint (issue 14) on the control port, bound before any worker starts."""
        from .endpoint.server import BoxEndpoint, EndpointError

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
            self._box = None
            return [str(exc)]
        return []

    def close_listeners(self) -> None:
        if self._box is not None:
            self._box.stop()
            self._box = None
        if self._httpd is not None:
            if self._httpd_serving:  # shutdown() waits for serve_forever: never call it on one not started
                self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
            self._httpd_serving = False

    # -- workers ----------------------------------------------------------------------------------------
    def _spawn(self, w: _Worker) -> None:
        """Start worker ``w`` (main thread only: PR_SET_PDEATHSIG follows the thread that forked)."""
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        env.update({WORKER_CONFIG_ENV: config_to_json(w.cfg), STATE_ENV: w.state_path,
                    PARENT_PID_ENV: str(os.getpid())})
        # one BLAS thread a worker: the masker's rare numpy matrix products are tiny, and BLAS threads that
        # spin after each one cost ~33k instructions a frame (measured, issue 12); an operator's value wins
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            env.setdefault(var, "1")
        w.ready_at = 0.0
        w.proc = proc = subprocess.Popen(self.worker_command(w), env=env, stdout=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL, text=True, errors="replace")
        w.started = time.monotonic()
        threading.Thread(target=self._read_worker, args=(w, proc), name=f"worker-{w.index}-out",
                         daemon=True).start()
        log.info("worker %d started (pid %d, sip %s:%d)", w.index, proc.pid, w.cfg.sip_host, w.cfg.sip_port)

    def worker_command(self, w: _Worker) -> list[str]:
        """The command line of worker ``w``: it prints ``ready ...`` on stdout once it listens."""
        return [sys.executable, "-m", "dtmfguard.cli", *self.worker_args, "serve", "--worker-index", str(w.index),
                *self.serve_args]

    def _read_worker(self, w: _Worker, proc: subprocess.Popen) -> None:
        """A worker's stdout: its ready line; anything else is logged (redacted), never echoed."""
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("ready ") and w.proc is proc and not w.ready_at:
                w.ready_at = time.monotonic()
                log.info("worker %d ready after %.1f s (%s)", w.index, w.ready_at - w.started, line[6:])
            elif line:
                log.debug("worker %d stdout: %s", w.index, redact(line))
        proc.stdout.close()

    def _reap(self, w: _Worker, now: float) -> None:
        """``w.proc`` exited: count it, end the calls it left, schedule its restart."""
        w.last_exit = w.proc.returncode
        lived = now - w.started
        if w.ready_at:
            w.start_failures = 0
            w.backoff_s = 1.0 if lived > 60 else min(w.backoff_s * 2, 30.0)
            w.next_start = now + (0.5 if lived > 60 else w.backoff_s)
            log.warning("worker %d exited with %s after %.1f s; restarting in %.1f s",
                        w.index, w.last_exit, lived, w.next_start - now)
        else:
            w.start_failures += 1
            w.backoff_s = min(w.backoff_s * 2, 30.0) if w.start_failures > 1 else 1.0
            w.next_start = now + w.backoff_s
            log.warning("worker %d failed to start (exit %s after %.1f s, %d in a row)", w.index, w.last_exit,
                        lived, w.start_failures)
            if w.start_failures >= self.max_start_failures:
                self.gave_up = (f"worker {w.index} ({w.cfg.sip_host}:{w.cfg.sip_port}) failed to start "
                                f"{w.start_failures} times in a row (last exit {w.last_exit})")
        w.proc = None
        w.ready_at = 0.0
        w.ending = threading.Thread(target=self.end_lost_calls, args=(w,), daemon=True, name=f"end-calls-{w.index}")
        w.ending.start()

    def _step(self, now: float) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None and not w.ready_at \
                    and now - w.started > self.start_timeout_s:
                log.warning("worker %d not ready after %.0f s: killing it", w.index, self.start_timeout_s)
                w.proc.kill()
                w.proc.wait(5)
            if w.proc is not None and w.proc.poll() is not None:
                self._reap(w, now)
            if self.gave_up:
                return
            if w.proc is None and now >= w.next_start and not (w.ending and w.ending.is_alive()):
                w.restarts += 1
                self._spawn(w)
        if self.state == "starting" and all(w.ready_at for w in self.workers):
            self.state = "running"
            self.ready_at = now
            line = f"ready workers={len(self.workers)} sip=" + ",".join(
                f"{w.cfg.sip_host}:{w.cfg.sip_port}" for w in self.workers)
            if self._box is not None:
                line += f" control={self._box.url}"
            elif self.cfg.control_port:
                line += f" control=http://{self.cfg.control_host}:{self.cfg.control_port}"
            print(line, file=self.out, flush=True)
            self.notifier.ready(self._status_text())
        elif self.state == "running":
            text = self._status_text()
            if text != self._status:
                self._status = text
                self.notifier.status(text)
        self.notifier.watchdog(now)

    def _status_text(self) -> str:
        ready = sum(1 for w in self.workers if w.alive() and w.ready_at)
        lost = sum(w.calls_lost for w in self.workers)
        return f"{ready}/{len(self.workers)} workers ready, {sum(w.restarts for w in self.workers)} restarts, " \
               f"{lost} calls lost"

    def run(self) -> int:
        """Bind, start the workers, watch them until SIGTERM/SIGINT; 0, or EXIT_START_FAILED after giving up.

        Raises :class:`StartError` (no worker started) when a listener cannot be bound.
        """
        problems = self.bind()
        if problems:
            self.close_listeners()
            raise StartError(problems)
        self.run_dir = tempfile.mkdtemp(prefix="dtmfguard-run-", dir=os.environ.get("RUNTIME_DIRECTORY") or None)
        for w in self.workers:
            w.state_path = os.path.join(self.run_dir, f"worker-{w.index}.dialogs.json")
        previous = {}
        if threading.current_thread() is threading.main_thread():  # (tests run it in a thread: set .stop)
            previous = {sig: signal.signal(sig, lambda *_: self.stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if self._httpd is not None:
                threading.Thread(target=self._httpd.serve_forever, name="supervisor-health", daemon=True).start()
                self._httpd_serving = True
            self.notifier.status(f"starting {len(self.workers)} workers")
            for w in self.workers:
                self._spawn(w)
            while not self.stop.wait(0.1) and not self.gave_up:
                self._step(time.monotonic())
            self.state = "stopping"
            self.notifier.stopping(f"giving up: {self.gave_up}" if self.gave_up else "stopping")
            if self.gave_up:
                log.error("giving up: %s", self.gave_up)
            self._shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return EXIT_START_FAILED if self.gave_up else 0

    # -- health -----------------------------------------------------------------------------------------
    def health(self) -> dict:
        workers = [w.info() for w in self.workers]
        for info, w in zip(workers, self.workers):
            if info["alive"] and w.cfg.control_port:
                try:
                    with urllib.request.urlopen(f"http://{w.cfg.control_host}:{w.cfg.control_port}/health",
                                                timeout=0.5) as r:
                        info["health"] = json.loads(r.read())
                except urllib.error.HTTPError as exc:  # 503: the worker says it is not OK, and why
                    try:
                        info["health"] = json.loads(exc.read())
                    except ValueError:
                        info["health"] = {"ok": False, "error": f"HTTP {exc.code}"}
                except Exception as exc:  # noqa: BLE001 - a slow worker is reported, not fatal
                    info["health"] = {"ok": False, "error": type(exc).__name__}
        ok = self.state == "running" and all(
            w["alive"] and w["ready"] and w.get("health", {"ok": True}).get("ok", False) for w in workers)
        return {"ok": ok, "state": self.state, "workers": workers}

    def _make_health_server(self) -> ThreadingHTTPServer:
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
                health = sup.health()
                body = json.dumps(health).encode()
                # /health is what load balancers and monitors poll: not OK must not look like 200
                self.send_response(200 if health["ok"] or self.path == "/workers" else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        httpd = ThreadingHTTPServer((self.cfg.control_host, self.cfg.control_port), H)
        httpd.daemon_threads = True
        return httpd

    # -- calls a dead worker left, shutdown --------------------------------------------------------------
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
                log.warning("worker %d did not stop within 15 s: killing it", w.index)
                w.proc.kill()
                w.proc.wait(5)
            w.last_exit = w.proc.returncode
            (log.info if w.last_exit == 0 else log.warning)("worker %d stopped (exit %s)", w.index, w.last_exit)
        for w in self.workers:  # a worker that had to be killed (or died meanwhile) may have left calls
            if w.ending is not None:
                w.ending.join(10)
            self.end_lost_calls(w)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.close_listeners()
        self.notifier.close()
