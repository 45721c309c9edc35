# SPDX-License-Identifier: GPL-2.0-or-later
"""Faults during a live payment through ``dtmfguard serve`` (issue 8), with real processes.

* The payment gateway (webhook, a real HTTPS server on 127.0.0.1 running the sample receiver's code)
  answers 500, is slow, or is down while the customer types a card in a live call: the card reaches
  the processor once or not at all (never twice, never a different card), the retries carry one
  idempotency key, and the agent's feed says what happened.  The capture tests prove the session logic
  without SIP (test_capture_webhook.py); these prove it with the media path, control API and worker.
* A worker is killed (SIGKILL) mid-payment under ``serve --workers 2``: its call and partial card die
  with it (nothing is sent), the supervisor ends the dead call's legs with a BYE to the customer and to
  the agent within a few seconds (from the dialogs the worker recorded in its run directory, 0600, no
  card data), the agent desktop's feed ends with ``stream_lost``, ``/health`` counts the lost call, the
  other worker's call and payment complete, the supervisor restarts the worker, and no card digit
  appears in any output or on any agent recording.  test_sip_cluster.py covers
  the kill through Kamailio without a payment; this one needs no Kamailio.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.server.control import follow_feed, request as control_request
from dtmfguard.testkit.synth import keypresses

from _capture_util import SECRET, Receiver, make_tls_cert
from sip_peers import Proc, SipCall, connected_call as sip_connected_call, free_port, rtp_base

pytestmark = [pytest.mark.sip, pytest.mark.slow]

TOKEN = "faults-token"
CARDS = {"A": ("4111111111111111", "123"), "B": ("5555555555554444", "456")}


def _api(port, method, path, body=None):
    return control_request(port, method, path, TOKEN, body, timeout=10)


class FeedReader(threading.Thread):
    """The agent desktop's view: the call's SSE feed until ``call_ended``."""

    def __init__(self, port, call_id):
        super().__init__(daemon=True)
        self.port, self.call_id, self._events = port, call_id, []

    def run(self):
        follow_feed(self.port, self.call_id, TOKEN, lambda kind, data: self._events.append(data))

    def events(self):
        return list(self._events)

    @property
    def raw(self):
        """Everything the feed carried, as text (searched for card data)."""
        return [json.dumps(e) + "\n" for e in self._events]


#: silence before the card: the test starts the payment in it (checked: started_before_the_card)
LEAD_S = 2.0


def card_wav(path, card, lead_s=LEAD_S, tail_s=4.0):
    pan, cvv = card
    keys, _ = keypresses(f"{pan}#1230{cvv}#", tone_ms=80, gap_ms=80, rng=np.random.default_rng(len(pan)))
    x = np.concatenate([np.zeros(int(lead_s * 8000)), keys, np.zeros(int(tail_s * 8000))])
    sf.write(path, np.clip(x, -32768, 32767).astype(np.int16), 8000, subtype="PCM_16")
    return x.size / 8000


def write_config(path, url, ca_file, **options):
    opts = {"url": url, "ca_file": str(ca_file), "timeout_s": 1.0, "max_attempts": 4, "backoff_s": 0.2,
            "backoff_max_s": 1.0, **options}
    lines = ["[payment]", 'gateway = "webhook"', "[payment.options]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in opts.items()]
    path.write_text("\n".join(lines) + "\n")


def connected_call(ctl, timeout=15.0):
    return sip_connected_call(ctl, TOKEN, timeout)["id"]


def start_payment(ctl, call_id):
    status, body = _api(ctl, "POST", f"/calls/{call_id}/payment", {"amount": 1999, "reference": "INV-8"})
    assert status == 201, body
    feed = FeedReader(ctl, call_id)
    feed.started_at = time.time()  # the session is attached before the answer
    feed.start()
    return feed


def started_before_the_card(customer, feed, lead_s=LEAD_S):
    """The test's premise: the payment started before the customer's first key (``lead_s`` after its media
    started).  A session that misses the first keys ends "abandoned" at hang-up (still collecting) for a
    reason that is the test's timing, not the payment path: say so instead."""
    media = [e["t"] for e in customer.events() if e.get("event") == "media_state" and e.get("status") == "active"]
    assert media, customer.output()[-2000:]
    late = feed.started_at - (media[0] + lead_s)
    assert late < 0, f"the payment started {late:.2f} s after the customer's first key (the host was too slow " \
                     "for the test's timing; the session could not capture the card)"
    return -late


