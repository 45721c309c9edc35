# SPDX-License-Identifier: GPL-2.0-or-later
"""End a dead worker's calls on its behalf: a minimal stateless SIP client in pure Python.

Why: when a worker dies its customer and agent stay connected to nothing (the
customer hears silence, the agent's desktop waits) until RFC 4028 session
timers expire, 90 s later.  The supervisor reads the dialogs the worker
recorded (:mod:`dtmfguard.sip.dialogs`) and, for each leg:

* **answered** (a 2xx was sent or received): an in-dialog **BYE** built as
  RFC 3261 §12.2.1.1 says (Request-URI = remote target, Route = route set,
  or the strict-routing form; From/To with the recorded tags; a CSeq above
  anything the worker can have sent: pjsip starts a dialog's CSeq below 0x8000,
  so ``max(last seen, 0x7FFF) + 101``), with ``Reason: Q.850;cause=41``
  (temporary failure, RFC 3326) so the peer can tell a lost worker from a
  hang-up;
* **customer still ringing** (the guard is UAS, no 2xx yet): the final response
  the dead INVITE server transaction never sent, **503** (§21.5.4: a proxy in
  front, e.g. the Kamailio dispatcher, fails the call over to another worker),
  sent to the INVITE's source as §18.2.2 and RFC 3581 say and repeated like
  Timer G until the customer's ACK (which comes to the worker's address);
* **agent still ringing** (the guard is UAC): a **CANCEL** (§9.1) rebuilt from
  the recorded INVITE (same Request-URI, top Via and branch, Call-ID, From,
  To, CSeq number), which the agent's INVITE server transaction matches
  (§17.2.3); its 487 is ACKed when it reaches us.

UDP is sent from the dead worker's own SIP address when it is free (it is: the
worker is gone and the supervisor restarts it only afterwards), so responses
addressed to the worker's Via (487, the customer's ACK) arrive here; otherwise
from an ephemeral port.  Requests are retransmitted with Timer E (0.5 s
doubling, §17.1.2.2) until a final response or ``timeout_s``.  TCP opens a new
connection per leg.  Not supported: TLS legs (reported as ``skipped``), DNS
SRV/NAPTR (hosts are resolved with ``getaddrinfo``).  Nothing here imports
pjsua2, and nothing here sees card data: records hold dialog identifiers only.
"""
from __future__ import annotations

import logging
import re
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass, field

from .dialogs import LegRecord, parse_head, split_header_list, tag_of, uri_of

__all__ = ["end_legs", "build_bye", "build_cancel", "build_reject", "hop_of"]

log = logging.getLogger(__name__)

T1_S = 0.5
T2_S = 4.0
#: pjsip starts each dialog's local CSeq at pj_rand() & 0x7FFF (sip_dialog.c)
_PJSIP_FIRST_CSEQ_MAX = 0x7FFF
_USER_AGENT = "dtmfguard-supervisor"


def _branch() -> str:
    return "z9hG4bK-dg" + secrets.token_hex(10)


def hop_of(uri: str, default_transport: str = "udp") -> tuple[str, int, str]:
    """``(host, port, transport)`` to send to for a SIP URI (RFC 3263 without DNS SRV)."""
    m = re.match(r"^\s*(sips?):(?:[^@;?]*@)?(\[[0-9A-Fa-f:.]+\]|[^:;?>\s]+)(?::(\d+))?(.*)$", uri)
    if not m:
        raise ValueError(f"not a SIP URI: {uri[:80]!r}")
    scheme, host, port, rest = m.groups()
    t = re.search(r";\s*transport\s*=\s*([A-Za-z]+)", rest or "")
    transport = (t.group(1) if t else ("tls" if scheme == "sips" else default_transport)).lower()
    default_port = 5061 if transport == "tls" else 5060
    return host.strip("[]"), int(port) if port else default_port, transport


