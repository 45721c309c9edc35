# SPDX-License-Identifier: GPL-2.0-or-later
"""Kamailio front door failover with real processes: a worker that answers 503, or is down, is skipped.

Why: `dtmfguard kamailio-config` writes a dispatcher set with a failure route (``ds_next_dst`` on 503 or
timeout, RFC 3261 §21.5.4: 503 means "try another server").  A customer must never be refused while
another worker could take the call.  Here worker 0 is a guard whose media pipeline cannot be created
(it answers every INVITE 503, the fail-closed path) or is not running at all; worker 1 is healthy.
Every call placed through Kamailio must end up bridged by worker 1.
"""
from __future__ import annotations

import time

import pytest

from sip_peers import HERE, Proc, free_port, rtp_base
from sip_peers.kamailio import Kamailio, kamailio_config

pytestmark = [pytest.mark.sip, pytest.mark.slow,
              pytest.mark.needs_program("kamailio")]

PAN = "4111111111111111"


def _front_door(tmp_path, base, front):
    paths = kamailio_config(tmp_path, "--listen", f"127.0.0.1:{base}", "--agent", "sip:agent@127.0.0.1:5999",
                            "--workers", "2", "--front", f"127.0.0.1:{front}")
    return Kamailio(tmp_path, paths["kamailio_cfg"])


def _worker(tmp_path, port, aport, name, fault="none"):
    return Proc([str(HERE / "guard_probe.py"), "--listen", f"127.0.0.1:{port}", "--agent",
                 f"sip:agent@127.0.0.1:{aport}", "--rtp-port", str(rtp_base()), "--timeout", "40",
                 "--fault", fault], name, tmp_path)


@pytest.mark.parametrize("worker0", ["503", "down"])
def test_call_lands_on_the_healthy_worker(tmp_path, worker0):
    # worker i listens on base + 10 * i (workers.sip_port_step, as in the generated dispatcher.list)
    front, base, aport = free_port(), free_port(), free_port()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--timeout", "40", "--calls", "0"], "agent", tmp_path)
    workers = [_worker(tmp_path, base + 10, aport, "worker1")]
    if worker0 == "503":
        workers.append(_worker(tmp_path, base, aport, "worker0", fault="pipeline"))
    kam = _front_door(tmp_path, base, front)
    customers = []
    elapsed = []
    try:
        agent.wait_ready()
        for w in workers:
            w.wait_ready()
        # two calls in a row: round-robin offers worker 0 first for one of them (and for both when down
        # before the OPTIONS probe has noticed)
        for i in range(2):
            c = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                      str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{front}", "--play-s", "0.5",
                      "--timeout", "20"], f"customer{i}", tmp_path)
            customers.append(c)
            t0 = time.monotonic()
            rc = c.wait(30)
            elapsed.append(time.monotonic() - t0)  # process start, call, 0.5 s of media, hang-up, tear-down
            assert rc == 0, (c.output()[-2000:], (tmp_path / "kam.err").read_text()[-2000:])
    finally:
        for c in customers:
            c.stop()
        rcs = {w.name: w.stop() for w in workers}
        agent.stop()
        kam.stop()
    print(f"worker 0 {worker0}: customer runs {', '.join(f'{s:.1f}' for s in elapsed)} s")
    probes = {w.name: [e for e in w.events() if e.get("event") == "done"][0] for w in workers}
    assert all(rc == 0 for rc in rcs.values()), rcs
    assert [e["status"] for c in customers for e in c.events() if e.get("event") == "done"] == [200, 200]
    assert probes["worker1"]["health"]["connected"] == 2  # both calls bridged by the healthy worker
    routed = (tmp_path / "kam.err").read_text()
    if worker0 == "503":
        # worker 0 was offered at least one call and refused it (the failover path, not luck)
        assert probes["worker0"]["health"]["calls"] >= 1 and probes["worker0"]["health"]["connected"] == 0
        assert "pipeline could not be created" in workers[1].output()
        assert "ended (pipeline-failed)" in workers[1].output()
        assert f"worker sip:127.0.0.1:{base};" in routed
    for proc in [*customers, *workers, agent]:
        assert PAN not in proc.output()