def why(events):
    """What a session that did not complete met on the way (field names, reasons, outcome: never digits)."""
    keep = ("field_complete", "field_timeout", "field_cleared", "gateway_result", "session_ended")
    return [{k: v for k, v in e.items() if k in ("type", "field", "valid", "reason", "finished_by", "attempt",
                                                  "status", "outcome", "attempts")}
            for e in events if e.get("type") in keep]


def keys_lost_with_frames(events, guard_log: str) -> bool:
    """True when the session was abandoned (a key never reached it) on a call whose customer stream lost frames in
    the guard's jitter buffer (on a loaded host packets arrive too late; one lost inside an 80 ms in-band key can take
    the key with it, and the customer would type again: as ``test_soak``'s allowance).  A key lost on a call
    without lost frames is not excused."""
    abandoned = any(e.get("type") == "session_ended" and e.get("outcome") == "abandoned" for e in events)
    return abandoned and re.search(r"jitter buffer lost frames at \[\d", guard_log) is not None


def card_sha(payment):
    c = payment["card"]
    return hashlib.sha256(f"{c['number']}|{c['expiry_month']}|{c['expiry_year']}|{c['security_code']}".encode()).hexdigest()


def expected_sha(card):
    return hashlib.sha256(f"{card[0]}|12|2030|{card[1]}".encode()).hexdigest()


@pytest.fixture
def tls(tmp_path):
    return make_tls_cert(tmp_path)


@pytest.mark.parametrize("fault", ["500", "slow", "down"])
def test_gateway_fault_during_a_live_payment(tmp_path, tls, fault):
    receiver = Receiver(*tls)
    url = receiver.url
    if fault == "500":
        receiver.script = ["500", "500"]  # two failures, then the processor answers
    elif fault == "slow":
        receiver.charge_delay_s = 2.5  # the first attempt times out (1 s) while the charge goes through
    else:
        receiver.close()  # nothing listens on the port any more
    write_config(tmp_path / "guard.toml", url, tls[0])
    play_s = card_wav(tmp_path / "c.wav", CARDS["A"], tail_s=6.0)
    env = {"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_WEBHOOK_SECRET": SECRET.decode()}
    try:
        with SipCall(tmp_path, serve=True, control=True, env=env,
                     guard_args=["--config", str(tmp_path / "guard.toml")]) as sip:
            customer = sip.customer("--play", str(tmp_path / "c.wav"), "--play-s", f"{play_s:.1f}")
            feed = start_payment(sip.ctl, connected_call(sip.ctl))
            assert customer.wait(60) == 0  # the call stayed up for the whole script while the gateway failed
            feed.join(20)
    finally:
        if fault != "down":
            receiver.close()
    guard, agent, rc_guard = sip.guard, sip.agent, sip.rc_guard
    assert rc_guard == 0
    events = feed.events()
    kinds = [e.get("type") for e in events]
    ended = [e for e in events if e.get("type") == "session_ended"]
    result = [e for e in events if e.get("type") == "gateway_result"]
    started_before_the_card(customer, feed)
    # every key reached the session (if not: which field met what; an "abandoned" outcome means the session
    # was still collecting when the customer hung up, i.e. a key was missed; a slow gateway cannot cause it,
    # a payment with the gateway cannot be abandoned), unless the host lost the customer's packets (clean-clone
    # run 57: 3 frames lost, the security code one key short; the gateway was never asked, so nothing to check)
    if not (kinds.count("field_complete") == 3 and "submitting" in kinds) \
            and keys_lost_with_frames(events, guard.err_path.read_text()):
        pytest.skip("the guard's jitter buffer lost customer frames on this loaded host, and a key with them: "
                    f"{why(events)}")
    assert kinds.count("field_complete") == 3 and "submitting" in kinds, why(events)
    assert len(ended) == 1 and len(result) == 1, kinds
    keys = {r[0].get("Idempotency-Key") for r in receiver.requests}
    if fault == "down":
        # the agent is told the processor is unavailable; nothing was charged, the card is gone (wiped)
        assert ended[0]["outcome"] == "gateway_unavailable", ended
        assert "unavailable" in ended[0]["reason"] and "4 attempts" in ended[0]["reason"], ended
        assert receiver.requests == [] and receiver.charges == 0
    else:
        assert ended[0]["outcome"] == "completed", why(events)
        assert receiver.charges == 1  # charged once despite the retries
        assert len(keys) == 1 and len({r[1] for r in receiver.requests}) == 1  # one key, byte-identical bodies
        assert card_sha(receiver.payments[0]) == expected_sha(CARDS["A"])  # the card typed, not another
        if fault == "500":
            assert len(receiver.requests) == 3 and result[0]["attempts"] == 3, result
        else:  # timed out, then 409 "still processing", then the stored answer
            assert len(receiver.requests) >= 2 and result[0]["attempts"] >= 2, result
    text = "".join(feed.raw) + guard.output() + agent.output() + customer.output()
    assert CARDS["A"][0] not in text and "411111" not in text
    from dtmfguard.testkit.adversary import recover_digits

    rec, _ = sf.read(tmp_path / "agent" / "call-0.wav", dtype="int16")
    assert recover_digits(rec.astype(np.float64), 8000) == []


