# SPDX-License-Identifier: GPL-2.0-or-later
"""Ending a payment's masking (``CallPipeline.end_payment_masking``), with the real masker, and in the relay.

mask_mode "payment" masks only while a payment session is attached.  When the session has finished, the
session leaves the pipeline and the agent hears the customer unmasked again, but never before the mask
that the last card key needs is complete: a key still sounding, a mask span ahead of the output, an
RFC 4733 press without its end.  The relay does this on its own loop every 200 ms.
"""
from __future__ import annotations

import socket
import threading
import time

import numpy as np

from dtmfguard.testkit.adversary import recover_digits
from dtmfguard.dsp.g711 import ulaw_decode
from dtmfguard.media.pipeline import CallPipeline
from dtmfguard.relay.rtp import build_header
from dtmfguard.signalling.rfc4733 import TelephoneEvent, serialise_payload
from dtmfguard.testkit.synth import keypresses

FRAME = 160


class Session:
    """A payment session's interface as the pipeline and the relay use it (feed, finished, state, poll)."""

    def __init__(self):
        self.events = []
        self.finished = False
        self.state = "collecting"
        self.polls = 0

    def feed(self, ev):
        self.events.append(ev)

    def poll(self):
        self.polls += 1


def _noise(seconds, seed, level=300.0):
    return np.random.default_rng(seed).normal(0, level, int(8000 * seconds)).astype(np.int16)


def _frames(x):
    return [x[i:i + FRAME] for i in range(0, len(x) - FRAME + 1, FRAME)]


