# SPDX-License-Identifier: GPL-2.0-or-later
"""Caller identity on the agent leg: who the agent's phone and the CTI see, and which headers follow the call.

Why: the guard is a B2BUA (RFC 7092 §3.1), so the agent leg is a new dialog from the guard.  Without care
the agent's phone shows ``guard`` instead of the caller, and the PBX loses what it routes on (Diversion,
History-Info, User-to-User, its own X- correlation headers).  Pure text work, no pjsua2: the SIP layer passes
the incoming INVITE's text and uses the result as the agent call's ``localUri`` (pjsua_msg_data.local_uri,
pjsua_call.c 2.15.1: the From of the new dialog) and extra headers.

Modes (``[identity] mode``):

* ``pass``: From keeps the caller's display name and user part (host: the guard, whose dialog it is);
  P-Asserted-Identity (RFC 3325) and Privacy (RFC 3323) are copied as they came;
* ``rewrite``: From and P-Asserted-Identity carry the configured user / display name (a service number);
* ``anonymise``: From is ``"Anonymous" <sip:anonymous@anonymous.invalid>`` (RFC 3323 §4.1.1.3), no
  P-Asserted-Identity, ``Privacy: id``.

Everything taken from the INVITE is checked before pjsip sees it (pjsip asserts on some malformed input,
and a From that pjsip cannot parse would fail the agent call): a display name is reduced to printable
characters without quotes or backslashes, a user part must be a plain SIP user; anything else falls back to
the guard's own identity, and the call goes on.  Copied header values are single lines (continuation lines
are joined, RFC 3261 §7.3.1) of at most :data:`MAX_HEADER_CHARS`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["CallerIdentity", "parse_identity", "agent_leg_identity", "refer_target_with_headers", "MAX_HEADER_CHARS",
           "GUARD_OWNED_HEADERS"]

MAX_HEADER_CHARS = 1024
_COMPACT = {"f": "from"}
_USER_RE = re.compile(r"^[A-Za-z0-9_.!~*'()&=+$,;?/%#-]{1,64}$")
_URI_RE = re.compile(r"^(sips?):(?:([^@<>\s]+)@)?([^;?>\s]+)")


@dataclass
class CallerIdentity:
    display: str = ""
    user: str = ""
    headers: list = field(default_factory=list)  # (name, value) in the INVITE's order, names as written

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


def _unfold(msg: str) -> list[str]:
    head = (msg or "").replace("\r\n", "\n").split("\n\n", 1)[0]
    lines: list[str] = []
    for line in head.split("\n")[1:]:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def _clean_display(text: str) -> str:
    text = re.sub(r"\\(.)", r"\1", text)
    return "".join(c for c in text if c.isprintable() and c not in '"\\<>').strip()[:64]


def _parse_name_addr(value: str) -> tuple[str, str]:
    """(display name, user part) of a From / P-Asserted-Identity value; "" where absent or unusable."""
    value = value.strip()
    display = ""
    m = re.match(r'^"((?:[^"\\]|\\.)*)"\s*<([^>]*)>', value)
    if m:
        display, uri = m.group(1), m.group(2)
    else:
        m = re.match(r"^([^<\"]*)<([^>]*)>", value)
        if m:
            display, uri = m.group(1).strip(), m.group(2)
        else:
            uri = value.split(";", 1)[0]  # addr-spec without <>: its parameters are the header's (RFC 3261 §20.10)
    um = _URI_RE.match(uri.strip())
    user = um.group(2) if um and um.group(2) else ""
    if user and not _USER_RE.match(user):
        user = ""
    return _clean_display(display), user


def parse_identity(invite: str) -> CallerIdentity:
    """The caller's identity and every header line of an INVITE's text (never raises)."""
    ident = CallerIdentity()
    try:
        for line in _unfold(invite):
            name, sep, value = line.partition(":")
            if not sep:
                continue
            name = name.strip()
            value = value.strip()
            if _COMPACT.get(name.lower(), name.lower()) == "from":
                ident.display, ident.user = _parse_name_addr(value)
            elif len(value) <= MAX_HEADER_CHARS and value.isprintable():
                ident.headers.append((name, value))
    except Exception:  # noqa: BLE001 - an unparsable INVITE gives the guard's identity, not a failed call
        return CallerIdentity()
    return ident


def _name_addr(display: str, user: str, host: str) -> str:
    uri = f"sip:{user}@{host}"
    return f'"{display}" <{uri}>' if display else f"<{uri}>"


def agent_leg_identity(invite: str, *, mode: str = "pass", guard_host: str = "127.0.0.1", guard_user: str = "guard",
                       user: str = "", display: str = "", copy: tuple = (), copy_x: tuple = ()) -> tuple[str, list]:
    """The agent leg's From (for ``localUri``; "" = the account's own) and its extra headers [(name, value)].

    ``guard_host`` is the guard's ``host:port``; ``copy`` / ``copy_x`` name the headers to copy as they are.
    """
    ident = parse_identity(invite)
    headers: list = []
    if mode == "anonymise":
        local = '"Anonymous" <sip:anonymous@anonymous.invalid>'
        headers.append(("Privacy", "id"))
    elif mode == "rewrite":
        local = _name_addr(_clean_display(display), user, guard_host)
        headers.append(("P-Asserted-Identity", local))
    else:
        local = _name_addr(ident.display, ident.user, guard_host) if ident.user else ""
        if not local and ident.display:
            local = _name_addr(ident.display, guard_user, guard_host)
        for name in ("P-Asserted-Identity", "Privacy"):
            headers += [(name, v) for v in ident.values(name)]
    wanted = {n.lower() for n in tuple(copy) + tuple(copy_x)}
    for name, value in ident.headers:
        if name.lower() in wanted:
            headers.append((name, value))
    return local, headers


_URI_HEADER_SAFE = "-_.!~*'()[]/?:+$"  # RFC 3261 §25.1: unreserved and hnv-unreserved stay, the rest is escaped


#: headers whose value on a transfer target is the guard's: its correlation header and the caller's identity.
#: A copy the agent side put into its Refer-To is taken out (an agent could otherwise forge or suppress them
#: for the target); found by the SIP fuzzer's REFER phase (benchmarks/sipfuzz.py).
GUARD_OWNED_HEADERS = ("x-dtmfguard-call", "p-asserted-identity", "p-preferred-identity")


def refer_target_with_headers(target: str, headers, owned=GUARD_OWNED_HEADERS) -> str:
    """A Refer-To value with ``headers`` [(name, value)] added as URI header parameters (RFC 3261 §19.1.1),
    after the ones the target already has (Replaces).  A header the target already names is not added twice
    (the agent side's X-Queue for the target wins), except the ``owned`` ones: the target's copies of those are
    removed and the guard's added."""
    from urllib.parse import quote, unquote

    value = target.strip()
    lt = value.find("<")
    gt = value.find(">", lt + 1) if lt >= 0 else -1
    if lt >= 0 and gt > lt:  # name-addr: an optional display name, <URI>, then its parameters
        display, inner, params = value[:lt], value[lt + 1:gt], value[gt + 1:]
    else:
        display, inner, params = "", value, ""
    owned = {n.lower() for n in owned}
    base, _, query = inner.partition("?")
    theirs = [p for p in query.split("&") if p and unquote(p.split("=", 1)[0]).lower() not in owned]
    present = {unquote(p.split("=", 1)[0]).lower() for p in theirs}
    extra = [f"{quote(n, safe='-_.!~*')}={quote(v, safe=_URI_HEADER_SAFE)}" for n, v in headers
             if n.lower() not in present]
    inner = base + ("?" + "&".join(theirs + extra) if theirs or extra else "")
    return f"{display}<{inner}>{params}"
