# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard audit verify FILE``: check a payment audit trail's SHA-256 chain.

Detects edited records (hash mismatch), removed, inserted or reordered records (chain and sequence
breaks), partial writes and anything that looks like a card number.  Records cut from the end are only
detectable against an anchor kept elsewhere: pass the head hash logged at append time with ``--head``.
"""
from __future__ import annotations

import argparse
import json

from . import EXIT_FAILURE, EXIT_OK, CliError


def _verify(args) -> int:
    from ..capture.audit import verify_file

    try:
        report = verify_file(args.file, expect_head=args.head)
    except OSError as exc:
        raise CliError(f"cannot read {args.file} ({exc.strerror or type(exc).__name__})") from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.ok:
        print(f"{args.file}: OK, {report.records} records, head {report.head or '(empty trail)'}")
    else:
        print(f"{args.file}: FAILED, {len(report.problems)} problem(s) in {report.records} records")
        for problem in report.problems:
            where = f"line {problem.line}" if problem.line else "trail"
            print(f"  {where}: {problem.kind}: {problem.message}")
    return EXIT_OK if report.ok else EXIT_FAILURE


def register(sub) -> None:
    p = sub.add_parser("audit", help="verify the payment audit trail",
                       description="Work with the hash-chained payment audit trail (JSON lines).",
                       epilog="Example:\n  dtmfguard audit verify payments.audit.jsonl\n"
                              "Exit codes: see dtmfguard audit verify --help; 2 without an action.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="audit_command", metavar="ACTION")
    verify = actions.add_parser(
        "verify", help="check every record's hash and the chain",
        description="Check every record's SHA-256 hash, the chain to the previous record and the sequence "
                    "numbers; report edited, removed, inserted or reordered records.",
        epilog="Examples:\n  dtmfguard audit verify payments.audit.jsonl\n"
               "  dtmfguard audit verify --json --head 3f1c...e9 payments.audit.jsonl\n"
               "Exit codes: 0 intact, 1 problems found, 2 file unreadable.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("file", metavar="FILE", help="audit trail (JSON lines)")
    verify.add_argument("--head", metavar="HASH", help="expected hash of the last record (an external anchor)")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(func=_verify)
    p.set_defaults(func=lambda args: p.print_help() or 2)
