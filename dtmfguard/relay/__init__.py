# SPDX-License-Identifier: GPL-2.0-or-later
"""Relay mode: dtmfguard as a media element driven by Kamailio's ``rtpengine`` module.

Why: the pjsua2 wheel caps a process at 4 calls, so ``serve`` needs one process per 2 calls.  In relay
mode Kamailio does all the SIP (a record-routing proxy) and asks this process, over the "ng" control
protocol (bencoded dictionaries over UDP), to rewrite each SDP offer/answer so that RTP flows through
it.  One process carries hundreds of calls on one selector loop with one 20 ms tick for all of them;
every call's customer -> agent audio goes through the same :class:`~dtmfguard.media.pipeline.CallPipeline`
as ``serve`` (masker, detector, RFC 4733 events consumed and masked, digit merge, payment session).

Modules: :mod:`.bencode` (wire format), :mod:`.sdp` (offer/answer rewriting), :mod:`.rtp` (RTP header,
jitter/reorder buffer with concealment), :mod:`.codecs` (G.711, G.722), :mod:`.srtp` (SDES-keyed SRTP via pylibsrtp), :mod:`.engine` (the ng server,
calls, the media loop), :mod:`.sipinfo_rx` (SIP INFO keys forked by Kamailio), :mod:`.kamailio_cfg` (the Kamailio configuration for relay mode).
Nothing here imports pjsua2.
"""
from __future__ import annotations

__all__ = ["bencode", "sdp", "rtp", "codecs", "srtp", "engine", "sipinfo_rx", "kamailio_cfg"]
