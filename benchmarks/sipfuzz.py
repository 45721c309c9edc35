# SPDX-License-Identifier: GPL-2.0-or-later
"""SIP fuzzing of a real guard while a real call runs (issue 18), and of its call transfers.

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

Then (phase ``refer``) REFERs with hostile Refer-To values inside real agent-side dialogs, which only a
connected call reaches (the Refer-To rewrite module, dtmfguard/sip/pj/rewrite.py, and pjsua's transfer):
a raw UDP customer calls a guard of its own, a raw UDP agent answers and sends one REFER per case, then
the customer hangs up.  It reports the answers to the call, the REFER and the BYE by status, how often the
transfer target was called and with the caller's headers, and worker deaths; every call must end with 200
to its BYE (a transfer the guard waits for for good would hold the worker's call slots: 503 after that).

    unshare -n bash -c 'ip link set lo up; PYTHONPATH=$PWD python benchmarks/sipfuzz.py [--serve] [--stride 1] [--json]'

The REFER phase sets up one real call per case (474 cases): about 15 minutes on a loaded 2-core host
(2026-12-06, ``--serve``: 875 s); ``--refer-stride 10`` runs every tenth.

``--serve`` fuzzes ``dtmfguard serve`` itself (one worker in its process) instead of the test suite's
guard_probe.py.  It binds 127.0.0.1:5060 and :5050 (RFC 4475's Via ports) and 5170-5220: run it in a
network namespace of its own.  Exit status 1 when a worker died, the real call was harmed, a REFER case's
call did not end with its BYE, or the last, well-formed transfer was not carried out with the caller's
headers.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import re
import select
import socket
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
from sip_peers import HERE, Proc, digits_hash_within_loss, keys_lost_bound, lost_packets, rtp_base  # noqa: E402

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


def _guard_config(args, tmp: Path, name: str) -> list:
    """``--config`` for the guard: the agent answer timeout of 5 s (not 30: a hostile INVITE the agent never
    answers must not hold a call slot for long) and whatever --guard-config says."""
    text = "[agent]\nanswer_timeout_s = 5\n"
    if args.guard_config:
        extra = Path(args.guard_config).read_text()
        text = extra if "answer_timeout_s" in extra else (
            extra.replace("[agent]", text.strip()) if "[agent]" in extra else text + extra)
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return ["--config", str(path)]


def _start_guard(args, tmp: Path, name: str, gport: int, agent_uri: str, rtp: int):
    """The guard under test: ``dtmfguard serve`` (one worker in its process; --serve) or the test suite's
    guard_probe.py (the same Guard, and it reports the digits the payment side got, as a hash)."""
    if getattr(args, "serve", False):
        cmd = ["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent", agent_uri,
               "--rtp-port", str(rtp), *_guard_config(args, tmp, name)]
    else:
        cmd = [str(HERE / "guard_probe.py"), "--listen", f"127.0.0.1:{gport}", "--agent", agent_uri,
               "--rtp-port", str(rtp), "--timeout", str(args.call_s + 900), "--answer-timeout", "5"] \
            + (["--config", args.guard_config] if args.guard_config else [])
    g = Proc(cmd, name, tmp)
    g.wait_ready(30)
    return g


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
        return _start_guard(args, tmp, f"guard{gen}", gport, f"sip:agent@127.0.0.1:{aport}", grtp + 400 * gen % 4000)

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
        # schedule on a loaded machine: it hangs up at call_s, so the last rounds can be cut); keys whose packets
        # the guard's jitter buffer reports lost may be left out (CI run 35, a loaded 2-core run: 45 keys and
        # not the keys played), never one added or out of order
        n = done[0]["count"]
        lost = lost_packets(watch.guard.err_path.read_text())
        left_out = digits_hash_within_loss(done[0]["digits_sha256"], PAN * rounds, n, keys_lost_bound(lost))
        call["payment_digits_ok"] = (n >= 16 * (rounds - 3) - (left_out or 0)
                                     and set(done[0]["sources"]) <= {"inband"} and left_out is not None)
        call["payment_digits_left_out"] = left_out
        call["customer_packets_lost"] = lost
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


# -- REFER from the agent side: the Refer-To rewrite module (dtmfguard/sip/pj/rewrite.py) ------------------
#
# pjsip hands a REFER to the rewrite module only inside a confirmed agent-side dialog of a connected bridge,
# which the stateless sets above never reach.  So this phase makes real calls with two raw user agents of its
# own (UDP, 127.0.0.1): a customer that calls the guard, an agent that answers the guard's call and then sends
# one REFER with a hostile Refer-To in that dialog.  It answers the NOTIFYs that follow, answers 486 to the
# transfer target's INVITE (after noting its headers) and 200 to the BYE; the customer hangs up after each.

_REFER_HEADERS = ("Call-ID", "CSeq", "Via", "From", "To", "Contact", "Content-Length", "Content-Type",
                  "Max-Forwards", "Route", "Record-Route", "Require", "Proxy-Require", "Expires",
                  "Session-Expires", "Min-SE", "Refer-To", "Event", "Authorization", "Allow", "Supported",
                  "Replaces", "body", "P-Asserted-Identity", "X-Dtmfguard-Call")
_REFER_HEADER_VALUES = (("empty", ""), ("x", "x"), ("nul", "%00"), ("neg", "-1"), ("long", "A" * 300),
                        ("uri", "%3Csip:evil@192.0.2.1%3E"), ("crlf", "a%0D%0AX-Injected:%201"))


def refer_cases(target: str) -> list[tuple[str, str]]:
    """(name, Refer-To value) pairs: well-formed targets, URI headers pjsip turns into headers of the transfer
    target's INVITE (each with hostile values), and sip_fuzz.HOSTILE in the user, host, parameters and
    headers of the URI and as the whole value.  ``target``: ``sip:user@host:port`` of the transfer target."""
    user, _, hostport = target[4:].partition("@")
    out = [("ok-angle", f"<{target}>"), ("ok-bare", target), ("ok-params", f"<{target};transport=udp>;x=1"),
           ("ok-header", f"<{target}?X-Foo=bar>"), ("ok-sips", f"<sips:{user}@{hostport}>"),
           ("ok-display", f"\"Target\" <{target}>"), ("tel", "<tel:+441234567890>"), ("empty-angle", "<>"),
           ("unclosed", f"<{target}"), ("two-angles", f"<{target}>>"), ("nested", f"<<{target}>>"),
           ("question-only", f"<{target}?>"), ("amp-only", f"<{target}?&&&>"), ("eq-only", f"<{target}?=>"),
           ("bad-escape", f"<{target}?X-A=%zz%>"), ("port-big", f"<sip:{user}@127.0.0.1:99999>"),
           ("ipv6-open", f"<sip:{user}@[::1>"), ("long-4000", f"<{target}?X-A={'B' * 4000}>"),
           ("long-2000", f"<{target}?X-A={'B' * 2000}>"), ("many-headers", f"<{target}?" + "&".join(
               f"X-H{i}=v" for i in range(200)) + ">"),
           ("replaces-bad", f"<{target}?Replaces=abc>"),
           ("replaces-empty-tags", f"<{target}?Replaces=a%3Bto-tag%3D%3Bfrom-tag%3D>"),
           ("replaces-twice", f"<{target}?Replaces=a%3Bto-tag%3Db%3Bfrom-tag%3Dc&Replaces=d%3Bto-tag%3De%3Bfrom-tag%3Df>")]
    for h in _REFER_HEADERS:
        for vname, value in _REFER_HEADER_VALUES:
            out.append((f"hdr:{h}={vname}", f"<{target}?{h}={value}>"))
    for value, vname in sip_fuzz.HOSTILE:
        out += [(f"user={vname}", f"<sip:{value}@{hostport}>"), (f"host={vname}", f"<sip:{user}@{value}>"),
                (f"param={vname}", f"<{target};{value}>"), (f"header={vname}", f"<{target}?X-A={value}>"),
                (f"whole={vname}", value)]
    return out


def _sip_parse(data: bytes):
    """(start line, [(lower-case name, value)], body) of one SIP message (compact names expanded)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    compact = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
               "c": "content-type", "r": "refer-to", "o": "event"}
    headers = []
    for ln in lines[1:]:
        if ":" in ln:
            n, v = ln.split(":", 1)
            n = n.strip().lower()
            headers.append((compact.get(n, n), v.strip()))
    return lines[0], headers, body


