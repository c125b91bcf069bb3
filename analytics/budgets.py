"""Error budgets and burn rates, from event counts (never from averages of ratios).

For an SLO with objective ``o`` over a window holding ``total`` events of which ``bad`` failed:
the budget is ``(1 - o) * total`` events; ``consumed = bad / budget`` (can exceed 1, so
``remaining = 1 - consumed`` can go negative); the burn rate over any window ``w`` is
``(bad_w / total_w) / (1 - o)``: 1 means spending the budget exactly as fast as the SLO window
allows. The alert state follows the multi-window multi-burn-rate rules of :mod:`analytics.slo`,
evaluated only when the long window holds at least ``min_events`` events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analytics.slo import SLO
from analytics.windows import TimeWindow, bucket_index, bucket_start

BURN_WINDOWS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "3d": timedelta(days=3),
}


def bad_predicate(slo: SLO) -> str:
    """SQL over ``spans``: whether a server span is a bad event of the SLO."""
    if slo.sli == "availability":
        return "(status_code = 'error' OR coalesce(http_status_code, 0) >= 500)"
    return f"(duration_ms > {float(slo.threshold_ms or 0)!r})"


# How far before a window the metric path looks for the previous point of a cumulative series
# (an exporter's interval is seconds to minutes; a first point with no predecessor in this
# reach counts from the series' start).
CUMULATIVE_LOOKBACK = timedelta(hours=6)


def _good_in_point(slo: SLO) -> str:
    """SQL: the good observations in one http.server.request.duration point (as sent)."""
    if slo.sli == "availability":
        return "CASE WHEN coalesce(http_status_code, 0) >= 500 THEN 0 ELSE count END"
    ms = float(slo.threshold_ms or 0)
    # buckets 1..k hold the values <= bounds[k]; k = how many bounds lie under the threshold
    # (semantic conventions record seconds; a histogram in ms says so in its unit)
    limit = f"(CASE WHEN unit = 'ms' THEN {ms!r} ELSE {ms / 1000!r} END)"
    return (
        "coalesce(list_sum(list_slice(bucket_counts, 1, "
        f"len(list_filter(bounds, b -> b <= {limit})))), 0)"
    )


def _events(slo: SLO) -> tuple[str, dict[str, Any]]:
    """A relation (t, n, bad) of the SLO's events with t in [$lo, $hi), and its parameters.

    From spans: one row per server span. From metrics: one row per histogram point, with the
    point's own increase (a cumulative point minus the previous point of its series with the
    same start time; a new start time means the sender restarted and counts from zero).
    """
    params: dict[str, Any] = {"service": slo.service}
    env = ""
    if slo.environment is not None:
        env = "AND environment = $env"
        params["env"] = slo.environment
    if slo.source == "spans":
        return (
            f"SELECT start_time AS t, 1 AS n, CASE WHEN {bad_predicate(slo)} THEN 1 ELSE 0 END "  # noqa: S608
            f"AS bad FROM spans WHERE service_name = $service {env} AND kind = 'server' "
            "AND start_time >= $lo AND start_time < $hi",
            params,
        )
    lookback = int(CUMULATIVE_LOOKBACK.total_seconds())
    return (
        f"""
        SELECT t, n, n - good AS bad FROM (
            SELECT time AS t,
                   -- a count that drops under the same start time is a reset: count from zero
                   CASE WHEN temporality = 'delta' OR count < lag(count) OVER w THEN count
                        ELSE count - coalesce(lag(count) OVER w, 0) END AS n,
                   CASE WHEN temporality = 'delta' OR count < lag(count) OVER w THEN g
                        ELSE g - coalesce(lag(g) OVER w, 0) END AS good
            FROM (SELECT *, {_good_in_point(slo)} AS g FROM metric_points
                  WHERE metric = 'http.server.request.duration' AND kind = 'histogram'
                    AND service_name = $service {env}
                    AND time >= $lo - INTERVAL {lookback} SECOND AND time < $hi)
            WINDOW w AS (PARTITION BY series, start_time ORDER BY time)
        ) WHERE t >= $lo
        """,  # noqa: S608 - built from constants and validated numbers
        params,
    )


@dataclass(frozen=True, slots=True)
class RuleState:
    severity: str
    long: str
    short: str
    factor: float
    long_burn: float | None
    short_burn: float | None
    long_events: int
    firing: bool
    enough_data: bool


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    slo: SLO
    window: TimeWindow
    total: int
    bad: int
    burn_rates: dict[str, float | None]
    rules: tuple[RuleState, ...] = field(default_factory=tuple)

    @property
    def good(self) -> int:
        return self.total - self.bad

    @property
    def budget_events(self) -> float:
        return self.slo.error_budget * self.total

    @property
    def consumed(self) -> float | None:
        """Share of the budget spent (None without events)."""
        if self.total == 0:
            return None
        return self.bad / self.budget_events

    @property
    def remaining(self) -> float | None:
        consumed = self.consumed
        return None if consumed is None else 1.0 - consumed

    @property
    def sli_value(self) -> float | None:
        return None if self.total == 0 else self.good / self.total

    @property
    def time_to_exhaustion(self) -> timedelta | None:
        """At the last hour's burn rate, when the budget runs out (0 if already spent)."""
        remaining = self.remaining
        burn = self.burn_rates.get("1h")
        if remaining is None:
            return None
        if remaining <= 0:
            return timedelta(0)
        if not burn:
            return None
        return self.slo.window * remaining / burn

    @property
    def state(self) -> str:
        """'page', 'ticket', 'ok', or 'insufficient_data' when no rule had enough events."""
        if not any(rule.enough_data for rule in self.rules):
            return "insufficient_data"
        for severity in ("page", "ticket"):
            if any(rule.firing for rule in self.rules if rule.severity == severity):
                return severity
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        exhaustion = self.time_to_exhaustion
        return {
            "slo": self.slo.name,
            "service": self.slo.service,
            "environment": self.slo.environment,
            "sli": self.slo.sli,
            "objective": self.slo.objective,
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "total": self.total,
            "good": self.good,
            "bad": self.bad,
            "sli_value": self.sli_value,
            "budget_events": self.budget_events,
            "consumed": self.consumed,
            "remaining": self.remaining,
            "burn_rates": dict(self.burn_rates),
            "time_to_exhaustion_hours": (
                None if exhaustion is None else exhaustion.total_seconds() / 3600
            ),
            "state": self.state,
            "rules": [
                {
                    "severity": r.severity,
                    "long": r.long,
                    "short": r.short,
                    "factor": r.factor,
                    "long_burn": r.long_burn,
                    "short_burn": r.short_burn,
                    "long_events": r.long_events,
                    "enough_data": r.enough_data,
                    "firing": r.firing,
                }
                for r in self.rules
            ],
        }


