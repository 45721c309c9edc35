# SPDX-License-Identifier: GPL-2.0-or-later
"""Two changes to SIP messages that pjsua2 cannot make, done by a pjsip module of the guard's own.

1. **Refer-To of a REFER from the agent side** (a transfer): the transfer target must get the caller's
   identity and headers like the first agent leg.  pjsua calls the Refer-To URI itself (pjsua_call.c
   ``on_call_transferred``), and pjsip turns the URI's header parameters into headers of the new INVITE
   (sip_dialog.c ``pjsip_dlg_create_uac``; how Replaces travels in an attended transfer).  So the module's
   ``on_rx_request`` -- at priority 30: after the transaction layer (16, which absorbs retransmissions) and
   before the UA layer (32, which hands the request to the dialog and pjsua) -- asks the guard which headers
   the REFER's dialog should pass on, and replaces the parsed message's Refer-To header with one whose URI
   carries them.
2. **P-Asserted-Identity of the customer's answers**: pjsua builds each answer of a call on the previous
   one (``inv->last_answer``), so a header given to the 180 stays in the 200.  To tell the customer the
   agent side's *changed* identity, the module's ``on_tx_response`` replaces every P-Asserted-Identity of
   that one answer (armed by the guard just before it answers, disarmed right after: sending is synchronous
   on the SIP thread) before pjsip prints the message (the transport layer prints it, at priority 8, after
   every module above it has seen the message).

Validated before pjsip acts (its assertions are compiled in):

* every REFER's Refer-To target must be one pjsua can call: pjsua answers 202 first and only then calls the
  target (``pjsua_call_make_call`` -> ``pjsip_dlg_create_uac``, which parses the URI and each header parameter
  of it as a header), so a target that fails there left an accepted transfer that never started (the bridge
  waited for it for good and its call slots were lost: found by benchmarks/sipfuzz.py, Refer-To
  ``<sip:t@host?Call-ID=%00>``).  Such a REFER is answered 400 here, statelessly, and no other module sees it;

* the parsed message is found through :func:`.pjmodule.find_msg_info` (the layout check the edge module makes
  on every request), and it must match the bytes on the wire: its Refer-To header, printed by pjsip
  (``pjsip_hdr_print_on``), must be the one in the text;
* every header to add is parsed by ``pjsip_parse_hdr`` exactly as pjsip_dlg_create_uac will parse it (a
  header pjsip refuses there would fail the whole transfer), and the new Refer-To value by
  ``pjsip_parse_uri`` as the dialog will; what fails is left out (the transfer goes on without it);
* the new header is built by pjsip's own parser (``pjsip_parse_hdr``) over a buffer that has a byte after
  the value (pjsua writes a NUL there) and linked with ``pj_list_insert_after`` / ``pj_list_erase``;
* an answer's message is read at its ``pjsip_tx_data`` offset only after a checked read (through
  ``/proc/self/mem``, which fails with an error where a bad pointer would crash the process) shows a
  response with the status code pjsip's own summary of the tx_data names.

Anything that does not check out changes nothing: the transfer then goes to the target without the caller's
headers, or the answer keeps its earlier identity, and a warning is logged.  Memory the new headers live in
(a pjsip pool and the Python buffers) is kept per call until :meth:`SipRewriter.forget`.

Threads: pjsip calls the module from ``libHandleEvents`` (the guard's SIP thread); every callback catches
everything.
"""
from __future__ import annotations

import ctypes
import logging
import os
import re
from typing import Callable, Sequence

from ..identity import refer_target_with_headers
from ..sipcheck import split_message
from .pjmodule import MAX_PKT_LENS, VOIDP, PjStr, find_msg_info, pj_str, respond_stateless
from .pjmodule import install as install_module

__all__ = ["SipRewriter", "install"]

log = logging.getLogger(__name__)

