# SPDX-License-Identifier: GPL-2.0-or-later
"""Who may do what on the box endpoint.

* The **admin token** (from the environment variable ``[control] token_env``) may do everything and
  issues the others.  Compared in constant time (``hmac.compare_digest``).
* **Agent tokens** (``POST /v1/tokens``): ``dgt1.<payload>.<signature>``, the payload naming one agent and
  an expiry, signed with HMAC-SHA256 under a key derived from the admin token.  Stateless, so every box
  sharing the admin token accepts them (a handle of another box redirects there); rotating the admin
  token revokes them all.  An agent token sees and acts on the calls of its own agent only: the calls
  whose agent leg goes to that agent (the user part of the agent URI, or the whole URI).
* **Tickets** (``POST /v1/calls/{handle}/tickets``): random, single-use, short-lived (60 s) credentials for
  one call, made for URLs a browser opens itself (``EventSource`` cannot send an ``Authorization``
  header).  A ticket is ``<id>.<secret>``: looked up by id, its secret compared in constant time, and
  removed on first use.  A feed opened with a ticket hands the page a fresh ticket for its reconnect.

Nothing here ever sees card data.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from typing import Optional

__all__ = ["Principal", "Authority", "AuthError", "agent_of_target"]

log = logging.getLogger(__name__)

TOKEN_PREFIX = "dgt1"
MAX_TOKEN_TTL_S = 7 * 24 * 3600
TICKET_TTL_S = 60.0
_AGENT_RE = re.compile(r"^[A-Za-z0-9_.+@:;=-]{1,128}$")


class AuthError(Exception):
    """Credentials missing, malformed, wrong or expired; ``reason`` is a short label for metrics."""

    def __init__(self, reason: str, status: int = 401):
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclasses.dataclass(frozen=True)
class Principal:
    kind: str  # "admin" | "agent"
    agent: Optional[str] = None
    call: Optional[str] = None  # a ticket is good for one call only

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def may_see(self, handle: str, call_agent: str) -> bool:
        if self.call is not None and self.call != handle:
            return False
        if self.is_admin:
            return True
        return bool(self.agent) and self.agent in agent_of_target(call_agent)


def agent_of_target(target: str) -> tuple:
    """The identities of a call's agent: its URI and the URI's user part (``sip:a7@pbx`` -> a7)."""
    target = (target or "").strip()
    m = re.match(r"^sips?:([^@;>\s]+)@", target)
    return (target, m.group(1)) if m else ((target,) if target else ())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authority:
    """Checks credentials and issues agent tokens and tickets (thread-safe)."""

    def __init__(self, admin_token: str, ticket_ttl_s: float = TICKET_TTL_S, clock=time.time):
        if not admin_token:
            raise ValueError("the control endpoint needs an admin token (the environment variable named by "
                             "control.token_env)")
        if len(admin_token) < 16:
            log.warning("the control endpoint's admin token is short (%d characters): use 32 random characters "
                        "or more (it also keys every agent token)", len(admin_token))
        self._admin = admin_token.encode()
        self._key = hmac.new(self._admin, b"dtmfguard agent token key v1", hashlib.sha256).digest()
        self.ticket_ttl_s = float(ticket_ttl_s)
        self._clock = clock
        self._tickets: dict[str, tuple] = {}  # id -> (secret, expires, principal)
        self._lock = threading.Lock()

    # -- bearer credentials -----------------------------------------------------------------------------
    def bearer(self, header: str) -> Principal:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("missing")
        value = value.strip()
        if value.startswith(TOKEN_PREFIX + "."):
            return self._agent_token(value)
        if hmac.compare_digest(value.encode(), self._admin):
            return Principal("admin")
        raise AuthError("bad-token")

    def issue_token(self, agent: str, ttl_s: float = 8 * 3600) -> tuple[str, float]:
        if not isinstance(agent, str) or not _AGENT_RE.match(agent):
            raise ValueError("agent must be 1-128 characters of letters, digits and _.+@:;=-")
        if not isinstance(ttl_s, (int, float)) or isinstance(ttl_s, bool) or not 1 <= ttl_s <= MAX_TOKEN_TTL_S:
            raise ValueError(f"ttl_s must be 1..{MAX_TOKEN_TTL_S} seconds")
        exp = int(self._clock() + ttl_s)
        payload = _b64(json.dumps({"sub": agent, "exp": exp}, separators=(",", ":")).encode())
        signed = f"{TOKEN_PREFIX}.{payload}"
        mac = _b64(hmac.new(self._key, signed.encode(), hashlib.sha256).digest())
        return f"{signed}.{mac}", exp

    def _agent_token(self, token: str) -> Principal:
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 1024:
            raise AuthError("bad-token")
        signed = f"{parts[0]}.{parts[1]}"
        want = hmac.new(self._key, signed.encode(), hashlib.sha256).digest()
        try:
            got = _unb64(parts[2])
        except (ValueError, TypeError):
            raise AuthError("bad-token") from None
        if not hmac.compare_digest(want, got):
            raise AuthError("bad-token")
        try:
            claims = json.loads(_unb64(parts[1]))
            agent, exp = claims["sub"], float(claims["exp"])
        except (ValueError, KeyError, TypeError):
            raise AuthError("bad-token") from None
        if exp < self._clock():
            raise AuthError("expired")
        return Principal("agent", agent=str(agent))

    # -- tickets ---------------------------------------------------------------------------------------
    def issue_ticket(self, principal: Principal, handle: str) -> tuple[str, float]:
        tid, secret = secrets.token_urlsafe(9), secrets.token_urlsafe(24)
        expires = self._clock() + self.ticket_ttl_s
        scoped = dataclasses.replace(principal, call=handle)
        with self._lock:
            now = self._clock()
            for k in [k for k, v in self._tickets.items() if v[1] < now]:  # forget expired ones
                del self._tickets[k]
            if len(self._tickets) > 100_000:
                raise AuthError("too-many-tickets", 503)
            self._tickets[tid] = (secret, expires, scoped)
        return f"{tid}.{secret}", self.ticket_ttl_s

    def redeem_ticket(self, ticket: str, handle: str) -> Principal:
        """Use a ticket (once) for ``handle``; AuthError if unknown, used, expired or for another call."""
        tid, _, secret = (ticket or "").partition(".")
        with self._lock:
            entry = self._tickets.get(tid)
            if entry is None or not hmac.compare_digest(entry[0].encode(), secret.encode()):
                raise AuthError("bad-ticket")
            del self._tickets[tid]  # single use, even when it turns out to be for another call
        if entry[1] < self._clock():
            raise AuthError("expired-ticket")
        if entry[2].call != handle:
            raise AuthError("bad-ticket", 403)
        return entry[2]
