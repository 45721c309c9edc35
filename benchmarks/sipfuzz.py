# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP fuzzing of a real guard while a real call runs (issue 18).

A pjsua2 agent answers every call; a guard worker (tests/sip_peers/guard_probe.py, the production Guard)
sits between; a customer places one real call that plays speech and types a test card number in-band.
While that call runs, this script sends RFC 4475's 49 torture messages and the PROTOS-c07-style mutated
INVITEs of tests/sip_fuzz.py over UDP and TCP to the guard, and reports:

* answers by status code (first final answer per message, ``none`` when nothing came back),
* worker deaths (exit status; the guard is restarted and the run goes on) and the messages in flight,
* requests RFC 3261 says must be answered that got no answer, and 5xx answers other than the guard's
  own capacity 503,
* whether the real call kept going (connected the whole time, the agent's recording as long as the call)
  and what an adversarial decoder recovers from the agent's audio (must be nothing).

    unshare -n bash -c 'ip link set lo up; PYTHONPATH=$PWD python benchmarks/sipfuzz.py [--stride 1] [--json]'

It binds 127.0.0.1:5060 and :5050 (RFC 4475's Via ports): run it in a network namespace of its own.
Exit status 1 when a worker died or the real call was harmed.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import sip_fuzz  # noqa: E402
from sip_peers import HERE, Proc, rtp_base  # noqa: E402

PAN = "4111111111111111"


def _customer_wav(path: Path, seconds: float) -> int:
    from dtmfguard.testkit.adversary import load_speech
    from dtmfguard.testkit.synth import keypresses

    speech = load_speech(8.0, seed=3)
    if speech is None:
        speech = np.zeros(8 * 8000)
    keys, _ = keypresses(PAN, level_dbm0=-10, rng=np.random.default_rng(7))
    parts, n, rounds = [], 0, 0
    while n < seconds * 8000:
        block = [speech, np.zeros(1600), keys, np.zeros(1600)]
        parts += block
        n += sum(b.size for b in block)
        rounds += 1
    sf.write(path, np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16), 8000, subtype="PCM_16")
    return rounds


class Watch:
    """Restarts the guard when it dies and records each death with the messages in flight."""

    def __init__(self, start_guard):
        self.start_guard = start_guard
        self.guard = start_guard(0)
        self.deaths: list = []
        self.in_flight: collections.deque = collections.deque(maxlen=16)
        self.lock = threading.Lock()
        self.generation = 0

    def check(self):
        with self.lock:
            rc = self.guard.p.poll()
            if rc is None:
                return
            self.deaths.append({"exit": rc, "in_flight": list(self.in_flight),
                                "stderr_tail": self.guard.err_path.read_text(errors="replace")[-600:]})
            self.guard.stop(1)
            self.generation += 1
            self.guard = self.start_guard(self.generation)


def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="sipfuzz-"))
    gport, aport, cport = args.ports  # never 5050, 5060, 5070: RFC 4475's Via ports
    rec_dir = tmp / "agent"
    rec_dir.mkdir()
    grtp = rtp_base()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(rec_dir), "--calls", "0", "--timeout", str(args.call_s + 600),
                  "--answer-delay", "0.05"], "agent", tmp)

    def start_guard(gen):
        g = Proc([str(HERE / "guard_probe.py"), "--listen", f"127.0.0.1:{gport}",
                  "--agent", f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(grtp + 400 * gen % 4000),
                  "--timeout", str(args.call_s + 900), "--answer-timeout", "5"]
                 + (["--config", args.guard_config] if args.guard_config else []), f"guard{gen}", tmp)
        g.wait_ready(30)
        return g

    agent.wait_ready()
    watch = Watch(start_guard)
    wav = tmp / "customer.wav"
    rounds = _customer_wav(wav, args.call_s)
    customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(cport), "--rtp", str(rtp_base()),
                     "--to", f"sip:guard@127.0.0.1:{gport}", "--play", str(wav), "--play-s", str(args.call_s),
                     "--timeout", str(args.call_s + 60), "--tail-s", "0.2"], "customer", tmp)
    t_call = time.monotonic()
    time.sleep(2.0)

    params = {"ghost": "127.0.0.1", "gport": gport, "lhost": "127.0.0.1", "rtp": 7000, "rtcp": 7001}
    torture = sip_fuzz.rfc4475_as_messages()
    mutated = sip_fuzz.mutated_invites()[:: args.stride]
    sets = {}
    stop_watch = threading.Event()

    def watcher():
        while not stop_watch.is_set():
            watch.check()
            time.sleep(0.05)

    wt = threading.Thread(target=watcher, daemon=True)
    wt.start()
    for transport in args.transports:
        for set_name, msgs in (("rfc4475", torture), ("mutated", mutated)):
            def on_result(r, transport=transport):
                watch.in_flight.append(f"{transport}:{r.name}")
            t0 = time.monotonic()
            results = sip_fuzz.send_all(msgs, transport, ("127.0.0.1", gport), params,
                                        concurrency=args.concurrency, answer_wait=args.answer_wait,
                                        on_result=on_result)
            sets[f"{set_name}/{transport}"] = {"results": results, "seconds": time.monotonic() - t0}
    fuzz_s = time.monotonic() - t_call
    rc_customer = customer.wait(max(5.0, args.call_s + 40 - (time.monotonic() - t_call)))
    stop_watch.set()
    wt.join()
    watch.check()
    customer_done = [e for e in customer.events() if e.get("event") == "done"]
    rc_guard = watch.guard.stop()
    agent.stop()
    done = [e for e in watch.guard.events() if e.get("event") == "done"]

    # the real call: the agent's first recording
    rec_path = rec_dir / "call-0.wav"
    call = {"customer_exit": rc_customer, "customer": customer_done[0] if customer_done else None,
            "fuzz_s": round(fuzz_s, 1), "call_s": args.call_s}
    if rec_path.exists():
        from dtmfguard.testkit.adversary import recover_digits
        from dtmfguard.dsp.detector import detect

        rec, rate = sf.read(rec_path, dtype="int16")
        call["agent_recording_s"] = round(rec.size / rate, 1)
        call["detector_digits_in_agent_audio"] = len(detect(rec))
        call["adversary_digits"] = len(recover_digits(rec.astype(np.float64), 8000))
    if done and not watch.deaths:
        # every key the customer played, in order, nothing else (the customer's player may fall behind its
        # schedule on a loaded machine: it hangs up at call_s, so the last rounds can be cut)
        n = done[0]["count"]
        call["payment_digits_ok"] = (n >= 16 * (rounds - 3) and set(done[0]["sources"]) <= {"inband"}
                                     and done[0]["digits_sha256"] == hashlib.sha256((PAN * rounds)[:n].encode()).hexdigest())
        call["payment_digit_count"] = done[0]["count"]
        call["guard_health"] = done[0].get("health")
    out = {"sets": {}, "deaths": watch.deaths, "call": call, "guard_exit": rc_guard, "tmp": str(tmp)}
    for name, s in sets.items():
        res = s["results"]
        codes = collections.Counter(r.final for r in res)
        must = [r for r in res if r.name not in sip_fuzz.RFC4475_RESPONSES]
        transport = name.split("/")[1]
        silent = [r for r in must if r.final in ("none", "closed")]
        unanswered = sorted(r.name for r in silent if not sip_fuzz.silence_allowed(r.name, transport))
        excused = sorted(r.name for r in silent if sip_fuzz.silence_allowed(r.name, transport))
        server_err = sorted(f"{r.name}:{r.final}" for r in res
                            if r.final.startswith("5") and r.final not in ("501", "503", "505", "513"))
        out["sets"][name] = {"messages": len(res), "seconds": round(s["seconds"], 1),
                             "answers": dict(sorted(codes.items())), "unanswered": len(unanswered),
                             "silent_by_rule": len(excused),
                             "unanswered_names": unanswered[:60], "server_errors": server_err[:60],
                             "per_message": {r.name: r.final for r in res} if name.startswith("rfc4475") else None}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stride", type=int, default=1, help="send every Nth mutated INVITE (1: all)")
    ap.add_argument("--transports", default="udp,tcp")
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--answer-wait", type=float, default=1.0)
    ap.add_argument("--call-s", type=float, default=0.0, help="length of the real call (0: estimated)")
    ap.add_argument("--guard-config", help="TOML for the guard (e.g. customer SRTP optional)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.transports = args.transports.split(",")
    args.ports = (5170, 5180, 5190)
    n = len(sip_fuzz.mutated_invites()[:: args.stride]) + 49
    if not args.call_s:
        args.call_s = max(30.0, n * len(args.transports) * 0.12 / args.concurrency * 2 + 20)
    out = run(args)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"{'set':14s} {'msgs':>5s} {'secs':>6s} {'no answer':>9s} {'(by rule)':>9s} {'5xx':>4s}  answers by status")
        for name, s in out["sets"].items():
            print(f"{name:14s} {s['messages']:5d} {s['seconds']:6.1f} {s['unanswered']:9d} {s['silent_by_rule']:9d} "
                  f"{len(s['server_errors']):4d}  {s['answers']}")
        for name, s in out["sets"].items():
            if s["unanswered_names"]:
                print(f"  {name} unanswered: {' '.join(s['unanswered_names'][:40])}")
            if s["server_errors"]:
                print(f"  {name} 5xx: {' '.join(s['server_errors'][:40])}")
        print(f"worker deaths: {len(out['deaths'])}")
        for d in out["deaths"]:
            print(f"  exit {d['exit']}; last messages: {d['in_flight'][-6:]}")
            print("   " + d["stderr_tail"].strip().replace("\n", "\n   ")[-400:])
        print("real call:", json.dumps(out["call"], default=str))
    call = out["call"]
    harmed = (not call.get("customer") or not call["customer"].get("connected")
              or call.get("detector_digits_in_agent_audio", 1) != 0)
    return 1 if out["deaths"] or harmed else 0


if __name__ == "__main__":
    sys.exit(main())
