# SPDX-License-Identifier: GPL-2.0-or-later
"""What the customer's phone plays into the call: the bundled speech prompts and in-band key presses."""
from __future__ import annotations

from importlib import resources
from typing import Dict, Tuple

import numpy as np

from .options import GAP_MS, PROMPTS, RATE, TONE_MS, DemoError

__all__ = ["speech_prompts", "customer_audio"]


def speech_prompts() -> Dict[str, np.ndarray]:
    """The bundled speech prompts (8 kHz int16), by name."""
    from ...dsp.audio import read_audio

    base = resources.files("dtmfguard") / "data"
    out = {}
    for name in PROMPTS:
        with resources.as_file(base / f"speech-{name}.wav") as path:
            x, rate = read_audio(str(path))
        if rate != RATE:
            raise DemoError(f"bundled prompt {name} is not {RATE} Hz")
        out[name] = x
    return out


def customer_audio(plan: Dict[str, str], seed: int = 7) -> Tuple[np.ndarray, list, int]:
    """What the customer's phone plays into the call: speech, in-band key presses, speech.

    Returns the int16 samples, the in-band presses as :class:`~dtmfguard.testkit.synth.ToneSpan` (ground truth
    for the adversarial decoder's score; kept in memory only) and where the first key starts (samples).
    """
    from ...testkit.synth import ToneSpan

    from ...testkit.synth import keypresses

    speech = speech_prompts()
    rng = np.random.default_rng(seed)

    def pause(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * RATE))

    parts = [speech["hello"], pause(0.3), speech["one-moment-please"], pause(0.5)]
    spans: list = []
    first_key = sum(p.size for p in parts)
    inband = plan["inband"]
    if inband:
        # keep the fields apart as a caller would (a breath between card number, expiry and code)
        groups = inband.split("#", 1)
        groups = [groups[0] + "#", groups[1]] if len(groups) == 2 else groups
        for group in [g for g in groups if g]:
            base = sum(p.size for p in parts)
            tones, tone_spans = keypresses(group, tone_ms=TONE_MS, gap_ms=GAP_MS, lead_ms=0, tail_ms=0,
                                           level_dbm0=-10, rng=rng)
            spans += [ToneSpan(s.digit, base + s.start, base + s.end) for s in tone_spans]
            parts += [tones, pause(0.6)]
        parts += [speech["auth-thankyou"], pause(0.2), speech["goodbye"]]
    x = np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)
    return x, spans, first_key
