"""Recorded cohort engagement: exposed and engaged subjects of closed, epoch-aligned periods.

Like a recording rule: once a period has closed (the rule of
:func:`analytics.impact_facts.closed_until`) its distinct-subject counts no longer change, so
:func:`refresh` (run by ``flaglens serve`` in the same round as the change facts) stores them in
``cohort_periods``, per width of :data:`RECORDED_WIDTHS`, period, environment and cohort, plus
the same for all environments together (distinct subjects do not add up over environments).
``cohort_periods_span`` holds, per width, the contiguous span of periods recorded so far; a
refresh records only the closed periods outside it, so with nothing new it costs two small
queries. :func:`read` gives :func:`analytics.cohorts.engagement_by_cohort` the recorded periods
lying wholly inside a window; the rest it counts live. Data arriving for a period after it was
recorded is not counted in it.

Subjects are told apart by ``hash(subject_id)``, as the live per-subject masks do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

from analytics.impact_facts import LATE_DATA_GRACE, closed_until
from analytics.queries.windows import TimeWindow

# the widths the Cohorts page picks for ranges up to about 40 days (dashboards.state.bucket_for)
RECORDED_WIDTHS = tuple(timedelta(hours=h) for h in (1, 3, 6, 12, 24))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def floor_to(at: datetime, width: timedelta) -> datetime:
    """Start of the epoch-aligned ``width`` bucket holding ``at``."""
    us, w = (at - EPOCH) // _US, width // _US
    return EPOCH + (us - us % w) * _US


def _ceil_to(at: datetime, width: timedelta) -> datetime:
    start = floor_to(at, width)
    return start if start == at else start + width


def recorded_span(
    cursor: duckdb.DuckDBPyConnection, width: timedelta
) -> tuple[datetime, datetime] | None:
    """``[from, until)``: the periods of ``width`` recorded so far (None: none)."""
    row = cursor.execute(
        "SELECT recorded_from, recorded_until FROM cohort_periods_span WHERE width_s = $w",
        {"w": int(width.total_seconds())},
    ).fetchone()
    return (row[0], row[1]) if row else None


def read(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    width: timedelta,
    environment: str | None,
) -> tuple[list[tuple[datetime, str, int, int]], TimeWindow] | None:
    """Recorded (period start, cohort, exposed, engaged) of the periods wholly in ``window``.

    Returns them with the part of the window they cover (period-aligned), or None when no
    recorded period lies wholly inside the window (or ``width`` is not recorded).
    """
    if width not in RECORDED_WIDTHS:
        return None
    span = recorded_span(cursor, width)
    if span is None:
        return None
    start = max(_ceil_to(window.start, width), span[0])
    end = min(floor_to(window.end, width), span[1])
    if start >= end:
        return None
    rows = cursor.execute(
        "SELECT period_start, cohort, exposed, engaged FROM cohort_periods "
        "WHERE width_s = $w AND period_start >= $start AND period_start < $end "
        "AND environment IS NOT DISTINCT FROM $env ORDER BY period_start, cohort",
        {"w": int(width.total_seconds()), "start": start, "end": end, "env": environment},
    ).fetchall()
    return [(p, c, int(n), int(e)) for p, c, n, e in rows], TimeWindow(start, end)


def _record(
    cursor: duckdb.DuckDBPyConnection, width: timedelta, start: datetime, end: datetime
) -> None:
    """Count and insert every period of ``width`` in ``[start, end)`` (both aligned)."""
    micros = width // _US
    cursor.execute(
        f"""
        INSERT INTO cohort_periods
        WITH exposed AS MATERIALIZED (
            SELECT DISTINCT epoch_us(time) // {micros} AS k, environment, cohort_id,
                   hash(subject_id) AS s
            FROM decisions
            WHERE time >= $start AND time < $end AND subject_id IS NOT NULL
              AND cohort_id IS NOT NULL
        ), engaged AS MATERIALIZED (
            SELECT DISTINCT epoch_us(time) // {micros} AS k, environment, hash(subject_id) AS s
            FROM engagement WHERE time >= $start AND time < $end
        ), each_env AS (
            SELECT k, environment, cohort_id, count(*) AS n, count(engaged.s) AS e
            FROM exposed LEFT JOIN engaged USING (k, environment, s)
            GROUP BY ALL
        ), all_exposed AS (
            SELECT DISTINCT k, cohort_id, s FROM exposed
        ), all_engaged AS (
            SELECT DISTINCT k, s FROM engaged
        ), all_envs AS (
            SELECT k, NULL::VARCHAR AS environment, cohort_id, count(*) AS n,
                   count(all_engaged.s) AS e
            FROM all_exposed LEFT JOIN all_engaged USING (k, s)
            GROUP BY ALL
        )
        SELECT {int(width.total_seconds())}, make_timestamp(k * {micros})::TIMESTAMPTZ,
               environment, cohort_id, n, e
        FROM (SELECT * FROM each_env UNION ALL SELECT * FROM all_envs)
        """,  # noqa: S608 - built from numbers
        {"start": start, "end": end},
    )


def refresh(
    cursor: duckdb.DuckDBPyConnection, now: datetime, *, grace: timedelta = LATE_DATA_GRACE
) -> int:
    """Record the closed periods not recorded yet, for every recorded width.

    Returns how many periods were recorded (over all widths). The span recorded per width
    grows at its end as periods close, and at its start when older data has arrived (a
    backfill, once it is closed too).
    """
    until = closed_until(cursor, now, grace=grace)
    row = cursor.execute("SELECT min(time) FROM decisions").fetchone()
    first: datetime | None = row[0] if row else None
    if first is None:
        return 0
    recorded = 0
    for width in RECORDED_WIDTHS:
        lo, hi = floor_to(first, width), floor_to(until, width)
        span = recorded_span(cursor, width)
        if span is None:
            todo = [(lo, hi)] if lo < hi else []
        else:
            todo = []
            if lo < span[0] <= hi:
                todo.append((lo, span[0]))
            if span[1] < hi:
                todo.append((span[1], hi))
        if not todo:
            continue
        ends = [*(span or ()), *(t for pair in todo for t in pair)]
        new_span = (min(ends), max(ends))
        cursor.execute("BEGIN TRANSACTION")
        try:
            for start, end in todo:
                _record(cursor, width, start, end)
                recorded += (end - start) // width
            cursor.execute(
                "DELETE FROM cohort_periods_span WHERE width_s = $w",
                {"w": int(width.total_seconds())},
            )
            cursor.execute(
                "INSERT INTO cohort_periods_span VALUES ($w, $start, $end, $now)",
                {
                    "w": int(width.total_seconds()),
                    "start": new_span[0],
                    "end": new_span[1],
                    "now": now,
                },
            )
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    return recorded
