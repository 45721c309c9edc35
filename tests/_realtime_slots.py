# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-time slots: how many tests with live SIP calls run at once across pytest-xdist workers.

A SIP test runs three to six pjsua2 processes whose media threads are real time (SCHED_RR) and on the clock:
a key's audio is sent, masked and recorded as it happens.  Four xdist workers on the 2-core CI host ran up to
four such tests at once, a dozen real-time media threads on two CPUs, and now and then a call lost a key or a
stretch of speech (a third of clean-clone runs failed one such test, a different one each time).  At most
:data:`SLOTS` of them run at once; the other workers run the DSP tests meanwhile.  A test holds its slot for
its whole protocol: tests marked ``sip`` (conftest.py) and any test that starts a pjsua2 child through
``sip_peers.Proc``.  ``DTMFGUARD_TEST_REALTIME_SLOTS=0`` lifts the limit.  The slots are ``flock`` locks on
files in one directory per user (not per run: two test runs on one host share its CPUs, and so its slots); a
worker that dies drops its slot with its descriptors.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import time

SLOTS = int(os.environ.get("DTMFGUARD_TEST_REALTIME_SLOTS", "2") or 0)
_held: int | None = None  # this worker's slot (a descriptor holding the lock)


def _slot_dir() -> str | None:
    if SLOTS <= 0:
        return None
    path = os.path.join(tempfile.gettempdir(), f"dtmfguard-test-realtime-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def hold() -> None:
    """Take a slot for the running test, waiting for one, unless this worker holds one already."""
    global _held
    where = _slot_dir()
    if _held is not None or where is None:
        return
    while True:
        for k in range(SLOTS):
            fd = os.open(os.path.join(where, f"slot{k}"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _held = fd
            return
        time.sleep(0.05)


def release() -> None:
    """Give the slot back (closing the descriptor drops the lock)."""
    global _held
    if _held is not None:
        os.close(_held)
        _held = None


def held() -> bool:
    return _held is not None
