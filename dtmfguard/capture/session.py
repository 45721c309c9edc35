# SPDX-License-Identifier: GPL-2.0-or-later
"""One card payment taken over the phone: digits in, masked progress out, card to the gateway only.

:class:`PaymentSession` is a small state machine fed :class:`~dtmfguard.events.DigitEvent` objects from
any source (in-band detection, RFC 4733, SIP INFO).  Keys: digits fill the current field, ``#`` ends it,
``*`` clears it and starts it again (the IVR convention Twilio ``<Pay>`` and agent-assist products use);
A-D are ignored.  A field also ends when it cannot grow (expiry after 4 digits, security code after 3 or
4) or after the inter-digit timeout; nothing keyed within the field timeout, or an invalid entry, costs
an attempt; ``max_attempts`` failures end the session.

Outcomes (``.state`` once finished): ``completed`` (approved or tokenised), ``declined``, ``abandoned``
(:meth:`cancel`), ``timed_out``, ``failed_validation``, ``refused`` (over the agent's limit, or a
supervisor said no), ``gateway_unavailable`` (processor outage), ``gateway_error`` (processor refused
the request) and ``error`` (a bug here: the session fails closed, the card is wiped, nothing is sent).

Threading: :meth:`feed` runs on pjsua2's audio clock thread, which must never block.  It only takes this
session's lock (held for in-memory work only, never across I/O or callbacks) and appends to queues;
callbacks, JSON lines and audit writes run on a :class:`~.worker.SerialRunner`, and the gateway hand-off
runs on the shared gateway pool.  :meth:`feed` never raises into the media path.

Card data: digits live in ``bytearray`` buffers that are zeroed on ``*``, on an invalid entry and when
the session ends; at hand-off they move into one :class:`~.card.CardDetails`, wiped as soon as the
gateway returns (PCI DSS v4.0 Req. 3.3.1: no security code kept after authorisation).  Events, logs and
audit records carry field names, digit counts, brand and last 4 only.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import threading
import time
from concurrent.futures import Executor
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from .audit import AuditError, AuditTrail, find_card_data
from .card import CardDetails, card_brand, wipe
from .feed import AgentFeed, FeedCallback, as_feed
from .fields import CARD_FIELDS, FieldContext, FieldSpec
from .gateways.base import (
    Gateway, GatewayError, GatewayResult, GatewayUnavailable, PaymentRequest, _letters, new_idempotency_key,
)
from .limits import AgentLimits, DailyLedger, LimitDecision
from .policy import DEFAULT_POLICY, PaymentPolicy
from .states import (
    ABANDONED, AWAITING_APPROVAL, COLLECTING, COMPLETED, DECLINED, ERROR, GATEWAY_ERROR, GATEWAY_UNAVAILABLE,
    FAILED_VALIDATION, REFUSED, SUBMITTING, TERMINAL_STATES, TIMED_OUT,
)
from .worker import SerialRunner, event_pool, gateway_pool

__all__ = ["PaymentSession", "PaymentPolicy", "DEFAULT_POLICY", "TERMINAL_STATES", "COLLECTING",
           "AWAITING_APPROVAL", "SUBMITTING"]

logger = logging.getLogger(__name__)

_RESULT_OUTCOME = {"approved": COMPLETED, "tokenised": COMPLETED, "declined": DECLINED,
                   "unavailable": GATEWAY_UNAVAILABLE, "error": GATEWAY_ERROR}
_POLICY_SETTINGS = frozenset(f for f in PaymentPolicy.__dataclass_fields__)
_LONG_DIGITS_RE = re.compile(r"\d{6,}")


def _utc_today() -> _dt.date:
    return _dt.datetime.now(_dt.timezone.utc).date()


def _safe_text(text: str, card: Optional[CardDetails], limit: int = 200) -> str:
    """Free text from a gateway, stripped of this card's digits and of any long digit run."""
    text = text if isinstance(text, str) else ""
    if card is not None:
        text = card.redact(text)
    return _LONG_DIGITS_RE.sub("[redacted]", text)[:limit]


