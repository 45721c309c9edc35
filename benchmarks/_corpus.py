# SPDX-License-Identifier: GPL-2.0-or-later
"""The benchmarks' real audio: see :mod:`dtmfguard.testkit.corpora` (one home for every corpus source)."""
from dtmfguard.testkit.corpora import *  # noqa: F401,F403
from dtmfguard.testkit.corpora import __all__  # noqa: F401
