# SPDX-License-Identifier: GPL-2.0-or-later
"""``--log-format json``: one JSON object per log line, for log shippers (Loki, Elasticsearch, journald).

Fields: ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``pid``, ``msg``.  The message is
the one the redacting filter (:func:`dtmfguard.security.install_log_redaction`) already rewrote: handler
filters run before the formatter, so JSON lines carry exactly what text lines would, never card data.
Exception text is never added (the filter keeps only the exception's type).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os

__all__ = ["JsonFormatter", "LOG_FORMAT_ENV", "configure"]

#: the format is handed to worker processes through this variable (they are started without the flag)
LOG_FORMAT_ENV = "DTMFGUARD_LOG_FORMAT"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(timespec="milliseconds")
        return json.dumps({"ts": ts, "level": record.levelname, "logger": record.name, "pid": record.process,
                           "msg": record.getMessage()}, ensure_ascii=False)


def configure(fmt: str | None) -> str:
    """Use ``fmt`` ("text" | "json"; None: from the environment) for the root handlers; returns it."""
    fmt = fmt or os.environ.get(LOG_FORMAT_ENV) or "text"
    if fmt not in ("text", "json"):
        fmt = "text"
    os.environ[LOG_FORMAT_ENV] = fmt  # inherited by worker processes
    if fmt == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    return fmt
