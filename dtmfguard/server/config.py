# SPDX-License-Identifier: GPL-2.0-or-later
"""Guard configuration: a TOML file, overridden by command-line flags; pure Python (no pjsua2).

Why TOML (``tomllib``, Python 3.11+): one readable file per deployment, no
third-party parser.  Every field has a default, so ``--listen`` and ``--agent``
alone make a working guard.  A bad file gives one line naming the key and what
was expected, never a traceback.

Example ``guard.toml``::

    [sip]
    listen = "0.0.0.0:5070"        # host:port for UDP and TCP
    transports = ["udp", "tcp"]    # add "tls" with tls_cert/tls_key (TLS 1.2, the wheel's OpenSSL)
    rtp_port = 40000               # this process's RTP port range: rtp_port .. rtp_port + rtp_range
    rtp_range = 100

    [agent]
    uri = "sip:agent@10.0.0.5:5060" # static target ...
    from = "static"                # ... or "request-uri" (template with {user}) or "header"
    template = "sip:{user}@10.0.0.5:5060"
    header = "X-Agent-URI"
    answer_timeout_s = 30
    tls_verify = true              # verify the agent side's TLS certificate against sip.tls_ca (SECURITY.md)

    [media]
    mask = "tone"                  # tone | silence | noise (the masker's fill)
    mask_mode = "secure"           # secure | always | payment (see [secure] and SECURITY.md)
    customer_srtp = "off"          # off | optional | mandatory: SRTP (RFC 3711, SDES keys RFC 4568) per leg
    agent_srtp = "off"
    srtp_signaling = "tls"         # tls: a mandatory-SRTP leg needs TLS signalling (its keys ride in the SDP)
    priority = "auto"              # auto | realtime | off: SCHED_RR for the media clock thread (sched.py)
    payment_notch = true           # in secure mode / a payment: the 8 DTMF bands removed from all unmasked audio
    keypad_burst = true            # after keys: band removal from the detector's first key or the masker's third, 20 s

    [secure]                       # mask_mode "secure": keys outside a payment go on to the agent leg (IVR)
    relay_method = "rfc4733"       # rfc4733 | sip-info
    card_run_action = "alert"      # alert | stop: a card keyed outside secure mode (13-19 digits, Luhn)
    card_run_gap_s = 4.0
    timeout_s = 900                # secure mode switched on without a payment ends after this

    [identity]
    mode = "pass"                  # pass | rewrite | anonymise: who the agent's phone shows
    headers = ["Diversion", "History-Info", "User-to-User"]
    x_headers = ["X-Queue"]

    [control]
    listen = "127.0.0.1:8070"
    token_env = "DTMFGUARD_API_TOKEN"

    [payment]
    gateway = "vault"
    audit = "/var/lib/dtmfguard/audit.jsonl"   # every session's outcome, hash-chained (dtmfguard audit verify)

    [workers]
    count = 1
    sip_port_step = 10             # worker i listens on port + i*step
    rtp_port_step = 100
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from ..dsp.masks import DEFAULT_MASK, MASK_MODES, MASKS

__all__ = ["GuardConfig", "ConfigError", "load_config", "parse_hostport", "agent_target", "TARGET_MODES",
           "SRTP_MODES", "uses_tls"]

TARGET_MODES = ("static", "request-uri", "header")
_TRANSPORTS = ("udp", "tcp", "tls")
#: media encryption per leg: RTP only, SRTP if the peer offers/accepts it, SRTP or no call
SRTP_MODES = ("off", "optional", "mandatory")
#: signalling a mandatory-SRTP leg needs: "tls" (SDES keys travel in the SDP, RFC 4568 §8.3), or "any"
SRTP_SIGNALING = ("tls", "any")


#: headers the SIP stack writes itself (RFC 3261 §8.1.1, §20): copying them would break the dialog
_NEVER_COPIED = frozenset(("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "contact", "m", "max-forwards",
                           "content-length", "l", "content-type", "c", "route", "record-route", "authorization",
                           "proxy-authorization", "session-expires", "x", "min-se", "supported", "k", "require",
                           "allow", "p-asserted-identity", "privacy", "x-dtmfguard-call"))

#: Highest pjsip log level a guard may run with (see GuardConfig.check).
MAX_PJSIP_LOG_LEVEL = 3


class ConfigError(ValueError):
    """Configuration problems, each phrased as one line a user can act on (``problems``; ``str()`` joins
    them)."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems) if problems else [message]

    @classmethod
    def of(cls, problems: list[str]) -> ConfigError:
        if len(problems) == 1:
            return cls(problems[0])
        return cls(f"{len(problems)} configuration problems: " + "; ".join(problems), problems)


