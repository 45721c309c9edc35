# SPDX-License-Identifier: GPL-2.0-or-later
"""Card entry under talk-over on a live call, with the masker's payment profile (``media.payment_notch``) on
and off.

Real pjsua2 peers through ``dtmfguard serve`` (the call of tests/test_sip_secure_mode.py: its ``run``, its
checks).  During the payment a second voice talks all the way through the customer's keys:

* first the customer keys 16 digits with the speech 3 dB *over* each tone (the benchmark's "tones 3 dB under
  speech", ``press_scenario(speech_under_db=-3)``: level set per press), gives up and clears the field with
  ``*``.  The guard's detector does not take such keys reliably (ITU-T Q.24 receivers reject a tone under
  louder speech), so they cannot be the card: they are the attempt an attacker would like to hear.  They are
  digit-diverse on purpose: the test card is fifteen 1s, and an oracle that fits 16 pairs to speech alone
  names the lowest pair (697/1209 Hz, "1") more often than any other, so speech alone would "recover" 1s;
  with 10 different digits the chance bound (1/16 a press) means what it says;
* then the card (test PAN, expiry, security code) with the speech still going on, 18 dB under each tone: the
  level at which the detector takes all 24 keys of the card wherever the call puts the audio on its 6.375 ms
  block grid (this audio decoded offline at each of 160 sample offsets, linear, µ-law and A-law: 0 of 480 lose
  a key at -18 dB; at -15 dB 102 of 480 lose one "1", whose windows the half-row guard rejects where the
  voice's pitch region at 348 Hz is 11 dB under the row tone: a live call lands on a random offset, and CI
  failed on it once).

The agent's recording and the guard's own RTP to the agent (read off the loopback) are given to the blind
decoder (no key of any part may be named) and to the attacker who knows when each press is
(``oracle_score`` at the recording's alignment): with the profile on, at most the chance bound on each part.
The same call with ``media.payment_notch = false`` is measured too and printed beside it; there only what
always holds is asserted (the card captured, nothing of it named blind).
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.dsp.audio import read_audio
from dtmfguard.testkit.adversary import chance_bound, decode, load_speech, oracle_answers, oracle_score, score

from sip_peers import keyed_audio
from test_sip_call import PAN
from test_sip_secure_mode import (AFTER, AFTER_MS, CARD, GAP_S, MENU, MENU_MS, PAYMENT_AFTER_GAP_S, align_start,
                                  alignment, check_nothing_of_the_card, run, speech_prompt)

pytestmark = [pytest.mark.sip, pytest.mark.slow]

#: keyed under the talk-over, then cleared with "*": starts with 4 (a Visa prefix: the field does not end by
#: itself at 16 digits) and fails the Luhn check, so it can never be taken as a card
TALK = "4680845629023541"
TALK_DB = 3.0  # the speech this many dB over each tone of TALK (rms over the press)
CARD_DB = -18.0  # ... and over each tone of the card (under it): where the detector takes the whole card
CARD_MS, GAP_MS = 70, 120


def _gain_curve(n: int, spans, gains) -> np.ndarray:
    """A gain for every sample: ``gains[i]`` over span ``i`` exactly, linear between spans, held outside."""
    xs = [p for _, s, e in spans for p in (s, e - 1)]
    gs = [g for g in gains for _ in (0, 1)]
    return np.interp(np.arange(n), xs, gs)


def talkover_audio(path, middle: str = CARD, middle_ms: float = CARD_MS, after_gap_s: float = PAYMENT_AFTER_GAP_S):
    """speech, MENU, gap (the payment starts in it), TALK, "*", the card, ``after_gap_s``, AFTER, speech;
    from 0.5 s before TALK to 0.5 s after the card a second voice (English prompts) goes on without a break,
    scaled press by press as the benchmark does: TALK_DB over TALK's tones, CARD_DB over "*" and the card's."""
    speech, _ = read_audio(speech_prompt())  # skips naming the package where the prompts are missing
    parts = [("menu", MENU, GAP_S), ("talkover", TALK, 0.4), ("clear", "*", 0.6), ("card", middle, after_gap_s),
             ("after", AFTER, 0.5)]
    timing = {"menu": {"tone_ms": MENU_MS, "gap_ms": 120}, "talkover": {"tone_ms": CARD_MS, "gap_ms": GAP_MS},
              "clear": {"tone_ms": 100, "gap_ms": GAP_MS}, "card": {"tone_ms": middle_ms, "gap_ms": GAP_MS},
              "after": {"tone_ms": AFTER_MS, "gap_ms": 120}}
    x, spans = keyed_audio(path, speech, parts, speech, seed=13, **timing)
    voice = load_speech(30.0, seed=13)
    assert voice is not None  # the same package as speech_prompt's
    lo, hi = spans["talkover"][0][1] - 4000, spans["card"][-1][2] + 4000
    rng = np.random.default_rng(13)
    off = int(rng.integers(0, voice.size - (hi - lo)))
    v = voice[off: off + hi - lo].copy()
    y = x.astype(np.float64)
    pressed = [(d, s - lo, e - lo) for name in ("talkover", "clear", "card") for d, s, e in spans[name]]
    gains = []
    for _d, s, e in pressed:
        tone = float(np.sqrt(np.mean(y[s + lo: e + lo] ** 2)))
        under = float(np.sqrt(np.mean(v[s:e] ** 2))) + 1e-9
        gains.append(tone / under * 10 ** ((TALK_DB if (s + lo) < spans["clear"][0][1] else CARD_DB) / 20))
    fade = np.minimum(1.0, np.minimum(np.arange(v.size), np.arange(v.size)[::-1]) / 400.0)  # 50 ms in and out
    y[lo:hi] += v * _gain_curve(v.size, pressed, gains) * fade
    x = np.clip(np.round(y), -32768, 32767).astype(np.int16)
    sf.write(path, x, 8000, subtype="PCM_16")
    return x, spans


def _offsets(r, rec):
    """The recording's offsets of the customer's audio (as in ``recovered_keys``: every offset between the
    alignment on the speech before the first key and after the last, 5 ms apart)."""
    ends = sorted((alignment(r, rec), align_start(rec, r["x"], r["spans"]["menu"][0][1])))
    return range(ends[0] - 160, ends[1] + 161, 40)


def independence_bound(answers: list, digits: str, p_false: float = 1e-3, draws: int = 20000) -> int:
    """The most that answers independent of which key was pressed where score on ``digits``: the
    ``1 - p_false`` quantile, over random orders of the same keys, of the best score among ``answers`` (one
    answer string per offset).  Unlike ``chance_bound`` (every key 1/16) it holds for a card of fifteen 1s,
    on which an attacker who always says "1" scores 17 of 24 without hearing anything."""
    a = np.array([[ord(c) for c in ans] for ans in answers])  # offsets x presses
    d = np.array([ord(c) for c in digits])
    perm = np.argsort(np.random.default_rng(0).random((draws, d.size)), axis=1)
    null = (a[None, :, :] == d[perm][:, None, :]).sum(axis=2).max(axis=1)
    return int(np.quantile(null, 1.0 - p_false))


def measure(r, rec) -> dict:
    """Per part of the customer's audio: keys the blind decoder and the oracle-timed attacker name in ``rec``
    (each the best over the recording's offsets), and the oracle's bound for answers independent of the keys."""
    offsets = _offsets(r, rec)
    dets = decode(rec, 8000)
    out = {}
    for name, sp in r["spans"].items():
        answers = ["".join(oracle_answers(rec, sp, 8000, offset=o)) for o in offsets]
        digits = "".join(d for d, _, _ in sp)
        out[name] = {"blind": max(score(dets, sp, 8000, offset=o) for o in offsets),
                     "oracle": max(sum(a == b for a, b in zip(ans, digits)) for ans in answers), "of": len(sp),
                     "independent": independence_bound(answers, digits)}
    return out


def _call(tmp_path, notch: bool) -> dict:
    r = run(tmp_path, switch="payment", audio=talkover_audio,
            config="" if notch else "[media]\npayment_notch = false\n")
    r["measured"] = {"recording": measure(r, r["rec"])}
    if r.get("wire") is not None:
        r["measured"]["wire"] = measure(r, r["wire"])
    r["unmasked_oracle"] = {name: oracle_score(r["x"].astype(np.float64), sp, 8000) for name, sp in r["spans"].items()}
    return r


@pytest.fixture(scope="module")
def profile_call(tmp_path_factory):
    return _call(tmp_path_factory.mktemp("talkover-profile"), notch=True)


@pytest.fixture(scope="module")
def plain_call(tmp_path_factory):
    return _call(tmp_path_factory.mktemp("talkover-plain"), notch=False)


def _card_captured(r) -> None:
    done = [e for e in r["feed"] if e.get("type") == "field_complete"]
    valid = [e.get("field") for e in done if e.get("valid")]
    assert len(valid) == 3 and len(set(valid)) == 3, done  # card number, expiry, security code: once each
    assert any(e.get("type") == "field_cleared" for e in r["feed"]), [e.get("type") for e in r["feed"]]
    card = [e for e in done if e.get("valid") and e.get("last4")]
    assert len(card) == 1 and card[0]["last4"] == PAN[-4:] and card[0].get("brand") == "visa", card


def _talkover_taken(r) -> int:
    """Digits in the card number field when "*" cleared it: the keys under talk-over the detector took."""
    taken = 0
    for e in r["feed"]:
        if e.get("type") == "field_progress":
            taken = e.get("digits", taken)
        elif e.get("type") == "field_cleared":
            return taken
    return -1


def _report(label, r) -> str:
    rows = []
    for where, m in r["measured"].items():
        rows.append(f"{label} {where}: " + ", ".join(
            f"{k} blind {v['blind']}/oracle {v['oracle']} of {v['of']} (key-independent bound {v['independent']})"
            for k, v in m.items() if k in ("talkover", "card")))
    return "\n".join(rows)


def test_talkover_sanity():
    """The talk-over attempt can never be a card (a Visa prefix that fails Luhn), and its digits are varied."""
    from dtmfguard.capture.card import luhn_valid

    assert TALK[0] == "4" and len(TALK) == 16 and not luhn_valid(TALK) and len(set(TALK)) >= 8


def test_with_the_payment_profile_no_key_is_named_under_talkover(profile_call):
    r = profile_call
    assert r["rc_guard"] == 0
    _card_captured(r)
    # blind: nothing of any part in the recording or on the wire; no output holds the card number
    check_nothing_of_the_card(r)
    relayed = "".join(k["digit"] for k in r["keys"])
    assert TALK[:6] not in relayed and "*" not in relayed  # the attempt and its "*" were secure-mode keys
    print(_report("payment profile", r))
    print(f"unmasked customer audio, oracle: {r['unmasked_oracle']}")
    for where, m in r["measured"].items():
        # the attempt under talk-over: at most what a guess independent of the audio names (1/16 a press)
        assert m["talkover"]["oracle"] <= chance_bound(m["talkover"]["of"]), (where, m["talkover"])
        # the card: at most what answers independent of the keys score on its digits (chance_bound assumes
        # every key equally likely; the oracle names "1" on notched speech, and the card is mostly 1s)
        assert m["card"]["oracle"] <= m["card"]["independent"], (where, m["card"])


def test_without_the_profile_the_card_is_still_masked(plain_call, profile_call):
    """``media.payment_notch = false``: the card (detected, masked flat) is named by no blind decoder; the
    talk-over attempt is measured and printed beside the profile's figures (not asserted either way)."""
    r = plain_call
    assert r["rc_guard"] == 0
    _card_captured(r)
    for where, m in r["measured"].items():
        assert m["card"]["blind"] == 0, (where, m)
        assert m["menu"]["blind"] == 0 and m["after"]["blind"] == 0, (where, m)
    text = r["output"]
    assert PAN not in text and PAN[-8:] not in text
    print(_report("profile off    ", r))
    print(_report("payment profile", profile_call))
    for label, call in (("profile off", r), ("payment profile", profile_call)):
        print(f"{label}: the guard took {_talkover_taken(call)} of the {len(TALK)} keys under talk-over")
    print(f"chance bound: {chance_bound(len(TALK))} of {len(TALK)} (talk-over), "
          f"{chance_bound(len(CARD))} of {len(CARD)} (card)")
