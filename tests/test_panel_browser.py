# SPDX-License-Identifier: GPL-2.0-or-later
"""The agent payment panel in a real browser (headless Chromium driven by Selenium) during a real SIP
call through ``dtmfguard serve``: opened with a single-use ticket, it follows the payment from start to
the gateway's answer over EventSource and shows field, dots, brand, last 4, validity and the answer,
never a digit beyond the last 4.  Screenshot: docs/panel.png."""
from __future__ import annotations

import functools
import os
import re
import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import _corpus_util

pytest.importorskip("aiohttp", reason="the box endpoint needs aiohttp")
selenium = pytest.importorskip("selenium", reason="the panel test drives Chromium with selenium (pip install selenium)")

from _box_util import PAN, Box, req, sse  # noqa: E402
from sip_peers import free_port  # noqa: E402

pytestmark = [pytest.mark.sip, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
#: the README's screenshot is refreshed only when asked (DTMFGUARD_UPDATE_SCREENSHOTS=1): a test run must not
#: change the source tree
SHOT = Path(__file__).resolve().parent.parent / "docs" / "panel.png"
UPDATE_SHOTS = os.environ.get("DTMFGUARD_UPDATE_SCREENSHOTS") == "1"


def _browser():
    if not CHROMIUM:
        _corpus_util.missing("chromium", "the agent panel in a real browser")
    if not DRIVER:
        _corpus_util.missing("chromium-driver", "the agent panel in a real browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=520,560", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def _wait(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _crm_site(tmp_path: Path, port: int, ctl: int, handle: str, token: str) -> ThreadingHTTPServer:
    """A CRM page on another origin: asks the box for a ticket (a CORS request with a bearer token, so a
    preflight) and mounts the panel with the box's embed.js."""
    site = tmp_path / "crm"
    site.mkdir()
    (site / "crm.html").write_text(f"""<!doctype html><html><head><title>CRM</title></head><body>
<h3>Case 7781</h3><div id="payment"></div><p id="result"></p>
<script src="http://127.0.0.1:{ctl}/panel/embed.js"></script>
<script>
fetch("http://127.0.0.1:{ctl}/v1/calls/{handle}/tickets",
      {{method: "POST", headers: {{"Authorization": "Bearer {token}"}}}})
  .then(function (r) {{ return r.json(); }})
  .then(function (t) {{
    document.getElementById("result").textContent = "ticket";
    dtmfguardPanel.mount(document.getElementById("payment"), {{call: t.call, ticket: t.ticket}});
  }})
  .catch(function (e) {{ document.getElementById("result").textContent = "blocked: " + e; }});
</script></body></html>""")
    server = ThreadingHTTPServer(("", port), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def test_panel_follows_a_payment_in_chromium(tmp_path):
    driver = _browser()
    box = None
    try:
        # feed streams end every 2 s: the panel must reconnect several times during the payment, each time
        # with the fresh ticket the last stream gave it and the id of the last event it applied
        crm_port = free_port()
        box = Box(tmp_path, workers=1, agent_user="agent7", extra_control="feed_max_s = 2.0",
                  origins=(f"http://localhost:{crm_port}",))
        tok7 = req(box.ctl, "POST", "/v1/tokens", {"agent": "agent7"})[1]["token"]
        customer = box.call("cust", play_s=5.0, rfc2833=PAN + "#" + "1230" + "123")
        handle = box.wait_calls(1, token=tok7)[0]["handle"]
        crm = _crm_site(tmp_path, crm_port, box.ctl, handle, tok7)
        # a page of another origin, not in control.cors_origins: the browser refuses it the ticket (preflight 403)
        driver.get(f"http://127.0.0.2:{crm_port}/crm.html")
        _wait(lambda: driver.find_element("id", "result").text, 10)
        assert driver.find_element("id", "result").text.startswith("blocked"), driver.find_element("id", "result").text
        assert not driver.find_elements("css selector", "iframe")
        # the CRM's own origin: CORS preflight passes, the ticket comes back, embed.js mounts the panel iframe
        driver.get(f"http://localhost:{crm_port}/crm.html")
        _wait(lambda: driver.find_elements("css selector", "iframe"), 10)
        assert driver.find_element("id", "result").text == "ticket"
        driver.switch_to.frame(driver.find_element("css selector", "iframe"))
        _wait(lambda: driver.execute_script("return document.body.dataset.connects"), 10)
        # the page drops its credential from the address bar
        assert "ticket=" not in driver.execute_script("return location.href")
        status, body, _ = req(box.ctl, "POST", f"/v1/calls/{handle}/payment",
                              {"amount": 1999, "currency": "GBP", "reference": "INV-77"}, token=tok7)
        assert status == 201, body
        seen_dots = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = driver.find_elements("css selector", ".field[data-field='card_number'] .dots")
            if rows:
                seen_dots.add(len(rows[0].text))
                if len(rows[0].text) == 9 and UPDATE_SHOTS:  # mid-card: the field being keyed, live
                    driver.find_element("id", "panel").screenshot(str(SHOT.with_name("panel-keying.png")))
            if driver.find_element("id", "status").get_attribute("data-state") in ("completed", "failed"):
                break
            time.sleep(0.05)
        assert _text(driver, "status") == "completed", driver.find_element("id", "panel").text
        assert _text(driver, "brand") == "visa"
        assert _text(driver, "last4") == "\u2022\u2022\u2022\u2022 1111"
        assert _text(driver, "amount") == "19.99 GBP"
        assert re.match(r"^tokenised|^approved", _text(driver, "gateway")), _text(driver, "gateway")
        card_row = driver.find_element("css selector", ".field[data-field='card_number']")
        assert card_row.get_attribute("data-valid") == "true"
        assert card_row.find_element("css selector", ".dots").text == "\u2022" * 16
        assert len(seen_dots) > 2, seen_dots  # it showed the dots growing, live
        for name in ("expiry", "security_code"):
            assert driver.find_element("css selector", f".field[data-field='{name}']").get_attribute("data-valid") == "true"
        shot = SHOT if UPDATE_SHOTS else tmp_path / "panel.png"
        driver.find_element("id", "panel").screenshot(str(shot))
        assert shot.stat().st_size > 5000
        page = driver.page_source + driver.find_element("tag name", "body").text
        digits = re.findall(r"\d{5,}", re.sub(r"<[^>]+>", " ", driver.find_element("id", "panel").text))
        assert PAN not in page
        assert "411111" not in page
        assert not digits, digits  # no run of 5+ digits anywhere on the panel
        assert customer.wait(60) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and driver.find_element("tag name", "body").get_attribute(
                "data-last-event-id") in (None, ""):
            time.sleep(0.1)
        body = driver.find_element("tag name", "body")
        last_id, applied = int(body.get_attribute("data-last-event-id")), int(body.get_attribute("data-applied"))
        connects = int(body.get_attribute("data-connects"))
        crm.shutdown()
        feed = sse(box.ctl, f"/v1/calls/{handle}/feed", token=tok7)[1]
        ids = [e[0] for e in feed if e[0] is not None]
        print(f"panel: {connects} connections, {applied} events applied, last id {last_id}, feed ids 1..{ids[-1]}")
        assert connects >= 4, connects
        assert applied == last_id == ids[-1] == len(ids)  # every event applied exactly once across reconnects
        logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
        assert not [entry for entry in logs if "panel.js" in entry.get("message", "")], logs
    finally:
        driver.quit()
        if box is not None:
            assert box.stop() == 0
    assert PAN not in box.output()
