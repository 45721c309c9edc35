# SPDX-License-Identifier: GPL-2.0-or-later
"""Kamailio front door for several guard workers: configuration generator (pure Python).

Why Kamailio: one worker bridges at most 2 calls (pjsua2-python's 4-call
limit), so more capacity means more workers, and spreading SIP over them is
what Kamailio's ``dispatcher`` module is proven at.  The generated script is a
small stateful proxy: new INVITEs go round-robin (algorithm 4) to the workers of
set 1; a worker answering 503 (full) or not answering is skipped for the next
(``ds_next_dst`` in a failure route); dead workers are found by OPTIONS probing
(pjsua answers OPTIONS) and skipped until they answer again.  Record-Route keeps
BYE/re-INVITE on the path through the proxy.

It is also the carrier-facing front door that rejects garbage before it reaches a worker (issue 18;
each worker checks every request again, see :mod:`dtmfguard.sip.pj.edge`):

* an allow-list of peers (``--allow``: the carrier's SBCs; the workers themselves are always allowed):
  anything else gets 403;
* ``pike`` (flood detection per source IP): a source over 30 requests per 2 s is dropped silently for a
  while; TCP connection limits (``tcp_max_connections``, ``tcp_connection_lifetime``): a worker's pjsip
  keeps an accepted TCP connection for minutes and aborts past ~60 sockets, so workers should take TCP only
  from this proxy;
* ``sanity`` (RFC 3261 checks: request line, version, CSeq, Content-Length, Expires, URI schemes ...,
  answered 400/416/505 by the module itself);
* a size limit (``$ml`` > 4000 bytes, pjsip's receive buffer: 513) and methods the guard does not take
  (REGISTER 405, unknown 501);
* SDP the workers refuse anyway (``c=`` lines of 200+ characters, DTLS-SRTP ``UDP/TLS`` profiles): 488.
"""
from __future__ import annotations

import os

from .config import GuardConfig
from .supervisor import worker_configs

__all__ = ["dispatcher_list", "kamailio_cfg", "write_config", "MODULE_DIRS"]

MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules",
               "/usr/local/lib64/kamailio/modules")


def dispatcher_list(cfg: GuardConfig, transport: str = "udp") -> str:
    lines = ["# dtmfguard workers: setid destination flags priority attributes"]
    for w in worker_configs(cfg):
        lines.append(f"1 sip:{w.sip_host}:{w.sip_port};transport={transport} 0 0 duid=guard{w.sip_port}")
    return "\n".join(lines) + "\n"


def find_module_dir(probe: str = "dispatcher.so") -> str:
    """The first of Debian's module folders that holds ``probe`` (a module the script loads)."""
    for d in MODULE_DIRS:
        if os.path.exists(os.path.join(d, probe)):
            return d
    return MODULE_DIRS[0]


def cfg_head(comment: str, modules: list[str], *, children: int, listen_host: str, listen_port: int,
             module_dir: str, extra_globals: str = "") -> str:
    """The global part every generated script shares: settings, listeners, module path and modules."""
    load = "\n".join(f'loadmodule "{m}.so"' for m in modules)
    return f"""#!KAMAILIO
{comment}
debug=2
log_stderror=yes
memdbg=5
memlog=5
children={children}
tcp_children=2
auto_aliases=no
{extra_globals}listen=udp:{listen_host}:{listen_port}
listen=tcp:{listen_host}:{listen_port}
mpath="{module_dir}"
{load}
"""


#: methods forwarded to the workers; REGISTER gets 405, anything else 501 (RFC 3261 §8.2.1)
ALLOWED_METHODS = "INVITE|ACK|BYE|CANCEL|OPTIONS|INFO|UPDATE|PRACK|NOTIFY|REFER"


def _allow_condition(allow: tuple, workers: tuple) -> str:
    """A Kamailio condition true for allowed sources (IPs or CIDRs); empty when everything is allowed."""
    import ipaddress

    nets = []
    for a in tuple(allow) + tuple(workers):
        net = ipaddress.ip_network(a, strict=False)  # ValueError for garbage: the CLI reports it
        nets.append(str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net))
    if not allow:
        return ""
    return " || ".join(f"src_ip=={n}" for n in dict.fromkeys(nets))


def allow_block(cond: str) -> str:
    """The allow-list check of a request route (403 for a source outside it); empty when everything is allowed."""
    return (f"""    if (!({cond})) {{
        xlog("L_WARN", "dtmfguard: $rm from $si not in the allow-list\\n");
        sl_send_reply("403", "Forbidden");
        exit;
    }}
""" if cond else "")


def front_door_params(pike_requests: int) -> str:
    """The flood and sanity module settings of :func:`front_door`."""
    return f"""modparam("pike", "sampling_time_unit", 2)
modparam("pike", "reqs_density_per_unit", {pike_requests})
modparam("pike", "remove_latency", 4)
modparam("sanity", "autodrop", 1)
"""


