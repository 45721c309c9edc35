# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP INFO key presses: the third DTMF path, beside in-band tones and RFC 4733.

Two bodies are in use (neither has an RFC; both are de-facto standards):

* ``application/dtmf-relay`` (Cisco, PJSIP, Asterisk)::

      Signal=5
      Duration=160

  ``Signal`` is the key, ``Duration`` milliseconds (optional; 250 ms if absent,
  Asterisk's default).  Lines end with CRLF or LF; keys are case-insensitive.
* ``application/dtmf`` (e.g. some SBCs): the body is the key itself, or its
  RFC 4733 event code (``5``, ``11`` for '#').

Errors raise :class:`SipInfoError` with a message that says what is wrong but
never echoes the body: a body is one card digit.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..events import DIGITS, DigitEvent, event_code_to_digit

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_DURATION_MS",
    "MAX_DURATION_MS",
    "SipInfoDigit",
    "SipInfoError",
    "dtmf_relay_body",
    "parse_dtmf",
    "parse_dtmf_relay",
    "parse_info",
]

#: Duration assumed when a dtmf-relay body has none (Asterisk's default).
DEFAULT_DURATION_MS = 250
#: Longer claims are clamped: a body cannot make the masker cover the call forever.
MAX_DURATION_MS = 10_000
#: Body size beyond which a body is refused unparsed (real bodies are ~25 octets).
MAX_BODY_OCTETS = 1024
CONTENT_TYPES = ("application/dtmf-relay", "application/dtmf")


class SipInfoError(ValueError):
    """A SIP INFO body that is not a key press (the message never contains the body)."""


@dataclass(frozen=True)
class SipInfoDigit:
    digit: str
    duration_ms: int

    def __repr__(self) -> str:
        return f"SipInfoDigit(digit=<hidden>, duration_ms={self.duration_ms})"

    __str__ = __repr__

    def to_event(self, start: int, rate: int = 8000) -> DigitEvent:
        """A complete DigitEvent covering [start, start + duration) on the stream's clock."""
        n = max(1, int(self.duration_ms * rate // 1000))
        return DigitEvent(self.digit, int(start), int(start) + n, rate, source="sip-info")


def _text(body: str | bytes) -> str:
    if isinstance(body, (bytes, bytearray)):
        if len(body) > MAX_BODY_OCTETS:
            raise SipInfoError(f"SIP INFO body too long ({len(body)} octets, limit {MAX_BODY_OCTETS})")
        try:
            return bytes(body).decode("ascii")
        except UnicodeDecodeError:
            raise SipInfoError("SIP INFO body is not ASCII text") from None
    if not isinstance(body, str):
        raise SipInfoError(f"SIP INFO body must be str or bytes, got {type(body).__name__}")
    if len(body) > MAX_BODY_OCTETS:
        raise SipInfoError(f"SIP INFO body too long ({len(body)} characters, limit {MAX_BODY_OCTETS})")
    return body


def _key(token: str, what: str) -> str:
    token = token.strip()
    if len(token) == 1 and token.upper() in DIGITS:
        return token.upper()
    if token.isdigit() and len(token) <= 2:  # an RFC 4733 event code: 10 = '*', 11 = '#', 12-15 = A-D
        try:
            return event_code_to_digit(int(token))
        except ValueError:
            pass
    raise SipInfoError(f"{what} is not a DTMF key (expected 0-9, *, #, A-D or an event code 0-15)")


def parse_dtmf_relay(body: str | bytes) -> SipInfoDigit:
    """Parse an ``application/dtmf-relay`` body (``Signal=5\\r\\nDuration=160``)."""
    text = _text(body)
    fields = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise SipInfoError("dtmf-relay body has a line without '=' (expected lines 'Signal', 'Duration' with values)")
        name = name.strip().lower()
        if name in fields:
            raise SipInfoError(f"dtmf-relay body repeats the field {name.capitalize()}")
        fields[name] = value
    if "signal" not in fields:
        raise SipInfoError("dtmf-relay body has no Signal field")
    digit = _key(fields["signal"], "dtmf-relay Signal")
    duration = DEFAULT_DURATION_MS
    if "duration" in fields:
        raw = fields["duration"].strip()
        if not raw.isdigit():
            raise SipInfoError("dtmf-relay Duration is not a whole number of milliseconds")
        duration = min(int(raw), MAX_DURATION_MS)
        if duration <= 0:
            duration = DEFAULT_DURATION_MS
    return SipInfoDigit(digit, duration)


def parse_dtmf(body: str | bytes) -> SipInfoDigit:
    """Parse an ``application/dtmf`` body: one key (or event code), optional surrounding white space."""
    text = _text(body).strip()
    if not text:
        raise SipInfoError("application/dtmf body is empty")
    return SipInfoDigit(_key(text, "application/dtmf body"), DEFAULT_DURATION_MS)


def parse_info(content_type: str, body: str | bytes) -> SipInfoDigit:
    """Dispatch on the Content-Type (parameters and case ignored)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/dtmf-relay":
        return parse_dtmf_relay(body)
    if ctype == "application/dtmf":
        return parse_dtmf(body)
    raise SipInfoError(f"not a DTMF INFO content type: {ctype or '(none)'}; expected one of {', '.join(CONTENT_TYPES)}")


def dtmf_relay_body(digit: str, duration_ms: int = DEFAULT_DURATION_MS) -> str:
    """The ``application/dtmf-relay`` body for one key (test peers, gateways toward other systems)."""
    return f"Signal={_key(digit, 'digit')}\r\nDuration={int(duration_ms)}\r\n"


#: Content type of the agent side's secure-mode switch (a PBX or CTI without the control API): an
#: in-dialog SIP INFO on the agent leg whose body is ``on`` or ``off`` (also ``start`` / ``stop``).
SECURE_CONTENT_TYPE = "application/x-dtmfguard-secure"
#: Header alternative, on an INFO of any other content type: ``X-Dtmfguard-Secure: on`` / ``off``.
SECURE_HEADER = "X-Dtmfguard-Secure"
_SECURE_WORDS = {"on": True, "start": True, "1": True, "off": False, "stop": False, "0": False}


def parse_secure_request(content_type: str, body: str | bytes, header: str = "") -> bool | None:
    """The agent side's secure-mode switch in a SIP INFO: True (on), False (off) or None (not a switch).

    ``header`` is the value of the :data:`SECURE_HEADER` header ("" if absent); it wins over the body.
    Raises :class:`SipInfoError` for a switch with an unknown value (answer 400).
    """
    if header.strip():
        value = header.strip().lower()
        if value not in _SECURE_WORDS:
            raise SipInfoError(f"{SECURE_HEADER} must be on or off")
        return _SECURE_WORDS[value]
    if (content_type or "").split(";")[0].strip().lower() != SECURE_CONTENT_TYPE:
        return None
    value = _text(body).strip().lower()
    if value not in _SECURE_WORDS:
        raise SipInfoError(f"{SECURE_CONTENT_TYPE} body must be on or off")
    return _SECURE_WORDS[value]
