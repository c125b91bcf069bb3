"""The facts around each policy change that its impact is judged on, gathered from the data.

For a change (see :mod:`analytics.impact_windows` for its reach and windows) the *facts* are:
the services that evaluated its flag in its environment within its reach; each one's windows
once the other changes on it are left out; per service and side, the server spans and how
many failed, and a latency sample; per service, cohort and side, the exposed subjects and how
many of them engaged. :func:`frame` sets out each change with its candidates and bounds, and
:func:`complete` plans its windows and gathers its facts with a fixed number of queries for any
number of changes; the exact distinct-subject counts make it the costly part of change impact
(seconds on millions of decisions). The facts of closed changes are recorded instead of
gathered again each time: see :mod:`analytics.impact_records`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from analytics.impact_windows import (
    HALF_WIDTH,
    LedgerChange,
    Windows,
    comparison_windows,
    plan_windows,
    reach,
)
from analytics.quantiles import QuantileTest, quantile_tests
from analytics.stats import ShiftTest, location_shift
from analytics.views import register
from analytics.windows import TimeWindow

MIN_SAMPLE = 100  # spans per side for error rate and latency; exposed subjects for engagement
LATENCY_SAMPLE = 1_000
_MINUTE = timedelta(minutes=1)
_MICROSECOND = timedelta(microseconds=1)
_MINUTE_US = 60_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BAD_SPAN = "(status_code = 'error' OR coalesce(http_status_code, 0) >= 500)"
_TIME = pa.timestamp("us", tz="UTC")


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
    """One change: its reach, windows and neighbours, and what happened in its windows."""

    index: int
    change: LedgerChange
    reach: TimeWindow | None
    nominal: tuple[TimeWindow, TimeWindow] | None
    candidates: tuple[LedgerChange, ...] = ()
    services: tuple[str, ...] = ()
    # service → its windows once the other changes on it are left out
    windows: dict[str, Windows] = field(default_factory=dict)
    # (service, side) → (total, bad) server spans; side 0 = before, 1 = after, 2 = the burn
    # window (from the after window's start)
    spans: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    # (service, cohort, side) → (exposed, engaged) subjects
    exposure: dict[tuple[str, str, int], tuple[int, int]] = field(default_factory=dict)
    durations: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    # service → latency tests on the samples of both sides (computed once, or as recorded)
    shifts: dict[str, ShiftTest] = field(default_factory=dict)
    quantiles: dict[str, tuple[QuantileTest, ...]] = field(default_factory=dict)
    recorded: bool = False  # filled in from the recorded facts

    @property
    def change_id(self) -> str:
        return self.change.change_id

    @property
    def flag(self) -> str:
        return self.change.flag

    @property
    def environment(self) -> str:
        return self.change.environment

    @property
    def compared(self) -> list[tuple[str, Windows]]:
        """The affected services that have windows, with them."""
        return [(s, w) for s, w in self.windows.items() if w.before is not None]

    @property
    def adjusted_for(self) -> tuple[str, ...]:
        return tuple(sorted({c for w in self.windows.values() for c in w.adjusted_for}))

    @property
    def confounded_with(self) -> tuple[str, ...]:
        return tuple(sorted({c for w in self.windows.values() for c in w.confounded_with}))

    def _samples(self, service: str) -> tuple[np.ndarray, np.ndarray] | None:
        before, after = (self.durations.get((service, s)) for s in (0, 1))
        if before is None or after is None or not len(before) or not len(after):
            return None
        return before, after

    def latency_test(self, service: str) -> ShiftTest | None:
        """The Mann–Whitney comparison of ``service``: None without samples on both sides."""
        if service not in self.shifts:
            samples = self._samples(service)
            if samples is None:
                return None
            self.shifts[service] = location_shift(*samples)
        return self.shifts[service]

    def quantile_tests(self, service: str) -> tuple[QuantileTest, ...]:
        """p50, p95 and p99 of ``service`` before and after (empty without samples)."""
        if service not in self.quantiles:
            samples = self._samples(service)
            if samples is None:
                return ()
            self.quantiles[service] = quantile_tests(*samples)
        return self.quantiles[service]

    @property
    def key(self) -> tuple[Any, ...]:
        """What recorded facts must match to stand for these."""
        assert self.reach is not None
        return (self.flag, self.environment, self.reach.start, self.reach.end,
                tuple(sorted(c.change_id for c in self.candidates)))  # fmt: skip


def epoch_minute(at: datetime) -> int:
    """Whole minutes since the epoch (the key windows are joined on)."""
    return (at - _EPOCH) // _MINUTE


def _edges(windows: list[Windows]) -> dict[str, tuple[list[Any], Any]]:
    """The before start, before end, after start, after end and burn window end of each of
    ``windows`` (which all have them), as view columns e0, e1, e2, e3, e4: minutes since the
    epoch (every window is whole minutes)."""
    edges = (
        [w.before.start for w in windows if w.before],
        [w.before.end for w in windows if w.before],
        [w.after.start for w in windows if w.after],
        [w.after.end for w in windows if w.after],
        [w.burn_until or w.after.end for w in windows if w.after],
    )
    return {
        name: ([epoch_minute(t) for t in values], pa.int64())
        for name, values in zip(("e0", "e1", "e2", "e3", "e4"), edges, strict=True)
    }


# The minutes of each target's windows, one row each (side 0 before, 1 after), from a view with
# the columns of `_edges`: events are joined to windows on equal minutes, a hash join whatever
# the number of windows (a join on time ranges compares every event with every window of its
# service or flag).
_WINDOW_MINUTES = """
    SELECT *, unnest(range(e0, e1)) AS m, 0 AS side FROM {view}
    UNION ALL
    SELECT *, unnest(range(e2, e3)) AS m, 1 AS side FROM {view}
