"""Policy-change impact: for every change, what happened to the services evaluating its flag.

For a change at time ``t`` the comparison uses two equal windows of whole minutes,
``[floor(t) - w, floor(t))`` and ``[ceil(t), ceil(t) + w)`` (floor/ceil to the minute: the
minute in which the change was made belongs to neither side, as a short settle gap), with ``w``
the configured half-width (24 h) shrunk so that both sides lie inside the data. For each
affected service (one that evaluated the flag in the environment during either window):

- error rate of its server spans: two-proportion z test;
- latency: Mann–Whitney U on span durations (a deterministic sample of at most 1,000 spans per
  side, chosen by a hash of the span id), with the Hodges–Lehmann shift and its 95 % interval;
- engagement of each cohort exposed to the flag on that service: two-proportion z test;
- for each SLO of the service: the share of its error budget burned since the change.

All p-values of one change are adjusted together (Holm by default, Benjamini–Hochberg on
request). An effect counts when its adjusted p < 0.05 *and* it is at least the smallest effect
worth reporting (latency shift of 10 % of the median, error rate ±0.5 percentage points,
engagement ±3 points). The verdict is *regression* when a counted effect points the wrong way
(more errors, slower, less engagement), *improvement* when only the right way, *no detectable
effect*, or *not enough data* (no affected service with enough events on both sides).

Every change of a window is assessed together, with a fixed number of queries whatever the
number of changes: one over decisions and engagement (affected services, exposures), one over
spans per minute (error counts, budget burn), one or two for the latency samples.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from analytics.budgets import BudgetStatus, bad_events_since, budget_statuses
from analytics.errors import AnalyticsError
from analytics.governance import ChangeReview, Rules, review_changes
from analytics.queries.windows import TimeWindow
from analytics.slo import SLO
from analytics.stats import CORRECTIONS, ProportionTest, ShiftTest, location_shift, two_proportion
from contracts.signing import KeyRing

HALF_WIDTH = timedelta(hours=24)
MIN_HALF_WIDTH = timedelta(hours=1)
MIN_SAMPLE = 100  # spans per side for error rate and latency; exposed subjects for engagement
LATENCY_SAMPLE = 1_000
ALPHA = 0.05
# The smallest effects worth reporting: a statistically significant change smaller than these
# is reported as no detectable effect (with large samples, trivial shifts become significant).
MIN_LATENCY_SHIFT = 0.10  # Hodges–Lehmann shift / median before
MIN_ERROR_RATE_CHANGE = 0.005  # absolute: half a percentage point
MIN_ENGAGEMENT_CHANGE = 0.03  # absolute: three percentage points
VERDICTS = ("regression", "improvement", "no detectable effect", "not enough data")
_MINUTE = timedelta(minutes=1)
_MINUTE_US = 60_000_000
_BAD_SPAN = "(status_code = 'error' OR coalesce(http_status_code, 0) >= 500)"


@dataclass(slots=True)
class Effect:
    """One compared metric of one service."""

    service: str
    metric: str  # 'error_rate' | 'latency' | 'engagement:<cohort>'
    test: ProportionTest | ShiftTest
    p_adjusted: float = 1.0

    @property
    def worse(self) -> bool:
        if isinstance(self.test, ShiftTest):
            return self.test.shift > 0
        if self.metric == "error_rate":
            return self.test.difference > 0
        return self.test.difference < 0  # engagement going down

    @property
    def meaningful(self) -> bool:
        """At least the smallest effect worth reporting for this metric."""
        test = self.test
        if isinstance(test, ShiftTest):
            return abs(test.shift) >= MIN_LATENCY_SHIFT * max(test.median_before, 1e-9)
        if self.metric == "error_rate":
            return abs(test.difference) >= MIN_ERROR_RATE_CHANGE
        return abs(test.difference) >= MIN_ENGAGEMENT_CHANGE

    @property
    def significant(self) -> bool:
        """Adjusted p below 0.05 and at least the minimum effect size."""
        return self.p_adjusted < ALPHA and self.meaningful

    @property
    def size(self) -> float:
        """Relative size of the change, for ranking (0 when not significant)."""
        if not self.significant:
            return 0.0
        test = self.test
        if isinstance(test, ShiftTest):
            return abs(test.shift) / max(test.median_before, 1e-9)
        base = test.rate_before if test.rate_before > 0 else 1.0 / test.n_before
        return abs(test.difference) / base

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "metric": self.metric,
            "p_adjusted": self.p_adjusted,
            "meaningful": self.meaningful,
            "significant": self.significant,
            "direction": "worse" if self.worse else "better",
            **self.test.as_dict(),
        }


@dataclass(slots=True)
class BudgetBurn:
    slo: str
    service: str
    bad_since_change: int
    share_of_budget: float | None  # bad events since the change / the SLO window's budget

    def as_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo,
            "service": self.service,
            "bad_since_change": self.bad_since_change,
            "share_of_budget": self.share_of_budget,
        }


@dataclass(slots=True)
class ChangeImpact:
    change: ChangeReview
    services: tuple[str, ...]
    before: TimeWindow | None
    after: TimeWindow | None
    effects: list[Effect] = field(default_factory=list)
    budgets: list[BudgetBurn] = field(default_factory=list)
    verdict: str = "not enough data"
    score: float = 0.0
    rank: int = 0
    correction: str = "holm"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "verdict": self.verdict,
            "score": self.score,
            "correction": self.correction,
            "change": self.change.as_dict(),
            "services": list(self.services),
            "before": _window(self.before),
            "after": _window(self.after),
            "effects": [e.as_dict() for e in self.effects],
            "budgets": [b.as_dict() for b in self.budgets],
        }


def _window(window: TimeWindow | None) -> list[str] | None:
    return None if window is None else [window.start.isoformat(), window.end.isoformat()]


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


def _data_bounds(
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
class _Plan:
    """One change being assessed, and what the queries found for it."""

    index: int
    impact: ChangeImpact
    # (service, side) → (total, bad) spans; side 0 = before, 1 = after
    spans: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    # (service, cohort, side) → (exposed, engaged) subjects
    exposure: dict[tuple[str, str, int], tuple[int, int]] = field(default_factory=dict)
    durations: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


def _register(
    cursor: duckdb.DuckDBPyConnection, name: str, columns: dict[str, tuple[list[Any], Any]]
) -> None:
    table = pa.table(
        {key: values for key, (values, _) in columns.items()},
        schema=pa.schema([(key, kind) for key, (_, kind) in columns.items()]),
    )
    cursor.register(name, table)


_TIME = pa.timestamp("us", tz="UTC")


def _find_exposures(cursor: duckdb.DuckDBPyConnection, plans: list[_Plan]) -> None:
    """Affected services, and exposed / engaged subjects per service, cohort and side.

    One query for every change: decisions of each change's flag and environment in its
    windows, deduplicated per subject (subjects as 64-bit hashes of their ids: integer keys
    make the dedup and the join with engagement cheaper; two of a million subjects share a
    hash with odds of about 1 in 40 million), then the subjects with an engagement event on
    the same service in the same window. This exact distinct count is the costly part of
    assessing changes (seconds on millions of decisions): about one row per decision.
    """
    windows = [p for p in plans if p.impact.before is not None]
    if not windows:
        return
    _register(
        cursor,
        "_impact_windows",
        {
            "w": ([p.index for p in windows], pa.int64()),
            "flag": ([p.impact.change.flag_key for p in windows], pa.string()),
            "env": ([p.impact.change.environment for p in windows], pa.string()),
            "t0": ([p.impact.before.start for p in windows if p.impact.before], _TIME),
            "t1": ([p.impact.before.end for p in windows if p.impact.before], _TIME),
            "t2": ([p.impact.after.start for p in windows if p.impact.after], _TIME),
            "t3": ([p.impact.after.end for p in windows if p.impact.after], _TIME),
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
    by_index = {p.index: p for p in plans}
    for w, service, cohort, side, exposed, engaged in rows:
        services[w].add(service)
        if cohort is not None and side is not None and exposed:
            by_index[w].exposure[(service, cohort, side)] = (int(exposed), int(engaged))
    for w, found in services.items():
        by_index[w].impact.services = tuple(sorted(found))


def _targets(pairs: list[tuple[_Plan, str]]) -> dict[str, tuple[list[Any], Any]]:
    """One row per (change, affected service): the columns of ``_impact_targets``."""
    before = [p.impact.before for p, _ in pairs]
    after = [p.impact.after for p, _ in pairs]
    return {
        "w": ([p.index for p, _ in pairs], pa.int64()),
        "service": ([s for _, s in pairs], pa.string()),
        "env": ([p.impact.change.environment for p, _ in pairs], pa.string()),
        "t0": ([b.start for b in before if b], _TIME),
        "t1": ([b.end for b in before if b], _TIME),
        "t2": ([a.start for a in after if a], _TIME),
        "t3": ([a.end for a in after if a], _TIME),
    }


def _count_spans(
    cursor: duckdb.DuckDBPyConnection,
    plans: list[_Plan],
    span_slos: list[tuple[int, SLO]],
    until: datetime,
) -> dict[tuple[int, int], int]:
    """Server spans and errors per change, service and side; bad events since each change.

    Spans are counted per minute once (windows are whole minutes, so sums of minutes are
    exact), then summed per window. Returns, for each (change index, SLO index) of a
    span-based SLO of an affected service, its bad events in ``[after.start, until)``.
    """
    targets = _targets([(p, s) for p in plans for s in p.impact.services])
    if not targets["w"][0]:
        return {}
    thresholds = sorted({float(s.threshold_ms or 0) for _, s in span_slos if s.sli == "latency"})
    slow = "".join(
        f", count(*) FILTER (WHERE duration_ms > {t!r} AND start_time < $until) AS slow{i}"
        for i, t in enumerate(thresholds)
    )
    # which per-minute column holds each SLO's bad events
    column = {
        i: "bad_until"
        if s.sli == "availability"
        else f"slow{thresholds.index(float(s.threshold_ms or 0))}"
        for i, s in span_slos
    }
    budget_rows = [
        (p.index, i, s.service, s.environment, p.impact.after.start)
        for p in plans
        for i, s in span_slos
        if p.impact.after is not None
        and s.service in p.impact.services
        and s.environment in (None, p.impact.change.environment)
    ]
    services = sorted(set(targets["service"][0]))  # budget rows are for affected services only
    lo = min(targets["t0"][0])
    hi = max(max(targets["t3"][0]), until)
    _register(cursor, "_impact_targets", targets)
    _register(
        cursor,
        "_impact_budgets",
        {
            "w": ([r[0] for r in budget_rows], pa.int64()),
            "slo": ([r[1] for r in budget_rows], pa.int64()),
            "service": ([r[2] for r in budget_rows], pa.string()),
            "env": ([r[3] for r in budget_rows], pa.string()),
            "t2": ([r[4] for r in budget_rows], _TIME),
        },
    )
    choose = " ".join(f"WHEN {i} THEN {c}" for i, c in column.items()) or "WHEN -1 THEN 0"
    try:
        rows = cursor.execute(
            f"""
            WITH minutes AS MATERIALIZED (
                SELECT service_name, environment, epoch_us(start_time) // {_MINUTE_US} AS m,
                       count(*) AS n, count(*) FILTER (WHERE {_BAD_SPAN}) AS bad,
                       count(*) FILTER (WHERE {_BAD_SPAN} AND start_time < $until) AS bad_until
                       {slow}
                FROM spans
                WHERE kind = 'server' AND service_name IN (SELECT unnest($services))
                  AND start_time >= $lo AND start_time < $hi
                GROUP BY ALL
            ), windows AS (
                SELECT t.w, t.service, 0 AS kind, coalesce(sum(n) FILTER (WHERE m < e1), 0),
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
            ), burns AS (
                SELECT b.w, NULL AS service, 1 AS kind, b.slo,
                       coalesce(sum(CASE b.slo {choose} END), 0), 0, 0
                FROM _impact_budgets b JOIN minutes ON minutes.service_name = b.service
                 AND (b.env IS NULL OR minutes.environment = b.env)
                 AND minutes.m >= epoch_us(b.t2) // {_MINUTE_US}
                GROUP BY ALL
            )
            SELECT * FROM windows UNION ALL SELECT * FROM burns
            """,  # noqa: S608 - built from constants and validated numbers
            {"services": services, "lo": lo, "hi": hi, "until": until},
        ).fetchall()
    finally:
        cursor.unregister("_impact_targets")
        cursor.unregister("_impact_budgets")
    by_index = {p.index: p for p in plans}
    burned: dict[tuple[int, int], int] = {}
    for w, service, kind, a, b, c, d in rows:
        if kind == 0:
            by_index[w].spans[(service, 0)] = (int(a), int(b))
            by_index[w].spans[(service, 1)] = (int(c), int(d))
        else:
            burned[(w, int(a))] = int(b)
    return burned


def _sample_durations(cursor: duckdb.DuckDBPyConnection, plans: list[_Plan]) -> None:
    """At most :data:`LATENCY_SAMPLE` span durations per change, service and side.

    The sample is the spans with the smallest hash of their span id (random, but the same on
    every run). Large windows are thinned first (``hash % 2^k = 0``, keeping about 2–4 times
    the sample) so that the join handles thousands of spans per window, not millions.
    """
    levels: dict[int, list[tuple[_Plan, str]]] = defaultdict(list)
    for p in plans:
        for service in p.impact.services:
            n = min(p.spans.get((service, side), (0, 0))[0] for side in (0, 1))
            if n >= MIN_SAMPLE:
                level = max(0, int(math.log2(n / (2 * LATENCY_SAMPLE)))) if n else 0
                levels[level].append((p, service))
    for level, pairs in sorted(levels.items()):
        targets = _targets(pairs)
        _register(cursor, "_impact_targets", targets)
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
                    "services": sorted(set(targets["service"][0])),
                    "lo": min(targets["t0"][0]),
                    "hi": max(targets["t3"][0]),
                },
            ).fetchall()
        finally:
            cursor.unregister("_impact_targets")
        by_index = {p.index: p for p, _ in pairs}
        for w, service, side, values in rows:
            by_index[w].durations[(service, side)] = np.asarray(values, dtype=float)


def _assess(
    cursor: duckdb.DuckDBPyConnection,
    changes: list[ChangeReview],
    slos: list[SLO],
    *,
    until: datetime | None,
    half_width: timedelta,
    correction: str,
) -> list[ChangeImpact]:
    if correction not in CORRECTIONS:
        raise AnalyticsError(
            f"unknown correction {correction!r}; choose from {sorted(CORRECTIONS)}"
        )
    bounds = _data_bounds(cursor, {c.environment for c in changes})
    plans = []
    for i, change in enumerate(changes):
        windows = comparison_windows(change.time, bounds[change.environment], half_width)
        before, after = windows or (None, None)
        plans.append(_Plan(i, ChangeImpact(change, (), before, after, correction=correction)))
    _find_exposures(cursor, plans)
    assessed = [p for p in plans if p.impact.services]
    if not assessed:
        return [p.impact for p in plans]
    end = until or max(p.impact.after.end for p in assessed if p.impact.after)
    affected = {s for p in assessed for s in p.impact.services}
    relevant = [(i, s) for i, s in enumerate(slos) if s.service in affected]
    span_slos = [(i, s) for i, s in relevant if s.source == "spans"]
    burned = _count_spans(cursor, assessed, span_slos, end)
    _sample_durations(cursor, assessed)
    found = budget_statuses(cursor, [s for _, s in relevant], end)
    statuses: dict[int, BudgetStatus] = {i: f for (i, _), f in zip(relevant, found, strict=True)}
    for p in assessed:
        _conclude(cursor, p, relevant, statuses, burned, end)
    return [p.impact for p in plans]


def _conclude(
    cursor: duckdb.DuckDBPyConnection,
    plan: _Plan,
    slos: list[tuple[int, SLO]],
    statuses: dict[int, BudgetStatus],
    burned: dict[tuple[int, int], int],
    until: datetime,
) -> None:
    """Run the tests of one change, adjust them together and give the verdict."""
    impact = plan.impact
    env = impact.change.environment
    for service in impact.services:
        (n1, bad1), (n2, bad2) = (plan.spans.get((service, s), (0, 0)) for s in (0, 1))
        if min(n1, n2) >= MIN_SAMPLE:
            impact.effects.append(Effect(service, "error_rate", two_proportion(bad1, n1, bad2, n2)))
            before, after = (plan.durations.get((service, s)) for s in (0, 1))
            if before is not None and after is not None and len(before) and len(after):
                impact.effects.append(Effect(service, "latency", location_shift(before, after)))
        cohorts = sorted({c for (s, c, _) in plan.exposure if s == service})
        for cohort in cohorts:
            n1, e1 = plan.exposure.get((service, cohort, 0), (0, 0))
            n2, e2 = plan.exposure.get((service, cohort, 1), (0, 0))
            if min(n1, n2) >= MIN_SAMPLE:
                impact.effects.append(
                    Effect(service, f"engagement:{cohort}", two_proportion(e1, n1, e2, n2))
                )
        for i, slo in slos:
            if slo.service != service or slo.environment not in (None, env):
                continue
            if impact.after is None:
                continue
            if slo.source == "spans":
                bad = burned.get((plan.index, i), 0)
            else:
                _, bad = bad_events_since(cursor, slo, impact.after.start, until)
            budget = statuses[i].budget_events
            impact.budgets.append(
                BudgetBurn(slo.name, service, bad, bad / budget if budget else None)
            )
    if not impact.effects:
        return
    adjusted = CORRECTIONS[impact.correction]([e.test.p_value for e in impact.effects])
    for effect, p in zip(impact.effects, adjusted, strict=True):
        effect.p_adjusted = p
    significant = [e for e in impact.effects if e.significant]
    if any(e.worse for e in significant):
        impact.verdict = "regression"
        impact.score = sum(e.size for e in significant if e.worse)
    elif significant:
        impact.verdict = "improvement"
        impact.score = sum(e.size for e in significant)
    else:
        impact.verdict = "no detectable effect"


def change_impact(
    cursor: duckdb.DuckDBPyConnection,
    change: ChangeReview,
    slos: list[SLO],
    *,
    half_width: timedelta = HALF_WIDTH,
    until: datetime | None = None,
    correction: str = "holm",
) -> ChangeImpact:
    """Compare the windows around one change (see the module docstring).

    ``until`` ends the "budget burned since the change" count (default: the end of the after
    window); ``correction`` is ``"holm"`` or ``"bh"`` (Benjamini–Hochberg).
    """
    return _assess(
        cursor, [change], slos, until=until, half_width=half_width, correction=correction
    )[0]


def rank(impacts: list[ChangeImpact]) -> list[ChangeImpact]:
    """Regressions first, then improvements, no effect, not enough data; bigger effects first."""
    ordered = sorted(impacts, key=lambda i: (VERDICTS.index(i.verdict), -i.score, i.change.time))
    for position, impact in enumerate(ordered, 1):
        impact.rank = position
    return ordered


def change_impacts(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    slos: list[SLO],
    rules: Rules,
    keys: KeyRing,
    *,
    environment: str | None = None,
    half_width: timedelta = HALF_WIDTH,
    correction: str = "holm",
) -> list[ChangeImpact]:
    """Every change made in ``window``, assessed and ranked (see :func:`rank`).

    Budget burn is counted up to the window's end.
    """
    reviews = review_changes(cursor, window, rules, keys, environment=environment)
    return rank(
        _assess(
            cursor, reviews, slos, until=window.end, half_width=half_width, correction=correction
        )
    )
