# SPDX-License-Identifier: GPL-2.0-or-later
"""A bridge's state without a SIP stack: one customer call + one agent call, their states, hold relays.

The B2BUA in :mod:`dtmfguard.sip.pj.b2bua` drives it from pjsua2's callbacks and sends what it decides; the
rules themselves live here, so they are tested without pjsua2 (``tests/test_bridge.py``).

The call's life (:class:`BridgeState`)::

    incoming -> calling-agent -> ringing -> answering-customer -> connected -> ending -> ended
        \\-> refusing (403/404/503 without an agent leg) ----------------------------------/
    (calling-agent may skip ringing; any live state may go to ending or ended)

A late event on the wire (the agent's 200 crossing the customer's CANCEL, the customer's ACK after the
agent's BYE) cannot bring an ending call back: such a move is ignored and logged.  Any other move the
table does not hold is a programming error and raises :class:`ValueError`.

Per leg (:class:`LegState`): whether it is gone, whether its remote has put us on hold (the level of its
last offer, RFC 3264 §8.4), the hold or resume still to send on it (:class:`HoldRelay`) and whether its
audio is SRTP.  Hold relays follow the level, never the event: a session refresh that still says
``sendonly`` changes no level and is not relayed, and a relayed hold that a peer mirrors back stops there.
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BridgeState", "TRANSITIONS", "LegState", "HoldRelay", "Bridge", "ROLES", "other_role",
           "sdp_offers_hold", "final_code_for_customer", "HOLD_ATTEMPTS", "HOLD_RETRY_S", "HOLD_GLARE_S"]

log = logging.getLogger(__name__)

#: the two legs of a bridge
ROLES = ("customer", "agent")

#: tries per hold relay: pjsip takes one INVITE transaction at a time per dialog (RFC 3261 §14.1), so a
#: relay waits while the other leg has one in progress, and a 491 (both sides re-INVITEd at once) is retried
HOLD_ATTEMPTS = 5
HOLD_RETRY_S = 0.2  # pending transaction on the leg: try again soon
HOLD_GLARE_S = 1.0  # refused (e.g. 491): RFC 3261 §14.1 asks for a wait of up to 2-4 s; 1 s keeps it short


class BridgeState(enum.StrEnum):
    """Where a bridge is in its life.  The values are the control API's words (``str(state)`` gives them)."""

    INCOMING = "incoming"  # the customer's INVITE arrived
    REFUSING = "refusing"  # answered with a final failure, no agent leg
    CALLING_AGENT = "calling-agent"  # the agent leg's INVITE is out
    RINGING = "ringing"  # the agent side rings (180) or plays early media (183)
    ANSWERING_CUSTOMER = "answering-customer"  # the agent answered; the customer's 200 is out
    CONNECTED = "connected"  # both legs up (the customer's ACK arrived)
    ENDING = "ending"  # one leg has ended, the other is being ended
    ENDED = "ended"  # both legs ended

    @property
    def live(self) -> bool:
        """Not ending or ended."""
        return self not in (BridgeState.ENDING, BridgeState.ENDED)


_S = BridgeState
#: the moves a bridge may make (staying in a state is always allowed)
TRANSITIONS: dict[BridgeState, frozenset] = {
    _S.INCOMING: frozenset({_S.REFUSING, _S.CALLING_AGENT, _S.ENDING, _S.ENDED}),
    _S.REFUSING: frozenset({_S.ENDING, _S.ENDED}),
    _S.CALLING_AGENT: frozenset({_S.RINGING, _S.ANSWERING_CUSTOMER, _S.ENDING, _S.ENDED}),
    _S.RINGING: frozenset({_S.ANSWERING_CUSTOMER, _S.ENDING, _S.ENDED}),
    _S.ANSWERING_CUSTOMER: frozenset({_S.CONNECTED, _S.ENDING, _S.ENDED}),
    _S.CONNECTED: frozenset({_S.ENDING, _S.ENDED}),
    _S.ENDING: frozenset({_S.ENDED}),
    _S.ENDED: frozenset(),
}
del _S


def other_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"no such leg: {role!r}")
    return "agent" if role == "customer" else "customer"


@dataclass
class HoldRelay:
    """A hold (``want``) or resume to send on one leg because the other leg's remote asked for it."""

    want: bool
    since: float  # monotonic: when the other leg's offer arrived (relay time is measured from here)
    sent: float = 0.0  # monotonic: when the re-INVITE went out; 0 = not (yet) sent
    attempts: int = 0
    retry_at: float = 0.0


@dataclass
class LegState:
    """One leg of a bridge as the state machine sees it (the SIP stack's call object is the bridge's
    ``customer`` / ``agent``)."""

    role: str
    gone: bool = False  # its call has ended (DISCONNECTED)
    held_by_remote: bool = False  # its remote's last offer put us on hold
    hold_relay: HoldRelay | None = None  # a hold / resume still to send on this leg
    srtp: bool | None = None  # its audio stream is SRTP (True), plain RTP (False), not known yet (None)


def _legs() -> dict:
    return {role: LegState(role) for role in ROLES}


