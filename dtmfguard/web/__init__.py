# SPDX-License-Identifier: GPL-2.0-or-later
"""The agent payment panel: static files served by the box endpoint at ``/panel/`` (no build step)."""
