# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard kamailio-config``: write a Kamailio dispatcher configuration for the current workers."""
from __future__ import annotations

import json

from . import CliError
from .serve import load


def run(args) -> int:
    if getattr(args, "mode", "dispatcher") == "relay":
        from ..relay.kamailio_cfg import run_cli

        return run_cli(args)
    from ..server.config import ConfigError, parse_hostport
    from ..server.kamailio import write_config

    cfg = load(args, require_agent=False)
    try:
        listen = parse_hostport(args.front, "--front")
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    import ipaddress

    allow = tuple(a for item in (args.allow or ()) for a in item.split(",") if a.strip())
    for a in allow:
        try:
            ipaddress.ip_network(a.strip(), strict=False)
        except ValueError:
            raise CliError(f"--allow: {a!r} is not an IP address or network") from None
    try:
        main, lst = write_config(cfg, args.output, listen, allow=tuple(a.strip() for a in allow))
    except OSError as exc:
        raise CliError(f"cannot write to {args.output}: {exc.strerror}", 1) from None
    if args.json:
        print(json.dumps({"kamailio_cfg": main, "dispatcher_list": lst, "workers": cfg.workers}))
    else:
        print(f"wrote {main} and {lst} ({cfg.workers} worker(s)); run: kamailio -DD -E -f {main}")
    return 0


def register(sub) -> None:
    import argparse

    p = sub.add_parser(
        "kamailio-config", help="write a Kamailio dispatcher config for the guard workers",
        description="Write kamailio.cfg and dispatcher.list that spread calls round-robin over the workers "
                    "of `dtmfguard serve --workers N` (same --config and flags).",
        epilog="Example:\n  dtmfguard kamailio-config --config guard.toml --workers 4 --front 0.0.0.0:5060 "
               "--output /etc/kamailio/dtmfguard\n"
               "Exit codes: 0 written, 1 output not writable, 2 bad configuration or flag.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="the guard's TOML configuration")
    p.add_argument("--listen", help="first worker's SIP host:port (as for serve)")
    p.add_argument("--agent", help="as for serve (needed only if the config has no agent target)")
    p.add_argument("--workers", type=int, help="number of workers")
    p.add_argument("--front", default="127.0.0.1:5060", help="Kamailio's own listen host:port")
    p.add_argument("--output", default=".", help="directory for kamailio.cfg and dispatcher.list")
    p.add_argument("--allow", action="append", metavar="CIDR[,CIDR...]",
                   help="peers allowed to send requests (the carrier's SBCs; repeatable); default: any. "
                        "The workers' own addresses (relay mode: the --agent PBX's) are always allowed")
    p.add_argument("--json", action="store_true", help="print the written paths as JSON")
    p.add_argument("--mode", choices=("dispatcher", "relay"), default="dispatcher",
                   help="dispatcher: spread calls over `serve` workers; relay: proxy + rtpengine set of "
                        "`dtmfguard relay` processes")
    p.add_argument("--relay", action="append", metavar="HOST:PORT[=WEIGHT]",
                   help="relay mode: a relay's ng address (repeat for each; default 127.0.0.1:22222)")
    for name in ("transports", "tls_cert", "tls_key", "tls_port", "rtp_port", "rtp_range", "mask", "mask_mode",
                 "control"):
        p.set_defaults(**{name: None})
    p.set_defaults(func=run)
