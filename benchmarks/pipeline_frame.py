# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-frame cost of the masker and the call pipeline, as a live call sees it: one frame every 20 ms.

Why: a tight loop (``benchmarks/masker.py`` "channels per core") keeps numpy's
code and data hot in the CPU caches, so it under-states what a live call pays.
In a guard worker the pipeline runs once every 20 ms on pjsua2's clock thread,
between other processes' work, and each call's first touch of its state is
cold.  The SIP engineer measured ~100 µs per frame in a tight loop but 500-700 µs
with a 20 ms sleep between frames.  Issue 6 (50 calls on 2 cores, no late
frames) depends on the second figure, so this script prints both side by side.

For each scenario (masker alone on speech, on a quiet line and on key presses; the in-band
detector alone on the same three; the whole :class:`~dtmfguard.media.pipeline.CallPipeline` on speech
without a payment, as for most of a call; and with a payment session attached, so the detector runs
too) it feeds 160-sample int16 frames and times each call with ``perf_counter`` (wall) and
``thread_time`` (CPU), in two regimes:

* ``tight``: frames back to back;
* ``sleep``: ``--frame-sleep-ms`` (default 20) of sleep between frames, as on the clock thread.

``--procs N`` runs the sleep regime in N processes at once (each with its own
pipeline), which adds the cache pressure of other calls on the same cores.

Every scenario runs on each kernel backend (``--backends``, default: all built), numpy and
native side by side, with the native/numpy ratio of the sleep regime's median.

Run: ``python benchmarks/pipeline_frame.py [--frames 400] [--frame-sleep-ms 20] [--procs 1]
[--backends numpy,native] [--scenarios detector-keys,pipeline-payment] [--json]``
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # as in a guard worker
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

FRAME = 160
SPEECH = "agent-pass.wav"  # an English prompt, found by dtmfguard.testkit.corpora.prompt


class _Session:
    """A payment session that only counts digits (so the detector runs as during a payment)."""

    def __init__(self):
        self.n = 0

    def feed(self, ev) -> None:
        self.n += 1


def _speech(seconds: float) -> np.ndarray:
    from dtmfguard.testkit.synth import white_noise

    try:
        from dtmfguard.testkit import corpora
        from dtmfguard.dsp.audio import read_audio

        x = read_audio(corpora.prompt(SPEECH))[0]
    except Exception:  # no speech prompts installed: low noise stands in
        x = white_noise(int(seconds * 8000), 100.0, rng=np.random.default_rng(1))
    reps = int(np.ceil(seconds * 8000 / x.size))
    return np.clip(np.round(np.tile(x, reps)[: int(seconds * 8000)]), -32768, 32767).astype(np.int16)


def _quiet(seconds: float) -> np.ndarray:
    """A customer listening: line noise at about -60 dBm0."""
    from dtmfguard.testkit.synth import white_noise

    return np.round(white_noise(int(seconds * 8000), 16.0, rng=np.random.default_rng(2))).astype(np.int16)


def _presses(seconds: float) -> np.ndarray:
    from dtmfguard.testkit.synth import keypresses

    keys, _ = keypresses("4111111111111111", rng=np.random.default_rng(3))
    sp = _speech(seconds).astype(np.float64)
    k = np.zeros(sp.size)
    n = min(keys.size, sp.size)
    k[:n] = keys[:n]
    x = np.where(np.abs(k) > 0, k, 0.1 * sp)  # keys with quiet speech between them
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _make(scenario: str):
    from dtmfguard.dsp.detector import DtmfDetector
    from dtmfguard.dsp.masker import Masker
    from dtmfguard.media.pipeline import CallPipeline

    if scenario == "masker-speech":
        m = Masker()
        return m.process, _speech
    if scenario == "masker-quiet":
        m = Masker()
        return m.process, _quiet
    if scenario == "masker-keys":
        m = Masker()
        return m.process, _presses
    if scenario.startswith("detector-"):
        d = DtmfDetector()
        return d.process, {"speech": _speech, "quiet": _quiet, "keys": _presses}[scenario[len("detector-"):]]
    if scenario == "pipeline":  # mask_mode "always", no session: the detector runs for the masker's keypad burst
        p = CallPipeline()
        return p.process_customer_frame, _speech
    if scenario == "pipeline-no-receiver":  # the same without it (``keypad_burst_receiver`` off: the detector idles)
        import dataclasses

        from dtmfguard.dsp.params import DEFAULT_MASKER_PARAMS

        p = CallPipeline(masker_options={"params": dataclasses.replace(DEFAULT_MASKER_PARAMS,
                                                                       keypad_burst_receiver=False)})
        return p.process_customer_frame, _speech
    if scenario == "pipeline-payment":
        p = CallPipeline(session=_Session())
        return p.process_customer_frame, _presses
    if scenario == "pipeline-secure":  # mask_mode "secure" outside a payment: detector + key relay all call long
        p = CallPipeline(mask_mode="secure")
        return p.process_customer_frame, _speech
    raise ValueError(scenario)


