# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks on a raw SIP request (and its SDP) before the SIP stack acts on it.  Pure Python, no telephony.

Why: pjsip is compiled with its assertions on, and some of them are reachable from the network (an SDP
``c=`` address of 254 characters or more aborts the process in ``pj_sockaddr_in_set_str_addr`` when the call
is answered; a DTLS-SRTP offer with optional SRTP crashes the media layer).  Every request the guard
receives passes :func:`check_request` first (``dtmfguard.sip.pj.edge`` calls it from a pjsip module placed
ahead of the transaction layer); a request it refuses is answered statelessly with the status returned
and never reaches pjsua.

Answers follow RFC 3261:

* ``505`` a SIP version other than 2.0 (§8.2.2 and §21.5.7 of RFC 3261, RFC 4475 §3.1.2.19);
* ``416`` a Request-URI scheme other than sip, sips or tel (§8.2.2.1);
* ``405`` REGISTER (the guard is no registrar) and ``501`` any method it does not implement (§8.2.1),
  both with an ``Allow`` header;
* ``420`` a ``Require`` option the guard does not support, with ``Unsupported`` (§8.2.2.3);
* ``400`` a malformed request: request line, CSeq (number or method, or a method that differs from the
  request line's), Content-Length (two of them, not a number, more than the datagram holds), Max-Forwards,
  a missing mandatory header, Contact of an INVITE, or an SDP body that does not parse (§8.2, §18.3);
* ``488`` an SDP offer the guard will not take: a connection address that is not an IP literal (pjsip
  would resolve a name synchronously on the SIP thread, or assert on one of 254+ characters), a transport
  other than RTP/AVP, RTP/SAVP, RTP/AVPF, RTP/SAVPF on an active stream (DTLS-SRTP is not supported:
  use SDES, RFC 4568), malformed ``a=rtpmap``/``a=fmtp``/``a=crypto``/``a=rtcp``/``a=ptime``, too many
  media lines, formats or attributes for pjmedia's fixed tables.

``ACK`` is never answered (RFC 3261 §17.2.1): a malformed one is dropped.
"""
from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field

__all__ = ["Refusal", "check_request", "check_sdp", "answer_unparsed", "is_initial_invite", "ALLOWED_METHODS", "SUPPORTED_OPTIONS", "split_message"]

#: methods the guard's SIP stack handles (pjsua answers OPTIONS; INFO carries DTMF; UPDATE, PRACK for
#: sessions and reliable provisional responses; NOTIFY/REFER are answered in dialogs by pjsua)
ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "PRACK", "NOTIFY", "REFER",
                   "MESSAGE", "SUBSCRIBE")
#: option tags pjsua supports in Require (RFC 3262, RFC 4028, RFC 3891, RFC 4488)
SUPPORTED_OPTIONS = frozenset({"100rel", "timer", "replaces", "norefersub", "path"})
_SDP_METHODS = ("INVITE", "ACK", "UPDATE", "PRACK")
_URI_SCHEMES = ("sip", "sips", "tel")
_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")  # RFC 3261 §25.1 token
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
            "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding", "o": "event",
            "r": "refer-to", "b": "referred-by", "u": "allow-events", "x": "session-expires"}
_INT32 = (1 << 31) - 1

# pjmedia's fixed tables (pjmedia/config.h, sdp.h of pjproject 2.15): more than these is refused up front
MAX_SDP_MEDIA = 16
MAX_SDP_FMT = 32
MAX_SDP_ATTR = 68
MAX_SDP_BANDW = 4
MAX_FMTP_PARAMS = 16
MAX_CRYPTO = 16
MAX_SDP_BYTES = 8192
MAX_LINE = 1024
MAX_HOST = 253  # a DNS name (RFC 1035); pj_sockaddr asserts on 254+
_RTP_PROFILES = ("RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF")
_CRYPTO_KEY_BYTES = {"AES_CM_128_HMAC_SHA1_80": 30, "AES_CM_128_HMAC_SHA1_32": 30,
                     "AES_256_CM_HMAC_SHA1_80": 46, "AES_256_CM_HMAC_SHA1_32": 46,
                     "AES_192_CM_HMAC_SHA1_80": 38, "AES_192_CM_HMAC_SHA1_32": 38,
                     "AEAD_AES_128_GCM": 28, "AEAD_AES_256_GCM": 44,
                     "F8_128_HMAC_SHA1_80": 30, "NULL_HMAC_SHA1_80": 30, "NULL_HMAC_SHA1_32": 30}


@dataclass(frozen=True)
class Refusal:
    """How to answer a request refused before the SIP stack sees it.  ``code`` 0: drop, no answer (ACK)."""

    code: int
    reason: str
    headers: tuple = field(default=())  # (name, value) pairs to add to the answer

    def __str__(self) -> str:
        return f"{self.code} {self.reason}"


def split_message(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """(start line, [(lower-case full header name, value)], body) or None when there is no header block.

    Folded lines (RFC 3261 §7.3.1) are joined; compact names are expanded.  Decoded as UTF-8 with
    replacement: the checks only need ASCII structure.
    """
    sep = raw.find(b"\r\n\r\n")
    seplen = 4
    if sep < 0:
        sep2 = raw.find(b"\n\n")
        if sep2 < 0:
            head, body = raw, b""
        else:
            sep, seplen = sep2, 2
    if sep >= 0:
        head, body = raw[:sep], raw[sep + seplen:]
    text = head.decode("utf-8", "replace")
    lines = re.split(r"\r?\n", text)
    while lines and not lines[0].strip():
        lines.pop(0)  # RFC 3261 §7.5: leading CRLFs are ignored
    if not lines:
        return None
    start = lines[0]
    headers: list[list[str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1][1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            headers.append(["", line])  # not a header: flagged by the caller
            continue
        name = name.strip().lower()
        headers.append([_COMPACT.get(name, name), value.strip()])
    return start, [(n, v) for n, v in headers], body


def _bad(reason: str) -> Refusal:
    return Refusal(400, reason)


def _allow() -> tuple:
    return (("Allow", ", ".join(m for m in ALLOWED_METHODS)),)


def check_request(raw: bytes, datagram: bool = True) -> Refusal | None:
    """None when ``raw`` (one request as received) may go to the SIP stack; else how to answer it.

    ``datagram``: the request arrived over UDP, so the body must hold Content-Length bytes (RFC 3261
    §18.3); over a stream the transport already framed it by Content-Length.
    """
    parts = split_message(raw)
    if parts is None:
        return _bad("Empty request")
    start, headers, body = parts
    fields = start.split()
    method = fields[0] if fields else ""
    if method == "ACK":
        bad = _check_common(start, fields, headers, body, datagram)
        return Refusal(0, "malformed ACK dropped") if bad is not None and bad.code != 0 else None
    return _check_common(start, fields, headers, body, datagram)


def _header(headers, name):
    return [v for n, v in headers if n == name]


def _check_common(start, fields, headers, body, datagram) -> Refusal | None:
    if len(fields) != 3 or start.split(" ") != fields:  # Method SP Request-URI SP SIP-Version (§25.1)
        return _bad("Malformed request line")
    method, uri, version = fields
    if not version.upper().startswith("SIP/"):
        return _bad("Malformed request line")
    if version.upper() != "SIP/2.0":
        return Refusal(505, "Version Not Supported")
    if not _TOKEN.match(method):
        return _bad("Malformed method")
    if len(start) > MAX_LINE * 2:
        return _bad("Request line too long")
    if any(n == "" for n, _ in headers):
        return _bad("Malformed header line")
    for name in ("via", "from", "to", "call-id", "cseq"):
        if not _header(headers, name):
            return _bad(f"Missing {name} header")
    for name in ("from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type"):
        if len(_header(headers, name)) > 1:
            return _bad(f"More than one {name} header")
    cseq = _header(headers, "cseq")[0].split()
    if len(cseq) != 2 or not cseq[0].isdigit() or int(cseq[0]) > _INT32 or not _TOKEN.match(cseq[1]):
        return _bad("Malformed CSeq")
    if cseq[1] != method:
        return _bad("CSeq method does not match the request line")
    callid = _header(headers, "call-id")[0]
    if not callid or len(callid) > 256 or any(c.isspace() for c in callid):
        return _bad("Malformed Call-ID")
    mf = _header(headers, "max-forwards")
    if mf and (not mf[0].isdigit() or int(mf[0]) > 255):
        return _bad("Malformed Max-Forwards")
    clen = _header(headers, "content-length")
    if clen:
        if not clen[0].isdigit():
            return _bad("Malformed Content-Length")
        n = int(clen[0])
        if datagram and n > len(body):
            return _bad("Content-Length larger than the message")
        body = body[:n]
    for n, v in headers:
        if len(v) > 4 * MAX_LINE and n not in ("via", "route", "record-route"):
            return _bad("Header too long")
    if uri.startswith("<"):
        return _bad("Request-URI in <>")
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme not in _URI_SCHEMES:
        return Refusal(416, "Unsupported URI Scheme")
    if method == "REGISTER":
        return Refusal(405, "Method Not Allowed", _allow())
    if method not in ALLOWED_METHODS:
        return Refusal(501, "Not Implemented", _allow())
    if "\x00" in start or any("\x00" in v for _, v in headers):
        return _bad("NUL in the header")
    for name in ("from", "to", "contact"):
        for v in _header(headers, name):
            if v.replace('\\\\', "").replace('\\"', "").count('"') % 2:
                return _bad(f"Unterminated quoted string in {name}")
    if method not in ("ACK", "CANCEL"):
        required = [t.strip() for v in _header(headers, "require") for t in v.split(",") if t.strip()]
        unknown = [t for t in required if t.lower() not in SUPPORTED_OPTIONS]
        if unknown:
            tags = ", ".join(t for t in unknown if _TOKEN.match(t))[:200] or "unknown"
            return Refusal(420, "Bad Extension", (("Unsupported", tags),))
    if method == "INVITE":
        contact = _header(headers, "contact")
        if len(contact) != 1 or "," in contact[0].split(">")[0] and "<" not in contact[0]:
            return _bad("INVITE needs exactly one Contact")
        target = contact[0]
        inner = target[target.find("<") + 1:target.find(">")] if "<" in target and ">" in target else target
        if inner.split(":", 1)[0].strip().lower() not in ("sip", "sips") or len(inner) > MAX_HOST + 64:
            return _bad("Malformed Contact")
    ctype = _header(headers, "content-type")
    if method in _SDP_METHODS and body.strip():
        kind = ctype[0].split(";")[0].strip().lower() if ctype else ""
        if not kind:
            return _bad("Body without Content-Type")
        if kind == "application/sdp":
            return check_sdp(body)
        if kind.startswith("multipart/"):  # e.g. SIP-I/SIP-T: SDP plus ISUP; pjsua takes the SDP part
            sdp = _multipart_sdp(ctype[0], body)
            if sdp is not None:
                return check_sdp(sdp)
        if method != "ACK":
            return Refusal(415, "Unsupported Media Type", (("Accept", "application/sdp"),))
    return None


def _multipart_sdp(ctype: str, body: bytes) -> bytes | None:
    """The application/sdp part of a multipart body (RFC 2046 §5.1), or None."""
    m = re.search(r';\s*boundary\s*=\s*"?([^";]+)"?', ctype, re.I)
    if not m:
        return None
    for part in body.split(b"--" + m.group(1).strip().encode("latin-1"))[1:]:
        head, sep, content = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = part.lstrip(b"\n").partition(b"\n\n")
        if re.search(rb"^content-type\s*:\s*application/sdp", head, re.I | re.M):
            return content.rstrip(b"\r\n")
    return None


def is_initial_invite(raw: bytes) -> bool:
    """An INVITE outside any dialog (no To tag): a new call."""
    if not raw.startswith(b"INVITE "):
        return False
    parts = split_message(raw)
    if parts is None:
        return False
    to = _header(parts[1], "to")
    return bool(to) and ";tag=" not in to[0].replace(" ", "").lower()


_SDP_LINE = re.compile(r"^[a-z]=")


def _ip_literal(addr: str, addrtype: str) -> bool:
    addr = addr.split("/")[0]  # multicast TTL / count
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return (ip.version == 4) == (addrtype == "IP4")


def check_sdp(body: bytes) -> Refusal | None:
    """None when an SDP offer or answer is safe to hand to pjmedia; else the refusal (400 or 488)."""
    if len(body) > MAX_SDP_BYTES:
        return Refusal(488, "SDP too large")
    if b"\x00" in body:
        return _bad("NUL in the SDP")
    text = body.decode("utf-8", "replace")
    lines = [ln for ln in re.split(r"\r?\n", text) if ln.strip()]
    if not lines or lines[0].strip() != "v=0":
        return _bad("SDP must start with v=0")
    media: list[dict] = []
    session_c = False
    session_attrs = 0
    bandw = 0
    for ln in lines:
        if not _SDP_LINE.match(ln):
            return _bad("Malformed SDP line")
        if len(ln) > MAX_LINE:
            return Refusal(488, "SDP line too long")
        kind, value = ln[0], ln[2:].strip()
        if kind == "o":
            o = value.split()
            if len(o) != 6 or o[3] != "IN" or o[4] not in ("IP4", "IP6") or len(o[5]) > MAX_HOST:
                return _bad("Malformed o= line")
            if not (o[1].isdigit() and o[2].isdigit()):
                return _bad("Malformed o= line")
        elif kind == "c":
            c = value.split()
            if len(c) != 3 or c[0] != "IN" or c[1] not in ("IP4", "IP6"):
                return _bad("Malformed c= line")
            if not _ip_literal(c[2], c[1]):
                return Refusal(488, "Connection address must be an IP address")
            if media:
                media[-1]["c"] = True
            else:
                session_c = True
        elif kind == "t":
            t = value.split()
            if len(t) != 2 or not all(x.isdigit() and len(x) <= 20 for x in t):
                return _bad("Malformed t= line")
        elif kind == "b":
            bandw += 1
            btype, colon, bval = value.partition(":")
            if not colon or not bval.isdigit() or int(bval) > _INT32 or bandw > MAX_SDP_BANDW * (len(media) + 1):
                return _bad("Malformed b= line")
        elif kind == "m":
            m = value.split()
            if len(m) < 4:
                return _bad("Malformed m= line")
            port, _, count = m[1].partition("/")
            if not port.isdigit() or int(port) > 65535 or (count and (not count.isdigit() or int(count) > 2)):
                return _bad("Malformed m= port")
            if len(m) - 3 > MAX_SDP_FMT:
                return Refusal(488, "Too many formats")
            media.append({"type": m[0], "port": int(port), "proto": m[2], "fmts": m[3:], "attrs": 0,
                          "c": False, "crypto": 0})
            if len(media) > MAX_SDP_MEDIA:
                return Refusal(488, "Too many media streams")
            if int(port) and m[0] == "audio" and m[2] not in _RTP_PROFILES:
                return Refusal(488, "Media transport not supported (use RTP/AVP or SDES SRTP)")
            if m[2] in _RTP_PROFILES and not all(f.isdigit() and int(f) <= 127 for f in m[3:]):
                return _bad("Malformed RTP payload type")
        elif kind == "a":
            active = bool(media) and media[-1]["type"] == "audio" and media[-1]["port"] != 0
            bad = _check_attribute(value, media[-1] if media else None, active)
            if bad is not None:
                return bad
            if media:
                media[-1]["attrs"] += 1
                if media[-1]["attrs"] > MAX_SDP_ATTR:
                    return Refusal(488, "Too many attributes")
            else:
                session_attrs += 1
                if session_attrs > MAX_SDP_ATTR:
                    return Refusal(488, "Too many attributes")
    if not media:
        return _bad("SDP without m= line")
    if not session_c and not all(m["c"] for m in media if m["port"]):
        return _bad("SDP stream without connection address")
    return None


def _check_attribute(value: str, m: dict | None, active: bool) -> Refusal | None:
    """One a= line; ``active``: it belongs to an audio stream pjmedia will use (checked strictly)."""
    name, colon, rest = value.partition(":")
    name = name.strip().lower()
    if not colon:
        return None
    rest = rest.strip()
    if name == "rtpmap":
        pt, _, enc = rest.partition(" ")
        parts = enc.strip().split("/")
        if not active:
            if not pt.isdigit() or int(pt) > 127 or len(enc) > 64:
                return Refusal(488, "Malformed a=rtpmap")
            return None
        if (not pt.isdigit() or int(pt) > 127 or len(parts) not in (2, 3) or not parts[0]
                or len(parts[0]) > 32 or not _TOKEN.match(parts[0]) or not parts[1].isdigit()
                or not 1000 <= int(parts[1]) <= 192000
                or (len(parts) == 3 and (not parts[2].isdigit() or not 1 <= int(parts[2]) <= 8))):
            return Refusal(488, "Malformed a=rtpmap")
    elif name == "fmtp":
        pt, _, params = rest.partition(" ")
        if not pt.isdigit() or int(pt) > 127:
            return Refusal(488, "Malformed a=fmtp")
        if active and (len(params) > 512 or params.count(";") >= MAX_FMTP_PARAMS):
            return Refusal(488, "Malformed a=fmtp")
    elif name in ("ptime", "maxptime"):
        # pjmedia keeps frames per packet in 8 bits: a ptime is bounded; maxptime only caps what we send
        if not rest.isdigit() or not 10 <= int(rest) <= (300 if name == "ptime" else 2000):
            return Refusal(488, f"Malformed a={name}")
    elif name == "rtcp":
        r = rest.split()
        if (not r or not r[0].isdigit() or int(r[0]) > 65535
                or (len(r) > 1 and (len(r) != 4 or r[1] != "IN" or r[2] not in ("IP4", "IP6")
                                    or not _ip_literal(r[3], r[2])))):
            return Refusal(488, "Malformed a=rtcp")
    elif name == "crypto":
        if m is not None:
            m["crypto"] += 1
            if m["crypto"] > MAX_CRYPTO:
                return Refusal(488, "Too many a=crypto lines")
        return _check_crypto(rest)
    elif name == "candidate" or name.startswith("ice-"):
        if len(rest) > 512:
            return Refusal(488, f"Malformed a={name}")
    return None


def _check_crypto(rest: str) -> Refusal | None:
    """RFC 4568 §9.1: tag SP crypto-suite SP key-params *(SP session-param)."""
    c = rest.split()
    if len(c) < 3 or not c[0].isdigit() or len(c[0]) > 9:
        return Refusal(488, "Malformed a=crypto")
    suite = c[1]
    if suite not in _CRYPTO_KEY_BYTES:
        return None  # an unknown suite is simply not chosen (RFC 4568 §7.1.1)
    for kp in c[2].split(";"):
        method, colon, info = kp.partition(":")
        if method != "inline" or not colon:
            return Refusal(488, "Malformed a=crypto key parameters")
        key = info.split("|")
        try:
            raw = base64.b64decode(key[0], validate=True)
        except ValueError:
            return Refusal(488, "Malformed a=crypto key")
        if len(raw) != _CRYPTO_KEY_BYTES[suite]:
            return Refusal(488, "a=crypto key of the wrong length")
        for extra in key[1:]:
            if len(extra) > 32 or not re.match(r"^(2\^\d{1,2}|\d{1,20}|\d{1,10}:\d{1,3})$", extra):
                return Refusal(488, "Malformed a=crypto lifetime or MKI")
    return None


_ECHO = {"via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"}


def answer_unparsed(raw: bytes, received_ip: str = "", refusal: Refusal | None = None
                    ) -> tuple[bytes, int, int | None] | None:
    """A stateless answer to a request the SIP stack could not parse: (response bytes, status, port).

    ``port`` is where RFC 3261 §18.2.2 sends a UDP answer (the top Via's sent-by port, 5060 by default;
    None when the Via asks for ``rport``: the source port).  None when no answer is possible or due: a
    response, an ACK, no Via at all (RFC 3261 §8.1.1.7: the answer has nowhere to go).
    The Via, From, To, Call-ID and CSeq lines are echoed as received (§8.2.6.2), the top Via gets
    ``received``; To gets a tag if it has none.
    """
    parts = split_message(raw)
    if parts is None:
        return None
    start = parts[0]
    if start.startswith("SIP/") or start.split(" ", 1)[0] == "ACK":
        return None
    refusal = refusal or check_request(raw) or _bad("Bad Request")
    if refusal.code == 0:
        return None
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = [ln.rstrip(b"\r") for ln in head.split(b"\n")][1:]
    echoed: list[bytes] = []
    keep = False
    top_via = None
    for ln in lines:
        if ln[:1] in (b" ", b"\t"):
            if keep:
                echoed[-1] += b" " + ln.strip()
            continue
        name = ln.split(b":", 1)[0].strip().lower().decode("latin-1")
        keep = name in _ECHO and b":" in ln
        if keep:
            echoed.append(ln)
            if name in ("via", "v") and top_via is None:
                top_via = len(echoed) - 1
    if top_via is None:
        return None
    via = echoed[top_via]
    value = via.split(b":", 1)[1]
    m = re.match(rb"\s*SIP\s*/\s*[\d.]+\s*/\s*[A-Za-z]+\s+(\[[^\]]+\]|[^\s:;,]+)(?:\s*:\s*(\d+))?", value)
    if not m:
        return None
    port = int(m.group(2)) if m.group(2) and int(m.group(2)) <= 65535 else 5060
    if re.search(rb";\s*rport(?![=\w])", value):
        port = None
    if received_ip:
        echoed[top_via] = via.split(b",", 1)[0] + b";received=" + received_ip.encode("ascii") + (
            b"," + via.split(b",", 1)[1] if b"," in via else b"")
    for i, ln in enumerate(echoed):
        name = ln.split(b":", 1)[0].strip().lower()
        if name in (b"to", b"t") and b";tag=" not in ln.replace(b" ", b"").lower():
            echoed[i] = ln + b";tag=edge400"
    extra = b"".join(f"{n}: {v}\r\n".encode("ascii", "replace") for n, v in refusal.headers)
    resp = (f"SIP/2.0 {refusal.code} {refusal.reason}\r\n".encode("ascii") + b"\r\n".join(echoed) + b"\r\n"
            + extra + b"Content-Length: 0\r\n\r\n")
    return resp, refusal.code, port
