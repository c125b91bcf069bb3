"""Dashboard state, figures and callbacks, called directly (no browser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.budgets import BudgetPoint
from analytics.session import AnalyticsConfig, Session
from analytics.windows import TimeWindow
from dashboards import figures
from dashboards.app import next_query, render_view
from dashboards.pages import DataSource
from dashboards.state import ViewState, bucket_for
from store.connection import Store

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # a Wednesday


def test_state_round_trips_through_the_url():
    state = ViewState(start="now-6h", service="checkout", environment="prod", change="c1")
    query = state.to_query()
    assert query == "?from=now-6h&service=checkout&env=prod&change=c1"
    assert ViewState.from_query(query) == state
    assert ViewState.from_query("") == ViewState()
    assert ViewState.from_query("?page=x&refresh=7y").page == 1
    assert ViewState.from_query("?refresh=7y").refresh == "off"


def test_relative_and_absolute_windows():
    assert ViewState(start="now-6h").window(NOW) == TimeWindow(NOW - timedelta(hours=6), NOW)
    week = ViewState(start="this-week").window(NOW)
    assert week.start == datetime(2026, 11, 23, tzinfo=UTC)
    absolute = ViewState(start="2026-11-01T00:00Z", end="2026-11-02T00:00Z").window(NOW)
    assert absolute.duration == timedelta(days=1)
    assert bucket_for(TimeWindow(NOW - timedelta(days=7), NOW)) == timedelta(hours=3)
    assert bucket_for(TimeWindow(NOW - timedelta(hours=1), NOW)) == timedelta(minutes=1)


def test_controls_rewrite_the_query():
    assert next_query("", "range", "now-24h", "now-7d", "now", None, None, "off") == (
        "?from=now-24h"
    )
    assert next_query("?from=now-24h", "service", "now-24h", "now-24h", "now", "auth", None,
                      "off") == "?from=now-24h&service=auth"  # fmt: skip
    # nothing changed: no URL update (so no re-render loop)
    assert next_query("?from=now-24h", "from", "now-24h", "now-24h", "now", None, None, "off") is (
        None
    )


def test_budget_figure_draws_remaining_against_ideal():
    points = [
        BudgetPoint(NOW + timedelta(hours=i), 100 * i, i, 1 - i / 10, 1 - i / 100, 1.0)
        for i in range(1, 4)
    ]
    figure = figures.budget_figure(points, "api")
    remaining, ideal = figure.data
    assert list(remaining.y) == [0.9, 0.8, 0.7]
    assert list(ideal.y) == [0.99, 0.98, 0.97]


def test_empty_figure_says_why():
    figure = figures.empty_figure("nothing here")
    assert figure.layout.annotations[0].text == "nothing here"


@pytest.fixture
def source(tmp_path):
    store = Store.open(tmp_path / "empty.duckdb")
    config = AnalyticsConfig(db=tmp_path / "empty.duckdb", warn=lambda _message: None)
    yield DataSource(Session(store.cursor, config), "http://127.0.0.1:4318")
    store.close()


@pytest.mark.parametrize("path", ["/", "/changes", "/cohorts", "/budgets"])
def test_empty_store_pages_say_what_to_send(source, path):
    _header, _controls, content, timer_off, _interval = render_view(source, path, "")
    text = str(content)
    assert "OTLP exporter" in text and "http://127.0.0.1:4318" in text
    assert timer_off


def test_errors_are_shown_on_the_page(source):
    _h, _c, content, _off, _i = render_view(source, "/", "?from=yesterday")
    assert "fl-error" in str(content) and "neither ISO-8601" in str(content)


def test_auto_refresh_interval_comes_from_the_url(source):
    *_rest, timer_off, interval = render_view(source, "/mutations", "?refresh=30s")
    assert not timer_off and interval == 30_000


@pytest.fixture(scope="module")
def week_source(sample_week):
    store = Store.open(sample_week.db, read_only=True)  # as the other readers of the week
    config = AnalyticsConfig(db=sample_week.db, key_file=sample_week.keys)
    yield DataSource(Session(store.cursor, config))
    store.close()


WEEK = "?from=2026-11-16T00:00Z&to=2026-11-23T00:00Z"


def test_the_policy_changes_page_names_the_family_and_the_changes_near_others(
    week_source, sample_week
):
    stories = sample_week.manifest["stories"]
    overlapping, confounded = stories["overlapping"], stories["confounded"]
    _h, _c, content, _off, _i = render_view(week_source, "/changes", WEEK)
    text = str(content)
    assert "adjusted together (Benjamini–Hochberg) over all" in text
    assert f"windows exclude {overlapping['regression']}" in text
    first, second = confounded["change_ids"]
    assert f"confounded with {first}" in text and f"confounded with {second}" in text
    tail = stories["tail_regression"]["change_id"]
    _h, _c, content, _off, _i = render_view(week_source, "/changes", f"{WEEK}&change={tail}")
    details = str(content)
    assert "change-percentiles" in details and "'p95'" in details and "'p99'" in details
    assert "latency:p95" in details and "payments-latency" in details


def test_the_cohorts_page_names_the_family_of_its_shifts(week_source):
    _h, _c, content, _off, _i = render_view(week_source, "/cohorts", WEEK)
    assert "p adjusted (bh) over all" in str(content)


def test_the_timeline_draws_each_change_once_across_the_panels(week_source):
    window = TimeWindow.parse("2026-11-16T00:00Z", "2026-11-23T00:00Z")
    impacts = week_source.impacts(window, "prod")
    figure = figures.change_timeline([], impacts, service="checkout")
    assert len(impacts) > 30 and len(figure.layout.shapes) == len(impacts)
    for shape, item in zip(figure.layout.shapes, impacts, strict=True):
        assert (shape.x0, shape.yref, shape.y0, shape.y1) == (item.change.time, "paper", 0, 1)
        assert shape.line.color == figures.VERDICT_COLOURS[item.verdict]