def _hget(headers, name: str, default: str = "") -> str:
    return next((v for n, v in headers if n == name), default)


def _branch(headers) -> str:
    m = re.search(r"branch=([^;\s,]+)", _hget(headers, "via"))
    return m.group(1) if m else ""


def _uri_of(value: str) -> str:
    m = re.search(r"<([^>]*)>", value)
    return m.group(1) if m else value.split(";")[0].strip()


def _sdp(port: int) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a=fmtp:101 0-15\r\na=sendrecv\r\n").encode()


class RawUa:
    """A UDP user agent on 127.0.0.1:``port``: a thread answers requests (``on_request(ua, start, headers,
    body, data, addr)``) and files responses by their Via branch for :meth:`final`."""

    def __init__(self, port: int, on_request):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = port
        self.on_request = on_request
        self.responses: dict = collections.defaultdict(list)
        self.cond = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopped:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                continue
            try:
                start, headers, body = _sip_parse(data)
                if start.startswith("SIP/2.0 "):
                    with self.cond:
                        self.responses[_branch(headers)].append((int(start[8:11]), headers, body))
                        self.cond.notify_all()
                else:
                    self.on_request(self, start, headers, body, data, addr)
            except Exception:  # noqa: BLE001 - a message it cannot read is noted by the case's outcome
                continue

    def send(self, data: bytes, addr) -> None:
        self.sock.sendto(data, addr)

    def final(self, branch: str, timeout: float, resend: bytes | None = None, addr=None):
        """(status, headers, body) of the first final answer for ``branch``, or None after ``timeout`` s;
        ``resend`` goes out again every 0.5 s until something (even a 1xx) comes back (RFC 3261 timer A)."""
        deadline = time.monotonic() + timeout
        next_resend = time.monotonic() + 0.5
        with self.cond:
            while True:
                got = self.responses.get(branch, [])
                fin = [r for r in got if r[0] >= 200]
                if fin:
                    return fin[0]
                now = time.monotonic()
                if now >= deadline:
                    return None
                if resend is not None and not got and now >= next_resend:
                    self.send(resend, addr)
                    next_resend = now + 0.5
                self.cond.wait(min(deadline, next_resend) - now if resend is not None and not got
                               else deadline - now)

    def close(self):
        self.stopped = True
        self.thread.join(2)
        self.sock.close()