class PaymentSession:
    """Collect card fields from key presses and hand them to ``gateway``; see the module docstring.

    ``amount`` is in minor units (pence, cents) or None (tokenise only, unless an ``amount`` field is
    keyed in).  ``on_event`` is a callable, a list of callables or an :class:`AgentFeed`; ``jsonl`` a
    path or text stream for the same events as JSON lines.  ``audit`` is an :class:`AuditTrail` or a
    path.  ``limits``/``ledger`` enforce per-agent authority.  ``clock`` (monotonic seconds) drives
    timeouts; ``today`` (a callable returning a date) drives the expiry check.  ``idempotency_key``
    reuses an earlier session's key to retry the same payment (e.g. after ``gateway_unavailable``).
    ``policy`` (a frozen :class:`~.policy.PaymentPolicy`: fields, timeouts, attempts) is shared by every
    session a box runs; ``fields=``, ``max_attempts=`` and the ``*_timeout_s=`` settings given on their
    own replace those of ``policy`` for this session.
    """

    def __init__(self, gateway: Gateway, *, policy: Optional[PaymentPolicy] = None, amount: Optional[int] = None,
                 currency: str = "GBP", reference: Optional[str] = None, call_id: Optional[str] = None,
                 agent_id: Optional[str] = None,
                 on_event: Union[None, FeedCallback, Iterable[FeedCallback], AgentFeed] = None, jsonl=None,
                 audit: Union[None, AuditTrail, str, "os.PathLike[str]"] = None,
                 limits: Optional[AgentLimits] = None, ledger: Optional[DailyLedger] = None,
                 clock: Callable[[], float] = time.monotonic, today: Callable[[], _dt.date] = _utc_today,
                 session_id: Optional[str] = None, idempotency_key: Optional[str] = None,
                 executor: Optional[Executor] = None, gateway_executor: Optional[Executor] = None,
                 **policy_settings: Any):
        # ``fields=``, ``max_attempts=`` and the timeouts may still be given one by one (the control API
        # passes ``fields`` from a request body): they replace those settings of ``policy``.
        unknown = sorted(set(policy_settings) - _POLICY_SETTINGS)
        if unknown:
            raise TypeError(f"PaymentSession() got an unexpected keyword argument {unknown[0]!r}")
        policy = PaymentPolicy.build(policy, **policy_settings)
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
            raise ValueError("amount must be a positive whole number of minor units (pence, cents)")
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
            raise ValueError("currency must be a three-letter code such as GBP")
        if reference is not None and find_card_data(str(reference)):
            raise ValueError("reference looks like a card number; card data belongs in the keyed fields only")
        if idempotency_key is not None and not (isinstance(idempotency_key, str) and 8 <= len(idempotency_key) <= 128):
            raise ValueError("idempotency_key must be a string of 8-128 characters")
        if not callable(getattr(gateway, "submit", None)):
            raise TypeError("gateway must have a submit(request) method")
        self.gateway = gateway
        self.gateway_name = str(getattr(gateway, "name", type(gateway).__name__))
        self.amount, self.currency, self.reference = amount, currency.upper(), reference
        self.call_id, self.agent_id = call_id, agent_id
        self.session_id = session_id or "sess_" + _letters(16)
        # One key per payment, reused by every retry.  Pass the key of an earlier session to retry the
        # same payment after an outage without risking a second charge.
        self.idempotency_key = idempotency_key or new_idempotency_key()
        self.policy = policy
        self.limits, self.ledger = limits, ledger
        self._clock, self._today = clock, today
        self._feed = as_feed(on_event, jsonl)
        self._audit = AuditTrail(audit) if isinstance(audit, (str, os.PathLike)) else audit
        # Start the shared worker threads here, on the control thread, not in feed() on the media thread.
        self._runner = SerialRunner(executor or event_pool(), name=f"payment session {self.session_id}")
        self._gateway_executor = gateway_executor or gateway_pool()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._events: List[Dict[str, Any]] = []
        self._seq = 0
        self._buf = bytearray()
        self._values: Dict[str, bytearray] = {}
        self._field_index = 0
        self._attempt = 1
        # what the audit summary says about each field; the session's own bookkeeping (when a field was
        # first started, when approval and submission began) lives in private attributes, not in here
        self._field_log: Dict[str, Dict[str, Any]] = {
            spec.name: {"field": spec.name, "outcome": "not_reached", "attempts": 0, "clears": 0}
            for spec in self.fields}
        self._field_first_started: Dict[str, float] = {}
        self._approval_started_at: Optional[float] = None
        self._submit_started_at: Optional[float] = None
        self._brand: Optional[str] = None
        self._last4: Optional[str] = None
        self._typed_amount: Optional[int] = None
        self._decision: Optional[LimitDecision] = None
        self._approver: Optional[str] = None
        self._reserved: Optional[tuple] = None
        self._result: Optional[GatewayResult] = None
        self._reason = ""
        self._ignored_keys = 0
        self._handed_off = False
        self._owns_feed = not isinstance(on_event, AgentFeed)
        self._t0 = self._now()
        self._timings: Dict[str, float] = {}
        self._state = COLLECTING
        with self._lock:
            self._emit("session_started", fields=[s.name for s in self.fields], amount=amount,
                       currency=self.currency, reference=reference)
            self._audit_append({"event": "session_started", **self._audit_ids(), "amount": amount,
                                "currency": self.currency, "reference": reference, "gateway": self.gateway_name,
                                "fields": [s.name for s in self.fields]})
            if amount is not None and limits is not None:
                decision = self._check_limits(amount)
                if decision.action == "refuse":  # say so before the caller keys in a card for nothing
                    self._refuse(decision)
                    return
            self._start_field(self._t0)

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> str:
        return self._state

    @property
    def fields(self) -> Sequence[FieldSpec]:
        return self.policy.fields

    @property
    def interdigit_timeout_s(self) -> float:
        return self.policy.interdigit_timeout_s

    @property
    def field_timeout_s(self) -> float:
        return self.policy.field_timeout_s

    @property
    def max_attempts(self) -> int:
        return self.policy.max_attempts

    @property
    def approval_timeout_s(self) -> float:
        return self.policy.approval_timeout_s

    @property
    def finished(self) -> bool:
        return self._state in TERMINAL_STATES

    @property
    def events(self) -> List[Dict[str, Any]]:
        """The masked agent-feed events so far (copies, JSON-ready)."""
        with self._lock:
            return [dict(event) for event in self._events]

    @property
    def result(self) -> Optional[GatewayResult]:
        return self._result

    @property
    def current_field(self) -> Optional[str]:
        if self._state != COLLECTING:
            return None
        return self.fields[self._field_index].name

    def feed(self, event) -> None:
        """Take one key press.  Cheap, thread-safe, never blocks on I/O and never raises.

        Start notifications (``end is None``) are ignored: each key counts once, on its complete event.
        """
        try:
            if getattr(event, "end", None) is None:
                return
            digit = event.digit
            now = self._now()
            with self._lock:
                if self._state != COLLECTING:
                    self._ignored_keys += 1
                    return
                self._apply_timeouts(now)
                if self._state != COLLECTING:
                    self._ignored_keys += 1
                    return
                if digit == "*":
                    self._clear_field(now)
                elif digit == "#":
                    self._end_key(now)
                elif isinstance(digit, str) and len(digit) == 1 and "0" <= digit <= "9":
                    self._add_digit(digit, now)
                else:
                    self._ignored_keys += 1
        except Exception as exc:  # fail closed: wipe and stop, never disturb the call
            self._internal_error(exc)

    def poll(self, now: Optional[float] = None) -> str:
        """Apply timeouts (call every few hundred ms, e.g. from the media loop); returns the state."""
        try:
            with self._lock:
                self._apply_timeouts(self._now() if now is None else now)
        except Exception as exc:
            self._internal_error(exc)
        return self._state

    def cancel(self, reason: str = "cancelled") -> bool:
        """Abandon the session (caller hung up, agent cancelled).  False once the card is with the gateway
        or the session already ended: a hand-off in flight cannot be recalled."""
        with self._lock:
            if self.finished or self._state == SUBMITTING:
                return False
            self._finish(ABANDONED, reason)
            return True

    def approve(self, supervisor_id: str) -> bool:
        """A supervisor approves a payment over the agent's limit; False if none is waiting."""
        with self._lock:
            if self._state != AWAITING_APPROVAL:
                return False
            self._approver = str(supervisor_id)
            self._timings["approval_ms"] = self._ms(self._now() - self._approval_started_at)
            self._approval_started_at = None
            self._emit("approval_granted", supervisor=self._approver)
            self._submit()
            return True

    def reject(self, supervisor_id: str) -> bool:
        """A supervisor declines a payment over the agent's limit; False if none is waiting."""
        with self._lock:
            if self._state != AWAITING_APPROVAL:
                return False
            self._approver = str(supervisor_id)
            self._finish(REFUSED, "a supervisor declined the payment over the agent's limit")
            return True

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the session ended and its events and audit records are delivered.

        For tests and for the code that owns the call, never for the media thread.  False on timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._done.wait(timeout):
            return False
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._runner.wait_idle(remaining)

    def __repr__(self) -> str:
        return (f"PaymentSession(id={self.session_id}, state={self._state}, field={self.current_field}, "
                f"gateway={self.gateway_name}, card={self._brand or '-'} {self._last4 or ''})")

    # ------------------------------------------------------------------ internals (lock held)

    def _now(self) -> float:
        return float(self._clock())

    @staticmethod
    def _ms(seconds: float) -> int:
        return int(round(seconds * 1000))

    def _context(self) -> FieldContext:
        return FieldContext(brand=self._brand, today=self._today())

    def _emit(self, kind: str, **data: Any) -> None:
        event = {"type": kind, "seq": self._seq, "t": round(self._now() - self._t0, 3),
                 "session": self.session_id, "call_id": self.call_id, "agent_id": self.agent_id, **data}
        self._seq += 1
        self._events.append(event)
        self._runner.submit(self._feed.deliver, dict(event))

    def _audit_ids(self) -> Dict[str, Any]:
        return {"session_id": self.session_id, "call_id": self.call_id, "agent_id": self.agent_id}

    def _audit_append(self, record: Dict[str, Any]) -> None:
        if self._audit is not None:
            self._runner.submit(self._write_audit, record)

    def _write_audit(self, record: Dict[str, Any]) -> None:  # worker thread
        try:
            self._audit.append(record)
        except Exception as exc:  # AuditError text is ours; anything else: type only
            reason = str(exc) if isinstance(exc, AuditError) else f"audit write failed ({type(exc).__name__})"
            logger.error("session %s: %s", self.session_id, reason)
            with self._lock:
                self._emit("audit_error", reason=reason)

    def _start_field(self, now: float) -> None:
        spec = self.fields[self._field_index]
        wipe(self._buf)
        self._field_started_at = now
        self._last_digit_at: Optional[float] = None
        entry = self._field_log[spec.name]
        entry["attempts"] = self._attempt
        self._field_first_started.setdefault(spec.name, now)
        logger.debug("session %s: field %s started (attempt %d of %d)", self.session_id, spec.name,
                     self._attempt, self.max_attempts)
        self._emit("field_started", field=spec.name, label=spec.label, attempt=self._attempt,
                   max_attempts=self.max_attempts)

    def _add_digit(self, digit: str, now: float) -> None:
        spec = self.fields[self._field_index]
        self._buf.append(ord(digit))
        self._last_digit_at = now
        self._emit("field_progress", field=spec.name, digits=len(self._buf))
        if spec.is_finished(self._buf.decode("ascii"), self._context()):
            self._finish_field(now, "length")

    def _clear_field(self, now: float) -> None:
        spec = self.fields[self._field_index]
        wipe(self._buf)
        self._field_started_at, self._last_digit_at = now, None
        self._field_log[spec.name]["clears"] += 1
        self._emit("field_cleared", field=spec.name)

    def _end_key(self, now: float) -> None:
        spec = self.fields[self._field_index]
        if self._buf:
            self._finish_field(now, "#")
        elif spec.optional:
            self._field_log[spec.name].update(outcome="skipped", finished_by="#")
            self._emit("field_complete", field=spec.name, valid=True, skipped=True, finished_by="#")
            self._next_field(now)
        # A lone '#' on a required field is ignored: callers often press '#' after a field that
        # finished by itself (expiry after 4 digits), and that must not cost them an attempt.

    def _finish_field(self, now: float, finished_by: str) -> None:
        spec = self.fields[self._field_index]
        entry = self._field_log[spec.name]
        digits = self._buf.decode("ascii")
        problem = spec.check(digits, self._context())
        entry["finished_by"] = finished_by
        if problem is not None:
            wipe(self._buf)
            entry["outcome"] = "invalid"
            entry["reason"] = problem
            self._emit("field_complete", field=spec.name, valid=False, reason=problem, finished_by=finished_by)
            self._retry_or_end(now, FAILED_VALIDATION, f"{spec.label}: {problem}")
            return
        extra: Dict[str, Any] = {}
        if spec.name == "card_number":
            self._brand, self._last4 = card_brand(digits) or "unknown", digits[-4:]
            extra = {"brand": self._brand, "last4": self._last4}
        elif spec.name == "amount":
            self._typed_amount = int(digits)
            extra = {"amount": self._typed_amount}
        del digits
        self._values[spec.name], self._buf = self._buf, bytearray()
        entry.update(outcome="valid", duration_ms=self._ms(now - self._field_first_started.get(spec.name, now)))
        entry.pop("reason", None)
        self._emit("field_complete", field=spec.name, valid=True, finished_by=finished_by, **extra)
        self._next_field(now)

    def _retry_or_end(self, now: float, outcome: str, reason: str) -> None:
        if self._attempt >= self.max_attempts:
            self._finish(outcome, reason)
        else:
            self._attempt += 1
            self._start_field(now)

    def _next_field(self, now: float) -> None:
        self._field_index += 1
        self._attempt = 1
        if self._field_index < len(self.fields):
            self._start_field(now)
        else:
            self._begin_submission(now)

    def _apply_timeouts(self, now: float) -> None:
        if self._state == COLLECTING:
            if self._buf and self._last_digit_at is not None and \
                    now - self._last_digit_at >= self.interdigit_timeout_s:
                self._finish_field(now, "timeout")
            elif now - self._field_started_at >= self.field_timeout_s:
                spec = self.fields[self._field_index]
                wipe(self._buf)
                self._field_log[spec.name]["outcome"] = "timeout"
                self._emit("field_timeout", field=spec.name, attempt=self._attempt)
                self._retry_or_end(now, TIMED_OUT, f"{spec.label}: nothing keyed in time")
        elif self._state == AWAITING_APPROVAL:
            if now - self._approval_started_at >= self.approval_timeout_s:
                self._finish(TIMED_OUT, "no supervisor approval in time")

    def _final_amount(self) -> Optional[int]:
        return self.amount if self.amount is not None else self._typed_amount

    def _check_limits(self, amount: Optional[int]) -> LimitDecision:
        self._decision = self.limits.check(self.agent_id, amount, self.currency, self.ledger, self._today())
        return self._decision

    def _refuse(self, decision: LimitDecision) -> None:
        self._emit("limit_refused", amount=self._final_amount(), limit=decision.limit, reason=decision.reason)
        self._finish(REFUSED, decision.reason)

    def _begin_submission(self, now: float) -> None:
        amount = self._final_amount()
        if self.limits is not None:
            decision = self._check_limits(amount)
            if decision.action == "refuse":
                self._refuse(decision)
                return
            if decision.action == "approval":
                self._state = AWAITING_APPROVAL
                self._approval_started_at = now
                self._emit("approval_required", amount=amount, limit=decision.limit, reason=decision.reason)
                return
        self._submit()

    def _submit(self) -> None:
        card = None
        values = self._values
        try:
            if "card_number" in values:
                card = CardDetails(values["card_number"], values.get("expiry"), values.get("security_code"))
            others = {name: buf.decode("ascii") for name, buf in values.items()
                      if name not in CARD_FIELDS and name != "amount"}
        except ValueError as exc:  # e.g. a custom card field shorter than a PAN: fail closed, send nothing
            self._finish(ERROR, f"cannot build the card details ({exc})")
            return
        finally:
            for buffer in values.values():
                wipe(buffer)
            values.clear()
        self._state = SUBMITTING
        self._submit_started_at = self._now()
        amount = self._final_amount()
        request = PaymentRequest(self.idempotency_key, card, amount, self.currency, self.reference,
                                 self.call_id, self.agent_id, self.session_id, others)
        if self.ledger is not None and amount is not None and self.agent_id is not None:
            self._reserved = (self.agent_id, self._today(), self.currency, amount)
            self.ledger.add(*self._reserved)
        self._emit("submitting", gateway=self.gateway_name)
        self._handed_off = True
        # Through the serial runner: the audit records queued before this one are written first, and the
        # card goes to the gateway only once this payment's own audit record is on disk.
        self._runner.submit(self._audited_hand_off, request)

    def _audited_hand_off(self, request: PaymentRequest) -> None:  # serial runner thread
        """Write the 'submitting' audit record, then start the gateway hand-off.

        No audit, no payment: if the trail cannot be written (disk full, read-only, removed), the card is
        wiped, nothing is sent, and the session ends ``refused`` (PCI DSS v4.0 req. 10.2: every access to
        cardholder data is logged).
        """
        card = request.card
        if self._audit is not None:
            try:
                self._audit.append({"event": "payment_submitting", **self._audit_ids(),
                                    "gateway": self.gateway_name, "amount": request.amount,
                                    "currency": request.currency,
                                    "brand": card.brand if card is not None else None,
                                    "last4": card.last4 if card is not None else None})
            except Exception as exc:  # AuditError, OSError, anything: refuse rather than pay unaudited
                if card is not None:
                    card.wipe()
                reason = "audit trail cannot be written: payment refused, nothing was sent"
                logger.error("session %s: %s (%s)", self.session_id, reason, type(exc).__name__)
                with self._lock:
                    self._release_reservation()
                    self._emit("audit_error", reason=reason)
                    self._finish(REFUSED, reason)
                return
        try:
            self._gateway_executor.submit(self._hand_off, request)
        except RuntimeError:
            if card is not None:
                card.wipe()
            with self._lock:
                self._on_result(GatewayResult("error", message="could not start the gateway hand-off",
                                              gateway=self.gateway_name))

    def _release_reservation(self) -> None:
        """Take a reserved amount back out of the agent's daily total (the payment was not approved)."""
        if self._reserved is not None:
            agent, day, currency, amount = self._reserved
            self.ledger.add(agent, day, currency, -amount)
            self._reserved = None

    def _hand_off(self, request: PaymentRequest) -> None:  # gateway pool thread: may block for seconds
        card = request.card
        try:
            result = self.gateway.submit(request)
            if not isinstance(result, GatewayResult):
                result = GatewayResult("error", message="gateway returned no result", gateway=self.gateway_name)
            else:
                token = result.token
                if token is not None and card is not None and card.redact(token) != token:
                    result = GatewayResult("error", message="gateway returned card data as a token",
                                           gateway=self.gateway_name)
                elif card is not None:
                    result = GatewayResult(result.status, token, result.authorisation,
                                           _safe_text(result.message, card), result.attempts,
                                           result.gateway or self.gateway_name)
        except GatewayUnavailable as exc:
            result = GatewayResult("unavailable", message=_safe_text(str(exc), card), gateway=self.gateway_name)
        except GatewayError as exc:
            result = GatewayResult("error", message=_safe_text(str(exc), card), gateway=self.gateway_name)
        except Exception as exc:  # a plugin's own exception text could hold anything: type only
            result = GatewayResult("error", message=f"gateway failed ({type(exc).__name__})",
                                   gateway=self.gateway_name)
        finally:
            if card is not None:
                card.wipe()  # hand-off done: drop the card data (best effort, see card.py)
        with self._lock:
            self._on_result(result)

    def _on_result(self, result: GatewayResult) -> None:
        self._result = result
        started = self._submit_started_at if self._submit_started_at is not None else self._now()
        self._submit_started_at = None
        self._timings["gateway_ms"] = self._ms(self._now() - started)
        self._emit("gateway_result", status=result.status, token=result.token,
                   authorisation=result.authorisation, message=result.message, attempts=result.attempts)
        if result.status != "approved":
            self._release_reservation()  # only approved payments count toward the day
        self._finish(_RESULT_OUTCOME[result.status], result.message or result.status)

    def _finish(self, outcome: str, reason: str) -> None:
        if self.finished:
            return
        self._state, self._reason = outcome, reason
        wipe(self._buf)
        for buffer in self._values.values():
            wipe(buffer)
        self._values.clear()
        self._approval_started_at = None
        self._timings["total_ms"] = self._ms(self._now() - self._t0)
        logger.info("session %s ended: %s", self.session_id, outcome)
        self._emit("session_ended", outcome=outcome, reason=reason)
        self._audit_append(self._summary())
        if self._owns_feed:
            self._runner.submit(self._feed.close)
        self._runner.submit(self._done.set)

    def _summary(self) -> Dict[str, Any]:
        result = self._result
        fields = []
        for spec in self.fields:
            fields.append(dict(self._field_log[spec.name]))
        decision = self._decision
        return {
            "event": "session_ended", **self._audit_ids(), "outcome": self._state, "reason": self._reason,
            "amount": self._final_amount(), "currency": self.currency, "reference": self.reference,
            "gateway": self.gateway_name, "idempotency_key": self.idempotency_key, "fields": fields,
            "brand": self._brand, "last4": self._last4,
            "token": result.token if result else None,
            "gateway_status": result.status if result else None,
            "authorisation": result.authorisation if result else None,
            "gateway_attempts": result.attempts if result else 0,
            "limit": None if decision is None else {"action": decision.action, "reason": decision.reason,
                                                    "limit": decision.limit},
            "approver": self._approver,
            "timings_ms": dict(self._timings),
        }

    def _internal_error(self, exc: BaseException) -> None:
        logger.error("session %s: internal error (%s); session failed closed", self.session_id,
                     type(exc).__name__)
        try:
            with self._lock:
                if not self.finished and not self._handed_off:
                    self._finish(ERROR, f"internal error ({type(exc).__name__})")
        except Exception:  # pragma: no cover - last resort: at least the buffers are gone
            wipe(self._buf)