"""
# the same, and the minutes of the burn window as side 2
_BURN_MINUTES = _WINDOW_MINUTES + (  # noqa: S608 - a template of constants
    "UNION ALL SELECT *, unnest(range(e2, e4)) AS m, 2 AS side FROM {view}"
)


def _span(windows: list[Windows], *, burn: bool = False) -> dict[str, datetime]:
    """``lo`` and ``hi``: the time range all of ``windows`` (and their burn windows) lie in,
    to prune the scan."""
    ends = [w.after.end for w in windows if w.after]
    if burn:
        ends += [w.burn_until for w in windows if w.burn_until]
    return {"lo": min(w.before.start for w in windows if w.before), "hi": max(ends)}


def ledger(
    cursor: duckdb.DuckDBPyConnection,
    environments: set[str] | None = None,
    window: TimeWindow | None = None,
) -> list[LedgerChange]:
    """The changes of the ledger (in these environments and ``window``), oldest first."""
    where: list[str] = ["true"]
    params: dict[str, Any] = {}
    if environments is not None:
        where.append("environment IN (SELECT unnest($envs))")
        params["envs"] = sorted(environments)
    if window is not None:
        where.append("time >= $start AND time < $end")
        params |= {"start": window.start, "end": window.end}
    rows = cursor.execute(
        "SELECT change_id, time, flag_key, environment FROM policy_changes "  # noqa: S608
        f"WHERE {' AND '.join(where)} ORDER BY time, change_id",
        params,
    ).fetchall()
    return [LedgerChange(*row) for row in rows]


def frame(
    cursor: duckdb.DuckDBPyConnection,
    changes: list[LedgerChange],
    half_width: timedelta = HALF_WIDTH,
) -> tuple[list[WindowFacts], dict[str, tuple[datetime | None, datetime | None]]]:
    """Each of ``changes`` (``index`` = its position) with its reach, nominal windows and
    candidates (the changes of the ledger inside its reach), nothing gathered; and the data
    bounds of their environments."""
    if not changes:
        return [], {}
    environments = {c.environment for c in changes}
    bounds = data_bounds(cursor, environments)
    margin = 2 * half_width + 2 * _MINUTE
    nearby = ledger(
        cursor,
        environments,
        TimeWindow(min(c.time for c in changes) - margin, max(c.time for c in changes) + margin),
    )
    by_environment: dict[str, list[LedgerChange]] = defaultdict(list)
    for other in nearby:
        by_environment[other.environment].append(other)
    facts = []
    for index, change in enumerate(changes):
        env_bounds = bounds[change.environment]
        around = reach(change.time, env_bounds, half_width)
        nominal = comparison_windows(change.time, env_bounds, half_width)
        candidates: tuple[LedgerChange, ...] = ()
        if around is not None:
            candidates = tuple(
                other
                for other in by_environment[change.environment]
                if around.start <= other.time < around.end and other != change
            )
        facts.append(WindowFacts(index, change, around, nominal, candidates))
    return facts, bounds


def complete(
    cursor: duckdb.DuckDBPyConnection,
    facts: list[WindowFacts],
    bounds: dict[str, tuple[datetime | None, datetime | None]],
    half_width: timedelta = HALF_WIDTH,
) -> None:
    """Plan the windows of ``facts`` (framed, with nominal windows) and gather their facts."""
    if facts:
        _plan(cursor, facts, bounds, half_width)
        gather(cursor, [f for f in facts if f.compared])


def _plan(
    cursor: duckdb.DuckDBPyConnection,
    facts: list[WindowFacts],
    bounds: dict[str, tuple[datetime | None, datetime | None]],
    half_width: timedelta,
) -> None:
    """Affected services of ``facts`` and of their candidates; then each one's windows."""
    reaches: dict[LedgerChange, TimeWindow] = {}
    for f in facts:
        assert f.reach is not None
        reaches[f.change] = f.reach
        for other in f.candidates:
            if other not in reaches:
                around = reach(other.time, bounds[other.environment], half_width)
                if around is not None:
                    reaches[other] = around
    services = _find_services(cursor, reaches)
    for f in facts:
        assert f.reach is not None and f.nominal is not None
        f.services = services.get(f.change, ())
        for service in f.services:
            neighbours = [c for c in f.candidates if service in services.get(c, ())]
            f.windows[service] = plan_windows(f.change, f.nominal, f.reach, neighbours)


