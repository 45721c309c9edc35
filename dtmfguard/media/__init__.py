# SPDX-License-Identifier: GPL-2.0-or-later
"""One call's media path: customer audio and signalled keys in, masked audio for the agent and digits for
the payment session out (:mod:`.pipeline`), and secure mode's key-relay decisions (:mod:`.keyrelay`).

Joins :mod:`dtmfguard.dsp`, :mod:`dtmfguard.signalling` and :mod:`dtmfguard.capture`; driven by the
pjsua2 port (:mod:`dtmfguard.sip.pj`) or by relay mode (:mod:`dtmfguard.relay`), never importing either.
"""