def _reply(ua: RawUa, headers, addr, status: str, to_tag: str | None = None, contact: str | None = None,
           body: bytes = b"") -> bytes:
    lines = [f"SIP/2.0 {status}"]
    lines += [f"Via: {v}" for n, v in headers if n == "via"]
    to = _hget(headers, "to")
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines += [f"From: {_hget(headers, 'from')}", f"To: {to}", f"Call-ID: {_hget(headers, 'call-id')}",
              f"CSeq: {_hget(headers, 'cseq')}"]
    if contact:
        lines.append(f"Contact: <{contact}>")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
    ua.send(data, addr)
    return data


class _Agent:
    """The agent side: answers the guard's call (``leg`` INVITEs to user ``agent``), 486 to the transfer target's
    INVITE (its headers kept in ``target_invites``), 200 to everything else."""

    def __init__(self, port: int):
        self.port = port
        self.dialogs: dict = {}  # Call-ID -> (the guard's INVITE headers, our To tag, our 200)
        self.legs: list = []  # Call-IDs of the guard's calls, in order
        self.target_invites: list = []
        self.byes: set = set()
        self.cseq: collections.Counter = collections.Counter()  # Call-ID -> the last CSeq of our requests
        self.ua = RawUa(port, self.on_request)

    def on_request(self, ua, start, headers, body, data, addr):
        method = start.split(" ", 1)[0]
        cid = _hget(headers, "call-id")
        if method == "ACK":
            return
        if method == "INVITE":
            if cid in self.dialogs:  # a retransmission or a re-INVITE: the same answer, with an SDP
                _reply(ua, headers, addr, "200 OK", self.dialogs[cid][1], f"sip:agent@127.0.0.1:{self.port}",
                       _sdp(7010))
            elif start.split(" ")[1].startswith("sip:agent@"):
                tag = f"a{random.getrandbits(48):x}"
                self.dialogs[cid] = (headers, tag)
                self.legs.append(cid)
                _reply(ua, headers, addr, "200 OK", tag, f"sip:agent@127.0.0.1:{self.port}", _sdp(7010))
            else:
                self.target_invites.append(headers)
                _reply(ua, headers, addr, "486 Busy Here", "busy")
            return
        if method == "BYE":
            self.byes.add(cid)
        _reply(ua, headers, addr, "200 OK")

    def refer(self, cid: str, refer_to: str, gport: int, timeout: float = 3.0):
        """One REFER in the dialog of the guard's call ``cid``: (status or "none", the REFER's bytes)."""
        inv, tag = self.dialogs[cid]
        self.cseq[cid] += 1  # RFC 3261 §12.2.1.1: one higher for each request in the dialog
        branch = f"z9hG4bK{random.getrandbits(64):x}"
        text = (f"REFER {_uri_of(_hget(inv, 'contact'))} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: {_hget(inv, 'to')};tag={tag}\r\nTo: {_hget(inv, 'from')}\r\n"
                f"Call-ID: {cid}\r\nCSeq: {self.cseq[cid]} REFER\r\nContact: <sip:agent@127.0.0.1:{self.port}>\r\n"
                f"Refer-To: {refer_to}\r\nReferred-By: <sip:agent@127.0.0.1:{self.port}>\r\nContent-Length: 0\r\n\r\n")
        data = text.encode("utf-8", "surrogateescape")
        got = self.ua.final(branch, timeout, resend=data, addr=("127.0.0.1", gport))
        return (str(got[0]) if got else "none"), data


