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
number of changes. The facts of each change's windows (affected services, exposures, span
counts, latency samples: :mod:`analytics.impact_facts`) are read where ``flaglens serve`` has
recorded them and gathered live for the others; gathering is the slow part (seconds on
millions of decisions, for the exact distinct-subject counts), so a page pays it only for
changes whose windows are still open or not recorded yet. The budget burn since each change
reads only bad spans, and the SLO budgets only span totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from analytics.budgets import bad_events_since, budget_events
from analytics.errors import AnalyticsError
from analytics.governance import ChangeReview, Rules, review_changes
from analytics.impact_facts import (
    BAD_SPAN,
    HALF_WIDTH,
    MIN_SAMPLE,
    WindowFacts,
    comparison_windows,
    data_bounds,
    gather,
    read_recorded,
)
from analytics.slo import SLO
from analytics.stats import CORRECTIONS, ProportionTest, ShiftTest, two_proportion
from analytics.views import register
from analytics.windows import TimeWindow
from contracts.signing import KeyRing

ALPHA = 0.05
# The smallest effects worth reporting: a statistically significant change smaller than these
# is reported as no detectable effect (with large samples, trivial shifts become significant).
MIN_LATENCY_SHIFT = 0.10  # Hodges–Lehmann shift / median before
MIN_ERROR_RATE_CHANGE = 0.005  # absolute: half a percentage point
MIN_ENGAGEMENT_CHANGE = 0.03  # absolute: three percentage points
VERDICTS = ("regression", "improvement", "no detectable effect", "not enough data")


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


@dataclass(slots=True)
class _Plan:
    """One change being assessed: its impact, and the facts of its windows (when it has any)."""

    impact: ChangeImpact
    facts: WindowFacts | None


def _burned_since(
    cursor: duckdb.DuckDBPyConnection,
    facts: list[WindowFacts],
    span_slos: list[tuple[int, SLO]],
    until: datetime,
) -> dict[tuple[int, int], int]:
    """Bad events of each span-based SLO of an affected service in ``[after.start, until)``.

    Keyed by (change index, SLO index). Only bad spans (failed, or slower than a latency
    SLO's threshold) are read, so this stays cheap however long ago the changes were.
    """
    budget_rows = [
        (f.index, i, s.service, s.environment, f.after.start,
         None if s.sli == "availability" else float(s.threshold_ms or 0))
        for f in facts
        for i, s in span_slos
        if s.service in f.services and s.environment in (None, f.environment)
    ]  # fmt: skip
    if not budget_rows:
        return {}
    thresholds = [r[5] for r in budget_rows if r[5] is not None]
    slowest = f" OR duration_ms > {min(thresholds)!r}" if thresholds else ""
    register(
        cursor,
        "_impact_budgets",
        {
            "w": ([r[0] for r in budget_rows], pa.int64()),
            "slo": ([r[1] for r in budget_rows], pa.int64()),
            "service": ([r[2] for r in budget_rows], pa.string()),
            "env": ([r[3] for r in budget_rows], pa.string()),
            "t2": ([r[4] for r in budget_rows], pa.timestamp("us", tz="UTC")),
            "threshold": ([r[5] for r in budget_rows], pa.float64()),
        },
    )
    try:
        rows = cursor.execute(
            f"""
            WITH bad AS MATERIALIZED (
                SELECT service_name, environment, start_time, duration_ms,
                       {BAD_SPAN} AS failed
                FROM spans
                WHERE kind = 'server' AND service_name IN (SELECT unnest($services))
                  AND start_time >= $lo AND start_time < $until
                  AND ({BAD_SPAN}{slowest})
            )
            SELECT b.w, b.slo, count(*)
            FROM _impact_budgets b JOIN bad ON bad.service_name = b.service
             AND (b.env IS NULL OR bad.environment = b.env) AND bad.start_time >= b.t2
             AND CASE WHEN b.threshold IS NULL THEN bad.failed
                      ELSE bad.duration_ms > b.threshold END
            GROUP BY ALL
            """,  # noqa: S608 - built from constants and validated numbers
            {
                "services": sorted({r[2] for r in budget_rows}),
                "lo": min(r[4] for r in budget_rows),
                "until": until,
            },
        ).fetchall()
    finally:
        cursor.unregister("_impact_budgets")
    return {(int(w), int(slo)): int(n) for w, slo, n in rows}


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
    bounds = data_bounds(cursor, {c.environment for c in changes})
    plans = []
    for i, change in enumerate(changes):
        windows = comparison_windows(change.time, bounds[change.environment], half_width)
        before, after = windows or (None, None)
        impact = ChangeImpact(change, (), before, after, correction=correction)
        facts = None
        if windows is not None:
            facts = WindowFacts(i, change.change_id, change.flag_key, change.environment, *windows)
        plans.append(_Plan(impact, facts))
    windowed = [p.facts for p in plans if p.facts is not None]
    gather(cursor, read_recorded(cursor, windowed))
    assessed = [p for p in plans if p.facts is not None and p.facts.services]
    if not assessed:
        return [p.impact for p in plans]
    for p in assessed:
        p.impact.services = p.facts.services if p.facts else ()
    end = until or max(p.impact.after.end for p in assessed if p.impact.after)
    affected = {s for p in assessed for s in p.impact.services}
    relevant = [(i, s) for i, s in enumerate(slos) if s.service in affected]
    span_slos = [(i, s) for i, s in relevant if s.source == "spans"]
    burned = _burned_since(cursor, [p.facts for p in assessed if p.facts], span_slos, end)
    found = budget_events(cursor, [s for _, s in relevant], end)
    budgets = {i: events for (i, _), events in zip(relevant, found, strict=True)}
    for p in assessed:
        assert p.facts is not None
        _conclude(cursor, p.impact, p.facts, relevant, budgets, burned, end)
    return [p.impact for p in plans]


def _conclude(
    cursor: duckdb.DuckDBPyConnection,
    impact: ChangeImpact,
    facts: WindowFacts,
    slos: list[tuple[int, SLO]],
    budgets: dict[int, float],
    burned: dict[tuple[int, int], int],
    until: datetime,
) -> None:
    """Run the tests of one change, adjust them together and give the verdict."""
    env = impact.change.environment
    for service in impact.services:
        (n1, bad1), (n2, bad2) = (facts.spans.get((service, s), (0, 0)) for s in (0, 1))
        if min(n1, n2) >= MIN_SAMPLE:
            impact.effects.append(Effect(service, "error_rate", two_proportion(bad1, n1, bad2, n2)))
            latency = facts.latency_test(service)
            if latency is not None:
                impact.effects.append(Effect(service, "latency", latency))
        cohorts = sorted({c for (s, c, _) in facts.exposure if s == service})
        for cohort in cohorts:
            n1, e1 = facts.exposure.get((service, cohort, 0), (0, 0))
            n2, e2 = facts.exposure.get((service, cohort, 1), (0, 0))
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
                bad = burned.get((facts.index, i), 0)
            else:
                _, bad = bad_events_since(cursor, slo, impact.after.start, until)
            budget = budgets[i]
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
