# SPDX-License-Identifier: GPL-2.0-or-later
"""DSP: the Goertzel kernel, the Q.24 detector, the masker and what they share (levels, G.711, parameters).

Numbers in, numbers out.  numpy with optional C kernels (``_native``, ``_masker_native``,
``_detector_native``, sources in ``native/``; ``DTMFGUARD_BACKEND=numpy|native|auto``).  Nothing here
imports telephony code (SIP, pjsua2, the server) or holds card data; the layer rules are checked by
tests/test_import_layers.py.  Importing this package imports nothing (``import dtmfguard`` stays cheap).
"""
