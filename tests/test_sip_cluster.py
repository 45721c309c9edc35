# SPDX-License-Identifier: GPL-2.0-or-later
"""A non-PJSIP peer (sipp with its bundled RFC 2833 pcap), and calls through a real Kamailio to two
supervised workers, one of which is killed mid-call."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import time

import numpy as np
import pytest
import soundfile as sf

from _corpus_util import file_of, program
from sip_peers import Proc, SipCall, done_event, free_port, rtp_base
from sip_peers.kamailio import Kamailio, kamailio_config

pytestmark = [pytest.mark.sip, pytest.mark.slow]

PCAP_DIR = "/usr/share/sip-tester"


def test_sipp_rfc2833_pcap_call(tmp_path):
    program("sipp", "sip-tester")
    file_of("sip-tester", f"{PCAP_DIR}/dtmf_2833_1.pcap")
    sport = free_port()
    os.symlink(PCAP_DIR, tmp_path / "pcap")
    with SipCall(tmp_path) as sip:
        import subprocess

        r = subprocess.run(["sipp", "-sn", "uac_pcap", "-m", "1", "-p", str(sport), "-i", "127.0.0.1",
                            "-mp", str(rtp_base()), "-timeout", "40s", "-nostdin",
                            f"127.0.0.1:{sip.gport}"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        sip.agent.wait(15)
    guard, agent, rc_guard = sip.guard, sip.agent, sip.rc_guard
    probe = done_event(guard)
    assert rc_guard == 0
    assert probe["digits_sha256"] == hashlib.sha256(b"1").hexdigest(), probe
    assert probe["sources"] == {"rfc4733": 1}
    done = [e for e in agent.events() if e.get("event") == "done"][0]
    assert done["calls"][0]["confirmed"] and done["calls"][0]["dtmf_events"] == 0
    rec, _ = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
    assert np.abs(rec).max() > 1000  # sipp's PCMA audio reached the agent


@pytest.mark.needs_program("kamailio")
def test_kamailio_two_workers_one_killed(tmp_path):
    from dtmfguard.testkit.adversary import recover_digits

    front, base, ctl, aport = free_port(), free_port(), free_port(), free_port()
    env = {"DTMFGUARD_API_TOKEN": "test-token", "DTMFGUARD_VAULT_KEY": "55" * 32,
           "DTMFGUARD_VAULT_PATH": str(tmp_path / "vault.sqlite3")}
    paths = kamailio_config(tmp_path, "--listen", f"127.0.0.1:{base}", "--workers", "2", "--front",
                            f"127.0.0.1:{front}")
    (tmp_path / "agent").mkdir()
    sup = Proc(["-m", "dtmfguard", "serve", "--listen", f"127.0.0.1:{base}", "--agent",
                f"sip:agent@127.0.0.1:{aport}", "--workers", "2", "--rtp-port", str(rtp_base()),
                "--control", f"127.0.0.1:{ctl}"], "supervisor", tmp_path, env=env)
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(tmp_path / "agent"), "--timeout", "90", "--calls", "0"], "agent", tmp_path)
    wav = tmp_path / "keys.wav"
    from dtmfguard.testkit.synth import keypresses

    keys, _ = keypresses("4111111111111111", lead_ms=5000, rng=np.random.default_rng(3))
    sf.write(wav, keys.astype(np.int16), 8000, subtype="PCM_16")
    customers = []
    kam = None
    try:
        sup.wait_ready()
        agent.wait_ready()

        def health():
            c = http.client.HTTPConnection("127.0.0.1", ctl, timeout=5)
            c.request("GET", "/health")
            h = json.loads(c.getresponse().read())
            c.close()
            return h

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            h = health()
            if all(w.get("health", {}).get("ok") for w in h["workers"]):
                break
            time.sleep(0.3)
        # Kamailio starts once both workers listen: its first OPTIONS probes find them up (a probe that
        # finds a worker down marks it inactive until the next one); ready when it answers OPTIONS itself
        kam = Kamailio(tmp_path, paths["kamailio_cfg"])
        kam.wait_up(front)
        for i in range(2):
            customers.append(Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()),
                                   "--rtp", str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{front}",
                                   "--play", str(wav), "--play-s", "8", "--timeout", "60"], f"customer{i}", tmp_path))
        for c in customers:  # both started at once: a slow host's process start-up is not paid twice
            assert c.wait_for(lambda s: '"CONFIRMED"' in s), c.output()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            h = health()
            if [w.get("health", {}).get("active_calls") for w in h["workers"]] == [1, 1]:
                break
            time.sleep(0.2)
        assert [w["health"]["active_calls"] for w in h["workers"]] == [1, 1], h  # round-robin: one call each
        victim = h["workers"][0]["pid"]
        # mid-call: worker 0 has bridged 1 s of audio (its control API), before the key presses (5 s in)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _frames(ctl + 1, env["DTMFGUARD_API_TOKEN"]) < 50:
            time.sleep(0.05)
        assert 50 <= _frames(ctl + 1, env["DTMFGUARD_API_TOKEN"]) < 250
        os.kill(victim, signal.SIGKILL)
        rcs = [c.wait(60) for c in customers]
        # the supervisor restarts the killed worker
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            h = health()
            if h["workers"][0]["alive"] and h["workers"][0]["restarts"] >= 1 and h["workers"][0]["pid"] != victim \
                    and h["workers"][0].get("health", {}).get("ok"):
                break
            time.sleep(0.3)
        assert h["workers"][0]["restarts"] >= 1 and h["workers"][0]["last_exit"] == -9, h
        assert h["workers"][1]["restarts"] == 0
        # a new call through Kamailio still works after the restart (to either worker: Kamailio fails
        # over from a worker its probes have not seen back yet)
        late = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp", str(rtp_base()),
                     "--to", f"sip:guard@127.0.0.1:{front}", "--play-s", "1", "--timeout", "30"], "late", tmp_path)
        customers.append(late)
        assert late.wait(40) == 0
    finally:
        for c in customers:
            c.stop()
        rc_sup = sup.stop()
        agent.stop()
        if kam is not None:
            kam.stop()
    assert rcs == [0, 0]  # both customers' calls were set up and ended without a crash on their side
    assert rc_sup == 0
    recordings = sorted((tmp_path / "agent").glob("call-*.wav"))
    assert len(recordings) >= 2
    for path in recordings:  # neither the surviving nor the killed worker let a key through
        rec, _ = sf.read(path, dtype="int16")
        assert recover_digits(rec.astype(np.float64), 8000) == [], path.name
    assert "4111111111111111" not in sup.output()


def _frames(ctl, token):
    """Customer frames the worker whose control API is on ``ctl`` has processed in its (one) call."""
    from dtmfguard.server.control import request

    _, body = request(ctl, "GET", "/calls", token, None, timeout=5)
    return max((c["media"]["frames"] for c in body["calls"]), default=0)
