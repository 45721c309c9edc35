# SPDX-License-Identifier: GPL-2.0-or-later
"""SDP offer/answer rewriting for the relay (RFC 4566 syntax, RFC 3264 offer/answer).

The relay puts itself in the media path by rewriting each SDP it is handed: the connection address
(``c=``) and the audio port (``m=``) become the relay's, ``a=rtcp`` points at the relay's RTCP port,
an SDES key (``a=crypto``) is replaced by the relay's own (see :mod:`.srtp`), and everything the relay
cannot honour is removed: ICE (candidates, ufrag/pwd: the relay is the
endpoint now), DTLS fingerprints, ``a=rtcp-mux``, SSRC attributes (the agent sees the relay's own
stream), and every codec but PCMU, PCMA, G.722 (if the codec is available) and telephone-event.
Further audio streams and non-audio streams are refused with port 0, as RFC 3264 §6 prescribes.

Errors are :class:`SdpError` with a message that names the problem, never quoting the body.
"""
from __future__ import annotations

import dataclasses

__all__ = ["SdpError", "AudioOffer", "parse_audio", "rewrite", "STATIC_PT", "KEPT_CODECS"]

#: RFC 3551 static payload types the relay handles.
STATIC_PT = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}
#: Codecs kept in a rewritten SDP (encoding names, upper case).
KEPT_CODECS = ("PCMU", "PCMA", "G722", "TELEPHONE-EVENT")
MAX_SDP_BYTES = 64 * 1024

_ICE_ATTRS = ("candidate", "ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "ice-mismatch",
              "remote-candidates", "end-of-candidates", "ice-pacing")
_DROP_ATTRS = _ICE_ATTRS + ("fingerprint", "setup", "rtcp-mux", "rtcp-rsize", "ssrc", "ssrc-group", "msid",
                            "mid", "group", "msid-semantic", "extmap", "extmap-allow-mixed", "rtcp-fb", "crypto",
                            "tls-id")


class SdpError(ValueError):
    """An SDP the relay cannot use."""


@dataclasses.dataclass
class AudioOffer:
    """What the relay needs from one side's SDP."""

    address: str  # where that side receives RTP
    port: int
    rtcp_port: int
    proto: str
    codecs: dict[int, tuple[str, int]]  # payload type -> (encoding upper case, clock rate), kept ones only
    event_pts: tuple[int, ...]  # telephone-event payload types
    direction: str  # sendrecv / sendonly / recvonly / inactive
    has_crypto: bool
    ptime_ms: int
    crypto: tuple[str, ...] = ()  # the a=crypto values (SDES, RFC 4568), in order

    @property
    def secure(self) -> bool:
        return "SAVP" in self.proto.upper()

    @property
    def audio_pts(self) -> tuple[int, ...]:
        return tuple(pt for pt, (enc, _) in self.codecs.items() if enc != "TELEPHONE-EVENT")


def _lines(sdp: str | bytes) -> list[str]:
    if isinstance(sdp, (bytes, bytearray)):
        if len(sdp) > MAX_SDP_BYTES:
            raise SdpError("SDP too large")
        sdp = bytes(sdp).decode("utf-8", "replace")
    if not isinstance(sdp, str) or not sdp.strip():
        raise SdpError("empty SDP")
    if len(sdp) > MAX_SDP_BYTES:
        raise SdpError("SDP too large")
    lines = [ln for ln in sdp.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln]
    if not lines[0].startswith("v="):
        raise SdpError("SDP does not start with v=")
    for ln in lines:
        if len(ln) < 2 or ln[1] != "=":
            raise SdpError("SDP line is not <type>=<value>")
    return lines


