# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard serve`` as a new user and an operator meet it: does it tell the truth about itself? (issue 18)

Runs each scenario against the ``dtmfguard`` found on PYTHONPATH (run it once on the old tree and once on
the new one to compare) and prints one row per scenario: exit code, seconds to exit, whether ``ready`` was
printed (and whether every worker answered SIP OPTIONS at that moment), orphans left (processes carrying
this run's marker in their environment, 10 s after the supervisor is gone), and what the SIP peers got.

Run it in its own network namespace (fixed ports)::

    unshare -n bash -c 'ip link set lo up; PYTHONPATH=$PWD python benchmarks/supervisor_scenarios.py'
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

PY = sys.executable
MARK = f"i18-{uuid.uuid4().hex[:8]}"
TMP = tempfile.mkdtemp(prefix="sup-scen-")
ENV = {**os.environ, "DTMFGUARD_SCENARIO": MARK, "DTMFGUARD_API_TOKEN": "t", "DTMFGUARD_VAULT_KEY": "66" * 32,
       "DTMFGUARD_VAULT_PATH": os.path.join(TMP, "vault.sqlite3"), "RUNTIME_DIRECTORY": TMP}
_port = [21000]


def ports(n: int = 1) -> int:
    _port[0] += 200
    return _port[0]


def marked_pids() -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"DTMFGUARD_SCENARIO={MARK}".encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def orphans_after(timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and marked_pids():
        time.sleep(0.2)
    left = marked_pids()
    for pid in left:  # clean up for the next scenario
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(left)


def options_answered(host: str, port: int, timeout_s: float = 0.3) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    lp = s.getsockname()[1]
    s.settimeout(timeout_s)
    msg = (f"OPTIONS sip:guard@{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK{random.getrandbits(40)}\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:guard@{host}>\r\n"
           f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    try:
        s.sendto(msg.encode(), (host, port))
        s.recvfrom(4096)
        return True
    except OSError:
        return False
    finally:
        s.close()


def serve(args, extra_env=None, config=None):
    cmd = [PY, "-m", "dtmfguard", "serve", *args]
    if config:
        path = os.path.join(TMP, f"cfg-{random.getrandbits(20)}.toml")
        with open(path, "w") as f:
            f.write(config)
        cmd += ["--config", path]
    err = open(os.path.join(TMP, f"serve-{random.getrandbits(20)}.err"), "w+")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env={**ENV, **(extra_env or {})})
    p.err = err
    return p


def read_ready(p, timeout_s: float):
    """(seconds until 'ready', the line, other stdout lines) or (None, '', lines) if it exited first."""
    t0 = time.monotonic()
    other = []
    os.set_blocking(p.stdout.fileno(), False)
    buf = ""
    while time.monotonic() - t0 < timeout_s:
        try:
            chunk = p.stdout.read()
        except (OSError, TypeError):
            chunk = None
        if chunk:
            buf += chunk
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                if line.startswith("ready"):
                    return time.monotonic() - t0, line, other
                other.append(line)
        elif p.poll() is not None:
            return None, "", other
        time.sleep(0.02)
    return None, "", other


def stop(p, sig=signal.SIGTERM, timeout_s: float = 30):
    t0 = time.monotonic()
    if p.poll() is None:
        p.send_signal(sig)
    try:
        rc = p.wait(timeout_s)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "hung"
    return rc, round(time.monotonic() - t0, 1)


def agent(port, no_answer=False):
    args = [PY, "-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(port), "--rtp", str(port + 100), "--timeout",
            "90", "--calls", "0"] + (["--no-answer"] if no_answer else [])
    a = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    a.stdout.readline()
    return a


ROWS = []


def row(name, **kw):
    ROWS.append((name, kw))
    print(f"{name:38s} " + " ".join(f"{k}={v}" for k, v in kw.items()), flush=True)


# ------------------------------------------------------------------------------------------- scenarios
def s_control_taken():
    base = ports()
    hold = socket.socket()
    hold.bind(("127.0.0.1", base + 50))
    hold.listen()
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999", "--workers", "2",
               "--control", f"127.0.0.1:{base + 50}"])
    t, line, _ = read_ready(p, 15)
    time.sleep(1.0)  # workers (if any were started) get a moment to bind
    sip_bound = options_answered("127.0.0.1", base)
    rc, _ = stop(p) if p.poll() is None else (p.returncode, 0)
    hold.close()
    row("control port taken, --workers 2", exit=rc, ready=bool(line), sip_listening_after_exit=sip_bound,
        orphans=orphans_after())


