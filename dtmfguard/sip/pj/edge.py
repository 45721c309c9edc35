# SPDX-License-Identifier: GPL-2.0-or-later
"""The guard's edge: every SIP request is checked (:mod:`dtmfguard.sip.sipcheck`) before pjsua acts on it.

pjsua2 has no Python hook ahead of its transaction layer, and pjsip's assertions are compiled into the
wheel: an SDP ``c=`` address of 254+ characters aborts the process when the call is answered, a DTLS-SRTP
offer with optional SRTP crashes it.  So this module registers a pjsip module of its own through ctypes
(:mod:`.pjmodule`, shared with :mod:`.rewrite`), against the C functions the wheel's extension exports (as
:func:`dtmfguard.sip.pj.b2bua._pjsip` does for SIP INFO answers):

* ``on_rx_request`` at priority 15, after the transport layer (8) and before the transaction layer (16):
  pjsip calls it for every request it parsed, before any transaction, dialog or call exists.  It reads
  the request's raw bytes (``rdata->msg_info.msg_buf`` / ``len``), runs :func:`check_request`, and for a
  refusal answers statelessly (``pjsip_endpt_respond_stateless``, with ``Allow`` / ``Unsupported`` when
  the status needs them) and returns ``PJ_TRUE``: no other module sees the request.  A malformed ACK is
  dropped (ACKs get no answer).
* ``on_rx_response``: a response whose SDP would be refused (the agent side) is dropped; the agent leg
  then times out and the customer gets the guard's normal failure answer.

Where ``pjsip_rx_data`` keeps those two fields depends on the wheel's ``PJSIP_MAX_PKT_LEN``; the offset
is computed for the x86-64 layout of pjproject 2.15 and checked on every request (the pointer must point
into the same ``rdata``'s packet buffer).  If the check ever fails, the request passes unchecked and one
warning is logged: the guard then behaves as it did without this module.

Threads: pjsip calls the module from ``libHandleEvents`` (the guard's SIP thread).  Nothing here raises
into C: every callback catches everything.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from collections import Counter, OrderedDict
from typing import Callable

from ... import logthrottle
from ..sipcheck import Refusal, answer_unparsed, check_request, check_sdp, is_initial_invite, split_message
from .pjmodule import MAX_PKT_LENS, PKT_OFFSET, VOIDP, PjStr, find_msg_info, pj_str, respond_stateless
from .pjmodule import install as install_module

__all__ = ["EdgeGuard", "install", "find_msg_info"]

log = logging.getLogger(__name__)
logthrottle.install(log)  # one line per request refused: a flood must not fill the disk

_PRIORITY = 15  # PJSIP_MOD_PRIORITY_TSX_LAYER - 1


class _DroppedData(ctypes.Structure):  # pjsip_tp_dropped_data
    _fields_ = [("tp", VOIDP), ("data", VOIDP), ("len", ctypes.c_size_t), ("status", ctypes.c_int)]


class _TpSelector(ctypes.Structure):  # pjsip_tpselector with u.transport
    _fields_ = [("type", ctypes.c_int), ("disable_connection_reuse", ctypes.c_int), ("transport", VOIDP)]


_DROP_CB = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DroppedData))
_PJSIP_TPSELECTOR_TRANSPORT = 1
_TRANSPORT_TYPES = (1, 2, 3)  # PJSIP_TRANSPORT_UDP, TCP, TLS: the selector's transport must match its type


class _HdrList(ctypes.Structure):  # the list head of pjsip_hdr (PJ_DECL_LIST_MEMBER first)
    _fields_ = [("prev", VOIDP), ("next", VOIDP), ("pad", ctypes.c_char * 64)]


#: pjsua's call table cannot take another bridge (customer leg + agent leg): the guard's own capacity.
#: pjsua itself would answer 486 Busy Here, which a front door does not fail over on (RFC 3261 §21.5.4:
#: 503 with Retry-After says "try another server").
_FULL = Refusal(503, "Service Unavailable", (("Retry-After", "2"),))
_ERXOVERFLOW = 171062
_PJSIP_ROLE_UAS = 1  # pjsip_role_e
#: calls let in whose INVITE retransmissions may still pass the "full" check: a caller retransmits for 32 s at
#: most (64 T1, RFC 3261 §17.1.1.2), when far fewer calls than this can have started on one worker
_LET_IN_KEPT = 1024

_TOO_LARGE = Refusal(513, "Message Too Large")


class EdgeGuard:
    """The registered module and its counters (read by the guard's health report).

    ``on_refused(refusal, method)`` is called for every request refused here (SIP thread), for logging
    and counting by the owner; it must not raise (it is wrapped anyway).
    """

    def __init__(self, on_refused: Callable[[Refusal, str], None] | None = None, legs_per_call: int = 2):
        self.on_refused = on_refused
        self.legs_per_call = legs_per_call  # pjsua calls one incoming INVITE needs: a B2BUA's 2, a phone's 1
        self.refused: Counter = Counter()  # status code -> count (SIP thread writes; readers copy)
        self.checked = 0
        self.unchecked = 0
        self._lock = threading.Lock()
        self._lib = None
        self._mod = None
        self._offset = None
        self._max_pkt = 0
        self._warned = False
        self.answered_unparsed = 0
        self.invite_failures: Counter = Counter()
        self._tp_rdata: dict = {}  # transport -> its rdata (TCP/TLS keep one per connection), SIP thread only
        self.retransmissions = 0  # INVITEs of calls already let in, passed to the transaction layer while full
        self._let_in: OrderedDict = OrderedDict()  # transaction key -> transport of the latest calls let in

    # -- set-up ---------------------------------------------------------------------------------------
    def install(self) -> bool:
        """Register the module with pjsua's endpoint; False (and a warning) when not possible."""
        mod = install_module(b"mod-dtmfguard-edge", _PRIORITY, {
            "pjsip_endpt_create_pool": (VOIDP, [VOIDP, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]),
            "pjsip_endpt_release_pool": (None, [VOIDP, VOIDP]),
            "pjsip_generic_string_hdr_create": (VOIDP, [VOIDP, VOIDP, VOIDP]),
            "pjsip_tx_data_get_info": (ctypes.c_char_p, [VOIDP]),
            "pjsua_call_get_count": (ctypes.c_uint, []),
            "pjsua_call_get_max_count": (ctypes.c_uint, []),
            "pjsip_get_invite_method": (VOIDP, []),
            "pjsip_tsx_create_key": (ctypes.c_int, [VOIDP, VOIDP, ctypes.c_int, VOIDP, VOIDP]),
            "pjsip_tsx_layer_find_tsx": (VOIDP, [VOIDP, ctypes.c_int]),
        }, log=log, unavailable="SIP edge checks unavailable (%s): requests reach pjsua unchecked",
            on_rx_request=self._on_rx_request, on_rx_response=self._on_rx_response,
            on_tx_response=self._on_tx_response)
        if mod is None:
            return False
        self._mod, self._lib = mod, mod.lib
        lib = mod.lib
        try:
            lib.pjsip_endpt_get_tpmgr.restype = VOIDP
            lib.pjsip_endpt_get_tpmgr.argtypes = [VOIDP]
            lib.pjsip_tpmgr_set_drop_data_cb.restype = ctypes.c_int
            lib.pjsip_tpmgr_set_drop_data_cb.argtypes = [VOIDP, _DROP_CB]
            lib.pjsip_endpt_send_raw.restype = ctypes.c_int
            lib.pjsip_endpt_send_raw.argtypes = [VOIDP, ctypes.c_int, VOIDP, ctypes.c_char_p, ctypes.c_size_t,
                                                 VOIDP, ctypes.c_int, VOIDP, VOIDP]
            self._cb_drop = _DROP_CB(self._on_dropped)
            lib.pjsip_tpmgr_set_drop_data_cb(lib.pjsip_endpt_get_tpmgr(lib.pjsua_get_pjsip_endpt()), self._cb_drop)
        except AttributeError:
            log.warning("SIP edge: requests pjsip cannot parse stay unanswered (no drop callback)")
        log.info("SIP edge checks on (pjsip module priority %d)", _PRIORITY)
        return True

    # -- raw request access ---------------------------------------------------------------------------
    def _raw(self, rdata: int) -> bytes | None:
        """The bytes of the message ``rdata`` holds, or None if the layout check fails."""
        found = find_msg_info(rdata, (self._max_pkt,) if self._offset else MAX_PKT_LENS)
        if found is not None:
            self._offset, self._max_pkt, buf, length = found
            return ctypes.string_at(buf, length)
        if not self._warned:
            self._warned = True
            log.warning("SIP edge checks: unexpected pjsip_rx_data layout; requests pass unchecked")
        return None

    # -- callbacks (SIP thread, from C) -----------------------------------------------------------------
    def _on_rx_request(self, rdata) -> int:
        try:
            raw = self._raw(rdata)
            if raw is None:
                self.unchecked += 1
                return 0
            self.checked += 1
            tp = VOIDP.from_address(rdata + 8).value  # rdata->tp_info.transport
            if tp and tp not in self._tp_rdata:  # a stream transport keeps one rdata: see _on_dropped
                if len(self._tp_rdata) >= 256:
                    self._tp_rdata.pop(next(iter(self._tp_rdata)))
                self._tp_rdata[tp] = rdata
            refusal = check_request(raw)
            if refusal is None and is_initial_invite(raw):
                key = self._tsx_key(rdata)
                if not self._calls_full():
                    if key is not None:  # let in: remembered with the transport it came on
                        self._let_in[key] = tp
                        if len(self._let_in) > _LET_IN_KEPT:
                            self._let_in.popitem(last=False)
                elif key is not None and self._let_in.get(key) == tp and self._has_transaction(key):
                    # a retransmission of a call let in, its first answer not yet heard (the guard was slow to
                    # send it): the transaction layer absorbs it (RFC 3261 §17.2.1).  Refused as "full", the
                    # caller's transaction ended with that 503 and the call it had placed was lost.  (The same
                    # branch on another transport is not one: the layer would answer it on the first one.)
                    self.retransmissions += 1
                    return 0
                else:
                    refusal = _FULL
            if refusal is None:
                return 0
            method = raw.split(b" ", 1)[0][:32].decode("ascii", "replace")
            with self._lock:
                self.refused[refusal.code] += 1
            if refusal.code:
                self._respond(rdata, refusal)
            if self.on_refused is not None:
                try:
                    self.on_refused(refusal, method)
                except Exception:  # noqa: BLE001 - never into C
                    pass
            return 1  # PJ_TRUE: handled, no other module sees it
        except BaseException:  # noqa: BLE001 - never into C
            return 0

    def _on_rx_response(self, rdata) -> int:
        try:
            raw = self._raw(rdata)
            if raw is None:
                return 0
            parts = split_message(raw)
            if parts is None:
                return 1
            _, headers, body = parts
            ctype = [v for n, v in headers if n == "content-type"]
            if body.strip() and ctype and ctype[0].split(";")[0].strip().lower() == "application/sdp":
                clen = [v for n, v in headers if n == "content-length"]
                if clen and clen[0].isdigit():
                    body = body[:int(clen[0])]
                refusal = check_sdp(body)
                if refusal is not None:
                    with self._lock:
                        self.refused["response-dropped"] += 1
                    log.warning("dropped a response whose SDP would be refused (%s)", refusal.reason)
                    return 1
            return 0
        except BaseException:  # noqa: BLE001 - never into C
            return 0

    def _on_tx_response(self, tdata) -> int:
        """Every final failure answer to an INVITE leaves through here, whoever made it (the guard, or
        pjsua before any guard code ran: 488 codec/SRTP mismatch, 406 insecure SRTP signalling, 486 call
        table full): counted in ``invite_failures`` and logged with its status (never its content)."""
        try:
            # pjsip's own summary ("Response msg 488/INVITE/cseq=1 (tdta0x..)"): no struct offsets needed
            info = self._lib.pjsip_tx_data_get_info(tdata) or b""
            if not info.startswith(b"Response msg "):
                return 0
            code_s, _, rest = info[13:].partition(b"/")
            if rest.startswith(b"INVITE/") and code_s.isdigit() and 300 <= int(code_s) < 700:
                code = int(code_s)
                with self._lock:
                    self.invite_failures[code] += 1
                log.info("INVITE answered %d", code)
            return 0
        except BaseException:  # noqa: BLE001 - never into C
            return 0

    def _tsx_key(self, rdata: int) -> bytes | None:
        """The key pjsip's transaction layer gives this request's server transaction (``pjsip_tsx_create_key``,
        UAS role, as the layer computes it), or None."""
        lib = self._lib
        pool = lib.pjsip_endpt_create_pool(lib.pjsua_get_pjsip_endpt(), b"edgetsx%p", 256, 256)
        if not pool:
            return None
        try:
            key = PjStr()
            if lib.pjsip_tsx_create_key(pool, ctypes.byref(key), _PJSIP_ROLE_UAS, lib.pjsip_get_invite_method(),
                                        rdata) != 0 or not key.ptr or not 0 < key.slen <= 4096:
                return None
            return ctypes.string_at(key.ptr, key.slen)
        finally:
            lib.pjsip_endpt_release_pool(lib.pjsua_get_pjsip_endpt(), pool)

    def _has_transaction(self, key: bytes) -> bool:
        """pjsip's transaction layer holds a transaction of this key (looked up without locking: only its
        presence is read)."""
        buf = ctypes.create_string_buffer(key)  # (kept alive while pjsip reads it; a key has no NUL)
        return bool(self._lib.pjsip_tsx_layer_find_tsx(ctypes.byref(pj_str(buf)), 0))

    def _calls_full(self) -> bool:
        """pjsua's call table cannot take another bridge (customer leg + agent leg).  Letting the customer
        leg in with one slot free (pjsua's own limit) made the agent leg fail and, under the fuzz run's
        load, ran the worker out of ioqueue handles (17 aborts in one run, none in three runs with this)."""
        lib = self._lib
        return lib.pjsua_call_get_count() + self.legs_per_call > lib.pjsua_call_get_max_count()

    def _on_dropped(self, dd_ptr) -> None:
        """pjsip could not parse a message (or it lacks a mandatory header) and drops it: answer a request
        that can be answered (400, or 505/416/405/501 ... as :func:`check_request` says), statelessly,
        through the transport it came on.  Only when the data sits at the start of an ``rdata`` packet
        buffer whose transport is the one reported (checked), which is every UDP datagram and most TCP
        messages; otherwise nothing is sent, as before."""
        try:
            if not self._offset:
                return  # layout not confirmed by a parsed request yet
            dd = dd_ptr.contents
            if not dd.tp or not dd.data or not 0 < dd.len <= self._max_pkt:
                return
            rdata = dd.data - PKT_OFFSET
            known = self._tp_rdata.get(dd.tp)
            if known is not None and known + PKT_OFFSET <= dd.data < known + PKT_OFFSET + self._max_pkt:
                rdata = known  # a later message in a stream transport's buffer
            if VOIDP.from_address(rdata + 8).value != dd.tp:  # rdata->tp_info.transport
                return
            raw = ctypes.string_at(dd.data, dd.len)
            addr_off = ((PKT_OFFSET + self._max_pkt + 4 + 7) & ~7) + 8  # pkt_info.src_addr
            sockaddr = ctypes.string_at(rdata + addr_off, 28)
            family = int.from_bytes(sockaddr[:2], "little")
            if family != 2:  # AF_INET only
                return
            ip = ".".join(str(b) for b in sockaddr[4:8])
            made = answer_unparsed(raw, ip, _TOO_LARGE if dd.status == _ERXOVERFLOW else None)
            if made is None:
                return
            resp, code, port = made
            dest = bytearray(sockaddr[:16])
            if port is not None:
                dest[2:4] = port.to_bytes(2, "big")
            dest_buf = ctypes.create_string_buffer(bytes(dest), 28)
            sel = _TpSelector(_PJSIP_TPSELECTOR_TRANSPORT, 0, dd.tp)
            lib = self._lib
            endpt = lib.pjsua_get_pjsip_endpt()
            for tp_type in _TRANSPORT_TYPES:
                if lib.pjsip_endpt_send_raw(endpt, tp_type, ctypes.byref(sel), resp, len(resp), dest_buf, 16,
                                            None, None) in (0, 70002):  # PJ_SUCCESS, PJ_EPENDING
                    with self._lock:
                        self.refused[code] += 1
                        self.answered_unparsed += 1
                    if self.on_refused is not None:
                        self.on_refused(Refusal(code, "unparsable request"), "request")
                    return
        except BaseException:  # noqa: BLE001 - never into C
            return

    def _respond(self, rdata: int, refusal: Refusal) -> None:
        lib = self._lib
        endpt = lib.pjsua_get_pjsip_endpt()
        pool = None
        head = None
        try:
            if refusal.headers:
                pool = lib.pjsip_endpt_create_pool(endpt, b"edge%p", 512, 512)
                head = _HdrList()
                addr = ctypes.addressof(head)
                head.prev = head.next = addr
                keep = []
                for name, value in refusal.headers:
                    n = ctypes.create_string_buffer(name.encode("ascii"))
                    v = ctypes.create_string_buffer(value.encode("ascii", "replace"))
                    ns, vs = pj_str(n), pj_str(v)
                    keep += [n, v, ns, vs]
                    hdr = lib.pjsip_generic_string_hdr_create(pool, ctypes.byref(ns), ctypes.byref(vs))
                    if not hdr:
                        continue
                    # pj_list_insert_before(head, hdr)
                    last = head.prev
                    VOIDP.from_address(hdr).value = last  # hdr->prev
                    VOIDP.from_address(hdr + 8).value = addr  # hdr->next
                    VOIDP.from_address(last + 8).value = hdr  # last->next
                    head.prev = hdr
            status = respond_stateless(lib, rdata, refusal.code, refusal.reason,
                                       ctypes.byref(head) if head is not None else None)
            if status != 0:
                log.debug("stateless %d not sent (pjsip status %d)", refusal.code, status)
        finally:
            if pool:
                lib.pjsip_endpt_release_pool(endpt, pool)

    def snapshot(self) -> dict:
        with self._lock:
            refused = dict(self.refused)
            failures = dict(self.invite_failures)
        return {"invite_failures_sent": {str(k): v for k, v in sorted(failures.items())},
                "checked": self.checked, "unchecked": self.unchecked, "answered_unparsed": self.answered_unparsed,
                "retransmissions_passed": self.retransmissions,
                "refused": {str(k): v for k, v in sorted(refused.items(), key=str)}}


def install(on_refused=None, legs_per_call: int = 2) -> EdgeGuard | None:
    """Create and register the edge module (after ``libStart``); None when it could not be registered."""
    edge = EdgeGuard(on_refused, legs_per_call)
    return edge if edge.install() else None
