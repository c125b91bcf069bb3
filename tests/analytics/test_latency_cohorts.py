"""Percentiles and cohort engagement on hand-built rows, checked against numpy / by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.cohorts import cohort_shifts, engagement_by_cohort
from analytics.latency import latency_percentiles, request_series
from analytics.queries.windows import TimeWindow
from analytics.stats import two_proportion
from tests.analytics.helpers import add_decisions, add_spans, new_store

T0 = datetime(2026, 11, 16, tzinfo=UTC)


def test_percentiles_per_service_and_bucket(tmp_path):
    store = new_store(tmp_path)
    durations = [float(d) for d in range(1, 201)]
    add_spans(store, service="a", start=T0, every=timedelta(seconds=36), count=200,
              duration_ms=durations, errors={0, 1})  # fmt: skip
    add_spans(store, service="b", start=T0, every=timedelta(minutes=1), count=10,
              duration_ms=50.0)  # fmt: skip
    window = TimeWindow(T0, T0 + timedelta(hours=2))
    rows = {r.group["service"]: r for r in latency_percentiles(store.cursor(), window)}
    assert rows["a"].count == 200
    for q, value in ((0.5, rows["a"].p50), (0.95, rows["a"].p95), (0.99, rows["a"].p99)):
        assert value == pytest.approx(np.quantile(durations, q))  # linear interpolation
    assert rows["b"].p99 == 50.0
    series = request_series(store.cursor(), window, timedelta(hours=1), service="a")
    assert [(b.requests, b.errors) for b in series] == [(100, 2), (100, 0)]
    assert series[0].p50 == pytest.approx(np.quantile(durations[:100], 0.5))


def test_engagement_per_cohort_and_shift(tmp_path):
    store = new_store(tmp_path)
    day = timedelta(days=1)
    before = [f"u{i}" for i in range(200)]
    after = [f"u{i}" for i in range(200, 450)]
    add_decisions(store, flag="f", version="v1", times=[T0 + timedelta(hours=1)] * 200,
                  subjects=before)  # fmt: skip
    add_decisions(store, flag="f", version="v1", times=[T0 + day + timedelta(hours=1)] * 250,
                  subjects=after)  # fmt: skip
    engaged = before[:50] + after[:100]
    cursor = store.cursor()
    cursor.executemany(
        "INSERT INTO engagement BY NAME SELECT ?::TIMESTAMPTZ AS time, now() AS ingested_at, "
        "'api' AS service_name, 'prod' AS environment, ? AS subject_id, 'c1' AS cohort_id, "
        "'click' AS action, 'user.engagement' AS contract_id, '1.0.0' AS contract_version, "
        "'{}' AS attributes, 1 AS request_id",
        [(T0 + (day if s in after else timedelta(0)) + timedelta(hours=2), s) for s in engaged],
    )
    periods = engagement_by_cohort(cursor, TimeWindow(T0, T0 + 2 * day), day)
    assert [(p.exposed, p.engaged) for p in periods] == [(200, 50), (250, 100)]
    shifts = cohort_shifts(
        cursor, TimeWindow(T0, T0 + day), TimeWindow(T0 + day, T0 + 2 * day), service="api"
    )
    assert len(shifts) == 1 and shifts[0].test is not None
    expected = two_proportion(50, 200, 100, 250)
    assert shifts[0].test.difference == pytest.approx(0.4 - 0.25)
    assert shifts[0].test.p_value == pytest.approx(expected.p_value)
    too_few = cohort_shifts(
        cursor, TimeWindow(T0, T0 + day), TimeWindow(T0 + day, T0 + 2 * day), min_sample=300
    )
    assert too_few[0].test is None and not too_few[0].enough_data
