"""Policy-change impact: for every change, what happened to the services evaluating its flag.

For a change at time ``t`` the comparison uses two equal windows, ``[t - w, t)`` and
``[t, t + w)``, with ``w`` the configured half-width (24 h) shrunk so that both sides lie inside
the data. For each affected service (one that evaluated the flag in either window):

- error rate of its server spans: two-proportion z test;
- latency: Mann–Whitney U on span durations (reservoir samples of at most 1,000 per side), with
  the Hodges–Lehmann shift and its 95 % interval;
- engagement of each cohort exposed to the flag on that service: two-proportion z test;
- for each SLO of the service: the share of its error budget burned since the change.

All p-values of one change are adjusted together (Holm). An effect counts when its adjusted
p < 0.05 *and* it is at least the smallest effect worth reporting (latency shift of 10 % of the
median, error rate ±0.5 percentage points, engagement ±3 points). The verdict is *regression*
when a counted effect points the wrong way (more errors, slower, less engagement),
*improvement* when only the right way, *no detectable effect*, or *not enough data*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np

from analytics.budgets import BudgetStatus, bad_events_since, budget_status
from analytics.cohorts import cohort_shifts
from analytics.governance import ChangeReview, Rules, review_changes
from analytics.queries.windows import TimeWindow
from analytics.slo import SLO
from analytics.stats import ProportionTest, ShiftTest, holm, location_shift, two_proportion
from contracts.signing import KeyRing

HALF_WIDTH = timedelta(hours=24)
MIN_HALF_WIDTH = timedelta(hours=1)
MIN_SAMPLE = 100
LATENCY_SAMPLE = 1_000
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
        """Holm-adjusted p below 0.05 and at least the minimum effect size."""
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "verdict": self.verdict,
            "score": self.score,
            "change": self.change.as_dict(),
            "services": list(self.services),
            "before": _window(self.before),
            "after": _window(self.after),
            "effects": [e.as_dict() for e in self.effects],
            "budgets": [b.as_dict() for b in self.budgets],
        }


def _window(window: TimeWindow | None) -> list[str] | None:
    return None if window is None else [window.start.isoformat(), window.end.isoformat()]


def _data_bounds(cursor: duckdb.DuckDBPyConnection, environment: str) -> tuple[Any, Any]:
    row = cursor.execute(
        "SELECT min(start_time), max(start_time) FROM spans WHERE environment = $env",
        {"env": environment},
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _half_width(
    at: datetime, bounds: tuple[datetime | None, datetime | None], limit: timedelta
) -> timedelta | None:
    first, last = bounds
    if first is None or last is None:
        return None
    width = min(limit, at - first, last - at)
    return width if width >= MIN_HALF_WIDTH else None


def _affected_services(
    cursor: duckdb.DuckDBPyConnection, change: ChangeReview, start: datetime, end: datetime
) -> tuple[str, ...]:
    rows = cursor.execute(
        "SELECT DISTINCT service_name FROM decisions WHERE flag_key = $flag "
        "AND environment = $env AND time >= $start AND time < $end ORDER BY 1",
        {"flag": change.flag_key, "env": change.environment, "start": start, "end": end},
    ).fetchall()
    return tuple(r[0] for r in rows)


def _span_counts(
    cursor: duckdb.DuckDBPyConnection, service: str, env: str, window: TimeWindow
) -> tuple[int, int]:
    row = cursor.execute(
        "SELECT count(*), count(*) FILTER (WHERE status_code = 'error' "
        "OR coalesce(http_status_code, 0) >= 500) FROM spans WHERE service_name = $service "
        "AND environment = $env AND kind = 'server' AND start_time >= $start AND start_time < $end",
        {"service": service, "env": env, "start": window.start, "end": window.end},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _durations(
    cursor: duckdb.DuckDBPyConnection, service: str, env: str, window: TimeWindow
) -> np.ndarray:
    rows = cursor.execute(
        "SELECT duration_ms FROM (SELECT duration_ms FROM spans WHERE service_name = $service "  # noqa: S608 - constant sample size
        "AND environment = $env AND kind = 'server' AND start_time >= $start "
        f"AND start_time < $end) USING SAMPLE reservoir({LATENCY_SAMPLE} ROWS) REPEATABLE (7)",
        {"service": service, "env": env, "start": window.start, "end": window.end},
    ).fetchnumpy()
    return np.asarray(rows["duration_ms"], dtype=float)


def change_impact(
    cursor: duckdb.DuckDBPyConnection,
    change: ChangeReview,
    slos: list[SLO],
    *,
    half_width: timedelta = HALF_WIDTH,
    until: datetime | None = None,
    bounds: tuple[datetime | None, datetime | None] | None = None,
    statuses: dict[str, BudgetStatus] | None = None,
) -> ChangeImpact:
    """Compare the windows around one change (see the module docstring)."""
    env = change.environment
    width = _half_width(change.time, bounds or _data_bounds(cursor, env), half_width)
    if width is None:
        return ChangeImpact(change, (), None, None)
    before = TimeWindow(change.time - width, change.time)
    after = TimeWindow(change.time, change.time + width)
    services = _affected_services(cursor, change, before.start, after.end)
    impact = ChangeImpact(change, services, before, after)
    for service in services:
        n1, bad1 = _span_counts(cursor, service, env, before)
        n2, bad2 = _span_counts(cursor, service, env, after)
        if min(n1, n2) >= MIN_SAMPLE:
            impact.effects.append(Effect(service, "error_rate", two_proportion(bad1, n1, bad2, n2)))
            impact.effects.append(
                Effect(
                    service,
                    "latency",
                    location_shift(
                        _durations(cursor, service, env, before),
                        _durations(cursor, service, env, after),
                    ),
                )
            )
        for shift in cohort_shifts(
            cursor, before, after, service=service, environment=env, flag=change.flag_key
        ):
            if shift.test is not None:
                impact.effects.append(Effect(service, f"engagement:{shift.cohort}", shift.test))
        for slo in slos:
            if slo.service != service or slo.environment not in (None, env):
                continue
            end = until or after.end
            status = (statuses or {}).get(slo.name) or budget_status(cursor, slo, end)
            _, bad = bad_events_since(cursor, slo, change.time, end)
            share = bad / status.budget_events if status.budget_events else None
            impact.budgets.append(BudgetBurn(slo.name, service, bad, share))
    if not impact.effects:
        return impact
    adjusted = holm([_p_value(e.test) for e in impact.effects])
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
    return impact


def _p_value(test: ProportionTest | ShiftTest) -> float:
    return test.p_value


def change_impacts(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    slos: list[SLO],
    rules: Rules,
    keys: KeyRing,
    *,
    environment: str | None = None,
    half_width: timedelta = HALF_WIDTH,
) -> list[ChangeImpact]:
    """Every change in ``window``, assessed and ranked (regressions first, biggest first)."""
    reviews = review_changes(cursor, window, rules, keys, environment=environment)
    bounds = {env: _data_bounds(cursor, env) for env in {r.environment for r in reviews}}
    statuses = {slo.name: budget_status(cursor, slo, window.end) for slo in slos}
    impacts = [
        change_impact(
            cursor,
            r,
            slos,
            half_width=half_width,
            until=window.end,
            bounds=bounds[r.environment],
            statuses=statuses,
        )
        for r in reviews
    ]
    impacts.sort(key=lambda i: (VERDICTS.index(i.verdict), -i.score, i.change.time))
    for rank, impact in enumerate(impacts, 1):
        impact.rank = rank
    return impacts
