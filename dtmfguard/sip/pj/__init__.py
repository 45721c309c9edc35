# SPDX-License-Identifier: GPL-2.0-or-later
"""The pjsua2 B2BUA: the only package that imports pjsua2.

Why a B2BUA: the guard must *terminate* the customer's media to replace DTMF tones before the agent
hears them, so it cannot be a proxy; it answers the customer, calls the agent and bridges the two legs
through :class:`dtmfguard.media.pipeline.CallPipeline` (customer -> agent) while agent -> customer audio
passes untouched.  Modules: :mod:`.endpoint` (the pjsua2 library), :mod:`.edge` (checks every request
before pjsip acts), :mod:`.rewrite` (a pjsip module: a transfer's Refer-To with the caller's headers, the
agent side's changed identity in the customer's answers), :mod:`.port` (the audio port), :mod:`.jbuf` (the
customer stream's jitter-buffer counters, frame by frame, for in-band key durations), :mod:`.b2bua` (the
bridge), :mod:`.dtmf_cb` (pjsua2's DTMF event flags), :mod:`.relay_dtmf`, :mod:`.dialogs`, :mod:`.shutdown`,
and :mod:`.peers` (test phones).
See the pjsua2 notes for the wheel's measured limits (4 calls per process, so 2 bridged calls per worker).

Importing this package does not import pjsua2; its modules do.
"""