def s_address_not_on_host():
    base = ports()
    p = serve(["--listen", f"10.255.255.1:{base}", "--agent", "sip:a@127.0.0.1:5999", "--workers", "2"])
    t0 = time.monotonic()
    t, line, _ = read_ready(p, 25)
    try:
        rc = p.wait(max(0.1, 25 - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        rc = "still running after 25 s"
        stop(p)
    row("address not on host, --workers 2", exit=rc, ready=bool(line), secs=round(time.monotonic() - t0, 1),
        orphans=orphans_after())


def s_sigkill_supervisor():
    base = ports()
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999", "--workers", "2"])
    t, line, _ = read_ready(p, 30)
    time.sleep(3)  # be sure the workers run (before issue 18 'ready' came before them)
    p.kill()
    p.wait()
    row("SIGKILL supervisor, --workers 2", ready=bool(line), orphans=orphans_after())


def s_ready_timing():
    base = ports()
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999", "--workers", "2"])
    t, line, other = read_ready(p, 30)
    t1 = time.monotonic()
    answered = [options_answered("127.0.0.1", base + 10 * i) for i in range(2)]
    late = 0.0
    if not all(answered):  # how long after 'ready' until every worker answers
        while not all(options_answered("127.0.0.1", base + 10 * i) for i in range(2)) and time.monotonic() - t1 < 10:
            time.sleep(0.05)
        late = time.monotonic() - t1
    rc, secs = stop(p)
    row("ready timing, --workers 2", ready_after_s=round(t or -1, 2), workers_answering_at_ready=sum(answered),
        ready_early_by_s=round(late, 2), stdout_non_ready_lines=len(other), exit=rc, orphans=orphans_after())


def s_single_stdout():
    base = ports()
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999"])
    t, line, other = read_ready(p, 30)
    rc, secs = stop(p)
    rest = p.stdout.read() or ""
    row("stdout of serve (1 worker)", lines_before_ready=len(other), lines_after=len([x for x in rest.splitlines() if x]),
        exit=rc)


def s_payment_typo():
    base = ports()
    cfg = ('[payment]\ngateway = "vualt"\noptions = { kye_file = "/etc/dtmfguard/vault.key" }\n'
           'audit = "/nonexistent/audit.jsonl"\n')
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999", "--control",
               f"127.0.0.1:{base + 50}"], config=cfg)
    t0 = time.monotonic()
    t, line, _ = read_ready(p, 20)
    rc, _ = stop(p) if p.poll() is None else (p.returncode, 0)
    p.err.seek(0)
    msg = [x for x in p.err.read().splitlines() if x.startswith("dtmfguard:")]
    row("typo in [payment]", exit=rc, ready=bool(line), secs=round(time.monotonic() - t0, 1),
        problems_reported=(msg[0].count(";") + 1) if msg else 0)


def s_garbage_tls_certificate():
    base = ports()
    junk = os.path.join(TMP, "junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999", "--workers", "2", "--transports",
               "udp,tcp,tls", "--tls-cert", junk, "--tls-key", junk])
    t0 = time.monotonic()
    t, line, _ = read_ready(p, 20)
    rc, _ = stop(p) if p.poll() is None else (p.returncode, 0)
    row("garbage TLS certificate, --workers 2", exit=rc, ready=bool(line), secs=round(time.monotonic() - t0, 1),
        orphans=orphans_after())


