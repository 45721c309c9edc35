# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard live``: the missing-audio messages, and the bench loop with a fake PortAudio device.

This machine has no sound card (and usually no pyaudio), so the real command must say so in one line
and exit 2.  The loop itself is tested with a fake device whose microphone plays speech and key
presses: what the fake speaker receives must hold the speech and no recoverable digit.
"""
from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from dtmfguard.apps import demo
from dtmfguard.testkit.adversary import recover_digits
from dtmfguard.apps.live import LiveUnavailable, open_pyaudio, play_with_pyaudio, run_live


def test_command_without_audio_says_why_in_one_line_and_exits_2():
    p = subprocess.run([sys.executable, "-m", "dtmfguard", "live", "--seconds", "1"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dtmfguard: ") and "Traceback" not in p.stderr
    assert ("pyaudio" in lines[0] and "pip install 'dtmfguard[live]'" in lines[0]) or "no audio" in lines[0]


def test_no_pyaudio_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyaudio", None)
    with pytest.raises(LiveUnavailable, match="pyaudio and PortAudio, which are not installed"):
        open_pyaudio()


class _Stream:
    def __init__(self, mic: np.ndarray):
        self.mic = mic.astype("<i2").tobytes()
        self.pos = 0
        self.speaker = bytearray()

    def read(self, frames, exception_on_overflow=True):
        chunk = self.mic[self.pos: self.pos + 2 * frames]
        self.pos += 2 * frames
        return chunk

    def write(self, data):
        self.speaker += data

    def stop_stream(self):
        pass

    def close(self):
        pass


class _PyAudio:
    def __init__(self, devices, mic=None):
        self.devices = devices
        self.stream = _Stream(mic if mic is not None else np.zeros(0, np.int16))
        self.opened = None

    def get_device_count(self):
        return len(self.devices)

    def get_device_info_by_index(self, i):
        return self.devices[i]

    def get_default_input_device_info(self):
        raise OSError("No Default Input Device Available")

    def get_default_output_device_info(self):
        raise OSError("No Default Output Device Available")

    def open(self, **kw):
        self.opened = kw
        return self.stream

    def terminate(self):
        pass


FAKE_MODULE = types.SimpleNamespace(paInt16=8)
DUPLEX = {"index": 0, "maxInputChannels": 1, "maxOutputChannels": 2}


def test_no_device_is_named():
    with pytest.raises(LiveUnavailable, match="no audio input device found .PortAudio sees 0 device"):
        run_live(seconds=1, pyaudio_pair=(FAKE_MODULE, _PyAudio([])))
    with pytest.raises(LiveUnavailable, match="no audio output device"):
        run_live(seconds=1, pyaudio_pair=(FAKE_MODULE, _PyAudio([{"maxInputChannels": 1}])))
    with pytest.raises(LiveUnavailable, match="no audio output device"):
        play_with_pyaudio(demo.customer.resources.files("dtmfguard") / "data" / "speech-hello.wav",
                          pyaudio_pair=(FAKE_MODULE, _PyAudio([])))


def test_bench_loop_masks_keys_keeps_speech_and_reports_each_press():
    x, spans, first = demo.customer_audio(demo.key_plan("4111111111111111", "1230", "123", "inband"))
    mic = np.concatenate([x, np.zeros(1600 + (-x.size) % 160, np.int16)])  # whole 20 ms frames, like PortAudio
    pa = _PyAudio([DUPLEX], mic)
    events = []
    started = []
    counters = run_live(seconds=30, pyaudio_pair=(FAKE_MODULE, pa), on_digit=events.append,
                        on_start=lambda: started.append(True))
    assert started == [True] and pa.opened["rate"] == 8000 and pa.opened["frames_per_buffer"] == 160
    speaker = np.frombuffer(bytes(pa.stream.speaker), dtype="<i2")
    assert speaker.size == mic.size
    assert "".join(e.digit for e in events) == "4111111111111111#1230123"
    assert counters["digits"] == 24 and counters["errors"] == 0
    assert recover_digits(speaker.astype(np.float64)) == []
    delay = int(counters["delay_ms"] * 8)
    head = speaker[delay: delay + first - 400]
    assert np.array_equal(head, x[: head.size])  # speech before the keys passes bit-exact, delayed
