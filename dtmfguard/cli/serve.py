# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard serve``: the SIP back-to-back user agent in the live call path.

A thin layer: flags -> :class:`dtmfguard.server.config.GuardConfig` (flags override
the TOML file), then one guard worker in this process, or ``--workers N``
supervised worker processes (pjsua2-python allows 2 bridged calls per process).
Logs each call's state changes at INFO, never digits.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from ..dsp.masks import MASK_MODES, MASKS
from . import CliError, number

#: could not start: a port in use, an address the host does not have, workers failing at start
EXIT_START_FAILED = 1

log = logging.getLogger("dtmfguard.serve")


def _overrides(args) -> dict:
    from ..server.config import ConfigError, parse_hostport

    o = {}
    try:
        if args.listen:
            o["sip_host"], o["sip_port"] = parse_hostport(args.listen, "--listen")
        if args.control:
            o["control_host"], o["control_port"] = parse_hostport(args.control, "--control")
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.agent:
        o["agent_uri"] = args.agent
        o["agent_from"] = "static"
    if args.transports:
        o["transports"] = tuple(t.strip().lower() for t in args.transports.split(",") if t.strip())
    for attr in ("rtp_port", "rtp_range", "workers", "mask_mode", "mask", "tls_cert", "tls_key", "tls_port", "tls_ca",
                 "customer_srtp", "agent_srtp"):
        value = getattr(args, attr, None)
        if value is not None:
            o[attr] = value
    return o


def load(args, require_agent: bool = True):
    from ..server.config import ConfigError, load_config

    try:
        return load_config(args.config, _overrides(args), require_agent)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def run(args) -> int:
    if args.worker_index is not None:  # a supervised worker: the supervisor hands over its exact config
        from ..server.procs import die_with_parent
        from ..server.supervisor import config_from_env

        die_with_parent()  # SIGTERM when the supervisor dies, even by SIGKILL: no orphan keeps the SIP ports
        cfg = config_from_env() or load(args).for_worker(args.worker_index)
    else:
        cfg = load(args)
        preflight(cfg)  # the supervisor checked it for its workers
    if not args.quiet:
        logging.getLogger("dtmfguard").setLevel(min(logging.getLogger().level, logging.INFO))
        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    if args.worker_index is None:
        from ..server.supervisor import StartError, Supervisor, uses_box_endpoint

        if cfg.workers > 1 or uses_box_endpoint(cfg):
            verbose = min(getattr(args, "verbose", 0) or 0, 2)
            sup = Supervisor(cfg, worker_args=(f"-{'v' * verbose}",) if verbose else (),
                             serve_args=("--quiet",) if args.quiet else ())
            try:
                return sup.run()
            except StartError as exc:
                raise CliError("cannot start: " + "; ".join(exc.problems), EXIT_START_FAILED) from None
    return serve_one(cfg)


def preflight(cfg) -> None:
    """Everything a live call would need later, checked now: gateway, key, audit trail, addresses, files."""
    from ..server.config import ConfigError
    from ..server.preflight import check_resources

    problems = check_resources(cfg)
    if problems:
        raise CliError(str(ConfigError.of(problems)), 2)


