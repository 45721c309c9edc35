# SPDX-License-Identifier: GPL-2.0-or-later
"""The benchmarks' real audio: see :mod:`dtmfguard.corpora` (one home for every corpus source)."""
from dtmfguard.corpora import *  # noqa: F401,F403
from dtmfguard.corpora import __all__  # noqa: F401
