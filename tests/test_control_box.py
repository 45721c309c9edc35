# SPDX-License-Identifier: GPL-2.0-or-later
"""The box control endpoint through a real ``dtmfguard serve --workers 2`` and real calls: one endpoint
for every worker, calls found by correlation id in one request, per-agent tokens that cannot see or act
on another agent's calls, tickets, CORS, SSE with ids and Last-Event-ID resume that loses and repeats
nothing, /metrics, and no card data anywhere."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import _corpus_util

pytest.importorskip("aiohttp", reason="the box endpoint needs aiohttp")
pytest.importorskip("prometheus_client", reason="/metrics needs prometheus_client")

from _box_util import PAN, Box, req, sse  # noqa: E402
from sip_peers import free_port, rtp_base  # noqa: E402

pytestmark = [pytest.mark.sip, pytest.mark.slow]


def _sipp_call_with_correlation_header(box, tmp_path, worker: int):
    """sipp (an independent SIP peer) calls worker ``worker`` with ``X-Correlation-ID: CRM-CASE-AB77``."""
    scenario = Path(__file__).resolve().parent / "data" / "uac_correlation.xml"
    return subprocess.Popen(["sipp", "-sf", str(scenario), "-m", "1", "-p", str(free_port()), "-mp",
                             str(rtp_base()), "-i", "127.0.0.1", "-nostdin", f"127.0.0.1:{box.gport + 10 * worker}", "-timeout", "30", "-trace_err",
                             "-error_file", str(tmp_path / "sipp.err")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)


def test_box_endpoint_end_to_end(tmp_path):
    box = Box(tmp_path, workers=4, agent_user="agent7", log_json=True)
    try:
        # per-agent tokens, issued by the admin token only
        status, body, _ = req(box.ctl, "POST", "/v1/tokens", {"agent": "agent7", "ttl_s": 600})
        assert status == 201, body
        tok7 = body["token"]
        tok8 = req(box.ctl, "POST", "/v1/tokens", {"agent": "agent8"})[1]["token"]
        assert req(box.ctl, "POST", "/v1/tokens", {"agent": "x"}, token=tok7)[0] == 403
        assert req(box.ctl, "GET", "/v1/calls", token=None)[0] == 401
        assert req(box.ctl, "GET", "/v1/calls", token="wrong-token-xyz")[0] == 401
        assert req(box.ctl, "GET", "/v1/calls", token=tok7[:-3] + "AAA")[0] == 401  # forged signature

        has_sipp = shutil.which("sipp") is not None
        if has_sipp:  # the configured correlation header, sent by a peer nobody here wrote
            sipp = _sipp_call_with_correlation_header(box, tmp_path, worker=3)
            try:
                calls = box.wait_calls(1, token=tok7, query="?correlation=CRM-CASE-AB77")
                assert len(calls) == 1 and calls[0]["worker"] == 3, calls
                assert calls[0]["correlation"]["header"] == "CRM-CASE-AB77"
                assert req(box.ctl, "GET", "/v1/calls?correlation=CRM-CASE-AB77", token=tok8)[1]["calls"] == []
            finally:
                assert sipp.wait(30) == 0, (tmp_path / "sipp.err").read_text()[-2000:]
            deadline = time.monotonic() + 10
            while req(box.ctl, "GET", "/v1/calls")[1]["calls"] and time.monotonic() < deadline:
                time.sleep(0.1)
        customer = box.call("cust", play_s=4.0, rfc2833=PAN + "#" + "1230" + "123", worker=1)
        calls = box.wait_calls(1, token=tok7)
        handle = calls[0]["handle"]
        assert handle.startswith("boxa.") and len(handle.split(".")) == 4, handle

        # found in one request: by the agent's identity, and by the customer leg's Call-ID
        admin_view = req(box.ctl, "GET", "/v1/calls")[1]["calls"]
        call_id = [c for c in admin_view if c["handle"] == handle][0]["correlation"]["call_id"]
        for query in ("agent7", call_id, handle):
            status, body, _ = req(box.ctl, "GET", "/v1/calls?correlation=" + query, token=tok7)
            assert status == 200 and [c["handle"] for c in body["calls"]] == [handle], (query, body)

        # another agent sees nothing of it and can do nothing with it
        assert req(box.ctl, "GET", "/v1/calls", token=tok8)[1]["calls"] == []
        assert req(box.ctl, "GET", "/v1/calls?correlation=" + call_id, token=tok8)[1]["calls"] == []
        for method, path in (("GET", ""), ("POST", "/payment"), ("POST", "/payment/cancel"),
                             ("DELETE", "/payment"), ("POST", "/tickets")):
            status = req(box.ctl, method, f"/v1/calls/{handle}{path}", {"amount": 5} if "payment" == path[1:] else None,
                         token=tok8)[0]
            assert status == 403, (method, path, status)
        assert sse(box.ctl, f"/v1/calls/{handle}/feed", token=tok8)[0] == 403
        # an agent cannot pay in another agent's name
        assert req(box.ctl, "POST", f"/v1/calls/{handle}/payment", {"amount": 5, "agent_id": "agent8"},
                   token=tok7)[0] == 403

        # CORS: the configured origin's preflight passes, any other is refused
        status, _, headers = req(box.ctl, "OPTIONS", f"/v1/calls/{handle}/payment", token=None,
                                 headers={"Origin": "http://crm.example", "Access-Control-Request-Method": "POST"})
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "http://crm.example"
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        status, _, headers = req(box.ctl, "OPTIONS", "/v1/calls", token=None, headers={"Origin": "http://evil.example"})
        assert status == 403 and "Access-Control-Allow-Origin" not in headers

        status, body, _ = req(box.ctl, "POST", f"/v1/calls/{handle}/payment",
                              {"amount": 1999, "currency": "GBP", "reference": "INV-9"}, token=tok7)
        assert status == 201 and body["call"] == handle, body
        assert req(box.ctl, "POST", f"/v1/calls/{handle}/payment", {"amount": 5}, token=tok7)[0] == 409

        # follower A reads the whole feed in one go; follower B breaks off every 4 events and resumes with
        # Last-Event-ID; a ticket follower opens it the way a browser's EventSource does
        whole: list = []
        a = threading.Thread(target=lambda: whole.extend(sse(box.ctl, f"/v1/calls/{handle}/feed", token=tok7)[1]))
        a.start()
        ticket = req(box.ctl, "POST", f"/v1/calls/{handle}/tickets", token=tok7)[1]
        st, by_ticket = sse(box.ctl, ticket["feed_url"], token=None, stop_after=2)
        assert st == 200 and any(k == "ticket" for _, k, _ in by_ticket)
        assert sse(box.ctl, ticket["feed_url"], token=None)[0] == 401  # single use
        pieces: list = []
        last = 0
        for _ in range(200):
            st, got = sse(box.ctl, f"/v1/calls/{handle}/feed", token=tok7, last_event_id=last, stop_after=4)
            if st == 204:
                break
            assert st == 200
            got = [g for g in got if g[0] is not None]
            pieces.extend(got)
            if got:
                last = got[-1][0]
            if got and got[-1][1] == "call_ended":
                break
        assert customer.wait(90) == 0
        a.join(30)
        ids_whole = [e[0] for e in whole if e[0] is not None]
        ids_pieces = [e[0] for e in pieces]
        assert ids_whole == ids_pieces and ids_whole == sorted(set(ids_whole)), (ids_whole, ids_pieces)
        assert [e[2] for e in whole if e[0] is not None] == [e[2] for e in pieces]
        kinds = [k for _, k, _ in whole]
        assert kinds[-1] == "call_ended" and kinds.count("field_complete") == 3, kinds
        result = [d for _, k, d in whole if k == "gateway_result"][0]
        assert result["status"] in ("approved", "tokenised"), result
        ended = [d for _, k, d in whole if k == "session_ended"][0]
        assert ended["outcome"] == "completed"
        card = [d for _, k, d in whole if k == "field_complete" and d["field"] == "card_number"][0]
        assert card["last4"] == "1111" and card["brand"] == "visa"
        # after the end, a resume from the last id gets 204 (EventSource stops reconnecting)
        assert sse(box.ctl, f"/v1/calls/{handle}/feed", token=tok7, last_event_id=ids_whole[-1])[0] == 204

        status, text, headers = req(box.ctl, "GET", "/metrics", token=None)
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert 'dtmfguard_keys_total{path="rfc4733"} 24.0' in text
        assert re.search(r"^dtmfguard_masked_spans_total (\d+)", text, re.M)
        assert int(float(re.search(r"^dtmfguard_masked_spans_total (\S+)", text, re.M).group(1))) >= 23
        assert 'dtmfguard_payment_sessions_total{outcome="completed"} 1.0' in text
        assert 'dtmfguard_api_auth_failures_total{reason="other-agent"}' in text
        assert "dtmfguard_gateway_latency_seconds_count 1.0" in text
        assert 'dtmfguard_worker_restarts_total{worker="1"} 0.0' in text
        assert req(box.ctl, "GET", "/v1/openapi.json", token=None)[1]["openapi"].startswith("3.")
        all_text = json.dumps(whole) + json.dumps(pieces) + text + (tmp_path / "audit.jsonl").read_text()
    finally:
        rc = box.stop()
    assert rc == 0
    all_text += box.output()
    # --log-format json: the supervisor's and both workers' log lines are JSON objects
    log_lines = [json.loads(line) for line in (tmp_path / "guard.err").read_text().splitlines()
                 if line.startswith("{")]
    assert {rec["pid"] for rec in log_lines} and len({rec["pid"] for rec in log_lines}) >= 3
    assert any(rec["logger"] == "dtmfguard.server.endpoint.server" for rec in log_lines)
    assert not [line for line in (tmp_path / "guard.err").read_text().splitlines()
                if re.match(r"^\d{4}-\d\d-\d\d .* (INFO|WARNING|ERROR) ", line)]
    assert PAN not in all_text and "411111" not in all_text and "41111111" not in all_text.replace(" ", "")
    if not has_sipp:  # everything else was checked: say what was not (a failure under DTMFGUARD_REQUIRE_CORPORA=1)
        _corpus_util.missing("sip-tester", "the correlation-header call from sipp")
