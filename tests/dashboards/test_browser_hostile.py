"""Every dashboard page in headless Chromium over names no one should choose: 20 KB of
astral-plane characters (which held Chromium for minutes in the service menu) and Plotly link
markup (which Plotly would render as a live link)."""

from __future__ import annotations

import time

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import SCREENSHOTS
from tests.dashboards.conftest import FIXTURE_RANGE
from tests.dashboards.test_browser import PAGES
from tests.factories import otlp_json_logs, privacy_decision_attributes
from tests.sample_week import post_fixtures
from tests.servers import start_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ASTRAL = "\U0001d518" * 5000
LINK = '<a href="https://evil.example/x">click</a>'
T0 = "1795003200000000000"  # 2026-11-22T12:00Z, inside the fixtures' day


def _span(service: str, n: int) -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": f"{n:032x}", "spanId": f"{n:016x}", "name": "GET /", "kind": 2,
            "startTimeUnixNano": T0, "endTimeUnixNano": T0,
        }]}],
    }]}  # fmt: skip


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    db = tmp_path_factory.mktemp("hostile-dash") / "f.duckdb"
    server = start_server(
        db, "--dashboard-port", "0", "--decode-workers", "0", wait_for=("OTLP/HTTP", "dashboards")
    )
    try:
        post_fixtures(server.http_url)
        for n, name in enumerate((ASTRAL, ASTRAL + "2", LINK), start=1):
            httpx.post(f"{server.http_url}/v1/traces", json=_span(name, n)).raise_for_status()
            broken = privacy_decision_attributes(**{"privacy.purpose": None, "cohort.id": name})
            document = otlp_json_logs([broken], {"service.name": name,
                                                 "deployment.environment.name": name})  # fmt: skip
            document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["timeUnixNano"] = T0
            httpx.post(f"{server.http_url}/v1/logs", json=document).raise_for_status()
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_promptly_with_hostile_names(browser, hostile_server, path):
    """Each page shows its heading within 30 s, and no Plotly link points anywhere."""
    title, _selector = PAGES[path]
    started = time.monotonic()
    browser.get(f"{hostile_server.urls['dashboards'].rstrip('/')}{path}?{FIXTURE_RANGE}")
    WebDriverWait(browser, 30).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#content h2")
            and d.find_element(By.CSS_SELECTOR, "#content h2").text == title
        )
    )
    assert time.monotonic() - started < 30
    live_links = browser.execute_script(
        "return document.querySelectorAll('.js-plotly-plot a[href*=\"evil.example\"]').length"
    )
    assert live_links == 0
    name = path.strip("/") or "overview"
    browser.save_screenshot(str(SCREENSHOTS / f"hostile-{name}.png"))


def test_the_long_service_can_be_chosen_from_the_menu(browser, hostile_server):
    """The menu shows the long name shortened; choosing it filters by the whole name."""
    browser.get(f"{hostile_server.urls['dashboards'].rstrip('/')}/?{FIXTURE_RANGE}")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#service"))
    browser.find_element(By.CSS_SELECTOR, "#service").click()
    option = WebDriverWait(browser, 30).until(
        lambda d: next((o for o in d.find_elements(By.CSS_SELECTOR, "[role='option']")
                        if o.text.startswith(ASTRAL[:10]) and o.text.endswith("…")), None)
    )  # fmt: skip
    option.click()
    WebDriverWait(browser, 30).until(lambda d: "service=" in d.current_url)
    assert len(browser.current_url) > 5000  # the whole name, URL-encoded
