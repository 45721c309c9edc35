# SPDX-License-Identifier: GPL-2.0-or-later
"""The box endpoint: one control endpoint per box, in front of the guard's worker processes.

Served by the supervisor (``dtmfguard serve --workers N``) on ``[control] listen``; it talks to each
worker's local control API (:mod:`dtmfguard.server.control`, loopback only) and offers desktops, CRMs and
browsers one place to list calls, find a call by the id the PBX/CTI knows, start and cancel payments,
follow the masked agent feed (Server-Sent Events with ids and resume), open the agent payment panel,
and scrape ``/metrics``.  Pure Python on aiohttp; no pjsua2 here.

Modules: :mod:`.auth` (admin token, per-agent tokens, single-use tickets), :mod:`.handles` (call
handles that name their box), :mod:`.feeds` (worker links and per-call event logs), :mod:`.metrics`,
:mod:`.openapi`, :mod:`.server` (the aiohttp application and :class:`~.server.BoxEndpoint`).
"""
from __future__ import annotations

__all__: list = []
