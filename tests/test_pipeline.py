# SPDX-License-Identifier: GPL-2.0-or-later
"""The per-call media pipeline: digits from three paths, masking, and failing closed."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from dtmfguard.events import DigitEvent
from dtmfguard.media.pipeline import CallPipeline, SilenceMasker
from dtmfguard.testkit.synth import keypresses

PAN = "4111111111111111"
FRAME = 160


class CoverMasker:
    """Test double with the masker's interface: passes audio through, except covered input spans (zeroed).

    It lets these tests check the pipeline's wiring (which spans get covered, when) independently of the
    masker engineer's DSP; tests against the real masker live with it and in tests/test_sip_call.py.
    """

    delay_samples = 0

    def __init__(self):
        self.samples_in = 0
        self.spans = []  # [start, end) ; end None = open
        self.errors = 0

    def cover(self, start, end=None):
        self.spans.append([start, end])

    def uncover(self, end):
        for s in self.spans:
            if s[1] is None:
                s[1] = end

    def process(self, chunk):
        out = chunk.copy()
        idx = np.arange(self.samples_in, self.samples_in + len(chunk))
        for s, e in self.spans:
            out[(idx >= s) & ((idx < e) if e is not None else True)] = 0
        self.samples_in += len(chunk)
        return out

    def flush(self):
        return np.zeros(0, np.int16)


class Session:
    def __init__(self):
        self.events = []

    def feed(self, ev):
        self.events.append(ev)

    @property
    def digits(self):
        return "".join(e.digit for e in self.events)


def run(p, x):
    out = [p.process_customer_frame(x[i:i + FRAME]) for i in range(0, len(x) - len(x) % FRAME, FRAME)]
    return np.concatenate(out)


def test_inband_card_number_reaches_the_session_once():
    x, _ = keypresses(PAN, rng=np.random.default_rng(1))
    s = Session()
    p = CallPipeline(masker=CoverMasker(), session=s)
    y = run(p, x.astype(np.int16))
    assert y.dtype == np.int16 and y.size == x.size - x.size % FRAME
    p.flush()
    assert s.digits == PAN
    assert {e.source for e in s.events} == {"inband"} and all(e.complete for e in s.events)
    assert p.stats["digits_inband"] == 16


def _rfc_press(p, digit, ts, frames=5):
    """What pjsua2 reports for one RFC 2833 press, spread over frames, while silence flows."""
    out = []
    p.on_rfc4733(digit, ts, 0, end=False)
    out.append(p.process_customer_frame(np.full(FRAME, 1000, np.int16)))
    for i in range(1, frames):
        p.on_rfc4733(digit, ts, 20 * i, end=False)
        out.append(p.process_customer_frame(np.full(FRAME, 1000, np.int16)))
    for _ in range(3):
        p.on_rfc4733(digit, ts, 20 * frames, end=True)
    out.append(p.process_customer_frame(np.full(FRAME, 1000, np.int16)))
    return np.concatenate(out)


def test_rfc4733_digits_are_covered_for_their_duration_and_counted_once():
    m = CoverMasker()
    s = Session()
    p = CallPipeline(masker=m, session=s)
    p.process_customer_frame(np.full(FRAME, 1000, np.int16))
    y = _rfc_press(p, "7", 100)
    assert s.digits == "7" and s.events[0].source == "rfc4733"
    # the whole press (frames 1..5) is covered toward the agent, then audio is back
    assert np.all(y[:5 * FRAME] == 0)
    after = p.process_customer_frame(np.full(FRAME, 1000, np.int16))
    assert np.all(after == 1000)
    ev = s.events[0]
    assert ev.start == FRAME and ev.end == FRAME + 5 * FRAME


def test_lost_rfc4733_end_still_uncovers_and_counts():
    m = CoverMasker()
    s = Session()
    p = CallPipeline(masker=m, session=s, lost_end_ms=100)
    p.on_rfc4733("3", 10, 0, end=False)
    p.process_customer_frame(np.full(FRAME, 500, np.int16))
    frames = [p.process_customer_frame(np.full(FRAME, 500, np.int16)) for _ in range(8)]
    assert s.digits == "3"
    assert np.all(frames[-1] == 500)  # the cover was closed after the lost end


def test_sip_info_covered_and_counted():
    m = CoverMasker()
    s = Session()
    p = CallPipeline(masker=m, session=s)
    p.on_sip_info("application/dtmf-relay", "Signal=9\r\nDuration=100\r\n")
    frames = [p.process_customer_frame(np.full(FRAME, 800, np.int16)) for _ in range(6)]
    assert s.digits == "9" and s.events[0].source == "sip-info"
    assert all(np.all(f == 0) for f in frames[:5]) and np.all(frames[5] == 800)


def test_sip_info_garbage_raises_clearly_and_changes_nothing():
    from dtmfguard.signalling.sipinfo import SipInfoError

    p = CallPipeline(masker=CoverMasker(), session=Session())
    with pytest.raises(SipInfoError, match="no Signal field"):
        p.on_sip_info("application/dtmf-relay", "Duration=100")
    assert np.all(p.process_customer_frame(np.full(FRAME, 7, np.int16)) == 7)


def test_key_sent_inband_and_as_event_counts_once():
    x, spans = keypresses("5", lead_ms=200, rng=np.random.default_rng(3))
    x = x.astype(np.int16)
    s = Session()
    p = CallPipeline(masker=CoverMasker(), session=s)
    tone_frame = spans[0].start // FRAME
    for i in range(len(x) // FRAME):
        if i == tone_frame:
            p.on_rfc4733("5", 777, 0, end=False)
        if i == tone_frame + 4:
            p.on_rfc4733("5", 777, 70, end=True)
        p.process_customer_frame(x[i * FRAME:(i + 1) * FRAME])
    p.flush()
    assert s.digits == "5" and p.stats["merged"] == 1


class Boom(Exception):
    pass


class ExplodingDetector:
    def process(self, chunk):
        raise Boom(PAN)  # a message that would leak card data if it were ever logged

    def flush(self):
        return []


def test_detector_fault_fails_closed_silence_and_no_digits_logged(caplog):
    x, _ = keypresses(PAN)
    p = CallPipeline(masker=CoverMasker(), detector=ExplodingDetector(), session=Session())
    with caplog.at_level(logging.DEBUG):
        y = run(p, x.astype(np.int16))
    assert np.all(y == 0)  # the agent hears silence, never raw tones
    assert p.stats["errors"] == len(y) // FRAME
    assert "Boom" in caplog.text and PAN not in caplog.text and "4111" not in caplog.text
    assert len(caplog.records) <= 2  # rate-limited, not one line per frame


class ExplodingMasker(CoverMasker):
    def process(self, chunk):
        raise RuntimeError("masker broke")


class ShortMasker(CoverMasker):
    def process(self, chunk):
        super().process(chunk)
        return chunk[:-1]


@pytest.mark.parametrize("masker", [ExplodingMasker(), ShortMasker()])
def test_masker_fault_fails_closed(masker):
    x, _ = keypresses("123")
    p = CallPipeline(masker=masker)
    y = run(p, x.astype(np.int16))
    assert np.all(y == 0) and p.stats["errors"] == len(y) // FRAME


def test_session_fault_does_not_touch_audio():
    class BadSession:
        def feed(self, ev):
            raise RuntimeError("gateway down")

    x, _ = keypresses("12", rng=np.random.default_rng(2))
    speechlike = (np.sin(np.arange(1600) * 0.05) * 3000).astype(np.int16)
    p = CallPipeline(masker=CoverMasker(), session=BadSession())
    run(p, x.astype(np.int16))
    y = run(p, speechlike)
    assert np.array_equal(y, speechlike[: y.size])
    assert p.stats["session_errors"] >= 1 and p.stats["errors"] == 0


def test_missing_masker_placeholder_is_silence():
    m = SilenceMasker()
    p = CallPipeline(masker=m)
    y = p.process_customer_frame(np.full(FRAME, 12345, np.int16))
    assert np.all(y == 0)


def test_payment_mode_passes_audio_until_a_session_is_attached():
    x, _ = keypresses("1", lead_ms=0, rng=np.random.default_rng(5))
    x = x.astype(np.int16)[: 4 * FRAME]
    m = CoverMasker()
    p = CallPipeline(masker=m, mask_mode="payment")
    p.on_sip_info("application/dtmf", "1")
    y = run(p, x)
    assert np.array_equal(y, x)  # no payment in progress: unmasked
    p.attach_session(Session())
    p.on_sip_info("application/dtmf", "1")
    assert np.all(run(p, x) == 0)
    with pytest.raises(ValueError, match="mask_mode"):
        CallPipeline(masker=m, mask_mode="never")


def test_events_repr_in_stats_never_holds_digits():
    s = Session()
    p = CallPipeline(masker=CoverMasker(), session=s)
    p.on_sip_info("application/dtmf", "8")
    p.process_customer_frame(np.zeros(FRAME, np.int16))
    assert isinstance(s.events[0], DigitEvent)
    assert "8" not in repr(p.snapshot()) and "8" not in repr(s.events[0]).replace("0.0", "")


def test_detector_idles_without_a_consumer_and_restarts_in_step():
    """Without a session the detector is skipped; attached mid-call it names digits at stream positions."""
    x, spans = keypresses("58", lead_ms=1000, rng=np.random.default_rng(9))
    x = x.astype(np.int16)
    s = Session()
    p = CallPipeline(masker=CoverMasker())
    half = (spans[0].start // FRAME - 20) * FRAME  # attach the session 400 ms before the first key
    run(p, x[:half])
    assert p.stats["digits"] == 0
    p.attach_session(s)
    run(p, x[half:])
    p.flush()
    assert s.digits == "58"
    assert abs(s.events[0].start - spans[0].start) < 400 and abs(s.events[1].start - spans[1].start) < 400


def _gap_call(digit, onset_samples, gap_frames, *, flag=True, lead=None):
    """A key's first ``onset_samples`` end a frame, then ``gap_frames`` frames carry no customer audio (the
    bridge gave the port a NONE frame: the port feeds silence with ``gap=True``), then the rest of the key.
    Returns (what the agent heard, aligned with the input; the input; the fragment's span)."""
    from dtmfguard.testkit.synth import dtmf_tone

    tone = np.round(dtmf_tone(digit, 120, level_dbm0=-10, phase=(0.3, 1.1))).astype(np.int16)
    head = np.zeros(10 * FRAME, np.int16) if lead is None else lead[: 10 * FRAME].copy()
    head[-onset_samples:] = np.clip(head[-onset_samples:].astype(int) + tone[:onset_samples], -32768, 32767)
    frames = [head[i: i + FRAME] for i in range(0, head.size, FRAME)]
    gaps = [False] * len(frames) + [True] * gap_frames
    frames += [np.zeros(FRAME, np.int16)] * gap_frames
    rest = np.concatenate([tone[onset_samples + gap_frames * FRAME:], np.zeros(12 * FRAME, np.int16)])
    rest = rest[: rest.size - rest.size % FRAME]
    frames += [rest[i: i + FRAME] for i in range(0, rest.size, FRAME)]
    gaps += [False] * (rest.size // FRAME)
    p = CallPipeline(8000, mask_mode="always")
    out = np.concatenate([p.process_customer_frame(f, gap=g) if flag else p.process_customer_frame(f)
                          for f, g in zip(frames, gaps)])
    d = p.masker.delay_samples
    return out[d:], np.concatenate(frames)[: out.size - d], (head.size - onset_samples, head.size), p


def _raw_tone_run(out, x):
    """Most raw tone samples in ``out`` within one stretch whose matches are at most 3 samples apart (the
    flat mask equals a tone sample by chance now and then; a leak is a run)."""
    idx = np.flatnonzero((out == x) & (np.abs(x) > 50))
    if idx.size == 0:
        return 0
    cuts = np.flatnonzero(np.diff(idx) > 3)
    return int(max(len(run) for run in np.split(idx, cuts + 1)))


@pytest.mark.parametrize("onset_ms", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("gap_frames", [1, 3])
def test_a_key_onset_cut_off_by_a_gap_never_reaches_the_agent(onset_ms, gap_frames):
    """Issue 12 (a load-only leak): a key pressed just before the customer's stream stalls (jitter buffer
    empty, a re-INVITE recreating the stream) sends its first 1-3 ms, then nothing for a frame or more, then
    the rest.  The masker's 20 ms look-ahead then holds only the gap's silence when those first samples leave
    it: they went to the agent raw, and the adversary names the key from them.  The port flags the gap; the
    pipeline silences everything received until the gap's end."""
    from dtmfguard.testkit.adversary import recover_digits

    k = int(onset_ms * 8)
    for digit in "0123456789*#ABCD":
        out, x, (s, e), p = _gap_call(digit, k, gap_frames)
        assert not np.any(out[s:e]), (digit, out[s:e])  # silenced, not raw, not even attenuated
        assert _raw_tone_run(out, x) <= 1, digit  # no raw tone anywhere (the rest of the key is masked)
        assert recover_digits(out.astype(np.float64), 8000) == [], digit
        assert p.stats["gaps"] == gap_frames and p.stats["errors"] == 0


def test_without_the_gap_flag_a_cut_off_onset_goes_out_raw():
    """The case above with the gap not flagged (as before the fix): the masker alone now notches a 2-4 ms
    burst the attacker could name (tests/test_masker.py, the isolated-burst rule), but the first 1 ms of a
    key is below what any screen window can call a key and goes out raw; only the gap flag keeps it (and any
    part of a key) from the agent."""
    out, x, (s, e), _ = _gap_call("5", 8, 1, flag=False)
    assert np.array_equal(out[s:e], x[s:e]) and np.any(x[s:e])
    out, x, (s, e), _ = _gap_call("5", 8, 1, flag=True)
    assert not np.any(out[s:e])


def test_a_gap_mutes_only_the_unexamined_tail_and_the_gap():
    """Speech up to a gap: only the delay line's last ``delay_samples`` (not yet examined against what came
    next) and the gap itself are silenced; audio before and after is bit-exact (delayed)."""
    rng = np.random.default_rng(3)
    speechlike = np.round(3000 * np.sin(np.cumsum(rng.uniform(0.05, 0.4, 10 * FRAME)))).astype(np.int16)
    out, x, _, p = _gap_call("1", 1, 2, lead=speechlike)  # a 1-sample "key": nothing for the masker
    d = p.masker.delay_samples
    gap_start = 10 * FRAME
    assert np.array_equal(out[: gap_start - d], x[: gap_start - d])
    assert not np.any(out[gap_start - d: gap_start + 2 * FRAME])
    assert p.stats["gaps"] == 2


# ------------------------------------------------------------------ the masker's payment profile (issue 12)
def _speechlike(seconds: float, seed: int = 3) -> np.ndarray:
    """Band-limited noise at speech level (no corpus needed): what the profile's notch changes."""
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.standard_normal(int(seconds * 8000)), np.hanning(9), mode="same")
    return np.clip(np.round(x * 1500.0), -32768, 32767).astype(np.int16)


def test_payment_profile_follows_secure_mode():
    """Secure mode switched on by hand, then a payment session, then both off: the real masker's payment
    profile is on from the first frame processed in secure mode to the first one after it, at frame
    boundaries; the agent's audio is the masker's with the profile switched at those positions."""
    from dtmfguard.dsp.masker import Masker

    x = _speechlike(2.0)
    p = CallPipeline(mask_mode="always")
    parts = [run(p, x[: 10 * FRAME])]
    assert not p.masker.notching_all
    p.secure_manual = True
    parts.append(run(p, x[10 * FRAME: 20 * FRAME]))
    assert p.masker.notching_all
    p.secure_manual = False
    p.attach_session(Session())  # a payment session alone keeps it on
    parts.append(run(p, x[20 * FRAME: 30 * FRAME]))
    assert p.masker.notching_all
    p.detach_session()
    parts.append(run(p, x[30 * FRAME: 40 * FRAME]))
    assert not p.masker.notching_all
    assert [(s.start, s.end) for s in p.masker.payment_spans] == [(10 * FRAME, 30 * FRAME)]
    out = np.concatenate(parts + [run(p, x[40 * FRAME:]), p.flush()])
    m = Masker()
    m.notch_all(10 * FRAME, 30 * FRAME)
    ref = np.concatenate([m.process(x), m.flush()])
    assert np.array_equal(out, ref)
    d, plain = m.delay_samples, Masker().process(x)
    assert np.array_equal(out[: 10 * FRAME + d], plain[: 10 * FRAME + d])  # before secure mode: untouched
    assert np.count_nonzero(out[10 * FRAME + d: 30 * FRAME + d] != plain[10 * FRAME + d: 30 * FRAME + d]) > 1000


def test_payment_profile_can_be_switched_off():
    """``payment_notch=False`` (config ``media.payment_notch = false``): secure mode leaves the audio as the
    default masker makes it."""
    from dtmfguard.dsp.masker import Masker

    x = _speechlike(1.0)
    p = CallPipeline(mask_mode="always", payment_notch=False)
    p.secure_manual = True
    out = run(p, x)
    assert not p.masker.notching_all and p.masker.payment_spans == []
    m = Masker()
    assert np.array_equal(out, m.process(x))
    p2 = CallPipeline(mask_mode="always")
    p2.secure_manual = True
    assert not np.array_equal(run(p2, x), out)  # on by default: the notch changed the speech


def test_payment_profile_with_a_masker_that_has_none():
    """A masker without the profile (a test double, the fail-closed stand-in) is left alone."""
    p = CallPipeline(masker=CoverMasker(), session=Session())
    x = _speechlike(0.2)
    assert np.array_equal(run(p, x), x)
    p = CallPipeline(masker=SilenceMasker(), session=Session())
    assert not run(p, x).any()
