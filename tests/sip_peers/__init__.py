# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for tests with real SIP peers: processes with ready lines, ports, clean termination, and
:class:`SipCall`, the one set-up of a call through the guard (agent peer, guard, customer peer)."""
from __future__ import annotations

import collections
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from dtmfguard.server.procs import json_events, stop_process

PEERS = ("-m", "dtmfguard.sip.pj.peers")

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def _share(lo: int, hi: int) -> tuple:
    """This test process's share of the port range [lo, hi): the whole range, or under pytest-xdist
    (``-n N``) the worker's own 1/N of it, so that parallel workers never pick the same ports."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    span = (hi - lo) // max(count, 1)
    return lo + index * span, lo + (index + 1) * span


def free_port(span: int = 1) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both), with the ``span - 1`` ports after it
    (baresip also listens for SIP over TLS on its port + 1); the tests' SIP and control ports come from
    20000-29989 (a guard with workers also takes ``port + 10 * k``)."""
    lo, hi = _share(20000, 29990)
    for _ in range(200):
        port = random.randint(lo, hi - 1)
        # never the same port twice in one test process, nor one a guard's worker k would take from a port
        # handed out before (port + 10 * k): the probe below only sees ports bound *now* (a control port and
        # a SIP base drawn in one test once came out equal)
        if any(abs(port - g) % 10 == 0 and abs(port - g) <= 100 for g in _GIVEN):
            continue
        # ... nor, near the last few (one test's: a guard's SIP base and its control port), one whose difference from
        # them is not 5 mod 10: worker k's control API takes the control port + 1 + k, its SIP the base + 10 * k (a
        # base and a control port 8 apart collided in clean-clone run 92; serve refused to start, as it should)
        if any(abs(port - g) <= 100 and (port - g) % 10 != 5 for g in list(_GIVEN)[-4:]):
            continue
        try:
            for p in range(port, port + span):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    u.bind(("127.0.0.1", p))
                    t.bind(("127.0.0.1", p))
            _GIVEN.append(port)
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


#: the last ports free_port handed out in this process (a test takes a few; tests in a process run one after
#: another, so older ones are free again or held by a test that bound them long ago)
_GIVEN: collections.deque = collections.deque(maxlen=32)


def rtp_base() -> int:
    """The first of 200 RTP ports (30000-54999, in steps of 200; split between pytest-xdist workers), never one
    of the last blocks handed out in this process: two peers of one call given the same block both run (the
    second binds the next free ports), but a test reading the loopback by port then sees the other's stream.
    55000 and up are left to tests that need a larger block (the quick soak)."""
    lo, hi = _share(30000, 55000)
    every = range(lo + (-lo) % 200, hi - 199, 200)
    base = random.choice([b for b in every if b not in _RTP_GIVEN] or every)  # (many workers: small shares)
    _RTP_GIVEN.append(base)
    return base


#: the last RTP blocks rtp_base handed out in this process (a call takes up to four: guard, agent, customer,
#: a transfer target)
_RTP_GIVEN: collections.deque = collections.deque(maxlen=8)


#: what runs pjsua2 in a child: the test peers, the guard probe, ``dtmfguard serve`` and ``dtmfguard demo``
_PJSUA2_PROGRAMS = ("dtmfguard.sip.pj.peers", "guard_probe.py", "ioqueue_spin_probe.py", "serve", "demo")


def needs_pjsua2(args) -> bool:
    return any(str(a) in _PJSUA2_PROGRAMS or str(a).endswith(("/guard_probe.py", "/ioqueue_spin_probe.py"))
               for a in args)


class Proc:
    """A child process whose stdout is JSON/ready lines; stopped with SIGTERM, then SIGKILL.  A child that runs
    pjsua2 skips the test naming pjsua2-python when it cannot be imported (``_corpus_util.need_pjsua2``)."""

    def __init__(self, args, name: str, logdir: Path, env=None):
        if needs_pjsua2(args):
            from _corpus_util import need_pjsua2

            need_pjsua2(f"{name} runs pjsua2")
            import _realtime_slots

            _realtime_slots.hold()  # (real-time media threads: see _realtime_slots.py)
        self.name = name
        self.out_path = logdir / f"{name}.out"
        self.err_path = logdir / f"{name}.err"
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        self.p = subprocess.Popen([PYTHON, *args], stdout=self._out, stderr=self._err,
                                  env={**os.environ, **(env or {})}, start_new_session=True)

    def lines(self):
        return self.out_path.read_text().splitlines()

    def events(self):
        return json_events(self.lines())

    def wait_for(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(line) for line in self.lines()):
                return True
            if self.p.poll() is not None:
                return any(predicate(line) for line in self.lines())
            time.sleep(0.05)
        return False

    def wait_ready(self, timeout=20.0):
        if not self.wait_for(lambda s: s.startswith("ready") or '"ready"' in s, timeout):
            self.stop()
            raise AssertionError(f"{self.name} not ready: {self.err_path.read_text()[-2000:]}")

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def stop(self, grace=15.0):
        code = stop_process(self.p, grace)
        self._out.close()
        self._err.close()
        return code

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        return self.p.returncode

    def output(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()


class SipCall:
    """The three processes of a call through the guard, on 127.0.0.1 with free ports: the agent peer
    (``dtmfguard.sip.pj.peers agent``, recording what it hears), the guard (``guard_probe.py``, the production
    Guard with test hooks, or ``dtmfguard serve`` with ``serve=True``) and one or more customer peers::

        with SipCall(tmp_path, guard_args=[...]) as call:  # agent and guard started; both printed "ready"
            call.customer("--play", wav, "--play-s", "3")  # a customer peer calling the guard
            call.wait()                                     # the customer, then the agent, exit
        call.rc                                             # (customer, agent, guard) exit codes

    Leaving the block stops every process (the guard first, with SIGTERM, then SIGKILL after a grace).
    """

    def __init__(self, tmp_path, *, serve=False, guard_args=(), agent_args=(), env=None, record=True,
                 control=False, timeout=60, agent_timeout=None, gport=None, aport=None, agent_uri=None,
                 guard_rtp=None, agent_rtp=None, agent=True):
        self.tmp = Path(tmp_path)
        self.serve = serve
        self.gport = gport or free_port()
        self.aport = aport or free_port()
        self.ctl = free_port() if control else None
        self.guard_rtp = guard_rtp or rtp_base()
        self.agent_rtp = agent_rtp or rtp_base()
        self.rec_dir = self.tmp / "agent" if record else None
        self.agent_uri = agent_uri or f"sip:agent@127.0.0.1:{self.aport}"
        self.timeout = timeout
        self.agent_timeout = agent_timeout or timeout
        self._guard_args, self._agent_args, self._env = list(guard_args), list(agent_args), env
        self._start_agent = agent  # False: the test runs its own agent side (sipp, baresip) at agent_uri
        self.agent = self.guard = None
        self.agents: list = []  # further agent peers (add_agent)
        self.customers: list = []
        self.rc_customer = self.rc_agent = self.rc_guard = None

    @property
    def guard_uri(self) -> str:
        return f"sip:guard@127.0.0.1:{self.gport}"

    @property
    def rc(self) -> tuple:
        return self.rc_customer, self.rc_agent, self.rc_guard

    def __enter__(self):
        if self.rec_dir is not None and self._start_agent:
            self.rec_dir.mkdir(exist_ok=True)
        record = ["--record-dir", str(self.rec_dir)] if self.rec_dir is not None else []
        if self._start_agent:
            self.agent = Proc([*PEERS, "agent", "--port", str(self.aport), "--rtp", str(self.agent_rtp), *record,
                               "--timeout", str(self.agent_timeout), *self._agent_args], "agent", self.tmp)
        common = ["--listen", f"127.0.0.1:{self.gport}", "--agent", self.agent_uri,
                  "--rtp-port", str(self.guard_rtp)]
        if self.serve:
            control = ["--control", f"127.0.0.1:{self.ctl}"] if self.ctl else []
            args = ["-m", "dtmfguard", "serve", *common, *control, *self._guard_args]
        else:
            args = [str(HERE / "guard_probe.py"), *common, "--timeout", str(self.timeout), *self._guard_args]
        self.guard = Proc(args, "guard", self.tmp, env=self._env)
        try:
            if self.agent is not None:
                self.agent.wait_ready()
            self.guard.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def add_agent(self, name: str, *args, port=None, record=True) -> Proc:
        """Start a further agent peer (a transfer target; ``port`` from :func:`free_port` when its URI is
        needed before it starts), recording into ``tmp/name``; returns once it printed "ready"."""
        record_args = []
        if record:
            (self.tmp / name).mkdir(exist_ok=True)
            record_args = ["--record-dir", str(self.tmp / name)]
        proc = Proc([*PEERS, "agent", "--port", str(port or free_port()), "--rtp", str(rtp_base()), *record_args,
                     "--timeout", str(self.agent_timeout), *args], name, self.tmp)
        self.agents.append(proc)
        proc.wait_ready()
        return proc

    def customer(self, *args, to=None, port=None, rtp=None, timeout=None, name="customer", env=None) -> Proc:
        """Start a customer peer calling the guard (``to`` overrides the target URI)."""
        proc = Proc([*PEERS, "customer", "--port", str(port or free_port()), "--rtp", str(rtp or rtp_base()),
                     "--to", to or self.guard_uri, "--timeout", str(timeout or self.timeout), *args],
                    name, self.tmp, env=env)
        self.customers.append(proc)
        return proc

    def wait(self, customer_s=60.0, agent_s=15.0):
        """Wait for the first customer to exit, then for the agents; returns the customer's exit code."""
        self.rc_customer = self.customers[0].wait(customer_s)
        if self.agent is not None:
            self.rc_agent = self.agent.wait(agent_s)
        for proc in self.agents:
            proc.wait(agent_s)
        return self.rc_customer

    def stop(self):
        if self.guard is not None:
            self.rc_guard = self.guard.stop()
        for proc in (*self.customers, self.agent, *self.agents):
            if proc is not None:
                proc.stop()

    def __exit__(self, *exc):
        self.stop()
        return False

    def recording(self, index: int = 0, agent: str | None = None):
        """What the agent (or the further agent ``agent``) heard on its ``index``-th call (int16 at 8 kHz)."""
        import soundfile as sf

        folder = self.tmp / agent if agent else self.rec_dir
        rec, rate = sf.read(folder / f"call-{index}.wav", dtype="int16")
        assert rate == 8000, rate
        return rec

    def output(self) -> str:
        """Everything every process wrote (searched for card data)."""
        return "".join(p.output() for p in (self.guard, self.agent, *self.agents, *self.customers) if p is not None)

    def guard_log(self) -> str:
        return self.guard.err_path.read_text()


