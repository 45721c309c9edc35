# SPDX-License-Identifier: GPL-2.0-or-later
"""How long a payment takes to end after the customer's last key, stage by stage, idle and under load.

Why: in secure mode the keys a customer types after the card go to the IVR again only once the payment
has ended; a payment that took up to 2.7 s to complete under load (the test suite on 4 workers on
2 cores) swallowed the next menu key.  This script takes real payments through ``dtmfguard serve`` (one
worker, ``benchmarks/_latency_guard.py``: the production code with a timestamp at each stage) with
pjsua2 peers on 127.0.0.1: one call, the customer types ``--payments`` cards in-band
(4111 1111 1111 1111 # 1230 123, a test PAN), the script starts a payment over the control API before
each card.  Gateway: the embedded vault (default) or the webhook gateway against a local HTTP receiver.

For every stage (see _latency_guard.py) it prints median, 90th percentile and maximum in ms, per
condition: each ``--tree`` (a checkout; e.g. before/after a change) x each ``--load`` (that many
busy-loop processes beside it), run one after another in one invocation.  The last lines give the
ratio of the total (last key -> secure mode off) between trees.

Usage (inside its own network namespace, as the SIP tests)::

    unshare -n bash -c 'ip link set lo up; python benchmarks/payment_latency.py --payments 20 --load 0,2'
    ... --tree before=/tmp/base-checkout --tree after=. --parallel   # old vs new at the same time

Everything runs on 127.0.0.1; each run takes about 8 s per payment.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _load import Load, start_load, stop_load  # noqa: E402

TOKEN = "bench-latency-token"
CARD = "4111111111111111#1230123"  # a test PAN; expiry and security code end by their length
STAGES = ["key_end", "key_fed", "submitting", "runner_pickup", "gateway_pickup", "gateway_sent", "gateway_answer",
          "session_ended", "done", "secure_off", "feed"]
ROWS = [  # (label, from, to)
    ("last key end -> key in session (detector)", "key_end", "key_fed"),
    ("key in session -> submitting", "key_fed", "submitting"),
    ("submitting -> runner picks up", "submitting", "runner_pickup"),
    ("runner -> gateway thread picks up", "runner_pickup", "gateway_pickup"),
    ("gateway thread -> request sent", "gateway_pickup", "gateway_sent"),
    ("request sent -> answer (gateway)", "gateway_sent", "gateway_answer"),
    ("answer -> session ended (completed)", "gateway_answer", "session_ended"),
    ("session ended -> events delivered", "session_ended", "done"),
    ("session ended -> secure mode off", "session_ended", "secure_off"),
    ("session ended -> on the feed", "session_ended", "feed"),
    ("TOTAL last key end -> session ended", "key_end", "session_ended"),
    ("TOTAL last key end -> secure mode off", "key_end", "secure_off"),
    ("TOTAL last key end -> on the feed", "key_end", "feed"),
]


def free_port() -> int:
    for _ in range(500):
        port = random.randint(20000, 29000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def api(port: int, method: str, path: str, body=None):
    from dtmfguard.server.control import request

    return request(port, method, path, TOKEN, body, timeout=10)


def customer_wav(path: Path, payments: int, gap_s: float) -> tuple[float, float]:
    """lead, then ``payments`` cards each followed by ``gap_s`` of silence; (seconds, card seconds)."""
    from dtmfguard.testkit.synth import keypresses

    keys, _ = keypresses(CARD, tone_ms=80, gap_ms=80, rng=np.random.default_rng(7))
    parts = [np.zeros(int(2.0 * 8000))]
    for _ in range(payments):
        parts += [keys, np.zeros(int(gap_s * 8000))]
    x = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    sf.write(path, x, 8000, subtype="PCM_16")
    return x.size / 8000, keys.size / 8000


class Proc:
    def __init__(self, args, name, tmp: Path, env=None):
        self.out = tmp / f"{name}.out"
        self.err = tmp / f"{name}.err"
        self.p = subprocess.Popen([sys.executable, *args], stdout=open(self.out, "w"), stderr=open(self.err, "w"),
                                  env={**os.environ, **(env or {})}, start_new_session=True)
        self.name = name

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out.read_text()
            if text.startswith("ready") or '"ready"' in text or "\nready" in text:
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready: {self.err.read_text()[-1500:]}")

    def stop(self, grace=10.0):
        from dtmfguard.server.procs import stop_process

        return stop_process(self.p, grace)


def run_condition(tree: Path, load: Load, payments: int, gap_s: float, tmp: Path,
                  own_load: bool = True) -> tuple[dict, dict, list]:
    """One call with ``payments`` cards through ``tree``'s code beside ``load`` busy loops: per session the
    stage times, and the outcomes."""
    tmp.mkdir(parents=True, exist_ok=True)
    wav = tmp / "customer.wav"
    seconds, card_s = customer_wav(wav, payments, gap_s)
    trace = tmp / "trace.jsonl"
    gport, aport, ctl = free_port(), free_port(), free_port()
    rtp = random.randrange(30000, 50000, 200)
    env = {"PYTHONPATH": str(tree), "DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_VAULT_KEY": "55" * 32,
           "DTMFGUARD_VAULT_PATH": str(tmp / "vault.sqlite"), "DTMFGUARD_BENCH_TRACE": str(trace)}
    busy = start_load(load, tmp) if own_load else []
    procs = []
    outcomes: dict = {}
    details: dict = {}
    posts: list = []  # ms for each POST /payment that started one (the first builds the capture machinery)
    try:
        agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp),
                      "--timeout", str(seconds + 60), "--calls", "0"], "agent", tmp, env)
        procs.append(agent)
        guard = Proc([str(HERE / "_latency_guard.py"), "--listen", f"127.0.0.1:{gport}", "--agent",
                      f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(rtp + 40), "--control", f"127.0.0.1:{ctl}"],
                     "guard", tmp, env)
        procs.append(guard)
        agent.wait_ready()
        guard.wait_ready()
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp + 100), "--to", f"sip:guard@127.0.0.1:{gport}", "--play", str(wav),
                         "--play-s", f"{seconds + 0.5:.1f}", "--timeout", str(seconds + 30)], "customer", tmp, env)
        procs.append(customer)
        call = None
        deadline = time.monotonic() + 20
        while call is None and time.monotonic() < deadline:
            _, body = api(ctl, "GET", "/calls")
            live = [c for c in (body or {}).get("calls", []) if c["state"] == "connected"]
            call = live[0]["id"] if live else None
            time.sleep(0.05)
        if call is None:
            raise RuntimeError("no connected call")
        seen: dict = {}
        for i in range(payments):
            deadline = time.monotonic() + card_s + gap_s + 30
            while True:  # the previous payment must have ended (409 until then)
                t_post = time.monotonic()
                status, body = api(ctl, "POST", f"/calls/{call}/payment", {"amount": 1000 + i})
                if status == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            posts.append(1000 * (time.monotonic() - t_post))
            if status != 201:
                raise RuntimeError(f"payment {i}: {status} {body}")
            sid = body["session"]
            while time.monotonic() < deadline:  # until it ends (then the next one may start)
                _, calls = api(ctl, "GET", "/calls")
                mine = [c for c in (calls or {}).get("calls", []) if c["id"] == call]
                if not mine or mine[0]["payment"] not in ("collecting", "submitting", "awaiting_approval"):
                    outcomes[sid] = mine[0]["payment"] if mine else "call-gone"
                    if mine:  # keys the pipeline named during this payment (a card is 24), frames it lacked
                        media = mine[0]["media"]
                        details[sid] = {"keys": media["digits"] - seen.get("digits", 0),
                                        "missing_frames": media["missing_frames"] - seen.get("missing_frames", 0)}
                        seen = dict(media)
                    break
                time.sleep(0.05)
            if not mine:
                break
        customer.p.wait(seconds + 30)
    finally:
        for p in reversed(procs):
            p.stop()
        stop_load(busy, tmp)
    times: dict = {}
    for line in trace.read_text().splitlines():
        rec = json.loads(line)
        times.setdefault(rec["sid"], {}).setdefault(rec["stage"], rec["t"])
        if rec["stage"] == "session_ended" and rec.get("outcome"):
            outcomes[rec["sid"]] = rec["outcome"]  # the session's own word (the call may be gone by the poll)
        if rec["stage"] == "field_complete" and not rec.get("valid"):
            details.setdefault(rec["sid"], {}).setdefault("invalid", []).append(
                f"{rec.get('field')}: {rec.get('reason')} (by {rec.get('finished_by')})")
    for sid, outcome in outcomes.items():
        if outcome != "completed":
            print(f"  {tree.name or tree} load {load.text}: {sid} {outcome} {details.get(sid, {})}", flush=True)
    return times, outcomes, posts


def summarise(times: dict, outcomes: dict) -> dict:
    out = {}
    for label, a, b in ROWS:
        d = [1000 * (s[b] - s[a]) for sid, s in times.items()
             if a in s and b in s and outcomes.get(sid) == "completed"]
        out[label] = d
    return out


def fmt(values) -> str:
    if not values:
        return f"{'-':>26}"
    v = np.asarray(values)
    return f"{np.median(v):8.1f} {np.percentile(v, 90):8.1f} {v.max():8.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--payments", type=int, default=20, help="payments per condition (one call)")
    p.add_argument("--load", default="0,2+1io",
                   help="comma-separated loads: N busy-loop processes, Nio disk writers, or both as 2+1io "
                        "(default 0,2+1io)")
    p.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                   help="a checkout to measure (repeatable; default: this one)")
    p.add_argument("--gap-s", type=float, default=4.5, help="silence after each card (s)")
    p.add_argument("--parallel", action="store_true",
                   help="run the trees' calls at the same time (side by side on the same load) instead of in turn")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, traces)")
    p.add_argument("--json", action="store_true", help="also print the raw figures as one JSON line")
    a = p.parse_args()
    trees = [t.split("=", 1) for t in a.tree] or [["this", str(ROOT)]]
    loads = [Load(x) for x in a.load.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="payment-latency-"))
    results = {}
    for load in loads:
        if a.parallel:  # every tree's call at the same time, beside the same load: both meet the same disk
            import threading

            busy = start_load(load, tmp / f"load-{load.text}")
            out: dict = {}
            t0 = time.monotonic()

            def one(name, path, load=load, out=out):  # joined before the loop moves on
                out[name] = run_condition(Path(path).resolve(), load, a.payments, a.gap_s,
                                          tmp / f"{name}-load{load.text}", own_load=False)

            threads = [threading.Thread(target=one, args=tree) for tree in trees]
            try:
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
            finally:
                stop_load(busy, tmp / f"load-{load.text}")
            runs = [(name, out[name], t0) for name, _ in trees if name in out]
        else:
            runs = []
            for name, path in trees:
                t0 = time.monotonic()
                runs.append((name, run_condition(Path(path).resolve(), load, a.payments, a.gap_s,
                                                 tmp / f"{name}-load{load.text}"), t0))
        for name, (times, outcomes, posts), t0 in runs:
            counts = {o: list(outcomes.values()).count(o) for o in sorted(set(outcomes.values()))}
            results[(name, load.text)] = (summarise(times, outcomes), counts, posts)
            print(f"# {name} load={load}: {len(outcomes)} payments {counts} in {time.monotonic() - t0:.0f} s",
                  flush=True)
    print(f"\nms from the customer's last key; median / p90 / max over completed payments "
          f"(cpu count {os.cpu_count()})")
    for (name, load), (rows, counts, posts) in results.items():
        n = len(rows[ROWS[-1][0]])
        print(f"\n== tree {name}, load {load}: n={n}, outcomes {counts}")
        print(f"{'stage':42s} {'median':>8s} {'p90':>8s} {'max':>8s}")
        for label, _, _ in ROWS:
            print(f"{label:42s} {fmt(rows[label])}")
        if posts:
            print(f"{'POST /payment: the first in the worker':42s} {posts[0]:8.1f}")
            print(f"{'POST /payment: the later ones':42s} {fmt(posts[1:])}")
    if len(trees) > 1:
        base = trees[0][0]
        print()
        for load in loads:
            for name, _ in trees[1:]:
                for label in (ROWS[-3][0], ROWS[-2][0]):
                    b, n = results[(base, load.text)][0][label], results[(name, load.text)][0][label]
                    if b and n:
                        print(f"load {load.text}: {label}: {name}/{base} median ratio "
                              f"{np.median(n) / max(np.median(b), 1e-9):.2f}, max ratio {max(n) / max(max(b), 1e-9):.2f}")
    if a.json:
        print(json.dumps({f"{k[0]}:{k[1]}": v[0] for k, v in results.items()}))
    if not a.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
