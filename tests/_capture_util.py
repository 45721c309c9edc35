# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers shared by the capture tests: a settable clock, key typing, a TLS test certificate and a
real HTTPS receiver on 127.0.0.1 built from samples/webhook_receiver.py."""
from __future__ import annotations

import datetime as dt
import http.server
import importlib.util
import ipaddress
import json
import ssl
import sys
import threading
from pathlib import Path

from dtmfguard.events import DigitEvent

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TODAY = dt.date(2026, 11, 23)
SECRET = b"test-webhook-secret-0123456789abcdef"


def load_sample(name: str):
    """Import samples/<name>.py as a module (samples is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FakeClock:
    """Monotonic seconds the test sets by hand."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def key_events(keys: str, *, start: int = 0, with_starts: bool = False, source: str = "inband"):
    """DigitEvents for ``keys`` (80 ms tones, 80 ms gaps at 8 kHz); optionally with start notices."""
    events = []
    for i, key in enumerate(keys):
        s = start + i * 1280
        if with_starts:
            events.append(DigitEvent(key, s, None, source=source))
        events.append(DigitEvent(key, s, s + 640, source=source))
    return events


def type_keys(session, keys: str, clock: FakeClock = None, step_s: float = 0.3) -> None:
    for event in key_events(keys):
        if clock is not None:
            clock.advance(step_s)
        session.feed(event)


def make_tls_cert(directory: Path):
    """A self-signed certificate for 127.0.0.1 (and localhost); returns (cert_path, key_path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dtmfguard test processor")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Receiver:
    """The sample receiver on a real HTTPS server at 127.0.0.1, with scripted faults.

    ``script`` is consumed one entry per request: "500"/"503" answer that status before the receiver
    sees the request; "ok" (or an empty script) passes it to the sample receiver.  ``requests`` records
    (headers, body) of every request; ``payments`` what the charge function received; ``charges`` counts
    real charges.
    """

    def __init__(self, cert_path: Path, key_path: Path, secret: bytes = SECRET, charge=None):
        self.receiver = load_sample("webhook_receiver")
        self.script = []
        self.requests = []
        self.payments = []
        self.charges = 0
        self.charge_delay_s = 0.0
        self.reply = {"status": "approved", "authorisation": "AUTHOK", "token": "tok_processorTOKEN",
                      "message": "approved by test processor"}
        self._lock = threading.Lock()
        outer = self

        def default_charge(payment):
            with outer._lock:
                outer.charges += 1
                outer.payments.append(json.loads(json.dumps(payment)))
                delay, outer.charge_delay_s = outer.charge_delay_s, 0.0
            if delay:
                threading.Event().wait(delay)
            return dict(outer.reply)

        base = self.receiver.make_handler([secret], charge or default_charge)

        class Scripted(base):
            def do_POST(self):  # noqa: N802
                with outer._lock:
                    step = outer.script.pop(0) if outer.script else "ok"
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                outer.requests.append((dict(self.headers), body))
                if step in ("500", "503"):
                    data = b'{"error": "scripted failure"}'
                    self.send_response(int(step))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                import io
                self.rfile = io.BytesIO(body)
                super().do_POST()

            def log_message(self, format, *args):
                pass

        self.handler = Scripted
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/payments"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def events_json(events) -> str:
    return "\n".join(json.dumps(e, sort_keys=True) for e in events)
