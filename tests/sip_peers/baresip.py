# SPDX-License-Identifier: GPL-2.0-or-later
"""baresip (Debian) as an independent SIP peer: a user agent nobody here wrote.

One process per peer, configured in its own directory: auto-answer (agent) or dial on command (customer),
``aufile`` as the audio source (a WAV played into the call), ``sndfile`` recording what it hears
(``dump-*-dec.wav``), ``ctrl_tcp`` for commands and events (netstring JSON: CALL_INCOMING with the caller's
display name and URI, CALL_DTMF_START / CALL_DTMF_END for every key received).  baresip 1.0 needs an
interface address to bind: ``net_interface 127.0.0.1`` works inside a network namespace with only ``lo``.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

__all__ = ["available", "Baresip"]


def available() -> bool:
    return shutil.which("baresip") is not None and Path("/usr/lib/baresip/modules/ctrl_tcp.so").exists()


class Baresip:
    def __init__(self, tmp: Path, name: str, sip_port: int, ctrl_port: int, rtp_port: int, play: str,
                 user: str = "agent", auto_answer: bool = True, display: str = ""):
        self.dir = tmp / name
        self.rec = self.dir / "rec"
        self.rec.mkdir(parents=True)
        self.ctrl_port = ctrl_port
        self.events: list = []  # (wall time, event dict)
        (self.dir / "config").write_text(
            "poll_method epoll\n"
            f"sip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n"
            "audio_player aubridge,nil\naudio_alert aubridge,nil\n"
            f"audio_source aufile,{play}\naudio_srate 8000\naudio_channels 1\n"
            f"rtp_ports {rtp_port}-{rtp_port + 40}\n"
            "module_path /usr/lib/baresip/modules\n"
            "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule ctrl_tcp.so\n"
            "module_app account.so\nmodule_app menu.so\n"
            f"snd_path {self.rec}\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n")
        answer = ";answermode=auto" if auto_answer else ""
        name = f'"{display}" ' if display else ""
        (self.dir / "accounts").write_text(f"{name}<sip:{user}@127.0.0.1:{sip_port}>;regint=0{answer}\n")
        self.out = open(self.dir / "baresip.out", "w")
        self.p = subprocess.Popen(["baresip", "-f", str(self.dir), "-v"], stdout=self.out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.sock = None
        deadline = time.monotonic() + 10
        while self.sock is None and time.monotonic() < deadline:
            try:
                self.sock = socket.create_connection(("127.0.0.1", ctrl_port), timeout=1)
            except OSError:
                time.sleep(0.1)
        if self.sock is None:
            self.stop()
            raise AssertionError(f"baresip did not start: {self.output()[-2000:]}")
        self.sock.settimeout(0.5)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            while b":" in buf:
                length, _, rest = buf.partition(b":")
                if not length.isdigit() or len(rest) < int(length) + 1:
                    break
                n = int(length)
                msg, buf = rest[:n], rest[n + 1:]
                try:
                    self.events.append((time.time(), json.loads(msg)))
                except ValueError:
                    pass

    def command(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")

    #: baresip reports a key's start when the first event packet arrives, and that packet already counts one
    #: packet interval of the event (RFC 4733 §2.5.1.2; pjmedia sends duration 160 at 8 kHz in it)
    FIRST_PACKET_MS = 20

    def keys(self) -> list[dict]:
        """Keys received, each with its duration from baresip's start and end events (ms; event times are
        taken as they arrive on the control socket, so a few ms of scheduling jitter is included)."""
        out, start = [], None
        for t, ev in self.events:
            if ev.get("type") == "CALL_DTMF_START":
                start = (t, ev.get("param", ""))
            elif ev.get("type") == "CALL_DTMF_END" and start is not None:
                ms = round((t - start[0]) * 1000) + self.FIRST_PACKET_MS
                out.append({"digit": start[1], "duration_ms": ms, "t": start[0]})
                start = None
        return out

    def incoming(self) -> list[dict]:
        return [ev for _, ev in self.events if ev.get("type") in ("CALL_INCOMING", "CALL_ESTABLISHED")
                and ev.get("direction") == "incoming"]

    def wait_for(self, kind: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(ev.get("type") == kind for _, ev in self.events):
                return True
            time.sleep(0.05)
        return False

    def recording(self) -> Path | None:
        files = sorted(self.rec.glob("dump-*-dec.wav"))
        return files[-1] if files else None

    def output(self) -> str:
        try:
            return (self.dir / "baresip.out").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int | None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.out.close()
        return self.p.returncode
