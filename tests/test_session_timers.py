# SPDX-License-Identifier: GPL-2.0-or-later
"""Session timers (RFC 4028) on both legs of a live call: the refreshes happen and the call survives them,
masked.

pjsip's smallest session interval is 90 s (its ABS_MIN_SE, RFC 4028 §4 recommends the same), and the
refresher refreshes at half of it (sip_timer.c), so the shortest call that sees a refresh lasts ~46 s: this
test is one such call.  The customer peer offers Session-Expires 90 (it becomes the customer leg's
refresher, RFC 4028 §7.1: the UAS leaves the refresh to a UAC that supports timers); the guard offers 90 on
the agent leg and refreshes it itself.  Keys are keyed before and after the refreshes (in-band, outside a
payment: secure mode relays them as RFC 4733); after the refreshes they must still reach the agent leg as
events only, and the agent's audio must still carry no recoverable key.  Measured here: both peers refresh
with UPDATE without SDP (pjsip prefers UPDATE when the peer allows it) at 45.0 s, so the media are untouched;
a refresh by re-INVITE with SDP re-creates the streams and the guard re-wires the bridge as after a codec
change (test_sip_transfer).
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.testkit.adversary import count_recovered
from dtmfguard.dsp.audio import read_audio
from dtmfguard.testkit.synth import keypresses

from sip_peers import SipCall
from test_sip_secure_mode import align, speech_prompt

pytestmark = [pytest.mark.sip, pytest.mark.slow]

SESSION_S = 90
REFRESH_S = SESSION_S / 2
BEFORE, AFTER = "25", "8031"
AFTER_AT_S = REFRESH_S + 3.0  # after both legs' refreshes (each at ~45 s after its answer)


def _audio(path):
    """Keys at 1 s, keys after the refreshes, then speech (the agent's recording is aligned on it)."""
    speech, _ = read_audio(speech_prompt())
    rng = np.random.default_rng(4028)
    k1, s1 = keypresses(BEFORE, tone_ms=120, gap_ms=200, lead_ms=1000, rng=rng)
    k2, s2 = keypresses(AFTER, tone_ms=120, gap_ms=200, lead_ms=0, rng=rng)
    gap = np.zeros(int(AFTER_AT_S * 8000) - k1.size)
    x = np.concatenate([k1, gap, k2, np.zeros(4000), speech]).astype(np.int16)
    base = k1.size + gap.size
    sf.write(path, x, 8000, subtype="PCM_16")
    spans = [(s.digit, s.start, s.end) for s in s1] + [(s.digit, s.start + base, s.end + base) for s in s2]
    return x, speech, spans


def test_both_legs_refresh_and_the_call_stays_masked(tmp_path):
    x, speech, spans = _audio(tmp_path / "c.wav")
    play_s = x.size / 8000 + 0.3
    with SipCall(tmp_path, serve=True, timeout=play_s + 30) as call:
        customer = call.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{play_s:.1f}",
                                 "--session-expires", str(SESSION_S))
        assert call.wait(customer_s=play_s + 25) == 0, customer.output()[-3000:]
    assert call.rc_guard == 0, call.guard.output()[-3000:]
    cev, aev = customer.events(), call.agent.events()
    c_conn = min(e["t"] for e in cev if e.get("event") == "state" and e.get("state") == "CONFIRMED")
    a_done = [e for e in aev if e.get("event") == "done"][0]
    # the customer leg: the customer refreshed it (an in-dialog INVITE or UPDATE) and the guard said 200
    c_refresh = [e for e in cev if e.get("event") == "answered" and e["t"] > c_conn + 1]
    assert c_refresh and all(e["status"] == 200 for e in c_refresh), c_refresh
    # the agent leg: the guard refreshed it, with Session-Expires (its refresher role stated in the header)
    a_refresh = [e for e in aev if e.get("event") == "request" and e["t"] > c_conn + 1]
    assert a_refresh, aev[-10:]
    se = a_refresh[0]["headers"].get("session-expires", [""])[0]
    assert se.startswith(str(SESSION_S)), a_refresh[0]
    c_at, a_at = c_refresh[0]["t"] - c_conn, a_refresh[0]["t"] - c_conn
    print(f"\nrefresh after answer: customer leg {c_at:.1f} s ({c_refresh[0]['method']}), agent leg {a_at:.1f} s "
          f"({a_refresh[0]['method']}, Session-Expires: {se})")
    assert REFRESH_S - 3 <= c_at <= REFRESH_S + 3 and REFRESH_S - 3 <= a_at <= REFRESH_S + 3, (c_at, a_at)
    # the call survived them: one call, ended by the customer after the last key, never by a timer
    states = [e for e in cev if e.get("event") == "state" and e.get("state") == "DISCONNECTED"]
    assert states and states[-1]["t"] - c_conn > AFTER_AT_S, states
    # masking intact after the refreshes: every key once as an event, none recoverable from the audio
    keys = a_done["calls"][0]["keys"]
    assert "".join(k["digit"] for k in keys) == BEFORE + AFTER, keys
    rec = call.recording(0).astype(np.float64)
    offset = align(rec, x, x.size - speech.size)
    assert count_recovered(rec, spans, 8000, offset=offset) == 0