def _join(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _via(transport: str, host: str, port: int, branch: str) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"Via: SIP/2.0/{transport.upper()} {host}:{port};rport;branch={branch}"


def bye_cseq(rec: LegRecord) -> int:
    return min(max(rec.local_cseq, _PJSIP_FIRST_CSEQ_MAX) + 101, 2 ** 31 - 1)


def build_bye(rec: LegRecord, via_host: str, via_port: int, branch: str) -> tuple[bytes, tuple[str, int, str]]:
    """An in-dialog BYE for an answered leg and the hop to send it to (RFC 3261 §12.2.1.1)."""
    routes = list(rec.route_set)
    if routes and not re.search(r";\s*lr(?:[;=>\s]|$)", uri_of(routes[0]), re.IGNORECASE):
        ruri = uri_of(routes[0])  # strict router: it becomes the Request-URI, the target the last Route
        routes = routes[1:] + [f"<{rec.remote_target}>"]
        hop = ruri
    else:
        ruri = rec.remote_target
        hop = uri_of(routes[0]) if routes else ruri
    host, port, transport = hop_of(hop, rec.transport)
    lines = [f"BYE {ruri} SIP/2.0", _via(transport, via_host, via_port, branch), "Max-Forwards: 70"]
    lines += [f"Route: {r}" for r in routes]
    lines += [f"From: {rec.local}", f"To: {rec.remote}", f"Call-ID: {rec.call_id}", f"CSeq: {bye_cseq(rec)} BYE",
              'Reason: Q.850;cause=41;text="dtmfguard worker lost"', f"User-Agent: {_USER_AGENT}",
              "Content-Length: 0"]
    return _join(lines), (host, port, transport)


def build_cancel(rec: LegRecord) -> tuple[bytes, tuple[str, int, str]]:
    """CANCEL of the agent leg's unanswered INVITE, matching its server transaction (§9.1, §17.2.3)."""
    hop = uri_of(rec.invite_routes[0]) if rec.invite_routes else rec.invite_ruri
    host, port, transport = hop_of(hop, rec.transport)
    lines = [f"CANCEL {rec.invite_ruri} SIP/2.0", f"Via: {rec.invite_vias[0]}", "Max-Forwards: 70"]
    lines += [f"Route: {r}" for r in rec.invite_routes]
    lines += [f"From: {rec.local}", f"To: {rec.invite_to}", f"Call-ID: {rec.call_id}",
              f"CSeq: {rec.invite_cseq} CANCEL", 'Reason: Q.850;cause=41;text="dtmfguard worker lost"',
              f"User-Agent: {_USER_AGENT}", "Content-Length: 0"]
    return _join(lines), (host, port, transport)


def _ack_for(rec: LegRecord, to_value: str) -> bytes:
    """ACK of a non-2xx final response to the agent INVITE: same branch as the INVITE (§17.1.1.3)."""
    lines = [f"ACK {rec.invite_ruri} SIP/2.0", f"Via: {rec.invite_vias[0]}", "Max-Forwards: 70"]
    lines += [f"Route: {r}" for r in rec.invite_routes]
    lines += [f"From: {rec.local}", f"To: {to_value}", f"Call-ID: {rec.call_id}", f"CSeq: {rec.invite_cseq} ACK",
              "Content-Length: 0"]
    return _join(lines)


def build_reject(rec: LegRecord, code: int = 503) -> tuple[bytes, tuple[str, int, str]]:
    """The final response the customer's INVITE never got, and where it goes (§18.2.2, RFC 3581)."""
    top = rec.invite_vias[0]
    m = re.match(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)\s+(\[[^\]]+\]|[^:;\s]+)(?::(\d+))?", top)
    if not m:
        raise ValueError("unparseable Via")
    transport, sent_host, sent_port = m.group(1).lower(), m.group(2).strip("[]"), int(m.group(3) or 5060)
    src_host, _, src_port = rec.peer_addr.rpartition(":")
    host = src_host.strip("[]") or sent_host
    port = int(src_port) if (src_port and transport == "udp" and ";rport" in top.replace(" ", "")) else sent_port
    to = rec.local if tag_of(rec.local) else f"{rec.invite_to};tag={secrets.token_hex(8)}"
    vias = list(rec.invite_vias)
    if src_host:
        vias[0] += f";received={host}"
    reason = {503: "Service Unavailable", 480: "Temporarily Unavailable"}.get(code, "Server Error")
    lines = [f"SIP/2.0 {code} {reason}"] + [f"Via: {v}" for v in vias]
    lines += [f"From: {rec.remote}", f"To: {to}", f"Call-ID: {rec.call_id}", f"CSeq: {rec.invite_cseq} INVITE",
              'Reason: Q.850;cause=41;text="dtmfguard worker lost"', f"Server: {_USER_AGENT}", "Content-Length: 0"]
    return _join(lines), (host, port, transport)


