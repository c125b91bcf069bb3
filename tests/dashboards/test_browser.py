"""Every dashboard page in headless Chromium, against a server loaded with the fixtures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import SCREENSHOTS
from tests.dashboards.conftest import FIXTURE_RANGE

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# page path → (title, the graph or table that must show data)
PAGES = {
    "/": ("Overview", "#overview-volume"),
    "/changes": ("Policy changes", "#changes-timeline"),
    "/budgets": ("Error budgets", "#budgets-table"),
    "/cohorts": ("Cohorts", "#cohorts-engagement"),
    "/mutations": ("Mutations & drift", "#mutations-table"),
    "/contracts": ("Contracts", "#contracts-violations"),
}


def _wait(driver: Any, css: str, timeout: float = 30) -> Any:
    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _settled(driver: Any, read: Callable[[Any], Any], timeout: float = 30) -> Any:
    """``read(driver)``, again while Dash replaces an element it holds (a stale reference)."""
    wait = WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(lambda d: (read(d),))[0]


def _texts(driver: Any, css: str) -> list[str]:
    return _settled(driver, lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, css)])


def _shows_data(driver: Any, css: str) -> bool:
    """Whether the table has a row, or the graph a trace with points, read in one script: Dash
    may replace the element between two WebDriver calls (a stale reference)."""
    return bool(
        driver.execute_script(
            "const el = document.querySelector(arguments[0]);"
            "if (!el) return false;"
            "if (el.tagName === 'TABLE') return el.querySelectorAll('tbody tr').length > 0;"
            "const plot = el.querySelector('.js-plotly-plot');"
            "return !!(plot && plot.data && plot.data.some(t => t.x && t.x.length > 0));",
            css,
        )
    )


def _choose(driver: Any, dropdown_css: str, label: str) -> None:
    """Open a Dash dropdown and click the option with this label."""
    driver.find_element(By.CSS_SELECTOR, dropdown_css).click()
    option = WebDriverWait(driver, 30).until(
        ec.element_to_be_clickable((By.XPATH, f"//*[@role='option'][normalize-space()='{label}']"))
    )
    option.click()


def _open(driver: Any, server: Any, path: str, query: str = FIXTURE_RANGE) -> None:
    driver.get(f"{server.urls['dashboards'].rstrip('/')}{path}?{query}")
    _wait(driver, "#content h2")


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_with_data(browser, dashboard_server, path):
    title, selector = PAGES[path]
    _open(browser, dashboard_server, path)
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#content h2").text == title
    )
    _wait(browser, selector)
    WebDriverWait(browser, 30).until(lambda d: _shows_data(d, selector))
    assert not browser.find_elements(By.CSS_SELECTOR, ".fl-error")
    name = path.strip("/") or "overview"
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_time_range_and_service_filter_change_what_is_shown(browser, dashboard_server):
    _open(browser, dashboard_server, "/")
    _wait(browser, "#overview-slos")
    rows_all = len(_texts(browser, "#overview-slos tbody tr"))
    # service filter: choose checkout in the dropdown; the URL and the SLO table follow
    _choose(browser, "#service", "checkout")
    WebDriverWait(browser, 30).until(lambda d: "service=checkout" in d.current_url)
    WebDriverWait(browser, 30).until(
        lambda d: 0 < len(d.find_elements(By.CSS_SELECTOR, "#overview-slos tbody tr")) < rows_all
    )
    for row in _texts(browser, "#overview-slos tbody tr"):
        assert row.startswith("checkout-")
    # time range: a range with no data shows the empty state that says what to send
    start = browser.find_element(By.CSS_SELECTOR, "#from")
    start.clear()
    start.send_keys("2020-01-01T00:00Z")
    end = browser.find_element(By.CSS_SELECTOR, "#to")
    end.clear()
    end.send_keys("2020-01-02T00:00Z", Keys.ENTER)
    WebDriverWait(browser, 30).until(lambda d: "2020-01-02" in d.current_url)
    empty = _wait(browser, ".fl-empty")
    assert "OTLP exporter" in empty.text
    browser.save_screenshot(str(SCREENSHOTS / "overview-empty-range.png"))


def test_clicking_a_change_opens_its_details(browser, dashboard_server):
    _open(browser, dashboard_server, "/changes")
    first_link = "#changes-table tbody tr td a"
    _wait(browser, first_link)
    change_id = _texts(browser, first_link)[0]
    _settled(browser, lambda d: d.find_element(By.CSS_SELECTOR, first_link).click())
    _wait(browser, "#change-details")
    WebDriverWait(browser, 30).until(
        lambda d: change_id in " ".join(_texts(d, "#change-details h3"))
    )
    text = _texts(browser, "#change-details")[0]
    for label in ("actor", "versions", "approvals", "ticket", "signature", "verdict"):
        assert label in text
    assert f"change={change_id}" in browser.current_url
    browser.save_screenshot(str(SCREENSHOTS / "change-details.png"))


def test_a_shared_url_restores_the_view(browser, dashboard_server):
    _open(browser, dashboard_server, "/budgets", FIXTURE_RANGE + "&service=payments")
    assert browser.find_element(By.CSS_SELECTOR, "#from").get_attribute("value") == (
        "2026-11-22T00:00Z"
    )
    _wait(browser, "#budgets-table")
    rows = _texts(browser, "#budgets-table tbody tr")
    assert rows and all(r.startswith("payments-") for r in rows)