class SippUas:
    """sipp (Debian sip-tester) as the agent side: one call of the scenario ``tests/sipp/<scenario>`` on
    127.0.0.1:``port``, started at once; ``args`` go to sipp before its own (e.g. ``-rtp_echo``, ``-key``)::

        with SipCall(..., agent=False, agent_uri=f"sip:ivr@127.0.0.1:{port}") as call, \\
                SippUas(tmp_path, "uas_183.xml", port) as sipp:
            ...
            out = sipp.finish(30)        # its output; sipp.returncode 0 when the scenario passed

    Leaving the block kills a sipp that is still running."""

    def __init__(self, tmp_path, scenario: str, port: int, *args, timeout_s: int = 30):
        self.p = subprocess.Popen(["sipp", "-sf", str(HERE.parent / "sipp" / scenario), "-m", "1", "-p", str(port),
                                   "-i", "127.0.0.1", "-mp", str(rtp_base()), *args, "-timeout", f"{timeout_s}s",
                                   "-nostdin", "-trace_err"], cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)

    def finish(self, timeout: float) -> str:
        out, _ = self.p.communicate(timeout=timeout)
        return out

    @property
    def returncode(self):
        return self.p.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        return False


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, or no such process, is not alive: /proc/<pid>/stat's state)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(pred, timeout: float, step: float = 0.05) -> bool:
    """Poll ``pred`` every ``step`` s for ``timeout`` s; its value then (True as soon as it holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def keys_of(proc: Proc, call: int | None = 0) -> str:
    """The digits a peer got on its ``call``-th call (all its calls with ``call=None``), from its summary."""
    calls = done_event(proc)["calls"]
    return "".join(k["digit"] for c in (calls if call is None else calls[call:call + 1]) for k in c["keys"])


def lost_packets(guard_log: str) -> int:
    """How many of the customer's packets the guard's jitter buffer reports lost (summed over its calls)."""
    return sum(int(m) for m in re.findall(r"customer stream's jitter buffer: .*?lost (\d+)", guard_log))


def media_story(guard_log: str) -> list[str]:
    """The guard's own account of each call's media (its jitter buffers, its media clock's late ticks): what a
    failing test with lost keys or speech prints, to tell packets lost on the way from a clock that ran late."""
    return [ln[-300:] for ln in guard_log.splitlines() if "jitter buffer:" in ln or "media clock:" in ln]


def keys_lost_bound(lost: int, key_ms: int = 140, frame_ms: int = 20, most: int = 4) -> int:
    """How many keys ``lost`` packets can take away: a key and its gap last ``key_ms`` (7 packets of 20 ms), so at
    most one more than lost * frame_ms / key_ms (the run of lost packets may straddle two keys), and never more
    than ``most`` (a test that lost more than that has lost its evidence and fails)."""
    return 0 if lost <= 0 else min(most, -(-lost * frame_ms // key_ms) + 1)


def digits_hash_within_loss(sha256_hex: str, source: str, count: int, may_lose: int) -> int | None:
    """How many keys were left out if the digits hashed to ``sha256_hex`` (``count`` of them) are ``source``'s
    first ``count + k`` keys with ``k <= may_lose`` of them left out, in order, nothing added; else None.  The
    guard reports only a hash (no card data in any output), so every such subsequence is hashed and compared."""
    import hashlib
    import itertools

    for k in range(may_lose + 1):
        head = source[:count + k]
        if len(head) < count + k:
            break
        for gone in itertools.combinations(range(len(head)), k):
            cut = set(gone)
            if hashlib.sha256("".join(c for i, c in enumerate(head) if i not in cut).encode()).hexdigest() \
                    == sha256_hex:
                return k
    return None


def done_event(proc: Proc):
    """A peer's or guard_probe's final ``{"event": "done"}`` summary, or None if it never printed one."""
    done = [e for e in proc.events() if e.get("event") == "done"]
    return done[-1] if done else None


def timeline(*procs: Proc, events=("state", "media", "refer", "consult", "replaced", "dtmf", "reinvite")) -> str:
    """The peers' events merged in time order, one line each relative to the first (for a failing test's
    message: which peer saw what when)."""
    rows = sorted((e["t"], p.name, e) for p in procs for e in p.events()
                  if isinstance(e.get("t"), (int, float)) and e.get("event") in events)
    if not rows:
        return "(no timed events)"
    t0 = rows[0][0]
    return "\n".join(f"{t - t0:7.3f} {name:8s} " + " ".join(f"{k}={v}" for k, v in e.items() if k != "t")
                     for t, name, e in rows)


def invite_headers(proc: Proc) -> list:
    """The headers (lower-case name -> [values]) of every INVITE an agent peer received, in order."""
    return [e["headers"] for e in proc.events() if e.get("event") == "invite"]


def response_headers(proc: Proc) -> dict:
    """status -> the headers of the (last) response with that status a customer peer received: its 180, 183,
    200 ..."""
    return {e["status"]: e["headers"] for e in proc.events() if e.get("event") == "response"}


def connected_call(ctl: int, token: str, timeout: float = 15.0) -> dict:
    """The first call the guard's control API lists as connected (waits for it)."""
    from dtmfguard.server.control import request

    body: dict = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = request(ctl, "GET", "/calls", token, None, timeout=10)
        live = [c for c in body.get("calls", []) if c["state"] == "connected"]
        if live:
            return live[0]
        time.sleep(0.05)
    raise AssertionError(f"no connected call within {timeout} s: {body}")


