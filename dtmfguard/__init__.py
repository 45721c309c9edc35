# SPDX-License-Identifier: GPL-2.0-or-later
"""dtmfguard: detect, mask and capture DTMF card entry in live calls."""
from __future__ import annotations

import logging

from .events import DigitEvent
from .dsp.params import DEFAULT_PARAMS, DetectorParams

__version__ = "0.1.0"
__all__ = ["DigitEvent", "DetectorParams", "DEFAULT_PARAMS", "DtmfDetector", "detect", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name):  # lazy: importing the package stays cheap
    if name in ("DtmfDetector", "detect"):
        from .dsp import detector

        return getattr(detector, name)
    raise AttributeError(name)
