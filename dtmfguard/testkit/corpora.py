# SPDX-License-Identifier: GPL-2.0-or-later
"""Real audio nobody here recorded, for talk-off and masking benchmarks and tests (tooling, not runtime).

Every source is a Debian package (or espeak-ng, which synthesises speech in many languages). Files are
listed with ``dpkg -L`` so a host with more or fewer packages than CI sees exactly what is installed;
a missing source raises :class:`CorpusMissing` naming the package to install.

Honest measurement needs data one did not tune on: each source is split by file into a ``tune`` half
and a ``report`` half (a stable hash of the file's name, so the split never depends on what else is
installed). Speed (playback-rate) and gain variants are made from the 8 kHz signal.

Decoded 8 kHz audio of compressed or resampled sources is cached under ``$DTMFGUARD_CORPUS_CACHE``
(default ``~/.cache/dtmfguard-corpora``); these are public recordings, never call audio.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf

__all__ = ["Source", "SOURCES", "CorpusMissing", "available", "files", "signal", "variant", "split_of",
           "read_8k", "prompt", "speech_files", "music_files", "speech_signal", "ESPEAK_LANGUAGES", "VARIANTS"]

RATE = 8000
_AUDIO_EXT = (".wav", ".gsm", ".ogg", ".mp3", ".flac")
#: espeak-ng voices used for synthetic speech: 12 languages from 6 families
ESPEAK_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "tr", "hi", "cmn")
#: the talk-off variants of issue 17: (label, playback speed, gain in dB)
VARIANTS = (("1.0x", 1.0, 0.0), ("0.9x", 0.9, 0.0), ("0.95x", 0.95, 0.0), ("1.05x", 1.05, 0.0),
            ("1.1x", 1.1, 0.0), ("+6dB", 1.0, 6.0))


class CorpusMissing(FileNotFoundError):
    """A source's package (or program) is not installed; the message names it."""


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # "speech" or "music"
    package: str  # Debian package that provides it
    description: str


def _pkg(name: str, kind: str, package: str, description: str) -> Tuple[str, Source]:
    return name, Source(name, kind, package, description)


SOURCES: Dict[str, Source] = dict([
    _pkg("en", "speech", "asterisk-core-sounds-en-wav", "Asterisk prompts, US English (Allison)"),
    _pkg("fr", "speech", "asterisk-core-sounds-fr-wav", "Asterisk prompts, Canadian French"),
    _pkg("es", "speech", "asterisk-core-sounds-es-wav", "Asterisk prompts, Mexican Spanish"),
    _pkg("it", "speech", "asterisk-core-sounds-it-wav", "Asterisk prompts, Italian"),
    _pkg("ru", "speech", "asterisk-core-sounds-ru-wav", "Asterisk prompts, Russian"),
    _pkg("it-menardi", "speech", "asterisk-prompt-it-menardi-wav", "Italian prompts (Menardi), another voice"),
    _pkg("es-co", "speech", "asterisk-prompt-es-co", "Colombian Spanish prompts (GSM 06.10)"),
    _pkg("fr-armelle", "speech", "asterisk-prompt-fr-armelle", "French prompts (Armelle, GSM 06.10)"),
    _pkg("moh", "music", "asterisk-moh-opsound-wav", "Asterisk music on hold (opsound)"),
    _pkg("drascula", "music", "drascula-music", "game soundtrack (Drascula), orchestral/pop"),
    _pkg("hyperrogue", "music", "hyperrogue-music", "game soundtrack (HyperRogue), ambient/electronic"),
    _pkg("asc", "music", "asc-music", "game soundtrack (Advanced Strategic Command), rock"),
] + [_pkg(f"espeak-{lang}", "speech", "espeak-ng", f"espeak-ng synthetic speech, voice {lang!r}")
     for lang in ESPEAK_LANGUAGES])