def _label(value: timedelta) -> str:
    for name, size in BURN_WINDOWS.items():
        if size == value:
            return name
    return f"{int(value.total_seconds())}s"


def _status(
    slo: SLO,
    at: datetime,
    window_total: int,
    window_bad: int,
    counts: dict[str, tuple[int, int]],
) -> BudgetStatus:
    """Budget, burn rates and rule states from the counted events (pure arithmetic).

    ``counts`` maps each name of :data:`BURN_WINDOWS` to (total, bad) in the window of that
    length ending at ``at``.
    """
    burn_rates: dict[str, float | None] = {
        name: (b / t) / slo.error_budget if t else None for name, (t, b) in counts.items()
    }
    rules = []
    for rule in slo.burn_rules():
        long, short = _label(rule.long), _label(rule.short)
        long_burn, short_burn = burn_rates[long], burn_rates[short]
        enough = counts[long][0] >= slo.min_events
        firing = (
            enough
            and long_burn is not None
            and short_burn is not None
            and long_burn > rule.factor
            and short_burn > rule.factor
        )
        rules.append(
            RuleState(
                rule.severity, long, short, rule.factor, long_burn, short_burn, counts[long][0],
                firing, enough,
            )
        )  # fmt: skip
    return BudgetStatus(
        slo, slo.compliance_window(at), window_total, window_bad, burn_rates, tuple(rules)
    )