def _find_services(
    cursor: duckdb.DuckDBPyConnection, reaches: dict[LedgerChange, TimeWindow]
) -> dict[LedgerChange, tuple[str, ...]]:
    """The services that evaluated each change's flag in its environment within its reach."""
    order = list(reaches)
    if not order:
        return {}
    register(
        cursor,
        "_impact_reaches",
        {
            "w": (list(range(len(order))), pa.int64()),
            "flag": ([c.flag for c in order], pa.string()),
            "env": ([c.environment for c in order], pa.string()),
            "t0": ([reaches[c].start for c in order], _TIME),
            "t3": ([reaches[c].end for c in order], _TIME),
            # the minutes the reach touches (its edges need not be whole minutes)
            "m0": ([epoch_minute(reaches[c].start) for c in order], pa.int64()),
            "m1": ([epoch_minute(reaches[c].end - _MICROSECOND) + 1 for c in order], pa.int64()),
        },
    )
    try:
        rows = cursor.execute(
            f"""
            WITH r AS (SELECT *, unnest(range(m0, m1)) AS m FROM _impact_reaches)
            SELECT DISTINCT r.w, d.service_name
            FROM (SELECT flag_key, environment, service_name, time,
                         epoch_us(time) // {_MINUTE_US} AS m
                  FROM decisions WHERE time >= $lo AND time < $hi) d
            JOIN r ON d.flag_key = r.flag AND d.environment = r.env AND d.m = r.m
             AND d.time >= r.t0 AND d.time < r.t3
            """,  # noqa: S608 - built from constants
            {
                "lo": min(r.start for r in reaches.values()),
                "hi": max(r.end for r in reaches.values()),
            },
        ).fetchall()
    finally:
        cursor.unregister("_impact_reaches")
    found: dict[LedgerChange, list[str]] = defaultdict(list)
    for w, service in rows:
        found[order[w]].append(service)
    return {change: tuple(sorted(names)) for change, names in found.items()}