@dataclass
class GuardConfig:
    sip_host: str = "127.0.0.1"
    sip_port: int = 5070
    transports: tuple = ("udp", "tcp")
    tls_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    rtp_port: int = 40000
    rtp_range: int = 100
    agent_uri: str = ""
    agent_from: str = "static"
    agent_template: str = ""
    agent_header: str = "X-Agent-URI"
    answer_timeout_s: float = 30.0
    #: verify the agent side's certificate (and its name) when the guard opens a TLS connection to it
    agent_tls_verify: bool = True
    mask: str = DEFAULT_MASK
    #: secure (contact centre: masked always, keys relayed to the agent leg outside secure mode) | always |
    #: payment (see SECURITY.md, "What each mode protects")
    mask_mode: str = "secure"
    media_priority: str = "auto"  # auto | realtime | off (dtmfguard.server.sched)
    #: the masker's payment profile while secure mode is on or a payment session runs (Masker.notch_all)
    payment_notch: bool = True
    #: the masker's keyed-context rules: its keypad burst (MaskerParams.keypad_burst_*, opened by the detector's
    #: keys too: keypad_burst_receiver) and keypad context (keypad_context_ms); false turns all of them off
    keypad_burst: bool = True
    customer_srtp: str = "off"
    agent_srtp: str = "off"
    srtp_signaling: str = "tls"
    control_host: str = "127.0.0.1"
    control_port: int = 0  # 0: no control API
    token_env: str = "DTMFGUARD_API_TOKEN"
    #: the box endpoint (dtmfguard.server.endpoint): "auto" = served by the supervisor when workers > 1
    control_endpoint: str = "auto"  # auto | box | worker
    control_box: str = ""  # this box's name in call handles; "" = the host name
    control_correlation_header: str = ""  # e.g. X-Correlation-ID: a desktop finds its call by it
    control_cors_origins: list = field(default_factory=list)  # browser origins allowed (CORS)
    control_tls_cert: str = ""
    control_tls_key: str = ""
    control_peers: dict = field(default_factory=dict)  # other boxes: name -> base URL (redirects)
    control_plain_http: bool = False  # allow plain HTTP on an address beyond loopback (behind a TLS proxy)
    control_feed_max_s: float = 300.0  # a feed stream ends after this long; clients resume (Last-Event-ID)
    gateway: str = "vault"
    gateway_options: dict = field(default_factory=dict)
    audit_path: str = ""  # payment audit trail (hash-chained JSON lines); "" = none
    workers: int = 1
    sip_port_step: int = 10
    rtp_port_step: int = 100
    log_level: int = 0  # pjsua2's own log level (0 = silent)
    # -- [secure] and [identity]: secure mode's key relay, the card-run alarm, the agent leg's caller identity
    #: relayed keys go to the agent leg as RFC 4733 events (SIP INFO if it has no telephone-event) or SIP INFO
    relay_method: str = "rfc4733"
    #: a card-like run of keys outside secure mode: "alert", or "stop" (alert, and hold back / drop the run)
    card_run_action: str = "alert"
    card_run_gap_s: float = 4.0  # a pause longer than this ends a run of keys
    card_run_pattern: str = ""  # extra regular expression (searched in a run's digits) that counts as a card
    card_run_hold_after: int = 6  # "stop": digits of a run relayed before holding starts
    secure_timeout_s: float = 900.0  # secure mode switched on without a payment ends after this
    #: the agent's phone switches secure mode with these key sequences (RFC 4733 / SIP INFO), e.g. "*#1"; ""=off
    secure_keys_on: str = ""
    secure_keys_off: str = ""
    #: agent leg identity: "pass" the caller's From user/display name and P-Asserted-Identity, "rewrite"
    #: them to identity_user / identity_display, or "anonymise" (RFC 3323 anonymous From, Privacy: id)
    identity: str = "pass"
    identity_user: str = ""
    identity_display: str = ""
    #: INVITE headers copied to the agent leg (besides P-Asserted-Identity, which follows ``identity``)
    copy_headers: tuple = ("Diversion", "History-Info", "User-to-User")
    copy_x_headers: tuple = ()  # e.g. ("X-Queue", "X-CRM-Id"): X- headers copied as they are

    def check(self, require_agent: bool = True) -> GuardConfig:
        """Self, or ConfigError listing every problem at once (``.problems``)."""
        problems = self.problems(require_agent)
        if problems:
            raise ConfigError.of(problems)
        return self

    def problems(self, require_agent: bool = True) -> list[str]:
        """Every problem of this configuration, one line each ([] = valid); static checks only (see
        :mod:`dtmfguard.server.preflight` for what needs the host: files, keys, addresses)."""
        out: list[str] = []
        bad = out.append
        if not isinstance(self.log_level, int) or not 0 <= self.log_level <= MAX_PJSIP_LOG_LEVEL:
            # pjsip levels >= 4 dump whole SIP messages: an application/dtmf INFO body is a bare key on its
            # own line, which no redaction can tell from any other number (measured, issue 8)
            bad(f"sip.log_level must be 0..{MAX_PJSIP_LOG_LEVEL} (higher pjsip levels log SIP "
                f"message bodies, which carry DTMF keys), got {self.log_level!r}")
        if not 1 <= self.sip_port <= 65535:
            bad(f"sip.listen port must be 1..65535, got {self.sip_port}")
        unknown = [t for t in self.transports if t not in _TRANSPORTS]
        if unknown or not self.transports:
            bad(f"sip.transports must be a non-empty list of {', '.join(_TRANSPORTS)}")
        if not isinstance(self.tls_port, int) or isinstance(self.tls_port, bool) or not 0 <= self.tls_port <= 65535:
            bad(f"sip.tls_port must be 1..65535, or 0 for the listen port + 1, got {self.tls_port!r}")
        if "tls" in self.transports and not (self.tls_cert and self.tls_key):
            bad("sip.transports has 'tls' but sip.tls_cert and sip.tls_key are not both set")
        if not (1024 <= self.rtp_port <= 65000 and 2 <= self.rtp_range <= 10000):
            bad("sip.rtp_port must be 1024..65000 and sip.rtp_range 2..10000")
        if self.agent_from not in TARGET_MODES:
            bad(f"agent.from must be one of {', '.join(TARGET_MODES)}, got {self.agent_from!r}")
        if require_agent and self.agent_from == "static" and not _is_sip_uri(self.agent_uri):
            bad("no agent target: set agent.uri (or --agent) to a sip: or sips: URI")
        if self.agent_from == "request-uri" and "{user}" not in self.agent_template:
            bad("agent.from = 'request-uri' needs agent.template containing {user}")
        if self.mask_mode not in MASK_MODES:
            bad(f"media.mask_mode must be 'secure', 'always' or 'payment', got {self.mask_mode!r}")
        self._check_secure_and_identity(bad)
        if self.media_priority not in ("auto", "realtime", "off"):
            bad(f"media.priority must be auto, realtime or off, got {self.media_priority!r}")
        if self.mask not in MASKS:
            bad(f"media.mask must be tone, silence or noise, got {self.mask!r}")
        if not 1 <= self.workers <= 64:
            bad(f"workers.count must be 1..64, got {self.workers}")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000
                   for v in (self.sip_port_step, self.rtp_port_step)):
            bad("workers.sip_port_step and workers.rtp_port_step must be 1..1000")
        elif self.workers > 1 and (self._top_sip_port() + (self.workers - 1) * self.sip_port_step > 65535
                                   or self.rtp_port + (self.workers - 1) * self.rtp_port_step + self.rtp_range > 65535):
            bad(f"{self.workers} workers do not fit below port 65535 (sip.listen / sip.rtp_port + "
                "workers × step)")
        self._check_media_security(bad)
        if not self.answer_timeout_s > 0:
            bad("agent.answer_timeout_s must be positive")
        self._check_control(bad)
        return out

    def _check_secure_and_identity(self, bad) -> None:
        """[secure] and [identity]: values that would relay wrongly or send a malformed header are refused."""
        if self.relay_method not in ("rfc4733", "sip-info"):
            bad(f"secure.relay_method must be 'rfc4733' or 'sip-info', got {self.relay_method!r}")
        if self.card_run_action not in ("alert", "stop"):
            bad(f"secure.card_run_action must be 'alert' or 'stop', got {self.card_run_action!r}")
        if not 0.5 <= self.card_run_gap_s <= 60:
            bad(f"secure.card_run_gap_s must be 0.5..60, got {self.card_run_gap_s!r}")
        if not isinstance(self.card_run_hold_after, int) or not 0 <= self.card_run_hold_after <= 12:
            bad(f"secure.card_run_hold_after must be 0..12, got {self.card_run_hold_after!r}")
        if self.card_run_pattern:
            try:
                re.compile(self.card_run_pattern)
            except re.error as exc:
                bad(f"secure.card_run_pattern is not a valid regular expression ({exc.msg})")
        try:
            from ..media.keyrelay import KeySequence

            KeySequence(self.secure_keys_on, self.secure_keys_off)
        except ValueError as exc:
            bad(f"secure.keys_on / secure.keys_off: {exc}")
        if not 1 <= self.secure_timeout_s <= 86400:
            bad(f"secure.timeout_s must be 1..86400, got {self.secure_timeout_s!r}")
        if self.identity not in ("pass", "rewrite", "anonymise"):
            bad(f"identity.mode must be pass, rewrite or anonymise, got {self.identity!r}")
        if self.identity == "rewrite" and not re.match(r"^[A-Za-z0-9_.+\-*#]{1,64}$", self.identity_user or ""):
            bad("identity.mode = 'rewrite' needs identity.user (a SIP user part: letters, digits, "
                "+ - . _ * #)")
        if any(c in (self.identity_display or "") for c in '"\\\r\n<>') or len(self.identity_display or "") > 64:
            bad("identity.display must be at most 64 characters without quotes, backslashes, <, > "
                "or line breaks")
        for name in tuple(self.copy_headers) + tuple(self.copy_x_headers):
            if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9!%*_+`'~.-]{0,63}$", name):
                bad(f"identity headers must be SIP header names, got {name!r}")
            elif name.lower() in _NEVER_COPIED:
                bad(f"identity: the {name} header is set by the guard's own SIP stack and cannot be copied")
        for name in self.copy_x_headers:
            if isinstance(name, str) and not name.lower().startswith("x-"):
                bad(f"identity.x_headers takes X- headers only, got {name!r}")

    def _check_control(self, bad) -> None:
        if self.control_endpoint not in ("auto", "box", "worker"):
            bad(f"control.endpoint must be auto, box or worker, got {self.control_endpoint!r}")
        if self.control_box and not re.match(r"^[A-Za-z0-9_-]{1,32}$", self.control_box):
            bad("control.box must be 1-32 letters, digits, '-' or '_' (it is part of call handles)")
        if not 1.0 <= self.control_feed_max_s <= 86400:
            bad("control.feed_max_s must be 1..86400 seconds")
        if bool(self.control_tls_cert) != bool(self.control_tls_key):
            bad("control.tls_cert and control.tls_key must be set together")
        if self.control_correlation_header and not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$",
                                                             self.control_correlation_header):
            bad("control.correlation_header must be a SIP header name, e.g. X-Correlation-ID")
        for origin in self.control_cors_origins:
            if not isinstance(origin, str) or not re.match(r"^https?://[^/\s]+$", origin):
                bad(f"control.cors_origins entries must be origins such as https://crm.example.com, "
                    f"got {origin!r}")
        for name, url in self.control_peers.items():
            if not re.match(r"^[A-Za-z0-9_-]{1,32}$", str(name)) or not re.match(r"^https?://[^/\s]+$", str(url)):
                bad("control.peers maps box names to base URLs, e.g. box2 = \"https://10.0.0.2:8070\"")

    def masker_options(self) -> dict:
        """Each call's masker options from ``[media]``: the mask, and the masker's parameters without the keypad
        burst and the keypad context (what the masker does after keys it or the call's detector found) when
        ``media.keypad_burst`` is false."""
        options: dict = {"mask": self.mask}
        if not self.keypad_burst:
            from ..dsp.params import DEFAULT_MASKER_PARAMS

            options["params"] = dataclasses.replace(DEFAULT_MASKER_PARAMS, keypad_burst_presses=None,
                                                    keypad_context_ms=None)
        return options

    def agent_known_target(self) -> str:
        """The agent URI (static) or template (request-uri) whose transport is known before any call; ""."""
        return {"static": self.agent_uri, "request-uri": self.agent_template}.get(self.agent_from, "")

    def _check_media_security(self, bad) -> None:
        """Combinations that could never give a call, or a false sense of security, are refused here."""
        for leg in ("customer", "agent"):
            mode = getattr(self, f"{leg}_srtp")
            if mode not in SRTP_MODES:
                bad(f"media.{leg}_srtp must be off, optional or mandatory, got {mode!r}")
                return
        if self.srtp_signaling not in SRTP_SIGNALING:
            bad(f"media.srtp_signaling must be 'tls' or 'any', got {self.srtp_signaling!r}")
        if not isinstance(self.agent_tls_verify, bool):
            bad("agent.tls_verify must be true or false")
        if not isinstance(self.payment_notch, bool):
            bad("media.payment_notch must be true or false")
        if not isinstance(self.keypad_burst, bool):
            bad("media.keypad_burst must be true or false")
        target = self.agent_known_target()
        agent_tls = uses_tls(target)
        if agent_tls and "tls" not in self.transports:
            bad("the agent target uses TLS (sips: or ;transport=tls) but sip.transports has no "
                              "'tls' (add it with sip.tls_cert and sip.tls_key)")
        if agent_tls and self.agent_tls_verify and not self.tls_ca:
            bad("agent.tls_verify is on but sip.tls_ca is not set (pjsip loads no system CA "
                              "store): set sip.tls_ca to the CA file of the agent side, or agent.tls_verify = false")
        if self.srtp_signaling == "tls":
            if self.customer_srtp == "mandatory" and "tls" not in self.transports:
                bad("media.customer_srtp = 'mandatory' needs TLS signalling: add 'tls' to "
                                  "sip.transports, or set media.srtp_signaling = 'any' to accept SRTP keys "
                                  "sent in clear SIP")
            if self.agent_srtp == "mandatory" and target and not agent_tls:
                bad("media.agent_srtp = 'mandatory' needs TLS signalling to the agent: use a sips: "
                                  "or ;transport=tls agent target, or set media.srtp_signaling = 'any'")

    def _top_sip_port(self) -> int:
        """The highest SIP port worker 0 listens on (TLS: ``sip.tls_port``, or the listen port + 1)."""
        if "tls" not in self.transports or not isinstance(self.tls_port, int):
            return self.sip_port
        return self.tls_port or self.sip_port + 1

    def for_worker(self, index: int) -> GuardConfig:
        """Worker ``index``'s own SIP port and RTP range (the wheel allows 2 bridged calls per process)."""
        return dataclasses.replace(self, sip_port=self.sip_port + index * self.sip_port_step,
                                   tls_port=(self.tls_port + index * self.sip_port_step) if self.tls_port else 0,
                                   rtp_port=self.rtp_port + index * self.rtp_port_step,
                                   control_port=0, workers=1)


def uses_tls(uri: str) -> bool:
    """True for a ``sips:`` URI or one with ``;transport=tls`` (RFC 3261 §19.1: how a target asks for TLS)."""
    uri = (uri or "").strip().lower()
    return uri.startswith("sips:") or re.search(r";transport=tls(?:[;?>]|$)", uri) is not None


def _is_sip_uri(uri: str) -> bool:
    return isinstance(uri, str) and re.match(r"^sips?:[^\s<>]+$", uri) is not None


def parse_hostport(text: str, what: str = "listen") -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port); ConfigError on anything else."""
    m = re.match(r"^\[([0-9a-fA-F:.]+)\]:(\d+)$", text or "") or re.match(r"^([^:\s]+):(\d+)$", text or "")
    if not m:
        raise ConfigError(f"{what} must be host:port (e.g. 127.0.0.1:5070), got {text!r}")
    port = int(m.group(2))
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what} port must be 0..65535, got {port}")
    return m.group(1), port


_SCHEMA: dict[str, dict[str, tuple[str, type]]] = {
    "sip": {"listen": ("", str), "transports": ("transports", list), "tls_port": ("tls_port", int),
            "tls_cert": ("tls_cert", str), "tls_key": ("tls_key", str), "tls_ca": ("tls_ca", str),
            "rtp_port": ("rtp_port", int), "rtp_range": ("rtp_range", int), "log_level": ("log_level", int)},
    "agent": {"uri": ("agent_uri", str), "from": ("agent_from", str), "template": ("agent_template", str),
              "header": ("agent_header", str), "answer_timeout_s": ("answer_timeout_s", float),
              "tls_verify": ("agent_tls_verify", bool)},
    "media": {"mask": ("mask", str), "mask_mode": ("mask_mode", str), "priority": ("media_priority", str),
              "customer_srtp": ("customer_srtp", str), "agent_srtp": ("agent_srtp", str),
              "srtp_signaling": ("srtp_signaling", str), "payment_notch": ("payment_notch", bool),
              "keypad_burst": ("keypad_burst", bool)},
    "control": {"listen": ("", str), "token_env": ("token_env", str), "endpoint": ("control_endpoint", str),
                "box": ("control_box", str), "correlation_header": ("control_correlation_header", str),
                "cors_origins": ("control_cors_origins", list), "tls_cert": ("control_tls_cert", str),
                "tls_key": ("control_tls_key", str), "peers": ("control_peers", dict),
                "plain_http": ("control_plain_http", bool), "feed_max_s": ("control_feed_max_s", float)},
    "secure": {"relay_method": ("relay_method", str), "card_run_action": ("card_run_action", str),
               "card_run_gap_s": ("card_run_gap_s", float), "card_run_pattern": ("card_run_pattern", str),
               "card_run_hold_after": ("card_run_hold_after", int), "timeout_s": ("secure_timeout_s", float),
               "keys_on": ("secure_keys_on", str), "keys_off": ("secure_keys_off", str)},
    "identity": {"mode": ("identity", str), "user": ("identity_user", str), "display": ("identity_display", str),
                 "headers": ("copy_headers", list), "x_headers": ("copy_x_headers", list)},
    "payment": {"gateway": ("gateway", str), "options": ("gateway_options", dict), "audit": ("audit_path", str)},
    "workers": {"count": ("workers", int), "sip_port_step": ("sip_port_step", int),
                "rtp_port_step": ("rtp_port_step", int)},
}


def _apply(cfg: GuardConfig, data: dict[str, Any]) -> list[str]:
    """Set ``cfg`` from the parsed file; return every problem (a bad value keeps its default)."""
    problems: list[str] = []
    for section, values in data.items():
        if section not in _SCHEMA:
            problems.append(f"unknown section [{section}]; known: {', '.join(_SCHEMA)}")
            continue
        if not isinstance(values, dict):
            problems.append(f"[{section}] must be a table")
            continue
        for key, value in values.items():
            if key not in _SCHEMA[section]:
                problems.append(f"unknown key {section}.{key}; known: {', '.join(_SCHEMA[section])}")
                continue
            attr, typ = _SCHEMA[section][key]
            if typ is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
                problems.append(f"{section}.{key} must be a {typ.__name__}, got {type(value).__name__}")
                continue
            try:
                if section == "sip" and key == "listen":
                    cfg.sip_host, cfg.sip_port = parse_hostport(value, "sip.listen")
                elif section == "control" and key == "listen":
                    cfg.control_host, cfg.control_port = parse_hostport(value, "control.listen")
                elif key == "transports":
                    cfg.transports = tuple(str(t).lower() for t in value)
                elif section == "identity" and key in ("headers", "x_headers"):
                    setattr(cfg, attr, tuple(value))
                else:
                    setattr(cfg, attr, value)
            except ConfigError as exc:
                problems.extend(exc.problems)
    return problems


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None,
                require_agent: bool = True) -> GuardConfig:
    """Read ``path`` (TOML) if given, then apply ``overrides`` (attribute -> value, from flags), check, return."""
    import tomllib

    cfg = GuardConfig()
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text (TOML files must be UTF-8)") from None
        problems = _apply(cfg, data)
    else:
        problems = []
    for attr, value in (overrides or {}).items():
        if value is not None:
            setattr(cfg, attr, value)
    problems += cfg.problems(require_agent)
    if problems:
        raise ConfigError.of(problems)
    return cfg


def _request_uri(msg: str) -> str:
    first = (msg or "").split("\r\n", 1)[0].split("\n", 1)[0]
    parts = first.split()
    return parts[1] if len(parts) == 3 and parts[2].startswith("SIP/") else ""


def _header(msg: str, name: str) -> str:
    head = (msg or "").split("\r\n\r\n", 1)[0]
    lname = name.lower()
    for line in head.splitlines()[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == lname:
            return value.strip().strip("<>").strip()
    return ""


def agent_target(cfg: GuardConfig, invite: str = "") -> str:
    """The agent leg's URI for an incoming INVITE (its whole text); ConfigError if it cannot be derived."""
    if cfg.agent_from == "static":
        return cfg.agent_uri
    if cfg.agent_from == "header":
        uri = _header(invite, cfg.agent_header)
        if not _is_sip_uri(uri):
            raise ConfigError(f"INVITE has no usable {cfg.agent_header} header (a sip: URI)")
        return uri
    ruri = _request_uri(invite)
    m = re.match(r"^sips?:([^@;>\s]+)@", ruri)
    if not m or not re.match(r"^[A-Za-z0-9_.+\-]+$", m.group(1)):
        raise ConfigError("INVITE Request-URI has no usable user part for agent.template")
    return cfg.agent_template.format(user=m.group(1))
