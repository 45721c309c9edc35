# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile-input generators and the contract each parser must keep.

Each target takes a seeded ``numpy.random.Generator``, builds one hostile
input, feeds it to the code under test and returns ``"ok"`` or
``"rejected:<ErrorType>"``.  Any other exception escapes: that is a bug.
Used by ``tests/test_fuzz.py`` (a few hundred cases) and by
``benchmarks/fuzz.py`` (time-bounded, thousands of cases).
"""
from __future__ import annotations

import hashlib
import io
import struct
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from dtmfguard.dsp.audio import AudioError, read_audio
from dtmfguard.dsp.detector import DtmfDetector
from dtmfguard.events import DIGITS
from dtmfguard.signalling.rfc4733 import Rfc4733Error, Rfc4733Tracker
from dtmfguard.signalling.sipinfo import SipInfoError, parse_info
from dtmfguard.testkit.synth import keypresses

_TMP = Path(tempfile.mkdtemp(prefix="dtmfguard-fuzz-"))


def _valid_wav(rng, subtype: str) -> bytes:
    x, _ = keypresses("4111", rng=rng, tone_ms=50, gap_ms=50)
    buf = io.BytesIO()
    data = x / 32768.0 if subtype in ("FLOAT", "DOUBLE") else np.round(x).astype(np.int16)
    sf.write(buf, data, int(rng.choice([8000, 16000, 44100])), format="WAV", subtype=subtype)
    return buf.getvalue()


def wav_file(rng) -> str:
    """A WAV mangled one of several ways; read_audio must return samples or raise AudioError, and never
    modify the file."""
    subtype = str(rng.choice(["PCM_16", "PCM_U8", "PCM_24", "FLOAT", "ULAW", "ALAW"]))
    raw = bytearray(_valid_wav(rng, subtype))
    how = int(rng.integers(0, 7))
    if how == 0:  # truncated anywhere, including inside the header
        raw = raw[: int(rng.integers(0, len(raw)))]
    elif how == 1:  # random bytes flipped
        for i in rng.integers(0, len(raw), int(rng.integers(1, 20))):
            raw[i] = int(rng.integers(0, 256))
    elif how == 2:  # huge claimed RIFF / data sizes
        raw[4:8] = struct.pack("<I", 0xFFFFFFF0)
        pos = raw.find(b"data")
        if pos >= 0:
            raw[pos + 4:pos + 8] = struct.pack("<I", int(rng.choice([0, 0x7FFFFFFF, 0xFFFFFFFF])))
    elif how == 3 and subtype == "FLOAT":  # NaN / inf samples
        pos = raw.find(b"data") + 8
        for i in range(pos, min(len(raw) - 4, pos + 400), 16):
            raw[i:i + 4] = struct.pack("<f", float(rng.choice([np.nan, np.inf, -np.inf])))
    elif how == 4:  # garbage of random length
        raw = bytearray(rng.integers(0, 256, int(rng.integers(0, 2000)), dtype=np.uint8).tobytes())
    elif how == 5:  # header fields: channels, rate, bits
        pos = raw.find(b"fmt ")
        if pos >= 0:
            field = int(rng.choice([10, 12, 22]))
            raw[pos + field:pos + field + 2] = struct.pack("<H", int(rng.integers(0, 65536)))
    # how == 6: left valid
    path = _TMP / f"f{int(rng.integers(1 << 30))}.wav"
    path.write_bytes(bytes(raw))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        samples, rate = read_audio(path, channel=0)
        assert samples.ndim == 1 and samples.size > 0 and np.all(np.isfinite(samples))
        assert 8000 <= rate <= 48000
        outcome = "ok"
    except AudioError:
        outcome = "rejected:AudioError"
    finally:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "input file was modified"
        path.unlink()
    return outcome


def detector_stream(rng) -> str:
    """Arbitrary sample values and chunk sizes; the detector never raises and its events are well formed."""
    n = int(rng.integers(0, 20000))
    kind = int(rng.integers(0, 5))
    if kind == 0:
        x = rng.integers(-32768, 32768, n).astype(np.int16)
    elif kind == 1:  # full-scale square waves and DC
        x = np.where(np.arange(n) % int(rng.integers(2, 40)) < 3, 32767, -32768).astype(np.int16)
    elif kind == 2:
        x = np.full(n, float(rng.choice([0.0, 32767.0, -32768.0, 1e-30])))
    elif kind == 3:  # key presses with clipping
        x, _ = keypresses("".join(rng.choice(list(DIGITS), 6)), rng=rng, level_dbm0=3.0)
        x = np.clip(x * 4, -32768, 32767)
    else:
        x = rng.standard_normal(n) * float(rng.choice([1.0, 1e3, 3e4]))
    det = DtmfDetector(int(rng.choice([8000, 16000])))
    events, pos = [], 0
    while pos < len(x):
        step = int(rng.integers(1, 2000))
        events += det.process(x[pos:pos + step])
        pos += step
    events += det.flush()
    for e in events:
        assert e.digit in DIGITS and e.start >= 0 and (e.end is None or e.end >= e.start)
    return "ok"


def rfc4733_sequence(rng) -> str:
    """Lost ends, repeated ends, reordering, absurd durations, codes > 15, timestamp wrap, short payloads."""
    tracker = Rfc4733Tracker(8000)
    now, rejected, completed = 0, 0, []
    base_ts = int(rng.choice([0, 0xFFFFFF00, int(rng.integers(0, 1 << 32))]))
    packets = []
    for k in range(int(rng.integers(1, 12))):
        ts = (base_ts + k * int(rng.integers(1, 4000))) % (1 << 32)
        code = int(rng.choice([int(rng.integers(0, 16)), int(rng.integers(16, 256))]))
        for j in range(int(rng.integers(0, 8))):
            packets.append((ts, struct.pack("!BBH", code, 10, min(0xFFFF, 160 * (j + 1)))))
        for _ in range(int(rng.integers(0, 4))):  # 0 = lost end, up to 3 = the usual triple end
            packets.append((ts, struct.pack("!BBH", code, 0x80 | 10, int(rng.integers(0, 0x10000)))))
    if rng.random() < 0.3:
        rng.shuffle(packets)
    if rng.random() < 0.2:
        packets.append((0, bytes(rng.integers(0, 256, int(rng.integers(0, 9)), dtype=np.uint8))))
    for ts, payload in packets:
        now += int(rng.integers(0, 400))
        try:
            out = tracker.packet(int(rng.choice([1234, 5678])), ts, payload, now)
        except Rfc4733Error:
            rejected += 1
            continue
        out += tracker.poll(now)
        for e in out:
            assert e.digit in DIGITS and e.source == "rfc4733" and e.start >= 0
            if e.end is not None:
                assert 0 < e.end - e.start <= tracker.max_event_samples
                completed.append(e)
    completed += [e for e in tracker.poll(now + 10 * tracker.lost_end_samples) if e.end is not None]
    # every press (distinct SSRC, timestamp, key) completes at most once, however its packets were mangled
    presses = {(ts, p[0]) for ts, p in packets if len(p) == 4 and p[0] < 16}
    assert len(completed) <= 2 * len(presses)
    return "rejected:Rfc4733Error" if rejected else "ok"


_INFO_TYPES = ["application/dtmf-relay", "application/dtmf", "text/plain", "", "application/DTMF-Relay; x=1"]


def sip_info_body(rng) -> str:
    """Random and half-valid SIP INFO bodies: a SipInfoDigit or SipInfoError, nothing else."""
    parts = []
    for _ in range(int(rng.integers(0, 5))):
        key = str(rng.choice(["Signal", "Duration", "signal", "X", "", "Signal=Signal"]))
        val = str(rng.choice(["5", "*", "#", "11", "-1", "99999999999", "A", "x", "", "\x00", "\u20ac"]))
        parts.append(f"{key}{rng.choice(['=', ':', ' = ', ''])}{val}")
    body = str(rng.choice(["\r\n", "\n", ";", ""])).join(parts)
    if rng.random() < 0.3:
        body = bytes(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes())
    try:
        info = parse_info(str(rng.choice(_INFO_TYPES)), body)
    except SipInfoError:
        return "rejected:SipInfoError"
    assert info.digit in DIGITS and 0 < info.duration_ms <= 60_000
    return "ok"


_TOML_KEYS = ["listen", "agent", "sip_host", "sip_port", "transport", "workers", "rtp_port", "mask", "mode",
              "lookahead_ms", "token", "gateway", "audit", "codecs", "tls_cert", "[sip]", "[payment]", "[control]",
              "[masker]", "[[x]]"]
_TOML_VALUES = ['"127.0.0.1:5070"', '"sip:agent@127.0.0.1:5072"', "5070", "-1", "99999999", "1e309", "nan",
                "true", '"', "[1, 2", "{a = 1}", '"\\u0000"', "'''", '"' + "x" * 5000 + '"', "0x10", "[]", '"udp"']


def config_file(rng) -> str:
    """Garbage and half-valid TOML: load_config returns a checked config or raises ConfigError."""
    from dtmfguard.server.config import ConfigError, load_config

    lines = []
    for _ in range(int(rng.integers(0, 12))):
        key, value = str(rng.choice(_TOML_KEYS)), str(rng.choice(_TOML_VALUES))
        lines.append(key if key.startswith("[") else f"{key} = {value}")
    raw = "\n".join(lines).encode()
    if rng.random() < 0.2:
        raw = bytes(rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes())
    path = _TMP / f"c{int(rng.integers(1 << 30))}.toml"
    path.write_bytes(raw)
    try:
        load_config(str(path), require_agent=bool(rng.random() < 0.5))
        return "ok"
    except ConfigError:
        return "rejected:ConfigError"
    finally:
        path.unlink()


class _FakeGuard:
    """What the control API needs of a worker, with no calls on it."""

    def health(self):
        return {"ok": True, "calls": 0}

    def list_calls(self):
        return []

    def get_bridge(self, call_id):
        return None


_CONTROL: dict = {}
_TOKEN = "fuzz-token-0123456789abcdef"


def _control_server():
    if "server" not in _CONTROL:
        from dtmfguard.server.control import ControlServer

        server = ControlServer(_FakeGuard(), "127.0.0.1", 0, _TOKEN)
        server.start()
        _CONTROL["server"] = server
    return _CONTROL["server"]


def _http(port: int, raw: bytes, timeout: float = 3.0) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def control_api_request(rng) -> str:
    """Bad JSON, missing or wrong auth, oversized or lying bodies, garbage request lines: every request is
    answered with an HTTP status (or the connection closed), no request without the token is served, and
    the server keeps serving."""
    server = _control_server()
    port = server.address[1]
    method = str(rng.choice(["GET", "POST", "DELETE", "PUT", "BREW", "GET /../../etc/passwd"]))
    path = str(rng.choice(["/calls", "/calls/c1/payment", "/calls/c1/payment/cancel", "/calls/c1/feed",
                           "/health", "/calls/" + "x" * 300, "/%00", "*", ""]))
    auth = str(rng.choice(["", f"Authorization: Bearer {_TOKEN}\r\n", "Authorization: Bearer wrong\r\n",
                           "Authorization: Basic Zm9vOmJhcg==\r\n", "Authorization: Bearer\r\n"]))
    body = bytes(rng.choice([b"{}", b'{"amount": 1999, "reference": "R1"}', b"{not json", b"[]", b"null",
                             b'{"amount": "1e309"}', b"x" * 20000, b""]))
    length = str(rng.choice([str(len(body)), "-5", "abc", "99999999", "0"]))
    raw = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {length}\r\n\r\n".encode() + body
    if rng.random() < 0.1:
        raw = bytes(rng.integers(0, 256, int(rng.integers(1, 600)), dtype=np.uint8).tobytes())
    reply = _http(port, raw)
    status = reply.split(b" ", 2)[1] if reply.startswith(b"HTTP/1.") else b""
    authorised = f"Bearer {_TOKEN}\r\n".encode() in raw
    if path.startswith("/calls") and not authorised:
        assert not status.startswith(b"2"), "a request without the token was served"
    assert b"Traceback" not in reply
    health = _http(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert health.startswith(b"HTTP/1.1 200"), "the control API stopped serving"
    return f"status:{status.decode(errors='replace')}" if status else "closed"


TARGETS = {
    "config_file": config_file,
    "control_api_request": control_api_request,
    "wav_file": wav_file,
    "detector_stream": detector_stream,
    "rfc4733_sequence": rfc4733_sequence,
    "sip_info_body": sip_info_body,
}
