# SPDX-License-Identifier: GPL-2.0-or-later
"""``webhook``: hand card details to a payment processor's HTTPS endpoint as signed JSON.

The request follows the conventions of Stripe's and Adyen's webhooks and APIs:

* ``POST`` of a JSON body over HTTPS with certificate and host name verification on (PCI DSS v4.0
  Req. 4.2.1: strong cryptography for PAN over open, public networks); plain ``http://`` is refused
  except to a loopback address with ``allow_insecure_loopback=True`` for local development.
* ``X-Dtmfguard-Timestamp: <unix seconds>`` and ``X-Dtmfguard-Signature: v1=<hex>`` where ``<hex>`` is
  HMAC-SHA256(secret, ``<timestamp>`` + ``"."`` + raw body).  The receiver recomputes it with a constant
  time compare and rejects timestamps outside its replay window (5 minutes in the sample receiver).
* ``Idempotency-Key: <key>`` (also in the body), made once per payment and identical on every retry, so
  a retry after a lost response never charges twice.  The body is byte-identical on retries; only the
  timestamp, signature and ``X-Dtmfguard-Attempt`` change.
* Timeouts, connection failures, 408/409/425/429 and 5xx are retried with exponential backoff (capped,
  honouring ``Retry-After``); any other 4xx is final.  After the last attempt the gateway raises
  :class:`GatewayUnavailable`, which the session reports on the agent feed as an outage.

The secret comes from the environment (``DTMFGUARD_WEBHOOK_SECRET`` unless ``secret_env`` names another
variable); it is never logged.  Response bodies are never logged either (a processor might echo card
data); the processor's ``message`` is shortened and stripped of this card's digits before anyone sees it.
See ``samples/webhook_receiver.py`` for the receiving side.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import re
import ssl
import time
import urllib.parse
from typing import Callable, Mapping, Optional, Tuple

from ... import __version__
from ...security import is_loopback_host
from .base import (
    Gateway,
    GatewayConfigError,
    GatewayError,
    GatewayResult,
    GatewayUnavailable,
    PaymentRequest,
)

__all__ = ["WebhookGateway", "sign", "SECRET_ENV", "SIGNATURE_HEADER", "TIMESTAMP_HEADER",
           "IDEMPOTENCY_HEADER", "ATTEMPT_HEADER", "RETRYABLE_STATUSES"]

logger = logging.getLogger(__name__)

SECRET_ENV = "DTMFGUARD_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Dtmfguard-Signature"
TIMESTAMP_HEADER = "X-Dtmfguard-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Dtmfguard-Attempt"
#: Statuses worth retrying with the same idempotency key: timeout, in progress, too early, rate limit.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
_MAX_RESPONSE_BYTES = 64 * 1024
_MESSAGE_MAX_CHARS = 200
_SAFE_FIELD_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_LONG_DIGITS_RE = re.compile(r"\d{6,}")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value: ``v1=`` + hex HMAC-SHA256(secret, b"<timestamp>." + body)."""
    mac = hmac.new(secret, str(int(timestamp)).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


class _Retry(Exception):
    def __init__(self, reason: str, retry_after_s: Optional[float] = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class WebhookGateway(Gateway):
    """POST signed JSON to ``url``; see the module docstring for the wire contract."""

    name = "webhook"

    def __init__(self, url: str, *, secret: Optional[bytes] = None, secret_env: str = SECRET_ENV,
                 timeout_s: float = 10.0, max_attempts: int = 4, backoff_s: float = 0.5,
                 backoff_max_s: float = 8.0, ca_file: Optional[str] = None,
                 ssl_context: Optional[ssl.SSLContext] = None, allow_insecure_loopback: bool = False,
                 headers: Optional[Mapping[str, str]] = None,
                 sleep: Callable[[float], None] = time.sleep, wallclock: Callable[[], float] = time.time):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("https", "http") or not parsed.hostname:
            raise GatewayConfigError("webhook url must be https://host[:port]/path")
        if parsed.scheme == "http" and not (allow_insecure_loopback and is_loopback_host(parsed.hostname)):
            raise GatewayConfigError("webhook url must use https (plain http only to loopback with "
                                     "allow_insecure_loopback=True)")
        if parsed.username or parsed.password:
            raise GatewayConfigError("webhook url must not contain credentials; use the signing secret")
        if secret is None:
            value = os.environ.get(secret_env)
            if not value:
                raise GatewayConfigError(f"no webhook signing secret: set {secret_env}")
            secret = value.encode()
        if len(secret) < 16:
            raise GatewayConfigError("webhook signing secret must be at least 16 bytes")
        if max_attempts < 1 or timeout_s <= 0 or backoff_s < 0:
            raise GatewayConfigError("need max_attempts >= 1, timeout_s > 0, backoff_s >= 0")
        self.url = url
        self._scheme, self._host, self._port = parsed.scheme, parsed.hostname, parsed.port
        self._path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        self._secret = bytes(secret)
        self.timeout_s, self.max_attempts = float(timeout_s), int(max_attempts)
        self.backoff_s, self.backoff_max_s = float(backoff_s), float(backoff_max_s)
        self._extra_headers = dict(headers or {})
        self._sleep, self._wallclock = sleep, wallclock
        if self._scheme == "https":
            # create_default_context: CERT_REQUIRED and check_hostname on, system CAs (or ca_file).
            self._ssl = ssl_context or ssl.create_default_context(cafile=ca_file)
            if self._ssl.verify_mode != ssl.CERT_REQUIRED or not self._ssl.check_hostname:
                raise GatewayConfigError("TLS verification must stay on for the webhook gateway")
        else:
            self._ssl = None

    def __repr__(self) -> str:
        return f"WebhookGateway(url={self.url!r}, timeout_s={self.timeout_s}, max_attempts={self.max_attempts})"

    @staticmethod
    def body(request: PaymentRequest) -> bytes:
        """The JSON body (public so receivers and tests can see the exact format)."""
        card = request.card
        card_json = None
        if card is not None:
            month_year = card.expiry_month_year
            card_json = {
                "number": card.pan,
                "brand": card.brand,
                "expiry_month": None if month_year is None else f"{month_year[0]:02d}",
                "expiry_year": None if month_year is None else f"{month_year[1]:04d}",
                "security_code": card.security_code,
            }
        payload = {
            "type": "dtmfguard.payment",
            "version": 1,
            "operation": request.operation,
            "idempotency_key": request.idempotency_key,
            "amount": request.amount,
            "currency": request.currency,
            "reference": request.reference,
            "call_id": request.call_id,
            "agent_id": request.agent_id,
            "session_id": request.session_id,
            "card": card_json,
            "fields": dict(request.fields),
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()

    def _connection(self) -> http.client.HTTPConnection:
        if self._ssl is not None:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s, context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)

    def _post_once(self, body: bytes, key: str, attempt: int) -> Tuple[int, bytes, Optional[str]]:
        timestamp = int(self._wallclock())
        headers = {
            **self._extra_headers,
            "Content-Type": "application/json",
            "User-Agent": f"dtmfguard/{__version__}",
            IDEMPOTENCY_HEADER: key,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            ATTEMPT_HEADER: str(attempt),
        }
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(_MAX_RESPONSE_BYTES)
            return response.status, data, response.getheader("Retry-After")
        finally:
            conn.close()

    def _classify(self, status: int, data: bytes, retry_after: Optional[str], request: PaymentRequest,
                  attempts: int) -> GatewayResult:
        if 200 <= status < 300:
            return self._parse(data, request, attempts)
        if status in RETRYABLE_STATUSES or status >= 500:
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            raise _Retry(f"HTTP {status}", wait)
        raise GatewayError(f"processor refused the request (HTTP {status})")

    def _parse(self, data: bytes, request: PaymentRequest, attempts: int) -> GatewayResult:
        try:
            reply = json.loads(data)
            status = reply["status"]
        except (ValueError, KeyError, TypeError):
            raise GatewayError("processor sent a response that is not the expected JSON") from None
        if status not in ("approved", "declined", "tokenised"):
            raise GatewayError("processor sent an unknown status")
        token, authorisation = reply.get("token"), reply.get("authorisation")
        for value in (token, authorisation):
            if value is not None and not (isinstance(value, str) and _SAFE_FIELD_RE.fullmatch(value)):
                raise GatewayError("processor sent a malformed token or authorisation code")
        if token is not None and _LONG_DIGITS_RE.search(token):
            # A "token" with a long digit run could be a PAN echoed back: refuse to show or store it.
            raise GatewayError("processor sent a token that looks like card data")
        message = reply.get("message") or ""
        message = message if isinstance(message, str) else ""
        if request.card is not None:
            message = request.card.redact(message)
        message = _LONG_DIGITS_RE.sub("[redacted]", message)[:_MESSAGE_MAX_CHARS]
        return GatewayResult(status, token=token, authorisation=authorisation, message=message,
                             attempts=attempts, gateway=self.name)

    def _backoff(self, attempt: int, retry_after_s: Optional[float]) -> float:
        wait = min(self.backoff_max_s, self.backoff_s * (2 ** (attempt - 1)))
        if retry_after_s is not None:
            wait = min(self.backoff_max_s, max(wait, retry_after_s))
        return wait

    def submit(self, request: PaymentRequest) -> GatewayResult:
        body = self.body(request)
        try:
            last_reason = "no attempt made"
            for attempt in range(1, self.max_attempts + 1):
                retry_after = None
                try:
                    status, data, retry_after_header = self._post_once(body, request.idempotency_key, attempt)
                    result = self._classify(status, data, retry_after_header, request, attempt)
                    logger.info("webhook: %s after %d attempt(s)", result.status, attempt)
                    return result
                except _Retry as exc:
                    last_reason, retry_after = exc.reason, exc.retry_after_s
                except ssl.SSLCertVerificationError:
                    # Not transient, and retrying would not help: the peer is not who it claims to be.
                    raise GatewayUnavailable(f"TLS certificate verification failed for {self._host}") from None
                except ssl.SSLError as exc:
                    last_reason = f"TLS error ({type(exc).__name__})"
                except TimeoutError:
                    last_reason = f"no response within {self.timeout_s:g} s"
                except (OSError, http.client.HTTPException) as exc:
                    last_reason = f"connection failed ({type(exc).__name__})"
                logger.warning("webhook: attempt %d of %d failed: %s", attempt, self.max_attempts, last_reason)
                if attempt < self.max_attempts:
                    self._sleep(self._backoff(attempt, retry_after))
            raise GatewayUnavailable(f"processor unavailable after {self.max_attempts} attempts "
                                     f"(last: {last_reason})")
        finally:
            del body  # best effort: drop our reference to the serialised card as soon as possible
