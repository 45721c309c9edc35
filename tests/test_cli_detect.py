# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard detect``: output, JSON, and one-line errors for bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.cli import main
from dtmfguard.testkit.synth import keypresses


@pytest.fixture
def keyed_wav(tmp_path):
    x, _ = keypresses("2580", rng=np.random.default_rng(3))
    path = tmp_path / "keys.wav"
    sf.write(path, np.round(x).astype(np.int16), 8000, subtype="PCM_16")
    return path


def test_detect_prints_digits_and_times(keyed_wav, capsys):
    assert main(["detect", str(keyed_wav)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(": 2580")
    assert len(out.splitlines()) == 5


def test_detect_json(keyed_wav, capsys):
    assert main(["detect", "--json", str(keyed_wav)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["digits"] == "2580" and doc["rate"] == 8000
    assert [e["digit"] for e in doc["events"]] == list("2580")
    assert all(e["end_s"] > e["start_s"] for e in doc["events"])


def test_detect_stereo_needs_channel(tmp_path, capsys):
    x, _ = keypresses("19", rng=np.random.default_rng(4))
    stereo = np.stack([np.zeros_like(x), x], axis=1)
    path = tmp_path / "st.wav"
    sf.write(path, np.round(stereo).astype(np.int16), 8000)
    assert main(["detect", str(path)]) == 2
    assert "--channel" in capsys.readouterr().err
    assert main(["detect", "--channel", "1", str(path)]) == 0
    assert ": 19" in capsys.readouterr().out


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["text", "empty_file", "zero_samples", "truncated", "rate", "missing"])
def test_detect_bad_input_one_line_error(tmp_path, keyed_wav, kind):
    if kind == "text":
        path = _write(tmp_path / "a.wav", b"this is not audio at all\n")
    elif kind == "empty_file":
        path = _write(tmp_path / "a.wav", b"")
    elif kind == "zero_samples":
        path = tmp_path / "a.wav"
        sf.write(path, np.zeros(0, dtype=np.int16), 8000)
    elif kind == "truncated":
        path = _write(tmp_path / "a.wav", keyed_wav.read_bytes()[:30])
    elif kind == "rate":
        path = tmp_path / "a.wav"
        sf.write(path, np.zeros(100, dtype=np.int16), 4000)
    else:
        path = tmp_path / "nope.wav"
    proc = subprocess.run([sys.executable, "-m", "dtmfguard.cli", "detect", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dtmfguard: ")


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out
