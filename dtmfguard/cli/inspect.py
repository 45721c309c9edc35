# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard inspect FILE --png OUT.png``: spectrogram before and after masking, masked spans shaded.

For people who would rather look than read a JSON report: the DTMF rows and
columns (ITU-T Q.23) are marked, the masked spans are shaded, and the lower
panel shows what the agent (or the archive) keeps.  Needs matplotlib (the
``plot`` extra).  Digits are never printed.
"""
from __future__ import annotations

import argparse
import json

from ..dsp.audio import AudioError, read_audio
from ..dsp.masks import DEFAULT_LOOKAHEAD_MS, DEFAULT_MASK, MASKS
from . import EXIT_OK, EXIT_USAGE, CliError, lookahead_ms, number


def run(args) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("inspect needs matplotlib: pip install 'dtmfguard[plot]'", EXIT_USAGE) from None
    import numpy as np

    from ..dsp.keypad import KeypadMasker
    from ..dsp.params import DTMF_HZ

    try:
        x, rate = read_audio(args.file, args.channel)
    except AudioError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    m = KeypadMasker(rate, lookahead_ms=args.lookahead_ms, mask=args.mask)
    y = np.concatenate([m.process(np.clip(np.round(x), -32768, 32767).astype(np.int16)), m.flush()])
    y = y[m.delay_samples:].astype(np.float64)
    spans = [s for s in m.masked_spans if s.end > 0 and s.start < x.size]
    fig, axes = plt.subplots(2, 1, figsize=(args.width, 6), sharex=True, constrained_layout=True)
    for ax, sig, title in ((axes[0], x, "before"), (axes[1], y, "after masking")):
        with np.errstate(divide="ignore"):  # digital silence has no finite level
            ax.specgram(sig / 32768.0, NFFT=256, Fs=rate, noverlap=192, cmap="magma", vmin=-140)
        for s in spans:
            ax.axvspan(max(s.start, 0) / rate, min(s.end, x.size) / rate, color="cyan", alpha=0.25, lw=0)
        for f in DTMF_HZ:
            ax.axhline(f, color="white", lw=0.3, alpha=0.5)
        ax.set_ylim(0, min(rate / 2, 4000))
        ax.set_ylabel("Hz")
        ax.set_title(f"{title} ({len(spans)} masked span(s) shaded)" if title != "before" else title, fontsize=10)
    axes[1].set_xlabel("s")
    fig.suptitle(str(args.file), fontsize=10)
    try:
        fig.savefig(args.png, dpi=args.dpi)
    except OSError as exc:
        raise CliError(f"{args.png}: cannot write ({exc.strerror or type(exc).__name__})", EXIT_USAGE) from None
    finally:
        plt.close(fig)
    if args.json:
        print(json.dumps({"file": str(args.file), "png": str(args.png), "masked_spans": len(spans),
                          "spans": [{"start_s": round(max(s.start, 0) / rate, 4),
                                     "end_s": round(min(s.end, x.size) / rate, 4)} for s in spans]}))
    else:
        print(f"{args.png}: {len(spans)} masked span(s)")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="draw a spectrogram before/after masking (needs the 'plot' extra)",
        description="Draw the spectrogram of a recording before and after masking, with masked spans shaded "
                    "and the DTMF frequencies marked. Needs matplotlib: pip install 'dtmfguard[plot]'.",
        epilog="Examples:\n  dtmfguard inspect call.wav --png call.png\n"
               "  dtmfguard inspect --channel 1 stereo.wav --png agent-side.png\n"
               "Exit codes: 0 ok, 2 bad input, missing matplotlib or unwritable PNG.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="audio file")
    p.add_argument("--png", required=True, metavar="OUT.png", help="where to write the picture")
    p.add_argument("--channel", type=int, default=None, help="channel of a multi-channel file (0-based)")
    p.add_argument("--mask", choices=MASKS, default=DEFAULT_MASK, help="mask signal")
    p.add_argument("--lookahead-ms", type=lookahead_ms, default=DEFAULT_LOOKAHEAD_MS,
                   help=f"masker look-ahead in ms (default {DEFAULT_LOOKAHEAD_MS:g}, as on live calls)")
    p.add_argument("--width", type=number(1, 100), default=12.0, help="figure width in inches")
    p.add_argument("--dpi", type=number(10, 1200, int), default=100)
    p.add_argument("--json", action="store_true", help="print the masked spans as JSON (times only, no digits)")
    p.set_defaults(func=run)
