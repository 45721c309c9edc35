# SPDX-License-Identifier: GPL-2.0-or-later
"""A pjsip module of the guard's own, registered through ctypes: what :mod:`.edge` and :mod:`.rewrite` share.

pjsua2 has no Python hook inside pjsip's message path, so those two modules call the C functions the wheel's
extension exports (``pjsip_endpt_register_module`` and friends) with ctypes.  This module holds the parts they
have in common:

* :func:`load_lib`: the wheel's extension as a ``ctypes.CDLL`` with the argument and result types of the
  functions a caller names (raises ``OSError``/``AttributeError`` where the wheel lacks one);
* :class:`Module`: a ``pjsip_module`` with a name, a priority and the callbacks a caller gives, registered
  with pjsua's endpoint; it keeps the name buffer and the callback thunks alive as long as itself (pjsip
  keeps pointers to both);
* :func:`install`: both in one step, with one warning (the caller's text and the cause) when either fails;
* :func:`respond_stateless`: answer a received request without a transaction (``pjsip_endpt_respond_stateless``);
* :func:`find_msg_info`: where ``pjsip_rx_data`` keeps the received message (its offset depends on the
  wheel's ``PJSIP_MAX_PKT_LEN``), checked against the rdata it is read from.

Layouts are pjproject 2.15's on x86-64 (LP64).  Callbacks are called by pjsip on the SIP thread; the
callables given to :class:`Module` must catch everything (no Python exception may cross into C).
"""
from __future__ import annotations

import ctypes
import logging
from typing import Callable, Mapping, Sequence

import pjsua2 as pj

__all__ = ["VOIDP", "RX_CB", "PjStr", "pj_str", "load_lib", "Module", "install", "respond_stateless", "find_msg_info",
           "MAX_PKT_LENS", "PKT_OFFSET"]

VOIDP = ctypes.c_void_p
#: ``pj_bool_t (*)(pjsip_rx_data*)``; also used for ``on_tx_response`` (``pj_status_t (*)(pjsip_tx_data*)``)
RX_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)

PKT_OFFSET = 320  # offsetof(pjsip_rx_data, pkt_info.packet) on x86-64 (tp_info 304 + pj_time_val 16)
MAX_PKT_LENS = (4000, 8000, 16000, 32000, 65536)


class PjStr(ctypes.Structure):  # pj_str_t
    _fields_ = [("ptr", VOIDP), ("slen", ctypes.c_ssize_t)]


def pj_str(buf) -> PjStr:
    """A pj_str_t over a ``ctypes.create_string_buffer`` (the caller keeps ``buf`` alive)."""
    return PjStr(ctypes.cast(buf, VOIDP).value, len(buf.value))


class _PjsipModule(ctypes.Structure):  # pjsip_module (sip_module.h)
    _fields_ = [("prev", VOIDP), ("next", VOIDP), ("name", PjStr), ("id", ctypes.c_int),
                ("priority", ctypes.c_int), ("load", VOIDP), ("start", VOIDP), ("stop", VOIDP),
                ("unload", VOIDP), ("on_rx_request", RX_CB), ("on_rx_response", RX_CB),
                ("on_tx_request", VOIDP), ("on_tx_response", RX_CB), ("on_tsx_state", VOIDP)]


#: what every module needs: the endpoint, the registration call and stateless answers
_BASE_SIGNATURES = {
    "pjsua_get_pjsip_endpt": (VOIDP, []),
    "pjsip_endpt_register_module": (ctypes.c_int, [VOIDP, VOIDP]),
    "pjsip_endpt_respond_stateless": (ctypes.c_int, [VOIDP, VOIDP, ctypes.c_int, VOIDP, VOIDP, VOIDP]),
}


def load_lib(signatures: Mapping[str, tuple[object, Sequence[object]]]) -> ctypes.CDLL:
    """The wheel's extension (already loaded: dlopen returns that same library) with ``restype`` and
    ``argtypes`` set for pjsua's endpoint, module registration and each ``name: (restype, argtypes)`` given.
    Raises OSError or AttributeError when the library or a function is missing."""
    lib = ctypes.CDLL(pj._pjsua2.__file__)
    for name, (res, args) in {**_BASE_SIGNATURES, **signatures}.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, list(args)
    return lib


