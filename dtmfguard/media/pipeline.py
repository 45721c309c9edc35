# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-call media pipeline: customer audio -> detector + masker -> audio for the agent.

Why it exists apart from the SIP code: everything that decides what the agent
hears is here, testable frame by frame without a call, and independent of
pjsua2 (only :mod:`dtmfguard.sip` imports it).  The SIP port calls
:meth:`CallPipeline.process_customer_frame` once per 20 ms frame on pjsua2's
clock thread, so this code must be quick and must never block.

Three digit paths meet here (see :mod:`dtmfguard.signalling.digitmerge`):

* in-band tones: :class:`~dtmfguard.dsp.detector.DtmfDetector` names them for the
  payment session, the :class:`~dtmfguard.dsp.masker.Masker` replaces them in the
  audio (with its look-ahead, so the onset does not leak);
* RFC 4733 events and SIP INFO: they never travel through the bridge, but the
  agent must hear the same flat mask for their duration as for an in-band key
  (so a masked key sounds the same whichever way it was sent): they are
  queued from the SIP/media threads and applied as ``Masker.cover`` spans at the
  next frame, on the clock thread, so all per-call state has one owner thread.

Failing closed (PCI DSS req. 3.3.1 / PCI SSC telephone guidance: no card data
may reach the agent): any exception while handling a frame makes that frame
silence for the agent, is counted in :attr:`CallPipeline.stats` and logged by
exception type only (a message could hold a digit).  If the masker module is
not available the pipeline runs a placeholder that outputs silence: the agent
loses the customer rather than hearing tones.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..signalling.digitmerge import DigitMerger
from ..events import DigitEvent
from ..signalling.rfc4733 import Rfc4733Error, Rfc4733Tracker
from ..signalling.sipinfo import SipInfoDigit, parse_info

__all__ = ["MASK_MODES", "CallPipeline", "SilenceMasker", "make_masker", "warm_up"]

log = logging.getLogger(__name__)

from ..dsp.masks import MASK_MODES  # noqa: E402  (the mask modes, one home: dtmfguard.dsp.masks)


class SilenceMasker:
    """Fail-closed stand-in for :class:`dtmfguard.dsp.masker.Masker`: the agent hears silence, always.

    Used only when the real masker cannot be loaded; it honours the masker's interface.
    """

    delay_samples = 0

    def __init__(self, rate: int = 8000, **_options: Any):
        self.rate = rate
        self.samples_in = 0
        self.errors = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        self.samples_in += len(chunk)
        return np.zeros(len(chunk), dtype=chunk.dtype if chunk.dtype == np.int16 else np.float64)

    def cover(self, start: int, end: int | None = None) -> None:
        pass

    def uncover(self, end: int) -> None:
        pass

    def conceal(self, start: int, end: int) -> None:
        pass

    def notch_all(self, start: int, end: int | None = None) -> None:
        pass

    def notch_all_end(self, end: int) -> None:
        pass

    def flush(self) -> np.ndarray:
        return np.zeros(0, dtype=np.int16)


def make_masker(rate: int = 8000, **options: Any):
    """The real masker if it can be built, else :class:`SilenceMasker` (fail closed, logged once)."""
    try:
        from ..dsp.masker import Masker
    except Exception as exc:  # noqa: BLE001 - ImportError or a broken module: never pass raw audio instead
        log.warning("masker unavailable (%s): the agent will hear silence instead of the customer",
                    type(exc).__name__)
        return SilenceMasker(rate)
    return Masker(rate=rate, **options)


_INT16 = np.dtype(np.int16)

#: consecutive gap (NONE) frames the detector bridges (leaves out of its timeline): a clock thread late by
#: up to 60 ms; longer runs reach the detector as silence
_GAP_BRIDGE = 3
#: consecutive frames an empty jitter buffer concealed that the detector is given as they are: pjmedia's WSOLA
#: concealment goes on as a tone for its first tens of milliseconds, then fades out; later ones are left out
_PLC_FED = 2


