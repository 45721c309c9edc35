# SPDX-License-Identifier: GPL-2.0-or-later
"""Programs built on the library to show it: ``dtmfguard demo`` (:mod:`.demo`, a whole payment call on this
machine) and ``dtmfguard live`` (:mod:`.live`, the bench mode with a microphone and a speaker).

They may use the test tooling (:mod:`dtmfguard.testkit`); nothing in the runtime imports them.
"""