def serve_one(cfg) -> int:
    from ..server.procs import stdout_captured
    from ..server.sdnotify import Notifier
    from ..security import harden_process, redact
    from ..sip.dialogs import STATE_ENV

    # this process will hold card digits: no core dumps, not ptrace-dumpable, private files (issue 8)
    log.info("process hardening: %s", harden_process())
    supervised = bool(os.environ.get(STATE_ENV))
    notifier = Notifier() if not supervised else Notifier({})  # only the supervisor talks to systemd
    state_dir = None
    if not supervised:  # record dialogs even unsupervised: a stop must be able to BYE an unacknowledged leg
        import tempfile

        state_dir = tempfile.mkdtemp(prefix="dtmfguard-", dir=os.environ.get("RUNTIME_DIRECTORY") or None)
        os.environ[STATE_ENV] = os.path.join(state_dir, "dialogs.json")

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from ..server.procs import STOP_DEADLINE_S, exit_watch, parent_watch_without_gil, supervisor_pid

    def overrun() -> None:
        log.error("still running %.0f s after being told to stop: exiting now", STOP_DEADLINE_S)
        _cleanup_state(state_dir)

    # a stop (signal, or the supervisor gone) ends this process within STOP_DEADLINE_S, stuck or not
    parent = supervisor_pid() if supervised else None
    exit_watch(stop, parent, on_overrun=overrun)
    if parent is not None and not parent_watch_without_gil(parent):
        log.info("process watch without the GIL not built (native/procwatch.c): the Python watch alone")
    from ..sip.pj.b2bua import Guard
    from ..sip.pj.shutdown import end_all_calls

    pjlog = logging.getLogger("dtmfguard.pjsip")
    guard = Guard(cfg, session_factory=_session_factory(cfg))
    try:
        # pjlib prints its first lines before the log configuration applies: stdout carries only "ready"
        with stdout_captured(lambda line: pjlog.debug("%s", redact(line))):
            guard.start()
    except Exception as exc:  # noqa: BLE001 - pjsua2 errors: one line (e.g. port in use)
        reason = getattr(exc, "reason", "") or type(exc).__name__
        from ..security import log_debug_traceback

        log_debug_traceback(log, exc)
        _cleanup_state(state_dir)
        raise CliError(f"cannot start SIP on {cfg.sip_host}:{cfg.sip_port}: {reason}", 1) from None
    api = None
    try:
        if cfg.control_port:
            from ..server.control import ControlServer

            token = os.environ.get(cfg.token_env, "")
            if not token:  # preflight refuses this already; a supervised worker's env could still lack it
                raise CliError(f"control API needs a bearer token in the environment variable {cfg.token_env}")
            api = ControlServer(guard, cfg.control_host, cfg.control_port, token)
            try:
                api.start()
            except OSError as exc:
                api = None
                raise CliError(f"cannot start the control API on {cfg.control_host}:{cfg.control_port}: "
                               f"{exc.strerror or type(exc).__name__}", 1) from None
        ready = (f"ready sip={cfg.sip_host}:{cfg.sip_port} rtp={cfg.rtp_port}"
                 + (f" control=http://{api.address[0]}:{api.address[1]}" if api else ""))
        print(ready, flush=True)
        notifier.ready(ready[6:])
        while not stop.is_set():
            guard.poll(20)
            notifier.watchdog()
    finally:
        notifier.stopping()
        if api is not None:
            api.stop()
        n = len(guard.list_calls())
        log.info("shutting down: ending %d call(s)", n)
        if guard.ep is not None:
            try:
                summary = end_all_calls(guard)
                if summary["calls"]:
                    log.info("ended %(calls)d call(s): %(unanswered)d unanswered (503), %(confirmed)d confirmed "
                             "(BYE), %(unacknowledged)d unacknowledged (BYE after stop)", summary)
            except Exception as exc:  # noqa: BLE001 - the endpoint must still go before the interpreter does
                from ..security import log_debug_traceback

                log.error("ending calls failed (%s); hanging up what is left", type(exc).__name__)
                log_debug_traceback(log, exc)
                if guard.ep is not None:
                    guard.shutdown()
        _cleanup_state(state_dir)
        notifier.close()
    return 0


def _cleanup_state(state_dir) -> None:
    if state_dir:
        import shutil

        shutil.rmtree(state_dir, ignore_errors=True)


