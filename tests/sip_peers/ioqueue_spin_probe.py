# SPDX-License-Identifier: GPL-2.0-or-later
"""Does a held media-transport lock stall a pjsua process that runs the guard's media scheduling?

pjlib's select() ioqueue (2.15.1 ``ioqueue_dispatch_read_event``) only *tries* a readable socket's key lock;
when another thread holds it, the read is skipped and the poll starts again at once.  pjmedia's "media"
thread therefore busy-loops for as long as the lock is held.  Under SCHED_RR above a normal-policy holder on
the same CPU, that loop kept the holder off its CPU until the kernel's RT throttling stepped in, up to 950 ms
of every second.  The guard now runs its SIP thread (the holder: stream start and stop) under SCHED_RR above
the media thread, which then preempts the loop at once (:data:`dtmfguard.server.sched.MEDIA_THREAD_NAMES`).

This probe reproduces it deterministically in one process pinned to one CPU: a call to itself (RTP flowing
into both legs), the main thread scheduled and polling as the guard's SIP loop, the guard's own port in the
conference bridge (its first tick applies the guard's media scheduling:
:func:`dtmfguard.server.sched.on_clock_tick`), then a second thread, scheduled as the guard's SIP thread
(``--holder-normal``: left under the normal policy, as the SIP thread was before), holds the callee's
transport group lock for ``--hold-ms`` while RTP arrives, ``--holds`` times.  It prints one JSON line: each
hold's length from acquire to release, and the policy, RT priority and nice value of the media, clock and
holder threads.  ``{"skip": ...}`` when this process may not use SCHED_RR (then nothing real time runs).

    python tests/sip_peers/ioqueue_spin_probe.py --port 25060 --rtp 41000
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import threading
import time

import pjsua2 as pj

from dtmfguard.server import sched
from dtmfguard.sip.pj.endpoint import EndpointSettings, account_config, create_endpoint
from dtmfguard.sip.pj.port import PipelinePort

_GRP_LOCK_OFFSET = 56  # pjmedia_transport (transport.h 2.15.1, x86-64): name[32], type (4 + 4 pad), op, user_data


def _thread_sched(name: str) -> dict:
    """Policy (0 normal, 2 SCHED_RR), RT priority and nice of this process's threads named ``name``."""
    out = {}
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/comm") as fh:
                if fh.read().strip() != name:
                    continue
            with open(f"/proc/self/task/{t}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            out[t] = {"policy": int(f[38]), "priority": int(f[37]), "nice": int(f[16])}
        except (OSError, IndexError, ValueError):
            continue
    return out


class _Call(pj.Call):
    def __init__(self, acc, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.stream = 0
        self.confirmed = False

    def onCallState(self, prm):
        try:
            self.confirmed = self.confirmed or self.getInfo().state == pj.PJSIP_INV_STATE_CONFIRMED
        except Exception:  # noqa: BLE001 - never into pjsua2
            pass

    def onStreamCreated(self, prm):
        try:
            self.stream = int(prm.stream)
        except Exception:  # noqa: BLE001
            pass


class _Account(pj.Account):
    def __init__(self):
        super().__init__()
        self.incoming: list = []

    def onIncomingCall(self, prm):
        try:
            self.incoming.append(_Call(self, prm.callId))
        except Exception:  # noqa: BLE001
            pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rtp", type=int, required=True)
    p.add_argument("--holds", type=int, default=6)
    p.add_argument("--hold-ms", type=float, default=20.0)
    p.add_argument("--holder-normal", action="store_true",
                   help="leave the holder under the normal policy (the guard's SIP thread before: the spin)")
    a = p.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # pjsua's threads, created below, inherit it
    if not sched.configure("auto"):
        print(json.dumps({"skip": "this process may not use SCHED_RR"}), flush=True)
        return 0
    s = EndpointSettings(host="127.0.0.1", port=a.port, transports=("udp",), rtp_port=a.rtp, rtp_range=20,
                         user_agent="spin-probe", edge_legs_per_call=1)
    ep = create_endpoint(s)
    sched.raise_sip_thread()  # this thread polls SIP below, as the guard's does
    acc = _Account()
    acc.create(account_config(s, "probe"))
    caller = _Call(acc)
    caller.makeCall(f"sip:probe@127.0.0.1:{a.port}", pj.CallOpParam(True))
    deadline = time.monotonic() + 10
    callee = None
    while time.monotonic() < deadline:
        ep.libHandleEvents(10)
        while acc.incoming and callee is None:
            callee = acc.incoming.pop()
            op = pj.CallOpParam()
            op.statusCode = 200
            callee.answer(op)
        if callee is not None and caller.confirmed and callee.confirmed and callee.stream:
            break
    if callee is None or not callee.stream:
        print(json.dumps({"error": "the call to itself did not start"}), flush=True)
        os._exit(1)
    port = PipelinePort(name="probe")  # detached: silence, ticked by the clock thread like the guard's port
    port.startTransmit(caller.getAudioMedia(-1))  # the caller sends RTP to the callee's transport
    lib = ctypes.CDLL(pj._pjsua2.__file__)
    lib.pjmedia_stream_get_transport.restype = ctypes.c_void_p
    lib.pjmedia_stream_get_transport.argtypes = [ctypes.c_void_p]
    for fn in (lib.pj_grp_lock_acquire, lib.pj_grp_lock_release):
        fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p]
    tp = lib.pjmedia_stream_get_transport(callee.stream)
    grp = ctypes.c_void_p.from_address(tp + _GRP_LOCK_OFFSET).value if tp else None
    if not grp:
        print(json.dumps({"error": "no transport group lock"}), flush=True)
        os._exit(1)
    time.sleep(1.0)  # the clock thread ticked the port (scheduling applied), RTP flows
    holds: list = []
    holder_sched: dict = {}

    def holder():
        ep.libRegisterThread("holder")
        if not a.holder_normal:
            sched.raise_sip_thread()
        holder_sched.update(policy=os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0),
                            priority=os.sched_getparam(0).sched_priority)
        for _ in range(a.holds):
            t0 = time.perf_counter()
            lib.pj_grp_lock_acquire(grp)
            time.sleep(a.hold_ms / 1000)  # RTP arrives meanwhile: the media thread finds the key locked
            lib.pj_grp_lock_release(grp)
            holds.append(round((time.perf_counter() - t0) * 1000, 1))
            time.sleep(0.25)

    t = threading.Thread(target=holder, name="holder")
    t.start()
    end = time.monotonic() + a.holds * 3 + 10
    while t.is_alive() and time.monotonic() < end:  # the SIP loop goes on meanwhile, as in the guard
        ep.libHandleEvents(10)
    print(json.dumps({"holds_ms": holds, "media": _thread_sched("media"), "clock": _thread_sched("clock"),
                      "holder": holder_sched}), flush=True)
    os._exit(0)  # a pjsua process's teardown order is not what this probe is about (notes/pjsua2.md)


if __name__ == "__main__":
    sys.exit(main())
