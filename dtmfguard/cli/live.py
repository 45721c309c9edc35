# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard live``: microphone -> masker -> speaker on a lab bench, printing the detector's events.

Needs the ``live`` extra (pyaudio, which needs PortAudio).  Without it, or
without an audio device, it says so in one line and exits 2.  Digits are
printed, as ``dtmfguard detect`` does: this is a bench tool, not a call path.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ..dsp.masks import DEFAULT_MASK, MASKS
from . import EXIT_OK, EXIT_USAGE, CliError


def run(args) -> int:
    from ..apps.live import LiveUnavailable, run_live

    t0 = time.monotonic()

    def on_digit(ev) -> None:
        if args.json:
            print(json.dumps({"event": "digit", "digit": ev.digit, "source": ev.source,
                              "start_s": round(ev.start_s, 3), "end_s": round(ev.end_s, 3),
                              "level_dbm0": round(ev.level_dbm0, 1)}), flush=True)
        else:
            print(f"{time.monotonic() - t0:8.2f} s  key {ev.digit}  {ev.start_s:8.3f}-{ev.end_s:8.3f} s  "
                  f"{ev.level_dbm0:6.1f} dBm0  (masked toward the speaker)", flush=True)

    def on_start() -> None:
        if not args.json:
            print(f"dtmfguard live: microphone -> masker ({args.mask}) -> speaker at {args.rate} Hz; "
                  "Ctrl-C stops", flush=True)

    try:
        counters = run_live(rate=args.rate, mask=args.mask, seconds=args.seconds, input_device=args.input_device,
                            output_device=args.output_device, on_digit=on_digit,
                            on_start=on_start)
    except LiveUnavailable as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except ValueError as exc:  # a bad --rate
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.json:
        print(json.dumps({"event": "stopped", **counters}), flush=True)
    else:
        print(f"stopped: {counters['frames']} frames, {counters.get('digits', 0)} key presses, "
              f"{counters.get('errors', 0)} media errors, masker delay {counters.get('delay_ms', 0)} ms")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "live", help="lab bench: microphone -> masker -> speaker, printing key presses (needs the 'live' extra)",
        description="Run the call pipeline (detector + masker) on the microphone and play the masked audio on the "
                    "speaker, printing each key press the detector reports. Needs pyaudio and PortAudio: "
                    "pip install 'dtmfguard[live]' (apt-get install portaudio19-dev first).",
        epilog="Examples:\n  dtmfguard live\n  dtmfguard live --seconds 30 --json\n"
               "  dtmfguard live --input-device 2 --output-device 2 --rate 16000\n"
               "Exit codes: 0 ok, 2 no pyaudio/PortAudio, no audio device or a bad option.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=int, default=8000, help="sample rate in Hz (default 8000)")
    p.add_argument("--mask", choices=MASKS, default=DEFAULT_MASK, help="what replaces a key")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--input-device", type=int, default=None, help="PortAudio input device index")
    p.add_argument("--output-device", type=int, default=None, help="PortAudio output device index")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)


if __name__ == "__main__":  # pragma: no cover
    from . import main

    sys.exit(main(["live", *sys.argv[1:]]))