def test_worker_killed_mid_payment(tmp_path, tls):
    """serve --workers 2, a payment on each worker; worker 0 is SIGKILLed while its customer types."""
    receiver = Receiver(*tls)
    write_config(tmp_path / "guard.toml", receiver.url, tls[0])
    wavs = {}
    for name, card in CARDS.items():
        wavs[name] = (tmp_path / f"{name}.wav", card_wav(tmp_path / f"{name}.wav", card))
    base, aport, ctl = free_port(), free_port(), free_port()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {"DTMFGUARD_API_TOKEN": TOKEN, "DTMFGUARD_WEBHOOK_SECRET": SECRET.decode(),
           "RUNTIME_DIRECTORY": str(run_dir)}
    (tmp_path / "agent").mkdir()
    agent = Proc(["-m", "dtmfguard.sip.pj.peers", "agent", "--port", str(aport), "--rtp", str(rtp_base()),
                  "--record-dir", str(tmp_path / "agent"), "--timeout", "90", "--calls", "0"], "agent", tmp_path)
    sup = Proc(["-m", "dtmfguard", "serve", "--config", str(tmp_path / "guard.toml"), "--listen",
                f"127.0.0.1:{base}", "--agent", f"sip:agent@127.0.0.1:{aport}", "--workers", "2",
                "--rtp-port", str(rtp_base()), "--control", f"127.0.0.1:{ctl}"], "supervisor", tmp_path, env=env)
    customers, feeds = {}, {}
    try:
        sup.wait_ready()
        agent.wait_ready()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            h = _health(ctl)
            if all(w.get("health", {}).get("ok") for w in h["workers"]):
                break
            time.sleep(0.2)
        pids = [w["pid"] for w in h["workers"]]
        for i, name in enumerate(CARDS):  # customer A -> worker 0, B -> worker 1 (port + i * 10)
            path, seconds = wavs[name]
            customers[name] = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp",
                                    str(rtp_base()), "--to", f"sip:guard@127.0.0.1:{base + 10 * i}",
                                    "--play", str(path), "--play-s", f"{seconds:.1f}", "--timeout", "60"],
                                   f"customer{name}", tmp_path)
            feeds[name] = start_payment(ctl + 1 + i, connected_call(ctl + 1 + i))
        # worker 0's customer is typing (keys start 2 s in and last ~4 s): wait for the first field
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "field_complete" not in [e.get("type") for e in feeds["A"].events()]:
            time.sleep(0.05)
        assert "field_complete" in [e.get("type") for e in feeds["A"].events()], feeds["A"].raw
        # worker 0's dialogs are on disk for the supervisor: private, identifiers only, no card data
        states = list(run_dir.glob("*/worker-0.dialogs.json"))
        assert len(states) == 1 and states[0].stat().st_mode & 0o777 == 0o600, states
        legs = json.loads(states[0].read_text())["legs"]
        assert sorted(leg["role"] for leg in legs) == ["agent", "customer"] and all(leg["confirmed"] for leg in legs)
        state_text = states[0].read_text()
        os.kill(pids[0], signal.SIGKILL)
        killed = time.monotonic()
        hung_up = {}  # the dead call's customer and agent peers see the supervisor's BYE
        while time.monotonic() - killed < 30 and len(hung_up) < 2:
            if "A" not in hung_up and _disconnected(customers["A"], 0):
                hung_up["A"] = time.monotonic() - killed
            if "agent" not in hung_up and _disconnected(agent, 0):
                hung_up["agent"] = time.monotonic() - killed
            time.sleep(0.02)
        print(f"SIGKILL -> BYE seen by the customer {hung_up.get('A', -1):.2f} s, "
              f"by the agent {hung_up.get('agent', -1):.2f} s (limit 5 s; session timers: 90 s)")
        assert hung_up.get("A", 99) < 5 and hung_up.get("agent", 99) < 5, hung_up
        assert not _disconnected(customers["B"], 0) and not _disconnected(agent, 1)  # worker 1's call goes on
        feeds["A"].join(10)
        assert feeds["A"].events()[-1]["type"] == "stream_lost", feeds["A"].raw  # the desktop shows "lost"
        rc = {name: c.wait(60) for name, c in customers.items()}
        feeds["B"].join(20)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            h = _health(ctl)
            w0 = h["workers"][0]
            if w0["alive"] and w0["restarts"] >= 1 and w0.get("health", {}).get("ok"):
                break
            time.sleep(0.2)
        assert h["workers"][0]["restarts"] >= 1 and h["workers"][0]["last_exit"] == -signal.SIGKILL, h
        assert h["workers"][0]["pid"] != pids[0] and h["workers"][0]["health"]["active_calls"] == 0, h
        assert h["workers"][1]["restarts"] == 0 and h["workers"][1]["pid"] == pids[1], h
        loss = h["workers"][0]["last_loss"]
        assert h["workers"][0]["calls_lost"] == 1 and loss["calls"] == 1 and loss["legs"] == 2, h
        assert sorted((r["action"], r["result"], r["code"]) for r in loss["results"]) == [
            ("bye", "answered", 200)] * 2, loss
        assert h["workers"][1]["calls_lost"] == 0 and h["workers"][1]["last_loss"] is None, h
        # the restarted worker takes a new call
        late = Proc(["-m", "dtmfguard.sip.pj.peers", "customer", "--port", str(free_port()), "--rtp", str(rtp_base()),
                     "--to", f"sip:guard@127.0.0.1:{base}", "--play-s", "1", "--timeout", "30"], "late", tmp_path)
        customers["late"] = late
        assert late.wait(40) == 0
    finally:
        for c in customers.values():
            c.stop()
        rc_sup = sup.stop()
        agent.stop()
        receiver.close()
    assert rc_sup == 0
    assert rc == {"A": 0, "B": 0}  # both calls were set up; A's was ended by the supervisor, B's completed
    assert list(run_dir.iterdir()) == []  # the supervisor's run directory is gone, no state file left
    assert not os.path.exists(f"/proc/{pids[0]}") and not os.path.exists(f"/proc/{pids[1]}")  # no leftovers
    # the surviving worker's payment went through once, with its own card; nothing of A's card was sent
    b = feeds["B"].events()
    for name in CARDS:
        started_before_the_card(customers[name], feeds[name])
    # "abandoned" here meant a missed key: B's session was still collecting when its customer hung up
    assert [e["outcome"] for e in b if e.get("type") == "session_ended"] == ["completed"], why(b)
    assert receiver.charges == 1 and [card_sha(p) for p in receiver.payments] == [expected_sha(CARDS["B"])]
    # A's feed stops where the worker died (no false "completed"); the agent desktop sees the stream end
    assert "session_ended" not in [e.get("type") for e in feeds["A"].events()]
    text = "".join(feeds["A"].raw + feeds["B"].raw) + sup.output() + agent.output() + state_text
    text += "".join(c.output() for c in customers.values())
    for pan, _ in CARDS.values():
        assert pan not in text and pan[:6] not in text
    from dtmfguard.testkit.adversary import recover_digits

    recordings = sorted((tmp_path / "agent").glob("call-*.wav"))
    assert len(recordings) >= 3
    for path in recordings:  # neither the killed nor the surviving worker let a key through
        rec, _ = sf.read(path, dtype="int16")
        assert recover_digits(rec.astype(np.float64), 8000) == [], path.name


def _disconnected(proc, call_index):
    return any(e.get("event") == "state" and e.get("call") == call_index and e.get("state") == "DISCONNECTED"
               for e in proc.events())


def _health(ctl):
    c = http.client.HTTPConnection("127.0.0.1", ctl, timeout=5)
    try:
        c.request("GET", "/health")
        return json.loads(c.getresponse().read())
    finally:
        c.close()