def sip_options_ok(port: int, timeout: float = 15.0, host: str = "127.0.0.1", src: str | None = None) -> bool:
    """Wait until a SIP server on UDP ``host:port`` answers an OPTIONS to itself with 200 (it is listening
    and its request route runs); one request every 0.2 s, sent from ``src`` (default: ``host``)."""
    import uuid

    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        src = src or host
        s.bind((src, 0))
        s.settimeout(0.2)
        local = s.getsockname()[1]
        while time.monotonic() < deadline:
            call_id = uuid.uuid4().hex
            msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {src}:{local};branch=z9hG4bK{call_id[:16]};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:probe@{src}:{local}>;tag={call_id[16:24]}\r\n"
                   f"To: <sip:{host}:{port}>\r\nCall-ID: {call_id}@{host}\r\nCSeq: 1 OPTIONS\r\n"
                   "Content-Length: 0\r\n\r\n")
            s.sendto(msg.encode(), (host, port))
            try:
                while True:
                    data = s.recv(65535).decode(errors="replace")
                    if call_id in data and data.startswith("SIP/2.0 200"):
                        return True
            except (socket.timeout, ConnectionRefusedError):
                continue
    return False


def keyed_audio(path, head, parts, tail, seed: int, **keypress_kw):
    """The customer's WAV: speech ``head``, then for each ``(name, keys, gap_s)`` of ``parts`` the keys
    (``dtmfguard.testkit.synth.keypresses`` at -10 dBm0 with ``keypress_kw``) and ``gap_s`` of silence, then speech
    ``tail``; written to ``path`` (16-bit, 8 kHz).  Returns the signal (int16) and each part's key spans
    ``[(digit, start, end)]`` in samples."""
    import numpy as np
    import soundfile as sf

    from dtmfguard.testkit.synth import keypresses

    rng = np.random.default_rng(seed)
    out, spans, pos = [head], {}, head.size
    for name, keys, gap_s in parts:
        x, sp = keypresses(keys, level_dbm0=-10, rng=rng, **keypress_kw.get(name, {}))
        spans[name] = [(s.digit, s.start + pos, s.end + pos) for s in sp]
        out += [x, np.zeros(int(gap_s * 8000))]
        pos += x.size + int(gap_s * 8000)
    out.append(tail)
    x = np.clip(np.concatenate(out), -32768, 32767).astype(np.int16)
    sf.write(path, x, 8000, subtype="PCM_16")
    return x, spans


