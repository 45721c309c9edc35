# SPDX-License-Identifier: GPL-2.0-or-later
"""Lab bench mode: microphone -> detector + masker -> speaker, with the detector's events.

Why: a telephony engineer wants to hear the masker with a real phone held to
a microphone (or a signal generator on line-in) before putting it in a call
path.  This is the same per-call :class:`~dtmfguard.media.pipeline.CallPipeline` the
SIP port runs, fed 20 ms frames from PortAudio (through pyaudio, the ``live``
extra) instead of pjsua2's clock, so what you hear is what an agent hears,
including its fail-closed behaviour (a frame that fails becomes silence).

Like ``dtmfguard detect`` this is a lab tool: events name the digit (that is
what it is for).  It never logs digits; the caller decides what to print.

No pyaudio, no PortAudio or no audio device: :class:`LiveUnavailable` with a
one-line reason (the CLI exits 2 with it).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

from ..events import DigitEvent
from ..dsp.masks import DEFAULT_MASK

__all__ = ["LiveUnavailable", "open_pyaudio", "run_live", "play_with_pyaudio", "INSTALL_HINT"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'dtmfguard[live]' (PortAudio first: apt-get install portaudio19-dev)"


class LiveUnavailable(RuntimeError):
    """Live audio cannot run here (module, library or device missing); the message says which."""


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence file descriptor 2 while PortAudio probes ALSA/JACK: it prints dozens of lines when there
    is no sound card, burying the one line that matters.  Python-level errors are unaffected."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_pyaudio():
    """``(pyaudio module, PyAudio instance)`` or :class:`LiveUnavailable`."""
    try:
        import pyaudio
    except ImportError:
        raise LiveUnavailable(f"live audio needs pyaudio and PortAudio, which are not installed: {INSTALL_HINT}") \
            from None
    try:
        with _quiet_native_stderr():
            pa = pyaudio.PyAudio()
    except Exception as exc:  # noqa: BLE001 - PortAudio initialisation errors come in several types
        raise LiveUnavailable(f"PortAudio could not start ({type(exc).__name__}); is there a sound system?") \
            from None
    return pyaudio, pa


def _device(pa, index: Optional[int], kind: str) -> int:
    key = "maxInputChannels" if kind == "input" else "maxOutputChannels"
    try:
        count = pa.get_device_count()
    except Exception:  # noqa: BLE001
        count = 0
    if index is not None:
        if not 0 <= index < count:
            raise LiveUnavailable(f"no audio {kind} device {index} (PortAudio sees {count} device(s))")
        if int(pa.get_device_info_by_index(index).get(key, 0)) < 1:
            raise LiveUnavailable(f"audio device {index} has no {kind} channels")
        return index
    try:
        info = pa.get_default_input_device_info() if kind == "input" else pa.get_default_output_device_info()
        return int(info["index"])
    except Exception:  # noqa: BLE001 - IOError "No Default Input Device Available" and friends
        for i in range(count):
            if int(pa.get_device_info_by_index(i).get(key, 0)) >= 1:
                return i
    raise LiveUnavailable(f"no audio {kind} device found (PortAudio sees {count} device(s)); "
                          f"connect a {'microphone' if kind == 'input' else 'speaker or headset'}")


def run_live(*, rate: int = 8000, frame_ms: int = 20, mask: str = DEFAULT_MASK, seconds: Optional[float] = None,
             input_device: Optional[int] = None, output_device: Optional[int] = None,
             on_digit: Optional[Callable[[DigitEvent], None]] = None,
             stop: Optional[Callable[[], bool]] = None, on_start: Optional[Callable[[], None]] = None,
             pyaudio_pair: Any = None) -> dict:
    """Run microphone -> pipeline -> speaker until ``seconds`` pass or ``stop()`` is true.

    ``on_start()`` runs once the devices are open.  Returns counters (frames, digits, errors,
    overflows).  ``pyaudio_pair`` replaces
    :func:`open_pyaudio` (tests pass a fake device).
    """
    from ..dsp.audio import check_rate
    from ..media.pipeline import CallPipeline

    check_rate(rate)
    pyaudio, pa = pyaudio_pair or open_pyaudio()
    frame = int(rate * frame_ms / 1000)
    stream = None
    counters = {"frames": 0, "overflows": 0}
    try:
        inp = _device(pa, input_device, "input")
        outp = _device(pa, output_device, "output")
        pipeline = CallPipeline(rate, masker_options={"mask": mask}, name="live", on_digit=on_digit)
        try:
            stream = pa.open(format=pyaudio.paInt16, channels=1, rate=rate, input=True, output=True,
                             input_device_index=inp, output_device_index=outp, frames_per_buffer=frame)
        except Exception as exc:  # noqa: BLE001
            raise LiveUnavailable(f"cannot open the audio devices at {rate} Hz ({type(exc).__name__}); "
                                  "try --rate 16000 or 48000") from None
        if on_start is not None:
            on_start()
        t_end = None if seconds is None else time.monotonic() + seconds
        while (t_end is None or time.monotonic() < t_end) and not (stop and stop()):
            try:
                raw = stream.read(frame, exception_on_overflow=False)
            except OSError:
                counters["overflows"] += 1
                continue
            if not raw:
                break
            pcm = np.frombuffer(raw, dtype="<i2")
            # fail closed is inside the pipeline: a failing frame comes back as silence
            out = pipeline.process_customer_frame(pcm)
            stream.write(np.asarray(out, dtype="<i2").tobytes())
            counters["frames"] += 1
        counters.update({k: pipeline.stats[k] for k in ("digits", "errors")})
        counters["delay_ms"] = round(1000 * getattr(pipeline.masker, "delay_samples", 0) / rate, 1)
        return counters
    finally:
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            pa.terminate()
        except Exception:  # noqa: BLE001
            pass


def play_with_pyaudio(path, pyaudio_pair: Any = None) -> None:
    """Play a sound file on the default output device; :class:`LiveUnavailable` if that cannot be done."""
    from ..dsp.audio import read_audio

    x, rate = read_audio(str(path))
    pyaudio, pa = pyaudio_pair or open_pyaudio()
    try:
        outp = _device(pa, None, "output")
        stream = pa.open(format=pyaudio.paInt16, channels=1, rate=rate, output=True, output_device_index=outp)
        try:
            stream.write(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())
        finally:
            stream.stop_stream()
            stream.close()
    finally:
        pa.terminate()
