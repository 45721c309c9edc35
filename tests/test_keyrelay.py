# SPDX-License-Identifier: GPL-2.0-or-later
"""dtmfguard.media.keyrelay: which keys go on to the agent leg in secure mode, and the card-run alarm (no call needed)."""
from __future__ import annotations

import numpy as np
import pytest

from dtmfguard.events import DigitEvent
from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.media.keyrelay import CardRunWatch, KeyRelay, RelayKey, luhn_ok
from dtmfguard.testkit.synth import keypresses

PAN = "4111111111111111"


def keys(text, start=0, tone=800, gap=800, rate=8000):
    out, pos = [], start
    for d in text:
        out.append(DigitEvent(d, pos, pos + tone, rate))
        pos += tone + gap
    return out


def test_luhn_examples():
    assert luhn_ok(PAN) and luhn_ok("5555555555554444") and luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112") and not luhn_ok("1234567812345678")


def test_relay_passes_every_key_outside_secure_mode_with_its_duration():
    r = KeyRelay()
    for ev in keys("1*9#", tone=960):
        r.offer(ev, secure=False)
    assert "".join(k.digit for k in r.outbox) == "1*9#"
    assert {k.duration_ms for k in r.outbox} == {120}


def test_nothing_is_relayed_in_secure_mode_nor_a_key_straddling_the_switch():
    r = KeyRelay()
    evs = keys("123", tone=800, gap=800)
    r.secure_frame(evs[1].start + 160)  # secure mode seen while key 2 was sounding, then off again
    for ev in evs[:2]:
        assert r.offer(ev, secure=True) is None  # keys complete while secure
    assert r.offer(evs[1], secure=False) is None  # started before the last secure frame: never relayed
    assert r.offer(evs[2], secure=False) is not None
    assert "".join(k.digit for k in r.outbox) == "3"


def test_a_card_run_raises_one_alert_without_digits():
    r = KeyRelay(action="alert")
    for ev in keys("1" + PAN + "#"):
        r.offer(ev, secure=False)
    assert len(r.alerts) == 1
    alert = r.alerts[0]
    assert set(alert) == {"type", "t", "action"} and alert["action"] == "alerted"
    assert PAN not in repr(r) and PAN not in repr(r.watch) and "4" not in repr(list(r.outbox)[0])
    assert "".join(k.digit for k in r.outbox) == "1" + PAN + "#"  # alert only: all relayed


def test_stop_holds_long_runs_and_drops_a_card():
    r = KeyRelay(action="stop", hold_after=6)
    for ev in keys(PAN + "#"):
        r.offer(ev, secure=False)
    assert "".join(k.digit for k in r.outbox) == PAN[:6]
    assert r.stats["dropped_card_run"] == 11  # 10 held digits and the '#'
    assert r.alerts[0]["action"] == "stopped"


def test_stop_releases_a_long_entry_that_is_not_a_card_when_it_ends():
    r = KeyRelay(action="stop", hold_after=6)
    account = "12345678901"  # 11 digits: no card
    evs = keys(account)
    for ev in evs:
        r.offer(ev, secure=False)
    assert "".join(k.digit for k in r.outbox) == account[:6]
    r.tick(evs[-1].end + r.watch.gap + 1)  # the pause that ends the run
    assert "".join(k.digit for k in r.outbox) == account and not r.alerts


def test_stop_releases_on_hash_and_a_new_run_starts_after_a_pause():
    r = KeyRelay(action="stop", hold_after=2)
    evs = keys("98765#")
    for ev in evs:
        r.offer(ev, secure=False)
    assert "".join(k.digit for k in r.outbox) == "98765#"
    later = keys("12", start=evs[-1].end + r.watch.gap + 8000)
    for ev in later:
        r.offer(ev, secure=False)
    assert "".join(k.digit for k in r.outbox) == "98765#12"


def test_secure_mode_drops_what_stop_was_holding():
    r = KeyRelay(action="stop", hold_after=2)
    evs = keys("98765")
    for ev in evs:
        r.offer(ev, secure=False)
    r.secure_frame(evs[-1].end + 160)
    r.tick(evs[-1].end + r.watch.gap * 2)
    assert "".join(k.digit for k in r.outbox) == "98"


