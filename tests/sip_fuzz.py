# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile SIP for a real guard: RFC 4475's torture messages and PROTOS-c07-style mutated INVITEs.

* :func:`rfc4475_messages`: the 49 messages of RFC 4475 (IETF, "SIP Torture Test Messages"), bit-exact as
  published in the RFC's archive (appendix), in ``tests/data/rfc4475/``.  They are sent unchanged; their
  Via sent-by ports (5060, 5050) are where the guard answers over UDP, so the sender binds those ports on
  127.0.0.1 (run it in a network namespace of its own).
* :func:`mutated_invites`: a valid INVITE with an SDP offer, and one field at a time replaced by a hostile
  value (overflows of every length around pjsip's limits, format strings, NULs and control bytes, boundary
  integers, CRLF injection), in the spirit of the PROTOS c07-sip test suite (University of Oulu, 2002);
  plus whole-message attacks on lengths (Content-Length larger, smaller, negative, twice) and SDP
  attacks (DTLS-SRTP offers, crypto lines, too many m=/a= lines).
* :func:`send_all`: sends messages over UDP or TCP with some in flight at once, collects every answer,
  ends what it started (ACK for a final answer to an INVITE, BYE after a 2xx, CANCEL after ringing) and
  returns, per message, the first final status code (or ``"none"``).