class _Customer:
    def __init__(self, port: int, gport: int):
        self.port, self.gport = port, gport
        self.ua = RawUa(port, lambda ua, start, headers, body, data, addr:
                        None if start.startswith("ACK") else _reply(ua, headers, addr, "200 OK"))

    def call(self, timeout: float = 8.0):
        """INVITE the guard and ACK its answer: (status, the dialog for :meth:`bye`) -- status "none" when
        nothing final came back."""
        uid = f"{random.getrandbits(64):x}"
        branch, ftag, cid = f"z9hG4bK{uid}", f"c{uid[:8]}", f"{uid}@refer-fuzz"
        sdp = _sdp(7000)
        frm = f"<sip:customer@127.0.0.1:{self.port}>;tag={ftag}"
        head = (f"INVITE sip:guard@127.0.0.1:{self.gport} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\nMax-Forwards: 70\r\n"
                f"From: {frm}\r\nTo: <sip:guard@127.0.0.1:{self.gport}>\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\n"
                f"Contact: <sip:customer@127.0.0.1:{self.port}>\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(sdp)}\r\n\r\n")
        data = head.encode() + sdp
        got = self.ua.final(branch, timeout, resend=data, addr=("127.0.0.1", self.gport))
        if got is None:
            return "none", None
        status, headers, _ = got
        to = _hget(headers, "to")
        ack_branch = branch if status >= 300 else f"z9hG4bK{random.getrandbits(64):x}"
        ruri = _uri_of(_hget(headers, "contact")) if status < 300 else f"sip:guard@127.0.0.1:{self.gport}"
        ack = (f"ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.port};branch={ack_branch};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\n"
               f"Content-Length: 0\r\n\r\n")
        self.ua.send(ack.encode("utf-8", "surrogateescape"), ("127.0.0.1", self.gport))
        return str(status), (ruri, frm, to, cid)

    def bye(self, dialog, timeout: float = 4.0) -> str:
        ruri, frm, to, cid = dialog
        branch = f"z9hG4bK{random.getrandbits(64):x}"
        data = (f"BYE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: 2 BYE\r\n"
                f"Content-Length: 0\r\n\r\n").encode("utf-8", "surrogateescape")
        got = self.ua.final(branch, timeout, resend=data, addr=("127.0.0.1", self.gport))
        return str(got[0]) if got else "none"


