# SPDX-License-Identifier: GPL-2.0-or-later
"""systemd's service notification protocol (``sd_notify(3)``), spoken directly: no libsystemd binding.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (an ``AF_UNIX`` datagram socket path, or an
abstract one starting with ``@``); the service sends newline-separated ``KEY=value`` assignments to it:
``READY=1`` once it serves (systemd then considers the unit started), ``STATUS=...`` a one-line human
status (``systemctl status``), ``STOPPING=1`` when it begins to stop, and ``WATCHDOG=1`` at least every
``WATCHDOG_USEC`` microseconds when ``WatchdogSec=`` is set (systemd kills and restarts a service that goes
silent).  ``WATCHDOG_PID``, if set, names the process that must send the pings.  Without
``NOTIFY_SOCKET`` every call is a no-op, so ``dtmfguard serve`` behaves the same outside systemd.
"""
from __future__ import annotations

import logging
import os
import socket
import time

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends notifications to ``NOTIFY_SOCKET`` (from ``env``, default ``os.environ``); never raises."""

    def __init__(self, env: dict | None = None):
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self.address = ("\0" + path[1:]) if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        #: ping twice per watchdog period (sd_watchdog_enabled(3) recommends half the timeout)
        self.watchdog_interval_s = int(usec) / 2e6 if watchdog else 0.0
        self._last_ping = 0.0
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: object) -> bool:
        """``send(READY=1, STATUS="...")``: one datagram; False if there is no socket or sending failed."""
        if not self.address:
            return False
        text = "\n".join(f"{k}={str(v).replace(chr(10), ' ')}" for k, v in fields.items())
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(text.encode(), self.address)
            return True
        except OSError as exc:
            log.debug("sd_notify failed (%s)", type(exc).__name__)
            return False

    def ready(self, status: str) -> bool:
        return self.send(READY=1, STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def stopping(self, status: str = "stopping") -> bool:
        return self.send(STOPPING=1, STATUS=status)

    def watchdog(self, now: float | None = None) -> bool:
        """Ping the watchdog if it is on and half its period has passed; call it from the main loop."""
        if not self.watchdog_interval_s:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_ping < self.watchdog_interval_s:
            return False
        self._last_ping = now
        return self.send(WATCHDOG=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