def _cache_dir() -> Path:
    root = os.environ.get("DTMFGUARD_CORPUS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                     "dtmfguard-corpora")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_files(package: str) -> List[str]:
    try:
        out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    paths = sorted(p for p in out.splitlines() if p.lower().endswith(_AUDIO_EXT) and os.path.isfile(p))
    # one copy of each file: a package may link the same audio into several folders (drascula-music
    # links every track into audio/ and five language folders)
    seen, unique = set(), []
    for p in paths:
        real = os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            unique.append(p)
    return unique


def split_of(path: str) -> str:
    """``tune`` or ``report``, from a stable hash of the file's name (not its folder)."""
    digest = hashlib.sha256(os.path.basename(path).encode()).digest()
    return "tune" if digest[0] % 2 == 0 else "report"


def _usable(path: str) -> bool:
    try:
        info = sf.info(path)
    except Exception:  # a package may ship a damaged or empty file (the Russian pack has a 44-byte WAV)
        return False
    return info.frames > info.samplerate // 50  # at least 20 ms


def available(name: str) -> bool:
    src = SOURCES[name]
    if src.package == "espeak-ng":
        return shutil.which("espeak-ng") is not None
    return bool(_package_files(src.package))


def _require(name: str) -> Source:
    if name not in SOURCES:
        raise KeyError(f"unknown corpus source {name!r} (known: {', '.join(SOURCES)})")
    src = SOURCES[name]
    if not available(name):
        raise CorpusMissing(f"corpus source {name!r} needs the Debian package {src.package} "
                            f"(apt-get install {src.package})")
    return src


def files(name: str, split: str = "all") -> List[str]:
    """The usable audio files of a package source, optionally only one half of the split."""
    src = _require(name)
    if src.package == "espeak-ng":
        return [str(p) for p in _espeak_files(name.split("-", 1)[1], split)]
    out = [p for p in _package_files(src.package) if _usable(p)]
    return out if split == "all" else [p for p in out if split_of(p) == split]


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return x
    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g)


def read_8k(path: str) -> np.ndarray:
    """First channel (mean of channels for music) at 8 kHz, float64 on the int16 scale."""
    info = sf.info(path)
    if info.samplerate == RATE and info.channels == 1:
        data, _ = sf.read(path, dtype="int16", always_2d=True)
        return data[:, 0].astype(np.float64)
    key = hashlib.sha256(f"{path}:{os.path.getsize(path)}".encode()).hexdigest()[:24]
    cached = _cache_dir() / f"{key}.npy"
    if cached.exists():
        return np.load(cached).astype(np.float64)
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    x = _resample(data.mean(axis=1) * 32767.0, rate, RATE)
    x16 = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    tmp = cached.with_suffix(".tmp.npy")
    np.save(tmp, x16)
    os.replace(tmp, cached)
    return x16.astype(np.float64)


# --- espeak-ng: speech in many languages ---------------------------------------------------------
def _espeak_text(rng: np.random.Generator, words: int = 120) -> str:
    """Numbers, amounts, dates and times that espeak-ng reads in each language's own words, plus phrases."""
    parts = []
    while len(parts) < words:
        r = rng.integers(6)
        if r == 0:
            parts.append(str(int(rng.integers(1, 1_000_000))))
        elif r == 1:
            parts.append(f"{int(rng.integers(1, 28))}.{int(rng.integers(1, 13))}.{int(rng.integers(1990, 2030))}")
        elif r == 2:
            parts.append(f"{int(rng.integers(0, 24))}:{int(rng.integers(0, 60)):02d}")
        elif r == 3:
            parts.append(f"{int(rng.integers(1, 999))},{int(rng.integers(0, 99)):02d}")
        else:
            parts.append(str(rng.choice(_PHRASES)))
    return " ".join(parts)


# short, language-neutral words and names that each voice pronounces with its own phonology
_PHRASES = ("Maria", "Paulo", "Anna", "Ivan", "Taro", "Lima", "Roma", "Berlin", "Madrid", "Moskva",
            "hotel", "taxi", "radio", "piano", "banana", "opera", "telefon", "kilo", "metro", "euro",
            "okay", "alpha", "bravo", "delta", "sierra", "tango", "amigo", "ciao", "salut", "hola")