@dataclass
class Bridge:
    """One customer <-> agent pair and its media pipeline.  Fields are read by the control API."""

    id: str
    customer: Any  # the customer leg's call object (the SIP stack's)
    agent: Any = None  # the agent leg's call object
    target: str = ""
    pipeline: Any = None  # media.pipeline.CallPipeline
    port: Any = None  # the SIP stack's media port feeding the pipeline
    state: BridgeState = BridgeState.INCOMING
    created: float = field(default_factory=time.time)  # wall clock, for display only
    #: monotonic: timeouts must not jump with the wall clock (NTP steps, manual changes)
    created_mono: float = field(default_factory=time.monotonic)
    connected_at: float | None = None
    ended_at: float | None = None
    reason: str = ""
    agent_status: int = 0
    timed_out: bool = False
    customer_answered: bool = False
    #: per leg: gone, held by its remote, the hold relay to send on it, SRTP (:class:`LegState`)
    legs: dict = field(default_factory=_legs)
    wired: tuple = ()
    session: Any = None
    payment: dict = field(default_factory=dict)
    #: RFC 4733 key rate limit of the customer leg (media thread only; eventlimit.py)
    key_limit: Any = None
    # -- secure mode (mask_mode "secure"): switch requests, their measured switch times, relay counters
    secure_requested: float = 0.0  # monotonic time of the last on-request not yet seen by the clock thread
    secure_source: str = ""  # "api", "sip-info", "payment"
    secure_manual_since: float = 0.0  # monotonic: secure mode without a payment started (for its timeout)
    secure_switch_ms: list = field(default_factory=list)  # request -> first frame processed in secure mode
    secure_effective_at: list = field(default_factory=list)  # wall clock of those first frames
    relay: dict = field(default_factory=lambda: {"sent": 0, "rfc4733": 0, "sip-info": 0, "errors": 0,
                                                 "max_latency_ms": 0.0})
    alerts: list = field(default_factory=list)  # card-run alerts (no digits), read by the control feed
    early_media: bool = False  # the agent side answered 183: early media bridged to the customer
    transfer: Any = None  # the new agent leg while a REFER from the agent side is being carried out
    transfer_started: float = 0.0  # monotonic: when that REFER arrived
    transfers: list = field(default_factory=list)  # completed transfers: ms from REFER to the new agent's answer
    secure_keys: Any = None  # relay.KeySequence: the agent's phone switches secure mode (secure.keys_on/off)
    agent_pai: list = field(default_factory=list)  # the agent side's P-Asserted-Identity, passed back
    pai_sent: list = field(default_factory=list)  # the agent-side identity the customer was last given
    jitter: Any = None  # sip.pj.jbuf.StreamJitter: the customer stream's jitter-buffer counters per frame
    #: the agent leg's From (localUri, "" = the guard's) and the headers copied from the customer's INVITE
    identity: tuple = ("", ())
    #: what the PBX/CTI knows the call by (customer leg's Call-ID, a configured header): control API lookups
    correlation: dict = field(default_factory=dict)

    def __setattr__(self, name: str, value) -> None:
        if name == "state":
            value = BridgeState(value)  # an unknown name raises ValueError
            old = self.__dict__.get("state")
            if old is not None and value != old and value not in TRANSITIONS[old]:
                if not old.live:  # a late event on the wire: an ending call stays ending
                    log.info("%s: %s ignored, the call is %s", self.__dict__.get("id", "?"), value, old)
                    return
                raise ValueError(f"bridge {self.__dict__.get('id', '?')}: no move from {old} to {value}")
        object.__setattr__(self, name, value)

    # -- per leg ----------------------------------------------------------------------------------------
    @property
    def customer_gone(self) -> bool:
        return self.legs["customer"].gone

    @customer_gone.setter
    def customer_gone(self, gone: bool) -> None:
        self.legs["customer"].gone = bool(gone)

    @property
    def agent_gone(self) -> bool:
        return self.legs["agent"].gone

    @agent_gone.setter
    def agent_gone(self, gone: bool) -> None:
        self.legs["agent"].gone = bool(gone)

    def srtp(self) -> dict:
        """{role: SRTP True / False / None (not known)}, as the control API shows it."""
        return {role: leg.srtp for role, leg in self.legs.items()}

    # -- hold relay (RFC 3264 §8.4) ---------------------------------------------------------------------
    @property
    def hold_relays(self) -> dict:
        """The hold / resume relays still to send, by the leg they go to (a view: the relays themselves)."""
        return {role: leg.hold_relay for role, leg in self.legs.items() if leg.hold_relay is not None}

    def remote_offer(self, role: str, held: bool, t_offer: float) -> str | None:
        """The remote of leg ``role`` offered hold (``held``) or resume at monotonic ``t_offer``.  Returns the
        leg a relay is now due on, or None when the level did not change (or the call is ending)."""
        leg = self.legs[role]
        if not self.state.live or leg.held_by_remote == held:
            return None
        leg.held_by_remote = held
        other = other_role(role)
        self.legs[other].hold_relay = HoldRelay(want=held, since=t_offer)  # supersedes one in flight
        return other

    def hold_relays_due(self, now: float) -> list:
        """[(role, relay)] to send now: none before both legs are up (they wait), none once the call ends
        (they are dropped), and none sent and not answered yet or waiting for their retry time."""
        if self.state != BridgeState.CONNECTED:
            if not self.state.live:
                for leg in self.legs.values():
                    leg.hold_relay = None
            return []
        return [(role, r) for role, r in self.hold_relays.items() if not r.sent and now >= r.retry_at]

    def hold_relay_failed(self, role: str, relay: HoldRelay, retry_at: float) -> bool:
        """The relay could not be sent or was refused: try again at ``retry_at``.  True when it has had
        :data:`HOLD_ATTEMPTS` tries and is given up."""
        relay.attempts += 1
        relay.sent = 0.0
        relay.retry_at = retry_at
        if relay.attempts >= HOLD_ATTEMPTS:
            if self.legs[role].hold_relay is relay:
                self.legs[role].hold_relay = None
            return True
        return False

    def reinvite_answered(self, role: str, status: int, now: float) -> tuple:
        """A re-INVITE sent on leg ``role`` got its final ``status``.  Returns (relay, outcome): outcome is
        "done" (2xx: the relay is over), "retry" (refused: sent again after :data:`HOLD_GLARE_S`), "gave-up"
        (refused, out of tries) or "" (no relay of ours was waiting for that answer)."""
        relay = self.legs[role].hold_relay
        if relay is None or not relay.sent:
            return relay, ""  # not a relay (e.g. the first INVITE to the agent), or a superseded one
        if 200 <= status < 300:
            self.legs[role].hold_relay = None
            return relay, "done"
        # 491 glare, 488 ...: pjsua has reverted its own hold state; try again a little later
        return relay, "gave-up" if self.hold_relay_failed(role, relay, now + HOLD_GLARE_S) else "retry"

    def summary(self) -> dict:
        stats = self.pipeline.snapshot() if self.pipeline is not None else {}
        port = dict(self.port.stats) if self.port is not None else {}
        return {"id": self.id, "state": str(self.state), "agent": self.target, "created": self.created,
                "connected_at": self.connected_at, "ended_at": self.ended_at, "reason": self.reason,
                "masking": self.pipeline.mask_mode if self.pipeline else None, "srtp": self.srtp(),
                "payment": getattr(self.session, "state", None) if self.session is not None else None,
                "secure": self.pipeline.secure if self.pipeline is not None else None,
                "secure_switch_ms": list(self.secure_switch_ms[-8:]),
                "secure_effective_at": list(self.secure_effective_at[-8:]), "relay": dict(self.relay),
                "alerts": len(self.alerts),
                "media": {"frames": stats.get("frames", 0), "errors": stats.get("errors", 0) + port.get("errors", 0),
                          "digits": stats.get("digits", 0), "missing_frames": port.get("missing", 0),
                          # the customer's frames its jitter buffer concealed (lost or late packets) or dropped:
                          # an in-band key can be lost with them
                          "customer_frames_lost": port.get("jb_concealed", 0) + port.get("jb_dropped", 0)}}