class LoopbackUdp:
    """Every IPv4 UDP datagram on ``lo`` whose destination port ``keep`` accepts (all by default), read with an
    AF_PACKET socket (needs CAP_NET_RAW: PermissionError otherwise; no tcpdump), in ``datagrams`` as
    ``(time.monotonic(), src port, dst port, dst address, src address, payload)``.  Stop it with :meth:`stop`."""

    def __init__(self, keep=None):
        import struct
        import threading

        self._unpack = struct.unpack
        self.keep = keep or (lambda dport: True)
        self.datagrams: list = []
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            if addr[2] == socket.PACKET_OUTGOING or len(frame) < 42 or frame[12:14] != b"\x08\x00":
                continue  # each loopback packet is seen twice: keep the incoming copy; IPv4 only
            ip = frame[14:]
            if ip[9] != 17:
                continue
            ihl = (ip[0] & 0x0F) * 4
            sport, dport = self._unpack("!HH", ip[ihl:ihl + 4])
            if self.keep(dport):
                self.datagrams.append((time.monotonic(), sport, dport, socket.inet_ntoa(ip[16:20]),
                                       socket.inet_ntoa(ip[12:16]), bytes(ip[ihl + 8:])))

    def by_port(self) -> dict:
        """The payloads by destination port."""
        out: dict = {}
        for d in list(self.datagrams):
            out.setdefault(d[2], []).append(d[5])
        return out

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