SCENARIOS = ("masker-speech", "masker-quiet", "masker-keys", "detector-speech", "detector-quiet", "detector-keys",
             "pipeline", "pipeline-no-receiver", "pipeline-payment", "pipeline-secure")


def measure(scenario: str, frames: int, sleep_ms: float, backend: str = "") -> dict:
    from dtmfguard.dsp import goertzel

    if backend:
        goertzel.set_backend(backend)
    step, source = _make(scenario)
    x = source(frames * FRAME / 8000 + 1)
    for i in range(25):  # warm-up: first-call table building is not what a call pays per frame
        step(x[i * FRAME: (i + 1) * FRAME])
    wall = np.empty(frames)
    cpu = np.empty(frames)
    sleep_s = sleep_ms / 1000.0
    n_frames = x.size // FRAME
    for i in range(frames):
        fr = x[(i % n_frames) * FRAME: (i % n_frames + 1) * FRAME]
        if sleep_s:
            time.sleep(sleep_s)
        c0, t0 = time.thread_time(), time.perf_counter()
        step(fr)
        t1, c1 = time.perf_counter(), time.thread_time()
        wall[i] = t1 - t0
        cpu[i] = c1 - c0
    us = 1e6
    return {"scenario": scenario, "backend": goertzel.backend(), "sleep_ms": sleep_ms, "frames": frames,
            "wall_us_median": round(float(np.median(wall)) * us, 1),
            "wall_us_mean": round(float(np.mean(wall)) * us, 1),
            "wall_us_p99": round(float(np.percentile(wall, 99)) * us, 1),
            "cpu_us_mean": round(float(np.mean(cpu)) * us, 1)}


def _child(args) -> dict:
    return measure(*args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400, help="timed frames per scenario and regime")
    ap.add_argument("--frame-sleep-ms", type=float, default=20.0, help="sleep between frames (sleep regime)")
    ap.add_argument("--procs", type=int, default=1, help="processes running the sleep regime at once")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--backends", default="", help="comma-separated kernel backends (default: all built)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from dtmfguard.dsp import goertzel

    backends = a.backends.split(",") if a.backends else list(goertzel.available_backends())
    rows = []
    for sc in a.scenarios.split(","):
        for be in backends:  # interleaved per scenario, so a change in machine load hits both alike
            tight = measure(sc, a.frames, 0.0, be)
            if a.procs <= 1:
                sleep = [measure(sc, a.frames, a.frame_sleep_ms, be)]
            else:
                with mp.get_context("spawn").Pool(a.procs) as pool:
                    sleep = pool.map(_child, [(sc, a.frames, a.frame_sleep_ms, be)] * a.procs)
            agg = {k: round(float(np.mean([r[k] for r in sleep])), 1)
                   for k in ("wall_us_median", "wall_us_mean", "wall_us_p99", "cpu_us_mean")}
            rows.append({"scenario": sc, "backend": be, "tight": tight, "sleep": agg, "procs": a.procs})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"µs per 160-sample frame (wall median / mean / p99, CPU mean); {a.frames} frames; sleep regime: "
          f"{a.frame_sleep_ms:g} ms between frames x {a.procs} process(es); "
          f"load before: {open('/proc/loadavg').read().split()[0]}")
    print(f"{'scenario':18s} {'backend':7s} | {'tight loop':>27s} | {'with sleep':>27s} | sleep/tight | "
          f"vs {backends[0]}")
    base = {}
    for r in rows:
        t, s = r["tight"], r["sleep"]
        base.setdefault(r["scenario"], s["wall_us_median"])
        print(f"{r['scenario']:18s} {r['backend']:7s} | {t['wall_us_median']:6.0f} {t['wall_us_mean']:6.0f} "
              f"{t['wall_us_p99']:6.0f} {t['cpu_us_mean']:6.0f} | {s['wall_us_median']:6.0f} "
              f"{s['wall_us_mean']:6.0f} {s['wall_us_p99']:6.0f} {s['cpu_us_mean']:6.0f} | "
              f"{s['wall_us_median'] / t['wall_us_median']:10.1f}x | "
              f"{s['wall_us_median'] / base[r['scenario']]:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
