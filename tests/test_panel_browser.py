# SPDX-License-Identifier: GPL-2.0-or-later
"""The agent payment panel in a real browser (headless Chromium driven by Selenium) during a real SIP
call through ``dtmfguard serve``: opened with a single-use ticket, it follows the payment from start to
the gateway's answer over EventSource and shows field, dots, brand, last 4, validity and the answer,
never a digit beyond the last 4.  Screenshot: docs/panel.png."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp", reason="the box endpoint needs aiohttp")
selenium = pytest.importorskip("selenium", reason="the panel test drives Chromium with selenium (pip install selenium)")

from _box_util import PAN, Box, req, sse  # noqa: E402

pytestmark = [pytest.mark.sip, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
#: the README's screenshot is refreshed only when asked (DTMFGUARD_UPDATE_SCREENSHOTS=1): a test run must not
#: change the source tree
SHOT = Path(__file__).resolve().parent.parent / "docs" / "panel.png"


def _browser():
    if not CHROMIUM or not DRIVER:
        pytest.skip("needs Debian's chromium and chromium-driver packages")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=520,560", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def _text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def test_panel_follows_a_payment_in_chromium(tmp_path):
    driver = _browser()
    box = None
    try:
        # feed streams end every 2 s: the panel must reconnect several times during the payment, each time
        # with the fresh ticket the last stream gave it and the id of the last event it applied
        box = Box(tmp_path, workers=1, agent_user="agent7", extra_control="feed_max_s = 2.0")
        tok7 = req(box.ctl, "POST", "/v1/tokens", {"agent": "agent7"})[1]["token"]
        customer = box.call("cust", play_s=5.0, rfc2833=PAN + "#" + "1230" + "123")
        handle = box.wait_calls(1, token=tok7)[0]["handle"]
        ticket = req(box.ctl, "POST", f"/v1/calls/{handle}/tickets", token=tok7)[1]
        driver.get(f"http://127.0.0.1:{box.ctl}{ticket['panel_url']}")
        assert "ticket=" not in driver.current_url  # the page drops its credential from the address bar
        status, body, _ = req(box.ctl, "POST", f"/v1/calls/{handle}/payment",
                              {"amount": 1999, "currency": "GBP", "reference": "INV-77"}, token=tok7)
        assert status == 201, body
        seen_dots = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = driver.find_elements("css selector", ".field[data-field='card_number'] .dots")
            if rows:
                seen_dots.add(len(rows[0].text))
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
        shot = SHOT if os.environ.get("DTMFGUARD_UPDATE_SCREENSHOTS") == "1" else tmp_path / "panel.png"
        driver.save_screenshot(str(shot))
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