class Module:
    """One ``pjsip_module`` of the guard's, for :meth:`register` with pjsua's endpoint.

    ``on_rx_request`` / ``on_rx_response`` / ``on_tx_response``: ``callable(pointer) -> int`` or None (pjsip
    skips a NULL callback).  They run on the SIP thread and must not raise.
    """

    def __init__(self, lib: ctypes.CDLL, name: bytes, priority: int, *,
                 on_rx_request: Callable[[int], int] | None = None,
                 on_rx_response: Callable[[int], int] | None = None,
                 on_tx_response: Callable[[int], int] | None = None):
        self.lib = lib
        self.name = name
        self.priority = priority
        self._name = ctypes.create_string_buffer(name)  # pjsip keeps pointers to the name and the thunks
        self._struct = mod = _PjsipModule()
        mod.name = pj_str(self._name)
        mod.id = -1
        mod.priority = priority
        self._thunks = []
        for field, fn in (("on_rx_request", on_rx_request), ("on_rx_response", on_rx_response),
                          ("on_tx_response", on_tx_response)):
            if fn is not None:
                thunk = RX_CB(fn)
                self._thunks.append(thunk)
                setattr(mod, field, thunk)

    def register(self) -> int:
        """Register with pjsua's endpoint (after ``libStart``); pjsip's status (0: registered)."""
        lib = self.lib
        return lib.pjsip_endpt_register_module(lib.pjsua_get_pjsip_endpt(), ctypes.byref(self._struct))


def install(name: bytes, priority: int, signatures: Mapping[str, tuple[object, Sequence[object]]], *,
            log: logging.Logger, unavailable: str, on_rx_request: Callable[[int], int] | None = None,
            on_rx_response: Callable[[int], int] | None = None,
            on_tx_response: Callable[[int], int] | None = None) -> Module | None:
    """:func:`load_lib` with ``signatures``, then a :class:`Module` registered with pjsua's endpoint (after
    ``libStart``); its ``lib`` has the functions named.  None when either fails, after one warning on ``log``:
    ``unavailable % cause`` (the exception's type, or pjsip's status)."""
    try:
        lib = load_lib(signatures)
    except (OSError, AttributeError) as exc:
        log.warning(unavailable, type(exc).__name__)
        return None
    mod = Module(lib, name, priority, on_rx_request=on_rx_request, on_rx_response=on_rx_response,
                 on_tx_response=on_tx_response)
    status = mod.register()
    if status != 0:
        log.warning(unavailable, f"pjsip status {status}")
        return None
    return mod


def respond_stateless(lib: ctypes.CDLL, rdata: int, code: int, reason: str, hdr_list=None) -> int:
    """Answer the request in ``rdata`` with ``code`` and ``reason`` (ASCII, at most 120 characters) and the
    headers of ``hdr_list`` (a ``ctypes.byref`` to a pjsip header list head, or None), without a transaction;
    pjsip's status (0: sent)."""
    text = ctypes.create_string_buffer(reason.encode("ascii", "replace")[:120])
    return lib.pjsip_endpt_respond_stateless(lib.pjsua_get_pjsip_endpt(), rdata, code, ctypes.byref(pj_str(text)),
                                             hdr_list, None)


def _msg_buf_offset(max_pkt: int) -> int:
    """offsetof(pjsip_rx_data, msg_info.msg_buf) for a given PJSIP_MAX_PKT_LEN (x86-64, LP64)."""
    off = PKT_OFFSET + max_pkt + 4  # packet[], pj_uint32_t zero
    off = (off + 7) & ~7
    off += 8  # pj_ssize_t len
    off += 28  # pj_sockaddr src_addr (union, sockaddr_in6)
    off += 4  # int src_addr_len
    off += 46  # char src_name[PJ_INET6_ADDRSTRLEN]
    off = (off + 3) & ~3
    off += 4  # int src_port
    return (off + 7) & ~7


def find_msg_info(rdata: int, sizes: Sequence[int] = MAX_PKT_LENS):
    """Where ``rdata->msg_info`` starts, for the first PJSIP_MAX_PKT_LEN in ``sizes`` whose layout checks out:
    (offset of msg_info.msg_buf, that size, msg_buf, len), or None.  The check: msg_buf points into the same
    rdata's packet buffer (which precedes msg_info) and the length fits in what is left of it.
    ``rdata->msg_info.msg`` (the parsed message) follows at offset + 16 (``char *msg_buf; int len;``)."""
    lo = rdata + PKT_OFFSET
    for size in sizes:
        off = _msg_buf_offset(size)
        buf = VOIDP.from_address(rdata + off).value or 0
        length = ctypes.c_int.from_address(rdata + off + 8).value
        if lo <= buf < rdata + off and 0 < length <= rdata + off - buf:
            return off, size, buf, length
    return None
