# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard serve``: the SIP back-to-back user agent in the live call path.

A thin layer: flags -> :class:`dtmfguard.sip.config.GuardConfig` (flags override
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

from . import CliError

log = logging.getLogger("dtmfguard.serve")


def _overrides(args) -> dict:
    from ..sip.config import ConfigError, parse_hostport

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
    from ..sip.config import ConfigError, load_config

    try:
        return load_config(args.config, _overrides(args), require_agent)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def run(args) -> int:
    if args.worker_index is not None:  # a supervised worker: the supervisor hands over its exact config
        from ..sip.supervisor import config_from_env

        cfg = config_from_env() or load(args).for_worker(args.worker_index)
    else:
        cfg = load(args)
    if not args.quiet:
        logging.getLogger("dtmfguard").setLevel(min(logging.getLogger().level, logging.INFO))
        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    if args.worker_index is None:
        from ..sip.config import ConfigError
        from ..sip.supervisor import Supervisor, uses_box_endpoint

        if cfg.workers > 1 or uses_box_endpoint(cfg):
            try:
                return Supervisor(cfg).run()
            except ConfigError as exc:
                raise CliError(str(exc)) from None
    return serve_one(cfg)


def serve_one(cfg) -> int:
    from ..security import harden_process
    from ..sip.b2bua import Guard

    # this process will hold card digits: no core dumps, not ptrace-dumpable, private files (issue 8)
    log.info("process hardening: %s", harden_process())

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    guard = Guard(cfg, session_factory=_session_factory(cfg))
    try:
        guard.start()
    except Exception as exc:  # noqa: BLE001 - pjsua2 errors: one line (e.g. port in use)
        reason = getattr(exc, "reason", "") or type(exc).__name__
        raise CliError(f"cannot start SIP on {cfg.sip_host}:{cfg.sip_port}: {reason}", 1) from None
    api = None
    if cfg.control_port:
        from ..sip.control import ControlServer

        token = os.environ.get(cfg.token_env, "")
        if not token:
            guard.shutdown()
            raise CliError(f"control API needs a bearer token in the environment variable {cfg.token_env}")
        api = ControlServer(guard, cfg.control_host, cfg.control_port, token)
        api.start()
    print(f"ready sip={cfg.sip_host}:{cfg.sip_port} rtp={cfg.rtp_port}"
          + (f" control=http://{api.address[0]}:{api.address[1]}" if api else ""), flush=True)
    try:
        guard.run(stop)
    finally:
        if api is not None:
            api.stop()
        log.info("shutting down: hanging up %d call(s)", len(guard.list_calls()))
        guard.shutdown()
    return 0


def _session_factory(cfg):
    """PaymentSession factory for the control API (the capture package; gateway from the config)."""

    def make(**kwargs):
        from ..capture import PaymentSession
        from ..capture.gateways import load_gateway

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
               "Prints 'ready sip=HOST:PORT ...' once listening; logs call states (never digits) to stderr.\n"
               "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 SIP could not start (e.g. port in use), "
               "2 bad configuration or flag.",
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
    p.add_argument("--mask", choices=("tone", "silence", "noise"), help="what the agent hears instead of a key")
    p.add_argument("--mask-mode", dest="mask_mode", choices=("always", "payment"),
                   help="mask every call (default) or only during payment sessions")
    p.add_argument("--control", help="control endpoint host:port (admin token from $DTMFGUARD_API_TOKEN); with "
                                     "--workers > 1 (or control.endpoint = \"box\") one endpoint for the box: "
                                     "calls, payments, feeds, /panel/, /metrics")
    p.add_argument("--workers", type=int, help="supervise N worker processes (2 calls each)")
    p.add_argument("--worker-index", dest="worker_index", type=int, help=__import__("argparse").SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", help="warnings only (default logs call states)")
    p.set_defaults(func=run)


if __name__ == "__main__":  # pragma: no cover
    from . import main

    sys.exit(main(["serve", *sys.argv[1:]]))