def _metric_status(cursor: duckdb.DuckDBPyConnection, slo: SLO, at: datetime) -> BudgetStatus:
    """One histogram-based SLO: sums the observations of its points."""
    window = slo.compliance_window(at)
    events, params = _events(slo)
    filters = []
    for size in BURN_WINDOWS.values():
        since = f"t >= $at - INTERVAL {int(size.total_seconds())} SECOND"
        filters += [
            f"coalesce(sum(n) FILTER (WHERE {since}), 0)",
            f"coalesce(sum(bad) FILTER (WHERE {since}), 0)",
        ]
    sql = (
        "SELECT coalesce(sum(n) FILTER (WHERE t >= $start), 0), "  # noqa: S608
        f"coalesce(sum(bad) FILTER (WHERE t >= $start), 0), {', '.join(filters)} "
        f"FROM ({events})"
    )
    named = params | {
        "at": at,
        "start": window.start,
        "lo": min(window.start, at - max(BURN_WINDOWS.values())),
        "hi": at,
    }
    row = cursor.execute(sql, named).fetchone()
    assert row is not None
    counts = {
        name: (int(row[2 + 2 * i]), int(row[3 + 2 * i])) for i, name in enumerate(BURN_WINDOWS)
    }
    return _status(slo, at, int(row[0]), int(row[1]), counts)


def _span_counts_by_slot(
    cursor: duckdb.DuckDBPyConnection,
    starts: list[datetime],
    services: set[str],
    at: datetime,
    aggregates: list[str] | None = None,
) -> list[tuple[Any, ...]]:
    """Server spans of ``services`` from ``starts[0]`` to ``at``, per service, environment and
    slot k, with ``count(*)`` and any further ``aggregates`` as columns 3, 4, ...

    Each span falls in one slot: the latest start it is at or after (a CASE per row costs far
    less than a FILTER per start), so "since start j" is the sum over slots j and later.
    """
    slot = " ".join(f"WHEN start_time >= $s{j} THEN {j}" for j in reversed(range(len(starts))))
    extra = "".join(f", {a}" for a in aggregates or ())
    rows: list[tuple[Any, ...]] = cursor.execute(
        f"SELECT service_name, environment, CASE {slot} END AS k, count(*){extra} "  # noqa: S608
        "FROM spans WHERE kind = 'server' AND service_name IN (SELECT unnest($services)) "
        "AND start_time >= $s0 AND start_time < $at GROUP BY ALL",
        {f"s{j}": start for j, start in enumerate(starts)}
        | {"services": sorted(services), "at": at},
    ).fetchall()
    return rows


def _span_statuses(
    cursor: duckdb.DuckDBPyConnection, slos: list[SLO], at: datetime
) -> list[BudgetStatus]:
    """Span-based SLOs in one scan of ``spans``.

    Server spans are counted per (service, environment) since each distinct start (compliance
    window starts and burn windows), in total and per distinct bad-event predicate; each SLO
    then adds up the groups of its service (and environment).
    """
    if not slos:
        return []
    starts = sorted(
        {slo.compliance_window(at).start for slo in slos}
        | {at - size for size in BURN_WINDOWS.values()}
    )
    predicates = sorted({bad_predicate(slo) for slo in slos})
    bad = [f"count(*) FILTER (WHERE {p})" for p in predicates]
    rows = _span_counts_by_slot(cursor, starts, {slo.service for slo in slos}, at, bad)

    def count(slo: SLO, since: datetime, bad: bool) -> int:
        first = starts.index(since)
        column = 4 + predicates.index(bad_predicate(slo)) if bad else 3
        return sum(
            int(row[column])
            for row in rows
            if row[2] >= first and row[0] == slo.service and slo.environment in (None, row[1])
        )

    statuses = []
    for slo in slos:
        begin = slo.compliance_window(at).start
        counts = {
            name: (count(slo, at - size, False), count(slo, at - size, True))
            for name, size in BURN_WINDOWS.items()
        }
        statuses.append(_status(slo, at, count(slo, begin, False), count(slo, begin, True), counts))
    return statuses


def budget_status(cursor: duckdb.DuckDBPyConnection, slo: SLO, at: datetime) -> BudgetStatus:
    """The SLO's budget over its compliance window ending at ``at``, with burn rates and state."""
    if slo.source == "spans":
        return _span_statuses(cursor, [slo], at)[0]
    return _metric_status(cursor, slo, at)


