# SPDX-License-Identifier: GPL-2.0-or-later
"""Where the relay's shared pipeline spends its CPU per frame: the pipeline's own Python, the masker's
Python around its C frame, the C frame itself, and the frames that need the masker's Python steps.

The relay's clock-free benchmark (benchmarks/relay_cpu.py) gives the pipeline as one figure; this one splits
it for whoever works on the masker.  N pipelines (mask mode ``always``, as the relay's default) are fed the
same customer audio at the same offsets as relay_cpu.py's calls (prompts with key presses); every call of the
masker's C object (``Screen.run``/``resume``/``finish``) goes through a thin proxy that times it and notes
the code ``run`` returned (wall-clock reads, cheap; the proxy adds a few hundred ns per frame to the "masker
Python" figure; a loaded machine inflates every figure alike).

Usage: ``python benchmarks/relay_masker_split.py --calls 100 --ticks 300 [--tree /path/to/checkout]``.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class _Proxy:
    """Times the C object's methods and remembers what ``run`` returned."""

    def __init__(self, screen, clock):
        self._s, self._clock = screen, clock
        self.c_time = 0.0
        self.code = None
        self.python_steps = False

    def run(self, *a):
        t0 = self._clock()
        code = self._s.run(*a)
        self.c_time += self._clock() - t0
        self.code, self.python_steps = code, code == 1
        return code

    def resume(self, *a):
        t0 = self._clock()
        r = self._s.resume(*a)
        self.c_time += self._clock() - t0
        return r

    def finish(self, *a):
        t0 = self._clock()
        r = self._s.finish(*a)
        self.c_time += self._clock() - t0
        return r

    def __getattr__(self, name):
        return getattr(self._s, name)


def child(n: int, ticks: int) -> dict:
    import numpy as np

    from dtmfguard.dsp.g711 import ulaw_decode, ulaw_encode
    from dtmfguard.media.pipeline import CallPipeline

    sys.path.insert(0, str(HERE))
    from relay import customer_audio

    x = customer_audio()
    x = x[: len(x) // 160 * 160]
    # what the relay hands the pipeline: the G.711 round trip of the customer's audio
    frames = [np.asarray(ulaw_decode(ulaw_encode(x[i:i + 160])), dtype=np.int16) for i in range(0, len(x), 160)]
    clock = time.perf_counter  # (vDSO: the thread CPU clock is a system call, ~0.5 us a read, too coarse here)
    pls = [CallPipeline(8000, mask_mode="always", name=f"split-{k}") for k in range(n)]
    proxies = []
    for p in pls:
        screen = getattr(p.masker, "_native_screen", None)
        if screen is None:
            return {"error": "the masker has no C frame in this tree (not built?)"}
        proxies.append(_Proxy(screen, clock))
        p.masker._native_screen = proxies[-1]
    warm = 50
    acc = collections.defaultdict(float)
    cnt = collections.Counter()
    for t in range(ticks + warm):
        for k, (p, px) in enumerate(zip(pls, proxies)):
            frame = frames[(k * 37 + t) % len(frames)]
            c0 = px.c_time
            m = p.masker
            real_process = m.process
            inner = [0.0]

            t0 = clock()
            out = p.process_customer_frame(frame) if t < warm else None
            if t >= warm:
                # the pipeline calls masker.process once: time it from inside
                def timed(chunk, _rp=real_process, _inner=inner):
                    s = clock()
                    r = _rp(chunk)
                    _inner[0] = clock() - s
                    return r

                m.process = timed
                t0 = clock()
                out = p.process_customer_frame(frame)
                total = clock() - t0
                del m.process
                c = px.c_time - c0
                kind = "python steps" if px.python_steps else f"C only (code {px.code})"
                acc["pipeline"] += total
                acc["pipeline own Python"] += total - inner[0]
                acc[kind + ": masker Python"] += inner[0] - c
                acc[kind + ": C"] += c
                cnt[kind] += 1
            assert len(out) == 160
    frames_done = n * ticks
    return {"calls": n, "ticks": ticks, "frames": frames_done,
            "us_per_frame": {k: round(1e6 * v / frames_done, 2) for k, v in sorted(acc.items())},
            "frames_by_kind": dict(cnt),
            "us_per_frame_of_kind": {k: round(1e6 * (acc[k + ": masker Python"] + acc[k + ": C"]) / c, 1)
                                     for k, c in cnt.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--tree", default=str(HERE.parent), help="checkout to measure (default: this one)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.calls, a.ticks)))
        return 0
    tree = str(Path(a.tree).resolve())
    p = subprocess.run([sys.executable, str(HERE / "relay_masker_split.py"), "--child", "--calls", str(a.calls),
                        "--ticks", str(a.ticks)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": tree}, timeout=900)
    if p.returncode:
        print(p.stderr[-2000:], file=sys.stderr)
        return 1
    o = json.loads(p.stdout.strip().splitlines()[-1])
    if "error" in o:
        print(o["error"], file=sys.stderr)
        return 1
    print(f"{tree}: {o['calls']} pipelines x {o['ticks']} frames, load average {open('/proc/loadavg').read().split()[0]}; "
          "us per frame (wall clock, averaged over all frames)")
    for k, v in o["us_per_frame"].items():
        print(f"  {k:45s} {v:7.2f}")
    print("  frames by kind: " + ", ".join(f"{k} {v}" for k, v in o["frames_by_kind"].items()))
    print("  masker us per frame of that kind: " + ", ".join(f"{k} {v}" for k, v in o["us_per_frame_of_kind"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
