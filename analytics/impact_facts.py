"""The facts around each policy change that its impact is judged on, gathered live or recorded.

For a change with comparison windows (see :func:`comparison_windows`) the *facts* are: the
services that evaluated its flag in its environment during either window; per service and
side, the server spans and how many failed, and a latency sample; per service, cohort and side,
the exposed subjects and how many of them engaged. :func:`gather` finds them for any number of
changes with a fixed number of queries; the exact distinct-subject counts make it the costly
part of change impact (seconds on millions of decisions).

Facts of windows that have closed do not change any more, so they are *recorded*, as a
recording rule would: :func:`refresh` (run by ``flaglens serve`` with each alert evaluation)
stores in ``impact_windows`` / ``impact_facts`` the facts of every change whose after window
ended at least :data:`LATE_DATA_GRACE` ago and before the event time of everything ingested
since then (the latency samples as their test result, which is all the assessment needs), and
:func:`read_recorded` fills changes in from there. Recorded facts stand only for exactly the
windows and flag a change gets now: a change whose windows moved (new data widened its
bounds) is gathered live again, and recorded again by the next refresh. Data that arrives
later than that for a window already recorded is not counted in it. The facts are gathered on
a reader cursor; only storing them (:func:`record`) is handed to the store's one writer.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from analytics.recording import LATE_DATA_GRACE, closed_until
from analytics.stats import ShiftTest, location_shift
from analytics.views import register
from analytics.windows import TimeWindow
from store.write_fns import WriteFn
from store.writer import StoreWriter

HALF_WIDTH = timedelta(hours=24)
MIN_HALF_WIDTH = timedelta(hours=1)
MIN_SAMPLE = 100  # spans per side for error rate and latency; exposed subjects for engagement
LATENCY_SAMPLE = 1_000
_MINUTE = timedelta(minutes=1)
_MINUTE_US = 60_000_000
BAD_SPAN = "(status_code = 'error' OR coalesce(http_status_code, 0) >= 500)"
_TIME = pa.timestamp("us", tz="UTC")


def _floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _ceil_minute(at: datetime) -> datetime:
    floor = _floor_minute(at)
    return floor if floor == at else floor + _MINUTE


def comparison_windows(
    at: datetime,
    bounds: tuple[datetime | None, datetime | None],
    half_width: timedelta = HALF_WIDTH,
) -> tuple[TimeWindow, TimeWindow] | None:
    """The before/after windows of a change at ``at`` within the data ``bounds`` (or None).

    Both are ``w`` long, in whole minutes, ``w`` at most ``half_width`` and at least
    :data:`MIN_HALF_WIDTH`; the minute of the change itself is in neither.
    """
    first, last = bounds
    if first is None or last is None:
        return None
    end_before, start_after = _floor_minute(at), _ceil_minute(at)
    width = min(half_width, end_before - first, last - start_after)
    width = timedelta(minutes=width // _MINUTE)
    if width < MIN_HALF_WIDTH:
        return None
    return (
        TimeWindow(end_before - width, end_before),
        TimeWindow(start_after, start_after + width),
    )


def data_bounds(
    cursor: duckdb.DuckDBPyConnection, environments: set[str]
) -> dict[str, tuple[datetime | None, datetime | None]]:
    """First and last server span per environment: how far windows can reach."""
    if not environments:
        return {}
    rows = cursor.execute(
        "SELECT environment, min(start_time), max(start_time) FROM spans "
        "WHERE environment IN (SELECT unnest($envs)) GROUP BY environment",
        {"envs": sorted(environments)},
    ).fetchall()
    found = {env: (first, last) for env, first, last in rows}
    return {env: found.get(env, (None, None)) for env in environments}


@dataclass(slots=True)
class WindowFacts:
    """One change's windows and what happened in them."""

    index: int
    change_id: str
    flag: str
    environment: str
    before: TimeWindow
    after: TimeWindow
    services: tuple[str, ...] = ()
    # (service, side) → (total, bad) server spans; side 0 = before, 1 = after
    spans: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    # (service, cohort, side) → (exposed, engaged) subjects
    exposure: dict[tuple[str, str, int], tuple[int, int]] = field(default_factory=dict)
    durations: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    # service → latency test on the samples of both sides (computed once, or as recorded)
    shifts: dict[str, ShiftTest] = field(default_factory=dict)

    def latency_test(self, service: str) -> ShiftTest | None:
        """The latency comparison of ``service``: None without spans sampled on both sides."""
        if service not in self.shifts:
            before, after = (self.durations.get((service, s)) for s in (0, 1))
            if before is None or after is None or not len(before) or not len(after):
                return None
            self.shifts[service] = location_shift(before, after)
        return self.shifts[service]

    @property
    def key(self) -> tuple[Any, ...]:
        """What recorded facts must match to stand for these."""
        return (self.flag, self.environment, self.before.start, self.before.end,
                self.after.start, self.after.end)  # fmt: skip