def _raw_invite(gport, cport, hold=False):
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {cport + 2} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
           "a=sendrecv\r\n")
    return (f"INVITE sip:guard@127.0.0.1:{gport} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{random.getrandbits(40)}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:cust@127.0.0.1>;tag=ct1\r\nTo: <sip:guard@127.0.0.1>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@x\r\nCSeq: 1 INVITE\r\nContact: <sip:cust@127.0.0.1:{cport}>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def _collect(s, secs):
    got = []
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            d, _ = s.recvfrom(65535)
            got.append(d.split(b"\r\n", 1)[0].decode(errors="replace"))
        except socket.timeout:
            pass
    return got


def s_stop_with_call(state: str, workers: int):
    """state: unacknowledged (raw customer never ACKs the 200) | ringing (agent never answers)."""
    base = ports()
    a = agent(base + 90, no_answer=(state == "ringing"))
    args = ["--listen", f"127.0.0.1:{base}", "--agent", f"sip:agent@127.0.0.1:{base + 90}", "--rtp-port",
            str(base * 2 % 50000 + 10000)] + (["--workers", str(workers)] if workers > 1 else [])
    p = serve(args)
    read_ready(p, 30)
    time.sleep(2.5)  # before issue 18 'ready' came before the workers listened
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", base + 150))
    s.settimeout(0.2)
    s.sendto(_raw_invite(base, base + 150), ("127.0.0.1", base))
    before = _collect(s, 2.0)
    rc, secs = stop(p)
    after = _collect(s, 3.0)
    a.send_signal(signal.SIGTERM)
    a.wait(15)
    final = sorted({x for x in after if x.startswith(("SIP/2.0 4", "SIP/2.0 5", "SIP/2.0 6", "BYE"))})
    p.err.seek(0)
    aborts = p.err.read().count("Assertion")
    row(f"stop, call {state}, workers={workers}", got_before=sorted(set(before))[-1:] if before else [],
        exit=rc, pjsua_aborts=aborts, secs=secs, customer_got_after=final, orphans=orphans_after())


def s_stop_agent_silent():
    """The agent never answers the guard's INVITE at all (no 100/180): stop while its leg is CALLING."""
    base = ports()
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", base + 90))
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", f"sip:agent@127.0.0.1:{base + 90}"])
    read_ready(p, 30)
    time.sleep(2.5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", base + 150))
    s.settimeout(0.2)
    s.sendto(_raw_invite(base, base + 150), ("127.0.0.1", base))
    _collect(s, 1.5)
    rc, secs = stop(p)
    after = sorted({x for x in _collect(s, 2.0) if not x.startswith("SIP/2.0 1")})
    p.err.seek(0)
    row("stop, agent leg CALLING (silent agent)", exit=rc, pjsua_aborts=p.err.read().count("Assertion"), secs=secs,
        customer_got_after=after, orphans=orphans_after())
    hole.close()


def s_stop_reinvite_pending():
    """The agent holds; the guard relays the hold to a customer that ignores re-INVITEs: stop meanwhile."""
    import re as _re

    base = ports()
    a = subprocess.Popen([PY, "-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(base + 90), "--rtp", str(base + 190),
                          "--timeout", "90", "--calls", "0", "--hold-at", "1", "--hold-s", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    a.stdout.readline()
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", f"sip:agent@127.0.0.1:{base + 90}", "--rtp-port",
               str(base * 2 % 50000 + 10000)])
    read_ready(p, 30)
    time.sleep(2.5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", base + 150))
    s.settimeout(0.2)
    invite = _raw_invite(base, base + 150).decode()
    s.sendto(invite.encode(), ("127.0.0.1", base))
    callid = _re.search(r"Call-ID: (\S+)", invite).group(1)
    reinvites, t0, acked = 0, time.monotonic(), False
    while time.monotonic() - t0 < 5:
        try:
            m = s.recv(65535).decode()
        except socket.timeout:
            continue
        if m.startswith("SIP/2.0 200") and not acked:
            to = _re.search(r"(?im)^To: (.*)$", m).group(1).strip()
            contact = _re.search(r"(?im)^Contact: <([^>]*)>", m).group(1)
            s.sendto((f"ACK {contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{base + 150};branch=z9hG4bK{uuid.uuid4().hex}"
                      f"\r\nMax-Forwards: 70\r\nFrom: <sip:cust@127.0.0.1>;tag=ct1\r\nTo: {to}\r\nCall-ID: {callid}\r\n"
                      "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", base))
            acked = True
        elif m.startswith("INVITE "):
            reinvites += 1
    rc, secs = stop(p)
    after = sorted({x for x in _collect(s, 2.0) if x.startswith(("BYE", "SIP/2.0 5"))})
    a.send_signal(signal.SIGTERM)
    a.wait(15)
    p.err.seek(0)
    row("stop, hold re-INVITE unanswered", reinvites_seen=reinvites, exit=rc,
        pjsua_aborts=p.err.read().count("Assertion"), secs=secs, customer_got_after=after, orphans=orphans_after())


def s_health_503():
    base = ports()
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999", "--workers", "2", "--control",
               f"127.0.0.1:{base + 50}"])
    read_ready(p, 30)
    time.sleep(2.5)

    def health():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{base + 50}/health", timeout=3) as r:
                return r.status, json.loads(r.read())["ok"]
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())["ok"]

    ok = health()
    wpid = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{base + 50}/workers", timeout=3).read()
                      )["workers"][1]["pid"] if ok else None
    if wpid:
        os.kill(wpid, signal.SIGKILL)
    time.sleep(0.5)
    down = health()
    rc, _ = stop(p)
    row("/health with a worker killed", healthy=ok, after_kill=down, exit=rc, orphans=orphans_after())


