# SPDX-License-Identifier: GPL-2.0-or-later
"""Rebuild the sample recordings in this folder (deterministic).

customer-card.wav: an Asterisk prompt (CC-BY-SA-3.0, Allison Smith; see
LICENSES.md) followed by the test card number 4111 1111 1111 1111 keyed
in-band, then expiry 1230 and security code 123 — test data only.
Needs Debian's asterisk-core-sounds-en-wav.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from dtmfguard.dsp.audio import read_audio
from dtmfguard.testkit.synth import keypresses

HERE = Path(__file__).resolve().parent
PROMPTS = Path("/usr/share/asterisk/sounds/en")
TEST_PAN = "4111111111111111"


def main() -> None:
    rng = np.random.default_rng(2026)
    speech = [read_audio(PROMPTS / name)[0] for name in ("you-entered.wav", "telephone-number.wav")]
    pan, _ = keypresses(TEST_PAN + "#", tone_ms=80, gap_ms=90, level_dbm0=-8, rng=rng)
    exp, _ = keypresses("1230#", tone_ms=80, gap_ms=90, level_dbm0=-8, rng=rng)
    cvv, _ = keypresses("123#", tone_ms=80, gap_ms=90, level_dbm0=-8, rng=rng)
    out = np.concatenate([speech[1], pan, speech[0], exp, cvv])
    sf.write(HERE / "customer-card.wav", np.round(out).astype(np.int16), 8000, subtype="PCM_16")


if __name__ == "__main__":
    main()
