# SPDX-License-Identifier: GPL-2.0-or-later
"""What a worker's SIP dialogs look like on the wire, kept on disk so someone else can end them.

Why: a worker killed mid-call (SIGKILL, a crash in pjsua2) takes its dialog
state with it; its customer and agent legs would stay up until RFC 4028 session
timers expire (90 s), the customer hearing silence and the agent's desktop
waiting.  Each supervised worker therefore records, for every live leg, what an
in-dialog request needs (RFC 3261 §12.2.1.1): Call-ID, local and remote
From/To values *with their tags*, remote target (Contact), route set
(Record-Route: in order for the UAS, reversed for the UAC, §12.1.1/§12.1.2),
transport, the highest CSeq it sent, and its local address.  For a leg still
ringing it also keeps what ends an unanswered INVITE without its transaction:
the customer's Via headers and source address (a final response, §17.2.1 /
§18.2.2) and the agent INVITE's Request-URI, top Via and Route headers (a
CANCEL, §9.1).  The supervisor (:mod:`dtmfguard.sip.orphans`) reads the file
when the worker dies and ends each leg.

pjsua2's ``CallInfo`` gives Call-ID and URIs but *not* the tags (measured:
``localUri`` is ``<sip:guard@127.0.0.1>``), so the record is built from the
messages themselves: the customer's INVITE (``onIncomingCall``) and every
INVITE transaction's sent or received message (``onCallTsxState``, read out of
pjsua2's event by :mod:`dtmfguard.sip.pj.dialogs`; this module is pure text work,
so the supervisor reads the records without importing anything of pjsua2's).  Only
header fields named above are kept; bodies are cut off before parsing, and no
other method's message is read beyond its CSeq, so SIP INFO bodies (which carry
keys) never reach this module's state: the file holds dialog identifiers only,
never card data (PCI DSS req. 3.3).

The file is written on the worker's SIP thread when a record changes (about 8
times per call), as 0600 through a temporary file and ``os.replace`` (readers
never see half a file) and deleted when the worker has no live leg.  No fsync:
a crashed *process* leaves the page cache intact, and a crashed *machine*
ends every call anyway.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass, field

from ..security import replacing

__all__ = ["LegRecord", "DialogBook", "STATE_ENV", "load_records", "parse_head", "split_header_list",
           "tag_of", "uri_of"]

log = logging.getLogger(__name__)

#: The supervisor tells each worker where to keep its dialog state (a file in the worker's run directory).
STATE_ENV = "DTMFGUARD_DIALOG_STATE"

#: RFC 3261 §7.3.3 compact header forms used here
_COMPACT = {"i": "call-id", "f": "from", "t": "to", "m": "contact", "v": "via", "l": "content-length"}
_KEEP = {"call-id", "from", "to", "contact", "via", "cseq", "record-route", "route"}


@dataclass
class LegRecord:
    """One leg (customer = UAS, agent = UAC) of one bridge, as the worker last saw it."""

    bridge: str
    role: str  # "customer" (the guard is UAS) or "agent" (UAC)
    call_id: str = ""
    local: str = ""  # our From/To header value, with our tag once there is one
    remote: str = ""  # the peer's, with its tag once known
    remote_target: str = ""  # the peer's Contact URI (where in-dialog requests go)
    route_set: list = field(default_factory=list)
    transport: str = "udp"
    local_host: str = ""
    local_port: int = 0
    local_cseq: int = 0  # highest CSeq this side has sent in the dialog; 0 = none seen
    confirmed: bool = False  # a 2xx to the INVITE was sent (UAS) or received (UAC)
    # an unanswered INVITE: customer side (final response) and agent side (CANCEL)
    invite_cseq: int = 0
    invite_vias: list = field(default_factory=list)
    invite_to: str = ""
    invite_ruri: str = ""
    invite_routes: list = field(default_factory=list)
    peer_addr: str = ""  # source host:port of the customer's INVITE

    @property
    def key(self) -> str:
        return f"{self.bridge}/{self.role}"

    @property
    def uas(self) -> bool:
        return self.role == "customer"


# -- parsing (headers only; the body is dropped first) ---------------------------------------------------
def parse_head(message: str) -> tuple[str, dict[str, list[str]]]:
    """A SIP message's start line and the headers this module uses (lower-case names, values in order).
    The body is cut off unread; folded lines are joined (RFC 3261 §7.3.1)."""
    head = message.split("\r\n\r\n", 1)[0].replace("\r\n", "\n").split("\n\n", 1)[0]
    lines: list[str] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        name = _COMPACT.get(name, name)
        if sep and name in _KEEP:
            headers.setdefault(name, []).append(value.strip())
    return (lines[0].strip() if lines else ""), headers


def split_header_list(values: list[str]) -> list[str]:
    """Comma-separated header values (Via, Route, Record-Route) split outside quotes and ``<>``."""
    out = []
    for value in values:
        depth, quoted, start = 0, False, 0
        for i, ch in enumerate(value):
            if ch == '"' and (i == 0 or value[i - 1] != "\\"):
                quoted = not quoted
            elif not quoted and ch == "<":
                depth += 1
            elif not quoted and ch == ">":
                depth = max(0, depth - 1)
            elif not quoted and depth == 0 and ch == ",":
                out.append(value[start:i].strip())
                start = i + 1
        out.append(value[start:].strip())
    return [v for v in out if v]


def _params_part(value: str) -> str:
    """The header parameters of a From/To/Contact value (after ``>`` or after the URI)."""
    if ">" in value:
        return value.rsplit(">", 1)[1]
    return ";" + value.split(";", 1)[1] if ";" in value else ""


def tag_of(value: str) -> str:
    m = re.search(r";\s*tag\s*=\s*([^;\s,]+)", _params_part(value), re.IGNORECASE)
    return m.group(1) if m else ""


def uri_of(value: str) -> str:
    """The URI of a name-addr or addr-spec (``"A" <sip:a@h;lr>;tag=x`` -> ``sip:a@h;lr``)."""
    m = re.search(r"<([^>]*)>", value)
    if m:
        return m.group(1).strip()
    return value.split(";", 1)[0].strip()


def _cseq(headers: dict) -> tuple[int, str]:
    try:
        number, method = headers["cseq"][0].split(None, 1)
        return int(number), method.strip().upper()
    except (KeyError, ValueError, IndexError):
        return 0, ""


def _via_transport(via: str) -> str:
    m = re.match(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)", via)
    return m.group(1).lower() if m else "udp"


# -- the worker's side ------------------------------------------------------------------------------------
class DialogBook:
    """The live legs of one worker, mirrored to ``path`` (no-op when ``path`` is empty: an unsupervised
    ``serve`` has nobody to end its calls).  Every public method swallows its own errors: recording must
    never disturb the call it records (it runs inside pjsua2 callbacks)."""

    def __init__(self, path: str | None, local_host: str = "", local_port: int = 0):
        self.path = path or ""
        self.local_host, self.local_port = local_host, local_port
        self.legs: dict[str, LegRecord] = {}

    @classmethod
    def from_env(cls, local_host: str, local_port: int) -> DialogBook:
        return cls(os.environ.get(STATE_ENV, ""), local_host, local_port)

    def _leg(self, bridge: str, role: str) -> LegRecord:
        key = f"{bridge}/{role}"
        rec = self.legs.get(key)
        if rec is None:
            rec = self.legs[key] = LegRecord(bridge, role, local_host=self.local_host, local_port=self.local_port)
        return rec

    def incoming(self, bridge: str, message: str, src_addr: str = "") -> None:
        """The customer's INVITE (``onIncomingCall``'s ``prm.rdata``)."""
        if not self.path:
            return
        try:
            _, h = parse_head(message)
            rec = self._leg(bridge, "customer")
            rec.call_id = h.get("call-id", [""])[0]
            rec.remote = h.get("from", [""])[0]
            rec.invite_to = h.get("to", [""])[0]
            rec.remote_target = uri_of(h.get("contact", [""])[0])
            rec.route_set = split_header_list(h.get("record-route", []))  # UAS: in order (§12.1.1)
            rec.invite_vias = split_header_list(h.get("via", []))
            rec.invite_cseq = _cseq(h)[0]
            rec.transport = _via_transport(rec.invite_vias[0]) if rec.invite_vias else "udp"
            rec.peer_addr = src_addr
            self._save()
        except Exception as exc:  # noqa: BLE001 - see class docstring
            log.warning("%s: dialog not recorded (%s)", bridge, type(exc).__name__)

    def message(self, bridge: str, role: str, method: str, outgoing: bool, message_text) -> None:
        """One message of one of the leg's transactions (``onCallTsxState``).  ``message_text`` is a
        callable returning the message, so non-INVITE messages (SIP INFO carries keys) are only read for
        our own requests' CSeq."""
        key = f"{bridge}/{role}"
        opens = role == "agent" and method == "INVITE" and outgoing  # only the agent INVITE opens a record
        if not self.path or (method != "INVITE" and not outgoing) or (key not in self.legs and not opens):
            return
        try:
            start, h = parse_head(message_text())
            if key not in self.legs and start.startswith("SIP/"):
                return
            if self._apply(self._leg(bridge, role), method, outgoing, start, h):
                self._save()
        except Exception as exc:  # noqa: BLE001
            log.warning("%s: dialog update not recorded (%s)", bridge, type(exc).__name__)

    def _apply(self, rec: LegRecord, method: str, outgoing: bool, start: str, h: dict) -> bool:
        is_request = not start.startswith("SIP/")
        number, cseq_method = _cseq(h)
        if is_request and outgoing:
            if cseq_method in ("ACK", "CANCEL") or number <= rec.local_cseq:
                return False
            rec.local_cseq = number
            if method == "INVITE" and not rec.uas and not rec.call_id:  # the agent leg's initial INVITE
                rec.call_id = h.get("call-id", [""])[0]
                rec.local = h.get("from", [""])[0]
                rec.remote = rec.invite_to = h.get("to", [""])[0]
                rec.invite_ruri = start.split()[1] if len(start.split()) > 1 else ""
                rec.invite_vias = split_header_list(h.get("via", []))[:1]
                rec.invite_routes = split_header_list(h.get("route", []))
                rec.invite_cseq = number
                rec.transport = _via_transport(rec.invite_vias[0]) if rec.invite_vias else "udp"
            return True
        if is_request:  # a re-INVITE from the peer may move its target (§12.2.2)
            contact = h.get("contact")
            if contact and rec.confirmed and uri_of(contact[0]) != rec.remote_target:
                rec.remote_target = uri_of(contact[0])
                return True
            return False
        try:
            code = int(start.split()[1])
        except (IndexError, ValueError):
            return False
        if cseq_method != "INVITE" or code < 101 or code >= 300 or (rec.confirmed and number != rec.invite_cseq):
            return False
        to = h.get("to", [""])[0]
        if not tag_of(to):
            return False
        before = dataclasses.astuple(rec)
        if outgoing and rec.uas:
            rec.local = to
        elif not outgoing and not rec.uas:
            rec.remote = to
            if h.get("contact"):
                rec.remote_target = uri_of(h["contact"][0])
            rec.route_set = list(reversed(split_header_list(h.get("record-route", []))))  # UAC (§12.1.2)
        else:
            return False
        if code >= 200:
            rec.confirmed = True
        return dataclasses.astuple(rec) != before

    def ended(self, bridge: str, role: str) -> None:
        """The leg is DISCONNECTED: nothing left to end."""
        if self.legs.pop(f"{bridge}/{role}", None) is not None and self.path:
            try:
                self._save()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: dialog state not updated (%s)", bridge, type(exc).__name__)

    def clear(self) -> None:
        self.legs.clear()
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def _save(self) -> None:
        if not self.legs:
            self.clear()
            return
        payload = json.dumps({"version": 1, "pid": os.getpid(),
                              "legs": [dataclasses.asdict(r) for r in self.legs.values()]})
        with replacing(self.path, prefix=".dialogs-") as tmp:  # mode 0600, atomic
            with open(tmp, "w") as f:
                f.write(payload)


def load_records(path: str) -> list[LegRecord]:
    """The legs a (dead) worker left in ``path``; [] when there is no file.  Unknown keys are ignored, a
    damaged file gives [] and a warning (never an exception: the supervisor must keep going)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("dialog state %s unreadable (%s)", path, type(exc).__name__)
        return []
    names = {f.name for f in dataclasses.fields(LegRecord)}
    out = []
    for item in data.get("legs", []) if isinstance(data, dict) else []:
        if isinstance(item, dict) and item.get("bridge") and item.get("role") in ("customer", "agent"):
            out.append(LegRecord(**{k: v for k, v in item.items() if k in names}))
    return out
