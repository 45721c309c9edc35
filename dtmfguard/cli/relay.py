# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard relay``: the media element Kamailio's ``rtpengine`` module drives (relay mode).

A thin layer: flags (and the optional TOML file, for masking and the payment gateway) ->
:class:`dtmfguard.relay.engine.Relay`, served until SIGTERM/SIGINT.  Prints ``ready ...`` once the
control socket is bound.  Run one relay per core, each with its own ``--ng`` port and ``--rtp-range``,
and list them all in Kamailio's rtpengine set (``dtmfguard kamailio-config --mode relay``).
"""
from __future__ import annotations

import logging
import os
import signal
import threading

from . import CliError, number

log = logging.getLogger("dtmfguard.relay")


def _hostport(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"{flag} must be HOST:PORT, got {text!r}")
    return host, int(port)


def _range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or not 1024 <= int(low) < int(high) <= 65535:
        raise CliError(f"--rtp-range must be LOW-HIGH within 1024-65535, got {text!r}")
    return int(low), int(high)


def pipeline_factory(mask_mode, cfg):
    """What makes each call's pipeline: ``--mask-mode`` over the configuration's, and the configuration's mask
    and ``media.payment_notch`` and ``media.keypad_burst`` (defaults without a configuration)."""
    from ..media.pipeline import CallPipeline

    mode = mask_mode or (cfg.mask_mode if cfg else "always")
    options = cfg.masker_options() if cfg is not None else {}
    notch = cfg.payment_notch if cfg is not None else True

    def pipeline(name: str) -> CallPipeline:
        relay = None
        if mode == "secure" and cfg is not None:  # the card-run watch from [secure] (defaults without a file)
            from ..media.keyrelay import key_relay_for

            relay = key_relay_for(cfg)
        return CallPipeline(8000, mask_mode=mode, masker_options=options, name=name, payment_notch=notch,
                            relay=relay)

    return pipeline


def run(args) -> int:
    from ..relay.engine import Relay, raise_fd_limit

    ng = _hostport(args.ng, "--ng")
    control = _hostport(args.control, "--control") if args.control else None
    rtp_range = _range(args.rtp_range)
    if not 0 <= args.jitter_ms <= 200:
        raise CliError("--jitter-ms must be between 0 and 200")
    cfg = None
    if args.config:
        from ..server.config import ConfigError, load_config

        try:
            cfg = load_config(args.config, {"agent_uri": "sip:unused@127.0.0.1", "agent_from": "static"})
        except ConfigError as exc:
            raise CliError(str(exc)) from None
    pipeline = pipeline_factory(args.mask_mode, cfg)

    session_factory = None
    if control:
        import dataclasses

        from ..server.config import ConfigError, GuardConfig
        from ..server.preflight import check_audit, check_gateway
        from .serve import _session_factory

        cfg = cfg or GuardConfig(agent_uri="sip:unused@127.0.0.1")
        # payments start here: their gateway (and its key) and audit trail are checked now, as serve does, not
        # at the first payment's 503 (check_gateway builds the gateway only where a control API is configured)
        problems = check_gateway(dataclasses.replace(cfg, control_port=control[1])) + check_audit(cfg)
        if problems:
            raise CliError(str(ConfigError.of(problems)))
        session_factory = _session_factory(cfg)
    max_calls = args.max_calls
    raise_fd_limit(4 * max_calls + 64)
    try:
        relay = Relay(ng=ng, media_address=args.media_address or ng[0], media_bind=args.media_bind,
                      rtp_range=rtp_range, jitter_ms=args.jitter_ms, customer=args.customer,
                      pipeline_factory=pipeline, max_calls=max_calls, session_factory=session_factory,
                      call_timeout_s=args.call_timeout,
                      secure_timeout_s=cfg.secure_timeout_s if cfg is not None else 900.0,
                      info_port=None if args.no_info else (args.info_port or (ng[1] + 1 if ng[1] else 0)))
    except OSError as exc:
        raise CliError(exc.strerror or str(exc), 1) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    api = None
    if control:
        from ..server.control import ControlServer

        token_env = cfg.token_env if cfg is not None else "DTMFGUARD_API_TOKEN"
        token = os.environ.get(token_env, "")
        if not token:
            relay.close()
            raise CliError(f"control API needs a bearer token in the environment variable {token_env}")
        api = ControlServer(relay, control[0], control[1], token)
        api.start()
    # the first-use set-up (0.2 s of CPU) under the normal scheduler, before this thread takes SCHED_RR below
    relay.warm_up()
    rt = False
    if args.priority != "off":
        from ..server import sched  # pure Python: the same real-time policy as serve's media clock thread

        try:
            if sched.configure(args.priority):
                rt = sched.raise_current_thread()  # this thread runs the media loop; the API thread stays normal
        except RuntimeError as exc:
            relay.close()
            if api is not None:
                api.stop()
            raise CliError(str(exc), 1) from None
        log.info("media loop %s", "runs under SCHED_RR" if rt else "stays under the normal scheduler")
    print(f"ready ng={ng[0]}:{relay.ng_address[1]} media={args.media_address or ng[0]} "
          f"rtp={rtp_range[0]}-{rtp_range[1]} customer={args.customer} g722={'yes' if relay.g722 else 'no'}"
          f" realtime={'yes' if rt else 'no'}"
          + (f" info={relay.info_address[0]}:{relay.info_address[1]}" if relay.info_address else "")
          + (f" control=http://{api.address[0]}:{api.address[1]}" if api else ""), flush=True)
    try:
        relay.run(stop)
    finally:
        if api is not None:
            api.stop()
        stats = relay.statistics()
        log.info("relay stopping: %d call(s), %d ticks, %d late", stats["active_calls"], stats["ticks"],
                 stats["late_ticks"])
        relay.close()
    return 0


def register(sub) -> None:
    import argparse

    p = sub.add_parser(
        "relay", help="media element for Kamailio's rtpengine module (many calls per process)",
        description="Serve rtpengine's ng control protocol (ping/offer/answer/delete/query) so that Kamailio "
                    "routes each call's RTP through this process; the customer's audio is masked by the same "
                    "pipeline as `serve`. The caller (the first offer's from-tag) is the customer unless "
                    "--customer callee.",
        epilog="Example:\n  dtmfguard relay --ng 127.0.0.1:22222 --media-address 10.0.0.5 --rtp-range 30000-39999\n"
               "Exit codes: 0 stopped by a signal, 1 cannot bind, 2 bad flag or configuration.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ng", default="127.0.0.1:22222", help="control (ng protocol) UDP host:port")
    p.add_argument("--media-address", help="address written into SDP (default: the --ng host)")
    p.add_argument("--media-bind", help="address RTP sockets bind to (default: --media-address)")
    p.add_argument("--rtp-range", default="30000-39999", help="RTP/RTCP port range LOW-HIGH (4 ports per call)")
    p.add_argument("--jitter-ms", type=float, default=0.0,
                   help="initial playout delay of the customer stream (ms); it grows by itself when packets "
                        "come late (default 0: lowest latency; 20-40 for lossy WAN legs)")
    p.add_argument("--customer", choices=("caller", "callee"), default="caller",
                   help="which party is the customer: the first offer's sender (caller) or the answerer")
    p.add_argument("--mask-mode", choices=("always", "payment", "secure"),
                   help="as for serve (default: the configuration's, else always); secure: keys pressed outside "
                        "a payment or secure mode go on to the agent as RFC 4733 events")
    p.add_argument("--config", help="TOML configuration (mask options, payment gateway, audit)")
    p.add_argument("--control", help="control API host:port (token from $DTMFGUARD_API_TOKEN)")
    p.add_argument("--max-calls", type=number(1, 100_000, int), default=1000, help="refuse offers beyond this many calls")
    p.add_argument("--call-timeout", type=number(1, 86_400), default=60.0, help="end a call after this long without RTP (s)")
    p.add_argument("--info-port", type=number(0, 65_535, int), help="UDP port for the SIP INFO keys Kamailio forks to the relays "
                                                  "(default: the --ng port + 1, as kamailio-config assumes)")
    p.add_argument("--no-info", action="store_true", help="do not take SIP INFO keys")
    p.add_argument("--priority", choices=("auto", "realtime", "off"), default="auto",
                   help="run the media loop under SCHED_RR like serve's media.priority (auto: if permitted)")
    p.set_defaults(func=run)
