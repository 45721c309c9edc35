# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard config check FILE``: every problem of a guard configuration, before ``serve`` meets it.

The same checks ``serve`` runs at start (:meth:`GuardConfig.problems`, then
:func:`dtmfguard.server.preflight.check_resources`: gateway and its key, audit trail, addresses, TLS files,
the control API's token), all reported at once.  Run it where the guard runs, with its environment
(secrets such as the vault key or the webhook secret come from there).  Building the gateway may create
an empty vault database where the configuration says it lives, as the first payment would.
"""
from __future__ import annotations

import argparse
import json
import os

from . import EXIT_FAILURE, EXIT_OK, CliError


def _check(args) -> int:
    from ..server.config import ConfigError, load_config
    from ..server.preflight import check_resources

    if not os.path.isfile(args.file):
        raise CliError(f"config file not found: {args.file}")
    if not os.access(args.file, os.R_OK):
        raise CliError(f"cannot read config file {args.file}")
    cfg, problems = None, []
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        problems = list(exc.problems)
    if cfg is not None and not args.values_only:
        problems = check_resources(cfg)
    if args.json:
        out = {"file": args.file, "ok": not problems, "problems": problems,
               "checked": ["values"] + ([] if args.values_only or cfg is None else ["host"])}
        if cfg is not None:
            out.update(workers=cfg.workers,
                       sip=[f"{cfg.sip_host}:{cfg.sip_port + i * cfg.sip_port_step}" for i in range(cfg.workers)],
                       control=f"{cfg.control_host}:{cfg.control_port}" if cfg.control_port else None,
                       gateway=cfg.gateway, audit=cfg.audit_path or None)
        print(json.dumps(out))
    elif problems:
        print(f"{args.file}: {len(problems)} problem(s)")
        for p in problems:
            print(f"  {p}")
    else:
        print(f"{args.file}: OK ({'values only' if args.values_only else 'values and host'}; "
              f"{cfg.workers} worker(s), gateway {cfg.gateway})")
    return EXIT_FAILURE if problems else EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("config", help="check a guard configuration file",
                       description="Work with the guard's TOML configuration.",
                       epilog="Example:\n  dtmfguard config check /etc/dtmfguard/guard.toml\n"
                              "Exit codes: see dtmfguard config check --help; 2 without an action.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="config_command", metavar="ACTION")
    check = actions.add_parser(
        "check", help="report every problem of a configuration file",
        description="Check a configuration as `dtmfguard serve` does at start and report every problem at "
                    "once: values, then what the host must provide (the payment gateway built with its "
                    "options and key, the audit trail writable, listen addresses local, the agent's host "
                    "resolvable, TLS files readable, the control API token set). Run it with the "
                    "service's environment.",
        epilog="Examples:\n  dtmfguard config check guard.toml\n"
               "  sudo -u dtmfguard env $(cat /etc/dtmfguard/env) dtmfguard config check --json "
               "/etc/dtmfguard/guard.toml\n"
               "Exit codes: 0 valid, 1 problems found (listed), 2 file missing or unreadable.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("file", metavar="FILE", help="TOML configuration file")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--values-only", dest="values_only", action="store_true",
                       help="check the values only, not what the host provides (e.g. on a build machine)")
    check.set_defaults(func=_check)
    p.set_defaults(func=lambda args: p.print_help() or 2)
