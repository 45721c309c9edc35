# SPDX-License-Identifier: GPL-2.0-or-later
"""Kamailio configuration for relay mode (pure Python): a record-routing proxy + rtpengine sets.

Kamailio does all the SIP: it forwards every new INVITE to the agents' PBX (``agent_uri``),
record-routes so in-dialog requests come back through it, and asks a relay of the set (Kamailio's
``rtpengine`` module: offer on INVITE, answer on the 18x/2xx with SDP, delete on BYE, CANCEL and
failed INVITEs) to put itself in the media path.  Failover is the module's own: a relay that does not
answer within ``tout_ms`` x ``retries`` is disabled for ``disable_s`` seconds and the offer goes to the
next relay of the set (weights spread new calls).  A relay lost mid-call stops forwarding that call's
audio (fail closed: the agent hears nothing); new calls go to the survivors with no manual step.

SIP INFO key presses (``application/dtmf-relay``, ``application/dtmf``) are never forwarded to the
agent: Kamailio forks them to every relay of the set (each relay's ng port + 1); the one carrying the
call answers 200 and feeds the key to that call's pipeline (mask + payment session), the others 481.

It is the carrier-facing front door, so it rejects garbage before anything reaches the PBX or a relay,
as serve mode's script does (:mod:`dtmfguard.server.kamailio`): an allow-list of peers (403; the agents'
PBX is always allowed), ``pike`` flood detection per source IP (dropped silently; the PBX is exempt),
TCP connection limits, a size limit (``$ml`` over ``max_message`` bytes: 513), ``sanity`` (RFC 3261
checks, answered 400/416/505 by the module), Max-Forwards (483), methods a proxy for calls does not take
(REGISTER 405, unknown 501, both with Allow), a Call-ID or tag too long for the relay's ng commands (400),
and SDP the relays refuse anyway (``c=`` lines of 200+ characters, DTLS ``UDP/TLS`` profiles: 488).

The generated script is checked by ``kamailio -c`` in the tests, and by hostile requests sent through a
running Kamailio to a relay (tests/test_relay_kamailio.py).
"""
from __future__ import annotations

import os

__all__ = ["relay_cfg", "write_relay_config", "OFFER_FLAGS"]

#: Flags of every rtpengine_offer/answer: the relay's address in c=/o=, ICE stripped.  The media protocol
#: passes through (RTP/AVP stays RTP/AVP, RTP/SAVP with SDES stays SRTP with the relay's own keys); add
#: RTP/AVP or RTP/SAVP to an offer's flags to convert the agent side.
OFFER_FLAGS = "replace-origin replace-session-connection ICE=remove"


#: the relay refuses a Call-ID or tag longer than this in an ng command (engine._str); Kamailio answers 400
MAX_ID_LEN = 256


