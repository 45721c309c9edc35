# SPDX-License-Identifier: GPL-2.0-or-later
"""G.711 codecs, the DigitEvent type, sample-rate handling."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from dtmfguard import detect
from dtmfguard.events import DIGITS, DigitEvent, digit_to_event_code, event_code_to_digit
from dtmfguard.dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from dtmfguard.testkit.synth import keypresses

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop  # reference only (removed in Python 3.13)
    except ImportError:  # pragma: no cover
        audioop = None


@pytest.mark.parametrize("codec", ["ulaw", "alaw"])
def test_g711_matches_reference_encoder_bit_exact(codec):
    if audioop is None:
        pytest.skip("audioop not available on this Python")
    x = np.random.default_rng(1).integers(-32768, 32767, 50000).astype(np.int16)
    x[:4] = [-32768, 32767, 0, -1]
    enc = ulaw_encode if codec == "ulaw" else alaw_encode
    ref = audioop.lin2ulaw if codec == "ulaw" else audioop.lin2alaw
    assert enc(x) == ref(x.tobytes(), 2)


@pytest.mark.parametrize("codec", ["ulaw", "alaw"])
def test_g711_decode_all_256_codes(codec):
    dec = ulaw_decode if codec == "ulaw" else alaw_decode
    values = dec(bytes(range(256)))
    assert values.dtype == np.int16 and values.size == 256
    if audioop is not None:
        ref = audioop.ulaw2lin if codec == "ulaw" else audioop.alaw2lin
        assert values.tobytes() == ref(bytes(range(256)), 2)
    enc = ulaw_encode if codec == "ulaw" else alaw_encode
    assert dec(enc(values)).tobytes() == values.tobytes()  # decoded values are fixed points


@pytest.mark.parametrize("codec", ["ulaw", "alaw"])
def test_g711_quantisation_error_is_small(codec):
    enc, dec = (ulaw_encode, ulaw_decode) if codec == "ulaw" else (alaw_encode, alaw_decode)
    x = np.linspace(-30000, 30000, 10001)
    err = np.abs(dec(enc(x)) - x)
    assert np.all(err <= np.maximum(np.abs(x) * 0.07, 20))  # 8-bit companding: <~6 % relative


def test_rfc4733_event_codes_round_trip():
    assert [event_code_to_digit(i) for i in range(16)] == list("0123456789*#ABCD")
    assert all(event_code_to_digit(digit_to_event_code(d)) == d for d in DIGITS)
    for bad in (-1, 16, 255, "1", None):
        with pytest.raises(ValueError):
            event_code_to_digit(bad)


def test_digit_event_repr_hides_the_digit():
    # events that differ only in the key print identically: the key cannot be read from a log line
    shown = {(repr(DigitEvent(d, 800, 1360, 8000, -10.0, "inband")), str(DigitEvent(d, 800, None))) for d in DIGITS}
    assert len(shown) == 1
    assert "hidden" in next(iter(shown))[0]
    e = DigitEvent("7", 800, None)
    assert not e.complete and e.duration_ms is None and e.start_s == 0.1


@pytest.mark.parametrize("kwargs", [dict(digit="x"), dict(digit="11"), dict(source="carrier-pigeon"),
                                    dict(start=10, end=5), dict(rate=0)])
def test_digit_event_validates(kwargs):
    base = dict(digit="5", start=0, end=10, rate=8000, source="inband")
    base.update(kwargs)
    with pytest.raises(ValueError):
        DigitEvent(**base)


@pytest.mark.parametrize("rate", [11025, 22050, 32000, 44100, 48000])
def test_other_rates_detected_without_resampling(rate):
    x, spans = keypresses(DIGITS, rate=rate, rng=np.random.default_rng(rate))
    events = detect(x, rate)
    assert "".join(e.digit for e in events) == DIGITS
    assert max(abs(e.start - s.start) for e, s in zip(events, spans)) <= rate * 0.002