def refer_case(customer: _Customer, agent: _Agent, gport: int, name: str, refer_to: str) -> dict:
    """One call: customer -> guard -> agent, the agent's REFER with ``refer_to``, then the customer's BYE."""
    out = {"name": name, "setup": "none", "refer": "-", "bye": "-", "target_invited": False, "rewritten": False}
    for _ in range(6):  # 503: the guard's call slots are still busy with the previous case
        legs = len(agent.legs)
        out["setup"], dialog = customer.call()
        if out["setup"] != "503":
            break
        time.sleep(1.0)
    if out["setup"] != "200" or len(agent.legs) <= legs:
        if dialog is not None and out["setup"] == "200":
            out["bye"] = customer.bye(dialog)
        return out
    cid = agent.legs[-1]
    time.sleep(0.15)  # the guard sees the customer's ACK: the bridge is connected
    n_targets = len(agent.target_invites)
    out["refer"], _ = agent.refer(cid, refer_to, gport)
    if out["refer"].startswith("2"):
        deadline = time.monotonic() + 2.0
        while len(agent.target_invites) == n_targets and time.monotonic() < deadline:
            time.sleep(0.02)
    new = agent.target_invites[n_targets:]
    out["target_invited"] = bool(new)
    out["rewritten"] = any(_hget(h, "x-dtmfguard-call") for h in new)
    out["bye"] = customer.bye(dialog)
    deadline = time.monotonic() + 3.0
    while cid not in agent.byes and time.monotonic() < deadline:  # the guard ends the agent leg: slot free
        time.sleep(0.02)
    return out


def refer_phase(args, tmp: Path) -> dict:
    """Every :func:`refer_cases` case (every ``--refer-stride``-th) against a guard of its own, then one
    well-formed transfer that must still be rewritten.  Worker deaths are recorded (and the guard restarted).
    Ports: ``args.refer_ports`` (guard, agent, customer), else 5200, 5210, 5220."""
    gport, aport, cport = getattr(args, "refer_ports", None) or (5200, 5210, 5220)
    agent = _Agent(aport)
    customer = _Customer(cport, gport)

    def start_guard(gen):
        return _start_guard(args, tmp, f"refer-guard{gen}", gport, f"sip:agent@127.0.0.1:{aport}",
                            rtp_base() + 100 + 400 * gen % 4000)

    watch = Watch(start_guard)
    target = f"sip:target@127.0.0.1:{aport}"
    cases = refer_cases(target)[:: args.refer_stride] + [("final-ok", f"<{target}>")]
    results = []
    t0 = time.monotonic()
    try:
        for name, value in cases:
            watch.in_flight.append(f"refer:{name}")
            results.append(refer_case(customer, agent, gport, name, value))
            watch.check()
    finally:
        rc = watch.guard.stop()
        agent.ua.close()
        customer.ua.close()
    return {"cases": len(results), "seconds": round(time.monotonic() - t0, 1), "deaths": watch.deaths,
            "guard_exit": rc, "results": results}


