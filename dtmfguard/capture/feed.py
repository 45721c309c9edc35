# SPDX-License-Identifier: GPL-2.0-or-later
"""The masked agent feed: what the agent's screen may show while the caller keys in card data.

The PCI SSC's guidance on telephone payments (2018) keeps the agent's desktop out of scope only if no
card data reaches it; what agent-assist products show instead is progress: which field is being keyed,
how many digits so far, valid or not, the brand and last 4 (Eckoh, PCI Pal) and the gateway result.
Events are plain JSON-ready dicts so the same stream serves Python callbacks and JSON lines for a web
desktop.  Event builders in :mod:`.session` put only counts, names, brand and last 4 into them.

Event types (every event also has ``type``, ``seq``, ``t`` (seconds since the session started, session
clock), ``session``, ``call_id``, ``agent_id``):

==================== ====================================================================================
session_started      ``fields``, ``amount`` (minor units or null), ``currency``, ``reference``
field_started        ``field``, ``label``, ``attempt``, ``max_attempts``
field_progress       ``field``, ``digits`` (how many so far)
field_cleared        ``field`` (the caller pressed ``*``)
field_complete       ``field``, ``valid``, ``reason`` (if invalid), ``finished_by`` (``#``, ``length``,
                     ``timeout``); ``brand`` and ``last4`` for a valid card number; ``amount`` for a valid
                     amount
field_timeout        ``field``, ``attempt`` (nothing keyed within the field timeout)
limit_refused        ``amount``, ``limit``, ``reason`` (over the agent's authority, no approval possible)
approval_required    ``amount``, ``limit``, ``reason`` (waits for :meth:`PaymentSession.approve`)
approval_granted     ``supervisor``
submitting           ``gateway``
gateway_result       ``status`` (approved, declined, tokenised, error, unavailable), ``token``,
                     ``authorisation``, ``message``, ``attempts``
audit_error          ``reason`` (the audit trail could not be written)
session_ended        ``outcome``, ``reason``
==================== ====================================================================================
"""
from __future__ import annotations

import io
import json
import logging
import os
import threading
from typing import Any, Callable, Dict, Iterable, Optional, Union

__all__ = ["AgentFeed", "EVENT_TYPES", "FeedCallback"]

logger = logging.getLogger(__name__)

EVENT_TYPES = (
    "session_started", "field_started", "field_progress", "field_cleared", "field_complete", "field_timeout",
    "limit_refused", "approval_required", "approval_granted", "submitting", "gateway_result", "audit_error",
    "session_ended",
)

FeedCallback = Callable[[Dict[str, Any]], None]


class AgentFeed:
    """Delivers feed events to callbacks and, optionally, to a JSON lines file or stream.

    :meth:`deliver` runs on the session's background worker, never on the media thread, so a slow
    callback or disk delays the screen but never the audio.  A failing callback is logged (its
    exception type only) and skipped: the payment carries on.
    """

    def __init__(self, callbacks: Iterable[FeedCallback] = (),
                 jsonl: Union[None, str, "os.PathLike[str]", io.TextIOBase] = None):
        self._callbacks = list(callbacks)
        self._lock = threading.Lock()
        self._owns_stream = False
        self._stream = None
        if jsonl is not None:
            if isinstance(jsonl, (str, os.PathLike)):
                self._stream = open(jsonl, "a", encoding="utf-8")
                self._owns_stream = True
            else:
                self._stream = jsonl

    def subscribe(self, callback: FeedCallback) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def deliver(self, event: Dict[str, Any]) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
            if self._stream is not None:
                try:
                    self._stream.write(json.dumps(event, sort_keys=True) + "\n")
                    self._stream.flush()
                except (OSError, ValueError) as exc:
                    logger.error("agent feed: JSON lines write failed (%s)", type(exc).__name__)
        for callback in callbacks:
            try:
                callback(dict(event))
            except Exception as exc:  # a broken screen must not break the payment
                logger.error("agent feed: callback %r failed (%s)", getattr(callback, "__name__", callback),
                             type(exc).__name__)

    def close(self) -> None:
        with self._lock:
            if self._owns_stream and self._stream is not None:
                self._stream.close()
            self._stream = None


def as_feed(on_event: Optional[Union[FeedCallback, Iterable[FeedCallback], AgentFeed]],
            jsonl=None) -> AgentFeed:
    """An AgentFeed from what a caller passed as ``on_event`` (callable, list of callables or a feed)."""
    if isinstance(on_event, AgentFeed):
        if jsonl is not None:
            raise ValueError("pass jsonl to the AgentFeed itself")
        return on_event
    if on_event is None:
        callbacks = []
    elif callable(on_event):
        callbacks = [on_event]
    else:
        callbacks = list(on_event)
    return AgentFeed(callbacks, jsonl)
