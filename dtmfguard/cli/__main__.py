# SPDX-License-Identifier: GPL-2.0-or-later
"""python -m dtmfguard.cli"""
import sys

from . import main

sys.exit(main())