_PRIORITY = 30  # PJSIP_MOD_PRIORITY_UA_PROXY_LAYER (32) - 2, after PJSIP_MOD_PRIORITY_TSX_LAYER (16)
_REQUEST_MSG, _RESPONSE_MSG = 0, 1  # pjsip_msg_type_e
#: pjsip_tx_data (sip_transport.h 2.15.1, x86-64): list links 16, pool 8, obj_name 32, info 8, rx_timestamp 16,
#: mgr 8, op_key (pj_ioqueue_op_key_t: 34 pointers = 272; tdata, token, callback: 24), lock 8, then msg
_TDATA_MSG_OFFSET = 16 + 8 + 32 + 8 + 16 + 8 + 272 + 24 + 8

_URI_HEADER_SAFE = "-_.!~*'()[]/?:+$"  # RFC 3261 §25.1: unreserved and hnv-unreserved stay, the rest is escaped


def _unescape(data: bytes) -> bytes:
    """As pjsip's ``pj_str_unescape``: ``%`` and two hex digits become that byte, anything else stays."""
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


def uri_headers(value: str) -> list[tuple[bytes, bytes | None]]:
    """The header parameters of the URI in a Refer-To value (``<sip:...?A=b&C=d>;p``, or a bare URI) as
    pjsip's URI parser leaves them (sip_parser.c ``int_parse_hparam``: name and value unescaped):
    [(name, value)], value None where the parameter has none (pjsip_dlg_create_uac makes no header of it)."""
    data = value.strip().encode("utf-8", "surrogateescape")
    lt = data.find(b"<")
    gt = data.find(b">", lt) if lt >= 0 else -1
    inner = data if lt < 0 else data[lt + 1:gt if gt >= 0 else len(data)]
    query = inner.partition(b"?")[2]
    out = []
    for part in query.split(b"&") if query else []:
        name, eq, val = part.partition(b"=")
        out.append((_unescape(name), _unescape(val) if eq and val else None))
    return out


_MEM_FD: int | None = None


def peek(addr: int, size: int) -> bytes | None:
    """``size`` bytes at ``addr`` of this process, or None if unmapped (read through /proc/self/mem, which
    fails with an error where a ctypes read would crash the process)."""
    global _MEM_FD
    if addr <= 0 or size <= 0:
        return None
    try:
        if _MEM_FD is None:
            _MEM_FD = os.open("/proc/self/mem", os.O_RDONLY | os.O_CLOEXEC)
        data = os.pread(_MEM_FD, size, addr)
        return data if len(data) == size else None
    except (OSError, ValueError, OverflowError):
        return None


