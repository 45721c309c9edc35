# SPDX-License-Identifier: GPL-2.0-or-later
"""What replaces a key press, and when calls are masked: the names, once.

Why a module with no imports: the masker, the media pipeline, the configuration checker and every CLI
command that offers ``--mask``/``--mask-mode`` need the same names; importing them from here costs
nothing (no numpy, no native kernel) and a new mask is added in one place.
"""
from __future__ import annotations

__all__ = ["MASKS", "DEFAULT_MASK", "MASK_MODES"]

#: Mask signals: the flat masking tone, silence, or comfort noise.
MASKS = ("tone", "silence", "noise")

#: What the agent hears instead of a key unless configured otherwise.
DEFAULT_MASK = "tone"

#: "always": every call is masked, no key goes on to the agent leg (the pipeline's default);
#: "payment": masked only while a payment session is attached;
#: "secure": masked always, and outside secure mode (no payment session, no manual secure) every key is
#: relayed to the agent leg as a regenerated event (see :mod:`dtmfguard.media.keyrelay`): the contact-centre setting.
MASK_MODES = ("always", "payment", "secure")