def _sections(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    session: list[str] = []
    media: list[list[str]] = []
    for ln in lines:
        if ln.startswith("m="):
            media.append([ln])
        elif media:
            media[-1].append(ln)
        else:
            session.append(ln)
    return session, media


def _conn_addr(lines: list[str]) -> str | None:
    for ln in lines:
        if ln.startswith("c="):
            parts = ln[2:].split()
            if len(parts) < 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
                raise SdpError("bad c= line")
            return parts[2].split("/")[0]
    return None


def _direction(lines: list[str], default: str = "sendrecv") -> str:
    for ln in lines:
        if ln in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            return ln[2:]
    return default


def _rtpmaps(lines: list[str]) -> dict[int, tuple[str, int]]:
    maps: dict[int, tuple[str, int]] = {}
    for ln in lines:
        if ln.startswith("a=rtpmap:"):
            head, _, rest = ln[9:].partition(" ")
            try:
                pt = int(head)
                enc, _, rate = rest.strip().partition("/")
                maps[pt] = (enc.upper(), int(rate.split("/")[0]))
            except ValueError:
                raise SdpError("bad a=rtpmap line") from None
    return maps


def parse_audio(sdp: str | bytes, *, g722: bool = True) -> AudioOffer:
    """The first audio stream of ``sdp``, restricted to the codecs the relay keeps."""
    session, media = _sections(_lines(sdp))
    sess_addr = _conn_addr(session)
    sess_dir = _direction(session)
    for sec in media:
        m = sec[0][2:].split()
        if len(m) < 4 or m[0] != "audio":
            continue
        try:
            port = int(m[1].split("/")[0])
            pts = [int(p) for p in m[3:]]
        except ValueError:
            raise SdpError("bad m= line") from None
        if not 0 <= port <= 65535:
            raise SdpError("m= port out of range")
        if port == 0:
            continue
        addr = _conn_addr(sec[1:]) or sess_addr
        if not addr:
            raise SdpError("no connection address (c=) for the audio stream")
        maps = _rtpmaps(sec[1:])
        codecs: dict[int, tuple[str, int]] = {}
        for pt in pts:
            enc = maps.get(pt) or STATIC_PT.get(pt)
            if enc is None:
                continue
            name, rate = enc
            if name in ("PCMU", "PCMA") and rate == 8000 or name == "G722" and g722 and rate == 8000 \
                    or name == "TELEPHONE-EVENT" and rate == 8000:
                codecs[pt] = (name, rate)
        if not any(enc != "TELEPHONE-EVENT" for enc, _ in codecs.values()):
            raise SdpError("no supported audio codec offered (PCMU, PCMA" + (", G722" if g722 else "") + ")")
        rtcp = port + 1
        ptime = 20
        for ln in sec[1:]:
            if ln.startswith("a=rtcp:"):
                try:
                    rtcp = int(ln[7:].split()[0])
                except (ValueError, IndexError):
                    raise SdpError("bad a=rtcp line") from None
            elif ln.startswith("a=ptime:"):
                try:
                    ptime = max(10, min(int(float(ln[8:].strip())), 60))
                except ValueError:
                    raise SdpError("bad a=ptime line") from None
        return AudioOffer(addr, port, rtcp, m[2], codecs,
                          tuple(pt for pt, (e, _) in codecs.items() if e == "TELEPHONE-EVENT"),
                          _direction(sec[1:], sess_dir), any(ln.startswith("a=crypto:") for ln in sec[1:]), ptime,
                          tuple(ln[9:] for ln in sec[1:] if ln.startswith("a=crypto:")))
    raise SdpError("no audio stream in the SDP")


def rewrite(sdp: str | bytes, address: str, port: int, *, g722: bool = True, replace_origin: bool = True,
            proto: str | None = None, crypto_line: str | None = None) -> str:
    """``sdp`` with the relay's ``address``/``port`` for its first audio stream (see module doc)."""
    offer = parse_audio(sdp, g722=g722)
    session, media = _sections(_lines(sdp))
    family = "IP6" if ":" in address else "IP4"
    out: list[str] = []
    for ln in session:
        if ln.startswith("c="):
            out.append(f"c=IN {family} {address}")
        elif ln.startswith("o=") and replace_origin:
            parts = ln[2:].split()
            if len(parts) >= 6:
                parts[4], parts[5] = family, address
                ln = "o=" + " ".join(parts)
            out.append(ln)
        elif ln.startswith("a=") and ln[2:].split(":")[0] in _DROP_ATTRS:
            continue
        else:
            out.append(ln)
    if not any(ln.startswith("c=") for ln in session):
        # the connection address was media-level only: put the relay's at session level after t=/s=
        idx = next((i for i, ln in enumerate(out) if ln.startswith("t=")), len(out))
        out.insert(idx, f"c=IN {family} {address}")
    done = False
    for sec in media:
        m = sec[0][2:].split()
        is_ours = not done and len(m) >= 4 and m[0] == "audio" and m[1].split("/")[0] != "0"
        if not is_ours:
            # refused (RFC 3264 §6): port 0, keep the format list so the line stays valid
            out.append("m=" + " ".join([m[0] if m else "audio", "0"] + m[2:]))
            continue
        done = True
        kept = [pt for pt in (int(p) for p in m[3:]) if pt in offer.codecs]
        out.append("m=" + " ".join(["audio", str(port), proto or m[2]] + [str(p) for p in kept]))
        for ln in sec[1:]:
            name = ln[2:].split(":")[0] if ln.startswith("a=") else ""
            if ln.startswith("c="):
                continue  # session level carries the relay's address
            if name in _DROP_ATTRS:
                continue
            if name in ("rtpmap", "fmtp"):
                try:
                    pt = int(ln.split(":", 1)[1].split()[0])
                except (ValueError, IndexError):
                    continue
                if pt not in offer.codecs:
                    continue
            if name == "rtcp":
                continue
            out.append(ln)
        out.append(f"a=rtcp:{port + 1}")
        if crypto_line:
            out.append(crypto_line)
    return "\r\n".join(out) + "\r\n"
