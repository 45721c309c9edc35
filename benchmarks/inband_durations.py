# SPDX-License-Identifier: GPL-2.0-or-later
"""In-band keys relayed in secure mode: the duration the agent leg receives against the one the customer typed.

Why: outside a payment the guard regenerates each in-band key on the agent leg as an RFC 4733 event with the
key's measured duration (issue 13: within +-20 ms).  The guard measures on the audio its jitter buffer hands
over; on a loaded host the customer's packets arrive in bursts, and a frame the jitter buffer conceals or
inserts inside a key changes its length.  This runs real calls (pjsua2 customer -> ``dtmfguard serve`` in
secure mode -> pjsua2 agent, all on 127.0.0.1) with many in-band keys of known durations, optionally under CPU
load (busy-loop processes this script starts and stops), and prints the error distribution per source tree,
the trees' calls interleaved in one run (the machine is noisy)::

    python benchmarks/inband_durations.py --tree before=/path/to/old/tree --tree after=. --calls 3 --burners 4

Run it inside a private network namespace (``unshare -n``, ``ip link set lo up``).  Exit status 0; the
table goes to stdout (``--json`` for a machine-readable summary).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

DURATIONS_MS = (60, 80, 100, 120, 150, 200, 250, 300)
DIGITS = "0123456789*#"


def _burn(stop, nice: int = 0) -> None:  # a CPU burner: pure Python, as the other tenants of a shared host
    if nice:
        os.nice(nice)  # negative (root): the burners win over the peers, whose packets then come in bursts
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def customer_wav(path: Path, keys: int, seed: int):
    """``keys`` in-band keys with random digits, durations and gaps; returns [(digit, duration_ms)]."""
    import soundfile as sf

    from dtmfguard.testkit.synth import keypresses

    rng = np.random.default_rng(seed)
    parts, want = [np.zeros(8000)], []
    for _ in range(keys):
        d = DIGITS[int(rng.integers(len(DIGITS)))]
        ms = int(rng.choice(DURATIONS_MS))
        x, _ = keypresses(d, tone_ms=ms, lead_ms=0, tail_ms=0, level_dbm0=-10, rng=rng)
        parts += [x, np.zeros(int(rng.integers(100, 260)) * 8)]  # 100-260 ms between keys
        want.append((d, ms))
    parts.append(np.zeros(8000))
    x = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    sf.write(path, x, 8000, subtype="PCM_16")
    return want, x.size / 8000


def one_call(tree: str, tmp: Path, keys: int, seed: int) -> dict:
    tree = str(Path(tree).resolve())
    wav = tmp / "customer.wav"
    want, seconds = customer_wav(wav, keys, seed)
    env = {"PYTHONPATH": tree, "DTMFGUARD_API_TOKEN": "t" * 32}
    # the children run ``python -m``, which puts the working directory ahead of PYTHONPATH: start them from
    # the call's own directory, so each imports the tree asked for (not this checkout)
    here = os.getcwd()
    os.chdir(tmp)
    try:
        return _call(tree, tmp, env, wav, want, seconds)
    finally:
        os.chdir(here)


def _call(tree, tmp, env, wav, want, seconds) -> dict:
    from sip_peers import SipCall

    with SipCall(tmp, serve=True, env=env, timeout=seconds + 40, record=False,
                 guard_args=["--mask-mode", "secure"]) as sip:
        sip.customer("--play", str(wav), "--play-s", f"{seconds + 0.3:.1f}", "--tail-s", "1.0",
                     env={"PYTHONPATH": tree})
        sip.wait(customer_s=seconds + 40)
        guard_log = sip.guard_log()
    done = [e for e in sip.agent.events() if e.get("event") == "done"]
    got = [(k["digit"], k["duration_ms"]) for k in done[-1]["calls"][0]["keys"]] if done else []
    ok = [g[0] for g in got] == [w[0] for w in want]
    errors = [g[1] - w[1] for g, w in zip(got, want)] if ok else []
    marker = "relayed in-band press "
    diag = [json.loads(line.split(marker, 1)[1]) for line in guard_log.splitlines() if marker + "{" in line]
    jb = [line.split("jitter buffer: ", 1)[1] for line in guard_log.splitlines() if "stream's jitter buffer: " in line]
    jb_delay = [int(part.split()[1]) for text in jb for part in text.split(", ") if part.startswith("avg_delay_ms")]
    if ok and len(diag) == len(errors):
        for d, e in zip(diag, errors):
            d["error_ms"] = e
    return {"ok": ok, "want": len(want), "got": len(got), "errors": errors, "diag": diag, "rc": sip.rc,
            "jb_avg_delay_ms": jb_delay}


def loadavg() -> float:
    return os.getloadavg()[0]


def table(label: str, errors: list) -> str:
    e = np.abs(np.asarray(errors, dtype=float))
    if not e.size:
        return f"| {label} | 0 | - | - | - | - | - |"
    bins = [(e <= 5).sum(), ((e > 5) & (e <= 10)).sum(), ((e > 10) & (e <= 20)).sum(), (e > 20).sum()]
    return (f"| {label} | {e.size} | " + " | ".join(str(int(b)) for b in bins)
            + f" | {min(errors):+d} / {max(errors):+d} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH",
                   help="a source tree to run the guard and peers from (repeat: calls alternate between trees)")
    p.add_argument("--calls", type=int, default=3, help="calls per tree")
    p.add_argument("--keys", type=int, default=36, help="in-band keys per call")
    p.add_argument("--burners", type=int, default=4, help="CPU busy-loop processes during the calls (0: none)")
    p.add_argument("--burner-nice", type=int, default=0,
                   help="nice increment of the burners (negative, as root: they preempt the peers, whose RTP then "
                        "arrives in bursts, as over a jittery network; the guard's clock thread runs SCHED_RR)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    trees = [t.split("=", 1) for t in a.tree]
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_burn, args=(stop, a.burner_nice), daemon=True)
               for _ in range(a.burners)]
    for b in burners:
        b.start()
    results: dict = {label: [] for label, _ in trees}
    loads = []
    try:
        order = [(i, label, path) for i in range(a.calls) for label, path in trees]
        for i, label, path in order:
            with tempfile.TemporaryDirectory(prefix="inband-") as tmp:
                r = one_call(path, Path(tmp), a.keys, a.seed + i)
            loads.append(loadavg())
            results[label].append(r)
            print(f"# {label} call {i}: {r['got']}/{r['want']} keys, digits ok {r['ok']}, rc {r['rc']}, "
                  f"errors {r['errors']}, load {loads[-1]:.1f}", file=sys.stderr)
    finally:
        stop.set()
        for b in burners:
            b.join(5)
    print(f"load average during the run: {min(loads):.1f}-{max(loads):.1f}; {a.burners} CPU burners "
          f"(nice {a.burner_nice:+d}); "
          f"{a.calls} calls x {a.keys} keys per tree")
    print("| tree | keys | abs err <=5 ms | 5-10 | 10-20 | >20 | min / max (ms) |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for label, _ in trees:
        errs = [e for r in results[label] for e in r["errors"]]
        bad = sum(1 for r in results[label] if not r["ok"])
        delays = [d for r in results[label] for d in r["jb_avg_delay_ms"]]
        print(table(label, errs) + (f" ({bad} calls with missing/extra keys)" if bad else "")
              + (f" jitter buffer avg delay per call: {delays} ms" if delays else ""))
        summary[label] = {"errors": errs, "calls_bad": bad,
                          "diag": [d for r in results[label] for d in r["diag"]]}
    if a.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
