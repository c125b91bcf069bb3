"""Cohort engagement: engaged subjects over exposed subjects, per cohort and period.

A subject is *exposed* in a period when a decision was evaluated for it
(``feature_flag.context.id``) and *engaged* when it also sent an engagement event (``user.id``)
in that period. Shifts between two windows are two-proportion tests with a confidence interval,
reported only when both sides have at least ``min_sample`` exposed subjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analytics.queries.windows import TimeWindow, bucket_index, bucket_start
from analytics.stats import ProportionTest, minimum_detectable_difference, two_proportion

MIN_SAMPLE = 100


def _filters(
    service: str | None, environment: str | None, flag: str | None
) -> tuple[str, str, dict[str, Any]]:
    """Extra WHERE clauses for decisions and engagement, and their parameters."""
    decisions, engagement = [], []
    params: dict[str, Any] = {}
    if service:
        decisions.append("service_name = $service")
        engagement.append("service_name = $service")
        params["service"] = service
    if environment:
        decisions.append("environment = $environment")
        engagement.append("environment = $environment")
        params["environment"] = environment
    if flag:
        decisions.append("flag_key = $flag")
        params["flag"] = flag
    return (
        "".join(f" AND {c}" for c in decisions),
        "".join(f" AND {c}" for c in engagement),
        params,
    )


@dataclass(frozen=True, slots=True)
class CohortPeriod:
    cohort: str
    period: datetime
    exposed: int
    engaged: int

    @property
    def rate(self) -> float | None:
        return self.engaged / self.exposed if self.exposed else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "cohort": self.cohort,
            "period": self.period.isoformat(),
            "exposed": self.exposed,
            "engaged": self.engaged,
            "rate": self.rate,
        }


def engagement_by_cohort(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    bucket: timedelta,
    *,
    service: str | None = None,
    environment: str | None = None,
    flag: str | None = None,
) -> list[CohortPeriod]:
    """Exposed and engaged subjects per cohort and bucket of ``window``."""
    decision_filter, engagement_filter, params = _filters(service, environment, flag)
    bucket = max(bucket, timedelta(minutes=1))
    b = bucket_index("time", bucket)
    rows = cursor.execute(
        f"""
        WITH exposed AS (
            SELECT DISTINCT {b} AS period, cohort_id, subject_id FROM decisions
            WHERE time >= $start AND time < $end AND subject_id IS NOT NULL
              AND cohort_id IS NOT NULL {decision_filter}
        ), engaged AS (
            SELECT DISTINCT {b} AS period, subject_id FROM engagement
            WHERE time >= $start AND time < $end {engagement_filter}
        )
        SELECT {bucket_start("period", bucket)} AS p, cohort_id, n, e FROM (
            SELECT period, cohort_id, count(*) AS n, count(engaged.subject_id) AS e
            FROM exposed LEFT JOIN engaged USING (period, subject_id)
            GROUP BY period, cohort_id
        ) ORDER BY p, cohort_id
        """,  # noqa: S608 - clauses built from fixed text
        params | {"start": window.start, "end": window.end},
    ).fetchall()
    return [CohortPeriod(c, p, int(n), int(e)) for p, c, n, e in rows]


@dataclass(frozen=True, slots=True)
class CohortShift:
    cohort: str
    before: TimeWindow
    after: TimeWindow
    test: ProportionTest | None  # None: not enough exposed subjects on one side
    exposed_before: int
    exposed_after: int
    engaged_before: int = 0
    engaged_after: int = 0
    min_sample: int = MIN_SAMPLE

    @property
    def enough_data(self) -> bool:
        return self.test is not None

    @property
    def detectable_difference(self) -> float | None:
        """Smallest rate change this comparison sees with 80 % power (at the pooled rate)."""
        exposed = self.exposed_before + self.exposed_after
        if not exposed:
            return None
        rate = (self.engaged_before + self.engaged_after) / exposed
        return minimum_detectable_difference(rate, self.exposed_before, self.exposed_after)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cohort": self.cohort,
            "before": [self.before.start.isoformat(), self.before.end.isoformat()],
            "after": [self.after.start.isoformat(), self.after.end.isoformat()],
            "exposed_before": self.exposed_before,
            "exposed_after": self.exposed_after,
            "engaged_before": self.engaged_before,
            "engaged_after": self.engaged_after,
            "min_sample": self.min_sample,
            "enough_data": self.enough_data,
            "detectable_difference": self.detectable_difference,
            "test": self.test.as_dict() if self.test else None,
        }


def cohort_shifts(
    cursor: duckdb.DuckDBPyConnection,
    before: TimeWindow,
    after: TimeWindow,
    *,
    service: str | None = None,
    environment: str | None = None,
    flag: str | None = None,
    min_sample: int = MIN_SAMPLE,
) -> list[CohortShift]:
    """Each cohort's engagement rate in ``after`` against ``before``.

    A cohort with fewer than ``min_sample`` exposed subjects on either side gets no test
    (``test`` is None), but still its counts and the difference it could have detected.
    """
    sides = {}
    for name, window in (("before", before), ("after", after)):
        periods = engagement_by_cohort(
            cursor, window, window.duration, service=service, environment=environment, flag=flag
        )
        sides[name] = {p.cohort: (p.engaged, p.exposed) for p in periods}
    shifts = []
    for cohort in sorted(set(sides["before"]) | set(sides["after"])):
        e1, n1 = sides["before"].get(cohort, (0, 0))
        e2, n2 = sides["after"].get(cohort, (0, 0))
        test = two_proportion(e1, n1, e2, n2) if min(n1, n2) >= min_sample else None
        shifts.append(CohortShift(cohort, before, after, test, n1, n2, e1, e2, min_sample))
    return shifts
