# SPDX-License-Identifier: GPL-2.0-or-later
"""The ``dtmfguard`` command: a thin layer over the library.

Each sub-command lives in its own module in this package and exposes
``register(subparsers)``, which adds its parser and sets ``func``; ``func``
returns the exit code.  Exit codes: 0 success, 1 the command ran and found a
failure (e.g. verification failed), 2 usage or input error, 3 internal error.
Errors are printed as one line, never as a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

__all__ = ["main", "CliError", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERNAL"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ["info", "detect", "serve", "relay", "config", "kamailio_config", "audit", "mask", "inspect", "demo",
            "live"]


class CliError(Exception):
    """A user-facing error: printed as ``dtmfguard: <message>`` with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def number(low: float, high: float, kind: type = float):
    """An argparse ``type``: a ``kind`` (int or float) from ``low`` to ``high``, else a one-line usage error (exit
    2) naming the option, before the command does any work (not a ValueError from deep inside, exit 3)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text} is not between {low:g} and {high:g}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def lookahead_ms(text: str) -> float:
    """``--lookahead-ms``: a look-ahead the masker accepts (:data:`dtmfguard.dsp.masks.LOOKAHEAD_RANGE_MS`)."""
    from ..dsp.masks import LOOKAHEAD_RANGE_MS

    return number(*LOOKAHEAD_RANGE_MS)(text)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``dtmfguard demo: argument --dtmf: invalid choice ...``).

    Sub-command parsers inherit the class (``add_subparsers`` uses ``type(self)``).
    """

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="dtmfguard",
        description="Keep card numbers typed on a phone keypad away from agents, recordings and logs.",
        epilog="Exit codes: 0 ok, 1 failure found, 2 usage/input error, 3 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"dtmfguard {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    parser.add_argument("--log-format", dest="log_format", choices=("text", "json"),
                        help="log lines as text (default) or one JSON object per line (no card data either way)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from ..logjson import configure as configure_log_format
    from ..security import install_log_redaction

    configure_log_format(getattr(args, "log_format", None))
    install_log_redaction()  # last line of defence: no digit run or named key reaches a log handler
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"dtmfguard: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dtmfguard: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # one line, no traceback, and no message text: it could carry card data
        if args.verbose >= 2:
            from ..security import redacted_traceback

            print(redacted_traceback(exc), file=sys.stderr, end="")
        print(f"dtmfguard: internal error ({type(exc).__name__}); "
              + ("traceback above (redacted)" if args.verbose >= 2 else "run with -vv for details"), file=sys.stderr)
        return EXIT_INTERNAL
