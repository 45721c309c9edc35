# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 18, "per-call state owned by one thread": thousands of concurrent start/cancel requests on live
calls (straight to the workers' local APIs and through the box endpoint), and more while the calls hang
up.  Exactly one payment session per call at a time; every session created ends and is audited; the
masked feed shows each session's start and end, never two sessions open at once."""
from __future__ import annotations

import asyncio
import collections
import json
import random
import time

import pytest

aiohttp = pytest.importorskip("aiohttp", reason="the box endpoint and this test's client need aiohttp")

from _box_util import ADMIN, Box, req, sse  # noqa: E402

pytestmark = [pytest.mark.sip, pytest.mark.slow]

AUTH = {"Authorization": f"Bearer {ADMIN}"}


async def _storm(targets: list, n: int, mix: float, seed: int) -> list:
    """``n`` requests at once; each a start (or, with probability ``mix``, a cancel) on a random call.
    ``targets``: (base URL, path prefix of the call, call key).  Returns (key, kind, status, body)."""
    rnd = random.Random(seed)
    plan = [(rnd.choice(targets), "cancel" if rnd.random() < mix else "start") for _ in range(n)]
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as s:
        gate = asyncio.Event()

        async def one(target, kind):
            base, prefix, key = target
            await gate.wait()
            url = f"{base}{prefix}/payment" + ("/cancel" if kind == "cancel" else "")
            body = None if kind == "cancel" else {"amount": 100, "reference": "RACE"}
            async with s.post(url, json=body, headers=AUTH) as r:
                return key, kind, r.status, await r.json(content_type=None)

        tasks = [asyncio.create_task(one(t, k)) for t, k in plan]
        await asyncio.sleep(0.2)
        gate.set()  # all at once
        return await asyncio.gather(*tasks)


def test_concurrent_start_cancel_on_live_calls(tmp_path):
    box = Box(tmp_path, workers=2)
    try:
        for w in (0, 1):
            box.call(f"cust{w}", play_s=25.0, count=2, worker=w, timeout=120)
        calls = box.wait_calls(4, timeout=30)
        handles = sorted(c["handle"] for c in calls)
        targets = []
        for c in calls:
            worker_url = f"http://127.0.0.1:{box.ctl + 1 + c['worker']}"
            targets.append((worker_url, f"/calls/{c['id']}", c["handle"]))
            targets.append((f"http://127.0.0.1:{box.ctl}", f"/v1/calls/{c['handle']}", c["handle"]))

        results = asyncio.run(_storm(targets, 1000, 0.0, 1))  # 1,000 concurrent starts
        created = collections.Counter(key for key, _, st, _ in results if st == 201)
        statuses = collections.Counter(st for _, _, st, _ in results)
        print("starts only:", dict(statuses))
        assert created == {h: 1 for h in handles}, (created, statuses)
        assert set(statuses) <= {201, 409}, statuses

        mixed = asyncio.run(_storm(targets, 1500, 0.5, 2))  # 1,500 concurrent starts and cancels
        statuses = collections.Counter((kind, st) for _, kind, st, _ in mixed)
        print("start/cancel:", dict(statuses))
        # (an overload answer is allowed: a worker whose main loop did not run the action within its 5 s answers
        # 503 and drops it; that it really was dropped is checked below, where every session started is one a 201
        # announced.  How many depends on the host: 0 alone, 3 and 64 of 1,500 in clean-clone runs 48 and 71 on a
        # loaded 2-core host; the bound is a tenth, far from "every request refused")
        assert {st for _, _, st, _ in mixed} <= {200, 201, 409, 503}, statuses
        assert sum(1 for _, _, st, _ in mixed if st == 503) <= len(mixed) // 10, statuses
        assert statuses[("start", 201)] >= len(handles), statuses  # and sessions were started and cancelled
        results += mixed

        # and while the calls hang up: waves of starts and cancels until no call is left
        deadline = time.monotonic() + 60
        waves = 0
        while time.monotonic() < deadline:
            wave = asyncio.run(_storm(targets, 200, 0.3, 10 + waves))
            waves += 1
            results += wave
            if all(st == 404 or (st == 409 and "not connected" in json.dumps(body)) for _, _, st, body in wave):
                break
        assert waves > 1
        for p in box.customers:
            assert p.wait(60) == 0
        # (no pause here: the audit poll below waits for every session to end, and each feed read ends at its
        # call_ended event)

        sessions = {body["session"]: key for key, kind, st, body in results if st == 201}
        print(f"{len(results)} requests, {len(sessions)} sessions created, {waves} waves while hanging up")
        # every session ends and is audited (session_started and session_ended records)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
            started = {r["session_id"] for r in audit if r["event"] == "session_started"}
            ended = {r["session_id"] for r in audit if r["event"] == "session_ended"}
            if started == ended == set(sessions):
                break
            time.sleep(0.5)
        assert started == set(sessions), (len(started), len(sessions))
        assert ended == set(sessions), f"{len(started - ended)} sessions never ended"

        # the feed of each call: sessions strictly one after another, each started then ended
        for h in handles:
            st, events = sse(box.ctl, f"/v1/calls/{h}/feed")
            assert st == 200 and events[-1][1] == "call_ended"
            open_session = None
            seen = []
            for _, kind, data in events:
                if kind == "session_started":
                    assert open_session is None, f"{h}: two sessions open at once"
                    open_session = data["session"]
                    seen.append(open_session)
                elif kind == "session_ended":
                    assert data["session"] == open_session
                    open_session = None
            assert open_session is None, f"{h}: a session never ended in the feed"
            assert sorted(seen) == sorted(s for s, key in sessions.items() if key == h)
        assert req(box.ctl, "GET", "/health")[0] == 200  # no worker died
    finally:
        rc = box.stop()
    assert rc == 0