def warm_up(pipeline: "CallPipeline") -> None:
    """Pay a new process's first-use set-up on ``pipeline``, a throwaway one, before the first call: its masker's
    shared tables (:meth:`~dtmfguard.dsp.masker.Masker.prepare_shared_tables`) and 20 ms frames of
    :func:`~dtmfguard.dsp.warmup.warm_audio` (six keys of no meaning), which reach the rules, imports and
    detector paths a first key would otherwise set up on the media clock.  The caller closes the pipeline."""
    from ..dsp.warmup import warm_audio

    prepare = getattr(getattr(pipeline, "masker", None), "prepare_shared_tables", None)
    if prepare is not None:
        prepare()
    audio, frame = warm_audio(pipeline.rate), pipeline.rate // 50
    for i in range(0, audio.size - frame + 1, frame):
        pipeline.process_customer_frame(audio[i:i + frame])


def warm_up_throwaway(build: Callable[[], Any]) -> None:
    """Build a throwaway pipeline with ``build()``, run :func:`warm_up` through it when it is a
    :class:`CallPipeline` (another factory's kind of pipeline is only built), and close it.  What building or
    running it raised goes to the caller (after closing), which decides how loud a failed warm-up is."""
    pipeline = build()
    try:
        if isinstance(pipeline, CallPipeline):
            warm_up(pipeline)
    finally:
        close = getattr(pipeline, "close", None)
        if close is not None:
            close()


def _make_detector(rate: int):
    from ..dsp.detector import DtmfDetector

    return DtmfDetector(rate)


def _release(detector: Any) -> None:
    """Break the reference cycle a native DtmfDetector forms with its C state (it binds its own methods
    into it), so that reference counting frees it: a process that freezes long-lived objects out of the
    cyclic collector (the relay, dtmfguard.relay.engine) would otherwise keep every dropped detector."""
    try:
        vars(detector).clear()
    except TypeError:  # no __dict__: nothing of ours to break
        pass


