# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard detect FILE...``: list the DTMF digits in recordings.

This prints digits in the clear: it is a lab and forensics tool for files
you are entitled to read (e.g. checking that a masked recording holds no
digits).  It logs nothing about the digits.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..dsp.audio import AudioError, read_audio
from . import EXIT_OK, EXIT_USAGE


def run(args) -> int:
    from ..dsp.detector import detect

    results, failed = [], 0
    for path in args.files:
        try:
            samples, rate = read_audio(path, args.channel)
        except AudioError as exc:
            print(f"dtmfguard: {exc}", file=sys.stderr)
            failed += 1
            continue
        events = detect(samples, rate)
        results.append({
            "file": str(path),
            "rate": rate,
            "duration_s": round(samples.size / rate, 3),
            "digits": "".join(e.digit for e in events),
            "events": [
                {"digit": e.digit, "start_s": round(e.start_s, 4), "end_s": round(e.end_s, 4),
                 "level_dbm0": round(e.level_dbm0, 1)}
                for e in events
            ],
        })
    if args.json:
        print(json.dumps(results if len(args.files) > 1 else (results[0] if results else None), indent=2))
    else:
        for r in results:
            print(f"{r['file']}: {r['digits'] or '(no digits)'}")
            for e in r["events"]:
                print(f"  {e['digit']}  {e['start_s']:9.4f} s – {e['end_s']:9.4f} s  {e['level_dbm0']:6.1f} dBm0")
    return EXIT_USAGE if failed else EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "detect",
        help="list the DTMF digits in audio files",
        description="Detect DTMF key presses in audio files (WAV, FLAC, … at 8000-48000 Hz) and print each "
                    "digit with its start and end time.",
        epilog="Examples:\n  dtmfguard detect call.wav\n  dtmfguard detect --channel 1 --json stereo.wav\n"
               "Exit codes: 0 ok, 2 a file could not be read.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio file(s)")
    p.add_argument("--channel", type=int, default=None, help="channel of a multi-channel file (0-based)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
