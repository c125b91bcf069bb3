"""Error budgets and burn rates on hand-built spans, with every figure computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.budgets import budget_series, budget_status, budget_statuses, burn_rate
from analytics.errors import ConfigError
from analytics.slo import SLO, load_slos, parse_slo
from analytics.windows import TimeWindow
from tests.analytics.helpers import add_spans

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _slo(**overrides):
    entry = {"name": "api", "service": "api", "sli": "availability", "objective": 0.99,
             "window": "28d", "min_events": 50} | overrides  # fmt: skip
    return parse_slo({k: v for k, v in entry.items() if v is not None}, "test")


def test_budget_consumed_remaining_and_burn_rates(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    # 10 days ago: 1000 spans over ~17 h, 5 bad; last hour: 120 spans (one per 30 s), 12 bad
    add_spans(store, service="api", start=AT - timedelta(days=10), every=timedelta(minutes=1),
              count=1000, errors={1, 2, 3, 4, 5})  # fmt: skip
    add_spans(store, service="api", start=AT - timedelta(hours=1), every=timedelta(seconds=30),
              count=120, errors=set(range(0, 120, 10)))  # fmt: skip
    status = budget_status(store.cursor(), _slo(), AT)
    assert (status.total, status.bad) == (1120, 17)
    budget = 0.01 * 1120
    assert status.budget_events == pytest.approx(budget)
    assert status.consumed == pytest.approx(17 / budget)
    assert status.remaining == pytest.approx(1 - 17 / budget)  # negative: overspent
    assert status.remaining < 0
    # last hour: 12 bad of 120 → error ratio 0.1 → burn 10x
    assert status.burn_rates["1h"] == pytest.approx(10.0)
    # last 5 min: spans at 55:00..59:30 → indices 110..119, one bad (110)
    assert status.burn_rates["5m"] == pytest.approx((1 / 10) / 0.01)
    assert status.time_to_exhaustion == timedelta(0)
    # page thresholds for a 28-day window: 14.4 * 28/30 = 13.44 — 10x does not page;
    # 6h rule: 6 * 28/30 = 5.6; the 6 h window holds the same 120 spans → 10x > 5.6, and the
    # 30 m window (60 spans, 6 bad) → 10x → page
    rule = next(r for r in status.rules if r.long == "6h")
    assert rule.factor == pytest.approx(5.6)
    assert rule.firing
    assert status.state == "page"


def test_minimum_events_guard(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    add_spans(store, service="api", start=AT - timedelta(minutes=20), every=timedelta(minutes=1),
              count=20, errors={3, 4, 5})  # fmt: skip
    status = budget_status(store.cursor(), _slo(), AT)
    assert status.burn_rates["1h"] == pytest.approx((3 / 20) / 0.01)
    assert status.state == "insufficient_data"  # 20 events < min_events 50


def test_latency_sli_counts_slow_spans(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    durations = [100.0] * 90 + [400.0] * 10
    add_spans(store, service="api", start=AT - timedelta(hours=2), every=timedelta(minutes=1),
              count=100, duration_ms=durations)  # fmt: skip
    status = budget_status(
        store.cursor(), _slo(sli="latency", threshold_ms=300, objective=0.95), AT
    )
    assert status.bad == 10
    assert status.consumed == pytest.approx(10 / (0.05 * 100))


def test_budget_series_is_cumulative(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    start = AT - timedelta(hours=4)
    add_spans(store, service="api", start=start, every=timedelta(minutes=1), count=240,
              errors={10, 70, 71})  # fmt: skip
    points = budget_series(store.cursor(), _slo(), TimeWindow(start, AT), timedelta(hours=1))
    assert [p.total for p in points] == [60, 120, 180, 240]
    assert [p.bad for p in points] == [1, 3, 3, 3]
    assert points[1].remaining == pytest.approx(1 - 3 / (0.01 * 120))
    assert points[0].ideal == pytest.approx(1 - (1 / 24) / 28)


def test_calendar_window_starts_at_the_local_month():
    slo = _slo(window=None, calendar="month", timezone="Europe/Berlin")
    window = slo.compliance_window(datetime(2026, 11, 20, 12, tzinfo=UTC))
    assert window.start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 1 Nov 00:00 CET


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objective": 0.9}, "could never fire"),
        ({"objective": 1.0}, "between 0 and 1"),
        ({"sli": "speed"}, "availability' or 'latency"),
        ({"sli": "latency"}, "threshold_ms"),
        ({"window": "soon"}, "window"),
        ({"calendar": "year"}, "calendar: Input should be 'week' or 'month'"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"colour": "red"}, "unknown field"),
        ({"budgeting": "timeslices"}, "budgeting: Input should be 'occurrences'"),
    ],
)
def test_invalid_slos_are_refused_with_the_reason(overrides, message):
    entry = {k: v for k, v in overrides.items()}
    if "calendar" in entry:
        entry["window"] = None
    with pytest.raises(ConfigError, match=message):
        _slo(**entry)


def test_default_slo_file_is_valid():
    slos = load_slos()
    assert all(isinstance(s, SLO) for s in slos) and len(slos) >= 5


def _point(store, *, series, start, at, count, buckets, temporality="cumulative", status=200):
    store.cursor().execute(
        "INSERT INTO metric_points BY NAME SELECT $at AS time, $start AS start_time, "
        "now() AS ingested_at, $series || ':' || $at AS point_id, $series AS series, "
        "'api' AS service_name, 'prod' AS environment, "
        "'http.server.request.duration' AS metric, 's' AS unit, 'histogram' AS kind, "
        "$temporality AS temporality, $status AS http_status_code, $count AS count, "
        "[0.1, 0.3]::DOUBLE[] AS bounds, $buckets::BIGINT[] AS bucket_counts, "
        "'{}' AS attributes, 1 AS request_id",
        {"at": at, "start": start, "series": series, "count": count, "buckets": buckets,
         "temporality": temporality, "status": status},
    )  # fmt: skip


def test_slis_from_histograms_cumulative_restarts_and_delta(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    minute = timedelta(minutes=1)
    s1, s2 = AT - timedelta(hours=3), AT - timedelta(minutes=30)
    # series A, cumulative: 10, 25, 25 (a repeat), then the sender restarts (new start): 5
    _point(store, series="a", start=s1, at=AT - 40 * minute, count=10, buckets=[6, 3, 1])
    _point(store, series="a", start=s1, at=AT - 39 * minute, count=25, buckets=[14, 8, 3])
    _point(store, series="a", start=s1, at=AT - 38 * minute, count=25, buckets=[14, 8, 3])
    _point(store, series="a", start=s2, at=AT - 20 * minute, count=5, buckets=[5, 0, 0])
    # series C, cumulative, reset without a new start time (7, then 3): counts 7 + 3
    _point(store, series="c", start=s1, at=AT - 15 * minute, count=7, buckets=[7, 0, 0])
    _point(store, series="c", start=s1, at=AT - 14 * minute, count=3, buckets=[3, 0, 0])
    # series B, delta, all HTTP 500: 2 then 3
    _point(store, series="b", start=s1, at=AT - 30 * minute, count=2, buckets=[1, 1, 0],
           temporality="delta", status=500)  # fmt: skip
    _point(store, series="b", start=s1, at=AT - 29 * minute, count=3, buckets=[1, 1, 1],
           temporality="delta", status=500)  # fmt: skip
    availability = budget_status(store.cursor(), _slo(source="metrics", min_events=1), AT)
    assert (availability.total, availability.bad) == (10 + 15 + 0 + 5 + 2 + 3 + 7 + 3, 5)
    latency = budget_status(
        store.cursor(),
        _slo(source="metrics", sli="latency", threshold_ms=300, objective=0.95, min_events=1),
        AT,
    )
    # good = observations in the buckets up to 0.3 s: 9, +13, +0, 5 (restart), 2, 2, 7, 3
    assert (latency.total, latency.bad) == (45, 45 - (9 + 13 + 0 + 5 + 2 + 2 + 7 + 3))


def test_shared_scan_gives_each_slo_its_own_counts(tmp_path, store_maker):
    """budget_statuses (one scan for every span SLO) agrees with counting each SLO alone."""
    store = store_maker.new(tmp_path)
    start = AT - timedelta(days=40)
    # api: prod and staging, 1 every 2 h over 40 days, durations 0..950 ms; web: prod only
    durations = [float(i % 20) * 50 for i in range(480)]
    add_spans(store, service="api", start=start, every=timedelta(hours=2), count=480,
              errors=set(range(0, 480, 7)), duration_ms=durations)  # fmt: skip
    add_spans(store, service="api", start=start, every=timedelta(hours=3), count=320,
              errors=set(range(0, 320, 5)), environment="staging")  # fmt: skip
    add_spans(store, service="web", start=AT - timedelta(hours=5), every=timedelta(minutes=1),
              count=300, errors=set(range(250, 300)))  # fmt: skip
    slos = [
        _slo(name="api-prod", environment="prod"),
        _slo(name="api-all"),  # every environment
        _slo(name="api-latency", sli="latency", threshold_ms=400, objective=0.9, window="7d"),
        _slo(name="api-month", window=None, calendar="month", timezone="Europe/Berlin"),
        _slo(name="web", service="web", objective=0.95),
    ]
    together = budget_statuses(store.cursor(), slos, AT)
    cursor = store.cursor()
    for slo, status in zip(slos, together, strict=True):
        assert status.slo is slo
        window = slo.compliance_window(AT)
        where = "service_name = $s AND kind = 'server' AND start_time >= $a AND start_time < $b"
        params = {"s": slo.service, "a": window.start, "b": AT}
        if slo.environment:
            where += " AND environment = $e"
            params["e"] = slo.environment
        bad = (
            "status_code = 'error'"
            if slo.sli == "availability"
            else f"duration_ms > {slo.threshold_ms}"
        )
        total, failed = cursor.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {bad}) FROM spans WHERE {where}", params
        ).fetchone()
        assert (status.total, status.bad) == (total, failed), slo.name
        assert status.as_dict() == budget_status(cursor, slo, AT).as_dict()
    web = together[-1]
    # the last hour: 60 spans, minutes 240..299 of the 300, all 50 failures at 250..299
    assert web.burn_rates["1h"] == pytest.approx((50 / 60) / 0.05)
    assert web.burn_rates["5m"] == pytest.approx(1 / 0.05)


def test_burn_rate_over_any_window(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    add_spans(store, service="api", start=AT - timedelta(hours=2), every=timedelta(minutes=1),
              count=120, errors={5, 6, 70})  # fmt: skip
    rate, total, bad = burn_rate(
        store.cursor(), _slo(), TimeWindow(AT - timedelta(hours=2), AT - timedelta(minutes=90))
    )
    assert (total, bad) == (30, 2)
    assert rate == pytest.approx((2 / 30) / 0.01)
    assert burn_rate(store.cursor(), _slo(), TimeWindow(AT, AT + timedelta(hours=1)))[0] is None
