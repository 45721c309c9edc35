# SPDX-License-Identifier: GPL-2.0-or-later
"""The relay: an "ng" control server and an RTP relay for many calls on one selector loop.

Control (rtpengine's ng protocol, the subset Kamailio's ``rtpengine`` module uses): each UDP datagram
is ``<cookie> <bencoded dictionary>``; the reply is ``<cookie> <bencoded dictionary>`` with
``result`` = ``ok`` / ``pong`` / ``error`` (+ ``error-reason``).  Commands: ``ping``, ``offer``,
``answer``, ``delete``, ``query``, ``list``, ``statistics``.  A retransmitted request (same cookie)
gets the cached reply, so an offer is never applied twice.

Which leg is the customer (the rule): the party whose SDP arrives in the call's **first offer** (the
``from-tag`` of the initial INVITE, the caller) is the customer; the answerer (``to-tag``) is the
agent.  That is the inbound contact-centre flow (carrier -> Kamailio -> agents).  For outbound
campaigns (the agent calls the customer) start the relay with ``customer="callee"``, or pass the flag
``customer-callee`` in that call's offer (``rtpengine_offer("... customer-callee")``); ``customer-caller``
forces the default per call.  Legs are then tracked by tag, so a re-INVITE from either side (its
from-tag) updates the right leg.

Media: each leg gets an even RTP port and the next odd RTCP port on the relay, facing that party.
Agent -> customer RTP and both RTCP directions are passed through byte for byte (RTCP is not
rewritten: its sender report describes the customer's stream, not the relay's re-timed one).
Customer -> agent: audio packets go into the call's :class:`~.rtp.JitterBuffer` (decoded to 8 kHz),
telephone-event packets into the same timeline and then into
:meth:`CallPipeline.on_rfc4733_packet <dtmfguard.media.pipeline.CallPipeline.on_rfc4733_packet>` (never
forwarded to the agent); one 20 ms tick for all calls takes one frame per call from its buffer, runs
:meth:`~dtmfguard.media.pipeline.CallPipeline.process_customer_frame` and sends the result to the agent as
the relay's own RTP stream (own SSRC, continuous sequence and timestamps).  Addresses latch to the
first packet received on a port (symmetric RTP, for NAT).  A leg whose SDP is RTP/SAVP with an SDES key
is decrypted with that key and encrypted towards that party with the relay's own key (:mod:`.srtp`).

Batched per tick, for CPU (issue 16's capacity goals): between ticks only the control sockets (ng, SIP
INFO) wake the loop; every call's media sockets are read at fixed points, right before each tick and half
a tick earlier (``media_reads_per_tick``), all of them at once (a relay woken per packet paid a wake-up
and a loop pass per few packets).  So agent -> customer packets wait at most half a tick (5 ms on
average) before they are passed on; customer -> agent latency is unchanged (a packet is read before the
tick that plays it).  The customers' G.711 audio of one read is decoded in one table lookup per law, the
tick's frames of all calls of one law are encoded in one, and the tick runs in phases over all calls
(frames, pipelines, encoding, sending), each timed (``statistics()["phase_us"]``).  The cyclic garbage
collector's full passes, which walked every call's objects (20-40 ms at 200 calls: a late tick), skip
call state: it is frozen (``gc.freeze``) soon after a call starts; an ended call is freed by reference
counting (its pipeline breaks its one cycle, :meth:`CallPipeline.close`), and with no call up the relay
collects everything once.

Per-packet work in C (``fast_io``, native/relayio.c, optional): once the Python handlers have checked a
leg's first packets (address latched, payload type, no SRTP), its socket gets a route in the C drain: the
agent's RTP is passed through to the customer byte for byte, the customer's G.711 is decoded there (same
tables), and the tick hands each chunk's frames to one C call that encodes them and sends the relay's
stream to the agents.  Every offer/answer, a codec change, a latch and the end of the call drop the
call's routes (their counters are folded into the legs'), so what changes goes through Python again.  The
bytes sent are the Python path's (tests/test_relay_fastpath.py).

Failing closed: the pipeline turns its own errors into silence; an error anywhere else in a call's tick
sends an encoded silence frame instead, counted; a relay that dies sends nothing at all.  Nothing on a
socket (garbage ng requests, RTP garbage, a flood) can raise out of the loop.
"""
from __future__ import annotations

import collections
import gc
import ipaddress
import itertools
import logging
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import bencode
from .codecs import DECODE_TABLES, ENCODE_TABLES, Codec, g722_available, make_codec
from .rtp import HEADER, JitterBuffer, RtpError, parse_fields
from .sdp import AudioOffer, SdpError, parse_audio, rewrite
from .srtp import LegCrypto, SrtpError, crypto_attribute, parse_crypto
from .srtp import available as srtp_available

try:  # the per-packet socket work in C (native/relayio.c; optional: the Python path below does the same)
    from . import _relay_native

    _relay_native.set_decode_tables(DECODE_TABLES["PCMU"].astype(np.int16).tobytes(),
                               DECODE_TABLES["PCMA"].astype(np.int16).tobytes())
except ImportError:  # no C compiler at install time, or not Linux
    _relay_native = None

__all__ = ["Relay", "RelayCall", "RelayError", "CUSTOMER_RULES"]

log = logging.getLogger(__name__)

CUSTOMER_RULES = ("caller", "callee")
TICK_S = 0.020
FRAME = 160  # samples (and RTP timestamp units) per 20 ms at 8 kHz
_MAX_NG = 65535
_COOKIE_TTL_S = 30.0
_IDLE_PAUSE_S = 1.0  # customer stream silent this long: the relay pauses its stream to the agent
_pack_header = HEADER.pack
#: RFC 4733 §3.2 event codes of the keypad
_EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
_INT16 = np.dtype(np.int16)
_CHUNK = 32  # calls per chunk of a tick's pipelines, encoding and sending
_SHAPE = (FRAME,)
_LAW_INDEX = {"PCMU": 0, "PCMA": 1}  # the G.711 laws as native/relayio.c numbers them
_ENCODE_PAIR = (ENCODE_TABLES["PCMU"], ENCODE_TABLES["PCMA"])


class RelayError(Exception):
    """A request the relay refuses; the message goes back as ``error-reason``."""


class Leg:
    """One party of a call, seen from the relay: its sockets on the relay and its address."""

    __slots__ = ("tag", "role", "rtp", "rtcp", "port", "remote", "remote_rtcp", "offer", "latched", "latched_rtcp",
                 "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_errors", "rtcp_packets", "crypto",
                 "srtp_in", "srtp_out", "crypto_tag", "srtp_errors")

    def __init__(self, tag: str, rtp: socket.socket, rtcp: socket.socket, port: int):
        self.tag = tag
        self.role = "?"
        self.rtp, self.rtcp, self.port = rtp, rtcp, port
        self.remote: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self.offer: AudioOffer | None = None
        self.latched = self.latched_rtcp = False
        self.rx_packets = self.rx_bytes = self.tx_packets = self.tx_bytes = self.rx_errors = self.rtcp_packets = 0
        self.crypto = None  # .srtp.LegCrypto when this party speaks SRTP
        self.srtp_in = self.srtp_out = False  # its packets to us are SRTP / ours to it must be
        self.crypto_tag = 1
        self.srtp_errors = 0

    def set_sdp(self, offer: AudioOffer) -> None:
        self.offer = offer
        self.remote = (offer.address, offer.port)
        self.remote_rtcp = (offer.address, offer.rtcp_port)
        self.latched = self.latched_rtcp = False

    def totals(self) -> dict:
        return {"tag": self.tag, "role": self.role, "local port": self.port,
                "remote": f"{self.remote[0]}:{self.remote[1]}" if self.remote else "",
                "RTP": {"packets received": self.rx_packets, "bytes received": self.rx_bytes,
                        "packets sent": self.tx_packets, "bytes sent": self.tx_bytes, "errors": self.rx_errors,
                        "SRTP": int(self.srtp_in), "SRTP errors": self.srtp_errors},
                "RTCP": {"packets": self.rtcp_packets}}


