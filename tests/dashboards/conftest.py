"""A real server with dashboards, loaded with the committed fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sample_week import FIXTURES, post_fixtures
from tests.servers import ServerProcess, start_server

# the day the fixtures cover
FIXTURE_RANGE = "from=2026-11-22T00%3A00Z&to=2026-11-23T00%3A00Z"


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db: Path = tmp_path_factory.mktemp("dash") / "fixtures.duckdb"
    server = start_server(
        db,
        "--dashboard-port", "0", "--keys", str(FIXTURES / "keys.toml"),
        # the fixtures are decoded on a thread of the server: the pages are under test here
        "--decode-workers", "0",
        # pages at the browser's priority: at the default nice 10 they missed the browser's 30 s
        # on a shared machine at a load of 12 (tests/api/test_guard.py tests the nice value)
        "--api-nice", "0",
        wait_for=("OTLP/HTTP", "dashboards"),
    )  # fmt: skip
    try:
        post_fixtures(server.http_url)
        yield server
    finally:
        server.stop()
