# SPDX-License-Identifier: GPL-2.0-or-later
"""Running the guard, in pure Python: configuration (:mod:`.config`), host checks (:mod:`.preflight`), each
worker's control API (:mod:`.control`), the supervisor of worker processes (:mod:`.supervisor`), the
Kamailio front door (:mod:`.kamailio`), real-time scheduling (:mod:`.sched`), systemd notification
(:mod:`.sdnotify`), child processes (:mod:`.procs`) and the box endpoint (:mod:`.endpoint`).

No pjsua2 here: the supervisor never loads it; only the worker processes do (:mod:`dtmfguard.sip.pj`).
"""