def _pbx_host(agent_uri: str) -> str | None:
    """The host of the agents' PBX URI if it is an IP address (always allowed, exempt from pike)."""
    import ipaddress

    host = agent_uri.split(":", 1)[1].split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    if host.startswith("[") and "]" in host:
        host = host[1:host.index("]")]  # [IPv6]:port
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]  # host:port
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def relay_cfg(listen_host: str, listen_port: int, relays: list[tuple[str, int]] | list[tuple[str, int, int]],
              agent_uri: str, *, tout_ms: int = 500, retries: int = 1, disable_s: int = 10,
              module_dir: str | None = None, children: int = 4, customer: str = "caller", allow: tuple = (),
              trusted: tuple = (), pike_requests: int = 30, max_message: int = 4000,
              max_tcp_connections: int = 512) -> str:
    """The kamailio.cfg text.  ``relays``: (host, ng port[, weight]) of every relay process/box.

    ``allow``: peer IPs/CIDRs allowed to send requests (the carrier's SBCs; empty: any); ``trusted``: hosts
    always allowed and exempt from flood limits (the agents' PBX when ``agent_uri`` names it by IP is added
    by itself: its BYEs and re-INVITEs come back through this proxy).
    """
    from ..server.kamailio import _allow_condition, front_door, front_door_params

    if not relays:
        raise ValueError("at least one relay is needed")
    if not agent_uri.startswith(("sip:", "sips:")) or any(c in agent_uri for c in '"\n\r '):
        raise ValueError("agent URI must be a sip: URI without quotes or spaces")
    if customer not in ("caller", "callee"):
        raise ValueError("customer must be caller or callee")
    if not 1000 <= int(max_message) <= 65535:
        raise ValueError("max_message must be between 1000 and 65535 bytes")
    if not 1 <= int(pike_requests) <= 100000:
        raise ValueError("pike_requests must be between 1 and 100000")
    pbx = _pbx_host(agent_uri)
    trusted = tuple(dict.fromkeys(tuple(trusted) + ((pbx,) if pbx else ())))
    cond = _allow_condition(tuple(allow), trusted)  # ValueError for garbage
    trusted_cond = " || ".join(f"src_ip=={t}" for t in trusted) or "0"
    socks = " ".join(f"udp:{r[0]}:{r[1]}={r[2] if len(r) > 2 else 1}" for r in relays)
    # each relay takes SIP INFO keys on its ng port + 1 (`dtmfguard relay --info-port` default)
    info_uris = [f"sip:dtmf@{r[0]}:{r[1] + 1};transport=udp" for r in relays]
    info_fork = f'        $ru = "{info_uris[0]}";\n' + "".join(
        f'        append_branch("{u}");\n' for u in info_uris[1:])
    flags = OFFER_FLAGS + (" customer-callee" if customer == "callee" else "")
    mods = ["kex", "corex", "tm", "tmx", "sl", "rr", "pv", "maxfwd", "textops", "siputils", "xlog", "dialog",
            "sanity", "pike", "rtpengine"]
    from ..server.kamailio import cfg_head, find_module_dir  # pure Python (no pjsua2)

    head = cfg_head("# Generated by `dtmfguard kamailio-config --mode relay`: record-routing proxy to the agents' "
                    f"PBX; media\n# through the dtmfguard relays of rtpengine set 1 ({len(relays)} relay(s)); a dead "
                    "relay is skipped.", mods, children=children, listen_host=listen_host, listen_port=listen_port,
                    module_dir=module_dir or find_module_dir("rtpengine.so"),
                    extra_globals=f"tcp_max_connections={max_tcp_connections}\ntcp_connection_lifetime=120\n"
                                  "tcp_accept_no_cl=no\n")
    return head + f"""
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 60000)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)
modparam("dialog", "dlg_flag", 4)
modparam("rtpengine", "rtpengine_sock", "1 == {socks}")
modparam("rtpengine", "setid_default", 1)
modparam("rtpengine", "rtpengine_tout_ms", {tout_ms})
modparam("rtpengine", "rtpengine_retr", {retries})
modparam("rtpengine", "rtpengine_disable_tout", {disable_s})
{front_door_params(pike_requests)}
request_route {{
{front_door(cond, trusted_cond, max_message=max_message, id_limit=MAX_ID_LEN)}    if (is_method("INFO") && ($cT =~ "application/dtmf" || $cT =~ "application/x-dtmfguard-secure"
            || is_present_hf("X-Dtmfguard-Secure"))) {{
        # key presses by SIP INFO never reach the agent: forked to every relay, the one carrying the call
        # (by Call-ID) answers 200 and masks/captures the key, the others 481; the agent side's secure-mode
        # switch (INFO application/x-dtmfguard-secure, or the X-Dtmfguard-Secure header) travels the same way
{info_fork}        t_relay();
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            if (is_method("BYE")) {{
                rtpengine_delete();
            }} else if (is_method("INVITE|UPDATE") && has_body("application/sdp")) {{
                if (!rtpengine_offer("{flags}")) {{
                    sl_send_reply("503", "No media relay");
                    exit;
                }}
                t_on_reply("MEDIA_REPLY");
            }} else if (is_method("ACK") && has_body("application/sdp")) {{
                rtpengine_answer("{OFFER_FLAGS}");
            }}
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                t_relay();
            }}
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("OPTIONS") && uri==myself && $rU==$null) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            rtpengine_delete();
            t_relay();
        }}
        exit;
    }}
    t_check_trans();
    if (!is_method("INVITE")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    record_route();
    setflag(4);
    if (has_body("application/sdp")) {{
        if (!rtpengine_offer("{flags}")) {{
            sl_send_reply("503", "No media relay available");
            exit;
        }}
    }}
    $du = "{agent_uri}";
    xlog("L_INFO", "dtmfguard: call $ci to the agents via a relay\\n");
    t_on_reply("MEDIA_REPLY");
    t_on_failure("CALL_FAILED");
    if (!t_relay()) {{
        rtpengine_delete();
        sl_reply_error();
    }}
    exit;
}}

onreply_route[MEDIA_REPLY] {{
    if (has_body("application/sdp") && (status=~"18[03]" || status=~"2[0-9][0-9]")) {{
        rtpengine_answer("{OFFER_FLAGS}");
    }}
}}

failure_route[CALL_FAILED] {{
    rtpengine_delete();
}}
"""


def write_relay_config(directory: str, listen: tuple[str, int], relays, agent_uri: str, **options) -> str:
    """Write ``kamailio.cfg`` into ``directory``; return its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.abspath(os.path.join(directory, "kamailio.cfg"))
    text = relay_cfg(listen[0], listen[1], relays, agent_uri, **options)
    with open(path, "w") as fh:
        fh.write(text)
    return path


def run_cli(args) -> int:
    """``dtmfguard kamailio-config --mode relay`` (called by :mod:`dtmfguard.cli.kamailio_config`)."""
    import json

    from ..cli import CliError

    def hostport(text: str, flag: str) -> tuple[str, int]:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise CliError(f"{flag} must be HOST:PORT, got {text!r}")
        return host.strip("[]"), int(port)

    relays = []
    for spec in args.relay or ["127.0.0.1:22222"]:
        addr, _, weight = spec.partition("=")
        if weight and not weight.isdigit():
            raise CliError(f"--relay weight must be a whole number, got {spec!r}")
        relays.append((*hostport(addr, "--relay"), int(weight or 1)))
    agent = args.agent
    if not agent and args.config:
        from ..server.config import ConfigError, load_config

        try:
            agent = load_config(args.config, {}).agent_uri
        except ConfigError as exc:
            raise CliError(str(exc)) from None
    if not agent:
        raise CliError("relay mode needs --agent (the agents' PBX, e.g. sip:agents@10.0.0.9:5060)")
    import ipaddress

    allow = tuple(a.strip() for item in (getattr(args, "allow", None) or ()) for a in item.split(",") if a.strip())
    for a in allow:
        try:
            ipaddress.ip_network(a, strict=False)
        except ValueError:
            raise CliError(f"--allow: {a!r} is not an IP address or network") from None
    try:
        path = write_relay_config(args.output, hostport(args.front, "--front"), relays, agent, allow=allow)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write to {args.output}: {exc.strerror}", 1) from None
    if args.json:
        print(json.dumps({"kamailio_cfg": path, "relays": [f"{h}:{p}" for h, p, _ in relays]}))
    else:
        print(f"wrote {path} ({len(relays)} relay(s)); run: kamailio -DD -E -f {path}")
    return 0