def s_sd_notify():
    base = ports()
    path = os.path.join(TMP, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    p = serve(["--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999", "--workers", "2"],
              extra_env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    t0 = time.monotonic()
    msgs, ready_at, answering = [], None, None
    while time.monotonic() - t0 < 12:
        try:
            m = sock.recv(4096).decode()
            msgs.append(m)
            if "READY=1" in m and ready_at is None:
                ready_at = time.monotonic() - t0
                answering = sum(options_answered("127.0.0.1", base + 10 * i) for i in range(2))
        except socket.timeout:
            pass
        if ready_at is not None and time.monotonic() - t0 > ready_at + 3:
            break
    rc, _ = stop(p)
    try:
        while True:
            msgs.append(sock.recv(4096).decode())
    except OSError:
        pass
    sock.close()
    row("sd_notify (NOTIFY_SOCKET, WatchdogSec=1)", ready=None if ready_at is None else round(ready_at, 2),
        workers_answering_at_READY=answering, watchdog_pings=sum("WATCHDOG=1" in m for m in msgs),
        stopping=any("STOPPING=1" in m for m in msgs), exit=rc, orphans=orphans_after())


SCENARIOS = [s_control_taken, s_address_not_on_host, s_sigkill_supervisor, s_ready_timing, s_single_stdout,
             s_payment_typo, lambda: s_stop_with_call("unacknowledged", 1), lambda: s_stop_with_call("unacknowledged", 2),
             lambda: s_stop_with_call("ringing", 2), s_stop_agent_silent, s_stop_reinvite_pending, s_health_503,
             s_sd_notify, s_garbage_tls_certificate]

if __name__ == "__main__":
    import dtmfguard

    print(f"dtmfguard from {os.path.dirname(dtmfguard.__file__)}", flush=True)
    only = sys.argv[1:]
    for i, fn in enumerate(SCENARIOS):
        if only and str(i) not in only:
            continue
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one scenario's failure is a row, not the end of the run
            row(getattr(fn, "__name__", f"scenario {i}"), error=f"{type(exc).__name__}: {exc}")
            orphans_after(2)
