# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard mask``: remove DTMF key presses from recordings (PCI DSS v4.0 req. 3.3.1).

A thin layer over :func:`dtmfguard.dsp.recordings.mask_file`.  Batches run on all
cores (one process per file), show a progress bar on stderr and write one JSON
report of masked spans (times and counts; the digits are never read out,
printed or logged).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

from ..dsp.audio import AudioError
from ..dsp.masks import DEFAULT_LOOKAHEAD_MS, DEFAULT_MASK, MASKS
from . import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, CliError, lookahead_ms, number


def _job(in_path: str, out_path: str, opts: dict):
    from ..dsp.recordings import mask_file

    try:
        return "ok", mask_file(in_path, out_path, **opts)
    except AudioError as exc:
        return "input", str(exc)
    except Exception as exc:  # no message text: it is not ours to print (could come from anywhere)
        return "internal", f"{in_path}: internal error ({type(exc).__name__})"


def _progress(done: int, total: int, failed: int) -> None:
    width = 30
    fill = int(width * done / max(total, 1))
    tail = f", {failed} failed" if failed else ""
    sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} files{tail}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run(args) -> int:
    from ..dsp.recordings import default_output

    opts = {"overwrite": args.force, "overwrite_input": args.force, "lookahead_ms": args.lookahead_ms,
            "mask": args.mask, "hide_timing": args.hide_timing, "payment": args.payment}
    if args.out_dir:
        if not os.path.isdir(args.out_dir):
            raise CliError(f"{args.out_dir}: not a directory")
        jobs = [(f, default_output(f, args.out_dir)) for f in args.files]
        outs = [o for _, o in jobs]
        if len(set(map(os.path.abspath, outs))) != len(outs):
            raise CliError("two inputs have the same file name; they would write the same output")
    else:
        if len(args.files) != 2:
            raise CliError("give IN OUT, or --out-dir DIR FILE...")
        jobs = [(args.files[0], args.files[1])]
    batch = bool(args.out_dir)
    reports, errors, internal = [], [], 0
    workers = max(1, min(args.jobs or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        results = (_job(i, o, opts) for i, o in jobs)
        iterator = results
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        futures = [pool.submit(_job, i, o, opts) for i, o in jobs]
        iterator = (f.result() for f in as_completed(futures))
    done = 0
    try:
        for status, payload in iterator:
            done += 1
            if status == "ok":
                reports.append(payload)
            else:
                errors.append(payload)
                internal += status == "internal"
                if batch and not args.quiet:
                    sys.stderr.write("\n")
                print(f"dtmfguard: {payload}", file=sys.stderr)
            if batch and not args.quiet:
                _progress(done, len(jobs), len(errors))
    finally:
        if workers > 1:
            pool.shutdown()
    reports.sort(key=lambda r: r["input"])
    summary = {"files": len(jobs), "masked": len(reports), "failed": len(errors), "reports": reports}
    report_path = args.report or (os.path.join(args.out_dir, "mask-report.json") if batch else None)
    if report_path:
        with open(report_path, "w") as f:
            json.dump(summary, f, indent=2)
    if args.json:
        print(json.dumps(summary if batch else (reports[0] if reports else summary), indent=2))
    elif not args.quiet:
        for r in reports:
            spans = sum(c["masked_spans"] for c in r["per_channel"])
            secs = sum(c["masked_s"] for c in r["per_channel"])
            print(f"{r['output']}: {spans} masked span(s), {secs:.2f} s masked")
    if internal:
        return EXIT_INTERNAL
    return EXIT_USAGE if errors else EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "mask",
        help="replace DTMF key presses in recordings by a flat tone",
        description="Mask DTMF key presses in recordings: every tone, from its first sample, becomes a flat "
                    "tone (or silence / comfort noise); everything else is kept bit-exact. Keeps sample rate, "
                    "format, sample encoding and channels (each channel is masked on its own). The input is "
                    "never modified.",
        epilog="Examples:\n  dtmfguard mask call.wav call-masked.wav\n"
               "  dtmfguard mask --out-dir masked/ archive/*.wav\n"
               "  dtmfguard mask --json --mask silence in.wav out.wav\n"
               "  dtmfguard mask --payment card-entry.wav card-entry-masked.wav\n"
               "Exit codes: 0 ok, 2 a file could not be read or written, 3 internal error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="IN OUT, or the inputs with --out-dir")
    p.add_argument("--out-dir", metavar="DIR", help="write each masked file to DIR under its own name")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs (even the input)")
    p.add_argument("--mask", choices=MASKS, default=DEFAULT_MASK, help="mask signal")
    p.add_argument("--hide-timing", action="store_true",
                   help="hold the mask 2 s after each press so the number and rhythm of presses is hidden")
    p.add_argument("--payment", action="store_true",
                   help="payment profile for the whole file: besides masking key presses, remove the 8 DTMF "
                        "frequencies from all other audio (speech loses about 0.6 dB; catches tones hidden "
                        "under louder speech that are otherwise left partly raw). For card-entry recordings")
    p.add_argument("--lookahead-ms", type=lookahead_ms, default=DEFAULT_LOOKAHEAD_MS,
                   help=f"masker look-ahead in ms (default {DEFAULT_LOOKAHEAD_MS:g}, as on live calls)")
    p.add_argument("--report", metavar="FILE",
                   help="write the JSON report here (default with --out-dir: DIR/mask-report.json)")
    p.add_argument("--jobs", type=number(1, 1024, int), default=None, help="parallel processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)
