# SPDX-License-Identifier: GPL-2.0-or-later
"""Real audio for the benchmarks: Debian's Asterisk prompts and music on hold.

Nobody here recorded these files, which is the point of using them for
talk-off (ITU-T Q.24 asks for immunity to speech; issue 3 names the corpora).
Paths come from the packages' file lists (``dpkg -L``) when dpkg is there.
"""
from __future__ import annotations

import glob
import os
import subprocess
from typing import List

import numpy as np
import soundfile as sf

__all__ = ["speech_files", "music_files", "read_8k", "speech_signal"]

SPEECH_PACKAGE = "asterisk-core-sounds-en-wav"
MUSIC_PACKAGE = "asterisk-moh-opsound-wav"
_FALLBACK = {SPEECH_PACKAGE: "/usr/share/asterisk/sounds/en_US_f_Allison/**/*.wav",
             MUSIC_PACKAGE: "/usr/share/asterisk/moh/*.wav"}


def _package_wavs(package: str) -> List[str]:
    try:
        out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True).stdout
        files = [p for p in out.splitlines() if p.endswith(".wav") and os.path.isfile(p)]
    except (OSError, subprocess.CalledProcessError):
        files = glob.glob(_FALLBACK[package], recursive=True)
    return sorted(files)


def _is_8k_mono(path: str) -> bool:
    try:
        info = sf.info(path)
    except Exception:
        return False
    return info.samplerate == 8000 and info.frames > 0


def speech_files() -> List[str]:
    """The 8 kHz wav prompts of asterisk-core-sounds-en-wav."""
    return [p for p in _package_wavs(SPEECH_PACKAGE) if _is_8k_mono(p)]


def music_files() -> List[str]:
    """The 8 kHz wav music-on-hold files of asterisk-moh-opsound-wav."""
    return [p for p in _package_wavs(MUSIC_PACKAGE) if _is_8k_mono(p)]


def read_8k(path: str) -> np.ndarray:
    """First channel as float64 on the int16 scale."""
    data, rate = sf.read(path, dtype="int16", always_2d=True)
    if rate != 8000:
        raise ValueError(f"{path}: {rate} Hz, expected 8000")
    return data[:, 0].astype(np.float64)


def speech_signal(seconds: float, rng: np.random.Generator, gap_ms: float = 200.0) -> np.ndarray:
    """About ``seconds`` of prompts picked at random (fixed by ``rng``), separated by short pauses."""
    files = speech_files()
    if not files:
        raise FileNotFoundError(f"no 8 kHz wav files from {SPEECH_PACKAGE} "
                                f"(apt-get install {SPEECH_PACKAGE})")
    parts, total = [], 0
    gap = np.zeros(int(gap_ms * 8))
    while total < seconds * 8000:
        x = read_8k(files[int(rng.integers(len(files)))])
        parts += [x, gap]
        total += x.size + gap.size
    return np.concatenate(parts)[: int(seconds * 8000)]
