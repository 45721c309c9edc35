# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard serve`` with real pjsua2 workers, from start to stop (issue 18): it refuses to start on what
it cannot bind, leaves no worker behind when killed, keeps stdout to its ready line, ends calls in any
state (ringing, unacknowledged, on hold) and exits 0, and -vv never shows a card number."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest

from dtmfguard.server.procs import STOP_DEADLINE_S
from dtmfguard.server.supervisor import probe_listen

from sip_peers import PYTHON, Proc, free_port, process_alive, rtp_base, wait_until

pytestmark = [pytest.mark.sip, pytest.mark.slow]

PAN = "4111111111111111"


def _env(tmp_path) -> dict:
    return {"DTMFGUARD_API_TOKEN": "t" * 32, "DTMFGUARD_VAULT_KEY": "77" * 32,
            "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite3"), "RUNTIME_DIRECTORY": str(tmp_path)}


def _children(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.add(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _threads(pid: int) -> str:
    """Each thread of ``pid``: name, state, scheduling policy and where it waits (for a failure's message)."""
    out = []
    try:
        for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                try:
                    with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                        wchan = f.read().strip()
                except OSError:  # a worker is not ptrace-dumpable (security.harden_process)
                    wchan = "?"
                # stat fields after the name: state is [0], utime/stime [11]/[12], policy [38]
                out.append(f"{comm}:{fields[0]} policy={fields[38]} cpu={fields[11]}+{fields[12]} wchan={wchan}")
            except (OSError, IndexError):
                pass
    except OSError:
        return f"pid {pid} gone"
    return f"pid {pid}: " + "; ".join(out)


def _options(port: int, timeout: float = 1.0) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        lp = s.getsockname()[1]
        s.sendto((f"OPTIONS sip:guard@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK"
                  f"{uuid.uuid4().hex}\r\nMax-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:g@127.0.0.1>\r\n"
                  f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(),
                 ("127.0.0.1", port))
        try:
            return s.recv(4096).startswith(b"SIP/2.0 ")
        except OSError:
            return False


def test_ready_means_listening_and_sigkill_leaves_no_worker(tmp_path):
    base, ctl = free_port(), free_port()
    sup = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{base}", "--agent", "sip:a@127.0.0.1:5999",
                "--workers", "2", "--rtp-port", str(rtp_base()), "--control", f"127.0.0.1:{ctl}"],
               "supervisor", tmp_path, env=_env(tmp_path))
    workers: set[int] = set()
    try:
        sup.wait_ready(30)
        # no sleep: the ready line means every worker answers SIP now
        assert _options(base) and _options(base + 10)
        assert sup.lines() == [f"ready workers=2 sip=127.0.0.1:{base},127.0.0.1:{base + 10} "
                               f"control=http://127.0.0.1:{ctl}"]
        workers = _children(sup.p.pid)
        assert len(workers) == 2
        sup.p.kill()
        sup.p.wait(5)
        # ~3 s here; a worker's own watch (server.procs.exit_watch) bounds it at STOP_DEADLINE_S, stuck or not
        if not wait_until(lambda: not any(process_alive(p) for p in workers), STOP_DEADLINE_S + 10):
            left = [_threads(p) for p in workers if process_alive(p)]
            pytest.fail(f"workers outlived a SIGKILLed supervisor by {STOP_DEADLINE_S + 10:.0f} s: " + " | ".join(left)
                        + "\nlog: " + sup.err_path.read_text()[-3000:])
        for port in (base, base + 10):
            assert probe_listen("127.0.0.1", port, "udp") == ""
    finally:
        sup.stop()
        for p in workers:
            if process_alive(p):  # never leave an orphan holding ports for the tests after this one
                os.kill(p, signal.SIGKILL)


def test_refuses_to_start_on_what_it_cannot_bind(tmp_path):
    base, ctl = free_port(), free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ctl))
        holder.listen()
        t0 = time.monotonic()
        r = subprocess.run([PYTHON, "-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{base}", "--agent",
                            "sip:a@127.0.0.1:5999", "--workers", "2", "--control", f"127.0.0.1:{ctl}"],
                           capture_output=True, text=True, timeout=60, env={**os.environ, **_env(tmp_path)})
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.strip() == (f"dtmfguard: cannot start: cannot serve the control endpoint on 127.0.0.1:{ctl} "
                                f"(error while attempting to bind on address ('127.0.0.1', {ctl}): address already "
                                "in use)")
    assert time.monotonic() - t0 < 10
    assert not list(tmp_path.glob("dtmfguard-run-*"))  # no run directory, no worker ever started
    # an address this host does not have: a configuration problem, found before anything starts
    r = subprocess.run([PYTHON, "-m", "dtmfguard", "serve", "--listen", f"10.255.255.1:{base}", "--agent",
                        "sip:a@127.0.0.1:5999", "--workers", "2"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == "dtmfguard: sip.listen: 10.255.255.1 is not an address of this host"


def _invite(gport: int, cport: int) -> bytes:
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {cport + 2} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
    return (f"INVITE sip:guard@127.0.0.1:{gport} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{uuid.uuid4().hex}\r\nMax-Forwards: 70\r\n"
            "From: <sip:cust@127.0.0.1>;tag=ct1\r\nTo: <sip:guard@127.0.0.1>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@test\r\nCSeq: 1 INVITE\r\nContact: <sip:cust@127.0.0.1:{cport}>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def _ok_for(request: bytes) -> bytes:
    head = request.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    keep = [h for h in head[1:] if re.match(r"(?i)(via|from|to|call-id|cseq):", h)]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


@pytest.mark.parametrize("state", ["unacknowledged", "ringing"])
def test_stop_with_a_raw_customer_call(tmp_path, state):
    """A customer that never ACKs the 200 (the ACK lost behind a proxy): before issue 18 stopping serve
    aborted the worker (pjsua_call_set_user_data assertion).  Now: exit 0 and the customer gets a BYE; a
    call still ringing gets 503 (another guard may take it), the agent a CANCEL."""
    gport, aport = free_port(), free_port()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--timeout", "60", "--calls", "0"] + (["--no-answer"] if state == "ringing" else []),
                 "agent", tmp_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's side of sd_notify
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(0.1)
    guard = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{gport}", "--agent",
                  f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(rtp_base())], "guard", tmp_path,
                 env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "500000"})
    cust = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        agent.wait_ready()
        guard.wait_ready()
        cust.bind(("127.0.0.1", 0))
        cust.settimeout(0.2)
        cust.sendto(_invite(gport, cust.getsockname()[1]), ("127.0.0.1", gport))
        want = b"SIP/2.0 200" if state == "unacknowledged" else b"SIP/2.0 180"
        deadline = time.monotonic() + 10
        seen = []
        while time.monotonic() < deadline and not any(m.startswith(want) for m in seen):
            try:
                seen.append(cust.recv(65535))
            except socket.timeout:
                pass
        assert any(m.startswith(want) for m in seen), seen
        guard.p.send_signal(signal.SIGTERM)
        got = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and guard.p.poll() is None or time.monotonic() < deadline - 12:
            try:
                msg = cust.recv(65535)
            except socket.timeout:
                continue
            got.append(msg.split(b"\r\n", 1)[0].decode())
            if msg.startswith(b"BYE "):
                cust.sendto(_ok_for(msg), ("127.0.0.1", gport))
        rc = guard.p.wait(20)
        notes = []
        while True:
            try:
                notes.append(notify.recv(4096).decode())
            except OSError:
                break
    finally:
        notify.close()
        cust.close()
        rc_guard = guard.stop()
        agent.stop()
    assert rc == 0 and rc_guard == 0, guard.err_path.read_text()[-3000:]
    assert "Assertion" not in guard.output()
    assert notes[0] == f"READY=1\nSTATUS=sip=127.0.0.1:{gport} rtp={guard.lines()[0].split('rtp=')[1]}", notes
    assert notes.count("WATCHDOG=1") >= 1 and notes[-1] == "STOPPING=1\nSTATUS=stopping", notes
    if state == "unacknowledged":
        assert any(g.startswith("BYE ") for g in got), got
        err = guard.err_path.read_text()
        assert "1 unacknowledged (BYE after stop)" in err and "c1/customer: bye -> answered 200" in err, err
    else:
        assert "SIP/2.0 503 Service Unavailable" in got, got
        calls = [e for e in agent.events() if e.get("event") == "state" and e.get("state") == "DISCONNECTED"]
        assert calls and calls[0]["status"] == 487, agent.events()  # the agent leg was CANCELled
    assert guard.lines()[0].startswith("ready ") and len(guard.lines()) == 1  # nothing of pjsip on stdout


