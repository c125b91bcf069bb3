"""What data is *closed*: the rule for when a window's figures can be recorded.

Data before :func:`closed_until` is closed: no longer expected to change, because it is older
than :data:`LATE_DATA_GRACE` and nothing ingested since carries an older event time. Both
recorded figures (change facts, cohort periods) record only windows that end by then.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

# how long after a window ends its data may still arrive: facts are recorded only after this
LATE_DATA_GRACE = timedelta(hours=1)


def ingest_frontier(
    cursor: duckdb.DuckDBPyConnection, now: datetime, *, grace: timedelta = LATE_DATA_GRACE
) -> datetime | None:
    """The earliest event time among rows ingested in the last ``grace`` (None: no such rows).

    Windows ending after it may still be filling: a backfill (such as ``flaglens demo``
    loading a past week) sends old event times now. Rows are appended in ingest order, so the
    ``ingested_at`` filter reads only the newest row groups.
    """
    row = cursor.execute(
        """
        SELECT least(
            (SELECT min(time) FROM decisions WHERE ingested_at >= $since),
            (SELECT min(time) FROM engagement WHERE ingested_at >= $since),
            (SELECT min(start_time) FROM spans WHERE ingested_at >= $since))
        """,
        {"since": now - grace},
    ).fetchone()
    frontier: datetime | None = row[0] if row else None
    return frontier


def closed_until(
    cursor: duckdb.DuckDBPyConnection, now: datetime, *, grace: timedelta = LATE_DATA_GRACE
) -> datetime:
    """Data before the returned instant is closed at ``now``: no longer expected to change.

    That is ``grace`` before ``now``, or earlier while rows ingested in the last ``grace``
    carry older event times (see :func:`ingest_frontier`). A window ending at or before it is
    closed; this is the one rule for every recorded figure (change facts, cohort periods).
    """
    frontier = ingest_frontier(cursor, now, grace=grace)
    limit = now - grace
    return limit if frontier is None else min(limit, frontier)
