# SPDX-License-Identifier: GPL-2.0-or-later
"""Where a relay tick's CPU goes, per call and component: old tree against new tree in one run.

Runs benchmarks/relay_cpu.py's clockless child (N calls on loopback, one PCMU packet per call and
direction per tick, the relay's work timed with the thread CPU clock) under the py-spy sampling profiler
(``pip install py-spy``; it samples from outside the process, so it adds no per-call overhead the way
cProfile does), keeps the samples taken inside the relay's work, and puts each sample in one component by
its innermost frame in dtmfguard (for lines of the relay's own loop: by what the line does):

  socket recv / socket send (with C's encoding) / epoll wait+dispatch / C drain (native/relayio.c: epoll,
  recv, the agent's pass-through, G.711 decode) / RTP parse / RTP build / SRTP / jitter buffer /
  G.711 decode / G.711 encode / masker / detector / digit merge+signalled keys / session /
  pipeline glue (CallPipeline's own lines) / tick and loop bookkeeping (everything else in the relay)

Each component's share of the samples times the measured CPU per frame gives microseconds per call per
tick.  Sampling error: a component with k samples is known to about +-sqrt(k)/k; the sample counts are
printed.

Usage (own network namespace): ``python benchmarks/relay_profile.py --calls 100 --ticks 1500
--tree /old/checkout --tree .``
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

COMPONENTS = ("socket recv", "socket send", "epoll wait+dispatch", "C drain (recv, pass-through, decode)", "RTP parse", "RTP build", "SRTP", "jitter buffer",
              "G.711 decode", "G.711 encode", "masker", "detector", "digit merge+signalled keys", "session",
              "pipeline glue", "tick and loop bookkeeping")

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+):(?P<line>\d+)\)$")


def _line(tree: str, file: str, line: int, cache: dict) -> str:
    path = Path(tree) / file
    if path not in cache:
        try:
            cache[path] = path.read_text().splitlines()
        except OSError:
            cache[path] = []
    lines = cache[path]
    return lines[line - 1] if 0 < line <= len(lines) else ""


def classify(frames: list[tuple[str, str, int]], tree: str, cache: dict) -> str:
    """frames: innermost first (function, file, line) -> a component of COMPONENTS."""
    for func, file, line in frames:
        f = file.replace("\\", "/")
        if "dtmfguard/" not in f:
            continue  # numpy, socket.py ...: the caller decides
        if "/dsp/masker" in f or "_masker" in f or "/dsp/pairfit" in f:
            return "masker"
        if "/dsp/detector" in f or "/dsp/goertzel" in f:
            return "detector"
        if "/signalling/" in f or "/media/keyrelay" in f:
            return "digit merge+signalled keys"
        if "/capture/" in f:
            return "session"
        if f.endswith("relay/srtp.py"):
            return "SRTP"
        if f.endswith("relay/codecs.py") or f.endswith("relay/batch.py"):
            text = _line(tree, file, line, cache)
            if "decode" in func.lower() or "_dec" in text:
                return "G.711 decode"
            return "G.711 encode"
        if f.endswith("relay/rtp.py"):
            if "parse" in func:
                return "RTP parse"
            if "build" in func:
                return "RTP build"
            return "jitter buffer"
        if f.endswith("media/pipeline.py"):
            return "pipeline glue"
        if f.endswith("relay/engine.py"):
            text = _line(tree, file, line, cache)
            low = text.lower()
            if "drain(" in text:  # native/relayio.c: epoll, recv, the agent's pass-through, G.711 decode
                return "C drain (recv, pass-through, decode)"
            if "send_frames" in text:  # native/relayio.c: G.711 encode + RTP header + send
                return "socket send"
            if "decode_tables" in low or "decode_batch" in low:
                return "G.711 decode"
            if "encode_tables" in low:
                return "G.711 encode"
            if "sendto" in text or "sendmsg" in text:
                return "socket send"
            if "recv" in text:
                return "socket recv"
            if ".poll(" in text or "h[0](" in text or "handlers" in text and "get" in text:
                return "epoll wait+dispatch"
            if "parse_fields" in text or "unpack" in text:
                return "RTP parse"
            if "_pack_header" in text or "pack(" in text:
                return "RTP build"
            if "protect" in text:
                return "SRTP"
            if "decode" in text:
                return "G.711 decode"
            if "encode" in text:
                return "G.711 encode"
            if "put_audio" in text or "pop()" in text or "due_events" in text or "jitter" in text:
                return "jitter buffer"
            if "process_customer_frame" in text or "process_frames" in text:
                return "pipeline glue"
            if "session" in text:
                return "session"
            return "tick and loop bookkeeping"
        return "tick and loop bookkeeping"
    return "tick and loop bookkeeping"


def profile_tree(tree: str, calls: int, ticks: int, rate: int, mask_mode: str, spy: str, detail: str = "") -> dict:
    with tempfile.TemporaryDirectory(prefix="relay-profile-") as tmp:
        out = Path(tmp) / "raw.txt"
        cmd = [spy, "record", "--nonblocking", "--rate", str(rate), "--format", "raw", "-o", str(out), "--",
               sys.executable, str(HERE / "relay_cpu.py"), "--child", "--calls", str(calls), "--ticks", str(ticks),
               "--mask-mode", mask_mode]
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": tree}, timeout=1200)
        if p.returncode:
            raise RuntimeError(p.stderr[-2000:])
        res = json.loads(next(ln for ln in reversed(p.stdout.splitlines()) if ln.startswith("{")))
        counts: collections.Counter = collections.Counter()
        lines: collections.Counter = collections.Counter()
        cache: dict = {}
        for row in out.read_text().splitlines():
            stack, _, n = row.rpartition(" ")
            if "relay_work" not in stack:
                continue
            frames = []
            for fr in reversed(stack.split(";")):
                m = _FRAME.match(fr)
                if m:
                    frames.append((m["func"], m["file"], int(m["line"])))
            comp = classify(frames, tree, cache)
            counts[comp] += int(n)
            if comp == detail:
                inner = next((f for f in frames if "dtmfguard/" in f[1]), frames[0] if frames else ("?", "?", 0))
                lines[f"{inner[0]} {inner[1]}:{inner[2]}: {_line(tree, inner[1], inner[2], cache).strip()}"] += int(n)
    return {"result": res, "counts": dict(counts), "detail": lines.most_common(15)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--ticks", type=int, default=1500)
    ap.add_argument("--rate", type=int, default=500, help="samples per second")
    ap.add_argument("--mask-mode", default="always", choices=("always", "payment", "secure", "none"))
    ap.add_argument("--tree", action="append", help="checkout to measure (repeatable; default: this one)")
    ap.add_argument("--detail", default="", help="also print the lines that make up this component")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    spy = shutil.which("py-spy")
    if spy is None:
        print("needs py-spy (pip install py-spy)", file=sys.stderr)
        return 2
    trees = [str(Path(t).resolve()) for t in (a.tree or [str(HERE.parent)])]
    runs = {t: profile_tree(t, a.calls, a.ticks, a.rate, a.mask_mode, spy, a.detail) for t in trees}
    if a.json:
        print(json.dumps(runs, indent=2))
        return 0
    load = open("/proc/loadavg").read().split()[0]
    print(f"{a.calls} calls, {a.ticks} ticks, mask_mode {a.mask_mode}, load average {load}: us of CPU per call per "
          f"20 ms tick by component (py-spy samples in brackets)")
    head = f"{'component':28s}" + "".join(f"{Path(t).name[-18:]:>24s}" for t in trees)
    if len(trees) > 1:
        head += f"{'ratio':>8s}"
    print(head)
    per = {}
    for t, r in runs.items():
        total = sum(r["counts"].values()) or 1
        per[t] = {c: r["result"]["us_per_frame"] * r["counts"].get(c, 0) / total for c in COMPONENTS}
    for c in COMPONENTS:
        row = f"{c:28s}" + "".join(f"{per[t][c]:14.1f} ({runs[t]['counts'].get(c, 0):6d})" for t in trees)
        if len(trees) > 1:
            old, new = per[trees[0]][c], per[trees[-1]][c]
            row += f"{(old / new if new > 0.05 else float('inf')):8.1f}" if old > 0.05 else f"{'-':>8s}"
        print(row)
    row = f"{'total (measured)':28s}" + "".join(f"{runs[t]['result']['us_per_frame']:14.1f} {'':8s}" for t in trees)
    if len(trees) > 1:
        row += f"{runs[trees[0]]['result']['us_per_frame'] / runs[trees[-1]]['result']['us_per_frame']:8.2f}"
    print(row)
    if a.detail:
        for t in trees:
            print(f"  {t}: {a.detail}, by line (samples):")
            for text, n in runs[t]["detail"]:
                print(f"    {n:6d}  {text}")
    for t in trees:
        m = per[t]["masker"]
        tot = runs[t]["result"]["us_per_frame"]
        print(f"  {t}: masker {m:.1f} us of {tot:.1f} us per call per tick ({100 * m / tot:.0f} %); everything else "
              f"{tot - m:.1f} us = {(tot - m) / 200:.3f} % of a core per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
