# SPDX-License-Identifier: GPL-2.0-or-later
"""A sample gateway plugin: the shape a processor integration takes.

Load it by ``module:attribute`` (with ``samples`` on ``sys.path``)::

    load_gateway("gateway_plugin:TestCardGateway", approve_up_to=10000)

or publish your own under the entry point group ``dtmfguard.gateways`` in your package's
``pyproject.toml``::

    [project.entry-points."dtmfguard.gateways"]
    testcards = "gateway_plugin:TestCardGateway"

The rules every plugin must follow (see ``dtmfguard.capture.gateways.base.Gateway``):

* ``submit(request)`` may block (it runs on a background thread, never on the audio thread) and must
  be thread-safe: one instance serves every call.
* Honour ``request.idempotency_key``: the same key again returns the first result, never a second charge.
* Never log, store or put into an exception message ``request.card.pan``, ``.expiry`` or
  ``.security_code``; ``repr(request)`` and ``repr(request.card)`` are safe (brand + last 4).
* Raise ``GatewayUnavailable`` when the processor cannot be reached, ``GatewayError`` when it refused
  the request; return a ``GatewayResult`` otherwise.  dtmfguard wipes the card after ``submit`` returns.

This one is an offline stand-in for demos: it approves the schemes' published test card numbers up to
``approve_up_to`` minor units and declines everything else.
"""
from __future__ import annotations

import logging
import secrets
import threading

from dtmfguard.capture.gateways import Gateway, GatewayError, GatewayResult, PaymentRequest

logger = logging.getLogger(__name__)

#: Published test PANs (Visa, Mastercard, Mastercard 2-series, Amex, Discover).
TEST_PANS = frozenset({"4111111111111111", "4012888888881881", "5555555555554444", "2223003122003222",
                       "378282246310005", "6011111111111117"})


class TestCardGateway(Gateway):
    name = "testcards"

    def __init__(self, approve_up_to: int = 100_000):
        self.approve_up_to = int(approve_up_to)
        self._lock = threading.Lock()
        self._results = {}  # idempotency key -> GatewayResult
        self.charges = 0

    def submit(self, request: PaymentRequest) -> GatewayResult:
        if request.card is None:
            raise GatewayError("no card number was captured")
        with self._lock:
            if request.idempotency_key in self._results:
                return self._results[request.idempotency_key]
            approved = request.card.pan in TEST_PANS and (request.amount or 0) <= self.approve_up_to
            if approved:
                self.charges += 1
            result = GatewayResult(
                "approved" if approved else "declined",
                authorisation="".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(6))
                if approved else None,
                message="test card approved" if approved else "not a test card, or over the demo limit",
                gateway=self.name)
            self._results[request.idempotency_key] = result
        logger.info("testcards: %s %s", result.status, request.card)  # repr: brand + last 4 only
        return result