def gather(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> None:
    """Fill in the counts and samples of ``facts`` (planned: services with their windows)."""
    if not facts:
        return
    _find_exposures(cursor, facts)
    _count_spans(cursor, facts)
    _sample_durations(cursor, facts)


def _find_exposures(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> None:
    """Exposed / engaged subjects per service, cohort and side.

    One query for every change: decisions of each change's flag and environment on each
    affected service in that service's windows, deduplicated per subject (subjects as 64-bit
    hashes of their ids: integer keys make the dedup and the join with engagement cheaper; two
    of a million subjects share a hash with odds of about 1 in 40 million), then the subjects
    with an engagement event on the same service in the same window. About one row per
    decision goes through the dedup.
    """
    pairs = [(f, s) for f in facts for s, _ in f.compared]
    windows = [f.windows[s] for f, s in pairs]
    register(
        cursor,
        "_impact_windows",
        {
            "w": ([f.index for f, _ in pairs], pa.int64()),
            "flag": ([f.flag for f, _ in pairs], pa.string()),
            "service": ([s for _, s in pairs], pa.string()),
            "env": ([f.environment for f, _ in pairs], pa.string()),
            **_edges(windows),
        },
    )
    try:
        rows = cursor.execute(
            f"""
            WITH wm AS MATERIALIZED ({_WINDOW_MINUTES.format(view="_impact_windows")}),
            hits AS MATERIALIZED (
                SELECT wm.w, wm.service, d.cohort_id AS cohort, wm.side, d.h
                FROM (SELECT service_name, environment, flag_key, cohort_id,
                             epoch_us(time) // {_MINUTE_US} AS m,
                             CASE WHEN subject_id IS NOT NULL THEN hash(subject_id) END AS h
                      FROM decisions WHERE time >= $lo AND time < $hi) d
                JOIN wm ON d.flag_key = wm.flag AND d.environment = wm.env
                 AND d.service_name = wm.service AND d.m = wm.m
                GROUP BY ALL
            ), engaged AS (
                SELECT DISTINCT wm.w, wm.service, wm.side, e.h
                FROM (SELECT service_name, environment, hash(subject_id) AS h,
                             epoch_us(time) // {_MINUTE_US} AS m
                      FROM engagement WHERE time >= $lo AND time < $hi) e
                JOIN wm ON e.environment = wm.env AND e.service_name = wm.service
                 AND e.m = wm.m
            )
            SELECT hits.w, hits.service, hits.cohort, hits.side,
                   count(hits.h) FILTER (WHERE hits.cohort IS NOT NULL),
                   count(engaged.h) FILTER (WHERE hits.cohort IS NOT NULL)
            FROM hits LEFT JOIN engaged
              ON hits.w = engaged.w AND hits.service = engaged.service
             AND hits.side = engaged.side AND hits.h = engaged.h
            GROUP BY ALL
            """,  # noqa: S608 - built from constants
            _span(windows),
        ).fetchall()
    finally:
        cursor.unregister("_impact_windows")
    by_index = {f.index: f for f in facts}
    for w, service, cohort, side, exposed, engaged in rows:
        if cohort is not None and exposed:
            by_index[w].exposure[(service, cohort, side)] = (int(exposed), int(engaged))


def targets(pairs: list[tuple[WindowFacts, str]]) -> dict[str, tuple[list[Any], Any]]:
    """One row per (change, affected service with windows): the columns of
    ``_impact_targets``."""
    return {
        "w": ([f.index for f, _ in pairs], pa.int64()),
        "service": ([s for _, s in pairs], pa.string()),
        "env": ([f.environment for f, _ in pairs], pa.string()),
        **_edges([f.windows[s] for f, s in pairs]),
    }


def _count_spans(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> None:
    """Server spans and errors per change, affected service and side (2: the burn window).

    Spans are counted per minute once (windows are whole minutes, so sums of minutes are
    exact), then summed per window.
    """
    pairs = [(f, s) for f in facts for s, _ in f.compared]
    columns = targets(pairs)
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
            SELECT wm.w, wm.service, wm.side, sum(n), sum(bad)
            FROM ({_BURN_MINUTES.format(view="_impact_targets")}) wm
            JOIN minutes ON minutes.service_name = wm.service AND minutes.environment = wm.env
             AND minutes.m = wm.m
            GROUP BY ALL
            """,  # noqa: S608 - built from constants
            {"services": sorted(set(columns["service"][0]))}
            | _span([f.windows[s] for f, s in pairs], burn=True),
        ).fetchall()
    finally:
        cursor.unregister("_impact_targets")
    by_index = {f.index: f for f in facts}
    for w, service, side, n, bad in rows:
        by_index[w].spans[(service, side)] = (int(n), int(bad))
    for f, service in pairs:  # a side without spans counts none
        for side in (0, 1, 2):
            f.spans.setdefault((service, side), (0, 0))


def _sample_durations(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> None:
    """At most :data:`LATENCY_SAMPLE` span durations per change, service and side.

    The sample is the spans with the smallest hash of their span id (random, but the same on
    every run). Large windows are thinned first (``hash % 2^k = 0``, keeping about 2–4 times
    the sample) so that the join handles thousands of spans per window, not millions.
    """
    levels: dict[int, list[tuple[WindowFacts, str]]] = defaultdict(list)
    for f in facts:
        for service, _ in f.compared:
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
                    SELECT service_name, environment, duration_ms, h,
                           epoch_us(start_time) // {_MINUTE_US} AS m FROM (
                        SELECT *, hash(span_id) AS h FROM spans
                        WHERE kind = 'server' AND service_name IN (SELECT unnest($services))
                          AND start_time >= $lo AND start_time < $hi)
                    WHERE h % {2**level} = 0
                )
                SELECT wm.w, wm.service, wm.side, min_by(s.duration_ms, s.h, {LATENCY_SAMPLE})
                FROM s JOIN ({_WINDOW_MINUTES.format(view="_impact_targets")}) wm
                  ON s.service_name = wm.service AND s.environment = wm.env AND s.m = wm.m
                GROUP BY ALL
                """,  # noqa: S608 - built from constants
                {"services": sorted(set(columns["service"][0]))}
                | _span([f.windows[s] for f, s in pairs]),
            ).fetchall()
        finally:
            cursor.unregister("_impact_targets")
        by_index = {f.index: f for f, _ in pairs}
        for w, service, side, values in rows:
            by_index[w].durations[(service, side)] = np.asarray(values, dtype=float)
