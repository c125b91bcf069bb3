"""Error budgets and burn rates on hand-built spans, with every figure computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.budgets import budget_series, budget_status
from analytics.errors import ConfigError
from analytics.queries.windows import TimeWindow
from analytics.slo import SLO, load_slos, parse_slo
from tests.analytics.helpers import add_spans, new_store

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _slo(**overrides):
    entry = {"name": "api", "service": "api", "sli": "availability", "objective": 0.99,
             "window": "28d", "min_events": 50} | overrides  # fmt: skip
    return parse_slo({k: v for k, v in entry.items() if v is not None}, "test")


def test_budget_consumed_remaining_and_burn_rates(tmp_path):
    store = new_store(tmp_path)
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


def test_minimum_events_guard(tmp_path):
    store = new_store(tmp_path)
    add_spans(store, service="api", start=AT - timedelta(minutes=20), every=timedelta(minutes=1),
              count=20, errors={3, 4, 5})  # fmt: skip
    status = budget_status(store.cursor(), _slo(), AT)
    assert status.burn_rates["1h"] == pytest.approx((3 / 20) / 0.01)
    assert status.state == "insufficient_data"  # 20 events < min_events 50


def test_latency_sli_counts_slow_spans(tmp_path):
    store = new_store(tmp_path)
    durations = [100.0] * 90 + [400.0] * 10
    add_spans(store, service="api", start=AT - timedelta(hours=2), every=timedelta(minutes=1),
              count=100, duration_ms=durations)  # fmt: skip
    status = budget_status(
        store.cursor(), _slo(sli="latency", threshold_ms=300, objective=0.95), AT
    )
    assert status.bad == 10
    assert status.consumed == pytest.approx(10 / (0.05 * 100))


def test_budget_series_is_cumulative(tmp_path):
    store = new_store(tmp_path)
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
        ({"calendar": "year"}, "calendar must be"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"colour": "red"}, "unknown field"),
        ({"budgeting": "timeslices"}, "not supported"),
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
