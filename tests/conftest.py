"""Fixtures shared by every test package.

- ``store``: a fresh, migrated store in memory (known-answer tests insert their rows into it).
- ``ingest_server``: `flaglens serve`'s composition in this process, on a temp database, with
  OTLP/HTTP and OTLP/gRPC on free loopback ports (``tests/inprocess.py``; start one with other
  settings with ``start_inprocess(db, max_body_bytes=...)``).
- ``sample_week``: the default sample week, loaded once per session through the OTLP path.
- ``browser``: headless Chromium (e2e tests only).

Tests that start real processes (``tests/servers.py``, the browser, subprocesses) are marked
``@pytest.mark.e2e``; `pytest -m "not e2e"` is the fast loop.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.connection import Store
from tests.inprocess import InProcessServer, start_inprocess
from tests.postgres import MISSING, Cluster, cluster, find_binaries
from tests.sample_week import LoadedWeek, copy_week, shared_week
from tests.servers import CURRENT_TEST, REPO, require_e2e
from tests.stores import StoreMaker

# where browser tests leave their screenshots (CI keeps artifacts/)
SCREENSHOTS = REPO / "artifacts" / "screenshots"


# session fixtures that cost seconds to build: under pytest-xdist, the tests that use one run on
# one worker (which builds it once) instead of each worker building its own
_COSTLY_SESSION_FIXTURES = ("dashboard_server",)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores. A quarter of the suite's time a worker waits
    (servers starting and stopping, exporters' schedules, the browser, deadlines a test sleeps
    towards), and the extra worker runs tests meanwhile."""
    return (os.cpu_count() or 1) + 1


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests for pytest-xdist (``--dist loadgroup``, see pyproject.toml): the users of
    a costly session fixture together, every other test with the rest of its module (module
    fixtures are then built once, and tests that read a module's store after the others keep
    their order).

    The groups are then put in the order the workers should take them (pyproject.toml turns off
    pytest-xdist's own, which orders by number of tests), so that no worker waits while another
    builds the sample week and no long group is left for the end: one user of the sample week
    first (its worker builds the week), then the groups starting real processes (seconds a test)
    and the costly fixtures' users, then the other users of the week, then the rest."""
    group_of: dict[str, str] = {}
    kinds: dict[str, set[str]] = {}
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        costly = next((name for name in _COSTLY_SESSION_FIXTURES if name in fixtures), None)
        group = costly or item.nodeid.split("::", 1)[0]
        group_of[item.nodeid] = group
        item.add_marker(pytest.mark.xdist_group(group))
        if costly or "sample_week" in fixtures:  # the first user pays for building it
            item.add_marker(pytest.mark.timeout(900))  # (seconds here; minutes on a busy box)
        kinds.setdefault(group, set()).update(
            kind for kind, holds in (("week", "sample_week" in fixtures), ("costly", costly),
                                     ("e2e", item.get_closest_marker("e2e"))) if holds
        )  # fmt: skip
    first_seen = {group: i for i, group in reversed(list(enumerate(group_of.values())))}
    builder = next((g for g in first_seen if kinds[g] == {"week"}), None)

    def rank(group: str) -> tuple[int, int]:
        held = kinds[group]
        if group == builder:
            return (0, 0)
        if "week" in held:
            return (2, 0 if "e2e" in held else 1)
        return (1, 0) if held else (3, 0)

    items.sort(key=lambda item: (*rank(group_of[item.nodeid]), first_seen[group_of[item.nodeid]]))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail loudly if pytest-xdist did not take the groups (it marks them in the node ids)."""
    if session.config.getoption("dist", "no") != "loadgroup" or not session.items:
        return
    if os.environ.get("PYTEST_XDIST_WORKER") and "@" not in session.items[0].nodeid:
        raise pytest.UsageError(
            "pytest-xdist's --dist loadgroup lost the test groups (pytest-dev/pytest-xdist#1386, "
            "pytest 9.2): install the pytest that pyproject.toml's dev extra names"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tell tests/servers.py which test is starting, before any of its fixtures runs."""
    CURRENT_TEST.nodeid = item.nodeid
    CURRENT_TEST.e2e = item.get_closest_marker("e2e") is not None


@pytest.fixture(autouse=True)
def clean_flaglens_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLAGLENS_* variable from the developer's shell leaks into a test, nor the SDK's
    OTEL_EXPORTER_OTLP_* ones that the server's settings also read."""
    for name in list(os.environ):
        if name.startswith(("FLAGLENS_", "OTEL_EXPORTER_OTLP_")):
            monkeypatch.delenv(name)


@pytest.fixture
def store(store_maker: StoreMaker, tmp_path: Path) -> Store:
    """A fresh, migrated store: in memory, and (e2e) a DuckLake of its own (``store_maker``)."""
    return store_maker.new(tmp_path)


@pytest.fixture
def ingest_server(tmp_path: Path) -> Iterator[InProcessServer]:
    """An in-process server on ``tmp_path / "flaglens.duckdb"`` (HTTP and gRPC), stopped after
    the test; a test may stop it itself to read the drained store."""
    server = start_inprocess(tmp_path / "flaglens.duckdb", grpc=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sample_week(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LoadedWeek:
    """The default sample week through an in-process server, loaded once per run for all the
    workers (in the run's temp directory, which the workers share) and copied by each. Later
    sessions copy it from pytest's cache until a source it depends on changes (``--cache-clear``
    loads it again). Loading it costs more CPU than the rest of the fast loop."""
    cache = getattr(request.config, "cache", None)  # None: -p no:cacheprovider
    kept = cache.mkdir("flaglens-sample-week") if cache is not None else None
    run = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # basetemp is this worker's, under the run's
        run = run.parent
    built = shared_week(run / "sample-week", kept)
    return copy_week(built, tmp_path_factory.mktemp("week"))


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


_STORE_KINDS = ["duckdb", pytest.param("ducklake", marks=pytest.mark.e2e)]


@pytest.fixture(scope="session")
def lake_template(postgres: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database of the session's cluster holding a migrated, empty lake, which the lakes of
    ``store_maker`` start as copies of."""
    postgres.psql("CREATE DATABASE lake_template")
    data = tmp_path_factory.mktemp("lake-template")
    Store.open(postgres.lake_url(database="lake_template"), data_path=str(data)).close()
    written = [path for path in data.rglob("*") if path.is_file()]
    assert not written, f"a copy of the template would not find its data files {written}"
    return "lake_template"


def _maker(request: pytest.FixtureRequest) -> StoreMaker:
    if request.param == "duckdb":
        return StoreMaker("duckdb")
    template = request.getfixturevalue("lake_template")
    return StoreMaker("ducklake", request.getfixturevalue("postgres"), template)


@pytest.fixture(params=_STORE_KINDS)
def store_maker(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    """Each test that takes this (or ``store``) runs on DuckDB (a file, or in memory for
    ``store`` and ``store_maker.new``) and, e2e-marked, on a DuckLake in a
    database of its own on the session's ``postgres`` cluster (a copy of ``lake_template``).
    What it opened is closed after the test."""
    maker = _maker(request)
    yield maker
    maker.close_all()


@pytest.fixture(scope="module", params=_STORE_KINDS)
def module_store_maker(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    """``store_maker`` for a module's fixtures: the module's tests run once per kind."""
    maker = _maker(request)
    yield maker
    maker.close_all()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    require_e2e("chromium")
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
