"""Reads never starve ingest: a query past its time limit is interrupted (503), and reads past
the slots wait, then are refused (503 busy)."""

from __future__ import annotations

import os
import threading
import time

import duckdb
import pytest

from analytics.session import AnalyticsConfig
from api.errors import Busy, QueryTimeout
from api.guard import QueryGuard
from api.limits import ApiLimits
from tests.api.conftest import WEEK, api_with

_ENDLESS = "SELECT count(*) FROM range(1000000000000) AS t(i) WHERE i % 7 = 3"


@pytest.fixture
def database():
    connection = duckdb.connect()
    yield connection
    connection.close()


def test_a_query_past_the_limit_is_interrupted(database):
    """DuckDB stops the query; the read ends with QueryTimeout soon after the limit."""
    guard = QueryGuard(database.cursor, AnalyticsConfig(), ApiLimits(query_timeout=0.3, nice=0))
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"time limit of 0\.3 s"):
        guard.run(lambda session: session.cursor().execute(_ENDLESS).fetchall())
    assert time.monotonic() - started < 3


def test_a_query_started_after_the_first_interrupt_is_stopped_too(database):
    """Work between queries does not dodge the limit: the next query on the read's cursor is
    interrupted as well."""

    def two_queries(session):
        cursor = session.cursor()
        time.sleep(0.4)  # past the limit, with no query running to interrupt
        return cursor.execute(_ENDLESS).fetchall()

    guard = QueryGuard(database.cursor, AnalyticsConfig(), ApiLimits(query_timeout=0.2, nice=0))
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        guard.run(two_queries)
    assert time.monotonic() - started < 3


def test_reads_past_the_slots_wait_then_are_busy(database):
    guard = QueryGuard(
        database.cursor, AnalyticsConfig(), ApiLimits(max_concurrent=1, slot_wait=0.2, nice=0)
    )
    holding, release = threading.Event(), threading.Event()

    def hold(_session):
        holding.set()
        release.wait(10)

    thread = threading.Thread(target=guard.run, args=(hold,))
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(Busy, match="all 1 query slots stayed busy"):
            guard.run(lambda session: 1)
    finally:
        release.set()
        thread.join()
    assert guard.run(lambda session: session.cursor().execute("SELECT 42").fetchone()) == (42,)


def test_over_http_a_timeout_is_a_503_with_retry_after(week_session):
    api = api_with(week_session, query_timeout=0.001)
    response = api.get("/api/v1/analyses/cohorts", params=WEEK)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["error"] == "timeout" and "--api-query-timeout" in body["detail"]


def test_reads_run_at_a_lower_priority_than_ingest(database):
    """The thread that runs a read yields the cores (a higher nice value); others do not."""
    guard = QueryGuard(database.cursor, AnalyticsConfig(), ApiLimits(nice=7))
    seen = {}

    def read(_session):
        seen["read"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread = threading.Thread(target=guard.run, args=(read,))
    thread.start()
    thread.join()
    assert seen["read"] == max(7, os.getpriority(os.PRIO_PROCESS, 0))
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 7
