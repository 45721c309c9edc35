# SPDX-License-Identifier: GPL-2.0-or-later
"""Reference receiver for dtmfguard's ``webhook`` gateway: copy it into your payment service.

Standard library only, so it reads as a recipe.  What a receiver must do, in this order:

1. Read the raw body (limit its size) and the headers ``X-Dtmfguard-Timestamp``,
   ``X-Dtmfguard-Signature`` and ``Idempotency-Key``.
2. Verify the signature before parsing anything: HMAC-SHA256 with the shared secret over
   ``<timestamp>.<raw body>``, hex, compared in constant time (``hmac.compare_digest``) against every
   ``v1=`` value in the header.  Reject with 401 if it does not match.
3. Enforce the replay window: reject (401) a timestamp more than ``tolerance_s`` (300 s) from your
   clock.  A retry from dtmfguard carries a fresh timestamp and signature, so honest retries pass.
4. Idempotency: remember each ``Idempotency-Key`` (at least 24 h, longer than the replay window) with a
   hash of the body and the response you gave.  Same key and body again: return the stored response and
   do NOT charge again.  Same key still being processed: 409 (dtmfguard retries later).  Same key with a
   different body: 422 (never retried).
5. Charge, then answer 200 with JSON ``{"status": "approved"|"declined"|"tokenised", "token": ...,
   "authorisation": ..., "message": ...}``.  A decline is a 200, not an error.  Use 400 for a malformed
   request, 5xx only for your own transient failures (dtmfguard retries those with the same key).
6. Never log the body: it holds the PAN, expiry and security code.  Do not echo card data in
   ``message`` or ``token`` (dtmfguard refuses tokens that look like card numbers).

Run it (TLS is required by the gateway; use your real certificate)::

    DTMFGUARD_WEBHOOK_SECRET=... python samples/webhook_receiver.py --cert cert.pem --key key.pem --port 8443
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import http.server
import json
import logging
import os
import secrets
import ssl
import threading
import time
from typing import Callable, Dict, Iterable, Optional, Tuple

logger = logging.getLogger("webhook_receiver")

TOLERANCE_S = 300
MAX_BODY_BYTES = 64 * 1024


class SignatureError(Exception):
    """The request is not authentic or is outside the replay window."""


def verify_signature(secrets_: Iterable[bytes], body: bytes, timestamp: Optional[str],
                     signature: Optional[str], now: Optional[float] = None,
                     tolerance_s: int = TOLERANCE_S) -> int:
    """Check ``X-Dtmfguard-Signature`` over ``<timestamp>.<body>``; return the timestamp.

    ``secrets_`` may hold more than one secret while you rotate them.  Raises :class:`SignatureError`.
    """
    if not timestamp or not signature:
        raise SignatureError("missing timestamp or signature header")
    try:
        stamp = int(timestamp)
    except ValueError:
        raise SignatureError("timestamp is not an integer") from None
    now = time.time() if now is None else now
    if abs(now - stamp) > tolerance_s:
        raise SignatureError("timestamp outside the replay window")
    offered = [part.strip()[3:] for part in signature.split(",") if part.strip().startswith("v1=")]
    signed = timestamp.encode() + b"." + body
    for secret in secrets_:
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return stamp
    raise SignatureError("signature does not match")


class IdempotencyStore:
    """Remembers each key's body hash and response.  In memory here; use your database in production
    (a unique index on the key, inserted in the same transaction as the charge)."""

    def __init__(self, ttl_s: float = 24 * 3600):
        self._lock = threading.Lock()
        self._entries: Dict[str, dict] = {}
        self.ttl_s = ttl_s

    def begin(self, key: str, body_sha256: str) -> Tuple[str, Optional[Tuple[int, dict]]]:
        """('new', None) — go ahead and charge; ('done', response); ('busy', None); ('conflict', None)."""
        now = time.time()
        with self._lock:
            for stale in [k for k, v in self._entries.items() if now - v["at"] > self.ttl_s]:
                del self._entries[stale]
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = {"at": now, "body": body_sha256, "response": None}
                return "new", None
            if entry["body"] != body_sha256:
                return "conflict", None
            if entry["response"] is None:
                return "busy", None
            return "done", entry["response"]

    def finish(self, key: str, response: Tuple[int, dict]) -> None:
        with self._lock:
            self._entries[key]["response"] = response

    def forget(self, key: str) -> None:
        """Drop a key whose processing failed transiently, so the retry can try again."""
        with self._lock:
            self._entries.pop(key, None)


Charge = Callable[[dict], dict]


def demo_charge(payment: dict) -> dict:
    """Stand-in for your processor call.  Approves everything; never logs the card."""
    card = payment.get("card") or {}
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return {"status": "approved" if payment.get("amount") else "tokenised",
            "authorisation": "".join(secrets.choice(letters[:24]) for _ in range(6)),
            "token": "tok_" + "".join(secrets.choice(letters) for _ in range(24)),  # letters: never PAN-like
            "message": f"{card.get('brand', 'card')} accepted"}


def make_handler(secrets_: Iterable[bytes], charge: Charge = demo_charge,
                 store: Optional[IdempotencyStore] = None, tolerance_s: int = TOLERANCE_S,
                 clock: Callable[[], float] = time.time):
    """A BaseHTTPRequestHandler class for ``http.server.ThreadingHTTPServer``."""
    secret_list = [bytes(s) for s in secrets_]
    store = store if store is not None else IdempotencyStore()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, payload: dict, retry_after: Optional[int] = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._reply(411, {"error": "Content-Length required"})
            if length > MAX_BODY_BYTES:
                return self._reply(413, {"error": "body too large"})
            body = self.rfile.read(length)
            try:
                verify_signature(secret_list, body, self.headers.get("X-Dtmfguard-Timestamp"),
                                 self.headers.get("X-Dtmfguard-Signature"), clock(), tolerance_s)
            except SignatureError as exc:
                return self._reply(401, {"error": str(exc)})
            key = self.headers.get("Idempotency-Key") or ""
            try:
                payment = json.loads(body)
            except ValueError:
                return self._reply(400, {"error": "body is not JSON"})
            if not key or payment.get("idempotency_key") != key:
                return self._reply(400, {"error": "Idempotency-Key header missing or not matching the body"})
            state, stored = store.begin(key, hashlib.sha256(body).hexdigest())
            if state == "done":
                return self._reply(*stored)
            if state == "busy":
                return self._reply(409, {"error": "this payment is still being processed"}, retry_after=1)
            if state == "conflict":
                return self._reply(422, {"error": "idempotency key reused with a different request"})
            try:
                result = charge(payment)
            except Exception:
                store.forget(key)  # transient failure: let dtmfguard's retry try again
                logger.exception("charge failed")  # your code's traceback; make sure it holds no card data
                return self._reply(503, {"error": "temporarily unavailable"}, retry_after=2)
            finally:
                payment.pop("card", None)
                del body
            store.finish(key, (200, result))
            return self._reply(200, result)

        def log_message(self, format: str, *args) -> None:  # request line and status only, never bodies
            logger.info("%s %s", self.address_string(), format % args)

    Handler.store = store
    return Handler


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Reference receiver for dtmfguard's webhook gateway.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert", required=True, help="TLS certificate chain (PEM)")
    parser.add_argument("--key", required=True, help="TLS private key (PEM)")
    parser.add_argument("--secret-env", default="DTMFGUARD_WEBHOOK_SECRET",
                        help="environment variable(s) holding the secret; comma-separate to rotate")
    args = parser.parse_args(argv)
    secret_list = [os.environ[name].encode() for name in args.secret_env.split(",") if os.environ.get(name)]
    if not secret_list:
        parser.error(f"set {args.secret_env}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = http.server.ThreadingHTTPServer((args.host, args.port), make_handler(secret_list))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    logger.info("listening on https://%s:%d/", args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