@dataclass
class _Job:
    rec: LegRecord
    action: str  # bye | cancel | reject
    data: bytes
    dest: tuple[str, int, str]
    branch: str
    result: str = ""
    code: int = 0
    started: float = field(default_factory=time.monotonic)
    done_at: float = 0.0
    next_send: float = 0.0
    interval: float = T1_S
    sent: int = 0
    ack: bytes = b""

    def finish(self, result: str, code: int = 0) -> None:
        if not self.done_at:
            self.result, self.code, self.done_at = result, code, time.monotonic()

    def report(self) -> dict:
        return {"leg": self.rec.key, "action": self.action, "transport": self.dest[2],
                "result": self.result or ("cancel-answered" if self.code else "timeout"), "code": self.code, "sent": self.sent,
                "elapsed_s": round((self.done_at or time.monotonic()) - self.started, 3)}


def _top_branch(headers: dict) -> str:
    vias = split_header_list(headers.get("via", []))
    m = re.search(r";\s*branch\s*=\s*([^;\s,]+)", vias[0]) if vias else None
    return m.group(1) if m else ""


def _plan(rec: LegRecord, via_host: str, via_port: int) -> _Job | None:
    if rec.confirmed and rec.call_id and tag_of(rec.local) and tag_of(rec.remote) and rec.remote_target:
        branch = _branch()
        data, dest = build_bye(rec, via_host, via_port, branch)
        return _Job(rec, "bye", data, dest, branch)
    if not rec.confirmed and rec.uas and rec.invite_vias and rec.call_id:
        data, dest = build_reject(rec)
        return _Job(rec, "reject", data, dest, _top_branch({"via": rec.invite_vias}))
    if not rec.confirmed and not rec.uas and rec.invite_vias and rec.invite_ruri:
        data, dest = build_cancel(rec)
        return _Job(rec, "cancel", data, dest, _top_branch({"via": rec.invite_vias}))
    return None


def _on_message(job: _Job, start: str, headers: dict, send) -> None:
    number, method = (headers.get("cseq", ["0 "])[0].split(None, 1) + [""])[:2]
    method = method.strip().upper()
    if job.action == "reject":
        if start.startswith("ACK "):
            job.finish("acked")
        return
    if not start.startswith("SIP/"):
        return
    try:
        code = int(start.split()[1])
    except (IndexError, ValueError):
        return
    if job.action == "bye" and method == "BYE" and code >= 200:
        job.finish("answered", code)
    elif job.action == "cancel" and method == "CANCEL" and code >= 200:
        job.code = code
        job.next_send = float("inf")  # the CANCEL is answered: stop retransmitting, wait for the 487
    elif job.action == "cancel" and method == "INVITE" and code >= 300:
        send(_ack_for(job.rec, headers.get("to", [job.rec.invite_to])[0]))
        job.finish("cancelled", code)
    elif job.action == "cancel" and method == "INVITE" and code >= 200:
        # answered at the very moment its caller died: this leg now needs a BYE (not sent: no ACK state)
        job.finish("answered-while-cancelling", code)


def _resolve(dest: tuple[str, int, str]) -> tuple:
    family, _, _, _, addr = socket.getaddrinfo(dest[0], dest[1], type=socket.SOCK_DGRAM)[0]
    return family, addr