def test_a_configured_pattern_counts_as_a_card():
    w = CardRunWatch(pattern=r"^99\d{6}$")
    assert [w.feed(ev) for ev in keys("99123456")][-1] is True
    with pytest.raises(ValueError, match="regular expression"):
        CardRunWatch(pattern="(")


def test_a_pause_ends_the_run():
    w = CardRunWatch(run_gap_ms=1000)
    first = keys(PAN[:8])
    second = keys(PAN[8:], start=first[-1].end + 8001 + 1)
    assert not any(w.feed(ev) for ev in first + second)


def test_relay_key_repr_hides_the_digit():
    assert "7" not in repr(RelayKey("7", 120, "inband"))


@pytest.mark.parametrize("tone_ms", [45, 70, 120, 250, 600])
def test_pipeline_relays_inband_keys_once_with_their_duration(tone_ms):
    x, spans = keypresses("1593#0*8D", tone_ms=tone_ms, gap_ms=80, rng=np.random.default_rng(tone_ms))
    p = CallPipeline(8000, mask_mode="secure")
    x = np.concatenate([x, np.zeros(4000)]).astype(np.int16)
    for i in range(0, x.size - 159, 160):
        p.process_customer_frame(x[i:i + 160])
    got = list(p.relay.outbox)
    assert "".join(k.digit for k in got) == "1593#0*8D"
    assert max(abs(k.duration_ms - tone_ms) for k in got) <= 20, [k.duration_ms for k in got]


def test_pipeline_relays_one_key_sent_both_in_band_and_as_rfc4733_once():
    x, spans = keypresses("5", tone_ms=200, rng=np.random.default_rng(2))
    x = np.concatenate([x, np.zeros(4000)]).astype(np.int16)
    p = CallPipeline(8000, mask_mode="secure")
    for i in range(0, x.size - 159, 160):
        if i == spans[0].start // 160 * 160:
            p.on_rfc4733("5", 1000, 0, end=False)
        if i == spans[0].end // 160 * 160:
            p.on_rfc4733("5", 1000, 200, end=True)
        p.process_customer_frame(x[i:i + 160])
    assert "".join(k.digit for k in p.relay.outbox) == "5"


def test_pipeline_in_secure_mode_relays_nothing_and_still_masks():
    x, spans = keypresses("4711", tone_ms=120, rng=np.random.default_rng(3))
    x = np.concatenate([x, np.zeros(4000)]).astype(np.int16)
    p = CallPipeline(8000, mask_mode="secure")
    p.secure_manual = True
    out = [p.process_customer_frame(x[i:i + 160]) for i in range(0, x.size - 159, 160)]
    assert not p.relay.outbox and p.secure_since > 0
    from dtmfguard.testkit.adversary import count_recovered

    y = np.concatenate(out).astype(np.float64)
    truth = [(s.digit, s.start, s.end) for s in spans]
    assert count_recovered(y, truth, 8000) == 0
    control = CallPipeline(8000, mask_mode="payment")  # unmasked outside a payment: the decoder names all 4
    y = np.concatenate([control.process_customer_frame(x[i:i + 160]) for i in range(0, x.size - 159, 160)])
    assert count_recovered(y.astype(np.float64), truth, 8000) == 4


def test_always_mode_has_no_relay():
    assert CallPipeline(8000, mask_mode="always").relay is None


def test_key_sequence_switches_on_and_off_and_forgets_after_a_pause():
    from dtmfguard.media.keyrelay import KeySequence

    k = KeySequence("*#1", "*#0", gap_ms=1000)
    assert [k.feed(d, t) for d, t in zip("5*#1", (0, 0.1, 0.2, 0.3))] == [None, None, None, True]
    assert [k.feed(d, t) for d, t in zip("*#0", (1.0, 1.1, 1.2))] == [None, None, False]
    assert [k.feed(d, t) for d, t in zip("*#1", (2.0, 3.5, 3.6))] == [None, None, None]  # paused after '*'
    with pytest.raises(ValueError):
        KeySequence("*#1", "#1")
    with pytest.raises(ValueError):
        KeySequence("*x")
    assert "*#1" not in repr(KeySequence("*#1"))