class RelayCall:
    """One call: two legs, the customer stream's buffer, codec and pipeline (all owned by the loop thread)."""

    def __init__(self, relay: "Relay", call_id: str, short_id: str, customer_rule: str):
        self.relay = relay
        self.call_id = call_id
        self.id = short_id
        self.customer_rule = customer_rule
        self.created = time.time()
        self.last_signal = self.created
        self.legs: dict[str, Leg] = {}
        self.caller: Leg | None = None
        self.callee: Leg | None = None
        self.pipeline: Any = None
        self.session: Any = None
        self.state = "offered"  # offered -> connected -> ended (the control API's words)
        self.reason = ""
        self.jitter = JitterBuffer(FRAME, relay.jitter_ms)
        self.codec: Codec | None = None
        self.codec_pt = -1
        #: the payload type that takes the fast path (the customer's audio codec, checked against both
        #: SDPs); -1 after every offer/answer, until the next audio packet has been checked again
        self.audio_pt = -1
        #: the customer and agent legs (fixed at creation: the rule does not change during a call)
        self.customer_leg: Leg | None = None
        self.agent_leg: Leg | None = None
        self.out_pt = -1
        self.out_ssrc = random.getrandbits(32)
        self.out_seq = random.getrandbits(16)
        self.out_ts = random.getrandbits(32)
        self.out_marker = True
        #: the relay's stream to the agent in C (native/relayio.c ``Out``) while the fast path carries it: it
        #: then holds the sequence, timestamp and marker (given back to out_* when it is dropped)
        self.out: Any = None
        self.last_rx = 0.0
        self.seen_packets, self.seen_at, self.seen_at_wall = 0, time.monotonic(), self.created
        self.stats = {"frames_sent": 0, "silence_sent": 0, "tick_errors": 0, "dropped_pt": 0, "events_in": 0,
                      "info_keys": 0, "keys_to_agent": 0, "keys_not_sent": 0}
        #: mask_mode "secure": keys the pipeline's KeyRelay decided go on to the agent (complete, with their
        #: durations), sent one after the other as RFC 4733 events in the relay's own stream; ``key_event``
        #: is the one being sent: [event code, timestamp, duration in samples, samples sent, end packets sent,
        #: the agent's telephone-event payload type]
        self.keys_out: collections.deque = collections.deque()
        self.key_event: list | None = None
        #: card-run alerts of this call (no digits), for the control API's /calls/<id>/alerts
        self.alerts: list[dict] = []
        #: monotonic time secure mode was switched on by hand (0: off), for the relay's secure.timeout_s
        self.secure_manual_since = 0.0

    @property
    def customer(self) -> Leg | None:
        return self.caller if self.customer_rule == "caller" else self.callee

    @property
    def agent(self) -> Leg | None:
        return self.callee if self.customer_rule == "caller" else self.caller

    #: the control API's call record (dtmfguard.server.control.FeedBook) names the agent and what the PBX knows
    #: the call by; in relay mode Kamailio does the SIP: the agent is not known here, the Call-ID is
    target = ""

    @property
    def correlation(self) -> dict:
        return {"call_id": self.call_id}

    def summary(self) -> dict:
        st = self.pipeline.snapshot() if self.pipeline is not None else {}
        return {"id": self.id, "sip_call_id": self.call_id, "state": self.state, "created": self.created,
                "customer": self.customer_rule, "reason": self.reason,
                "payment": getattr(self.session, "state", None) if self.session is not None else None,
                "media": {"frames": st.get("frames", 0), "errors": st.get("errors", 0) + self.stats["tick_errors"],
                          "digits": st.get("digits", 0), "concealed": self.jitter.stats["concealed"],
                          "late_packets": self.jitter.stats["late"]}}


class _PollAdapter:
    """``select.poll`` with epoll's interface (seconds, ``close``), for hosts without epoll."""

    def __init__(self):
        self._p = select.poll()

    def register(self, fd: int, mask: int) -> None:
        self._p.register(fd, mask)

    def unregister(self, fd: int) -> None:
        self._p.unregister(fd)

    def poll(self, timeout: float):
        return self._p.poll(max(0, int(timeout * 1000 + 0.999)))

    def close(self) -> None:
        pass