def refer_summary(out: dict) -> dict:
    res = out["results"]
    count = collections.Counter
    return {"cases": out["cases"], "seconds": out["seconds"], "deaths": len(out["deaths"]),
            "setup": dict(count(r["setup"] for r in res)), "refer": dict(count(r["refer"] for r in res)),
            "bye": dict(count(r["bye"] for r in res)),
            "target_invited": sum(r["target_invited"] for r in res), "rewritten": sum(r["rewritten"] for r in res),
            "no_refer_answer": [r["name"] for r in res if r["refer"] == "none"][:40],
            "refer_5xx": [f"{r['name']}:{r['refer']}" for r in res if r["refer"].startswith("5")][:40],
            "call_not_ended_by_bye": [f"{r['name']}:{r['bye']}" for r in res
                                      if r["setup"] == "200" and r["bye"] != "200"][:40],
            "final_ok": res[-1] if res else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stride", type=int, default=1, help="send every Nth mutated INVITE (1: all)")
    ap.add_argument("--transports", default="udp,tcp")
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--answer-wait", type=float, default=1.0)
    ap.add_argument("--call-s", type=float, default=0.0, help="length of the real call (0: estimated)")
    ap.add_argument("--guard-config", help="TOML for the guard (e.g. customer SRTP optional)")
    ap.add_argument("--serve", action="store_true",
                    help="fuzz `dtmfguard serve` (one worker in its process) instead of tests/sip_peers/guard_probe.py "
                         "(same Guard; only the probe reports the payment digits, as a hash)")
    ap.add_argument("--phases", default="stateless,refer",
                    help="what to run: stateless (RFC 4475 and mutated INVITEs beside a real call), refer (REFERs "
                         "with hostile Refer-To values in real agent-side dialogs)")
    ap.add_argument("--refer-stride", type=int, default=1, help="send every Nth REFER case (1: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.transports = args.transports.split(",")
    args.ports = (5170, 5180, 5190)
    n = len(sip_fuzz.mutated_invites()[:: args.stride]) + 49
    if not args.call_s:
        args.call_s = max(30.0, n * len(args.transports) * 0.12 / args.concurrency * 2 + 20)
    phases = set(args.phases.split(","))
    unknown = phases - {"stateless", "refer"}
    if unknown:
        ap.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    bad = False
    report: dict = {}
    if "stateless" in phases:
        out = run(args)
        report["stateless"] = out
        bad |= _stateless_report(out, args.json)
    if "refer" in phases:
        out = refer_phase(args, Path(tempfile.mkdtemp(prefix="sipfuzz-refer-")))
        summary = refer_summary(out)
        report["refer"] = {"summary": summary, "deaths": out["deaths"], "per_case": out["results"]}
        if not args.json:
            print(f"REFER phase: {summary['cases']} cases in {summary['seconds']} s; worker deaths {summary['deaths']}")
            for key in ("setup", "refer", "bye"):
                print(f"  {key:6s} answers by status: {summary[key]}")
            print(f"  transfer target called {summary['target_invited']} times, with the caller's headers "
                  f"{summary['rewritten']} times")
            for key in ("no_refer_answer", "refer_5xx", "call_not_ended_by_bye"):
                if summary[key]:
                    print(f"  {key}: {' '.join(summary[key])}")
            for d in out["deaths"]:
                print(f"  exit {d['exit']}; last cases: {d['in_flight'][-6:]}")
                print("   " + d["stderr_tail"].strip().replace("\n", "\n   ")[-400:])
            print("  final well-formed transfer:", json.dumps(summary["final_ok"]))
        final = summary["final_ok"] or {}
        bad |= bool(out["deaths"]) or bool(summary["call_not_ended_by_bye"]) or not final.get("rewritten")
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    return 1 if bad else 0


def _stateless_report(out: dict, as_json: bool) -> bool:
    """Print the stateless phase's figures; True when a worker died or the real call was harmed."""
    if not as_json:
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
    return bool(out["deaths"]) or harmed


if __name__ == "__main__":
    sys.exit(main())