def sdp_offers_hold(sdp: str) -> bool:
    """True when an SDP offer puts its sender's audio on hold (RFC 3264 §8.4).

    Hold: the first audio stream is a=sendonly or a=inactive (a media-level attribute overrides the
    session level), or its connection address is 0.0.0.0 (RFC 2543 style, still sent by some phones).
    A disabled audio stream (port 0) or no audio stream is not hold.
    """
    section = "session"
    direction = {"session": "", "audio": ""}
    address = {"session": "", "audio": ""}
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if section == "audio":
                break  # only the first audio stream counts
            fields = line[2:].split()
            section = "audio" if fields and fields[0] == "audio" else "other"
            if section == "audio" and len(fields) > 1 and fields[1] == "0":
                return False
        elif section != "other":
            if line in ("a=sendonly", "a=inactive", "a=sendrecv", "a=recvonly"):
                direction[section] = line[2:]
            elif line.startswith("c=") and line.split():
                address[section] = line.split()[-1]
    if section != "audio":
        return False
    held_direction = (direction["audio"] or direction["session"]) in ("sendonly", "inactive")
    return held_direction or (address["audio"] or address["session"]) == "0.0.0.0"


def final_code_for_customer(agent_status: int, timed_out: bool) -> int:
    """The customer's answer when the agent leg failed: the agent side's meaning, kept (issue 18).

    503 is the guard's own capacity answer only: a front door fails over on it (RFC 3261 §21.5.4), and
    every worker would call the same agent side, so an agent side that fails with 5xx (its own, or pjsip's
    for a transport or TLS failure on the way to it) gives 500, as §21.5.4 asks of a proxy that gets a 503;
    no answer gives 480.  4xx and 6xx pass through (488 stays 488, 603 stays 603), except those about the
    guard-agent hop itself: 401/407 (credentials the customer cannot give) become 403.
    """
    if timed_out or agent_status in (408, 480, 487) or not agent_status:
        return 480  # Temporarily Unavailable: no answer
    if agent_status in (401, 407):
        return 403
    if 400 <= agent_status < 500 or 600 <= agent_status < 700:
        return agent_status
    return 500
