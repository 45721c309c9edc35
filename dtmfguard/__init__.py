# SPDX-License-Identifier: GPL-2.0-or-later
"""dtmfguard: detect, mask and capture DTMF card entry in live calls."""
from __future__ import annotations

import logging
import os as _os
import sys as _sys

# One BLAS thread, unless the user set otherwise (before numpy loads its BLAS: later it is too late).  The guard's
# SIP and media threads run under SCHED_RR; a BLAS call from one of them (a masker is built on the SIP thread:
# an eigendecomposition) that wakes a thread pool spins on a core waiting for its lower-priority helpers, until
# the kernel's real-time throttling lets them run: each new call stalled the worker's SIP thread for 0.95 s and
# starved the other calls' media threads on that core (benchmarks/calls.py, 2 cores).  A call's matrices are
# small: one thread loses nothing.
#: False when numpy had loaded its BLAS before this package, without OPENBLAS_NUM_THREADS=1 (the guard warns)
BLAS_SINGLE_THREAD = "numpy" not in _sys.modules or _os.environ.get("OPENBLAS_NUM_THREADS") == "1"
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_name, "1")

from .events import DigitEvent  # noqa: E402 - after the BLAS setting above
from .dsp.params import DEFAULT_PARAMS, DetectorParams  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DigitEvent", "DetectorParams", "DEFAULT_PARAMS", "DtmfDetector", "detect", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name):  # lazy: importing the package stays cheap
    if name in ("DtmfDetector", "detect"):
        from .dsp import detector

        return getattr(detector, name)
    raise AttributeError(name)