def budget_events(cursor: duckdb.DuckDBPyConnection, slos: list[SLO], at: datetime) -> list[float]:
    """Each SLO's error budget in events over its compliance window ending at ``at``.

    The same figure as :attr:`BudgetStatus.budget_events`, for callers that need nothing else:
    span-based SLOs take one count of server spans per compliance start, without the burn
    windows and bad-event counts of :func:`budget_statuses`.
    """
    spans = [s for s in slos if s.source == "spans"]
    totals: dict[int, int] = {}
    if spans:
        starts = sorted({slo.compliance_window(at).start for slo in spans})
        rows = _span_counts_by_slot(cursor, starts, {slo.service for slo in spans}, at)
        for i, slo in enumerate(slos):
            if slo.source == "spans":
                first = starts.index(slo.compliance_window(at).start)
                totals[i] = sum(
                    int(n)
                    for service, env, k, n in rows
                    if k >= first and service == slo.service and slo.environment in (None, env)
                )
    return [
        slo.error_budget * totals[i]
        if slo.source == "spans"
        else _metric_status(cursor, slo, at).budget_events
        for i, slo in enumerate(slos)
    ]


def budget_statuses(
    cursor: duckdb.DuckDBPyConnection, slos: list[SLO], at: datetime
) -> list[BudgetStatus]:
    """:func:`budget_status` of every SLO, in the given order (span SLOs share one scan)."""
    spans = iter(_span_statuses(cursor, [s for s in slos if s.source == "spans"], at))
    return [next(spans) if s.source == "spans" else _metric_status(cursor, s, at) for s in slos]


def burn_rate(
    cursor: duckdb.DuckDBPyConnection, slo: SLO, window: TimeWindow
) -> tuple[float | None, int, int]:
    """(burn rate, total, bad) of the SLO over any ``window``; rate None without events.

    1.0 spends the budget exactly as fast as the SLO window allows; the alert rules compare
    the rates of fixed windows (:data:`BURN_WINDOWS`) ending now.
    """
    total, bad = bad_events_since(cursor, slo, window.start, window.end)
    return ((bad / total) / slo.error_budget if total else None), total, bad


@dataclass(frozen=True, slots=True)
class BudgetPoint:
    """Budget remaining at the end of one bucket, against the ideal (even) spend."""

    time: datetime
    total: int
    bad: int
    remaining: float | None
    ideal: float
    burn_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "total": self.total,
            "bad": self.bad,
            "remaining": self.remaining,
            "ideal": self.ideal,
            "burn_rate": self.burn_rate,
        }


def budget_series(
    cursor: duckdb.DuckDBPyConnection, slo: SLO, window: TimeWindow, bucket: timedelta
) -> list[BudgetPoint]:
    """Budget remaining over ``window``, bucket by bucket (cumulative from the window start).

    ``remaining`` uses the events seen so far as the budget base; ``ideal`` is the straight
    line from 1 at the window start to 0 at the end of a full SLO window.
    """
    events, params = _events(slo)
    bucket = max(bucket, timedelta(minutes=1))
    seconds = int(bucket.total_seconds())
    rows = cursor.execute(
        f"SELECT {bucket_start('k', bucket)} AS b, n, bad FROM ("  # noqa: S608
        f"SELECT {bucket_index('t', bucket)} AS k, sum(n) AS n, sum(bad) AS bad "
        f"FROM ({events}) GROUP BY k) ORDER BY b",
        params | {"start": window.start, "lo": window.start, "hi": window.end},
    ).fetchall()
    points = []
    total = bad_total = 0
    for when, count, failed in rows:
        total += int(count)
        bad_total += int(failed)
        end = when + timedelta(seconds=seconds)
        elapsed = (end - window.start) / slo.window
        remaining = 1 - bad_total / (slo.error_budget * total) if total else None
        burn = (int(failed) / int(count)) / slo.error_budget if count else None
        points.append(BudgetPoint(end, total, bad_total, remaining, max(0.0, 1.0 - elapsed), burn))
    return points


def budget_report(
    cursor: duckdb.DuckDBPyConnection, slos: list[SLO], at: datetime
) -> list[BudgetStatus]:
    """Every SLO's status at ``at``, least budget remaining first."""
    statuses = budget_statuses(cursor, slos, at)
    return sorted(statuses, key=lambda s: (s.remaining is None, s.remaining or 0.0))


def bad_events_since(
    cursor: duckdb.DuckDBPyConnection, slo: SLO, since: datetime, until: datetime
) -> tuple[int, int]:
    """(total, bad) events of the SLO in [since, until)."""
    events, params = _events(slo)
    row = cursor.execute(
        f"SELECT coalesce(sum(n), 0), coalesce(sum(bad), 0) FROM ({events})",  # noqa: S608
        params | {"lo": since, "hi": until},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