def _run_udp(jobs: list[_Job], sock: socket.socket, deadline: float) -> None:
    addrs = {}
    for job in jobs:
        try:
            addrs[id(job)] = _resolve(job.dest)[1]
        except OSError as exc:
            job.finish(f"unreachable ({type(exc).__name__})")
    while True:
        now = time.monotonic()
        live = [j for j in jobs if not j.done_at]
        if not live or now >= deadline:
            return
        for job in live:
            if now >= job.next_send:
                try:
                    sock.sendto(job.data, addrs[id(job)])
                    job.sent += 1
                except OSError as exc:
                    log.info("%s: %s not sent (%s)", job.rec.key, job.action, type(exc).__name__)
                job.next_send = now + job.interval
                job.interval = min(job.interval * 2, T2_S)
                if job.action == "reject" and job.sent >= 1 and not job.result:
                    job.result = "sent"  # an ACK, if it reaches us, makes it "acked"
        wait = max(0.0, min([j.next_send for j in live] + [deadline]) - time.monotonic())
        ready, _, _ = select.select([sock], [], [], min(wait, 0.25))
        if not ready:
            continue
        try:
            raw, src = sock.recvfrom(65535)
        except OSError:
            continue
        start, headers = parse_head(raw.decode("utf-8", "replace"))
        branch = _top_branch(headers)
        for job in live:
            if job.branch == branch:
                _on_message(job, start, headers, lambda data, src=src: sock.sendto(data, src))


def _run_tcp(job: _Job, local_host: str, deadline: float) -> None:
    try:
        family, addr = _resolve(job.dest)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            s.bind((local_host, 0))
            s.connect(addr)
            if job.action == "bye":  # the Via must name this connection's address
                via_host, via_port = s.getsockname()[:2]
                job.data, _ = build_bye(job.rec, via_host, via_port, job.branch)
            s.sendall(job.data)
            job.sent = 1
            if job.action == "reject":
                job.finish("sent")
                return
            buf = b""
            while not job.done_at and time.monotonic() < deadline:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = s.recv(65535)
                if not chunk:
                    break
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    start, headers = parse_head(head.decode("utf-8", "replace") + "\r\n\r\n")
                    length = int((headers.get("content-length") or ["0"])[0] or 0)
                    buf = buf[length:]
                    if _top_branch(headers) == job.branch:
                        _on_message(job, start, headers, s.sendall)
    except OSError as exc:
        job.finish(f"unreachable ({type(exc).__name__})")


def end_legs(legs: list[LegRecord], timeout_s: float = 4.0) -> list[dict]:
    """End every recorded leg of a dead worker; return one report per leg (action, result, SIP code, time).
    Never raises: a leg that cannot be ended is reported as such (its peer's session timer remains)."""
    deadline = time.monotonic() + timeout_s
    reports: list[dict] = []
    udp_jobs: list[_Job] = []
    threads = []
    sock = None
    for rec in legs:
        try:
            if rec.transport == "tls":
                reports.append({"leg": rec.key, "action": "none", "result": "skipped (tls)", "code": 0})
                continue
            if rec.transport == "udp" and sock is None:
                sock = _udp_socket(rec.local_host, rec.local_port)
            if rec.transport == "udp":
                via_host, via_port = sock.getsockname()[:2]
            else:
                via_host, via_port = rec.local_host or "127.0.0.1", 0
            job = _plan(rec, via_host, via_port)
        except (OSError, ValueError, IndexError) as exc:
            reports.append({"leg": rec.key, "action": "none", "result": f"error ({type(exc).__name__})", "code": 0})
            continue
        if job is None:
            reports.append({"leg": rec.key, "action": "none", "result": "nothing to end", "code": 0})
        elif job.dest[2] == "tcp":
            t = threading.Thread(target=_run_tcp, args=(job, rec.local_host or "127.0.0.1", deadline),
                                 name="orphan-tcp", daemon=True)
            t.start()
            threads.append((t, job))
        elif job.dest[2] == "udp":
            udp_jobs.append(job)
        else:
            reports.append({"leg": rec.key, "action": job.action, "result": f"skipped ({job.dest[2]})", "code": 0})
    try:
        if udp_jobs:
            _run_udp(udp_jobs, sock, deadline)
    finally:
        if sock is not None:
            sock.close()
    for t, _ in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 0.5)
    reports += [j.report() for j in udp_jobs] + [j.report() for _, j in threads]
    for r in reports:
        log.info("orphaned leg %s: %s -> %s %s", r["leg"], r["action"], r["result"], r.get("code") or "")
    return reports


def _udp_socket(host: str, port: int) -> socket.socket:
    """The dead worker's own address if free (responses to its Via come here), else an ephemeral port."""
    host = host or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
    except OSError:
        s.bind((host, 0))
    return s
