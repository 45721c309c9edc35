# SPDX-License-Identifier: GPL-2.0-or-later
"""Talk-off on real audio: false digits per source and per hour, dtmfguard next to spandsp.

Every installed source of :mod:`dtmfguard.testkit.corpora` (Asterisk prompts in several languages and voices,
espeak-ng in 12 languages, music on hold and game soundtracks packaged in Debian), each file at every
``corpora.VARIANTS`` entry (playback speed 0.9x-1.1x, +6 dB), goes through

* dtmfguard with the C backend (``native``) and with the numpy backend (``numpy``), a fresh
  ``DtmfDetector`` per file, int16 samples;
* spandsp 0.0.6 (``dtmf_rx`` through ctypes, Debian's libspandsp2) with its default parameters,

on the very same int16 signal in the same run. None of this audio holds a key press, so every digit is
false. ``--split tune`` is the half the detector's thresholds may be tuned on, ``--split report`` the
half they must be reported on (the split is by file, see ``corpora.split_of``).

Work is spread over ``--jobs`` processes (one file, all its variants and all detectors per task).
Decoded music is cached by dtmfguard.testkit.corpora, so a second run is faster.

Run:  python benchmarks/talkoff.py --split report [--jobs 2] [--json out.json]
      python benchmarks/talkoff.py --split tune --sources en,moh --max-seconds 300   (a quick subset)
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread per worker
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from dataclasses import fields, replace  # noqa: E402
from typing import Dict, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spandsp_ref  # noqa: E402

from dtmfguard.testkit import corpora  # noqa: E402
from dtmfguard.dsp import goertzel  # noqa: E402
from dtmfguard.dsp.detector import DtmfDetector  # noqa: E402
from dtmfguard.dsp.params import DEFAULT_PARAMS, DetectorParams  # noqa: E402

RATE = corpora.RATE
DETECTORS = ("native", "numpy", "spandsp")

_params: DetectorParams = DEFAULT_PARAMS
_offset = 0


def _init(params: DetectorParams, offset: int) -> None:
    global _params, _offset
    _params, _offset = params, offset


def _ours(x16: np.ndarray, backend: str) -> List[Tuple[int, str]]:
    goertzel.set_backend(backend)
    det = DtmfDetector(RATE, _params)
    events = det.process(x16) + det.flush()
    return [(e.start, e.digit) for e in events if e.complete]


def _spandsp(x16: np.ndarray) -> List[Tuple[int, str]]:
    det = spandsp_ref.SpanDtmf(realtime=True)
    try:
        det.rx(x16, block=1020)  # reports stamped to 127.5 ms; spandsp's decisions do not depend on it
        return [(d.start, d.digit) for d in det.finish()]
    finally:
        det.close()


def _task(args) -> Dict:
    """One file: every variant, every detector. Returns seconds and false digits per (variant, detector)."""
    source, path, variants, detectors = args
    x = corpora.read_8k(path)
    if _offset:
        x = np.concatenate([np.zeros(_offset), x])
    out = {"source": source, "path": path, "runs": []}
    for label, speed, gain in variants:
        x16 = corpora.variant(x, speed, gain).astype(np.int16)
        for name in detectors:
            t0 = time.process_time()
            hits = _spandsp(x16) if name == "spandsp" else _ours(x16, name)
            out["runs"].append({"variant": label, "detector": name, "seconds": x16.size / RATE,
                                "cpu": time.process_time() - t0, "hits": hits})
    return out


def _files(sources: List[str], split: str, max_seconds: Optional[float]) -> List[Tuple[str, str]]:
    import soundfile as sf

    todo = []
    for name in sources:
        total = 0.0
        for path in corpora.files(name, split):
            if max_seconds is not None and total >= max_seconds:
                break
            todo.append((name, path))
            try:
                total += sf.info(path).duration
            except Exception:
                total += 0.0
    return todo


def run(sources: List[str], split: str, variants, detectors, jobs: int, params: DetectorParams,
        max_seconds: Optional[float] = None, offset: int = 0, progress: bool = True) -> Dict:
    todo = _files(sources, split, max_seconds)
    # longest files first, so the pool's last tasks are short
    import soundfile as sf

    def size(item):
        try:
            return sf.info(item[1]).frames / sf.info(item[1]).samplerate
        except Exception:
            return 0.0

    todo.sort(key=size, reverse=True)
    tasks = [(s, p, variants, detectors) for s, p in todo]
    results = []
    t0 = time.monotonic()
    if jobs > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, initializer=_init, initargs=(params, offset)) as pool:
            for i, r in enumerate(pool.imap_unordered(_task, tasks, chunksize=1)):
                results.append(r)
                if progress and (i + 1) % 200 == 0:
                    print(f"  {i + 1}/{len(tasks)} files, {time.monotonic() - t0:.0f} s", file=sys.stderr)
    else:
        _init(params, offset)
        for r in map(_task, tasks):
            results.append(r)
    return summarise(results, sources, variants, detectors, time.monotonic() - t0)


def summarise(results: List[Dict], sources, variants, detectors, wall: float) -> Dict:
    cell = defaultdict(lambda: {"seconds": 0.0, "false": 0, "cpu": 0.0, "where": []})
    for r in results:
        for run_ in r["runs"]:
            c = cell[(r["source"], run_["variant"], run_["detector"])]
            c["seconds"] += run_["seconds"]
            c["cpu"] += run_["cpu"]
            c["false"] += len(run_["hits"])
            c["where"] += [f"{os.path.basename(r['path'])} {t / RATE:.2f} s {d}" for t, d in run_["hits"]]
    table = []
    for s in sources:
        for v, _sp, _g in variants:
            row = {"source": s, "kind": corpora.SOURCES[s].kind, "variant": v}
            for d in detectors:
                c = cell[(s, v, d)]
                hours = c["seconds"] / 3600
                row["hours"] = hours
                row[d] = c["false"]
                row[d + "_per_hour"] = c["false"] / hours if hours else None
                row[d + "_where"] = c["where"]
                row[d + "_cpu"] = c["cpu"]
            table.append(row)
    totals = {}
    for d in detectors:
        for kind in ("speech", "music", "all"):
            rows = [r for r in table if kind == "all" or r["kind"] == kind]
            h = sum(r["hours"] for r in rows)
            f = sum(r[d] for r in rows)
            totals[f"{d}_{kind}"] = {"false": f, "hours": h, "per_hour": f / h if h else None}
    return {"rows": table, "totals": totals, "wall_seconds": wall}


def print_table(res: Dict, detectors, split: str) -> None:
    ours = [d for d in detectors if d != "spandsp"]
    head = f"{'source':12s} {'variant':7s} {'hours':>6s}"
    for d in detectors:
        head += f" {d:>8s} {'/h':>6s}"
    print(head + "  ok")
    bad = 0
    for r in res["rows"]:
        line = f"{r['source']:12s} {r['variant']:7s} {r['hours']:6.2f}"
        for d in detectors:
            ph = r[d + "_per_hour"]
            line += f" {r[d]:8d} {ph:6.1f}" if ph is not None else f" {r[d]:8d} {'-':>6s}"
        ok = ""
        if "spandsp" in detectors and ours:
            worst = max(r[d] for d in ours)
            good = worst <= r["spandsp"] and not (r["kind"] == "speech" and worst > 0)
            ok = "" if good else "  WORSE" if worst > r["spandsp"] else "  speech>0"
            bad += not good
        print(line + ok)
    print()
    for kind in ("speech", "music", "all"):
        parts = []
        for d in detectors:
            t = res["totals"][f"{d}_{kind}"]
            parts.append(f"{d} {t['false']} ({t['per_hour']:.2f}/h)" if t["per_hour"] is not None else f"{d} -")
        h = res["totals"][f"{detectors[0]}_{kind}"]["hours"]
        print(f"total {kind:6s} {h:6.2f} h: " + ", ".join(parts))
    if "spandsp" in detectors and ours:
        print(f"cells where dtmfguard has more false digits than spandsp, or any on speech: {bad}")
    same = None
    if "native" in detectors and "numpy" in detectors:
        same = all(r["native_where"] == r["numpy_where"] for r in res["rows"])
        print(f"numpy and C backends: identical false digits in every cell: {same}")
    cpu = {d: sum(r[d + "_cpu"] for r in res["rows"]) for d in detectors}
    hours = sum(r["hours"] for r in res["rows"]) / 1.0
    print("CPU per hour of audio: " + ", ".join(f"{d} {3600 * cpu[d] / max(hours * 3600, 1e-9):.1f} s"
                                                for d in detectors)
          + f"; split {split}; wall {res['wall_seconds']:.0f} s")


def _parse_set(items: List[str]) -> DetectorParams:
    params = DEFAULT_PARAMS
    types = {f.name: f.type for f in fields(DetectorParams)}
    for item in items:
        name, _, value = item.partition("=")
        if name not in types:
            raise SystemExit(f"--set: unknown DetectorParams field {name!r}")
        cur = getattr(params, name)
        params = replace(params, **{name: type(cur)(value) if not isinstance(cur, bool)
                                    else value.lower() in ("1", "true", "yes")})
    return params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Example: python benchmarks/talkoff.py --split report --json talkoff.json")
    ap.add_argument("--split", choices=("tune", "report", "all"), default="report",
                    help="which half of every source (default report: the half nothing was tuned on)")
    ap.add_argument("--sources", help="comma-separated source names (default: every installed source)")
    ap.add_argument("--variants", help="comma-separated variant labels (default: all of corpora.VARIANTS)")
    ap.add_argument("--extra", action="append", default=[], metavar="SPEED[@GAIN_DB]|LO:HI:STEP[@GAIN_DB]",
                    help="extra variants for tuning (not part of the report's table): a playback speed with an "
                         "optional gain, or a range of speeds, e.g. --extra 0.85 --extra 1.0@9 --extra 0.8:1.2:0.01")
    ap.add_argument("--detectors", default=",".join(DETECTORS),
                    help=f"comma-separated, of {', '.join(DETECTORS)} (default: all)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    ap.add_argument("--max-seconds", type=float, help="at most about this much audio per source (a subset)")
    ap.add_argument("--offset", type=int, default=0,
                    help="prepend this many zero samples to every file (block-grid independence check)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a DetectorParams field (tuning on --split tune only)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure and every false digit's place")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)

    names = args.sources.split(",") if args.sources else list(corpora.SOURCES)
    sources, missing = [], []
    for n in names:
        if n not in corpora.SOURCES:
            ap.error(f"unknown source {n!r} (known: {', '.join(corpora.SOURCES)})")
        (sources if corpora.available(n) else missing).append(n)
    if missing:
        print("not installed (skipped): " + ", ".join(f"{n} ({corpora.SOURCES[n].package})" for n in missing))
    if not sources:
        print("no corpus source installed", file=sys.stderr)
        return 2
    variants = corpora.VARIANTS
    if args.variants:
        want = args.variants.split(",")
        variants = tuple(v for v in corpora.VARIANTS if v[0] in want)
        if len(variants) != len(want):
            ap.error(f"--variants: known labels are {', '.join(v[0] for v in corpora.VARIANTS)}")
    if args.extra:
        extra = []
        for item in args.extra:
            spec, _, gain = item.partition("@")
            g = float(gain) if gain else 0.0
            if ":" in spec:
                lo, hi, step = (float(v) for v in spec.split(":"))
                speeds = [round(lo + i * step, 6) for i in range(int(round((hi - lo) / step)) + 1)]
            else:
                speeds = [float(spec)]
            extra += [(f"{sp:g}x" + (f"{g:+g}dB" if g else ""), sp, g) for sp in speeds]
        variants = tuple(extra) if not args.variants else variants + tuple(extra)
    detectors = tuple(d for d in args.detectors.split(",") if d)
    if any(d not in DETECTORS for d in detectors):
        ap.error(f"--detectors: known are {', '.join(DETECTORS)}")
    if "native" in detectors and "native" not in goertzel.available_backends():
        print("C backend not built: skipping 'native'")
        detectors = tuple(d for d in detectors if d != "native")
    if "spandsp" in detectors:
        try:
            spandsp_ref.load()
        except spandsp_ref.SpanDspUnavailable as exc:
            print(f"{exc}: skipping spandsp")
            detectors = tuple(d for d in detectors if d != "spandsp")
    params = _parse_set(args.set)

    res = run(sources, args.split, variants, detectors, args.jobs, params, args.max_seconds, args.offset,
              progress=not args.quiet)
    print(f"talk-off: false digits per source and variant, split {args.split!r}"
          + (f", parameter overrides {args.set}" if args.set else "")
          + (f", offset {args.offset} samples" if args.offset else ""))
    print_table(res, detectors, args.split)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"split": args.split, "overrides": args.set, "offset": args.offset,
                       "detectors": detectors, **res}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
