"""Cohort engagement from per-subject slot masks equals the distinct-row count, figure by figure.

A pseudo-random store (several services, cohorts, subjects seen in many periods and cohorts,
decisions without subject or cohort, engagement on other services) is counted both ways for
buckets that do and do not divide the window, with and without filters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics import cohorts
from analytics.cohorts import cohort_shifts, engagement_by_cohort
from analytics.windows import TimeWindow

T0 = datetime(2026, 11, 16, 0, 7, 13, 250_000, tzinfo=UTC)  # not aligned to anything
WEEK = TimeWindow(T0, T0 + timedelta(days=2))


@pytest.fixture(scope="module")
def store(tmp_path_factory, module_store_maker):
    store = module_store_maker.new(tmp_path_factory.mktemp("masks"))
    fill_mixed(store.cursor())
    return store


def fill_mixed(cursor):
    """Decisions from T0 - 12 h to T0 + 2.5 d, engagement over the same span."""
    seconds = 3 * 24 * 3600
    cursor.execute(
        f"""
        INSERT INTO decisions BY NAME
        SELECT TIMESTAMPTZ '{(T0 - timedelta(hours=12)).isoformat()}'
                   + to_microseconds((i * {seconds} * 1000000 // 30000)::BIGINT) AS time,
               now() AS ingested_at, 'd-' || i AS decision_id,
               ['api', 'web', 'batch'][1 + (hash(i) % 3)::BIGINT] AS service_name,
               CASE WHEN i % 5 = 0 THEN 'staging' ELSE 'prod' END AS environment,
               'flag-' || (i % 3) AS flag_key, 'v1' AS flag_version,
               CASE WHEN i % 97 = 0 THEN NULL ELSE 'user-' || (hash(i * 7) % 400) END
                   AS subject_id,
               CASE WHEN i % 89 = 0 THEN NULL
                    ELSE ['b', 'a', 'd', 'c', 'e'][1 + (hash(i * 3) % 5)::BIGINT] END
                   AS cohort_id,
               'release' AS policy_module, 'log' AS source, 'c' AS contract_id,
               '1.0.0' AS contract_version, '{{}}' AS attributes, 1 AS request_id
        FROM range(30000) t(i)
        """
    )
    # a cohort seen only in decisions without a subject: it never counts
    cursor.execute(
        "INSERT INTO decisions BY NAME SELECT $t AS time, now() AS ingested_at, 'lone' AS "
        "decision_id, 'api' AS service_name, 'prod' AS environment, 'flag-1' AS flag_key, "
        "'v1' AS flag_version, NULL AS subject_id, 'aa' AS cohort_id, 'release' AS "
        "policy_module, 'log' AS source, 'c' AS contract_id, '1.0.0' AS contract_version, "
        "'{}' AS attributes, 1 AS request_id",
        {"t": T0 + timedelta(hours=3)},
    )
    cursor.execute(
        f"""
        INSERT INTO engagement BY NAME
        SELECT TIMESTAMPTZ '{(T0 - timedelta(hours=12)).isoformat()}'
                   + to_microseconds((i * {seconds} * 1000000 // 2000)::BIGINT) AS time,
               now() AS ingested_at, ['api', 'web', 'other'][1 + (hash(i) % 3)::BIGINT]
                   AS service_name,
               CASE WHEN i % 4 = 0 THEN 'staging' ELSE 'prod' END AS environment,
               'user-' || (hash(i * 11) % 1500) AS subject_id, NULL AS cohort_id,
               'click' AS action, 'user.engagement' AS contract_id, '1.0.0' AS contract_version,
               '{{}}' AS attributes, 1 AS request_id
        FROM range(2000) t(i)
        """
    )


def _as_tuples(periods):
    return [(p.period, p.cohort, p.exposed, p.engaged) for p in periods]


@pytest.mark.parametrize(
    "bucket",
    [timedelta(minutes=7), timedelta(hours=1), timedelta(hours=5), timedelta(days=1),
     timedelta(days=2)],
)  # fmt: skip
@pytest.mark.parametrize(
    "filters",
    [{}, {"service": "api"}, {"environment": "prod", "flag": "flag-1"}, {"service": "none"}],
)
def test_masks_count_what_distinct_rows_count(store, monkeypatch, bucket, filters):
    monkeypatch.setattr(cohorts, "MASKS_WHEN_NARROWED", True)
    found = engagement_by_cohort(store.cursor(), WEEK, bucket, **filters)
    monkeypatch.setattr(cohorts, "MAX_MASK_SLOTS", 0)  # the distinct-row query
    expected = engagement_by_cohort(store.cursor(), WEEK, bucket, **filters)
    assert _as_tuples(found) == _as_tuples(expected)
    assert "aa" not in {p.cohort for p in found}
    if filters.get("service") != "none":
        assert len(expected) >= 5
        assert 0 < sum(p.engaged for p in expected) < sum(p.exposed for p in expected)


def test_many_slices_of_slots(store, monkeypatch):
    # 5 cohorts fill 125 of the 128 slots of 25 periods: 10-minute buckets over 2 days need 12
    # slices; more than MAX_MASK_SLOTS falls back to distinct rows
    bucket = timedelta(minutes=10)
    found = engagement_by_cohort(store.cursor(), WEEK, bucket)
    monkeypatch.setattr(cohorts, "MAX_MASK_SLOTS", 0)
    assert _as_tuples(found) == _as_tuples(engagement_by_cohort(store.cursor(), WEEK, bucket))
    assert len({p.period for p in found}) > 200


@pytest.mark.parametrize("masks", [True, False])
def test_shifts_of_adjacent_windows_in_one_pass_equal_two_passes(store, monkeypatch, masks):
    monkeypatch.setattr(cohorts, "MASKS_WHEN_NARROWED", masks)
    before = TimeWindow(T0, T0 + timedelta(days=1))
    after = TimeWindow(T0 + timedelta(days=1), T0 + timedelta(days=2))
    found = cohort_shifts(store.cursor(), before, after, service="api", min_sample=10)
    expected = {}
    for name, window in (("before", before), ("after", after)):
        # the whole window as one period (engagement_by_cohort's periods are epoch-aligned)
        expected[name] = cohorts.engagement_in(store.cursor(), window, service="api")
    assert [s.cohort for s in found] == sorted(expected["before"])
    for shift in found:
        assert (shift.exposed_before, shift.engaged_before) == expected["before"][shift.cohort]
        assert (shift.exposed_after, shift.engaged_after) == expected["after"][shift.cohort]
        assert shift.test is not None
    # windows with a gap between them: counted apart, same figures for the after side
    apart = cohort_shifts(store.cursor(), TimeWindow(T0, T0 + timedelta(hours=20)), after,
                          service="api", min_sample=10)  # fmt: skip
    assert [(s.exposed_after, s.engaged_after) for s in apart] == [
        (s.exposed_after, s.engaged_after) for s in found
    ]
