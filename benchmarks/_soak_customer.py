# SPDX-License-Identifier: GPL-2.0-or-later
"""Customer peer for benchmarks/soak.py: ``--count`` call slots, each calling again and again.

Why a separate peer: the soak needs calls that come and go for minutes (leaks show up per call), each
one a payment typed by the caller, half in-band (tones in the audio) and half as RFC 4733 events, with
a different card entry per call so a digit lost or captured twice changes the comparison.  It reuses
the package peers' call, account and endpoint code (``dtmfguard.sip.pj.peers``).

Each call: speech (the agent is "asking"), then the keys ``PAN # MMYY CVV #`` with test card numbers
only, then a short tail; the customer hangs up.  For each call it prints one JSON line with the mode
and the SHA-256 of ``PAN|MM|YYYY|CVV`` (never the digits), and whether the whole script was played
while the call stayed up.  ``soak.py`` compares those hashes with what the payment gateway received.
"""
from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pjsua2 as pj
import soundfile as sf

from dtmfguard.sip.pj.endpoint import account_config, create_endpoint, destroy_endpoint
from dtmfguard.sip.pj.peers import _Account, _Call, _settings, say

#: Luhn-valid test card numbers published by the card schemes for testing; no real card.
TEST_PANS = ("4111111111111111", "5555555555554444", "4012888888881881", "5105105105105100")
EXPIRY = ("12", "2030")  # keyed as 1230
#: prompts on which the adversarial decoder finds no digit even unmasked (agent-pass.wav gives one)
PROMPTS = ("all-circuits-busy-now.wav", "auth-thankyou.wav")  # by name: dtmfguard.testkit.corpora.prompt finds them
LEAD_SILENCE_S = 1.0
DIGIT_MS = 100
TAIL_S = 1.5


def card_for(customer: int, seq: int) -> tuple[str, str, str]:
    """(keys, cvv, sha256 of 'PAN|MM|YYYY|CVV') for this customer's call number ``seq``."""
    g = customer * 1009 + seq
    pan = TEST_PANS[g % len(TEST_PANS)]
    cvv = f"{100 + (g * 37) % 900:03d}"
    keys = f"{pan}#{EXPIRY[0]}{EXPIRY[1][2:]}{cvv}#"
    return keys, cvv, hashlib.sha256(f"{pan}|{EXPIRY[0]}|{EXPIRY[1]}|{cvv}".encode()).hexdigest()


def lead_audio() -> np.ndarray:
    from dtmfguard.testkit import corpora
    from dtmfguard.dsp.audio import read_audio

    parts = [np.zeros(int(LEAD_SILENCE_S * 8000))]
    for name in PROMPTS:
        try:
            parts.append(read_audio(corpora.prompt(name))[0])
        except corpora.CorpusMissing:
            pass
    if len(parts) == 1:  # no Asterisk prompts installed: a quiet noise floor instead
        parts.append(np.random.default_rng(0).normal(0, 300, 16000))
    return np.concatenate(parts)


class Slot:
    def __init__(self, index: int):
        self.index = index
        self.seq = 0
        self.call = None
        self.player = None
        self.state = "idle"
        self.next_at = time.monotonic() + 0.3 * index
        self.media_t = 0.0
        self.end_t = 0.0
        self.dtmf_t = None
        self.mode = ""
        self.keys = ""
        self.sha = ""


