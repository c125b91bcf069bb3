"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.postgres import MISSING, Cluster, cluster, find_binaries
from tests.sample_week import LoadedWeek, load_week
from tests.servers import REPO
from tests.stores import NATIVE, StoreMaker

# where browser tests leave their screenshots (CI keeps artifacts/)
SCREENSHOTS = REPO / "artifacts" / "screenshots"


@pytest.fixture(autouse=True)
def clean_flaglens_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLAGLENS_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("FLAGLENS_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sample_week(tmp_path_factory: pytest.TempPathFactory) -> LoadedWeek:
    """The default sample week, loaded once per test session by `flaglens demo --load-only`."""
    return load_week(tmp_path_factory.mktemp("week"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A real PostgreSQL for the session's lakes; skipped where it is not installed, except in
    CI, whose set-up installs it (a skip there would hide a missing install step)."""
    if find_binaries() is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    with cluster() as running:
        yield running


@pytest.fixture(params=["duckdb", pytest.param("ducklake", marks=pytest.mark.e2e)])
def store_maker(request: pytest.FixtureRequest) -> StoreMaker:
    """Each test that takes this runs on a DuckDB file and on a DuckLake."""
    if request.param == "duckdb":
        return NATIVE
    return StoreMaker("ducklake", request.getfixturevalue("postgres"))


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
