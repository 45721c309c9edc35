# SPDX-License-Identifier: GPL-2.0-or-later
"""Append-only audit trail: JSON lines, each record chained to the previous one by SHA-256.

PCI DSS v4.0 Req. 10.2 asks for audit logs of actions on cardholder data and Req. 10.3.2 that they be
protected from modification; Req. 3.3.1 and 3.5 mean the log itself must hold no security code, expiry
or full PAN.  Each record carries ``seq`` (0, 1, 2 …), ``prev`` (the previous record's ``hash``; 64 zeros
for the first) and ``hash`` = SHA-256 over the canonical JSON of the record without ``hash`` (sorted keys,
no spaces, UTF-8).  :func:`verify_file` then detects any edited record (hash mismatch), any removed,
inserted or reordered record (``prev``/``seq`` do not follow).

A plain hash chain cannot show that records were cut from the *end*, and someone who can rewrite the
whole file can recompute the chain.  Both are caught by anchoring the head elsewhere: every append logs
``seq`` and head hash at INFO (ship that log off the host), and ``verify --head HASH`` checks against it.

Appends take an exclusive ``flock`` and re-read the tail, so several processes can share one file.
:meth:`AuditTrail.append` refuses records that contain a Luhn-valid 12-19 digit run or card-data keys.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from .card import luhn_valid

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: single-process appends only
    fcntl = None

__all__ = ["AuditTrail", "AuditError", "AuditProblem", "AuditReport", "GENESIS_HASH", "record_hash",
           "verify_file", "find_card_data"]

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
_FORBIDDEN_KEYS = frozenset({"pan", "card_number", "number", "expiry", "expiry_date", "security_code", "cvv",
                             "cvc", "cvv2", "cid"})
_DIGIT_RUN_RE = re.compile(r"(?<!\d)\d{12,19}(?!\d)")


class AuditError(Exception):
    """The trail could not be written, or a record was refused."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``record`` without its ``hash`` key."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def find_card_data(text: str) -> List[str]:
    """Kinds of card data found in ``text`` (today: Luhn-valid 12-19 digit runs), never the data."""
    return ["possible card number" for run in _DIGIT_RUN_RE.findall(text) if luhn_valid(run)]


def _check_keys(obj: Any) -> None:
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if str(key).lower() in _FORBIDDEN_KEYS:
                raise AuditError(f"audit record refused: key {key!r} is card data")
            _check_keys(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_keys(value)


class AuditTrail:
    """Append records to a chained JSON lines file (created 0640 if missing)."""

    def __init__(self, path: Union[str, os.PathLike], *, wallclock: Callable[[], float] = time.time,
                 fsync: bool = True):
        self.path = os.fspath(path)
        self._wallclock = wallclock
        self._fsync = fsync
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AuditTrail({self.path!r})"

    @staticmethod
    def _read_tail(fd: int) -> Tuple[int, str]:
        """(next seq, previous hash) from the last line of the file."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS_HASH
        chunk, data = 4096, b""
        position = size
        while position > 0:
            step = min(chunk, position)
            position -= step
            data = os.pread(fd, step, position) + data
            if data.count(b"\n") >= 2 or position == 0:
                break
        if not data.endswith(b"\n"):
            raise AuditError("audit trail ends with a partial record; run 'dtmfguard audit verify'")
        last = data[:-1].rsplit(b"\n", 1)[-1]
        try:
            record = json.loads(last)
            return int(record["seq"]) + 1, str(record["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditError("audit trail's last record is unreadable; run 'dtmfguard audit verify'") from None

    def append(self, record: Mapping[str, Any]) -> Dict[str, Any]:
        """Chain and append ``record`` (a JSON-ready mapping); return it with seq/ts/prev/hash added."""
        if any(key in record for key in ("seq", "prev", "hash", "ts")):
            raise AuditError("seq, ts, prev and hash are set by the trail")
        _check_keys(record)
        if find_card_data(json.dumps(record)):
            raise AuditError("audit record refused: it contains what looks like a card number")
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
            except OSError as exc:
                raise AuditError(f"cannot open audit trail {self.path!r} ({exc.strerror})") from None
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                seq, prev = self._read_tail(fd)
                now = _dt.datetime.fromtimestamp(self._wallclock(), _dt.timezone.utc)
                full = {**record, "seq": seq, "ts": now.isoformat(timespec="milliseconds"), "prev": prev}
                full["hash"] = record_hash(full)
                line = _canonical(full) + b"\n"
                written = os.write(fd, line)
                if written != len(line):
                    raise AuditError("short write to the audit trail")
                if self._fsync:
                    os.fsync(fd)
            except OSError as exc:
                raise AuditError(f"cannot write audit trail {self.path!r} ({exc.strerror})") from None
            finally:
                os.close(fd)  # also releases the flock
        logger.info("audit %s: record %d, head %s", self.path, seq, full["hash"])
        return full


@dataclass
class AuditProblem:
    line: int
    kind: str
    message: str


@dataclass
class AuditReport:
    path: str
    records: int = 0
    head: Optional[str] = None
    problems: List[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> Dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "records": self.records, "head": self.head,
                "problems": [asdict(p) for p in self.problems]}


def verify_file(path: Union[str, os.PathLike], expect_head: Optional[str] = None) -> AuditReport:
    """Check every record's hash, the chain and the sequence; OSError if the file cannot be read."""
    report = AuditReport(os.fspath(path))
    expected_prev: Optional[str] = GENESIS_HASH
    expected_seq: Optional[int] = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            def add(kind: str, message: str, line: int = number) -> None:
                report.problems.append(AuditProblem(line, kind, message))

            text = raw.decode("utf-8", "replace")
            if not raw.endswith(b"\n"):
                add("partial", "last line has no newline (interrupted write or truncation)")
            if not text.strip():
                add("blank", "blank line")
                continue
            try:
                record = json.loads(text)
                stored_hash, prev, seq = record["hash"], record["prev"], record["seq"]
            except (ValueError, KeyError, TypeError):
                if find_card_data(text):
                    add("card_data", "line contains what looks like a card number")
                add("unreadable", "not a JSON audit record")
                expected_prev, expected_seq = None, None
                continue
            # Hex hashes can hold long digit runs by chance: scan everything but the chain fields.
            if find_card_data(json.dumps({k: v for k, v in record.items() if k not in ("hash", "prev")})):
                add("card_data", "record contains what looks like a card number")
            report.records += 1
            if record_hash(record) != stored_hash:
                add("edited", f"record {seq} was altered: its hash does not match its content")
            if expected_prev is not None and prev != expected_prev:
                add("chain", f"record {seq} does not follow the previous record "
                             "(records removed, inserted or reordered)")
            if expected_seq is not None and seq != expected_seq:
                add("sequence", f"expected record {expected_seq}, found {seq}")
            expected_prev = stored_hash
            expected_seq = seq + 1 if isinstance(seq, int) else None
            report.head = stored_hash
    if expect_head is not None and report.head != expect_head:
        report.problems.append(AuditProblem(0, "head", "the last record is not the expected head "
                                                       "(records cut from or added to the end)"))
    return report