def front_door(cond: str, trusted_cond: str, *, max_message: int = 4000, allow_header: str = "",
               id_limit: int = 0) -> str:
    """The first checks of every generated request route, shared by serve and relay mode: allow-list (403),
    flood limit for everyone but ``trusted_cond`` (pike), size (513), ``sanity`` (RFC 3261 syntax), REGISTER
    405 and unknown methods 501 with an Allow header, Call-ID/tags over ``id_limit`` (400, when set), SDP no
    media element here takes (488), Max-Forwards (483)."""
    allow_header = allow_header or "Allow: " + ALLOWED_METHODS.replace("|", ", ") + "\\r\\n"
    ids = (f"""    if ($(ci{{s.len}}) > {id_limit} || $(ft{{s.len}}) > {id_limit} || $(tt{{s.len}}) > {id_limit}) {{
        sl_send_reply("400", "Call-ID or Tag Too Long");
        exit;
    }}
""" if id_limit else "")
    return allow_block(cond) + f"""    if (!({trusted_cond}) && !pike_check_req()) {{
        xlog("L_WARN", "dtmfguard: flood from $si, dropped\\n");
        exit;
    }}
    if ($ml > {int(max_message)}) {{
        sl_send_reply("513", "Message Too Large");
        exit;
    }}
    if (!sanity_check("1535", "7")) {{
        exit;
    }}
    if (is_method("REGISTER")) {{
        append_to_reply("{allow_header}");
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (!is_method("{ALLOWED_METHODS}")) {{
        append_to_reply("{allow_header}");
        sl_send_reply("501", "Not Implemented");
        exit;
    }}
{ids}    if (has_body("application/sdp")) {{
        if (search_body("^c=[^\\r\\n]{{200,}}") || search_body("^m=[a-z]+ [0-9/]+ UDP/TLS/")) {{
            sl_send_reply("488", "Not Acceptable Here");
            exit;
        }}
    }}
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
"""


def kamailio_cfg(listen_host: str, listen_port: int, list_file: str, *, ping_interval_s: int = 2,
                 module_dir: str | None = None, children: int = 2, allow: tuple = (), workers: tuple = (),
                 pike_requests: int = 30, max_tcp_connections: int = 512) -> str:
    """The script; ``allow``: peer IPs/CIDRs allowed to send requests (empty: any), ``workers``: the
    workers' addresses (always allowed: their BYEs and re-INVITEs come back through the proxy)."""
    mods = ["kex", "corex", "tm", "tmx", "sl", "rr", "pv", "maxfwd", "textops", "siputils", "xlog", "dispatcher",
            "sanity", "pike"]
    cond = _allow_condition(tuple(allow), tuple(workers))
    worker_cond = " || ".join(f"src_ip=={w}" for w in dict.fromkeys(workers)) or "0"
    head = cfg_head("# Generated by `dtmfguard kamailio-config`: round-robin over dtmfguard workers, failover on "
                    "503/timeout.", mods, children=children, listen_host=listen_host, listen_port=listen_port,
                    module_dir=module_dir or find_module_dir(),
                    extra_globals=f"tcp_max_connections={max_tcp_connections}\ntcp_connection_lifetime=120\n"
                                  "tcp_accept_no_cl=no\n")
    return head + f"""
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 60000)
modparam("rr", "enable_full_lr", 1)
modparam("dispatcher", "list_file", "{list_file}")
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_ping_interval", {ping_interval_s})
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_ping_from", "sip:dispatcher@{listen_host}:{listen_port}")
{front_door_params(pike_requests)}
request_route {{
{front_door(cond, worker_cond)}    if (has_totag()) {{
        if (loose_route()) {{
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
            t_relay();
        }}
        exit;
    }}
    t_check_trans();
    if (is_method("INVITE|SUBSCRIBE")) {{
        record_route();
    }}
    if (!ds_select_dst("1", "4")) {{
        sl_send_reply("503", "No dtmfguard worker available");
        exit;
    }}
    xlog("L_INFO", "dtmfguard: $rm to worker $du\\n");
    t_on_failure("GUARD_FAILOVER");
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

failure_route[GUARD_FAILOVER] {{
    if (t_is_canceled()) {{
        exit;
    }}
    if (t_branch_timeout() && !t_branch_replied()) {{
        ds_mark_dst("ip");
    }}
    if (t_check_status("503") || (t_branch_timeout() && !t_branch_replied())) {{
        if (ds_next_dst()) {{
            t_on_failure("GUARD_FAILOVER");
            t_relay();
            exit;
        }}
    }}
}}
"""


def write_config(cfg: GuardConfig, directory: str, listen: tuple[str, int], transport: str = "udp",
                 allow: tuple = ()) -> tuple[str, str]:
    """Write ``kamailio.cfg`` and ``dispatcher.list`` into ``directory``; return both paths."""
    os.makedirs(directory, exist_ok=True)
    lst = os.path.abspath(os.path.join(directory, "dispatcher.list"))
    main = os.path.abspath(os.path.join(directory, "kamailio.cfg"))
    with open(lst, "w") as fh:
        fh.write(dispatcher_list(cfg, transport))
    with open(main, "w") as fh:
        fh.write(kamailio_cfg(listen[0], listen[1], lst, allow=tuple(allow),
                              workers=tuple(dict.fromkeys(w.sip_host for w in worker_configs(cfg)))))
    return main, lst