def _session_factory(cfg):
    """PaymentSession factory for the control API (the capture package; gateway from the config).

    The capture package, the gateway's module and the shared worker threads are loaded here, when the
    worker starts: a payment is created on the thread that owns the calls, and a supervised worker (which
    skips preflight, where a single serve builds the gateway once) imported them at its first payment, there
    (the webhook module 30-40 ms, the vault's crypto library 90-140 ms on the 2-core test host, more when it
    is loaded), holding up SIP and the start of capture while the customer may already be keying the card."""
    from ..capture import PaymentSession
    from ..capture.gateways import load_gateway, resolve_gateway
    from ..capture.worker import event_pool, gateway_pool

    try:
        resolve_gateway(cfg.gateway)
        event_pool()
        gateway_pool()
    except Exception as exc:  # noqa: BLE001 - a payment asking for it reports it (503)
        log.warning("payment gateway %r cannot be loaded (%s)", cfg.gateway, type(exc).__name__)

    def make(**kwargs):
        gateway = load_gateway(cfg.gateway, **cfg.gateway_options)
        if cfg.audit_path:
            kwargs.setdefault("audit", cfg.audit_path)
        return PaymentSession(gateway, **kwargs)

    return make


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="run the SIP B2BUA that masks DTMF toward the agent",
        description="Accept customer calls over SIP, call the agent, and bridge them with DTMF masked toward "
                    "the agent. Flags override the --config file.",
        epilog="Examples:\n  dtmfguard serve --listen 127.0.0.1:5070 --agent sip:agent@127.0.0.1:5072\n"
               "  DTMFGUARD_API_TOKEN=secret dtmfguard serve --config guard.toml --control 127.0.0.1:8070\n"
               "  dtmfguard serve --config guard.toml --workers 4\n"
               "Prints 'ready sip=HOST:PORT ...' once listening (with --workers: once every worker listens);\n"
               "logs call states (never digits) to stderr; under systemd (Type=notify) also READY=1, STATUS=,\n"
               "WATCHDOG=1 (WatchdogSec=) and STOPPING=1.  The whole configuration is checked before anything\n"
               "starts (gateway, key, audit trail, addresses; see dtmfguard config check).  SIGTERM/SIGINT end\n"
               "every call (503 while ringing, BYE once answered) and stop.\n"
               "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 could not start (a port in use, a worker that\n"
               "failed to start 3 times in a row) or still running 15 s after a stop, 2 bad configuration\n"
               "or flag (every problem listed, e.g. an address this host does not have, a payment gateway\n"
               "that cannot be built), 3 internal error.",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--config", help="TOML configuration file")
    p.add_argument("--listen", help="SIP host:port for UDP and TCP (default 127.0.0.1:5070)")
    p.add_argument("--agent", help="static agent URI, e.g. sip:agent@127.0.0.1:5072")
    p.add_argument("--transports", help="comma list of udp,tcp,tls (default udp,tcp)")
    p.add_argument("--tls-cert", dest="tls_cert")
    p.add_argument("--tls-key", dest="tls_key")
    p.add_argument("--tls-port", dest="tls_port", type=int)
    p.add_argument("--tls-ca", dest="tls_ca", help="CA file (PEM) that verifies the agent side's TLS certificate")
    p.add_argument("--customer-srtp", dest="customer_srtp", choices=("off", "optional", "mandatory"),
                   help="SRTP (SDES) on the customer leg; mandatory needs TLS signalling (media.srtp_signaling)")
    p.add_argument("--agent-srtp", dest="agent_srtp", choices=("off", "optional", "mandatory"),
                   help="SRTP (SDES) on the agent leg")
    p.add_argument("--rtp-port", dest="rtp_port", type=int, help="first RTP port of this process")
    p.add_argument("--rtp-range", dest="rtp_range", type=int)
    p.add_argument("--mask", choices=MASKS, help="what the agent hears instead of a key")
    p.add_argument("--mask-mode", dest="mask_mode", choices=MASK_MODES,
                   help="secure (default): mask every key, relay keys to the agent leg (IVR) outside secure mode; "
                        "always: mask, never relay; payment: mask only during payment sessions")
    p.add_argument("--control", help="control endpoint host:port (admin token from $DTMFGUARD_API_TOKEN); with "
                                     "--workers > 1 (or control.endpoint = \"box\") one endpoint for the box: "
                                     "calls, payments, feeds, /panel/, /metrics")
    p.add_argument("--workers", type=int, help="supervise N worker processes (2 calls each)")
    p.add_argument("--worker-index", dest="worker_index", type=number(0, 63, int), help=__import__("argparse").SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", help="warnings only (default logs call states)")
    p.set_defaults(func=run)


if __name__ == "__main__":  # pragma: no cover
    from . import main

    sys.exit(main(["serve", *sys.argv[1:]]))
