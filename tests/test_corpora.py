# SPDX-License-Identifier: GPL-2.0-or-later
"""The corpus module: stable tune/report split, variants, and a missing source that names its package."""
from __future__ import annotations

import numpy as np
import pytest

from dtmfguard.testkit import corpora

from _corpus_util import missing


def test_split_depends_on_the_file_name_only():
    assert corpora.split_of("/usr/share/a/b/hello.wav") == corpora.split_of("/elsewhere/hello.wav")
    names = [f"prompt-{i}.wav" for i in range(200)]
    tune = sum(corpora.split_of(n) == "tune" for n in names)
    assert 70 < tune < 130  # about half each way


def test_variant_speed_changes_length_and_pitch():
    t = np.arange(8000) / 8000
    x = 8000 * np.sin(2 * np.pi * 1000 * t)
    slow = corpora.variant(x, speed=0.9)
    assert abs(slow.size - round(8000 / 0.9)) <= 2
    spec = np.abs(np.fft.rfft(slow[:8000]))
    assert abs(np.argmax(spec) * 8000 / 8000 - 900) <= 2  # 1000 Hz played at 0.9x sounds at 900 Hz


def test_variant_gain_clips_like_a_codec():
    x = np.array([20000.0, -20000.0, 100.0])
    y = corpora.variant(x, gain_db=6.0)
    assert y[0] == 32767 and y[1] == -32768 and y[2] == pytest.approx(199.5, abs=1)


def test_missing_source_names_its_package(monkeypatch):
    monkeypatch.setattr(corpora, "_package_files", lambda package: [])
    with pytest.raises(corpora.CorpusMissing, match="apt-get install asterisk-moh-opsound-wav"):
        corpora.files("moh")
    assert corpora.music_files() == []


def test_unknown_source_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown corpus source 'klingon'"):
        corpora.files("klingon")


def test_package_sources_split_into_disjoint_halves():
    name = next((n for n in ("en", "moh") if corpora.available(n)), None)
    if name is None:
        missing(corpora.SOURCES["en"].package, "a package source (English prompts or music on hold)")
    tune, report = set(corpora.files(name, "tune")), set(corpora.files(name, "report"))
    assert tune and report and not tune & report
    assert tune | report == set(corpora.files(name))