class _PortPool:
    """Even RTP ports (RTCP = port + 1) in ``[low, high]``, bound on demand, handed out round-robin."""

    def __init__(self, host: str, low: int, high: int):
        if low < 1024 or high > 65535 or high - low < 3:
            raise ValueError("RTP port range must lie within 1024-65535 and hold at least two port pairs")
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._free = collections.deque(range(low + (low & 1), high, 2))

    def take(self) -> tuple[socket.socket, socket.socket, int]:
        for _ in range(len(self._free)):
            port = self._free.popleft()
            rtp = socket.socket(self.family, socket.SOCK_DGRAM)
            rtcp = socket.socket(self.family, socket.SOCK_DGRAM)
            try:
                rtp.bind((self.host, port))
                rtcp.bind((self.host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                self._free.append(port)
                continue
            for s in (rtp, rtcp):
                s.setblocking(False)
            return rtp, rtcp, port
        raise RelayError("no free RTP port")

    def give(self, port: int) -> None:
        self._free.append(port)


def _check_settings(*, media_address, media_bind, max_calls, call_timeout_s, info_port) -> None:
    """Refuse at start what would only fail at the first call, or never work (a ValueError naming the setting).

    The media address goes into every SDP ``c=`` line the relay writes (RFC 4566 section 5.7: an address, not a
    host name) and is the address the RTP sockets bind to unless ``media_bind`` is given.
    """
    checks = [("media address", media_address, " (name it when the ng address is a host name)")]
    if media_bind is not None:
        checks.append(("media bind address", media_bind, ""))
    for name, value, hint in checks:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"the {name} must be an IPv4 or IPv6 address, got {value!r}{hint}") from None
    if isinstance(max_calls, bool) or not isinstance(max_calls, int) or not 1 <= max_calls <= 100_000:
        raise ValueError(f"max calls must be 1..100000, got {max_calls!r}")
    if not 0.0 < call_timeout_s <= 86_400.0:  # also refuses nan
        raise ValueError(f"the call timeout must be more than 0 and at most 86400 s, got {call_timeout_s!r}")
    if info_port is not None and not 0 <= info_port <= 65_535:
        raise ValueError(f"the SIP INFO port must be 0..65535, got {info_port!r}")


class Relay:
    """The media element.  ``run(stop)`` serves until ``stop`` (a ``threading.Event``) is set.

    ``pipeline_factory(name)`` builds each call's :class:`~dtmfguard.media.pipeline.CallPipeline`.
    """

    def __init__(self, *, ng: tuple[str, int] = ("127.0.0.1", 22222), media_address: str = "127.0.0.1",
                 media_bind: str | None = None, rtp_range: tuple[int, int] = (30000, 39999),
                 jitter_ms: float = 0.0, customer: str = "caller",
                 pipeline_factory: Callable[[str], Any] | None = None, max_calls: int = 1000,
                 session_factory: Callable[..., Any] | None = None, call_timeout_s: float = 60.0,
                 info_port: int | None = None, media_reads_per_tick: int = 2, fast_io: bool = True,
                 secure_timeout_s: float = 900.0):
        if customer not in CUSTOMER_RULES:
            raise ValueError(f"customer must be one of {CUSTOMER_RULES}")
        _check_settings(media_address=media_address, media_bind=media_bind, max_calls=max_calls,
                        call_timeout_s=call_timeout_s, info_port=info_port)
        self.media_address = media_address
        self.customer = customer
        self.jitter_ms = float(jitter_ms)
        self.media_reads_per_tick = max(1, min(int(media_reads_per_tick), 4))
        self.max_calls = int(max_calls)
        self.call_timeout_s = float(call_timeout_s)
        #: secure mode switched on without a payment ends after this (config secure.timeout_s, as in serve)
        self.secure_timeout_s = float(secure_timeout_s)
        self.session_factory = session_factory
        self.pipeline_factory = pipeline_factory or self._default_pipeline
        self.g722 = g722_available()
        self.ports = _PortPool(media_bind or media_address, *rtp_range)
        # one epoll set for every socket; fd -> (handler, socket, call, leg).  Raw epoll, not the selectors
        # module: its per-event key objects cost ~1 us per packet, and a relay reads two packets per call
        # per tick
        #
        # Two sets: the control sockets (ng, SIP INFO), waited on between ticks, and every call's RTP and
        # RTCP sockets, drained once per tick just before it (see _loop): a relay that woke for every packet
        # paid a wake-up, an epoll_wait and a loop pass per few packets, hundreds of times per tick
        self._poller = select.epoll() if hasattr(select, "epoll") else _PollAdapter()
        self._media_poller = select.epoll() if hasattr(select, "epoll") else _PollAdapter()
        self._handlers: dict[int, tuple] = {}
        # the per-packet fast path in C (native/relayio.c), Linux with epoll: media fd -> route (a Fwd for an
        # agent's pass-through, a Cust for a customer's G.711 stream), installed once a leg's first packets
        # were checked by the Python handlers, dropped on every offer/answer and when the call ends
        # (``fast_io=False``, or no C extension: the Python handlers do all of it, with the same results)
        self.fast_io = bool(fast_io) and _relay_native is not None and isinstance(self._media_poller, getattr(select, "epoll", ()))
        self._routes: dict[int, Any] = {}
        self._now = time.monotonic()  # the loop's clock, read once per batch of socket events
        # customer audio read during a drain, decoded after it in one table lookup per G.711 law:
        # law name -> [(jitter buffer, ssrc, timestamp, payload)]
        self._decode_queue: dict[str, list] = {"PCMU": [], "PCMA": []}
        # garbage collection: long-lived objects (modules, calls) are frozen out of the collector's full
        # passes, which otherwise walk every call's objects (~30 ms at 200 calls: a late tick)
        self._freeze_dirty = False
        self._gc_start = 0.0
        fam = socket.AF_INET6 if ":" in ng[0] else socket.AF_INET
        self.ng_sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            self.ng_sock.bind(ng)
        except OSError as exc:
            self.ng_sock.close()
            raise OSError(exc.errno, f"cannot bind the ng control socket {ng[0]}:{ng[1]}: {exc.strerror}") from None
        self.ng_sock.setblocking(False)
        self.ng_address = self.ng_sock.getsockname()
        self._watch(self.ng_sock, self._on_ng, None, None)
        # SIP INFO keys forked to us by Kamailio (see .sipinfo_rx); port 0 = any free port, None = off
        self.info_sock = None
        self.info_address = None
        if info_port is not None:
            self.info_sock = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                self.info_sock.bind((ng[0], info_port))
            except OSError as exc:
                self.info_sock.close()
                self.ng_sock.close()
                raise OSError(exc.errno, f"cannot bind the SIP INFO socket {ng[0]}:{info_port} (--info-port): "
                                         f"{exc.strerror}") from None
            self.info_sock.setblocking(False)
            self.info_address = self.info_sock.getsockname()
            self._watch(self.info_sock, self._on_sip, None, None)
        self.calls: dict[str, RelayCall] = {}
        self._by_short: dict[str, RelayCall] = {}
        self._ids = itertools.count(1)
        self._replies: collections.OrderedDict[bytes, tuple[float, bytes]] = collections.OrderedDict()
        self._lock = threading.Lock()  # guards the call tables against the control API thread
        # actions of the control API (dtmfguard.server.control.on_owner: start/cancel a payment, snapshots)
        # run on the loop thread, the owner of every call's state, between two batches of socket events
        self._actions: collections.deque[Callable[[], None]] = collections.deque()
        self._running = False
        self._warmed = False  # warm_up has run (once per relay)
        self.started = time.monotonic()
        #: counters (never digits): ticks, late ticks (> 1.5 frames after the previous), ng traffic
        self.counters = {"ticks": 0, "late_ticks": 0, "max_tick_interval_ms": 0.0, "tick_busy_s": 0.0,
                         "ng_requests": 0, "ng_errors": 0, "ng_retransmits": 0, "calls_total": 0,
                         "rtp_garbage": 0, "tick_errors": 0, "timed_out_calls": 0,
                         "pipeline_s": 0.0, "timed_frames": 0, "frames": 0, "sip_info": 0, "sip_info_bad": 0,
                         "info_keys": 0, "gc_collections": 0, "gc_full_collections": 0, "gc_max_pause_s": 0.0,
                         "gc_freezes": 0, "late_by_gc": 0, "late_off_cpu": 0, "late_busy": 0,
                         "ng_busy_s": 0.0, "ng_max_s": 0.0}
        #: CPU seconds of the ticks by phase (thread time; a few clock reads per tick, not per call)
        self.phases = {"drain": 0.0, "decode": 0.0, "pop": 0.0, "pipeline": 0.0, "encode": 0.0, "send": 0.0,
                       "housekeeping": 0.0}

    # -- pipeline -------------------------------------------------------------------------------------
    @staticmethod
    def _default_pipeline(name: str):
        from ..media.pipeline import CallPipeline

        return CallPipeline(8000, name=name)

    # -- the loop -------------------------------------------------------------------------------------
    def _queue(self, fn: Callable[[], None]) -> None:
        """Hand ``fn`` to the loop thread (any thread; it runs within one tick).  Used by the control API
        (``on_owner``) so that payments start and end on the thread that owns the call."""
        if not self._running:
            fn()  # no loop (a test driving the relay by hand, or stopping): run it here
            return
        self._actions.append(fn)

    def run_actions(self) -> None:
        actions = self._actions
        while actions:
            fn = actions.popleft()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - on_owner hands exceptions back itself; anything else
                log.error("control action failed (%s)", type(exc).__name__)

    def run(self, stop: threading.Event) -> None:
        next_tick = time.monotonic() + TICK_S
        last_tick = 0.0
        self._running = True
        gc.callbacks.append(self._on_gc)
        self.warm_up()
        # what exists now (modules, tables, the sockets) lives as long as the process: out of the collector
        gc.collect()
        gc.freeze()
        try:
            self._loop(stop, next_tick, last_tick)
        finally:
            self._running = False
            try:
                gc.callbacks.remove(self._on_gc)
            except ValueError:
                pass
            self.run_actions()

    def _loop(self, stop: threading.Event, next_tick: float, last_tick: float) -> None:
        counters = self.counters
        phases = self.phases
        gc_full = counters["gc_full_collections"]
        cpu_at_tick = time.thread_time()
        # the media sockets are read at fixed points: right before each tick, and (media_reads_per_tick 2)
        # half a tick earlier, which halves what the agent -> customer pass-through waits (at most 10 ms,
        # 5 on average) for one more wake-up per tick
        step = TICK_S / max(1, self.media_reads_per_tick)
        next_read = next_tick - TICK_S + step
        while not stop.is_set():
            # between the reads only the control sockets wake the loop (Kamailio's requests are answered
            # at once)
            now = time.monotonic()
            if now < next_tick:
                if now < next_read:
                    self.serve_control(next_read - now)
                    if self._actions:
                        self.run_actions()
                    continue
                t0 = time.thread_time()
                self.serve_media()
                phases["drain"] += time.thread_time() - t0
                next_read += step
                continue
            t0 = time.thread_time()
            if last_tick:
                interval = now - last_tick
                if interval > 1.5 * TICK_S:
                    counters["late_ticks"] += 1
                    # why: a full collection ran; or this thread was off the CPU for more than a tick of
                    # the interval (preempted: other processes, the hypervisor; or blocked in a call): its
                    # own work could not have made it late; or it was busy (its own work: ticks, requests)
                    if counters["gc_full_collections"] != gc_full:
                        counters["late_by_gc"] += 1
                    elif interval - (t0 - cpu_at_tick) > TICK_S:
                        counters["late_off_cpu"] += 1
                    else:
                        counters["late_busy"] += 1
                if interval * 1000 > counters["max_tick_interval_ms"]:
                    counters["max_tick_interval_ms"] = round(interval * 1000, 2)
            gc_full = counters["gc_full_collections"]
            last_tick = now
            cpu_at_tick = t0
            self.serve_media()
            t1 = time.thread_time()
            phases["drain"] += t1 - t0
            self.tick()
            t2 = time.thread_time()
            counters["tick_busy_s"] += t2 - t0
            next_tick += TICK_S
            if now - next_tick > 5 * TICK_S:  # far behind (a stall): do not burst to catch up
                next_tick = now + TICK_S
            next_read = next_tick - TICK_S + step
            if self._freeze_dirty and next_tick - time.monotonic() > 0.005:
                self._refreeze()
                phases["housekeeping"] += time.thread_time() - t2
            if time.monotonic() >= next_read:
                # behind (overloaded or stalled): the waits above are skipped, so Kamailio's requests are
                # served here, on every pass (an overloaded relay keeps answering: it degrades into late
                # ticks, not into a relay that stops taking and ending calls)
                self.serve_control(0.0)
                if self._actions:
                    self.run_actions()
            if time.monotonic() >= next_tick:
                # overloaded: the next wait would not block.  Sleep a moment anyway, so that under SCHED_RR
                # this thread blocks once per tick (RLIMIT_RTTIME kills a real-time thread that never does)
                # and ordinary processes are not starved; the relay degrades into late ticks
                time.sleep(0.0005)

    def warm_up(self) -> None:
        """Build one pipeline, run the first-use set-up through it and drop it before serving: the first one
        imports the DSP modules and builds their tables (tens of ms), and the first key builds more
        (:func:`~dtmfguard.media.pipeline.warm_up`), which would otherwise be the first offer's and the first
        key's cost on the loop thread.  Once per relay (:meth:`run` calls it; ``dtmfguard relay`` calls it
        first, before the loop thread takes SCHED_RR: 0.2 s of CPU above every ordinary thread of the host, and
        above a neighbour's RTP thread, is what the real-time policy is not for)."""
        if self._warmed:
            return
        self._warmed = True
        try:
            from ..media.pipeline import warm_up_throwaway

            warm_up_throwaway(lambda: self.pipeline_factory("warm-up"))
        except Exception as exc:  # noqa: BLE001 - the first real offer reports it (RelayError)
            log.debug("pipeline warm-up failed (%s)", type(exc).__name__)

    # -- garbage collection ---------------------------------------------------------------------------
    # CPython's full collection walks every tracked object that is not frozen; a relay with 200 calls holds
    # tens of thousands (masker and detector state, sockets, legs), so one pass took 20-40 ms: a late tick
    # whenever it ran.  What the relay keeps for a call's whole life is frozen (gc.freeze: O(1)) soon after
    # the call is set up, so full passes only see young objects.  A frozen object is still freed by
    # reference counting when its call ends; only a reference cycle among a call's objects would stay, and
    # calls break theirs when they end (CallPipeline.close; tests/test_relay.py checks that a call leaves no
    # cyclic garbage).  When no call is up the relay unfreezes and collects everything once (a pause then
    # costs nothing), in case some other code left cycles behind.
    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            return
        c = self.counters
        c["gc_collections"] += 1
        if info.get("generation") == 2:
            c["gc_full_collections"] += 1
        pause = time.perf_counter() - self._gc_start
        if pause > c["gc_max_pause_s"]:
            c["gc_max_pause_s"] = pause

    def _refreeze(self) -> None:
        """Collect what is young (cheap: the rest is frozen) and freeze the survivors: new calls' state."""
        self._freeze_dirty = False
        if not self.calls:
            gc.unfreeze()  # nothing to disturb: collect everything, leaked cycles included
        gc.collect()
        gc.freeze()
        self.counters["gc_freezes"] += 1

    def _watch(self, sock: socket.socket, fn: Callable, call: "RelayCall | None", leg: "Leg | None") -> None:
        fd = sock.fileno()
        self._handlers[fd] = (fn, sock, call, leg)
        (self._poller if call is None else self._media_poller).register(fd, select.POLLIN)

    def _unwatch(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        h = self._handlers.pop(fd, None) if fd >= 0 else None
        if h is None:
            return
        try:
            (self._poller if h[2] is None else self._media_poller).unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def serve_sockets(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for a control request, serve it, then drain every media socket
        (:meth:`serve_media`).  Returns the socket events served.  (The loop itself calls the two parts
        separately: control between ticks, media right before each tick.)"""
        return self.serve_control(timeout) + self.serve_media()

    def serve_control(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the control sockets (ng, SIP INFO) and serve them."""
        try:
            events = self._poller.poll(timeout)
        except InterruptedError:
            events = []
        self._now = time.monotonic()
        return self._dispatch(events)

    def _dispatch(self, events: list) -> int:
        handlers = self._handlers
        for fd, _ev in events:
            h = handlers.get(fd)
            if h is None:  # closed by an earlier event of this batch (a delete)
                continue
            try:
                h[0](h[1], h[2], h[3])
            except Exception as exc:  # noqa: BLE001 - nothing on a socket stops the loop
                self.counters["rtp_garbage"] += 1
                log.debug("socket handler failed (%s)", type(exc).__name__)
        return len(events)

    def serve_media(self, rounds: int = 8) -> int:
        """Read what every call's RTP and RTCP sockets hold (without waiting), then decode the customers'
        G.711 audio of the whole batch in one table lookup per law.

        One datagram per ready socket per round: epoll is level-triggered, so the next round's wait
        (timeout 0) names only the sockets that still hold one; reading each socket until EAGAIN would
        raise an exception per socket and tick.  ``rounds`` bounds the work after a stall (a socket with
        more queued is read on by the next ticks)."""
        self._now = time.monotonic()
        if self.fast_io:
            return self._serve_media_fast(rounds)
        poll = self._media_poller.poll
        served = 0
        for _ in range(rounds):
            try:
                events = poll(0)
            except InterruptedError:
                break
            if not events:
                break
            served += self._dispatch(events)
        t0 = time.thread_time()
        for law, queue in self._decode_queue.items():
            if queue:
                self._decode_batch(law, queue)
        self.phases["decode"] += time.thread_time() - t0
        return served

    def _serve_media_fast(self, rounds: int) -> int:
        """:meth:`serve_media` with the C drain: sockets with a route are read (and passed through, or
        decoded) in C, the others by their Python handlers, one datagram per ready socket per round as
        there.  Customer audio is put into the jitter buffers after the rounds (telephone-events during them),
        round by round, as the Python path puts it: so each call's packets go in in the order they were read."""
        drain, routes, epfd = _relay_native.drain, self._routes, self._media_poller.fileno()
        handlers = self._handlers
        served = 0
        staged = []  # per round: (the Python handlers' G.711 queue, C's audio items, C's samples)
        queues = self._decode_queue
        failed = False
        for _ in range(rounds):
            try:
                n, slow, audio, pcm, other = drain(epfd, routes, 4096)
            except OSError:  # never expected (a closed epoll set): the Python path reads the sockets from now on
                log.error("C drain failed; reading the media sockets in Python")
                failed = True
                break
            if not n:
                break
            served += n
            for call, data in other:
                leg = call.customer_leg
                try:
                    self._customer_packet(call, leg, data)
                except Exception as exc:  # noqa: BLE001 - nothing on a socket stops the loop
                    self.counters["rtp_garbage"] += 1
                    log.debug("socket handler failed (%s)", type(exc).__name__)
            for fd in slow:
                h = handlers.get(fd)
                if h is None:
                    continue
                try:
                    h[0](h[1], h[2], h[3])
                except Exception as exc:  # noqa: BLE001
                    self.counters["rtp_garbage"] += 1
                    log.debug("socket handler failed (%s)", type(exc).__name__)
            py = None
            if queues["PCMU"] or queues["PCMA"]:  # audio the Python handlers took this round
                py = [(law, q[:]) for law, q in queues.items() if q]
                for q in queues.values():
                    q.clear()
            if py or audio:
                staged.append((py, audio, pcm))
        t0 = time.thread_time()
        now = self._now
        for py, audio, pcm in staged:
            if py:
                for law, q in py:
                    self._decode_batch(law, q)
            if not audio:
                continue
            samples = np.frombuffer(pcm, dtype=np.int16)
            for call, ssrc, ts, off, n in audio:
                call.last_rx = now
                try:
                    call.jitter.put_audio(ssrc, ts, samples[off:off + n])
                except Exception as exc:  # noqa: BLE001 - one call's buffer: its packet is lost (concealed)
                    self.counters["tick_errors"] += 1
                    log.error("jitter buffer error (%s)", type(exc).__name__)
        self.phases["decode"] += time.thread_time() - t0
        if failed:
            self.fast_io = False
            self._drop_all_routes()
            served += self.serve_media(rounds)
        return served

    # -- the C fast path's routes (native/relayio.c) --------------------------------------------------
    def _route_customer(self, call: RelayCall, leg: Leg) -> None:
        """The customer's G.711 packets go through the C drain from now on (its address latched, no SRTP,
        the payload type checked against both SDPs by the Python handler that just took one)."""
        fd = leg.rtp.fileno()
        if fd in self._routes or not leg.latched or leg.srtp_in or call.codec is None or call.codec.law is None:
            return
        self._routes[fd] = _relay_native.Cust(fd, call.audio_pt, _LAW_INDEX[call.codec.law], call)

    def _route_agent(self, call: RelayCall, leg: Leg) -> None:
        """The agent's RTP is passed through to the customer in C from now on (both addresses latched, no
        SRTP either way)."""
        cust = call.customer_leg
        fd = leg.rtp.fileno()
        if fd in self._routes or not leg.latched or leg.srtp_in or cust is None or not cust.latched \
                or cust.srtp_out or cust.remote is None:
            return
        try:
            self._routes[fd] = _relay_native.Fwd(fd, cust.rtp.fileno(), cust.remote)
        except (TypeError, ValueError, OverflowError):  # an address C does not take: the Python handler passes
            pass

    def _make_out(self, call: RelayCall, agent: Leg) -> Any:
        """The call's stream to the agent in C (None: it stays in Python, e.g. SRTP towards the agent)."""
        if agent.srtp_out or agent.remote is None or not 0 <= call.out_pt <= 127:
            return None
        law = _LAW_INDEX.get(call.codec.law, -1) if call.codec is not None else -1
        try:
            out = _relay_native.Out(agent.rtp.fileno(), agent.remote, call.out_pt, law, call.out_ssrc, call.out_seq,
                               call.out_ts)
        except (TypeError, ValueError, OverflowError):  # an address C does not take: the Python path sends
            return None
        out.marker = int(call.out_marker)
        call.out = out
        return out

    def _fold(self, call: RelayCall) -> None:
        """Move the C routes' counters of this call into its legs and stats (zeroing them there)."""
        cust, agent = call.customer_leg, call.agent_leg
        routes = self._routes
        if cust is not None:
            r = routes.get(cust.rtp.fileno())
            if r is not None:
                cust.rx_packets += r.rx_packets
                cust.rx_bytes += r.rx_bytes
                r.rx_packets = r.rx_bytes = 0
        if agent is not None:
            r = routes.get(agent.rtp.fileno())
            if r is not None:
                agent.rx_packets += r.rx_packets
                agent.rx_bytes += r.rx_bytes
                agent.rx_errors += r.rx_errors
                if cust is not None:
                    cust.tx_packets += r.tx_packets
                    cust.tx_bytes += r.tx_bytes
                    cust.rx_errors += r.tx_errors  # (as the Python handler counts a failed send)
                r.rx_packets = r.rx_bytes = r.rx_errors = r.tx_packets = r.tx_bytes = r.tx_errors = 0
            out = call.out
            if out is not None:
                agent.tx_packets += out.tx_packets
                agent.tx_bytes += out.tx_bytes
                agent.rx_errors += out.errors
                call.stats["frames_sent"] += out.tx_packets
                out.tx_packets = out.tx_bytes = out.errors = 0

    def _unroute(self, call: RelayCall) -> None:
        """Take the call off the C fast path (its counters and stream state back in Python); the handlers
        put it back on once its packets have been checked again."""
        if not self._routes and call.out is None:
            return
        self._fold(call)
        for leg in (call.customer_leg, call.agent_leg):
            if leg is not None:
                self._routes.pop(leg.rtp.fileno(), None)
        self._out_to_python(call)

    @staticmethod
    def _out_to_python(call: RelayCall) -> None:
        """The call's stream to the agent leaves C: its sequence, timestamp and marker go back into Python
        (counters are folded by the caller)."""
        out = call.out
        if out is not None:
            call.out = None
            call.out_seq, call.out_ts, call.out_marker = out.seq, out.ts, bool(out.marker)

    def _drop_all_routes(self) -> None:
        for call in list(self.calls.values()):
            self._unroute(call)
        self._routes.clear()

    def _decode_batch(self, law: str, queue: list) -> None:
        """Decode one law's queued payloads (all calls) with one table lookup and put each packet's
        samples (a view into the result) into its call's jitter buffer."""
        try:
            try:
                pcm = DECODE_TABLES[law][np.frombuffer(b"".join([q[3] for q in queue]), dtype=np.uint8)]
            except Exception as exc:  # noqa: BLE001 - never expected; lost packets are concealed
                self.counters["tick_errors"] += 1
                log.error("batch decode failed (%s)", type(exc).__name__)
                return
            off = 0
            for jitter, ssrc, ts, payload in queue:
                end = off + len(payload)
                try:
                    jitter.put_audio(ssrc, ts, pcm[off:end])
                except Exception as exc:  # noqa: BLE001 - one call's buffer: its packet is lost (concealed)
                    self.counters["tick_errors"] += 1
                    log.error("jitter buffer error (%s)", type(exc).__name__)
                off = end
        finally:
            queue.clear()

    def tick(self) -> None:
        """One 20 ms frame for every call, in phases over all calls (each timed once per tick in
        :attr:`phases`): take the frame from the call's jitter buffer (and the telephone-events due), run
        the call's pipeline, encode (G.711: every call of one law in one table lookup), send it to the
        agent.  A failure in one call's frame sends that call encoded silence (fail closed), counted and
        logged by type, and touches no other call."""
        counters, phases = self.counters, self.phases
        counters["ticks"] += 1
        ticks = counters["ticks"]
        now = time.monotonic()
        t0 = time.thread_time()
        if ticks % 50 == 0:
            self._expire_idle(now)
        # 1. the frame (and due telephone-events) of every call that plays
        calls: list[RelayCall] = []
        frames: list = []
        for call in list(self.calls.values()):
            jitter = call.jitter
            if jitter.play_ts is None or call.pipeline is None:
                continue
            if now - call.last_rx > _IDLE_PAUSE_S:
                jitter.reset()  # pause the agent's stream; the next packet re-anchors playout
                call.out_marker = True
                if call.out is not None:
                    call.out.marker = 1
                continue
            agent = call.agent_leg
            if agent is None or agent.remote is None or call.codec is None:
                continue
            calls.append(call)
            try:
                if jitter.has_events:
                    for ssrc, ts, payload in jitter.due_events():
                        call.pipeline.on_rfc4733_packet(ssrc, ts, payload)
                frames.append(jitter.pop())
                if jitter.made_up[0] or jitter.made_up[1] or jitter.made_up[2]:
                    call.pipeline.note_jitter(*jitter.made_up)  # a concealed frame must not split a key
            except Exception as exc:  # noqa: BLE001 - this call's frame is silence
                frames.append(None)
                self._tick_error(call, exc)
        t1 = time.thread_time()
        # 2-4 in chunks of calls: a call's frame leaves as soon as its chunk is done (a whole tick's worth of
        # pipelines before the first send would add up to a tick's CPU time to every call's latency), and a
        # chunk is large enough for the batched encode to pay
        ran = 0
        for start in range(0, len(calls), _CHUNK):
            ran += self._tick_chunk(calls[start:start + _CHUNK], frames[start:start + _CHUNK])
        t4 = time.thread_time()
        if ticks % 10 == 0:
            for call in calls:
                if call.session is not None:
                    self._poll_session(call)
                if call.secure_manual_since and now - call.secure_manual_since > self.secure_timeout_s:
                    call.secure_manual_since = 0.0
                    call.pipeline.secure_manual = False
                    log.warning("%s: secure mode timed out after %.0f s (secure.timeout_s)", call.id,
                                self.secure_timeout_s)
        counters["frames"] += ran
        counters["timed_frames"] += ran
        phases["pop"] += t1 - t0
        phases["housekeeping"] += time.thread_time() - t4

    def _tick_chunk(self, calls: list, frames: list) -> int:
        """Phases 2-4 of :meth:`tick` for some calls; returns how many pipelines ran."""
        phases = self.phases
        t1 = time.thread_time()
        # 2. the pipelines (masker, detector, signalled keys, payment session): one call at a time
        outs: list = []
        ran = 0
        for call, frame in zip(calls, frames):
            if frame is None:
                outs.append(None)
                continue
            try:
                outs.append(call.pipeline.process_customer_frame(frame))
                ran += 1
            except Exception as exc:  # noqa: BLE001 - the pipeline fails closed itself; this is belt and braces
                outs.append(None)
                self._tick_error(call, exc)
        for call in calls:  # secure mode's keys for the agent leg (complete keys; rare)
            rel = getattr(call.pipeline, "relay", None)
            if rel is not None and (rel.outbox or rel.alerts):
                while rel.outbox:
                    call.keys_out.append(rel.outbox.popleft())
                while rel.alerts:
                    self._card_alert(call, rel.alerts.popleft())
        t2 = time.thread_time()
        if self.fast_io:
            t3 = self._send_fast(calls, outs)
        else:
            t3 = self._encode_send(calls, outs)
        t4 = time.thread_time()
        self.counters["pipeline_s"] += t2 - t1
        phases["pipeline"] += t2 - t1
        phases["encode"] += t3 - t2
        phases["send"] += t4 - t3
        return ran

    def _send_fast(self, calls: list, outs: list) -> float:
        """Phases 3-4 in C (native/relayio.c ``send_frames``): each call's frame is encoded with its law
        (the same tables) and sent with the call's ``Out`` header in one pass over the chunk; a call the C
        stream cannot carry (SRTP towards the agent) takes the Python path.  Returns the clock at the end of
        the (Python) encoding."""
        c_outs: list = []
        c_payloads: list = []
        c_calls: list = []
        py_calls: list = []
        py_outs: list = []
        for call, out in zip(calls, outs):
            stream = call.out
            codec = call.codec
            if call.key_event is not None or call.keys_out:
                # an RFC 4733 event in the stream: the Python path sends this call's packets meanwhile
                if stream is not None:
                    self._fold(call)
                    self._out_to_python(call)
                py_calls.append(call)
                py_outs.append(out)
                continue
            if stream is None:
                stream = self._make_out(call, call.agent_leg)
                if stream is None:
                    py_calls.append(call)
                    py_outs.append(out)
                    continue
            if out is None:
                payload = codec.silence
            elif codec.law is not None and type(out) is np.ndarray and out.dtype == _INT16 and out.shape == _SHAPE:
                payload = out  # encoded in C
            else:
                try:
                    payload = codec.encode(out)
                    if len(payload) != FRAME:
                        raise ValueError("encoded frame of the wrong size")
                except Exception as exc:  # noqa: BLE001
                    payload = codec.silence
                    self._tick_error(call, exc)
            c_outs.append(stream)
            c_payloads.append(payload)
            c_calls.append(call)
        t3 = time.thread_time()
        if c_outs:
            failed = _relay_native.send_frames(c_outs, c_payloads, _ENCODE_PAIR)
            for i in failed:  # never expected: a frame C could not take is silence (fail closed)
                call = c_calls[i]
                self._tick_error(call, ValueError("frame not encodable"))
                _relay_native.send_frames([c_outs[i]], [call.codec.silence], _ENCODE_PAIR)
        if py_calls:
            self._encode_send(py_calls, py_outs)
        return t3

    def _encode_send(self, calls: list, outs: list) -> float:
        """Phases 3-4 in Python (encode, then send); returns the clock between the two."""
        # 3. encode: G.711 frames of all calls of one law at once; anything else one call at a time
        payloads: list = [None] * len(calls)
        batches: dict[str, list[int]] = {}
        for i, call in enumerate(calls):
            out, codec = outs[i], call.codec
            if out is None:
                payloads[i] = codec.silence
            elif codec.law is not None and type(out) is np.ndarray and out.dtype == _INT16 and out.shape == _SHAPE:
                batches.setdefault(codec.law, []).append(i)
            else:
                try:
                    payload = codec.encode(out)
                    if len(payload) != FRAME:
                        raise ValueError("encoded frame of the wrong size")
                    payloads[i] = payload
                except Exception as exc:  # noqa: BLE001
                    payloads[i] = codec.silence
                    self._tick_error(call, exc)
        for law, idx in batches.items():
            try:
                enc = ENCODE_TABLES[law][np.concatenate([outs[i] for i in idx]).view(np.uint16)].tobytes()
            except Exception as exc:  # noqa: BLE001 - never expected: every call of the batch gets silence
                for i in idx:
                    payloads[i] = calls[i].codec.silence
                    self._tick_error(calls[i], exc)
                continue
            off = 0
            for i in idx:
                payloads[i] = enc[off:off + FRAME]
                off += FRAME
        t3 = time.thread_time()
        # 4. to the agents: the relay's own RTP stream per call (own SSRC, continuous sequence/timestamps)
        pack = _pack_header
        for call, payload in zip(calls, payloads):
            agent = call.agent_leg
            pt = call.out_pt
            pkt = None
            if call.key_event is not None or call.keys_out:
                try:
                    pkt = self._key_packet(call, agent)
                except Exception as exc:  # noqa: BLE001 - never expected: the keys are dropped, the audio goes on
                    call.stats["keys_not_sent"] += (call.key_event is not None) + len(call.keys_out)
                    call.key_event = None
                    call.keys_out.clear()
                    log.error("%s: regenerated key not sent (%s)", call.id, type(exc).__name__)
                if pkt is not None:
                    payload = pkt[12:]
            if pkt is None:
                pkt = pack(0x80, (0x80 | pt) if call.out_marker else pt, call.out_seq, call.out_ts,
                           call.out_ssrc) + payload
            call.out_marker = False
            call.out_seq = (call.out_seq + 1) & 0xFFFF
            call.out_ts = (call.out_ts + FRAME) & 0xFFFFFFFF
            try:
                if agent.srtp_out:
                    pkt = agent.crypto.protect(pkt)
                agent.rtp.sendto(pkt, agent.remote)
                agent.tx_packets += 1
                agent.tx_bytes += len(payload) + 12
                call.stats["frames_sent"] += 1
            except Exception:  # noqa: BLE001 - OSError, or SRTP refusing: the frame is lost, counted
                agent.rx_errors += 1
        return t3

    def _card_alert(self, call: RelayCall, alert: dict) -> None:
        """A run of keys outside secure mode looked like a card (mask_mode "secure"): kept for the control API,
        logged without a digit (the agent is known to the PBX, not here)."""
        from ..media.keyrelay import alert_record

        record = alert_record(call.id, "", alert)
        call.alerts.append({"type": "card_outside_secure_mode", **record})
        log.warning("%s: ALERT a card number may have been keyed outside secure mode; relaying %s", call.id,
                    "stopped for that run" if record["action"] == "stopped" else "continued")

    def _key_packet(self, call: RelayCall, agent: Leg) -> bytes | None:
        """The RFC 4733 packet this tick sends instead of the call's audio frame while a regenerated key is
        on (mask_mode "secure": a key pressed outside secure mode, so that an IVR behind the relay gets it).

        One packet per 20 ms tick, as a phone sends them (RFC 4733 §2.5.1.2): the event's timestamp is the
        stream's at its first packet, the duration grows by one frame a packet, and the final packet (E bit)
        goes out three times (§2.5.1.4), each in its own tick and with its own sequence number.  The stream's
        timestamp goes on advancing underneath, so the audio after the key continues the timeline.  None:
        no event to send (the agent's SDP has no telephone-event: the key is counted as not sent)."""
        ev = call.key_event
        if ev is None:
            key = call.keys_out.popleft()
            pts = agent.offer.event_pts if agent.offer is not None else ()
            code = _EVENT_CODES.get(key.digit)
            if not pts or code is None:
                call.stats["keys_not_sent"] += 1
                return None
            total = max(FRAME, int(key.duration_ms) * 8)
            ev = call.key_event = [code, call.out_ts, total, 0, 0, pts[0]]
            first = True
        else:
            first = False
        code, ts, total, sent, ends, ev_pt = ev
        sent = min(total, sent + FRAME)
        end = sent >= total
        ev[3] = sent
        if end:
            ev[4] = ends = ends + 1
            if ends >= 3:
                call.key_event = None
                call.stats["keys_to_agent"] += 1
        payload = bytes((code, (0x80 if end else 0) | 10)) + min(sent, 0xFFFF).to_bytes(2, "big")
        return _pack_header(0x80, (0x80 | ev_pt) if first else ev_pt, call.out_seq, ts, call.out_ssrc) + payload

    def _tick_error(self, call: RelayCall, exc: BaseException) -> None:
        call.stats["tick_errors"] += 1
        call.stats["silence_sent"] += 1
        self.counters["tick_errors"] += 1
        log.error("%s: relay tick error (%s); silence sent", call.id, type(exc).__name__)

    def _poll_session(self, call: RelayCall) -> None:
        """Every 200 ms: the payment session's own timers, then (mask_mode "payment") the end of masking
        once the session has finished (:meth:`CallPipeline.end_payment_masking`)."""
        try:
            if hasattr(call.session, "poll"):
                call.session.poll()
        except Exception as exc:  # noqa: BLE001
            log.error("%s: payment session poll failed (%s)", call.id, type(exc).__name__)
        pl = call.pipeline
        if pl.session is not None and getattr(pl.session, "finished", False) and pl.end_payment_masking():
            log.info("%s: payment %s: masking off until the next payment (mask_mode %s)", call.id,
                     getattr(call.session, "state", "finished"), pl.mask_mode)

    def _expire_idle(self, now: float) -> None:
        """End calls with no RTP in either direction and no signalling for ``call_timeout_s`` (Kamailio
        never sent the delete: a lost BYE, a Kamailio restart)."""
        for call in list(self.calls.values()):
            if self._routes:
                self._fold(call)
            seen = sum(lg.rx_packets for lg in call.legs.values())
            if seen != call.seen_packets or call.last_signal > call.seen_at_wall:
                call.seen_packets, call.seen_at, call.seen_at_wall = seen, now, time.time()
            elif now - call.seen_at > self.call_timeout_s:
                with self._lock:
                    self.calls.pop(call.call_id, None)
                    self._by_short.pop(call.id, None)
                self.counters["timed_out_calls"] += 1
                self._end_call(call, "timeout")

    # -- sockets --------------------------------------------------------------------------------------
    # One datagram per readiness event (see serve_media).  Once a leg's address is latched, recv() (no
    # address object per packet) replaces recvfrom(); what is accepted is the same as before the latch.
    def _receive(self, sock: socket.socket, call: RelayCall, leg: Leg, customer: bool) -> bytes | None:
        """One datagram of ``leg``, SRTP taken off, counted, its sender latched; None when nothing usable arrived.
        Latching moves the destination the pass-through was set up for: the relay's stream to the agent, and for the
        ``customer`` leg its own route too, are set up again."""
        try:
            if leg.latched:
                data = sock.recv(2048)
            else:
                data, addr = sock.recvfrom(2048)
        except OSError:
            return None
        if leg.srtp_in:
            try:
                data = leg.crypto.unprotect(data)
            except Exception:  # noqa: BLE001 - wrong key, replay, garbage: dropped, never passed on
                leg.srtp_errors += 1
                return None
        if not leg.latched:
            leg.remote, leg.latched = addr, True
            if call.out is not None or (customer and self._routes):
                self._unroute(call)
        leg.rx_packets += 1
        leg.rx_bytes += len(data)
        return data

    def _on_customer_rtp(self, sock: socket.socket, call: RelayCall, leg: Leg) -> None:
        data = self._receive(sock, call, leg, True)
        if data is not None:
            self._customer_packet(call, leg, data)

    def _customer_packet(self, call: RelayCall, leg: Leg, data: bytes) -> None:
        """One customer datagram, read and counted (by the handler above or the C drain)."""
        try:
            pt, ts, ssrc, payload = parse_fields(data)
        except RtpError:
            leg.rx_errors += 1
            return
        if pt == call.audio_pt and payload:
            # the common case: the customer's codec, already checked against both SDPs (reset by every
            # offer/answer)
            call.last_rx = self._now
            codec = call.codec
            if codec.law is not None:  # G.711: decoded with every other call's after the drain
                self._decode_queue[codec.law].append((call.jitter, ssrc, ts, payload))
                if self.fast_io:
                    self._route_customer(call, leg)
                return
            try:
                pcm = codec.decode(payload)
            except Exception:  # noqa: BLE001
                leg.rx_errors += 1
                return
            call.jitter.put_audio(ssrc, ts, pcm)
            return
        self._customer_rtp_slow(call, leg, pt, ts, ssrc, payload)

    def _customer_rtp_slow(self, call: RelayCall, leg: Leg, pt: int, ts: int, ssrc: int, payload: bytes) -> None:
        """A packet whose payload type is not the customer's current audio codec: telephone-event, a codec
        change, or something never passed on."""
        offer = leg.offer
        if offer is None:
            return
        agent = call.agent_leg
        if pt in offer.event_pts or (agent is not None and agent.offer is not None and pt in agent.offer.event_pts):
            if len(payload) >= 4:
                call.stats["events_in"] += 1
                call.last_rx = self._now
                for ev in call.jitter.put_event(ssrc, ts, payload[:4]):
                    call.pipeline.on_rfc4733_packet(*ev)
            else:
                leg.rx_errors += 1
            return
        enc = offer.codecs.get(pt)
        if enc is None and agent is not None and agent.offer is not None:
            enc = agent.offer.codecs.get(pt)
        if enc is None or enc[0] == "TELEPHONE-EVENT" or not payload:
            call.stats["dropped_pt"] += 1  # comfort noise, unknown formats: never passed raw
            return
        if pt != call.codec_pt:
            try:
                codec = make_codec(enc[0])
            except (ValueError, RuntimeError):
                call.stats["dropped_pt"] += 1
                return
            self._unroute(call)  # the C routes and stream know the old payload type and law
            call.codec = codec
            call.codec_pt = call.out_pt = pt
            log.info("%s: customer codec %s (payload type %d)", call.id, call.codec.name, pt)
        if call.audio_pt != pt:
            self._unroute(call)
        call.audio_pt = pt
        call.last_rx = self._now
        try:
            pcm = call.codec.decode(payload)
        except Exception:  # noqa: BLE001
            leg.rx_errors += 1
            return
        call.jitter.put_audio(ssrc, ts, pcm)
        if call.state == "offered":
            call.state = "connected"

    def _on_agent_rtp(self, sock: socket.socket, call: RelayCall, leg: Leg) -> None:
        data = self._receive(sock, call, leg, False)
        if data is None:
            return
        cust = call.customer_leg
        if cust is not None and cust.remote is not None and len(data) >= 12 and data[0] >> 6 == 2:
            try:
                if cust.srtp_out:
                    data = cust.crypto.protect(data)
                cust.rtp.sendto(data, cust.remote)
                cust.tx_packets += 1
                cust.tx_bytes += len(data)
            except OSError:
                cust.rx_errors += 1
            if self.fast_io:
                self._route_agent(call, leg)
        else:
            leg.rx_errors += 1

    def _on_rtcp(self, sock: socket.socket, call: RelayCall, leg: Leg) -> None:
        other = call.agent if leg is call.customer else call.customer
        try:
            data, addr = sock.recvfrom(2048)
        except OSError:
            return
        if leg.srtp_in:
            try:
                data = leg.crypto.unprotect_rtcp(data)
            except Exception:  # noqa: BLE001
                leg.srtp_errors += 1
                return
        if not leg.latched_rtcp:
            leg.remote_rtcp, leg.latched_rtcp = addr, True
        leg.rtcp_packets += 1
        if other is not None and other.remote_rtcp is not None and len(data) >= 8 and data[0] >> 6 == 2:
            try:
                if other.srtp_out:
                    data = other.crypto.protect_rtcp(data)
                other.rtcp.sendto(data, other.remote_rtcp)
            except Exception:  # noqa: BLE001 - OSError, or an SRTP error: the packet is dropped
                pass

    # -- ng protocol ----------------------------------------------------------------------------------
    def _on_ng(self, sock: socket.socket, _call, _leg) -> None:
        for _ in range(64):
            try:
                data, addr = sock.recvfrom(_MAX_NG)
            except OSError:
                return
            t0 = time.thread_time()
            reply = self.handle_datagram(data)
            took = time.thread_time() - t0
            c = self.counters
            c["ng_busy_s"] += took
            if took > c["ng_max_s"]:  # an offer builds the call's pipeline: this is what it costs the loop
                c["ng_max_s"] = took
            if reply is not None:
                try:
                    sock.sendto(reply, addr)
                except OSError:
                    pass

    def _on_sip(self, sock: socket.socket, _call, _leg) -> None:
        try:
            data, addr = sock.recvfrom(65535)
        except OSError:
            return
        reply = self.handle_sip(data)
        if reply is not None:
            try:
                sock.sendto(reply, addr)
            except OSError:
                pass

    def handle_sip(self, data: bytes) -> bytes | None:
        """One SIP datagram (an INFO forked by Kamailio) -> the response datagram, or None."""
        from ..signalling.sipinfo import SipInfoError
        from .sipinfo_rx import SipParseError, parse_request, response, tag_of

        self.counters["sip_info"] += 1
        try:
            parsed = parse_request(data)
        except SipParseError as exc:
            log.info("SIP datagram ignored (%s)", exc)
            return None
        if parsed is None:
            return None
        method, headers, body = parsed
        if method != "INFO":
            return response(405, "Method Not Allowed", headers)
        call = self.calls.get(headers["call-id"][0])
        if call is None:
            return response(481, "Call Does Not Exist", headers)
        leg = call.legs.get(tag_of(headers["from"][0]))
        if leg is not None and leg is call.agent:
            # the agent side's secure-mode switch (a PBX or CTI without the control API), as serve takes it
            from ..signalling.sipinfo import SECURE_HEADER, parse_secure_request

            try:
                on = parse_secure_request(headers.get("content-type", [""])[0], body,
                                          headers.get(SECURE_HEADER.lower(), [""])[0])
            except SipInfoError:
                self.counters["sip_info_bad"] += 1
                return response(400, "Bad Secure Switch", headers)
            if on is not None:
                if not self.set_secure(call, on, "agent-info"):
                    return response(488, "Not Acceptable Here", headers)  # mask_mode "always": nothing to switch
                return response(200, "OK", headers)
        if leg is not None and leg is call.customer:
            try:
                call.pipeline.on_sip_info(headers.get("content-type", [""])[0], body)
            except SipInfoError:
                self.counters["sip_info_bad"] += 1
                return response(400, "Bad DTMF Body", headers)  # the reason never quotes the body
            call.stats["info_keys"] += 1
            self.counters["info_keys"] += 1
        return response(200, "OK", headers)

    def handle_datagram(self, data: bytes) -> bytes | None:
        """One ng request datagram -> the reply datagram (None if it has no cookie to answer to)."""
        cookie, sep, body = data.partition(b" ")
        if not sep or not cookie or len(cookie) > 64:
            self.counters["ng_errors"] += 1
            return None
        now = time.monotonic()
        cached = self._replies.get(cookie)
        if cached is not None and now - cached[0] < _COOKIE_TTL_S:
            self.counters["ng_retransmits"] += 1
            return cached[1]
        self.counters["ng_requests"] += 1
        try:
            msg = bencode.decode(body)
            if not isinstance(msg, dict):
                raise RelayError("request is not a dictionary")
            result = self.handle(msg)
        except bencode.BencodeError as exc:
            result = {"result": "error", "error-reason": f"malformed request: {exc}"}
        except RelayError as exc:
            result = {"result": "error", "error-reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a bad request must not take the relay down
            log.error("ng request failed (%s)", type(exc).__name__)
            result = {"result": "error", "error-reason": f"internal error ({type(exc).__name__})"}
        if result.get("result") == "error":
            self.counters["ng_errors"] += 1
        reply = cookie + b" " + bencode.encode(result)
        self._replies[cookie] = (now, reply)
        while self._replies and (len(self._replies) > 10000 or now - next(iter(self._replies.values()))[0] > _COOKIE_TTL_S):
            self._replies.popitem(last=False)
        return reply

    def handle(self, msg: dict) -> dict:
        """One decoded ng request -> the reply dictionary (raises :class:`RelayError`)."""
        cmd = msg.get("command")
        if not isinstance(cmd, str):
            raise RelayError("no command")
        cmd = cmd.lower()
        if cmd == "ping":
            return {"result": "pong"}
        if cmd in ("offer", "answer"):
            return self._offer_answer(cmd, msg)
        if cmd == "delete":
            return self._delete(msg)
        if cmd == "query":
            return self._query(msg)
        if cmd == "list":
            return {"result": "ok", "calls": list(self.calls)[:int(_int(msg.get("limit", 32)))]}
        if cmd == "statistics":
            return {"result": "ok", "statistics": self.statistics()}
        raise RelayError(f"unrecognised command {cmd[:32]!r}")

    def _offer_answer(self, cmd: str, msg: dict) -> dict:
        call_id, from_tag = _str(msg, "call-id"), _str(msg, "from-tag")
        sdp = msg.get("sdp")
        if isinstance(sdp, bytes):
            sdp = sdp.decode("utf-8", "replace")
        if not isinstance(sdp, str) or not sdp:
            raise RelayError("no SDP")
        to_tag = msg.get("to-tag") if isinstance(msg.get("to-tag"), str) else ""
        flags = [f.lower() for f in msg.get("flags", []) if isinstance(f, str)] if isinstance(msg.get("flags"), list) else []
        try:
            parsed = parse_audio(sdp, g722=self.g722)
        except SdpError as exc:
            raise RelayError(str(exc)) from None
        forced = msg.get("transport-protocol") if isinstance(msg.get("transport-protocol"), str) else None
        if forced and forced.upper() not in ("RTP/AVP", "RTP/SAVP"):
            raise RelayError(f"transport-protocol {forced[:20]} not supported (RTP/AVP or RTP/SAVP)")
        if parsed.proto.upper() not in ("RTP/AVP", "RTP/SAVP"):
            raise RelayError(f"media protocol {parsed.proto[:20]} not supported (RTP/AVP or RTP/SAVP with SDES)")
        sdes = self._sdes(parsed) if parsed.secure else None
        with self._lock:
            call = self.calls.get(call_id)
            if cmd == "answer":
                if call is None:
                    raise RelayError("Unknown call-id")
                # the answer comes from the callee (to-tag) and goes to the from-tag's party
                sender_tag = to_tag or "callee"
                target = call.legs.get(from_tag)
                if target is None:
                    raise RelayError("Unknown from-tag")
                sender = call.legs.get(sender_tag)
                if sender is None:
                    sender = next((lg for t, lg in call.legs.items() if lg is not target), None)
                    if sender is None:
                        raise RelayError("no second leg for this answer")
                    del call.legs[sender.tag]
                    sender.tag = sender_tag
                    call.legs[sender_tag] = sender
            else:
                if call is None:
                    if len(self.calls) >= self.max_calls:
                        raise RelayError("relay full")
                    rule = self.customer
                    if "customer-callee" in flags:
                        rule = "callee"
                    elif "customer-caller" in flags:
                        rule = "caller"
                    call = self._new_call(call_id, from_tag, rule)
                sender = call.legs.get(from_tag)
                if sender is None:
                    raise RelayError("Unknown from-tag for this call")  # a third party in a known call
                target = next((lg for lg in call.legs.values() if lg is not sender), None)
                if target is None:
                    raise RelayError("call has no second leg")
                if to_tag and target.tag != to_tag and to_tag not in call.legs:
                    del call.legs[target.tag]
                    target.tag = to_tag
                    call.legs[to_tag] = target
            # what the target gets: an answer must keep the protocol its offer had (RFC 3264 §6); an offer
            # keeps the sender's unless Kamailio asks for another (transport-protocol)
            if cmd == "answer":
                proto = target.offer.proto if target.offer is not None else parsed.proto
            else:
                proto = forced or (target.offer.proto if target.offer is not None and call.state != "offered"
                                   else parsed.proto)
            secure_out = "SAVP" in proto.upper()
            if secure_out and not srtp_available():
                raise RelayError("SRTP needs the pylibsrtp package on the relay host")
            self._unroute(call)  # addresses, payload types and keys may change: the Python handlers check again
            sender.set_sdp(parsed)
            call.audio_pt = -1  # payload types may mean something else now: check the next packet again
            sender.srtp_in = parsed.secure
            if sdes is not None:
                tag, suite, key = sdes
                if sender.crypto is None or sender.crypto.suite != suite:
                    sender.crypto = LegCrypto(suite)
                sender.crypto.set_remote(key)
                sender.crypto_tag = tag
            crypto_line = None
            if secure_out:
                if target.crypto is None:
                    target.crypto = LegCrypto(sdes[1] if sdes else "AES_CM_128_HMAC_SHA1_80")
                tag = target.crypto_tag if cmd == "answer" else 1
                crypto_line = crypto_attribute(tag, target.crypto.suite, target.crypto.tx_key)
            target.srtp_out = secure_out
            call.last_signal = time.time()
            out = rewrite(sdp, self.media_address, target.port, g722=self.g722, replace_origin=True, proto=proto,
                          crypto_line=crypto_line)
        return {"result": "ok", "sdp": out}

    def _sdes(self, parsed: AudioOffer) -> tuple[int, str, bytes]:
        """The first usable SDES key of an RTP/SAVP stream (RelayError if none). The offer is judged first: a
        malformed one gets the same answer on every relay host, with or without pylibsrtp."""
        if not parsed.crypto:
            raise RelayError("RTP/SAVP without a=crypto: only SDES keying is supported (no DTLS)")
        why = ""
        for value in parsed.crypto:
            try:
                found = parse_crypto(value)
                break
            except SrtpError as exc:
                why = str(exc)
        else:
            raise RelayError(why)
        if not srtp_available():
            raise RelayError("SRTP (RTP/SAVP) needs the pylibsrtp package on the relay host; offer RTP/AVP")
        return found

    def _new_call(self, call_id: str, from_tag: str, rule: str) -> RelayCall:
        short = f"r{next(self._ids)}"
        call = RelayCall(self, call_id, short, rule)
        legs = []
        try:
            for tag in (from_tag, "\x00callee"):
                rtp, rtcp, port = self.ports.take()
                legs.append(Leg(tag, rtp, rtcp, port))
        except RelayError:
            for lg in legs:
                self._close_leg(lg)
            raise
        call.caller, call.callee = legs
        call.legs = {lg.tag: lg for lg in legs}
        call.customer.role, call.agent.role = "customer", "agent"
        call.customer_leg, call.agent_leg = call.customer, call.agent
        try:
            call.pipeline = self.pipeline_factory(short)
        except Exception as exc:  # noqa: BLE001 - no pipeline, no call (never relay unmasked audio)
            for lg in legs:
                self._close_leg(lg)
            raise RelayError(f"media pipeline unavailable ({type(exc).__name__})") from None
        cust, agent = call.customer, call.agent
        self._watch(cust.rtp, self._on_customer_rtp, call, cust)
        self._watch(agent.rtp, self._on_agent_rtp, call, agent)
        for lg in legs:
            self._watch(lg.rtcp, self._on_rtcp, call, lg)
        self.calls[call_id] = call
        self._by_short[short] = call
        self.counters["calls_total"] += 1
        self._freeze_dirty = True  # its state lives as long as the call: frozen out of the collector soon
        log.info("%s: new call (customer = %s)", short, rule)
        return call

    def _close_leg(self, leg: Leg) -> None:
        for s in (leg.rtp, leg.rtcp):
            self._unwatch(s)
            s.close()
        self.ports.give(leg.port)

    def _delete(self, msg: dict) -> dict:
        call_id = _str(msg, "call-id")
        with self._lock:
            call = self.calls.pop(call_id, None)
            if call is None:
                raise RelayError("Call-ID not found")
            self._by_short.pop(call.id, None)
        totals = self._end_call(call, "deleted")
        return {"result": "ok", "created": int(call.created), "last signal": int(call.last_signal), "totals": totals}

    def _end_call(self, call: RelayCall, reason: str) -> dict:
        call.state, call.reason = "ended", reason
        self._unroute(call)  # before its sockets close (a reused descriptor must not find the old route)
        try:
            call.pipeline.flush()
        except Exception:  # noqa: BLE001
            pass
        if call.session is not None and not getattr(call.session, "finished", True):
            try:
                call.session.cancel("call_ended")
            except Exception:  # noqa: BLE001
                pass
        totals = self._totals(call)
        for lg in {id(lg): lg for lg in call.legs.values()}.values():
            self._close_leg(lg)
        close = getattr(call.pipeline, "close", None)
        if close is not None:  # breaks the pipeline's reference cycles: its objects may be frozen (_refreeze)
            try:
                close()
            except Exception:  # noqa: BLE001
                pass
        if not self.calls:
            self._freeze_dirty = True  # the last call is gone: a full collection now disturbs nobody
        # the customer stream as the relay's jitter buffer saw it: a key lost on a loaded host is explained
        log.info("%s: call ended (%s); customer stream: %s", call.id, reason,
                 ", ".join(f"{k} {v}" for k, v in call.jitter.stats.items()))
        return totals

    def _totals(self, call: RelayCall) -> dict:
        self._fold(call)
        st = call.pipeline.snapshot() if call.pipeline is not None else {}
        return {"legs": [lg.totals() for lg in call.legs.values()],
                "codec": call.codec.name if call.codec is not None else "",
                "dtmfguard": {**{k: v for k, v in st.items()}, **call.stats, "jitter": dict(call.jitter.stats)}}

    def _query(self, msg: dict) -> dict:
        call = self.calls.get(_str(msg, "call-id"))
        if call is None:
            raise RelayError("Call-ID not found")
        return {"result": "ok", "created": int(call.created), "last signal": int(call.last_signal),
                "totals": self._totals(call),
                "tags": {lg.tag: {"tag": lg.tag, "role": lg.role} for lg in call.legs.values()}}

    def statistics(self) -> dict:
        """Process counters (integers; bencode has no floats): ticks, late ticks, CPU of the ticks in ms."""
        c = self.counters
        return {"ticks": c["ticks"], "late_ticks": c["late_ticks"],
                "max_tick_interval_us": int(c["max_tick_interval_ms"] * 1000),
                "tick_busy_ms": int(c["tick_busy_s"] * 1000), "ng_requests": c["ng_requests"],
                "ng_errors": c["ng_errors"], "ng_retransmits": c["ng_retransmits"], "calls_total": c["calls_total"],
                "active_calls": len(self.calls), "rtp_garbage": c["rtp_garbage"], "tick_errors": c["tick_errors"],
                "timed_out_calls": c["timed_out_calls"], "frames": c["frames"],
                "pipeline_us": int(c["pipeline_s"] * 1e6),
                "pipeline_timed_frames": c["timed_frames"], "sip_info": c["sip_info"], "sip_info_bad": c["sip_info_bad"],
                "info_keys": c["info_keys"], "uptime_ms": int((time.monotonic() - self.started) * 1000),
                "gc_collections": c["gc_collections"], "gc_full_collections": c["gc_full_collections"],
                "gc_max_pause_us": int(c["gc_max_pause_s"] * 1e6), "gc_freezes": c["gc_freezes"],
                "gc_frozen_objects": gc.get_freeze_count(), "late_ticks_with_full_gc": c["late_by_gc"],
                "late_ticks_off_cpu": c["late_off_cpu"], "late_ticks_busy": c["late_busy"],
                # CPU the ng requests took on the loop thread (an offer builds a pipeline: its cost shows here)
                "ng_busy_us": int(c["ng_busy_s"] * 1e6), "ng_max_us": int(c["ng_max_s"] * 1e6),
                # the per-packet work in C (native/relayio.c): on or off, and the sockets it reads now
                "fast_io": int(self.fast_io), "fast_routes": len(self._routes),
                # CPU of the loop's work by phase (us; drain = reading every media socket, the agent ->
                # customer pass-through and RTCP included; decode = the batched G.711 decode)
                "phase_us": {k: int(v * 1e6) for k, v in self.phases.items()}}

    # -- control API (the guard interface of dtmfguard.server.control; called from its thread) -------------
    def list_calls(self) -> list[dict]:
        with self._lock:
            calls = list(self.calls.values())
        return [c.summary() for c in calls]

    def get_bridge(self, short_id: str) -> RelayCall | None:
        with self._lock:
            return self._by_short.get(short_id)

    def set_secure(self, b: RelayCall, on: bool, source: str) -> bool:
        """Secure mode without a payment, switched on or off (control API ``/calls/<id>/secure``; any thread:
        one attribute write, read by the loop at the next frame).  In mask_mode "payment" the customer's audio
        is then masked as during a payment; a payment that runs keeps it on until it ends.  False for a call
        without media yet, one that has ended, or one in mask_mode "always" (masked all call long anyway)."""
        pl = b.pipeline
        if pl is None or b.state == "ended" or getattr(pl, "mask_mode", "always") == "always":
            return False
        if on and not pl.secure_manual:
            b.secure_manual_since = time.monotonic()
        elif not on:
            b.secure_manual_since = 0.0
        pl.secure_manual = bool(on)
        log.info("%s: secure mode %s (%s)", b.id, "on" if on else "off", source)
        return True

    def health(self) -> dict:
        return {"ok": True, "mode": "relay", "active_calls": len(self.calls), "capacity": self.max_calls,
                "uptime_s": round(time.monotonic() - self.started, 1), "late_ticks": self.counters["late_ticks"],
                "media_errors": self.counters["tick_errors"]}

    def close(self) -> None:
        with self._lock:
            calls = list(self.calls.values())
            self.calls.clear()
            self._by_short.clear()
        for call in calls:
            try:
                self._end_call(call, "relay-stopping")
            except Exception:  # noqa: BLE001
                pass
        self._unwatch(self.ng_sock)
        self.ng_sock.close()
        if self.info_sock is not None:
            self._unwatch(self.info_sock)
            self.info_sock.close()
        self._poller.close()
        self._media_poller.close()


def _str(msg: dict, key: str) -> str:
    v = msg.get(key)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not isinstance(v, str) or not v:
        raise RelayError(f"missing {key}")
    if len(v) > 256:
        raise RelayError(f"{key} too long")
    return v


def _int(v: Any) -> int:
    try:
        return max(0, min(int(v), 10000))
    except (TypeError, ValueError):
        return 32


def raise_fd_limit(needed: int) -> None:
    """Four sockets per call: lift the soft descriptor limit towards the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, max(soft, needed))
        if want > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