"""
from __future__ import annotations

import itertools
import random
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RFC4475_DIR = Path(__file__).resolve().parent / "data" / "rfc4475"

#: RFC 3261 requires an answer to every request except ACK; these RFC 4475 messages are responses (no
#: answer is due) or need none
RFC4475_RESPONSES = {"bcast", "bigcode", "noreason", "scalarlg", "unreason"}


def rfc4475_messages() -> list[tuple[str, bytes]]:
    return [(p.stem, p.read_bytes()) for p in sorted(RFC4475_DIR.glob("*.dat"))]


# -- the valid INVITE and its fields -----------------------------------------------------------------------

FIELDS = {
    # request line
    "method": "INVITE", "ruri_user": "agent", "ruri_host": "{ghost}", "ruri_port": "{gport}",
    "version": "SIP/2.0",
    # headers
    "via_transport": "{TP}", "via_host": "{lhost}", "via_port": "{lport}", "via_branch": "z9hG4bK{uid}",
    "max_forwards": "70", "from_display": "\"Fuzz\"", "from_user": "fuzz", "from_tag": "t{uid}",
    "to_user": "agent", "call_id": "{uid}@fuzz", "cseq_num": "1", "cseq_method": "INVITE",
    "contact_user": "fuzz", "contact_host": "{lhost}", "contact_port": "{lport}", "expires": "120",
    "ctype": "application/sdp", "user_agent": "sipfuzz", "supported": "timer", "allow": "INVITE, ACK, BYE",
    # SDP
    "sdp_v": "0", "sdp_o_user": "-", "sdp_o_sess": "1", "sdp_o_ver": "1", "sdp_o_net": "IN", "sdp_o_type": "IP4",
    "sdp_o_addr": "{lhost}", "sdp_s": "-", "sdp_c_net": "IN", "sdp_c_type": "IP4", "sdp_c_addr": "{lhost}",
    "sdp_t": "0 0", "sdp_m_media": "audio", "sdp_m_port": "{rtp}", "sdp_m_proto": "RTP/AVP",
    "sdp_m_fmt": "0 101", "rtpmap_pt": "0", "rtpmap_enc": "PCMU/8000", "te_rtpmap": "101 telephone-event/8000",
    "fmtp": "101 0-15", "ptime": "20", "direction": "sendrecv", "rtcp": "{rtcp}",
}

TEMPLATE_HEAD = (
    "{method} sip:{ruri_user}@{ruri_host}:{ruri_port} {version}\r\n"
    "Via: SIP/2.0/{via_transport} {via_host}:{via_port};branch={via_branch};rport\r\n"
    "Max-Forwards: {max_forwards}\r\n"
    "From: {from_display} <sip:{from_user}@{lhost}>;tag={from_tag}\r\n"
    "To: <sip:{to_user}@{ghost}>\r\n"
    "Call-ID: {call_id}\r\n"
    "CSeq: {cseq_num} {cseq_method}\r\n"
    "Contact: <sip:{contact_user}@{contact_host}:{contact_port}>\r\n"
    "Expires: {expires}\r\n"
    "Supported: {supported}\r\n"
    "Allow: {allow}\r\n"
    "User-Agent: {user_agent}\r\n"
    "Content-Type: {ctype}\r\n"
)
TEMPLATE_SDP = (
    "v={sdp_v}\r\n"
    "o={sdp_o_user} {sdp_o_sess} {sdp_o_ver} {sdp_o_net} {sdp_o_type} {sdp_o_addr}\r\n"
    "s={sdp_s}\r\n"
    "c={sdp_c_net} {sdp_c_type} {sdp_c_addr}\r\n"
    "t={sdp_t}\r\n"
    "m={sdp_m_media} {sdp_m_port} {sdp_m_proto} {sdp_m_fmt}\r\n"
    "a=rtpmap:{rtpmap_pt} {rtpmap_enc}\r\n"
    "a=rtpmap:{te_rtpmap}\r\n"
    "a=fmtp:{fmtp}\r\n"
    "a=ptime:{ptime}\r\n"
    "a=rtcp:{rtcp}\r\n"
    "a={direction}\r\n"
)

#: hostile values (PROTOS c07 classes): overflows, format strings, NULs/control bytes, integers, syntax
OVERFLOW_LENGTHS = (64, 128, 253, 254, 255, 256, 257, 511, 512, 1024, 2048, 4096)
HOSTILE = (
    [("A" * n, f"overflow-{n}") for n in OVERFLOW_LENGTHS]
    + [("%s%s%s%s%s%s%s%s", "fmt-s"), ("%n%n%n%n%n%n", "fmt-n"), ("%x" * 64, "fmt-x"), ("%.9999999d", "fmt-width"),
       ("\x00", "nul"), ("a\x00b", "nul-inside"), ("\x00" * 64, "nuls"), ("\x01\x02\x7f\x1b[2J", "ctl"),
       ("\xff\xfe\xfd", "high-bytes"), ("é" * 100, "utf8"),
       ("0", "int-0"), ("-1", "int-neg1"), ("2147483647", "int-max31"), ("2147483648", "int-2^31"),
       ("4294967295", "int-max32"), ("4294967296", "int-2^32"), ("18446744073709551616", "int-2^64"),
       ("-2147483649", "int-min-1"), ("9" * 40, "int-huge"), ("1e9", "int-exp"), ("0x10", "int-hex"),
       ("", "empty"), (" ", "space"), ("\t", "tab"), ("\r\n", "crlf"), ("\r\nX-Injected: 1", "crlf-inject"),
       ("\r\n\r\n", "crlf-end"), ("<>", "angles"), ("\"", "quote"), (";", "semicolon"), (":", "colon"),
       ("@", "at"), (",", "comma"), ("sip:", "scheme"), ("[::1", "ipv6-open"), ("[" + "f" * 300 + "]", "ipv6-long"),
       ("255.255.255.256", "ip-bad"), ("1.2.3.4.5", "ip-5"), ("0.0.0.0", "ip-zero"), ("::", "ipv6-any"),
       ("../../../../etc/passwd", "path"), ("' OR 1=1 --", "sqli"), ("${jndi:ldap://x}", "jndi")]
)


def _uid() -> str:
    return f"{random.getrandbits(64):016x}"


@dataclass
class Message:
    name: str
    template: str  # format string; placeholders {lhost} {lport} {TP} {uid} {ghost} {gport} {rtp} {rtcp}
    is_invite: bool = True
    fixed: bytes = b""  # a message sent as is (RFC 4475)
    via_port: int = 0  # where a UDP answer comes back for a fixed message

    def render(self, **kw) -> bytes:
        if self.fixed:
            return self.fixed
        head, sdp = self.template.split("\0SDP\0", 1)
        vals = dict(kw)
        sdp_text = sdp.format(**vals)
        body = sdp_text.encode("utf-8", "surrogateescape")
        clen = vals.get("clen_override")
        head_text = head.format(**vals)
        clen_line = clen if clen is not None else f"Content-Length: {len(body)}\r\n"
        return (head_text + clen_line + "\r\n").encode("utf-8", "surrogateescape") + body


def _template(overrides: dict, extra_head: str = "", extra_sdp: str = "", drop_sdp: tuple = ()) -> str:
    vals = {k: v for k, v in FIELDS.items()}
    for k, v in overrides.items():
        vals[k] = v.replace("{", "{{").replace("}", "}}")
    head = TEMPLATE_HEAD + extra_head
    sdp = "".join(ln + "\r\n" for ln in TEMPLATE_SDP.split("\r\n") if ln and not any(ln.startswith(d) for d in drop_sdp))
    sdp += extra_sdp
    # substitute the field values, keep the run-time placeholders
    def fill(text):
        return re.sub(r"\{(\w+)\}", lambda m: vals.get(m.group(1), "{" + m.group(1) + "}"), text)
    return fill(head) + "\0SDP\0" + fill(sdp)


def _filled(text: str) -> str:
    return text


def mutated_invites() -> list[Message]:
    """Every field x every hostile value, then whole-message and SDP attacks (deterministic order)."""
    out: list[Message] = []
    for fname, (value, vname) in itertools.product(FIELDS, HOSTILE):
        out.append(Message(f"{fname}={vname}", _template({fname: value})))
    # lengths
    for n, name in [("Content-Length: {big}\r\n", "clen-larger"), ("Content-Length: 5\r\n", "clen-smaller"),
                    ("Content-Length: -1\r\n", "clen-negative"), ("Content-Length: 99999999999999999999\r\n", "clen-huge"),
                    ("Content-Length: 10\r\nContent-Length: 20\r\n", "clen-twice"), ("", "clen-missing"),
                    ("Content-Length: abc\r\n", "clen-alpha"), ("Content-Length:  \r\n", "clen-empty"),
                    ("l: 0\r\n", "clen-compact-zero")]:
        m = Message(name, _template({}))
        m.clen = n
        out.append(m)
    # SDP attacks
    dtls = ("a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\n")
    crypto_ok = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
    sdp_attacks = [
        ("dtls-savp", {"sdp_m_proto": "UDP/TLS/RTP/SAVP"}, dtls),
        ("dtls-savpf", {"sdp_m_proto": "UDP/TLS/RTP/SAVPF"}, dtls),
        ("dtls-savpf-crypto", {"sdp_m_proto": "UDP/TLS/RTP/SAVPF"}, dtls + crypto_ok),
        ("savp-no-crypto", {"sdp_m_proto": "RTP/SAVP"}, ""),
        ("savp-crypto", {"sdp_m_proto": "RTP/SAVP"}, crypto_ok),
        ("crypto-short-key", {"sdp_m_proto": "RTP/SAVP"}, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD\r\n"),
        ("crypto-long-key", {"sdp_m_proto": "RTP/SAVP"}, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "QUJD" * 200 + "\r\n"),
        ("crypto-bad-b64", {"sdp_m_proto": "RTP/SAVP"}, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!!\r\n"),
        ("crypto-no-key", {"sdp_m_proto": "RTP/SAVP"}, "a=crypto:1 AES_CM_128_HMAC_SHA1_80\r\n"),
        ("crypto-tag-huge", {"sdp_m_proto": "RTP/SAVP"}, crypto_ok.replace("crypto:1", "crypto:99999999999")),
        ("crypto-many", {"sdp_m_proto": "RTP/SAVP"}, "".join(crypto_ok.replace("crypto:1", f"crypto:{i}") for i in range(1, 40))),
        ("crypto-mki-huge", {"sdp_m_proto": "RTP/SAVP"}, crypto_ok.replace("1:4", "99999999999:999")),
        ("mlines-40", {}, "m=audio 5000 RTP/AVP 0\r\n" * 40),
        ("attrs-200", {}, "a=x-foo:bar\r\n" * 200),
        ("fmts-100", {"sdp_m_fmt": " ".join(str(i % 128) for i in range(100))}, ""),
        ("rtpmap-many", {}, "".join(f"a=rtpmap:{96 + i % 32} X{i}/8000\r\n" for i in range(100))),
        ("fmtp-params-100", {}, "a=fmtp:0 " + ";".join(f"p{i}=1" for i in range(100)) + "\r\n"),
        ("bandwidth-many", {}, "b=AS:64\r\n" * 50),
        ("c-fqdn", {"sdp_c_addr": "example.invalid"}, ""),
        ("c-254", {"sdp_c_addr": "A" * 254}, ""),
        ("c-ip6-in-ip4", {"sdp_c_addr": "::1"}, ""),
        ("rtcp-long-addr", {"rtcp": "9 IN IP4 " + "A" * 300}, ""),
        ("video-dtls", {}, "m=video 5002 UDP/TLS/RTP/SAVPF 96\r\n" + dtls),
        ("te-rate-0", {"te_rtpmap": "101 telephone-event/0"}, ""),
        ("pcmu-channels-99", {"rtpmap_enc": "PCMU/8000/99"}, ""),
    ]
    for name, over, extra in sdp_attacks:
        out.append(Message(f"sdp:{name}", _template(over, extra_sdp=extra)))
    # headers pjsip or pjsua interpret
    for name, extra in [("require-unknown", "Require: x-nobody\r\n"), ("require-100rel", "Require: 100rel\r\n"),
                        ("session-expires-0", "Session-Expires: 0\r\n"), ("min-se-huge", "Min-SE: 4294967296\r\n"),
                        ("session-expires-huge", "Session-Expires: 99999999999999999\r\n"),
                        ("replaces-junk", "Replaces: " + "A" * 300 + "\r\n"),
                        ("route-300", "Route: <sip:" + "a" * 300 + ";lr>\r\n"),
                        ("record-route-many", "Record-Route: <sip:rr.example;lr>\r\n" * 60),
                        ("via-many", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n" * 60),
                        ("to-tag-unknown-dialog", ""), ("x-agent-uri-junk", "X-Agent-URI: " + "%n" * 100 + "\r\n"),
                        ("accept-junk", "Accept: " + "x/" * 300 + "\r\n"),
                        ("authorization-junk", "Authorization: Digest " + "a=\"" * 100 + "\r\n"),
                        ("content-encoding-gzip", "Content-Encoding: gzip\r\n"),
                        ("header-1000", "".join(f"X-H{i}: v\r\n" for i in range(1000)))]:
        m = Message(f"hdr:{name}", _template({}, extra_head=extra))
        if name == "to-tag-unknown-dialog":
            m = Message(f"hdr:{name}", _template({}).replace("To: <sip:agent@{ghost}>", "To: <sip:agent@{ghost}>;tag=nope"))
        out.append(m)
    # other methods (RFC 3261 answers): unknown, REGISTER, SUBSCRIBE, version, scheme
    for name, over in [("method-unknown", {"method": "FOOBAR", "cseq_method": "FOOBAR"}),
                       ("method-register", {"method": "REGISTER", "cseq_method": "REGISTER"}),
                       ("method-publish", {"method": "PUBLISH", "cseq_method": "PUBLISH"}),
                       ("method-options", {"method": "OPTIONS", "cseq_method": "OPTIONS"}),
                       ("cseq-mismatch", {"cseq_method": "BYE"}), ("version-7", {"version": "SIP/7.0"}),
                       ("scheme-http", {"ruri_user": "x", "ruri_host": "a"})]:
        tpl = _template(over)
        if name == "scheme-http":
            tpl = tpl.replace("INVITE sip:", "INVITE http:", 1)
        out.append(Message(f"rfc3261:{name}", tpl, is_invite=over.get("method", "INVITE") == "INVITE"))
    return out


Message.clen = None  # type: ignore[attr-defined]


# -- sending -----------------------------------------------------------------------------------------------

_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})", re.M)


@dataclass
class Result:
    name: str
    transport: str
    final: str = "none"  # status code of the first final answer, or "none"
    provisional: list = field(default_factory=list)


def _parse_responses(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    for chunk in re.split(rb"(?=^SIP/2\.0 \d{3})", data, flags=re.M):
        m = _STATUS.match(chunk)
        if m:
            out.append((int(m.group(1)), chunk))
    return out


def _header(resp: bytes, name: bytes) -> bytes:
    m = re.search(rb"^(?:" + name + rb")\s*:\s*(.*?)\r?$", resp, re.M | re.I)
    return m.group(1) if m else b""


def _follow_up(req: bytes, resp: bytes, method: str, same_branch: bool) -> bytes:
    """ACK / BYE / CANCEL for a request we sent: copy its Via, From, Call-ID; To from the response."""
    text = req.split(b"\r\n\r\n", 1)[0].decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    ruri = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "sip:x@127.0.0.1"
    compact = {"via": "v", "from": "f", "to": "t", "call-id": "i"}

    def hdr(name):
        for ln in lines[1:]:
            key = ln.split(":", 1)[0].strip().lower()
            if key in (name.lower(), compact.get(name.lower(), "")) and ":" in ln:
                return f"{name}: " + ln.split(":", 1)[1].strip()
        return f"{name}: x"
    via = hdr("Via")
    if not same_branch:
        via = re.sub(r"branch=[^;\s]+", f"branch=z9hG4bK{_uid()}", via)
    to = ("To: " + _header(resp, rb"To|t").decode("utf-8", "surrogateescape")) if resp else hdr("To")
    cseq = hdr("CSeq").split()
    num = cseq[1] if len(cseq) > 1 and cseq[1].isdigit() else "1"
    if method == "BYE":
        num = str(int(num) + 1) if num.isdigit() and int(num) < 2**31 - 2 else "2"
    msg = (f"{method} {ruri} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n{hdr('From')}\r\n{to}\r\n{hdr('Call-ID')}\r\n"
           f"CSeq: {num} {method}\r\nContent-Length: 0\r\n\r\n")
    return msg.encode("utf-8", "surrogateescape")


class _Conn:
    """One sender: a UDP socket (bound to ``port``) or a TCP connection per message."""

    def __init__(self, transport: str, target: tuple, port: int = 0):
        self.transport, self.target = transport, target
        self.sock = None
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", port))
            self.port = self.sock.getsockname()[1]
        self.buf = b""

    def open(self, fresh: bool = False):
        """TCP: keep one connection per sender, as a proxy would (pjsip keeps an accepted connection for
        minutes, so one connection per message would exhaust its socket table: see the module notes);
        a fresh one after a message that can desync the stream, or when the guard closed it."""
        if self.transport == "tcp" and (fresh or self.sock is None):
            self.close()
            self.sock = socket.create_connection(self.target, timeout=2)
            self.port = self.sock.getsockname()[1]
            self.buf = b""

    def send(self, data: bytes):
        if self.transport == "udp":
            self.sock.sendto(data[:65000], self.target)
        else:
            self.sock.sendall(data)

    def recv(self, timeout: float) -> list[tuple[int, bytes]]:
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return []
        try:
            data = self.sock.recv(65535)
        except OSError:
            return []
        if not data and self.transport == "tcp":
            raise ConnectionError
        return _parse_responses(data)

    def close(self):
        if self.transport == "tcp" and self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


def exchange(conn: _Conn, msg: Message, params: dict, answer_wait: float, ring_wait: float) -> Result:
    """Send one message; wait for its final answer; clean up what it started."""
    res = Result(msg.name, conn.transport)
    try:
        conn.open(fresh=bool(msg.fixed) or "clen" in msg.name or "crlf" in msg.name)
    except OSError:
        res.final = "connect-failed"
        return res
    vals = dict(params, lport=conn.port, TP=conn.transport.upper(), uid=_uid())
    if getattr(msg, "clen", None) is not None:
        vals["clen_override"] = msg.clen.replace("{big}", "99999")
    data = msg.render(**vals)
    try:
        conn.send(data)
        t0 = time.monotonic()
        deadline = t0 + answer_wait
        final_resp = b""
        while time.monotonic() < deadline:
            for code, resp in conn.recv(deadline - time.monotonic()):
                if code < 200:
                    if code not in res.provisional:
                        res.provisional.append(code)
                    deadline = max(deadline, time.monotonic() + ring_wait) if code > 100 else \
                        max(deadline, t0 + ring_wait)
                elif res.final == "none":
                    res.final = str(code)
                    final_resp = resp
            if res.final != "none":
                break
        if msg.is_invite:
            if res.final != "none":
                conn.send(_follow_up(data, final_resp, "ACK", same_branch=not res.final.startswith("2")))
                if res.final.startswith("2"):
                    conn.send(_follow_up(data, final_resp, "BYE", same_branch=False))
                    _drain(conn, 0.5)
            elif res.provisional:
                conn.send(_follow_up(data, b"", "CANCEL", same_branch=True))
                for code, resp in _drain(conn, 2.0):
                    if code >= 300:  # the 487 for the INVITE
                        conn.send(_follow_up(data, resp, "ACK", same_branch=True))
                        break
    except (OSError, ConnectionError):
        if res.final == "none":
            res.final = "closed"
        conn.close()
    if msg.fixed or "clen" in msg.name or "crlf" in msg.name or res.final == "none":
        conn.close()
    return res


def _drain(conn, seconds):
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got = conn.recv(deadline - time.monotonic())
        except ConnectionError:
            break
        out += got
        if any(c >= 200 for c, _ in got) and seconds < 1:
            break
    return out


def send_all(messages: list[Message], transport: str, target: tuple, params: dict, concurrency: int = 6,
             answer_wait: float = 1.0, ring_wait: float = 4.0, on_result=None) -> list[Result]:
    """Send every message (``concurrency`` at a time); ``on_result(result)`` after each."""
    queue = list(enumerate(messages))
    lock = threading.Lock()
    results: list = [None] * len(messages)

    def worker():
        conn = _Conn(transport, target) if transport == "udp" else _Conn("tcp", target)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    i, msg = queue.pop(0)
                if msg.fixed and transport == "udp":
                    c = _Conn("udp", target, msg.via_port or 5060)
                    r = exchange(c, msg, params, answer_wait, ring_wait)
                    c.sock.close()
                else:
                    r = exchange(conn, msg, params, answer_wait, ring_wait)
                results[i] = r
                if on_result is not None:
                    on_result(r)
        finally:
            if conn.sock is not None:
                conn.sock.close()

    fixed = [m for m in messages if m.fixed]
    if fixed and transport == "udp":
        concurrency = 1  # fixed Via ports: one sender at a time
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def silence_allowed(name: str, transport: str) -> str | None:
    """Why no answer is right for this message (None: an answer is due).

    * a Via that cannot be parsed (hostile host, port or transport) leaves nowhere to send an answer
      (RFC 3261 §18.2.2); CR/LF inside the start line or the Via makes what follows another message;
    * over TCP a Content-Length larger than what was sent makes the stream wait for the rest (§18.3), and
      RFC 4475's clerr / mpart01 declare more body than a stream carries;
    * a UDP datagram larger than pjsip's 4000-byte receive buffer arrives cut (no Via-intact request);
    * over TCP a NUL in the headers keeps pjsip from finding the end of the message (it waits for more).
    """
    field_, _, value = name.partition("=")
    if field_ in ("via_host", "via_port", "via_transport", "via_branch") or (field_ in ("method", "version", "ruri_user", "ruri_host",
                                                                          "ruri_port") and "crlf" in value):
        return "no usable Via / no request line"
    if transport == "tcp" and name in ("clen-larger", "clen-huge", "clerr", "mpart01"):
        return "the stream waits for the declared body"
    if value == "overflow-4096" or name in ("hdr:header-1000",) or (transport == "udp" and field_ == "via_branch"
                                                                     and value.startswith("overflow-")):
        return "larger than pjsip's receive buffer"
    if transport == "tcp" and name == "sdp:crypto-many":
        return "larger than pjsip's receive buffer"
    if value == "nul-inside" and field_.startswith("ruri"):
        return "NUL ends pjsip's request line: not a request"
    if transport == "tcp" and value.startswith("nul"):
        return "pjsip frames a stream with C strings: a NUL hides the end of the headers"
    return None


def rfc4475_as_messages() -> list[Message]:
    out = []
    for name, raw in rfc4475_messages():
        m = re.search(rb"^(?:Via|v)\s*:\s*SIP\s*/\s*2\.0\s*/\s*UDP\s+[^\s;:]+(?::(\d+))?", raw, re.M | re.I)
        port = int(m.group(1)) if m and m.group(1) else 5060
        out.append(Message(name, "", is_invite=raw.startswith(b"INVITE"), fixed=raw, via_port=port))
    return out