def test_stop_while_on_hold_and_vv_never_shows_the_pan(tmp_path):
    """Two workers, -vv, a call whose customer types the test PAN (RFC 4733 and SIP INFO) and then holds:
    stopping serve ends the held call (both peers see it end) and exits 0; no output holds the PAN."""
    base, aport, ctl = free_port(), free_port(), free_port()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--timeout", "90", "--calls", "0", "--hold-at", "4", "--hold-s", "60"], "agent", tmp_path)
    sup = Proc(["-m", "dtmfguard", "-vv", "serve", "--listen", f"127.0.0.1:{base}", "--agent",
                f"sip:agent@127.0.0.1:{aport}", "--workers", "2", "--rtp-port", str(rtp_base()),
                "--control", f"127.0.0.1:{ctl}"], "supervisor", tmp_path, env=_env(tmp_path))
    customer = None
    try:
        agent.wait_ready()
        sup.wait_ready(30)
        customer = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                         str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{base}", "--rfc2833", PAN[:8],
                         "--info-dtmf", PAN[8:], "--digit-ms", "80", "--tail-s", "60", "--timeout", "80"],
                        "customer", tmp_path)
        assert agent.wait_for(lambda s: '"hold"' in s, 40), agent.output()[-2000:]  # digits sent, then held
        time.sleep(1)
        rc = sup.stop(30)
        assert customer.wait(20) is not None
    finally:
        if customer is not None:
            customer.stop()
        agent.stop()
    assert rc == 0, sup.err_path.read_text()[-3000:]
    ends = [e for e in customer.events() if e.get("event") == "state" and e.get("state") == "DISCONNECTED"]
    assert ends, customer.output()[-2000:]
    everything = sup.output() + customer.output() + agent.output()
    for tmp in tmp_path.rglob("*"):
        if tmp.is_file() and tmp.suffix not in (".wav", ".sqlite3"):
            everything += tmp.read_text(errors="replace")
    assert "DEBUG" in sup.err_path.read_text()  # -vv reached the workers
    assert PAN not in everything and "4111 1111 1111 1111" not in everything
    assert not re.search(rf"(?<![0-9]){PAN[:8]}(?![0-9])", everything)
    assert not re.search(rf"(?<![0-9A-Fa-f]){PAN[8:]}(?![0-9A-Fa-f])", everything)
    assert "Assertion" not in everything
    assert [line for line in sup.lines() if line] == [
        f"ready workers=2 sip=127.0.0.1:{base},127.0.0.1:{base + 10} control=http://127.0.0.1:{ctl}"]
