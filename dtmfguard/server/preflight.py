# SPDX-License-Identifier: GPL-2.0-or-later
"""What the configuration needs from this host, checked before anything starts (pure Python, no pjsua2).

:meth:`GuardConfig.problems` checks values; this module checks what only the host can say, so a typo
fails ``serve`` at start instead of on a live call when an agent starts a payment:

* TLS certificate and key load as a pair, the CA file holds certificates (pjsip accepts garbage);
* the payment gateway is built exactly as a payment would build it (name, options, its key: the vault
  opens its database and checks the key against it, the webhook needs its signing secret);
* the audit trail's directory is writable and an existing trail ends with a whole record;
* listening addresses resolve and belong to this host, the agent target's host resolves;
* TLS certificate, key and CA files are readable; the control API's token variable is set.

Every problem is returned, one line each, with no secret and no card data in it (texts pass
:func:`dtmfguard.security.redact`).  Binding the ports themselves is the supervisor's job at start
(:meth:`dtmfguard.server.supervisor.Supervisor.bind`): a free port now may be taken a second later.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import socket

from ..security import redact
from .config import GuardConfig

__all__ = ["check_resources", "check_gateway", "check_audit", "check_addresses"]

log = logging.getLogger(__name__)


def _host_of_uri(uri: str) -> str:
    """``sip:user@host:port;params`` -> host ("" if none); ``[v6]`` without brackets."""
    m = re.match(r"^sips?:(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>?]+)", (uri or "").strip().strip("<>"))
    return m.group(1).strip("[]") if m else ""


def check_gateway(cfg: GuardConfig) -> list[str]:
    """Build the gateway (and so load its key) as a payment session would; [] if it builds."""
    if not cfg.control_port:
        return []  # payments start through the control API only: without it no gateway is ever built
    from ..capture.gateways import load_gateway

    try:
        gateway = load_gateway(cfg.gateway, **cfg.gateway_options)
    except TypeError as exc:  # an option the gateway does not take, or a required one missing
        return [f"payment.options do not fit gateway {cfg.gateway!r}: {redact(str(exc))}"]
    except Exception as exc:  # noqa: BLE001 - GatewayConfigError, VaultKeyError, a plugin's own error
        text = redact(str(exc)) or type(exc).__name__
        return [f"payment gateway {cfg.gateway!r}: {text}"]
    close = getattr(gateway, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001
            pass
    return []


def check_audit(cfg: GuardConfig) -> list[str]:
    """The audit trail can be appended to: its directory exists and is writable, its last record whole."""
    if not cfg.audit_path:
        return []
    from ..capture.audit import AuditError, AuditTrail

    path = os.path.abspath(cfg.audit_path)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        return [f"payment.audit: directory {directory} does not exist"]
    if not os.path.exists(path):
        if not os.access(directory, os.W_OK | os.X_OK):
            return [f"payment.audit: directory {directory} is not writable"]
        return []
    if os.path.isdir(path):
        return [f"payment.audit: {path} is a directory"]
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
    except OSError as exc:
        return [f"payment.audit: cannot open {path} ({exc.strerror})"]
    try:
        AuditTrail._read_tail(fd)
    except AuditError as exc:
        return [f"payment.audit: {path}: {exc}"]
    finally:
        os.close(fd)
    return []


def _is_local(host: str) -> str:
    """"" if ``host`` resolves to an address of this host (it can be bound), else the reason."""
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        return f"does not resolve ({exc.strerror})"
    except UnicodeError:
        return "is not a valid host name"
    family, stype, _, _, addr = infos[0]
    with socket.socket(family, stype) as sock:
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return "is not an address of this host"
            return exc.strerror or type(exc).__name__
    return ""


def check_addresses(cfg: GuardConfig) -> list[str]:
    problems = []
    reason = _is_local(cfg.sip_host)
    if reason:
        problems.append(f"sip.listen: {cfg.sip_host} {reason}")
    if cfg.control_port:
        reason = _is_local(cfg.control_host)
        if reason:
            problems.append(f"control.listen: {cfg.control_host} {reason}")
    target = cfg.agent_known_target() if cfg.agent_from == "static" else cfg.agent_template
    host = _host_of_uri(target)
    if host and "{" not in host:
        try:
            socket.getaddrinfo(host, None)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:  # DNS unreachable right now: calls may work once it is back
                log.warning("agent target host %s cannot be resolved now (%s)", host, exc.strerror)
            else:
                problems.append(f"agent target host {host} does not resolve ({exc.strerror})")
        except UnicodeError:
            problems.append(f"agent target host {host!r} is not a valid host name")
    return problems


def _check_files(cfg: GuardConfig) -> list[str]:
    problems = []
    if "tls" in cfg.transports or cfg.tls_ca:
        for key, path in (("sip.tls_cert", cfg.tls_cert), ("sip.tls_key", cfg.tls_key), ("sip.tls_ca", cfg.tls_ca)):
            if path and not os.path.isfile(path):
                problems.append(f"{key}: {path} does not exist")
            elif path and not os.access(path, os.R_OK):
                problems.append(f"{key}: {path} is not readable")
    if not problems and "tls" in cfg.transports:
        problems += _check_tls_material(cfg)
    if cfg.control_port and not os.environ.get(cfg.token_env):
        problems.append(f"control API needs a bearer token in the environment variable {cfg.token_env}")
    return problems


def _check_tls_material(cfg: GuardConfig) -> list[str]:
    """The certificate and key load as a pair, the CA file holds certificates (pjsip itself accepts garbage
    here at start, measured: the guard says ready and every TLS handshake then fails)."""
    import ssl

    problems = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    except (ssl.SSLError, OSError, ValueError) as exc:
        problems.append(f"sip.tls_cert/sip.tls_key: not a matching PEM certificate and private key "
                        f"({getattr(exc, 'reason', None) or type(exc).__name__})")
    if cfg.tls_ca:
        try:
            ssl.create_default_context(cafile=cfg.tls_ca)
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(f"sip.tls_ca: no usable PEM certificates ({getattr(exc, 'reason', None) or type(exc).__name__})")
    return problems


def check_resources(cfg: GuardConfig) -> list[str]:
    """Every host-side problem of ``cfg`` (already value-checked), one line each; [] = ready to start."""
    return check_addresses(cfg) + _check_files(cfg) + check_gateway(cfg) + check_audit(cfg)