def _espeak_files(lang: str, split: str) -> List[Path]:
    """Synthesised once per language and chunk, cached: 10 chunks of 2-3 minutes per language, the even
    ones for tuning, the odd ones for reporting."""
    out = []
    li = ESPEAK_LANGUAGES.index(lang)
    for chunk in range(10):
        half = "tune" if chunk % 2 == 0 else "report"
        if split != "all" and half != split:
            continue
        path = _cache_dir() / f"espeak-{lang}-{chunk}.wav"
        if not path.exists():
            rng = np.random.default_rng(1000 * li + chunk)
            speed = int(rng.integers(140, 200))
            pitch = int(rng.integers(25, 75))
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "out.wav"
                subprocess.run(["espeak-ng", "-v", lang, "-s", str(speed), "-p", str(pitch), "-w", str(raw),
                                _espeak_text(rng, 160)], check=True, capture_output=True)
                data, rate = sf.read(raw, dtype="float64", always_2d=True)
                x = np.clip(np.round(_resample(data[:, 0] * 32767.0 * 0.7, rate, RATE)), -32768, 32767)
                sf.write(Path(tmp) / "x.wav", x.astype(np.int16), RATE, subtype="PCM_16")
                os.replace(Path(tmp) / "x.wav", path)
        out.append(path)
    return out


# --- signals ----------------------------------------------------------------------------------------
def variant(x: np.ndarray, speed: float = 1.0, gain_db: float = 0.0) -> np.ndarray:
    """Playback at ``speed`` (pitch and tempo, like a tape or a resampling mismatch) and ``gain_db``,
    clipped to int16 as a codec would."""
    if speed != 1.0:
        from scipy.signal import resample_poly

        up = 1000
        down = int(round(1000 * speed))
        g = gcd(up, down)
        x = resample_poly(x, up // g, down // g)
    if gain_db:
        x = x * 10 ** (gain_db / 20.0)
    return np.clip(np.round(x), -32768, 32767)


def signal(name: str, split: str = "all", max_seconds: Optional[float] = None, speed: float = 1.0,
           gain_db: float = 0.0, gap_ms: float = 100.0) -> np.ndarray:
    """One source's files (of ``split``) end to end with short silent gaps, at 8 kHz, as a float64 array
    on the int16 scale; ``max_seconds`` caps the length before the variant is applied."""
    gap = np.zeros(int(gap_ms * RATE / 1000))
    parts, total = [], 0
    limit = None if max_seconds is None else int(max_seconds * RATE)
    for path in files(name, split):
        x = read_8k(path)
        parts += [x, gap]
        total += x.size + gap.size
        if limit is not None and total >= limit:
            break
    if not parts:
        raise CorpusMissing(f"corpus source {name!r} has no usable files in split {split!r}")
    x = np.concatenate(parts)
    if limit is not None:
        x = x[:limit]
    return variant(x, speed, gain_db)


# --- the older API (English prompts and music on hold), kept for callers --------------------------
SPEECH_PACKAGE = SOURCES["en"].package
MUSIC_PACKAGE = SOURCES["moh"].package


def prompt(basename: str, source: str = "en") -> str:
    """The path of one prompt by file name (e.g. ``agent-pass.wav``) wherever its package put it: Debian has
    the ``sounds/en`` link only with the recommended ``asterisk-core-sounds-en``, so never hard-code it."""
    matches = [p for p in files(source) if os.path.basename(p) == basename]
    if not matches:
        raise CorpusMissing(f"{SOURCES[source].package} has no prompt {basename!r}")
    return min(matches, key=len)  # the voice's top-level prompt, not a same-named one in a subfolder


def speech_files() -> List[str]:
    """The usable 8 kHz prompts of asterisk-core-sounds-en-wav (empty when not installed)."""
    return files("en") if available("en") else []


def music_files() -> List[str]:
    """The usable music-on-hold files of asterisk-moh-opsound-wav (empty when not installed)."""
    return files("moh") if available("moh") else []


def speech_signal(seconds: float, rng: np.random.Generator, gap_ms: float = 200.0) -> np.ndarray:
    """About ``seconds`` of English prompts picked at random (fixed by ``rng``), separated by short pauses."""
    pool = files("en")
    parts, total = [], 0
    gap = np.zeros(int(gap_ms * RATE / 1000))
    while total < seconds * RATE:
        x = read_8k(pool[int(rng.integers(len(pool)))])
        parts += [x, gap]
        total += x.size + gap.size
    return np.concatenate(parts)[: int(seconds * RATE)]
