# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-agent authority limits: how much one agent may take per payment and per day.

Contact-centre fraud prevention starts with clear authorities for agents (the same idea as PCI DSS v4.0
Req. 7.2: access by job function, least privilege).  An agent's payment above either limit is refused,
or waits for a supervisor's approval, as the agent's entry in the configuration says; either way the
agent feed states it.  An agent without an entry uses ``default``; with neither, payments with an amount
are refused (fail closed).  Amounts are integers in minor units (pence, cents), never floats.

Configuration (JSON, or TOML on Python 3.11+)::

    {"currency": "GBP",
     "default": {"per_payment": 50000, "per_day": 200000, "over_limit": "refuse"},
     "agents": {"a17": {"per_payment": 250000, "per_day": 1000000, "over_limit": "approval"}}}

Daily totals are kept by :class:`DailyLedger` (reserve when a payment is handed off, commit on success,
release otherwise) and can be rebuilt after a restart from the audit trail.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple, Union

from .states import COMPLETED

__all__ = ["AgentLimit", "AgentLimits", "DailyLedger", "LimitDecision", "LimitsError"]

OVER_LIMIT_ACTIONS = ("refuse", "approval")


class LimitsError(ValueError):
    """The limits configuration is invalid."""


@dataclass(frozen=True)
class AgentLimit:
    per_payment: Optional[int] = None
    per_day: Optional[int] = None
    over_limit: str = "refuse"

    @classmethod
    def from_mapping(cls, data: Mapping, where: str) -> "AgentLimit":
        if not isinstance(data, Mapping):
            raise LimitsError(f"{where}: must be a table/object")
        unknown = set(data) - {"per_payment", "per_day", "over_limit"}
        if unknown:
            raise LimitsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        for key in ("per_payment", "per_day"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise LimitsError(f"{where}.{key}: must be a whole number of minor units >= 0")
        action = data.get("over_limit", "refuse")
        if action not in OVER_LIMIT_ACTIONS:
            raise LimitsError(f"{where}.over_limit: must be one of {', '.join(OVER_LIMIT_ACTIONS)}")
        return cls(data.get("per_payment"), data.get("per_day"), action)


@dataclass(frozen=True)
class LimitDecision:
    """``action`` is allow, refuse or approval; ``reason`` and ``limit`` say which limit and why."""

    action: str
    reason: str = ""
    limit: Optional[int] = None
    used_today: int = 0

    @property
    def allowed(self) -> bool:
        return self.action == "allow"


class DailyLedger:
    """Per-agent, per-day totals in minor units, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: Dict[Tuple[str, _dt.date, str], int] = {}

    def used(self, agent_id: str, day: _dt.date, currency: str) -> int:
        with self._lock:
            return self._totals.get((agent_id, day, currency), 0)

    def add(self, agent_id: str, day: _dt.date, currency: str, amount: int) -> None:
        """Count ``amount`` (negative to release a reservation)."""
        with self._lock:
            key = (agent_id, day, currency)
            self._totals[key] = self._totals.get(key, 0) + amount

    @classmethod
    def from_audit(cls, path: Union[str, os.PathLike]) -> "DailyLedger":
        """Totals of completed payments recorded in an audit trail (session_ended records)."""
        ledger = cls()
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") != "session_ended" or record.get("outcome") != COMPLETED:
                    continue
                amount, agent = record.get("amount"), record.get("agent_id")
                if isinstance(amount, int) and agent:
                    day = _dt.date.fromisoformat(str(record.get("ts", ""))[:10])
                    ledger.add(agent, day, record.get("currency") or "", amount)
        return ledger


class AgentLimits:
    """Limits per agent; :meth:`check` decides for one payment."""

    def __init__(self, agents: Mapping[str, AgentLimit], default: Optional[AgentLimit] = None,
                 currency: Optional[str] = None):
        self.agents = dict(agents)
        self.default = default
        self.currency = currency

    @classmethod
    def from_mapping(cls, data: Mapping) -> "AgentLimits":
        if not isinstance(data, Mapping):
            raise LimitsError("limits configuration must be an object")
        unknown = set(data) - {"currency", "default", "agents"}
        if unknown:
            raise LimitsError(f"unknown top-level key(s) {', '.join(sorted(unknown))}")
        agents_data = data.get("agents", {})
        if not isinstance(agents_data, Mapping):
            raise LimitsError("agents: must be a table/object keyed by agent id")
        agents = {str(name): AgentLimit.from_mapping(value, f"agents.{name}") for name, value in agents_data.items()}
        default = AgentLimit.from_mapping(data["default"], "default") if "default" in data else None
        currency = data.get("currency")
        if currency is not None and not isinstance(currency, str):
            raise LimitsError("currency: must be a currency code like GBP")
        return cls(agents, default, currency)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "AgentLimits":
        """Read a JSON (or, on Python 3.11+, TOML: ``.toml``) limits file."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise LimitsError(f"cannot read limits file {path!r} ({exc.strerror})") from None
        try:
            if path.endswith(".toml"):
                import tomllib

                data = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw)
        except (ValueError, ImportError) as exc:
            raise LimitsError(f"limits file {path!r} is not valid ({type(exc).__name__}: {exc})") from None
        return cls.from_mapping(data)

    def for_agent(self, agent_id: Optional[str]) -> Optional[AgentLimit]:
        return self.agents.get(agent_id, self.default) if agent_id is not None else self.default

    def check(self, agent_id: Optional[str], amount: Optional[int], currency: str,
              ledger: Optional[DailyLedger] = None, day: Optional[_dt.date] = None) -> LimitDecision:
        """Decide whether ``agent_id`` may take ``amount`` now (None: tokenise only, always allowed)."""
        if amount is None:
            return LimitDecision("allow", "no amount: tokenise only")
        limit = self.for_agent(agent_id)
        if limit is None:
            return LimitDecision("refuse", "no payment authority configured for this agent")
        if self.currency is not None and currency != self.currency:
            return LimitDecision(limit.over_limit, f"limits are set in {self.currency}, payment is in {currency}")
        if limit.per_payment is not None and amount > limit.per_payment:
            return LimitDecision(limit.over_limit, "over the agent's per-payment limit", limit.per_payment)
        used = ledger.used(agent_id or "", day or _dt.date.today(), currency) if ledger else 0
        if limit.per_day is not None and used + amount > limit.per_day:
            return LimitDecision(limit.over_limit, "over the agent's daily limit", limit.per_day, used)
        return LimitDecision("allow", "within the agent's limits", None, used)
