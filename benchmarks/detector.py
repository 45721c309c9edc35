# SPDX-License-Identifier: GPL-2.0-or-later
"""How many real-time 8 kHz channels one CPU core carries: dtmfguard vs spandsp.

Issue 3's goal is the C kernel ahead of spandsp per core.  Every figure here
comes from the same run, on the same input (Asterisk speech prompts with key
presses mixed in), single-threaded (BLAS threads pinned to 1 before numpy is
imported), timed with ``time.process_time``:

* dtmfguard, numpy backend, one ``DtmfDetector`` fed 20 ms frames (RTP packets);
* dtmfguard, C backend, the same;
* dtmfguard, C backend, one ``DetectorBank`` of N channels fed [N, 160] frames
  (one kernel call per frame for all channels);
* the Goertzel kernel alone (both backends, all channels per call, one call per
  20 ms frame), i.e. the detector's cost without its state machine;
* spandsp 0.0.6 (``dtmf_rx`` through ctypes) fed the whole signal in one call,
  i.e. its pure C cost, and fed 20 ms frames (its cost as called from Python).

Channels per core = seconds of audio processed / CPU seconds spent.  Ratios
are against spandsp's pure-C figure.

Run:  python benchmarks/detector.py [--seconds 20] [--channels 256] [--json out.json]
      python benchmarks/detector.py --against ../main --rounds 4   (old and new trees alternately)
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # single-threaded, before numpy
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _corpus  # noqa: E402
import spandsp_ref  # noqa: E402

from dtmfguard.dsp import goertzel  # noqa: E402
from dtmfguard.dsp.params import DEFAULT_PARAMS, DTMF_HZ  # noqa: E402
from dtmfguard.testkit.synth import keypresses  # noqa: E402

RATE = 8000
FRAME = 160  # 20 ms, the usual RTP packet


def make_input(seconds: float, seed: int = 1):
    """Speech with a burst of 6 key presses every 4 s (about 10 % of the time is DTMF), and the key count."""
    rng = np.random.default_rng(seed)
    x = _corpus.speech_signal(seconds, rng)
    step = 4 * RATE
    keys = 0
    for pos in range(RATE, x.size - step // 2, step):
        digits = "".join(rng.choice(list("0123456789*#"), 6))
        tones, spans = keypresses(digits, RATE, tone_ms=70, gap_ms=70, lead_ms=0, tail_ms=0, level_dbm0=-12,
                                  rng=rng)
        end = min(pos + tones.size, x.size)
        x[pos:end] += tones[: end - pos]
        keys += sum(s.end <= end - pos for s in spans)
    # int16, as a live call delivers its frames (and as spandsp gets them)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16), keys


def timed(fn: Callable[[], object], min_cpu_s: float) -> float:
    """CPU seconds per call of ``fn`` (repeated until ``min_cpu_s`` of CPU time has been spent)."""
    fn()  # warm-up: tables, caches, page faults
    runs, start = 0, time.process_time()
    while True:
        fn()
        runs += 1
        spent = time.process_time() - start
        if spent >= min_cpu_s:
            return spent / runs


def bench(seconds: float, channels: int, min_cpu_s: float, params=None) -> List[Dict]:
    from dtmfguard.dsp.detector import DetectorBank, DtmfDetector

    x, keys = make_input(seconds)
    audio_s = x.size / RATE
    n_frames = x.size // FRAME
    frames = [x[i * FRAME:(i + 1) * FRAME] for i in range(n_frames)]
    # every channel its own signal: the same speech, shifted
    multi = np.stack([np.roll(x, 997 * c) for c in range(channels)])[:, : n_frames * FRAME]
    multi_frames = [np.ascontiguousarray(multi[:, i * FRAME:(i + 1) * FRAME]) for i in range(n_frames)]
    half = DEFAULT_PARAMS.half_block_samples(RATE)
    omegas = 2 * np.pi * np.asarray(DTMF_HZ) / RATE
    rows: List[Dict] = []
    digits_seen: Dict[str, str] = {}

    def single_channel(backend: str):
        goertzel.set_backend(backend)

        def run():
            det = DtmfDetector(RATE, params)
            events = []
            for f in frames:
                events += det.process(f)
            events += det.flush()
            digits_seen[backend] = "".join(e.digit for e in events if e.complete)

        return run

    for backend, label in (("numpy", "dtmfguard numpy backend, 1 channel, 20 ms frames"),
                           ("native", "dtmfguard C backend, 1 channel, 20 ms frames")):
        if backend not in goertzel.available_backends():
            rows.append({"name": label, "channels_per_core": None, "note": "C kernel not built"})
            continue
        cpu = timed(single_channel(backend), min_cpu_s)
        rows.append({"name": label, "channels_per_core": audio_s / cpu})

    if "native" in goertzel.available_backends():
        goertzel.set_backend("native")

        def batched():
            bank = DetectorBank(channels, RATE, params)
            for f in multi_frames:
                bank.process(f)
            bank.flush()

        cpu = timed(batched, min_cpu_s)
        rows.append({"name": f"dtmfguard C backend, bank of {channels} channels, 20 ms frames",
                     "channels_per_core": channels * audio_s / cpu})

    # The kernel alone, called as the bank calls it: once per 20 ms frame for all channels (whole
    # half-blocks only; the bank carries the remainder over), so the data stays in cache.
    usable = [np.ascontiguousarray(f[:, : (FRAME // half) * half], dtype=np.float64) for f in multi_frames]
    for backend in goertzel.available_backends():
        goertzel.set_backend(backend)

        def kernel():
            for f in usable:
                goertzel.halfblock_dft(f, half, omegas)

        cpu = timed(kernel, min_cpu_s)
        rows.append({"name": f"kernel only ({backend}), {channels} channels per call, 20 ms frames",
                     "channels_per_core": channels * audio_s / cpu})
    goertzel.set_backend("auto")

    x16 = x

    def span_whole():
        det = spandsp_ref.SpanDtmf(realtime=True)
        det.rx(x16, block=0)
        digits_seen["spandsp"] = "".join(d.digit for d in det.finish())
        det.close()

    def span_frames():
        det = spandsp_ref.SpanDtmf(realtime=True)
        det.rx(x16, block=FRAME)
        det.close()

    cpu = timed(span_whole, min_cpu_s)
    rows.append({"name": "spandsp 0.0.6 (C), whole signal per dtmf_rx call",
                 "channels_per_core": audio_s / cpu,
                 "reference": True})
    cpu = timed(span_frames, min_cpu_s)
    rows.append({"name": "spandsp 0.0.6 via ctypes, 20 ms frames", "channels_per_core": audio_s / cpu})

    ref = next(r["channels_per_core"] for r in rows if r.get("reference"))
    for r in rows:
        r["ratio_to_spandsp"] = r["channels_per_core"] / ref if r.get("channels_per_core") else None
    meta = {"audio_seconds": audio_s, "channels": channels, "digits": digits_seen, "keys_pressed": keys}
    return rows, meta


def against(other: str, rounds: int, argv: List[str]) -> int:
    """This tree and ``other`` (another checkout, its C extensions built in place) run alternately,
    ``rounds`` times each, every run in its own process beside spandsp; prints each configuration's ratio
    to spandsp per tree (min / mean / max) and the mean ratio new / old."""
    import subprocess
    import tempfile

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"this tree": here, "other": os.path.abspath(other)}
    got: Dict[str, Dict[str, List[float]]] = {k: {} for k in trees}
    for r in range(rounds):
        for label, root in trees.items():
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                env = dict(os.environ, PYTHONPATH=root)
                subprocess.run([sys.executable, os.path.join(root, "benchmarks", "detector.py"), *argv,
                                "--json", tmp.name], check=True, env=env, cwd=root, stdout=subprocess.DEVNULL)
                with open(tmp.name) as fh:
                    rows = json.load(fh)["rows"]
            for row in rows:
                if row.get("ratio_to_spandsp"):
                    got[label].setdefault(row["name"], []).append(row["ratio_to_spandsp"])
            print(f"round {r + 1}/{rounds}: {label} done", file=sys.stderr)
    print(f"ratio to spandsp's C receiver (same process), {rounds} alternating runs per tree: "
          f"this tree ({here}) vs other ({trees['other']})")
    print(f"{'configuration':62s} {'other min/mean/max':>20s} {'this min/mean/max':>20s} {'this/other':>10s}")
    for name, vals in got["this tree"].items():
        old = got["other"].get(name)
        fmt = lambda v: f"{min(v):.2f}/{sum(v) / len(v):.2f}/{max(v):.2f}"  # noqa: E731
        ratio = f"{(sum(vals) / len(vals)) / (sum(old) / len(old)):9.2f}x" if old else f"{'-':>10s}"
        print(f"{name:62s} {fmt(old) if old else '-':>20s} {fmt(vals):>20s} {ratio}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Example: python benchmarks/detector.py --seconds 20 --channels 1000")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of audio per channel (default 20)")
    ap.add_argument("--channels", type=int, default=256, help="channels in the batched run (default 256)")
    ap.add_argument("--min-cpu", type=float, default=1.0, help="CPU seconds per measurement (default 1)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--against", metavar="DIR",
                    help="another checkout (C extensions built in place): run it and this tree alternately, "
                         "each beside spandsp, and print both trees' ratios")
    ap.add_argument("--rounds", type=int, default=4, help="runs per tree with --against (default 4)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a DetectorParams field (as benchmarks/talkoff.py does), e.g. "
                         "--set context_persist_max=inf to time the detector without its music-context test (with --against, "
                         "both trees must know --set)")
    args = ap.parse_args(argv)
    if args.against:
        return against(args.against, args.rounds, ["--seconds", str(args.seconds), "--channels",
                                                   str(args.channels), "--min-cpu", str(args.min_cpu)]
                       + [f"--set={item}" for item in args.set])

    params = None
    if args.set:
        from talkoff import _parse_set

        params = _parse_set(args.set)
    rows, meta = bench(args.seconds, args.channels, args.min_cpu, params)
    print(f"real-time 8 kHz channels per CPU core ({meta['audio_seconds']:.0f} s of speech with key presses, "
          f"single-threaded, process_time)")
    print(f"{'configuration':62s} {'channels/core':>14s} {'vs spandsp':>11s}")
    for r in rows:
        cpc = f"{r['channels_per_core']:14,.0f}" if r.get("channels_per_core") else f"{'n/a':>14s}"
        ratio = f"{r['ratio_to_spandsp']:10.2f}x" if r.get("ratio_to_spandsp") else f"{'':>11s}"
        print(f"{r['name']:62s} {cpc} {ratio}")
    d = meta["digits"]
    same = d.get("numpy") == d.get("native") if "native" in d else None
    print(f"digits reported for {meta['keys_pressed']} key presses at -12 dBm0 over speech: dtmfguard "
          f"{len(d.get('numpy', ''))} (numpy and C backends identical: {same}), spandsp {len(d.get('spandsp', ''))}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, **meta, "digits": {k: len(v) for k, v in d.items()}}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
