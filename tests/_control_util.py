# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared by the control API and box endpoint tests: one real call pipeline behind a stand-in guard, and
an HTTP client written with the standard library (nothing of the server's own code)."""
from __future__ import annotations

import http.client
import json

import numpy as np

from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.sip.bridge import Bridge


class CoverMasker:
    """A masker that outputs silence and counts what it was given (the pipeline's cover calls are no-ops)."""
    delay_samples = 0

    def __init__(self):
        self.samples_in = 0

    def cover(self, start, end=None):
        pass

    def uncover(self, end):
        pass

    def process(self, chunk):
        self.samples_in += len(chunk)
        return np.zeros_like(chunk)


class FakeGuard:
    """The things the control API reads from a Guard, around one real pipeline (call ``c1``)."""

    def __init__(self, session_factory, target="sip:agent@x", correlation=None):
        self.session_factory = session_factory
        extra = {"correlation": correlation} if correlation is not None else {}
        self.bridge = Bridge("c1", customer=None, target=target, state="connected",
                             pipeline=CallPipeline(masker=CoverMasker()), **extra)

    def list_calls(self):
        return [self.bridge.summary()]

    def get_bridge(self, call_id):
        return self.bridge if call_id == "c1" else None

    def health(self):
        return {"ok": True, "active_calls": 1}


def http_json(port, method, path, body=None, token=None, headers=None, raw=None, timeout=10):
    """One request to 127.0.0.1:``port``: (status, JSON body or text or None, response headers).  ``body`` is
    sent as JSON; ``raw`` as given bytes (no Content-Type)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = raw
    if raw is None and body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    try:
        out = json.loads(payload) if payload else None
    except ValueError:
        out = payload.decode("utf-8", "replace")
    return r.status, out, dict(r.getheaders())
