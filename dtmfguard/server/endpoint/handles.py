# SPDX-License-Identifier: GPL-2.0-or-later
"""Call handles: ``<box>.<worker>.<boot>.<call>``, e.g. ``box1.0.3fa2c1d0.c7``.

A handle names the box that holds the call (so any box can redirect to it), the worker process on that
box, the worker's boot id (a restarted worker numbers its calls from c1 again: an old handle must not
reach a new call) and the worker's call id.
"""
from __future__ import annotations

import dataclasses
import re
import socket

__all__ = ["Handle", "parse_handle", "default_box_name"]

_PART = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclasses.dataclass(frozen=True)
class Handle:
    box: str
    worker: int
    boot: str
    call: str

    def __str__(self) -> str:
        return f"{self.box}.{self.worker}.{self.boot}.{self.call}"


def parse_handle(text: str) -> Handle | None:
    parts = (text or "").split(".")
    if len(parts) != 4 or not all(_PART.match(p) for p in parts) or not parts[1].isdigit():
        return None
    return Handle(parts[0], int(parts[1]), parts[2], parts[3])


def default_box_name() -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0])[:32].strip("-")
    return name or "box"
