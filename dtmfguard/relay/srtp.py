# SPDX-License-Identifier: GPL-2.0-or-later
"""SRTP with SDES keys (RFC 3711, RFC 4568) for the relay, through PyPI's ``pylibsrtp`` (libsrtp 2 with a
current OpenSSL 3 linked in; the pjsua2 wheel's OpenSSL 1.0.2 is never involved in relay mode).

Keys follow RFC 4568 §6.1: the key in an SDP's ``a=crypto`` line is the one *the author of that SDP*
encrypts its outgoing media with.  So for each leg the relay decrypts with the key from that party's
SDP and encrypts with a fresh key of its own, which it puts in the SDP it sends to that party.  Suites:
AES_CM_128_HMAC_SHA1_80 and _32; key lifetimes are accepted, MKIs are refused (one key per stream).
Errors say what is wrong and never quote key material.
"""
from __future__ import annotations

import base64
import os

__all__ = ["SrtpError", "SUITES", "available", "parse_crypto", "crypto_attribute", "LegCrypto"]

#: SDES suite name -> (pylibsrtp profile name, master key + salt length)
SUITES = {"AES_CM_128_HMAC_SHA1_80": ("SRTP_PROFILE_AES128_CM_SHA1_80", 30),
          "AES_CM_128_HMAC_SHA1_32": ("SRTP_PROFILE_AES128_CM_SHA1_32", 30)}


class SrtpError(ValueError):
    """An unusable crypto attribute or packet."""


def available() -> bool:
    try:
        import pylibsrtp  # noqa: F401
    except ImportError:
        return False
    return True


def parse_crypto(value: str) -> tuple[int, str, bytes]:
    """``a=crypto`` value (``1 AES_CM_128_HMAC_SHA1_80 inline:KEY[|2^31][|1:4]``) -> (tag, suite, key+salt)."""
    parts = value.split()
    if len(parts) < 3 or not parts[0].isdigit():
        raise SrtpError("crypto attribute is not '<tag> <suite> inline:<key>'")
    tag, suite, params = int(parts[0]), parts[1].upper(), parts[2]
    if suite not in SUITES:
        raise SrtpError(f"crypto suite {suite[:40]} not supported (supported: {', '.join(SUITES)})")
    if not params.startswith("inline:"):
        raise SrtpError("crypto key parameters must be inline:")
    fields = params[7:].split("|")
    if any(":" in f for f in fields[1:]):
        raise SrtpError("crypto keys with an MKI are not supported")
    try:
        key = base64.b64decode(fields[0], validate=True)
    except ValueError:
        raise SrtpError("crypto key is not base64") from None
    if len(key) != SUITES[suite][1]:
        raise SrtpError(f"crypto key must be {SUITES[suite][1]} octets of key and salt")
    return tag, suite, key


def crypto_attribute(tag: int, suite: str, key: bytes) -> str:
    return f"a=crypto:{tag} {suite} inline:{base64.b64encode(key).decode()}"


class LegCrypto:
    """One leg's two SRTP contexts: ``rx`` (the party's key) and ``tx`` (the relay's key for that party)."""

    def __init__(self, suite: str):
        from pylibsrtp import Policy, Session

        self._Policy, self._Session = Policy, Session
        self.suite = suite
        self.tx_key = os.urandom(SUITES[suite][1])
        self.tx = Session(self._policy(self.tx_key, Policy.SSRC_ANY_OUTBOUND))
        self.rx = None
        self.rx_key: bytes | None = None

    def _policy(self, key: bytes, direction: int):
        p = self._Policy(key=key, ssrc_type=direction,
                         srtp_profile=getattr(self._Policy, SUITES[self.suite][0]))
        p.allow_repeat_tx = True  # our own stream never repeats, but a passed-through one may retransmit
        return p

    def set_remote(self, key: bytes) -> None:
        if key != self.rx_key:  # a re-offer with the same key keeps the replay state
            self.rx = self._Session(self._policy(key, self._Policy.SSRC_ANY_INBOUND))
            self.rx_key = key

    def unprotect(self, data: bytes) -> bytes:
        if self.rx is None:
            raise SrtpError("no key for this party yet")
        return self.rx.unprotect(data)

    def unprotect_rtcp(self, data: bytes) -> bytes:
        if self.rx is None:
            raise SrtpError("no key for this party yet")
        return self.rx.unprotect_rtcp(data)

    def protect(self, data: bytes) -> bytes:
        return self.tx.protect(data)

    def protect_rtcp(self, data: bytes) -> bytes:
        return self.tx.protect_rtcp(data)
