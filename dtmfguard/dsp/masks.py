# SPDX-License-Identifier: GPL-2.0-or-later
"""What replaces a key press, and when calls are masked: the names, once.

Why a module with no imports: the masker, the media pipeline, the configuration checker and every CLI
command that offers ``--mask``/``--mask-mode`` need the same names; importing them from here costs
nothing (no numpy, no native kernel) and a new mask is added in one place.
"""
from __future__ import annotations

__all__ = ["MASKS", "DEFAULT_MASK", "MASK_MODES", "DEFAULT_LOOKAHEAD_MS", "LOOKAHEAD_RANGE_MS"]

#: Mask signals: the flat masking tone, silence, or comfort noise.
MASKS = ("tone", "silence", "noise")

#: What the agent hears instead of a key unless configured otherwise.
DEFAULT_MASK = "tone"

#: "always": every call is masked, no key goes on to the agent leg (the pipeline's default);
#: "payment": masked only while a payment session is attached;
#: "secure": masked always, and outside secure mode (no payment session, no manual secure) every key is
#: relayed to the agent leg as a regenerated event (see :mod:`dtmfguard.media.keyrelay`): the contact-centre setting.
MASK_MODES = ("always", "payment", "secure")

#: The masker's look-ahead in ms, live calls and recordings alike (issue 12: the same for both, at most 20 ms):
#: the longest screen window (16 ms) plus the 4 ms fade fits in it, so a press confirmed on its first whole
#: 16 ms window is masked from its first sample, and a short-window suspect can wait 8 ms for the 16 ms window
#: centred on it.  Here, not in the masker, so that ``--help`` texts can state it without importing numpy.
DEFAULT_LOOKAHEAD_MS = 20.0

#: The look-ahead values the masker accepts (ms); a command line checks against these before building one.
LOOKAHEAD_RANGE_MS = (0.0, 1000.0)