def test_payment_masking_ends_only_after_the_last_key_is_masked():
    keys, spans = keypresses("4111", lead_ms=0, tail_ms=0, rng=np.random.default_rng(3))
    x = np.concatenate([_noise(0.4, 1), keys.astype(np.int16), _noise(1.0, 2)])
    x = x[: len(x) // FRAME * FRAME]
    off = int(0.4 * 8000)
    last_end = off + spans[-1].end
    p = CallPipeline(8000, mask_mode="payment", name="t")
    s = Session()
    assert p.end_payment_masking() is False  # no session: nothing to end
    p.attach_session(s)
    delay = p.masker.delay_samples
    out, ended_at, refused_while_owed = [], None, 0
    for i, f in enumerate(_frames(x)):
        pos = (i + 1) * FRAME  # input samples consumed after this frame
        if pos > off + spans[-1].start + 2 * FRAME:
            s.finished = True  # the session says it is done while the last key still sounds
        out.append(p.process_customer_frame(f))
        if ended_at is None and s.finished:
            owed = p.mask_pending
            if p.end_payment_masking():
                ended_at = pos
            else:
                refused_while_owed += owed
        elif ended_at is None:
            assert p.end_payment_masking() is False  # the session has not finished
    y = np.concatenate(out)
    assert refused_while_owed >= 1  # it was asked while the mask was owed, and said no
    assert ended_at is not None and p.session is None and s.events  # the session got the digits
    # it ended after the last key's mask had gone out, and soon after (within 300 ms)
    assert last_end <= ended_at - delay <= last_end + 2400
    # nothing of the card keys reached the agent; after the end the agent hears the customer exactly
    # (the same delay as the masked stream: no jump)
    assert recover_digits(y[: ended_at].astype(np.float64)) == []
    assert np.array_equal(y[ended_at:], x[ended_at - delay: len(x) - delay])
    assert len(recover_digits(x.astype(np.float64))) == 4


def test_always_mode_never_ends_masking_and_secure_mode_leaves_manual_secure_on():
    p = CallPipeline(8000, mask_mode="always")
    s = Session()
    s.finished = True
    p.attach_session(s)
    for f in _frames(_noise(0.2, 4)):
        p.process_customer_frame(f)
    assert p.end_payment_masking() is False and p.session is s
    q = CallPipeline(8000, mask_mode="secure")
    q.secure_manual = True
    q.attach_session(s)
    for f in _frames(_noise(0.2, 5)):
        q.process_customer_frame(f)
    assert q.end_payment_masking() is True and q.session is None and q.secure  # manual secure stays on
    q.secure_manual = False
    assert not q.secure


def test_a_sounding_rfc4733_press_postpones_the_end():
    p = CallPipeline(8000, mask_mode="payment")
    s = Session()
    p.attach_session(s)
    x = _noise(1.0, 6)
    frames = _frames(x)
    for f in frames[:10]:
        p.process_customer_frame(f)
    s.finished = True
    p.on_rfc4733_packet(7, 1600, serialise_payload(TelephoneEvent(5, False, 10, 160)))  # a press, no end yet
    p.process_customer_frame(frames[10])
    assert p.mask_pending and p.end_payment_masking() is False and p.session is s
    p.on_rfc4733_packet(7, 1600, serialise_payload(TelephoneEvent(5, True, 10, 640)))  # its end
    ended = None
    for i, f in enumerate(frames[11:], 11):
        p.process_customer_frame(f)
        if p.end_payment_masking():
            ended = i
            break
    assert ended is not None and p.session is None


# -- in the relay ----------------------------------------------------------------------------------------
def _sdp(port):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")


def test_relay_ends_payment_masking_when_the_session_finishes():
    """mask_mode "payment" through the relay: keys during the payment are masked; once the session has
    finished the relay detaches it on its own (no control API call) and later keys reach the agent."""
    from dtmfguard.dsp.g711 import ulaw_encode
    from dtmfguard.relay.engine import Relay
    from dtmfguard.server.control import on_owner

    relay = Relay(ng=("127.0.0.1", 0), rtp_range=(26000, 26399), jitter_ms=20.0,
                  pipeline_factory=lambda name: CallPipeline(8000, mask_mode="payment", name=name))
    stop = threading.Event()
    th = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    th.start()
    cust, agent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for sk in (cust, agent):
            sk.bind(("127.0.0.1", 0))
            sk.settimeout(0.3)
        off = relay.handle({"command": "offer", "call-id": "pay@t", "from-tag": "c", "sdp": _sdp(cust.getsockname()[1])})
        ans = relay.handle({"command": "answer", "call-id": "pay@t", "from-tag": "c", "to-tag": "a",
                            "sdp": _sdp(agent.getsockname()[1])})
        assert off["result"] == ans["result"] == "ok"
        mport = lambda sdp: int(next(ln for ln in sdp.split("\r\n") if ln.startswith("m=")).split()[1])  # noqa: E731
        to_relay = ("127.0.0.1", mport(ans["sdp"]))
        card, _ = keypresses("4111", rng=np.random.default_rng(7))
        later, _ = keypresses("9876", rng=np.random.default_rng(8))
        x = np.concatenate([_noise(0.3, 9), card.astype(np.int16), _noise(0.6, 10), later.astype(np.int16),
                            _noise(0.3, 11)])
        x = x[: len(x) // FRAME * FRAME]
        split = (int(0.3 * 8000) + len(card) + int(0.3 * 8000)) // FRAME  # mid-way through the gap
        got, done = [], threading.Event()

        def collect():
            while not done.is_set():
                try:
                    got.append(agent.recv(2048))
                except socket.timeout:
                    continue

        rx = threading.Thread(target=collect)
        rx.start()
        s = Session()
        call = relay.calls["pay@t"]
        t0 = time.monotonic()
        for i, f in enumerate(_frames(x)):
            if i == 1:  # the call is connected: start the payment on the relay's own thread, as the API does
                def start():
                    call.session = s
                    call.pipeline.attach_session(s)
                on_owner(relay, start)
            if i == split:
                s.finished, s.state = True, "completed"
            cust.sendto(build_header(0, False, i, i * FRAME, 77) + ulaw_encode(f), to_relay)
            time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
        time.sleep(0.3)
        done.set()
        rx.join()
    finally:
        stop.set()
        th.join(5)
        relay.close()
        cust.close()
        agent.close()
    assert call.pipeline.session is None and s.polls >= 1  # polled, then detached by the relay itself
    pcm = np.concatenate([ulaw_decode(pk[12:]) for pk in got]).astype(np.float64)
    # the card keys (4, 1) masked, the later ones (9, 8, 7, 6: no key in common) heard, in order.  Judged on the
    # whole recording, not at a sample position: on a loaded host the sender's late packets arrive in bursts the
    # 20 ms jitter buffer drops, which moves later audio earlier in what the agent receives (CI run 41: the "9"
    # 300 ms early)
    assert "".join(d for d, *_ in recover_digits(pcm)) == "9876"


def test_relay_g711_encoding_is_exact_over_the_whole_range_and_its_tables_are_shared():
    """The relay encodes through one table per law indexed by the sample's bit pattern: identical to
    dtmfguard.dsp.g711 for every int16 value, and one copy per process (not 64 kB per call)."""
    from dtmfguard.dsp.g711 import alaw_encode, ulaw_encode
    from dtmfguard.relay.codecs import make_codec

    x = np.arange(-32768, 32768).astype(np.int16)
    for name, ref in (("PCMU", ulaw_encode), ("PCMA", alaw_encode)):
        a, b = make_codec(name), make_codec(name)
        assert a.encode(x) == ref(x) and a.encode(x.astype(np.float64)) == ref(x)
        assert np.shares_memory(a._enc16, b._enc16)
        assert a.silence == bytes([a.silence_byte]) * FRAME


def test_relay_pipelines_follow_the_configuration(tmp_path):
    """``dtmfguard relay --config``: each call's pipeline takes the configuration's ``media.payment_notch`` and
    mask mode (``--mask-mode`` over it); without a configuration, the defaults."""
    from dtmfguard.cli.relay import pipeline_factory
    from dtmfguard.server.config import load_config

    path = tmp_path / "relay.toml"
    path.write_text('[media]\nmask_mode = "payment"\npayment_notch = false\nkeypad_burst = false\n')
    cfg = load_config(str(path), {"agent_uri": "sip:unused@127.0.0.1", "agent_from": "static"})  # as the relay
    off = pipeline_factory(None, cfg)("c1")
    assert off.payment_notch is False and off.mask_mode == "payment"
    assert off.masker.params.keypad_burst_presses is None  # (``media.keypad_burst``)
    assert pipeline_factory("always", cfg)("c2").mask_mode == "always"
    default = pipeline_factory(None, None)("c3")
    assert default.payment_notch is True and default.mask_mode == "always"
    assert default.masker.params.keypad_burst_presses is not None
