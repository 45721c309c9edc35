# SPDX-License-Identifier: GPL-2.0-or-later
"""RTP from the network is not trusted: each call's RTP/RTCP sockets accept only the negotiated peer.

pjmedia does symmetric RTP ("latching"): after a few packets from another address (PJMEDIA_RTP_NAT_
PROBATION_CNT) it moves the stream's *destination* to that address.  Measured on the code before this
module: RTP garbage sent to the guard's customer-side port from another host during a call moved the
agent->customer stream to the sender (250 packets of the agent's voice went to the injector, the real
customer lost 536 packets) and forged telephone-events from it were counted as digits.

The rule here (documented, tested): once a leg's media is active, its RTP and RTCP sockets are
``connect()``-ed to the remote addresses of the SDP negotiation (``StreamInfo.remoteRtpAddress`` /
``remoteRtcpAddress``).  The kernel then drops every datagram from any other source before pjmedia sees
it, at no CPU cost even under a flood, and pjmedia never latches: nothing is sent to an injector.  A
re-INVITE with a new address re-locks to it (the offer is signalled, so it is as trusted as the call);
hold to 0.0.0.0 keeps the previous lock.

Consequence: a customer whose SDP address is not where its RTP comes from (a NAT the carrier's SBC did
not fix) is not heard: fail closed.  Deploy the guard behind the SBC / rtpengine that anchors media, as a
contact centre does.  Forgery from the peer's own address (an on-path attacker) is what SRTP is for:
``media.customer_srtp`` (SECURITY.md).

Sockets are found by their local port in /proc/net/udp (Linux); anything that fails leaves the socket as it
was and is logged once per call.  Runs on the SIP thread (queued from ``onCallMediaState``).
"""
from __future__ import annotations

import logging
import os
import socket

__all__ = ["lock_call_media", "socket_fds_by_port", "parse_hostport"]

log = logging.getLogger(__name__)


def parse_hostport(text: str) -> tuple[str, int] | None:
    """'1.2.3.4:5000' or '[::1]:5000' -> (host, port); None for no address, port 0 or 0.0.0.0."""
    text = (text or "").strip()
    if not text or ":" not in text:
        return None
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not 0 < int(port) < 65536 or host in ("", "0.0.0.0", "::"):
        return None
    return host, int(port)


def socket_fds_by_port(ports: set[int]) -> dict[int, tuple[int, int]]:
    """{local UDP port: (fd, family)} for this process's sockets bound to those ports."""
    inodes: dict[str, tuple[int, int]] = {}
    for path, family in (("/proc/net/udp", socket.AF_INET), ("/proc/net/udp6", socket.AF_INET6)):
        try:
            with open(path) as fh:
                next(fh)
                for line in fh:
                    f = line.split()
                    port = int(f[1].rsplit(":", 1)[1], 16)
                    if port in ports:
                        inodes[f[9]] = (port, family)
        except OSError:
            continue
    out: dict[int, tuple[int, int]] = {}
    if not inodes:
        return out
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            hit = inodes.get(target[8:-1])
            if hit is not None:
                out[hit[0]] = (int(name), hit[1])
    return out


def _connect(fd: int, family: int, peer: tuple[str, int]) -> None:
    s = socket.fromfd(fd, family, socket.SOCK_DGRAM)  # a dup: connect() acts on the shared socket
    try:
        s.connect(peer)
    finally:
        s.close()


def lock_call_media(call, pj) -> int:
    """Lock every active audio stream of ``call`` to its negotiated peer; returns the sockets locked."""
    info = call.getInfo()
    locked = 0
    for idx, m in enumerate(info.media):
        if m.type != pj.PJMEDIA_TYPE_AUDIO or m.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
            continue
        try:
            si = call.getStreamInfo(idx)
            tp = call.getMedTransportInfo(idx)
        except pj.Error:
            continue
        pairs = []
        for local, remote in ((tp.localRtpName, si.remoteRtpAddress), (tp.localRtcpName, si.remoteRtcpAddress)):
            lp, rp = parse_hostport(local), parse_hostport(remote)
            if lp is not None and rp is not None:
                pairs.append((lp[1], rp))
        fds = socket_fds_by_port({p for p, _ in pairs})
        for port, peer in pairs:
            hit = fds.get(port)
            if hit is None:
                continue
            fd, family = hit
            try:
                if family == socket.AF_INET6 and ":" not in peer[0]:
                    peer = ("::ffff:" + peer[0], peer[1])
                _connect(fd, family, peer)
                locked += 1
            except OSError as exc:
                log.warning("RTP source lock failed on local port %d (%s)", port, exc.strerror or type(exc).__name__)
    return locked
