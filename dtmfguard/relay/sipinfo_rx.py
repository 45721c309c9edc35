# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP INFO key presses in relay mode: a minimal SIP UDP responder for the INFOs Kamailio forks to us.

Why: in relay mode Kamailio is only a proxy, so a key sent as SIP INFO (``application/dtmf-relay`` or
``application/dtmf``) would travel to the agent's phone.  The generated Kamailio script stops those INFOs
and forks each one to every relay of the set; the relay carrying the call (known by its Call-ID) answers
200 and hands the body to the call's pipeline (:meth:`CallPipeline.on_sip_info`: the agent hears the mask,
the payment session gets the digit), the others answer 481.  Nothing else of SIP is spoken here: a
request other than INFO gets 405, a response is ignored.

Parsing is deliberately narrow (RFC 3261 §7 syntax: request line, header lines, compact forms ``v f t i c
l``, a body after the empty line); replies copy Via, From, To, Call-ID and CSeq (§8.2.6.2) and are sent
back to the packet's source (§18.2.2 with ``rport``, which is where Kamailio listens).  Error replies
never quote the body.
"""
from __future__ import annotations

import logging

__all__ = ["parse_request", "response", "MAX_SIP_BYTES"]

log = logging.getLogger(__name__)

MAX_SIP_BYTES = 8192
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "c": "content-type", "l": "content-length"}


class SipParseError(ValueError):
    pass


def parse_request(data: bytes) -> tuple[str, dict[str, list[str]], bytes] | None:
    """``(method, headers (lower-case names -> values in order), body)``; None for a response."""
    if len(data) > MAX_SIP_BYTES:
        raise SipParseError("request too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipParseError("no end of headers")
    lines = head.decode("utf-8", "replace").split("\r\n")
    first = lines[0].split()
    if first and first[0] == "SIP/2.0":
        return None
    if len(first) != 3 or first[2] != "SIP/2.0":
        raise SipParseError("bad request line")
    headers: dict[str, list[str]] = {}
    for ln in lines[1:]:
        if not ln:
            continue
        if ln[0] in " \t" and headers:  # folded continuation (RFC 3261 §7.3.1)
            last = next(reversed(headers))
            headers[last][-1] += " " + ln.strip()
            continue
        name, colon, value = ln.partition(":")
        if not colon:
            raise SipParseError("header line without ':'")
        key = name.strip().lower()
        headers.setdefault(_COMPACT.get(key, key), []).append(value.strip())
    for need in ("via", "from", "to", "call-id", "cseq"):
        if need not in headers:
            raise SipParseError(f"missing {need} header")
    length = headers.get("content-length", [str(len(body))])[0]
    if not length.isdigit() or int(length) > len(body):
        raise SipParseError("bad Content-Length")
    return first[0], headers, body[: int(length)]


def tag_of(value: str) -> str:
    for param in value.split(";")[1:]:
        k, _, v = param.strip().partition("=")
        if k.lower() == "tag":
            return v.strip()
    return ""


def response(code: int, reason: str, headers: dict[str, list[str]]) -> bytes:
    to = headers["to"][0]
    if not tag_of(to):
        to += ";tag=dtmfguard-relay"
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {v}" for v in headers["via"]]
    lines += [f"From: {headers['from'][0]}", f"To: {to}", f"Call-ID: {headers['call-id'][0]}",
              f"CSeq: {headers['cseq'][0]}", "Server: dtmfguard-relay", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()