class SoakCustomer:
    def __init__(self, a):
        self.a = a
        self.work = Path(a.work)
        self.lead = lead_audio()
        self.lead_wav = self.work / f"{a.port}-lead.wav"
        sf.write(self.lead_wav, np.clip(self.lead, -32768, 32767).astype(np.int16), 8000, subtype="PCM_16")
        self.lead_s = self.lead.size / 8000
        self.calls: list = []  # pj.Call objects are kept until the endpoint is destroyed (see the notes)

    def incoming(self, prm):  # a customer takes no calls
        c = pj.Call(self.acc, prm.callId)
        op = pj.CallOpParam()
        op.statusCode = 486
        c.answer(op)

    def _start(self, s: Slot) -> None:
        a = self.a
        s.keys, _, s.sha = card_for(a.customer, s.seq * a.count + s.index)
        s.mode = "rfc4733" if (s.seq + s.index + a.customer) % 2 else "inband"
        s.call = _Call(self, self.acc)
        s.call.index = s.seq
        s.call.makeCall(a.to, pj.CallOpParam(True))
        self.calls.append(s.call)
        s.state = "calling"
        s.start_t = time.monotonic()

    def _connected(self, s: Slot) -> None:
        from dtmfguard.testkit.synth import keypresses

        if s.mode == "inband":
            keys, _ = keypresses(s.keys, tone_ms=DIGIT_MS, gap_ms=DIGIT_MS, lead_ms=0, tail_ms=0,
                                 rng=np.random.default_rng(s.seq))
            x = np.concatenate([self.lead, keys, np.zeros(int(TAIL_S * 8000))])
            path = self.work / f"{self.a.port}-{s.index}.wav"  # test card numbers only (soak harness)
            sf.write(path, np.clip(x, -32768, 32767).astype(np.int16), 8000, subtype="PCM_16")
            script_s = x.size / 8000
        else:
            path = self.lead_wav
            s.dtmf_t = time.monotonic() + self.lead_s
            script_s = self.lead_s + len(s.keys) * (DIGIT_MS + 120) / 1000 + TAIL_S
        s.player = pj.AudioMediaPlayer()
        s.player.createPlayer(str(path), pj.PJMEDIA_FILE_NO_LOOP)
        s.player.startTransmit(s.call.getAudioMedia(-1))
        s.media_t = time.monotonic()
        s.end_t = s.media_t + script_s
        s.state = "playing"

    def _end(self, s: Slot, ok: bool) -> None:
        say(event="call", slot=s.index, seq=s.seq, mode=s.mode, card_sha256=s.sha, ok=ok,
            status=s.call.status if s.call is not None else 0)
        s.player = None
        s.call = None
        s.seq += 1
        s.state = "idle"
        s.next_at = time.monotonic() + 0.5

    def step(self, s: Slot, now: float, accepting: bool) -> None:
        c = s.call
        if s.state == "idle":
            if accepting and now >= s.next_at:
                self._start(s)
        elif s.state == "calling":
            if c.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self._end(s, False)
            elif c.state == pj.PJSIP_INV_STATE_CONFIRMED and c.media_active:
                self._connected(s)
            elif now - s.start_t > 20:
                c.hangup(pj.CallOpParam())
                s.state = "hanging"
                s.ok = False
        elif s.state == "playing":
            if c.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self._end(s, False)  # the far end hung up before the script was complete
            elif s.dtmf_t is not None and now >= s.dtmf_t:
                s.dtmf_t = None
                prm = pj.CallSendDtmfParam()
                prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
                prm.digits = s.keys
                prm.duration = DIGIT_MS
                c.sendDtmf(prm)
            elif now >= s.end_t:
                try:
                    c.hangup(pj.CallOpParam())
                except pj.Error:
                    pass
                s.state = "hanging"
                s.ok = True
                s.hang_t = now
        elif s.state == "hanging":
            if c.state == pj.PJSIP_INV_STATE_DISCONNECTED or now - getattr(s, "hang_t", now) > 10:
                self._end(s, s.ok)

    def run(self, ep) -> int:
        a = self.a
        self.acc = _Account(self)
        self.acc.create(account_config(_settings(a), "customer"))
        say(event="ready", port=a.port)
        stop = {"flag": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
        slots = [Slot(i) for i in range(a.count)]
        until = time.monotonic() + a.seconds
        while True:
            ep.libHandleEvents(10)
            now = time.monotonic()
            accepting = now < until and not stop["flag"]
            for s in slots:
                try:
                    self.step(s, now, accepting)
                except pj.Error as exc:
                    say(event="error", slot=s.index, error=exc.reason[:100])
                    if s.call is not None:
                        self._end(s, False)
            if not accepting and all(s.state == "idle" for s in slots):
                break
            if now > until + 60:
                break
        say(event="done", calls=sum(s.seq for s in slots))

        def release():
            for s in slots:
                s.player = s.call = None
            self.calls.clear()
            self.acc = None

        destroy_endpoint(ep, release, wait_s=0.5)
        return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1", help="local address for SIP and RTP")
    p.add_argument("--rtp", type=int, required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--count", type=int, default=2, help="concurrent call slots (a guard worker bridges 2)")
    p.add_argument("--seconds", type=float, required=True, help="start new calls for this long")
    p.add_argument("--customer", type=int, default=0, help="index: makes this process's card entries distinct")
    p.add_argument("--work", required=True, help="directory for the per-call WAV files")
    a = p.parse_args(argv)
    a.role, a.codec, a.jitter_ms, a.tls_cert = "customer", None, -1, None
    ep = create_endpoint(_settings(a))
    return SoakCustomer(a).run(ep)


if __name__ == "__main__":
    sys.exit(main())