def _edges(
    facts: list[WindowFacts], names: tuple[str, str, str, str] = ("t0", "t1", "t2", "t3")
) -> dict[str, tuple[list[Any], Any]]:
    """The before start, before end, after start and after end of each of ``facts``, as view
    columns under ``names``."""
    edges = (
        [f.before.start for f in facts],
        [f.before.end for f in facts],
        [f.after.start for f in facts],
        [f.after.end for f in facts],
    )
    return {name: (values, _TIME) for name, values in zip(names, edges, strict=True)}


def gather(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> None:
    """Fill in every fact of ``facts`` from the event tables."""
    if not facts:
        return
    _find_exposures(cursor, facts)
    affected = [f for f in facts if f.services]
    if affected:
        _count_spans(cursor, affected)
        _sample_durations(cursor, affected)


def _find_exposures(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> None:
    """Affected services, and exposed / engaged subjects per service, cohort and side.

    One query for every change: decisions of each change's flag and environment in its
    windows, deduplicated per subject (subjects as 64-bit hashes of their ids: integer keys
    make the dedup and the join with engagement cheaper; two of a million subjects share a
    hash with odds of about 1 in 40 million), then the subjects with an engagement event on
    the same service in the same window. About one row per decision goes through the dedup.
    """
    register(
        cursor,
        "_impact_windows",
        {
            "w": ([f.index for f in facts], pa.int64()),
            "flag": ([f.flag for f in facts], pa.string()),
            "env": ([f.environment for f in facts], pa.string()),
            **_edges(facts),
        },
    )
    try:
        rows = cursor.execute(
            """
            WITH hits AS MATERIALIZED (
                SELECT w.w, d.service_name AS service, d.cohort_id AS cohort,
                       CASE WHEN d.time < w.t1 THEN 0 WHEN d.time >= w.t2 THEN 1 END AS side,
                       d.h
                FROM (SELECT time, service_name, cohort_id, flag_key, environment,
                             CASE WHEN subject_id IS NOT NULL THEN hash(subject_id) END AS h
                      FROM decisions) d
                JOIN _impact_windows w
                  ON d.flag_key = w.flag AND d.environment = w.env
                 AND d.time >= w.t0 AND d.time < w.t3
                GROUP BY ALL
            ), targets AS (
                SELECT w.*, p.service
                FROM (SELECT DISTINCT w, service FROM hits) p JOIN _impact_windows w USING (w)
            ), engaged AS (
                SELECT DISTINCT t.w, t.service,
                       CASE WHEN e.time < t.t1 THEN 0 ELSE 1 END AS side,
                       hash(e.subject_id) AS h
                FROM engagement e JOIN targets t
                  ON e.environment = t.env AND e.service_name = t.service
                 AND ((e.time >= t.t0 AND e.time < t.t1) OR (e.time >= t.t2 AND e.time < t.t3))
            )
            SELECT hits.w, hits.service, hits.cohort, hits.side,
                   count(hits.h) FILTER (WHERE hits.cohort IS NOT NULL AND hits.side IS NOT NULL),
                   count(engaged.h) FILTER (WHERE hits.cohort IS NOT NULL)
            FROM hits LEFT JOIN engaged
              ON hits.w = engaged.w AND hits.service = engaged.service
             AND hits.side = engaged.side AND hits.h = engaged.h
            GROUP BY ALL
            """
        ).fetchall()
    finally:
        cursor.unregister("_impact_windows")
    services: dict[int, set[str]] = defaultdict(set)
    by_index = {f.index: f for f in facts}
    for w, service, cohort, side, exposed, engaged in rows:
        services[w].add(service)
        if cohort is not None and side is not None and exposed:
            by_index[w].exposure[(service, cohort, side)] = (int(exposed), int(engaged))
    for w, found in services.items():
        by_index[w].services = tuple(sorted(found))


def targets(pairs: list[tuple[WindowFacts, str]]) -> dict[str, tuple[list[Any], Any]]:
    """One row per (change, affected service): the columns of ``_impact_targets``."""
    return {
        "w": ([f.index for f, _ in pairs], pa.int64()),
        "service": ([s for _, s in pairs], pa.string()),
        "env": ([f.environment for f, _ in pairs], pa.string()),
        **_edges([f for f, _ in pairs]),
    }


def _count_spans(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> None:
    """Server spans and errors per change, affected service and side.

    Spans are counted per minute once (windows are whole minutes, so sums of minutes are
    exact), then summed per window.
    """
    columns = targets([(f, s) for f in facts for s in f.services])
    lo, hi = min(columns["t0"][0]), max(columns["t3"][0])
    register(cursor, "_impact_targets", columns)
    try:
        rows = cursor.execute(
            f"""
            WITH minutes AS MATERIALIZED (
                SELECT service_name, environment, epoch_us(start_time) // {_MINUTE_US} AS m,
                       count(*) AS n, count(*) FILTER (WHERE {BAD_SPAN}) AS bad
                FROM spans
                WHERE kind = 'server' AND service_name IN (SELECT unnest($services))
                  AND start_time >= $lo AND start_time < $hi
                GROUP BY ALL
            )
            SELECT t.w, t.service, coalesce(sum(n) FILTER (WHERE m < e1), 0),
                   coalesce(sum(bad) FILTER (WHERE m < e1), 0),
                   coalesce(sum(n) FILTER (WHERE m >= e2), 0),
                   coalesce(sum(bad) FILTER (WHERE m >= e2), 0)
            FROM (SELECT *, epoch_us(t0) // {_MINUTE_US} AS e0,
                         epoch_us(t1) // {_MINUTE_US} AS e1,
                         epoch_us(t2) // {_MINUTE_US} AS e2,
                         epoch_us(t3) // {_MINUTE_US} AS e3 FROM _impact_targets) t
            JOIN minutes ON minutes.service_name = t.service AND minutes.environment = t.env
             AND ((m >= e0 AND m < e1) OR (m >= e2 AND m < e3))
            GROUP BY ALL
            """,  # noqa: S608 - built from constants
            {"services": sorted(set(columns["service"][0])), "lo": lo, "hi": hi},
        ).fetchall()
    finally:
        cursor.unregister("_impact_targets")
    by_index = {f.index: f for f in facts}
    for w, service, n1, bad1, n2, bad2 in rows:
        by_index[w].spans[(service, 0)] = (int(n1), int(bad1))
        by_index[w].spans[(service, 1)] = (int(n2), int(bad2))


def _sample_durations(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> None:
    """At most :data:`LATENCY_SAMPLE` span durations per change, service and side.

    The sample is the spans with the smallest hash of their span id (random, but the same on
    every run). Large windows are thinned first (``hash % 2^k = 0``, keeping about 2–4 times
    the sample) so that the join handles thousands of spans per window, not millions.
    """
    levels: dict[int, list[tuple[WindowFacts, str]]] = defaultdict(list)
    for f in facts:
        for service in f.services:
            n = min(f.spans.get((service, side), (0, 0))[0] for side in (0, 1))
            if n >= MIN_SAMPLE:
                level = max(0, int(math.log2(n / (2 * LATENCY_SAMPLE)))) if n else 0
                levels[level].append((f, service))
    for level, pairs in sorted(levels.items()):
        columns = targets(pairs)
        register(cursor, "_impact_targets", columns)
        try:
            rows = cursor.execute(
                f"""
                WITH s AS (
                    SELECT service_name, environment, start_time, duration_ms, h FROM (
                        SELECT *, hash(span_id) AS h FROM spans
                        WHERE kind = 'server' AND service_name IN (SELECT unnest($services))
                          AND start_time >= $lo AND start_time < $hi)
                    WHERE h % {2**level} = 0
                )
                SELECT t.w, t.service, CASE WHEN s.start_time < t.t1 THEN 0 ELSE 1 END AS side,
                       min_by(s.duration_ms, s.h, {LATENCY_SAMPLE})
                FROM s JOIN _impact_targets t
                  ON s.service_name = t.service AND s.environment = t.env
                 AND ((s.start_time >= t.t0 AND s.start_time < t.t1)
                      OR (s.start_time >= t.t2 AND s.start_time < t.t3))
                GROUP BY ALL
                """,  # noqa: S608 - built from constants
                {
                    "services": sorted(set(columns["service"][0])),
                    "lo": min(columns["t0"][0]),
                    "hi": max(columns["t3"][0]),
                },
            ).fetchall()
        finally:
            cursor.unregister("_impact_targets")
        by_index = {f.index: f for f, _ in pairs}
        for w, service, side, values in rows:
            by_index[w].durations[(service, side)] = np.asarray(values, dtype=float)


# -- recorded facts ------------------------------------------------------------------------


def _unique_ids(facts: list[WindowFacts]) -> set[str]:
    """Change ids that occur once (a ledger holding one id twice is never recorded for it)."""
    seen = Counter(f.change_id for f in facts)
    return {change_id for change_id, n in seen.items() if n == 1}


def recorded_keys(
    cursor: duckdb.DuckDBPyConnection, change_ids: list[str]
) -> dict[str, tuple[Any, ...]]:
    """change_id → the key (see :attr:`WindowFacts.key`) its facts were recorded for."""
    if not change_ids:
        return {}
    rows = cursor.execute(
        "SELECT change_id, flag_key, environment, before_start, before_end, after_start, "
        "after_end FROM impact_windows WHERE change_id IN (SELECT unnest($ids))",
        {"ids": change_ids},
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def read_recorded(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> list[WindowFacts]:
    """Fill in the facts recorded for exactly these windows; returns the others (not filled)."""
    found = recorded_keys(cursor, [f.change_id for f in facts])
    once = _unique_ids(facts)
    usable = {
        f.change_id: f for f in facts if f.change_id in once and found.get(f.change_id) == f.key
    }
    if usable:
        table = cursor.execute(
            "SELECT change_id, kind, service, side, cohort, total, hits, latency "
            "FROM impact_facts WHERE change_id IN (SELECT unnest($ids)) "
            "ORDER BY change_id, service",
            {"ids": sorted(usable)},
        ).to_arrow_table()
        columns = {name: table[name].to_pylist() for name in table.column_names}
        services: dict[str, list[str]] = defaultdict(list)
        for i, change_id in enumerate(columns["change_id"]):
            f = usable[change_id]
            kind, service, side = columns["kind"][i], columns["service"][i], columns["side"][i]
            total, hits = columns["total"][i], columns["hits"][i]
            if kind == "service":
                services[change_id].append(service)
            elif kind == "spans":
                f.spans[(service, side)] = (total, hits)
            elif kind == "exposure":
                f.exposure[(service, columns["cohort"][i], side)] = (total, hits)
            elif kind == "latency":
                f.shifts[service] = ShiftTest(**columns["latency"][i])
        for change_id, names in services.items():
            usable[change_id].services = tuple(sorted(names))
    return [f for f in facts if f.change_id not in usable]


_SHIFT_FIELDS = ShiftTest.__dataclass_fields__
_SHIFT_TYPE = pa.struct(
    [(name, pa.int64() if name.startswith("n_") else pa.float64()) for name in _SHIFT_FIELDS]
)


def record(facts: list[WindowFacts], now: datetime) -> WriteFn[None]:
    """The write function (see :mod:`store.write_fns`) that stores gathered ``facts``,
    replacing what was recorded before for the same changes.

    The rows are built (and the latency tests run) here, on the caller's thread; the write
    function only writes them.
    """
    rows: dict[str, list[Any]] = defaultdict(list)

    def add(f: WindowFacts, kind: str, service: str, side: int, cohort: str | None = None,
            total: int | None = None, hits: int | None = None,
            latency: ShiftTest | None = None) -> None:  # fmt: skip
        test = None if latency is None else {k: getattr(latency, k) for k in _SHIFT_FIELDS}
        for name, value in (("change_id", f.change_id), ("kind", kind), ("service", service),
                            ("side", side), ("cohort", cohort), ("total", total),
                            ("hits", hits), ("latency", test)):  # fmt: skip
            rows[name].append(value)

    for f in facts:
        for service in f.services:
            add(f, "service", service, 0)
        for (service, side), (total, bad) in f.spans.items():
            add(f, "spans", service, side, total=total, hits=bad)
        for (service, cohort, side), (exposed, engaged) in f.exposure.items():
            add(f, "exposure", service, side, cohort, exposed, engaged)
        for service in f.services:
            test = f.latency_test(service)
            if test is not None:
                add(f, "latency", service, 0, latency=test)
    ids = [f.change_id for f in facts]
    any_facts = bool(rows)
    windows = {
        "change_id": (ids, pa.string()),
        "flag_key": ([f.flag for f in facts], pa.string()),
        "environment": ([f.environment for f in facts], pa.string()),
        **_edges(facts, ("before_start", "before_end", "after_start", "after_end")),
    }
    fact_columns = {
        "change_id": (rows["change_id"], pa.string()),
        "kind": (rows["kind"], pa.string()),
        "service": (rows["service"], pa.string()),
        "side": (rows["side"], pa.uint8()),
        "cohort": (rows["cohort"], pa.string()),
        "total": (rows["total"], pa.int64()),
        "hits": (rows["hits"], pa.int64()),
        "latency": (rows["latency"], _SHIFT_TYPE),
    }

    def write(cursor: duckdb.DuckDBPyConnection) -> None:
        try:
            cursor.execute(
                "DELETE FROM impact_facts WHERE change_id IN (SELECT unnest($ids))", {"ids": ids}
            )
            cursor.execute(
                "DELETE FROM impact_windows WHERE change_id IN (SELECT unnest($ids))", {"ids": ids}
            )
            register(cursor, "_recorded_windows", windows)
            cursor.execute(
                "INSERT INTO impact_windows BY NAME "
                "SELECT *, $now AS recorded_at FROM _recorded_windows",
                {"now": now},
            )
            if any_facts:
                register(cursor, "_recorded_facts", fact_columns)
                cursor.execute("INSERT INTO impact_facts BY NAME SELECT * FROM _recorded_facts")
        finally:
            for name in ("_recorded_windows", "_recorded_facts"):
                try:
                    cursor.unregister(name)
                except duckdb.Error:
                    pass

    return write


def closed_facts(
    cursor: duckdb.DuckDBPyConnection, now: datetime, *, grace: timedelta = LATE_DATA_GRACE
) -> list[WindowFacts]:
    """Every change of the ledger whose windows are closed at ``now``.

    Closed: the after window ends at or before :func:`closed_until`.
    """
    changes = cursor.execute(
        "SELECT change_id, time, flag_key, environment FROM policy_changes ORDER BY time, change_id"
    ).fetchall()
    if not changes:
        return []
    bounds = data_bounds(cursor, {env for *_, env in changes})
    until = closed_until(cursor, now, grace=grace)
    closed = []
    for index, (change_id, at, flag, env) in enumerate(changes):
        windows = comparison_windows(at, bounds[env])
        if windows is not None and windows[1].end <= until:
            closed.append(WindowFacts(index, change_id, flag, env, *windows))
    return closed


def refresh(
    cursor: duckdb.DuckDBPyConnection,
    writer: StoreWriter,
    now: datetime,
    *,
    grace: timedelta = LATE_DATA_GRACE,
) -> int:
    """Record the facts of closed changes not recorded yet for their current windows.

    Gathers them on ``cursor`` (a reader's) and stores them through ``writer``. Returns how
    many changes were (re)recorded. The first run on a large store assesses every closed change
    (as long as one uncached change-impact query); later runs only the changes whose windows
    closed since.

    Raises:
        StoreError: the writer could not store them (nothing was stored).
    """
    closed = closed_facts(cursor, now, grace=grace)
    found = recorded_keys(cursor, [f.change_id for f in closed])
    once = _unique_ids(closed)
    missing = [f for f in closed if f.change_id in once and found.get(f.change_id) != f.key]
    if not missing:
        return 0
    gather(cursor, missing)
    writer.execute_write_fn(record(missing, now)).result()
    return len(missing)
