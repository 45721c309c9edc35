# SPDX-License-Identifier: GPL-2.0-or-later
"""Process-level protections for card data (PCI DSS v4.0 req. 3.3, 3.5, 10.2).

* :func:`redact` and :class:`RedactingFilter`: the last line of defence for
  logs.  Code must never log digits in the first place; the filter catches
  what slips through anyway — a digit run long enough to be part of a card
  number, and single keys named by telephony stacks ("DTMF digit 5",
  ``Signal=5``) — in every record, including pjsua2's own log lines.
* :func:`harden_process`: no core dumps (a core of a worker holding card
  digits would be a PAN on disk), no ptrace attach by other users' tools,
  private file-creation mask.
* :func:`read_secret_file`: secrets come from the environment or from files
  only their owner can read; anything else is refused, not warned about.
"""
from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import re
import resource
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["is_loopback_host", "redact", "RedactingFilter", "install_log_redaction", "harden_process", "read_secret_file",
           "replacing",
           "SecretFileError", "REDACTED"]

REDACTED = "[redacted]"

# Runs of digits, possibly grouped by single spaces or dashes ("4111 1111 1111 1111").  Contiguous runs of
# 6 or more (a PAN, an expiry+CVV run) and grouped runs of 12 or more digits (a formatted PAN) are redacted;
# shorter ones (times, dates, ports, counts) stay readable.
_DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d)*")
_MIN_CONTIGUOUS, _MIN_GROUPED = 6, 12


def _redact_run(m: re.Match) -> str:
    run = m.group(0)
    digits = sum(ch.isdigit() for ch in run)
    if digits >= _MIN_GROUPED or re.search(r"\d{%d}" % _MIN_CONTIGUOUS, run):
        return REDACTED
    return run
# A single key named by a telephony log line: "digit 5", "digits=12", "DTMF '4'", "Signal=5", "event 7".
_KEY_MENTION = re.compile(
    r"\b((?i:digits?|dtmf|signal|key|event|tone))([ \t]*[:=]?[ \t]*['\"]?)([0-9A-D*#]+)(?![A-Za-z0-9])(['\"]?)"
)


# Hash chain heads, SHA-256 digests and similar hex identifiers (32+ hex characters with at least one letter)
# are kept whole: their digit runs are not card data, and operators need them intact to anchor the audit trail.
_HEX_ID = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """``text`` with digit runs and named keys replaced by ``[redacted]`` (hex digests left whole)."""
    parts, last = [], 0
    for m in _HEX_ID.finditer(text):
        parts.append(_redact_plain(text[last:m.start()]))
        parts.append(m.group(0))
        last = m.end()
    parts.append(_redact_plain(text[last:]))
    return "".join(parts)


def _redact_plain(text: str) -> str:
    text = _DIGIT_RUN.sub(_redact_run, text)
    return _KEY_MENTION.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(4)}", text)


def redacted_traceback(exc: BaseException) -> str:
    """``exc``'s traceback (chained ones too) with every line through :func:`redact`: where it failed, for
    ``-vv`` and debug logs, never the card data an exception message or a source line might hold."""
    import traceback

    return "".join(redact(line) for line in traceback.format_exception(exc))


def log_debug_traceback(logger: logging.Logger, exc: BaseException) -> None:
    """At DEBUG (``-vv``), log ``exc``'s redacted traceback (:class:`RedactingFilter` drops ``exc_info``)."""
    try:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("traceback (redacted):\n%s", redacted_traceback(exc).rstrip())
    except Exception:  # noqa: BLE001 - called from error paths (pjsua2 callbacks): never raise
        pass


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) through :func:`redact`.

    Attach it to *handlers* (see :func:`install_log_redaction`): a logger's
    filters do not see records propagated from child loggers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not drop the record or raise into the caller
            message = f"{record.msg!s}"
        record.msg = redact(message)
        record.args = ()
        if record.exc_info:
            # keep the exception type; the text could hold a key
            exc_type = record.exc_info[0]
            record.msg += f" [{exc_type.__name__ if exc_type else 'exception'}]"
            record.exc_info = None
            record.exc_text = None
        if record.stack_info:
            record.stack_info = None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of ``logger`` (default: root)."""
    logger = logger or logging.getLogger()
    flt = RedactingFilter()
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt


_PR_SET_DUMPABLE = 4


def harden_process() -> dict:
    """Disable core dumps and ptrace-dumpability, set umask 077.  Returns what was applied.

    Call it at the start of every process that handles card digits (SIP workers, the demo's guard).
    """
    applied = {}
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        applied["core_dumps"] = "disabled"
    except (ValueError, OSError) as exc:  # pragma: no cover - platform dependent
        applied["core_dumps"] = f"unchanged ({type(exc).__name__})"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0:
            applied["dumpable"] = False
    except (OSError, AttributeError):  # pragma: no cover - non-Linux
        applied["dumpable"] = "unchanged"
    os.umask(0o077)
    applied["umask"] = "077"
    return applied


class SecretFileError(PermissionError):
    """A secret file that is missing, unreadable or readable by others."""


def read_secret_file(path: str | os.PathLike, *, max_bytes: int = 65536) -> bytes:
    """Read a key or token file that only its owner may read (mode 0600 or stricter).

    Refuses group/world-accessible files, symlinks to elsewhere, and non-regular files.
    """
    p = Path(path)
    try:
        st = os.stat(p, follow_symlinks=False)
    except FileNotFoundError:
        raise SecretFileError(f"secret file {p} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise SecretFileError(f"secret file {p} is a symlink; point to the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise SecretFileError(f"secret file {p} is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(f"secret file {p} is accessible by group/others (mode {stat.S_IMODE(st.st_mode):o});"
                              f" run: chmod 600 {p}")
    if st.st_size > max_bytes:
        raise SecretFileError(f"secret file {p} is larger than {max_bytes} bytes")
    return p.read_bytes()


@contextmanager
def replacing(path: str | os.PathLike, *, prefix: str = ".dtmfguard-", suffix: str = "") -> Iterator[str]:
    """Yield a temporary file name beside ``path`` (mode 0600: ``mkstemp``); on success it replaces ``path``
    atomically, on any failure it is removed.  Readers never see a half-written file, and no partial copy
    is left behind (a temp file is one of the places card data must never linger)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback IP literal (no name lookup): traffic that never leaves this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
