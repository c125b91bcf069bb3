"""A real server with dashboards, loaded with the committed fixtures, and a real browser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sample_week import FIXTURES, post_fixtures
from tests.servers import REPO, ServerProcess, start_server

SCREENSHOTS = REPO / "artifacts" / "screenshots"
# the day the fixtures cover
FIXTURE_RANGE = "from=2026-11-22T00%3A00Z&to=2026-11-23T00%3A00Z"


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db: Path = tmp_path_factory.mktemp("dash") / "fixtures.duckdb"
    server = start_server(
        db,
        "--dashboard-port", "0", "--keys", str(FIXTURES / "keys.toml"),
        wait_for=("OTLP/HTTP", "dashboards"),
    )  # fmt: skip
    try:
        post_fixtures(server.http_url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1800", "--disable-gpu"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
