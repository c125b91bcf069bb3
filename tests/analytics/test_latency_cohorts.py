"""Percentiles and cohort engagement on hand-built rows, checked against numpy / by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.cohorts import cohort_shifts, engagement_by_cohort
from analytics.latency import latency_percentiles, request_series
from analytics.stats import benjamini_hochberg, holm, two_proportion
from analytics.windows import TimeWindow
from tests.analytics.helpers import LazyModule, add_decisions, add_engagement, add_spans

stats = LazyModule("scipy.stats")

T0 = datetime(2026, 11, 16, tzinfo=UTC)


def test_percentiles_per_service_and_bucket(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
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


def test_engagement_per_cohort_and_shift(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
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
    # with 200 and 250 exposed at a pooled 150/450, 5 % two-sided and 80 % power see this much
    pooled = 150 / 450
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    detectable = z * math.sqrt(pooled * (1 - pooled) * (1 / 200 + 1 / 250))
    assert shifts[0].detectable_difference == pytest.approx(detectable)
    assert shifts[0].as_dict()["engaged_after"] == 100
    too_few = cohort_shifts(
        cursor, TimeWindow(T0, T0 + day), TimeWindow(T0 + day, T0 + 2 * day), min_sample=300
    )
    assert too_few[0].test is None and not too_few[0].enough_data


def test_percentiles_per_variant_and_version_join_the_decisions_of_each_span(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    durations = [float(10 + (i * 37) % 300) for i in range(400)]
    add_spans(store, service="api", start=T0, every=timedelta(seconds=9), count=400,
              duration_ms=durations)  # fmt: skip
    # span i evaluated flag f once: variant on for odd i (version v2), off for even i (v1);
    # spans 0..49 also evaluated flag g, which must not count under flag f
    store.cursor().execute(
        "INSERT INTO decisions BY NAME SELECT $t0::TIMESTAMPTZ + to_seconds(i * 9) AS time, "
        "now() AS ingested_at, 'd' || i || flag AS decision_id, 'api' AS service_name, "
        "'prod' AS environment, flag AS flag_key, "
        "CASE WHEN i % 2 = 1 THEN 'v2' ELSE 'v1' END AS flag_version, "
        "CASE WHEN i % 2 = 1 THEN 'on' ELSE 'off' END AS variant, 'release' AS policy_module, "
        "'log' AS source, 'feature_flag.evaluation.release' AS contract_id, "
        "'1.0.0' AS contract_version, '{}' AS attributes, 1 AS request_id, "
        "lpad(lower(to_hex(i)), 32, '0') AS trace_id, lpad(lower(to_hex(i)), 16, '0') AS span_id "
        "FROM range(400) r(i), (VALUES ('f'), ('g')) v(flag) WHERE flag = 'f' OR i < 50",
        {"t0": T0},
    )
    window = TimeWindow(T0, T0 + timedelta(hours=1))
    rows = latency_percentiles(store.cursor(), window, by=("variant", "version"), flag="f")
    assert [(r.group["variant"], r.group["version"], r.count) for r in rows] == [
        ("off", "v1", 200), ("on", "v2", 200),
    ]  # fmt: skip
    for row, parity in zip(rows, (0, 1), strict=True):
        mine = [d for i, d in enumerate(durations) if i % 2 == parity]
        assert row.p50 == pytest.approx(np.quantile(mine, 0.5))
        assert row.p95 == pytest.approx(np.quantile(mine, 0.95))
        assert row.p99 == pytest.approx(np.quantile(mine, 0.99))


def test_cohort_shifts_are_adjusted_together_and_say_if_significant(tmp_path, store_maker):
    """Benjamini–Hochberg over every cohort compared at once; `significant` is adjusted p."""
    store = store_maker.new(tmp_path)
    day = timedelta(days=1)
    # three cohorts, 200 exposed a side; engaged before/after: a 50/100, b 50/69, c 50/50
    for cohort, after_engaged in (("a", 100), ("b", 69), ("c", 50)):
        subjects = [f"{cohort}{i}" for i in range(400)]
        add_decisions(store, flag="f", version="v1", times=[T0 + timedelta(hours=1)] * 200,
                      subjects=subjects[:200], cohort=cohort)  # fmt: skip
        add_decisions(store, flag="f", version="v1", times=[T0 + day + timedelta(hours=1)] * 200,
                      subjects=subjects[200:], cohort=cohort)  # fmt: skip
        add_engagement(store, subjects=subjects[:50], at=T0 + timedelta(hours=2), cohort=cohort)
        add_engagement(store, subjects=subjects[200 : 200 + after_engaged],
                       at=T0 + day + timedelta(hours=2), cohort=cohort)  # fmt: skip
    shifts = cohort_shifts(
        store.cursor(), TimeWindow(T0, T0 + day), TimeWindow(T0 + day, T0 + 2 * day)
    )
    raw = [s.test.p_value for s in shifts]
    assert [s.p_adjusted for s in shifts] == pytest.approx(benjamini_hochberg(raw))
    assert [s.cohort for s in shifts if s.significant] == ["a"]
    assert raw[1] < 0.05 < shifts[1].p_adjusted  # b: significant alone, not among three
    row = shifts[0].as_dict()
    assert row["correction"] == "bh" and row["significant"] and "cohorts of" in row["family"]
    holm_shifts = cohort_shifts(
        store.cursor(), TimeWindow(T0, T0 + day), TimeWindow(T0 + day, T0 + 2 * day),
        correction="holm",
    )  # fmt: skip
    assert [s.p_adjusted for s in holm_shifts] == pytest.approx(holm(raw))
