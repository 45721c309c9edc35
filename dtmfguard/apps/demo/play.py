# SPDX-License-Identifier: GPL-2.0-or-later
"""Playing the demo's recordings on this machine: an installed audio player, else pyaudio."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import List, Optional

__all__ = ["player_command", "play_files"]


def player_command(path: Path) -> Optional[List[str]]:
    """A command line that plays ``path`` with an installed audio player, or None."""
    for cmd in (["paplay"], ["aplay", "-q"], ["ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"],
                ["play", "-q"], ["afplay"]):
        if shutil.which(cmd[0]):
            return [*cmd, str(path)]
    return None


def play_files(paths: List[Path]) -> str:
    """Play each file; returns a one-line description of what happened (never raises)."""
    cmd = player_command(paths[0]) if paths else None
    if cmd is not None:
        for p in paths:
            subprocess.run([*cmd[:-1], str(p)], check=False, stdin=subprocess.DEVNULL)
        return f"played with {cmd[0]}"
    from ..live import LiveUnavailable, play_with_pyaudio

    try:
        for p in paths:
            play_with_pyaudio(p)
        return "played with pyaudio"
    except LiveUnavailable as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - PortAudio errors while playing: say so, never crash
        reason = f"pyaudio failed ({type(exc).__name__})"
    return (f"cannot play: no audio player (paplay, aplay, ffplay, play, afplay) found, and {reason}; "
            "open the WAV files in any audio player")