class SipRewriter:
    """The registered module (see module doc).

    ``on_refer(call_id, refer_to)``: SIP thread, for every REFER pjsip is about to hand to a dialog; returns
    ``(key, headers)``: the call it belongs to (memory is kept under it until :meth:`forget`) and the headers
    [(name, value)] the transfer target should get; or None to leave the REFER as it is.
    """

    def __init__(self, on_refer: Callable[[str, str], tuple[str, Sequence[tuple[str, str]]] | None]):
        self.on_refer = on_refer
        self._lib = None
        self._mod = None
        self._sizes = MAX_PKT_LENS
        self._armed = None  # (call_id, code, name, values, key): the one answer to rewrite
        self._took = False
        self._kept: dict = {}  # key -> [(pool, buffers...)]: memory pjsip's messages point into
        #: counters: REFERs rewritten, headers left out (pjsip would not parse them), checks that failed
        self.stats = {"refer_rewritten": 0, "headers_dropped": 0, "refer_unchecked": 0, "answers_rewritten": 0,
                      "answers_unchecked": 0, "refer_refused": 0}
        #: call key -> the last Refer-To value given to pjsua (for logs and tests)
        self.rewritten: dict = {}

    # -- set-up ---------------------------------------------------------------------------------------
    def install(self) -> bool:
        mod = install_module(b"mod-dtmfguard-rewrite", _PRIORITY, {
            "pjsip_endpt_create_pool": (VOIDP, [VOIDP, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]),
            "pjsip_endpt_release_pool": (None, [VOIDP, VOIDP]),
            "pjsip_msg_find_hdr_by_name": (VOIDP, [VOIDP, VOIDP, VOIDP]),
            "pjsip_hdr_print_on": (ctypes.c_int, [VOIDP, ctypes.c_char_p, ctypes.c_size_t]),
            "pjsip_parse_hdr": (VOIDP, [VOIDP, VOIDP, ctypes.c_char_p, ctypes.c_size_t, VOIDP]),
            "pjsip_parse_uri": (VOIDP, [VOIDP, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint]),
            "pjsip_generic_string_hdr_create": (VOIDP, [VOIDP, VOIDP, VOIDP]),
            "pjsip_tx_data_get_info": (ctypes.c_char_p, [VOIDP]),
            "pj_list_insert_after": (None, [VOIDP, VOIDP]),
            "pj_list_erase": (None, [VOIDP]),
        }, log=log, unavailable="SIP rewrite module unavailable (%s): transfer targets get no caller headers, a "
                                "changed agent identity is not passed back",
            on_rx_request=self._on_rx_request, on_tx_response=self._on_tx_response)
        if mod is None:
            return False
        self._mod, self._lib = mod, mod.lib
        return True

    # -- memory ---------------------------------------------------------------------------------------
    def _pool(self, key: str):
        lib = self._lib
        pool = lib.pjsip_endpt_create_pool(lib.pjsua_get_pjsip_endpt(), b"dgrw%p", 1024, 1024)
        if pool:
            self._kept.setdefault(key, []).append([pool])
        return pool

    def _keep(self, key: str, *objs) -> None:
        self._kept[key][-1].extend(objs)

    def forget(self, key: str) -> None:
        """The call ``key`` has ended (main thread, never inside a pjsip callback): free what its rewritten
        messages pointed into."""
        self.rewritten.pop(key, None)
        lib = self._lib
        for entry in self._kept.pop(key, []):
            lib.pjsip_endpt_release_pool(lib.pjsua_get_pjsip_endpt(), entry[0])

    def close(self) -> None:
        for key in list(self._kept):
            self.forget(key)

    # -- helpers --------------------------------------------------------------------------------------
    def _print(self, hdr: int) -> bytes | None:
        buf = ctypes.create_string_buffer(4096)
        n = self._lib.pjsip_hdr_print_on(hdr, buf, len(buf))
        return buf.raw[:n] if 0 < n < len(buf) else None

    def _parses_as_header(self, pool, name: bytes, value: bytes) -> bool:
        """pjsip_parse_hdr takes ``name: value`` as pjsip_dlg_create_uac will (sip_dialog.c: the value with a NUL
        after it; every byte counted, a NUL inside too)."""
        n = ctypes.create_string_buffer(name, len(name) + 1)
        v = ctypes.create_string_buffer(value, len(value) + 1)
        hname = PjStr(ctypes.cast(n, VOIDP).value, len(name))
        return bool(self._lib.pjsip_parse_hdr(pool, ctypes.byref(hname), v, len(value), None))

    def target_callable(self, value: str) -> bool:
        """pjsua could call the Refer-To ``value``: pjsip parses it as a URI (pjsua_call_make_call) and every
        header parameter of it with a value as that header (pjsip_dlg_create_uac).  True when nothing could
        be checked (no pool): pjsua then decides, as before."""
        lib = self._lib
        endpt = lib.pjsua_get_pjsip_endpt()
        pool = lib.pjsip_endpt_create_pool(endpt, b"dgrv%p", 1024, 1024)
        if not pool:
            return True
        try:
            data = value.strip().encode("utf-8", "surrogateescape")
            if not lib.pjsip_parse_uri(pool, ctypes.create_string_buffer(data, len(data) + 1), len(data), 0):
                return False
            return all(self._parses_as_header(pool, name, hvalue)
                       for name, hvalue in uri_headers(value) if hvalue is not None)
        finally:
            lib.pjsip_endpt_release_pool(endpt, pool)

    # -- REFER (on_rx_request) ------------------------------------------------------------------------
    def _on_rx_request(self, rdata) -> int:
        try:
            found = find_msg_info(rdata, self._sizes)
            if found is None:
                return 0
            off, size, buf, length = found
            self._sizes = (size,)
            if ctypes.string_at(buf, 6) != b"REFER ":
                return 0
            parts = split_message(ctypes.string_at(buf, length))
            if parts is None:
                return 0
            values = {}
            for name, value in parts[1]:
                values.setdefault(name, []).append(value)
            call_id, refer_to = values.get("call-id", [""]), values.get("refer-to", [])
            if len(call_id) != 1 or len(refer_to) != 1 or not call_id[0] or not refer_to[0]:
                return 0  # pjsua answers a REFER without (or with two) Refer-To itself
            if not self.target_callable(refer_to[0]):
                self.stats["refer_refused"] += 1
                log.warning("REFER refused (400): the SIP stack could not call its Refer-To target")
                respond_stateless(self._lib, rdata, 400, "Bad Refer-To")
                return 1  # handled: pjsua never accepts a transfer it cannot start
            got = self.on_refer(call_id[0], refer_to[0])
            if got:
                key, headers = got
                msg = VOIDP.from_address(rdata + off + 16).value or 0  # rdata->msg_info.msg
                self._rewrite_refer(msg, key, refer_to[0], list(headers))
        except BaseException as exc:  # noqa: BLE001 - never into C
            try:
                log.warning("REFER not rewritten (%s)", type(exc).__name__)
            except BaseException:  # noqa: BLE001
                pass
        return 0  # never consumes the request: pjsip goes on to the dialog and pjsua

    def _rewrite_refer(self, msg: int, key: str, old: str, headers: list) -> bool:
        lib = self._lib
        head = peek(msg, 4)
        if head is None or int.from_bytes(head, "little") != _REQUEST_MSG:
            self.stats["refer_unchecked"] += 1
            log.warning("REFER not rewritten (its parsed message did not check out)")
            return False
        name = ctypes.create_string_buffer(b"Refer-To")
        old_hdr = lib.pjsip_msg_find_hdr_by_name(msg, ctypes.byref(pj_str(name)), None)
        printed = self._print(old_hdr) if old_hdr else None
        if printed is None or printed.partition(b":")[2].strip() != old.encode("utf-8", "surrogateescape"):
            self.stats["refer_unchecked"] += 1
            log.warning("REFER not rewritten (its Refer-To header did not match the message text)")
            return False
        pool = self._pool(key)
        if not pool:
            return False
        keep = [name]
        good = []
        for hname, hvalue in headers:
            if self._parses_as_header(pool, hname.encode("utf-8", "surrogateescape"),
                                      hvalue.encode("utf-8", "surrogateescape")):
                good.append((hname, hvalue))
            else:
                self.stats["headers_dropped"] += 1
                log.warning("a caller header (%s) is not passed to the transfer target: the SIP stack would refuse "
                            "it", hname[:40])
        new_value = refer_target_with_headers(old, good)
        data = new_value.encode("utf-8", "surrogateescape")
        check = ctypes.create_string_buffer(data)
        if not lib.pjsip_parse_uri(pool, check, len(data), 0):
            self.stats["refer_unchecked"] += 1
            log.warning("REFER not rewritten (the target with the caller's headers is no URI the SIP stack takes)")
            return False
        value = ctypes.create_string_buffer(data, len(data) + 1)  # pjsua writes a NUL after the value
        hdr = lib.pjsip_parse_hdr(pool, ctypes.byref(pj_str(name)), value, len(data), None)
        if not hdr or self._print(hdr) != b"Refer-To: " + data:
            self.stats["refer_unchecked"] += 1
            log.warning("REFER not rewritten (the new Refer-To header did not parse back)")
            return False
        self._keep(key, keep, value)
        lib.pj_list_insert_after(old_hdr, hdr)
        lib.pj_list_erase(old_hdr)
        self.stats["refer_rewritten"] += 1
        self.rewritten[key] = new_value
        return True

    # -- answers (on_tx_response) -----------------------------------------------------------------------
    def arm_answer(self, call_id: str, code: int, name: str, values: Sequence[str], key: str) -> None:
        """The INVITE response with status ``code`` that pjsip sends in dialog ``call_id`` from inside the
        answer call that follows gets its ``name`` headers replaced with ``values``.  Main thread, right
        before the pjsua2 call; then :meth:`disarm` right after it.  (pjsip_inv_answer sends a *clone* of the
        previous answer, inv.c 2.15.1, so the message is known by its dialog and status, not its tx_data.)"""
        self._armed = (str(call_id), int(code), name, list(values), key)
        self._took = False

    def disarm(self) -> bool:
        """True if the armed answer was rewritten."""
        if self._armed is not None:
            self.stats["answers_unchecked"] += 1
        self._armed = None
        took, self._took = self._took, False
        return took

    def _on_tx_response(self, tdata) -> int:
        try:
            armed = self._armed
            if armed is None:
                return 0
            if self._rewrite_answer(tdata, *armed):  # the armed answer: once
                self._armed = None
                self._took = True
                self.stats["answers_rewritten"] += 1
        except BaseException:  # noqa: BLE001 - never into C
            pass
        return 0

    def _rewrite_answer(self, tdata: int, call_id: str, code: int, name: str, values: list, key: str) -> bool:
        lib = self._lib
        info = lib.pjsip_tx_data_get_info(tdata) or b""  # "Response msg 200/INVITE/cseq=1 (tdta0x...)"
        if not info.startswith(b"Response msg %d/INVITE/" % code):
            return False
        raw = peek(tdata + _TDATA_MSG_OFFSET, 8)
        msg = int.from_bytes(raw, "little") if raw else 0
        head = peek(msg, 12)
        if head is None or int.from_bytes(head[:4], "little") != _RESPONSE_MSG or \
                int.from_bytes(head[8:12], "little", signed=True) != code:
            return False
        cid_name = ctypes.create_string_buffer(b"Call-ID")
        anchor = lib.pjsip_msg_find_hdr_by_name(msg, ctypes.byref(pj_str(cid_name)), None)
        printed = self._print(anchor) if anchor else None
        if printed is None or printed.partition(b":")[2].strip() != call_id.encode("utf-8", "surrogateescape"):
            return False  # another dialog's answer (or a layout that did not check out)
        hname = ctypes.create_string_buffer(name.encode())
        pool = self._pool(key)
        if not pool:
            return False
        new = []
        for value in values:
            hvalue = ctypes.create_string_buffer(value.encode("utf-8", "surrogateescape"))
            hdr = lib.pjsip_generic_string_hdr_create(pool, ctypes.byref(pj_str(hname)), ctypes.byref(pj_str(hvalue)))
            if not hdr:
                return False
            new.append(hdr)
        self._keep(key, hname)
        for _ in range(16):
            old = lib.pjsip_msg_find_hdr_by_name(msg, ctypes.byref(pj_str(hname)), None)
            if not old:
                break
            lib.pj_list_erase(old)
        for hdr in reversed(new):
            lib.pj_list_insert_after(anchor, hdr)
        return True


def install(on_refer) -> SipRewriter | None:
    """Create and register the module (after the endpoint started); None when it could not be registered."""
    rw = SipRewriter(on_refer)
    return rw if rw.install() else None
