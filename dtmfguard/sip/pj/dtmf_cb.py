# SPDX-License-Identifier: GPL-2.0-or-later
"""pjsua2's ``onDtmfEvent`` for RFC 4733 keys, translated into the pipeline's words.

Why here: the flag values are pjmedia's (``pjmedia/stream.h``), and the pure layers
(:mod:`dtmfguard.signalling`, :mod:`dtmfguard.media`) must not carry a SIP stack's vocabulary.  pjsua2
decodes the telephone-event packets itself and reports each press several times: flags 0 (first),
``PJ_DTMF_IS_UPDATE`` (duration grew), then ``PJ_DTMF_IS_UPDATE | PJ_DTMF_IS_END`` (over, repeated);
``prm.timestamp`` identifies the press (ms), ``prm.duration`` is in ms.

This module does not import pjsua2 (it reads attributes of the ``prm`` it is given), so it is testable
without the wheel.
"""
from __future__ import annotations

__all__ = ["PJ_DTMF_IS_END", "PJ_DTMF_IS_UPDATE", "dtmf_event_ends", "feed_rfc4733"]

#: pjmedia's OnDtmfEvent flags (pjmedia/stream.h PJMEDIA_STREAM_DTMF_IS_UPDATE / _IS_END; pjsua2 does not
#: export the constants).
PJ_DTMF_IS_UPDATE = 1
PJ_DTMF_IS_END = 2


def dtmf_event_ends(flags: int) -> bool:
    """True if an ``onDtmfEvent``'s ``prm.flags`` say the press is over."""
    return bool(int(flags) & PJ_DTMF_IS_END)


def feed_rfc4733(pipeline, prm) -> None:
    """Hand one RFC 4733 ``onDtmfEvent`` (``prm``: ``OnDtmfEventParam``) to ``pipeline``
    (:meth:`dtmfguard.media.pipeline.CallPipeline.on_rfc4733`, which only enqueues)."""
    pipeline.on_rfc4733(str(prm.digit), int(prm.timestamp), int(prm.duration), end=dtmf_event_ends(prm.flags))