class CallPipeline:
    """Media and digit state of one bridged call (customer -> agent direction).

    ``session`` is an optional payment session (``.feed(event)``, see :mod:`dtmfguard.capture`); it may be
    attached later with :meth:`attach_session`.  ``on_digit`` receives every merged complete digit (for
    code that needs it without a session; it runs on the clock thread and must be quick).
    """

    def __init__(self, rate: int = 8000, *, masker: Any = None, detector: Any = None, session: Any = None,
                 mask_mode: str = "always", on_digit: Callable[[DigitEvent], None] | None = None,
                 masker_options: dict[str, Any] | None = None, name: str = "call",
                 lost_end_ms: float = 200.0, detect_always: bool = False, relay: Any = None,
                 payment_notch: bool = True):
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
        self.rate = int(rate)
        self.name = name
        self.mask_mode = mask_mode
        self.masker = masker if masker is not None else make_masker(self.rate, **(masker_options or {}))
        self.detector = detector if detector is not None else _make_detector(self.rate)
        self.session = session
        self.on_digit = on_digit
        # The detector names digits for a consumer, and for the masker's keypad burst (``_masker_keys``).  Without
        # any of them it is skipped: it costs a third of the pipeline's CPU per frame.
        self.detect_always = detect_always
        self._own_detector = detector is None
        #: the masker's keypad burst opens on the keys this detector confirms (``MaskerParams.keypad_burst_receiver``):
        #: it then runs on every frame, in every mode (a dsp.keypad.KeypadMasker runs its own)
        self._masker_keys = bool(getattr(self.masker, "wants_keys", False)) and \
            not getattr(self.masker, "runs_receiver", False)
        self._det_running = False
        self._det_offset = 0  # stream position of the detector's sample 0 (it restarts after idling)
        # -- secure mode (mask_mode "secure"): the relay decides which keys go on to the agent leg
        if mask_mode == "secure" and relay is None:
            from .keyrelay import KeyRelay

            relay = KeyRelay(self.rate)
        self.relay = relay if mask_mode == "secure" else None
        if self.relay is not None:
            self.detect_always = True  # in-band keys must be named to be relayed
        #: frames the detector was not given (made up by the customer stream's jitter buffer, or NONE frames),
        #: in every mode: a made-up or silent frame inside a key must not split it in two (secure mode also
        #: relays the in-band durations it corrects)
        from .keyrelay import JitterLog

        self.timeline = JitterLog(self.rate, max(1, self.rate // 50))
        self._gap_run = 0  # consecutive gap frames so far
        self._plc_run = 0  # consecutive frames an empty jitter buffer concealed
        self._jitter_note = (0, 0, 0)  # for the next frame: (inserted, concealed, dropped), from note_jitter
        self._inband_fix: dict = {}  # (start, end) of an in-band key -> ms its relayed duration gets (JitterLog)
        #: secure mode without a payment session (control API / agent-side SIP INFO); set from any thread
        self.secure_manual = False
        #: monotonic time at which the clock thread first processed a frame in secure mode (0: not secure)
        self.secure_since = 0.0
        #: the masker's payment profile (``Masker.notch_all``: the 8 DTMF bands removed from all the audio not
        #: masked flat) while :attr:`secure`; switched by the clock thread at a frame boundary
        self.payment_notch = bool(payment_notch)
        self._notching = False  # the profile is on in the masker
        self.tracker = Rfc4733Tracker(self.rate, lost_end_ms=lost_end_ms)
        self.merger = DigitMerger(self.rate)
        # Signalled digits arrive on the SIP and media threads; deque append/popleft are atomic, so the
        # clock thread drains them without a lock and never waits.
        self._pending: collections.deque[tuple[str, tuple]] = collections.deque()
        self._raw_tail = np.zeros(0, dtype=np.int16)  # delay line for unmasked output ("payment" mode)
        self._open_cover = False  # an RFC 4733 press is sounding: covered until its end is known
        self._mute_until = 0  # stream position: agent audio of customer samples before it is silenced (gaps)
        self._last_error_log = 0.0
        #: counters only, never digits
        self.stats: dict[str, int] = {"frames": 0, "errors": 0, "gaps": 0, "digits": 0, "digits_inband": 0,
                                      "digits_rfc4733": 0, "digits_sip_info": 0, "merged": 0,
                                      "bad_events": 0, "session_errors": 0, "relay_errors": 0}

    # -- inputs from other threads ---------------------------------------------------------------------
    def on_rfc4733(self, digit: str, timestamp: int, duration_ms: int, *, end: bool) -> None:
        """An RFC 4733 key report decoded by the SIP stack (digit, press timestamp, duration so far, ``end``:
        the press is over; see :meth:`Rfc4733Tracker.key`): queued for the clock thread; never raises."""
        self._pending.append(("key", (str(digit), int(timestamp), int(duration_ms), bool(end))))

    def on_rfc4733_packet(self, ssrc: int, timestamp: int, payload: bytes) -> None:
        """A raw telephone-event payload (RFC 4733 §2.3): queued for the clock thread."""
        self._pending.append(("pkt", (int(ssrc), int(timestamp), bytes(payload))))

    def on_sip_info(self, content_type: str, body) -> SipInfoDigit:
        """A SIP INFO body; raises :class:`~dtmfguard.signalling.sipinfo.SipInfoError` (answer 4xx) on garbage."""
        info = parse_info(content_type, body)
        self._pending.append(("info", (info,)))
        return info

    def on_sip_info_digit(self, digit: str, duration_ms: int) -> None:
        """A SIP INFO key already parsed by pjsua2 (``onDtmfEvent`` with method SIP INFO)."""
        try:
            info = SipInfoDigit(digit if len(digit) == 1 else "?", max(1, min(int(duration_ms), 10_000)))
            from ..events import DIGITS

            if info.digit not in DIGITS:
                raise ValueError
        except (TypeError, ValueError):
            self.stats["bad_events"] += 1
            return
        self._pending.append(("info", (info,)))

    def note_jitter(self, inserted: int, concealed: int, dropped: int = 0) -> None:
        """Clock thread, just before :meth:`process_customer_frame`: the jitter buffer made up that frame
        (``inserted``: it was empty; ``concealed``: a packet was missing), or ``dropped`` that many sender's
        frames just before it (to shed latency).  The masker gets the frame as always, told that it is made up
        (or that the stream was joined before it: ``Masker.conceal``); the detector does not get a made-up
        one, and a key is given back the frames dropped in it (secure mode: :class:`.keyrelay.JitterLog`)."""
        self._jitter_note = (int(inserted), int(concealed), int(dropped))

    def attach_session(self, session: Any) -> None:
        self.session = session  # a single reference assignment: atomic for the clock thread

    def detach_session(self) -> None:
        self.session = None

    @property
    def mask_pending(self) -> bool:
        """The agent's audio still owes a mask: the masker is masking a key, has a mask span ahead of its
        output, an RFC 4733 press is sounding, or a signalled key waits for the next frame.  Read from
        another thread it may be stale by a frame; :meth:`end_payment_masking` then simply says no."""
        if self._pending or self._open_cover:
            return True
        m = self.masker
        out_pos = int(m.samples_in) - int(getattr(m, "delay_samples", 0))
        spans = getattr(m, "masked_spans", [])[-4:]  # sorted by start: the latest last
        return bool(getattr(m, "masking", False)) or any(span.end is None or span.end > out_pos for span in spans)

    def end_payment_masking(self) -> bool:
        """End of a payment (mask_mode "payment" or "secure"): detach the payment session once it has
        finished and nothing is left to mask, so masking stops (mode "payment": the agent hears the
        customer unmasked again until the next payment) or secure mode ends unless it was switched on by
        hand (mode "secure": keys are relayed to the agent leg again).

        Returns True when the session was detached.  False, changing nothing, when the mode always
        masks, no session is attached, the session has not finished, or the mask is still owed
        (:attr:`mask_pending`: switching then would cut the mask short and could let the tail of the last
        card key through); call it again later (the relay tries every 200 ms).  Meant for the thread that
        owns the call; from another thread a session attached at the same moment is never detached (it
        has not finished), and a stale masker read only postpones the switch.
        """
        session = self.session
        if self.mask_mode == "always" or session is None or not getattr(session, "finished", False):
            return False
        try:
            if self.mask_pending:
                return False
        except Exception as exc:  # noqa: BLE001 - masker read mid-frame from another thread: try later
            log.debug("%s: masker state not readable yet (%s)", self.name, type(exc).__name__)
            return False
        if self.session is not session:  # replaced meanwhile: the new session is not finished
            return False
        self.session = None
        return True

    @property
    def secure(self) -> bool:
        """Secure mode: a payment session is attached, or secure mode was switched on without one."""
        return self.session is not None or self.secure_manual

    # -- the clock thread ------------------------------------------------------------------------------
    def process_customer_frame(self, frame: np.ndarray, gap: bool = False) -> np.ndarray:
        """One frame of customer audio (int16) -> the frame the agent hears (int16, same length).

        ``gap``: this frame is not the customer's audio (no packet reached the bridge, a stream being
        recreated by a re-INVITE, concealment): pass silence (or the concealment) to keep the clock.  The
        masker then never saw what really followed the customer's last samples still in its delay line: a
        key pressed just before the gap (its first 1-3 ms, the rest arriving after the gap) would go out
        unexamined, as the masker's look-ahead holds only the gap.  So everything received until the end
        of the gap is silenced in the agent's audio (:meth:`_silence_gap`; counted in ``stats["gaps"]``).

        Never raises; on any failure the returned frame is silence (fail closed).
        """
        n = len(frame)
        self.stats["frames"] += 1
        try:
            if gap:
                # before the masker runs: a fault below still leaves the tail muted for the next frames
                self._gap_frame(n)
            pcm = np.asarray(frame, dtype=np.int16)
            made_up, self._jitter_note = self._jitter_note, (0, 0, 0)
            self._gap_run = self._gap_run + 1 if gap else 0
            # not the customer's audio: left out of the detector's timeline, so a key on both sides of it stays one
            # key (fed as 20 ms of silence it split the key in two); a longer run of gap frames (hold, a stream
            # recreated) is silence to the detector: it ends a key
            bridged = gap and self._gap_run <= _GAP_BRIDGE
            self._plc_run = self._plc_run + 1 if made_up[0] and not gap else 0
            if self.relay is not None:
                self._secure_tick(n)
            if self._pending:
                self._apply_pending()
            if self.payment_notch and self.secure != self._notching:
                self._switch_profile()
            if (made_up[0] or made_up[1] or made_up[2]) and not gap:
                # the masker is told what the jitter buffer made up (or where it joined the stream after
                # dropping frames) before it sees it: a press is not closed across it and a concealment of
                # a tone is masked (fail closed; Masker.conceal)
                conceal = getattr(self.masker, "conceal", None)
                if conceal is not None:
                    pos = int(self.masker.samples_in)
                    conceal(pos, pos + (n if made_up[0] or made_up[1] else 0))
            # the detector hears the frame before the masker takes it: a key it confirms here opens the masker's burst
            # from the first sample not yet emitted before this frame (20 ms of the key earlier than after it)
            start = int(self.masker.samples_in)
            if self.session is not None or self.on_digit is not None or self.detect_always or self._masker_keys:
                if not self._det_running:
                    if self._own_detector and self.stats["frames"] > 1:
                        _release(self.detector)
                        self.detector = _make_detector(self.rate)  # fresh state after a gap
                        self._det_offset = start
                        if self.timeline is not None:
                            self.timeline.clear()
                    self._det_running = True
                det_pos = start - self._det_offset - \
                    (self.timeline.skipped if self.timeline is not None else 0)
                if made_up[2] and self.timeline is not None:
                    self.timeline.dropped(det_pos, made_up[2])  # sender's frames that never reach the stream
                    self._detector_break()
                if self.timeline is not None and (bridged or self._plc_run > _PLC_FED):
                    # a gap frame, or an empty jitter buffer's concealment gone on too long (faded): left out of the
                    # detector's timeline (keyrelay.JitterLog); its windows across the join never miss
                    self.timeline.skip(det_pos, n)
                    self._detector_break()
                else:
                    if self.timeline is not None and (made_up[0] or made_up[1]):
                        # pjmedia's concealment (an empty buffer, a lost packet or half of one) mostly goes on as
                        # the tone did: the detector is given it, its windows over it counting as hits when they
                        # pass but never as misses (a silent concealment does not split a key); a frame the buffer
                        # inserted lengthens a key and is taken off its relayed duration (keyrelay.JitterLog)
                        self.timeline.made_up_frame(det_pos, n, inserted=made_up[0] > 0)
                        self._detector_break(n)
                    onset = key = None
                    for ev in self.detector.process(pcm):
                        if ev.end is not None:
                            self._deliver(self._shift(ev))
                        elif onset is None:
                            onset, key = ev.start, ev.digit
                    if onset is not None and self._masker_keys:
                        # a key confirmed in this frame: the masker's keypad burst from its first sample not yet
                        # emitted, before it takes this frame (as dsp.keypad.KeypadMasker does for recordings, on the
                        # same 20 ms grid); its onset in stream positions, as _shift maps a complete key's (frames left
                        # out before it added back)
                        left_out = self.timeline.left_out_before(onset) if self.timeline is not None else 0
                        self.masker.key_confirmed(onset + self._det_offset + left_out, key)
            else:
                self._det_running = False
            masked = self.masker.process(pcm)
            if len(masked) != n:
                raise RuntimeError("masker returned a frame of the wrong length")
            if self.tracker.active:  # only a sounding RFC 4733 press can have lost its end packet
                for ev in self.tracker.poll(int(self.masker.samples_in)):
                    self._signalled(ev)
            if self.mask_mode == "payment":
                # the raw stream is delayed like the masked one, in step on every frame, so that a
                # payment's start and end switch between them without a jump
                raw = self._delayed_raw(pcm)
                if not self.secure:  # no payment, and secure mode not switched on by hand (relay's /secure)
                    return raw
            out = masked if type(masked) is np.ndarray and masked.dtype == _INT16 else \
                np.asarray(masked, dtype=np.int16)
            if self._mute_until > int(self.masker.samples_in) - n - int(getattr(self.masker, "delay_samples", 0)):
                out = self._silence_gap(out)
            return out
        except Exception as exc:  # noqa: BLE001 - fail closed: silence, count, log the type only
            self.stats["errors"] += 1
            self._log_error(exc)
            return np.zeros(n, dtype=np.int16)

    def _switch_profile(self) -> None:
        """Secure mode began or ended: the masker's payment profile follows it from this frame's first sample
        (a masker without one, e.g. :class:`SilenceMasker`, needs none)."""
        on = not self._notching
        method = getattr(self.masker, "notch_all" if on else "notch_all_end", None)
        if method is not None:
            method(int(self.masker.samples_in))
        self._notching = on

    def _detector_break(self, span: int = 0) -> None:
        """The detector's next frame does not follow its last one (a frame left out), or its first ``span``
        samples are a concealment: its windows across the join or over them never count as a miss
        (:meth:`dtmfguard.dsp.detector.DetectorBank.mark_break`), so a key with a made-up frame inside (and
        pjmedia's concealment merged into the frame after it) stays one key."""
        mark = getattr(self.detector, "mark_break", None)
        if mark is not None:
            mark(span) if span else mark()

    def _gap_frame(self, n: int) -> None:
        """A gap frame of ``n`` samples is about to enter the masker: mute every sample received until its
        end (stream positions), i.e. the delay line's unexamined tail and the gap itself."""
        self.stats["gaps"] += 1
        self._mute_until = max(self._mute_until, int(self.masker.samples_in) + n)

    def _silence_gap(self, out: np.ndarray) -> np.ndarray:
        """Zero the samples of ``out`` (the frame just emitted) whose stream position is before
        ``_mute_until``.  ``out[0]`` is stream position ``samples_in - len(out) - delay``."""
        n = len(out)
        first = int(self.masker.samples_in) - n - int(getattr(self.masker, "delay_samples", 0))
        k = min(n, self._mute_until - first)
        if k <= 0:
            return out
        out = np.array(out, dtype=np.int16)  # never write into the masker's own buffer
        out[:k] = 0
        return out

    def _secure_tick(self, n: int) -> None:
        """Before the frame's keys are delivered: note that this frame is processed in secure mode."""
        end = int(self.masker.samples_in) + n
        if self.secure:
            if not self.secure_since:
                self.secure_since = time.monotonic()
            self.relay.secure_frame(end)
        else:
            self.secure_since = 0.0
            self.relay.tick(end)

    def _shift(self, ev: DigitEvent) -> DigitEvent:
        """A detector event in stream positions (the detector may have restarted, or been spared frames the
        jitter buffer made up); an in-band key's jitter correction is kept for the relay."""
        tl = self.timeline
        if tl is not None and (tl.skipped or tl.drops or tl.inserted):
            start, end = tl.to_stream(ev.start, ev.end)
            fix = round((ev.end - ev.start) * 1000 / ev.rate) - round((end - start) * 1000 / ev.rate) \
                + tl.correction_ms(ev.start, ev.end)
            ev = dataclasses.replace(ev, start=start + self._det_offset, end=end + self._det_offset)
            if fix:
                self._inband_fix[(ev.start, ev.end)] = fix
                while len(self._inband_fix) > 64:
                    self._inband_fix.pop(next(iter(self._inband_fix)))
            return ev
        if not self._det_offset:
            return ev
        return dataclasses.replace(ev, start=ev.start + self._det_offset, end=ev.end + self._det_offset)

    def _delayed_raw(self, pcm: np.ndarray) -> np.ndarray:
        delay = int(getattr(self.masker, "delay_samples", 0))
        if delay == 0:
            return pcm
        tail = self._raw_tail
        if tail.size == delay == len(pcm):
            # the common case (20 ms frames, a 20 ms look-ahead): the previous frame comes out, this one is
            # kept (a copy: the caller may reuse its buffer); the same samples as the concatenation below
            self._raw_tail = pcm.copy()  # (int16: process_customer_frame made it so)
            return tail
        buf = np.concatenate((self._raw_tail, pcm)) if self._raw_tail.size else \
            np.concatenate((np.zeros(delay, np.int16), pcm))
        out, self._raw_tail = buf[: len(pcm)], buf[len(pcm):]
        return out

    def _apply_pending(self) -> None:
        now = int(self.masker.samples_in)
        while self._pending:
            kind, args = self._pending.popleft()
            try:
                if kind == "key":
                    digit, timestamp, duration_ms, end = args
                    events = self.tracker.key(digit, timestamp, duration_ms, end=end, now=now)
                elif kind == "pkt":
                    events = self.tracker.packet(*args, now=now)
                else:
                    events = [args[0].to_event(now, self.rate)]
            except (Rfc4733Error, ValueError) as exc:
                self.stats["bad_events"] += 1
                log.warning("%s: ignored a malformed DTMF event (%s)", self.name, type(exc).__name__)
                continue
            for ev in events:
                self._signalled(ev)

    def _signalled(self, ev: DigitEvent) -> None:
        """An RFC 4733 / SIP INFO event: cover its span in the agent's audio, then count it."""
        if ev.end is None:
            self.masker.cover(ev.start, None)
            self._open_cover = True
            return
        if self._open_cover and ev.source == "rfc4733":
            self.masker.uncover(ev.end)
            self._open_cover = False
        else:
            self.masker.cover(ev.start, ev.end)
        self._deliver(ev)

    def _deliver(self, ev: DigitEvent) -> None:
        for merged in self.merger.feed(ev):
            self.stats["digits"] += 1
            self.stats["digits_" + merged.source.replace("-", "_")] += 1
            session = self.session
            if session is not None:
                try:
                    session.feed(merged)
                except Exception as exc:  # noqa: BLE001 - a broken session must not break the audio
                    self.stats["session_errors"] += 1
                    self._log_error(exc)
            if self.relay is not None:
                try:
                    # the session read once above: a key the session did not get may still not be relayed
                    # (secure_manual, or the guard after a switch), never the other way round
                    fix = self._inband_fix.pop((merged.start, merged.end), 0) if merged.source == "inband" else 0
                    self.relay.offer(merged, session is not None or self.secure_manual, fix)
                except Exception as exc:  # noqa: BLE001 - a relay failure relays nothing
                    self.stats["relay_errors"] += 1
                    self._log_error(exc)
            if self.on_digit is not None:
                try:
                    self.on_digit(merged)
                except Exception as exc:  # noqa: BLE001
                    self.stats["session_errors"] += 1
                    self._log_error(exc)
        self.stats["merged"] = self.merger.merged

    def _log_error(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 1.0:  # at most one line a second per call
            self._last_error_log = now
            log.error("%s: media pipeline error (%s); the agent hears silence for the frame (%d so far)",
                      self.name, type(exc).__name__, self.stats["errors"])

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters (safe from any thread)."""
        return dict(self.stats)

    def close(self) -> None:
        """The call is over (after :meth:`flush`): drop the detector so that nothing of this pipeline needs
        the cyclic garbage collector (see :func:`_release`).  Frames after this are silence (fail closed)."""
        det, self.detector = self.detector, None
        if self._own_detector and det is not None:
            _release(det)

    def flush(self) -> np.ndarray:
        """End of call: the masker's delayed tail (for recordings/tests)."""
        try:
            for ev in self.detector.flush() if self._det_running else []:
                if ev.end is not None:
                    self._deliver(self._shift(ev))
            for ev in self.tracker.poll(1 << 62):
                self._signalled(ev)
            return np.asarray(self.masker.flush(), dtype=np.int16)
        except Exception as exc:  # noqa: BLE001
            self.stats["errors"] += 1
            self._log_error(exc)
            return np.zeros(0, dtype=np.int16)
