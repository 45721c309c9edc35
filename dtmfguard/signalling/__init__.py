# SPDX-License-Identifier: GPL-2.0-or-later
"""Signalled key presses: RFC 4733 telephone-events, SIP INFO bodies, the per-call rate limit, and the
merge of in-band and signalled digits into one stream of :class:`~dtmfguard.events.DigitEvent`.

Wire formats parse from bytes and serialise back; no SIP stack, no pjsua2, no DSP.
"""
