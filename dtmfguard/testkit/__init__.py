# SPDX-License-Identifier: GPL-2.0-or-later
"""Tooling for tests and benchmarks: the adversarial decoder (:mod:`.adversary`), signal synthesis
(:mod:`.synth`), real-audio corpora from Debian packages (:mod:`.corpora`).

Never imported by the runtime (tests/test_import_layers.py checks it); the apps that show the
guard at work (:mod:`dtmfguard.apps`) may use it.
"""
