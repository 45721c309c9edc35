# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP back-to-back user agent on pjsua2: the only package that imports pjsua2.

Why a B2BUA: the guard must *terminate* the customer's media to replace DTMF
tones before the agent hears them, so it cannot be a proxy; it answers the
customer, calls the agent and bridges the two legs through
:class:`dtmfguard.pipeline.CallPipeline` (customer -> agent) while agent ->
customer audio passes untouched.

pjsua2 is imported lazily by :mod:`.endpoint`, :mod:`.port`, :mod:`.b2bua` and
:mod:`.peers`; :mod:`.config`, :mod:`.control`, :mod:`.supervisor` and
:mod:`.kamailio` are pure Python.  See /work/shared/notes/pjsua2.md for the
wheel's measured limits (4 calls per process, so 2 bridged calls per worker).
"""
