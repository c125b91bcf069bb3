"""Recorded cohort engagement: exposed and engaged subjects of closed, epoch-aligned periods.

Like a recording rule: once a period has closed (the rule of
:func:`analytics.recording.closed_until`) its distinct-subject counts no longer change, so
:func:`refresh` (run by ``flaglens serve`` in the same round as the change facts) stores them in
``cohort_periods``, per width of :data:`RECORDED_WIDTHS`, period, environment and cohort, plus
the same for all environments together (distinct subjects do not add up over environments).
``cohort_periods_span`` holds, per width, the contiguous span of periods recorded so far; a
refresh records only the closed periods outside it, so with nothing new it costs a few small
queries. It counts on a reader cursor and hands the rows to the store's one writer.
:func:`read` gives :func:`analytics.cohorts.engagement_by_cohort` the recorded periods lying
wholly inside a window; the rest it counts live. Data arriving for a period after it was
recorded is not counted in it.

Subjects are told apart by ``hash(subject_id)``, as the live per-subject masks do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from analytics.recording import LATE_DATA_GRACE, closed_until
from analytics.views import register
from analytics.windows import TimeWindow
from store.writer import StoreWriter

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


_HOUR_US, _DAY_US = 3_600_000_000, 86_400_000_000


def _count(
    cursor: duckdb.DuckDBPyConnection, todo: list[tuple[timedelta, datetime, datetime]]
) -> dict[str, tuple[list[Any], Any]]:
    """The ``cohort_periods`` rows of the periods of each ``(width, start, end)`` in ``todo``.

    One pass for every width: per UTC day, environment (and all of them), cohort and subject,
    a 24-bit mask of the hours it was exposed in, and per day, environment and subject the
    hours it engaged in. A subject is exposed in a period when its mask has an hour of the
    period, and engaged when its engagement mask has one too (every recorded width is whole
    hours dividing a day). Subjects with the same pair of masks are counted together first:
    far fewer pairs than subjects go through the per-period counts.
    """
    slots = [
        (width, j, ((1 << hours) - 1) << (j * hours))
        for width in sorted({w for w, _, _ in todo})
        for hours in [width // timedelta(hours=1)]
        for j in range(24 // hours)
    ]
    counts = ", ".join(
        f"coalesce(sum(c) FILTER (WHERE m & {bits} != 0), 0) AS n{i}, "
        f"coalesce(sum(c) FILTER (WHERE m & {bits} != 0 AND g & {bits} != 0), 0) AS e{i}"
        for i, (_, _, bits) in enumerate(slots)
    )
    hour_bit = f"1::UINTEGER << ((epoch_us(time) // {_HOUR_US}) % 24)::UINTEGER"
    table = cursor.execute(
        f"""
        WITH exposed AS (
            SELECT epoch_us(time) // {_DAY_US} AS d, environment, cohort_id,
                   hash(subject_id) AS s, bit_or({hour_bit}) AS m
            FROM decisions
            WHERE time >= $lo AND time < $hi AND subject_id IS NOT NULL
              AND cohort_id IS NOT NULL
            GROUP BY GROUPING SETS ((d, environment, cohort_id, s), (d, cohort_id, s))
        ), engaged AS (
            SELECT epoch_us(time) // {_DAY_US} AS d, environment, hash(subject_id) AS s,
                   bit_or({hour_bit}) AS g
            FROM engagement WHERE time >= $lo AND time < $hi
            GROUP BY GROUPING SETS ((d, environment, s), (d, s))
        ), masks AS (
            SELECT exposed.d, exposed.environment, cohort_id, m, coalesce(g, 0) AS g,
                   count(*) AS c
            FROM exposed LEFT JOIN engaged
              ON exposed.d = engaged.d AND exposed.s = engaged.s
             AND exposed.environment IS NOT DISTINCT FROM engaged.environment
            GROUP BY ALL
        )
        SELECT d, environment, cohort_id, {counts} FROM masks GROUP BY ALL
        """,  # noqa: S608 - built from numbers
        {"lo": min(start for _, start, _ in todo), "hi": max(end for _, _, end in todo)},
    ).to_arrow_table()
    rows: dict[str, list[Any]] = {"width_s": [], "period_start": [], "environment": [],
                                  "cohort": [], "exposed": [], "engaged": []}  # fmt: skip
    columns = {name: table[name].to_pylist() for name in table.column_names}
    for r, day in enumerate(columns["d"]):
        for i, (width, j, _) in enumerate(slots):
            exposed = columns[f"n{i}"][r]
            at = EPOCH + day * timedelta(days=1) + j * width
            if exposed and any(w == width and a <= at < b for w, a, b in todo):
                values = (int(width.total_seconds()), at, columns["environment"][r],
                          columns["cohort_id"][r], exposed, columns[f"e{i}"][r])  # fmt: skip
                for name, value in zip(rows, values, strict=True):
                    rows[name].append(value)
    return {
        "width_s": (rows["width_s"], pa.int32()),
        "period_start": (rows["period_start"], pa.timestamp("us", tz="UTC")),
        "environment": (rows["environment"], pa.string()),
        "cohort": (rows["cohort"], pa.string()),
        "exposed": (rows["exposed"], pa.int64()),
        "engaged": (rows["engaged"], pa.int64()),
    }


def refresh(
    cursor: duckdb.DuckDBPyConnection,
    writer: StoreWriter,
    now: datetime,
    *,
    grace: timedelta = LATE_DATA_GRACE,
) -> int:
    """Record the closed periods not recorded yet, for every recorded width.

    Counts them on ``cursor`` (a reader's) and stores them through ``writer``. Returns how many
    periods were recorded (over all widths). The span recorded per width grows at its end as
    periods close, and at its start when older data has arrived (a backfill, once it is closed
    too). Earlier and later periods are counted in separate passes.

    Raises:
        StoreError: the writer could not store them (nothing was stored).
    """
    until = closed_until(cursor, now, grace=grace)
    row = cursor.execute("SELECT min(time) FROM decisions").fetchone()
    first: datetime | None = row[0] if row else None
    if first is None:
        return 0
    earlier: list[tuple[timedelta, datetime, datetime]] = []
    later: list[tuple[timedelta, datetime, datetime]] = []
    spans: dict[timedelta, tuple[datetime, datetime]] = {}
    seen: dict[timedelta, tuple[datetime, datetime] | None] = {}
    for width in RECORDED_WIDTHS:
        lo, hi = floor_to(first, width), floor_to(until, width)
        span = seen[width] = recorded_span(cursor, width)
        todo = []
        if span is None:
            todo = [(width, lo, hi)] if lo < hi else []
            later += todo
        else:
            if lo < span[0] <= hi:
                todo.append((width, lo, span[0]))
                earlier.append(todo[-1])
            if span[1] < hi:
                todo.append((width, span[1], hi))
                later.append(todo[-1])
        if todo:
            ends = [*(span or ()), *(t for _, a, b in todo for t in (a, b))]
            spans[width] = (min(ends), max(ends))
    if not spans:
        return 0
    found = [_count(cursor, part) for part in (earlier, later) if part]
    periods = sum((b - a) // w for w, a, b in earlier + later)

    def write(cursor: duckdb.DuckDBPyConnection) -> int:
        # counted against the spans read above: if another refresh moved one since, these
        # rows would repeat its periods, so record nothing (the next refresh counts again)
        if any(recorded_span(cursor, width) != seen[width] for width in spans):
            return 0
        try:
            for n, columns in enumerate(found):
                register(cursor, f"_cohort_periods_{n}", columns)
                view = f"_cohort_periods_{n}"
                cursor.execute(f"INSERT INTO cohort_periods BY NAME SELECT * FROM {view}")  # noqa: S608
        finally:
            for n in range(len(found)):
                cursor.unregister(f"_cohort_periods_{n}")
        for width, (start, end) in spans.items():
            w = int(width.total_seconds())
            cursor.execute("DELETE FROM cohort_periods_span WHERE width_s = $w", {"w": w})
            cursor.execute(
                "INSERT INTO cohort_periods_span VALUES ($w, $start, $end, $now)",
                {"w": w, "start": start, "end": end, "now": now},
            )
        return periods

    return writer.execute_write_fn(write).result()
