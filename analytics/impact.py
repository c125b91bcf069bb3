"""Policy-change impact: for every change, what happened to the services evaluating its flag.

A change's windows (:mod:`analytics.impact_windows`) are two equal windows of whole minutes
before and after it, 24 h at most, shortened so that no other change on the same services
falls inside them; a change too close to another to separate is compared together with it and
marked *confounded* with it. For each affected service (one that evaluated the flag in the
environment within 24 h of the change):

- ``error_rate``: share of failed server spans, two-proportion z test;
- ``latency``: Mann–Whitney U on span durations (a deterministic sample of at most 1,000 spans
  per side, chosen by a hash of the span id), with the Hodges–Lehmann shift and its 95 %
  interval, and p50/p95/p99 before and after with exact 95 % intervals;
- ``latency:p95``, ``latency:p99``: the tail, Mood's quantile test on the same samples
  (:mod:`analytics.quantiles`);
- ``engagement:<cohort>``, for each cohort exposed to the flag on a service that sends
  engagement events: share of exposed subjects who engaged, two-proportion z test;
- ``budget:<slo>``, for each SLO of the service: share of the SLO's bad events before and
  after, two-proportion z test; and the error budget burned in the change's *burn window* (from
  the change to the next change on that service, 24 h at most).

Every p-value of every change assessed together (everything one page, report or CLI call
ranks) is adjusted as one family: Benjamini–Hochberg by default, which keeps the expected share
of false discoveries among the effects counted at 5 %, or Holm. When an effect counts, see
:mod:`analytics.effects`. The verdict is *regression* when a counted effect points the wrong
way, *confounded* when counted effects cannot be told apart from another change's, *improvement*
when they all point the right way, *no detectable effect*, or *not enough data* (no affected
service with enough events on both sides). The score is the relative change of the largest
counted effect in the verdict's direction.

Every change of a window is assessed with a fixed number of queries whatever the number of
changes. The facts of each change's windows (:mod:`analytics.impact_facts`) are read where
``flaglens serve`` has recorded them and gathered live for the others; the SLO counts of the
budget effects are counted live (the SLO file may change), their span totals taken from the
facts, so that a call reads only the slow spans of latency SLOs (and every span of an SLO that
covers every environment).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np

from analytics.budgets import bad_events_since, bad_predicate, budget_events
from analytics.effects import ALPHA, Effect, Family, adjust
from analytics.errors import AnalyticsError
from analytics.governance import ChangeReview, Rules, review_changes
from analytics.impact_facts import MIN_SAMPLE, WindowFacts, epoch_minute
from analytics.impact_records import collect
from analytics.impact_windows import HALF_WIDTH, LedgerChange, Windows, comparison_windows
from analytics.quantiles import TAIL_QUANTILES, enough_for, label
from analytics.slo import SLO
from analytics.stats import CORRECTIONS, ProportionTest, two_proportion
from analytics.windows import TimeWindow
from contracts.signing import KeyRing

__all__ = [
    "ALPHA", "VERDICTS", "BudgetBurn", "ChangeImpact", "Effect", "Family", "assess",
    "change_impact", "change_impacts", "comparison_windows", "family_name", "judge", "rank",
]  # fmt: skip

VERDICTS = ("regression", "confounded", "improvement", "no detectable effect", "not enough data")
DEFAULT_CORRECTION = "bh"
_MINUTE_US = 60_000_000


@dataclass(slots=True)
class BudgetBurn:
    """The error budget of one SLO burned in a change's burn window."""

    slo: str
    service: str
    window: TimeWindow
    total: int
    bad: int
    expected_bad: float  # what the before window's bad share would have given in the window
    budget_events: float  # the SLO's error budget in events (compliance window at the end)
    error_budget: float  # 1 - objective

    @property
    def share_of_budget(self) -> float | None:
        """Bad events in the burn window / the SLO window's budget."""
        return self.bad / self.budget_events if self.budget_events else None

    @property
    def excess_share_of_budget(self) -> float | None:
        """Bad events beyond the expected ones / the budget: the burn the change added."""
        if not self.budget_events:
            return None
        return max(0.0, self.bad - self.expected_bad) / self.budget_events

    @property
    def burn_rate(self) -> float | None:
        """(bad / total) / (1 - objective) in the burn window; 1 spends exactly the budget."""
        return (self.bad / self.total) / self.error_budget if self.total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo,
            "service": self.service,
            "window": [self.window.start.isoformat(), self.window.end.isoformat()],
            "total": self.total,
            "bad": self.bad,
            "bad_since_change": self.bad,
            "expected_bad": self.expected_bad,
            "budget_events": self.budget_events,
            "share_of_budget": self.share_of_budget,
            "excess_share_of_budget": self.excess_share_of_budget,
            "burn_rate": self.burn_rate,
        }


@dataclass(slots=True)
class ChangeImpact:
    change: ChangeReview
    services: tuple[str, ...]
    before: TimeWindow | None  # the nominal windows; each service's own are in `windows`
    after: TimeWindow | None
    windows: dict[str, Windows] = field(default_factory=dict)
    effects: list[Effect] = field(default_factory=list)
    budgets: list[BudgetBurn] = field(default_factory=list)
    verdict: str = "not enough data"
    score: float = 0.0
    score_effect: str | None = None
    rank: int = 0
    correction: str = DEFAULT_CORRECTION
    family: Family | None = None

    @property
    def counted(self) -> list[Effect]:
        return [e for e in self.effects if e.counts]

    @property
    def adjusted_for(self) -> tuple[str, ...]:
        """Other changes left out of some service's windows."""
        return tuple(sorted({c for w in self.windows.values() for c in w.adjusted_for}))

    @property
    def confounded_with(self) -> tuple[str, ...]:
        """Other changes too close to leave out, on some service."""
        return tuple(sorted({c for w in self.windows.values() for c in w.confounded_with}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "verdict": self.verdict,
            "score": self.score,
            "score_effect": self.score_effect,
            "correction": self.correction,
            "family": self.family.as_dict() if self.family else None,
            "change": self.change.as_dict(),
            "services": list(self.services),
            "before": _window(self.before),
            "after": _window(self.after),
            "windows": {s: w.as_dict() for s, w in sorted(self.windows.items())},
            "adjusted_for": list(self.adjusted_for),
            "confounded_with": list(self.confounded_with),
            "effects": [e.as_dict() for e in self.effects],
            "budgets": [b.as_dict() for b in self.budgets],
        }


def _window(window: TimeWindow | None) -> list[str] | None:
    return None if window is None else [window.start.isoformat(), window.end.isoformat()]


@dataclass(frozen=True, slots=True)
class _SloWindows:
    """One SLO of one affected service of one change, and the three windows it is counted in."""

    impact: int
    slo: int
    before: TimeWindow
    after: TimeWindow
    burn: TimeWindow
    # the service's server spans (total, failed) in the change's environment before, after
    # and in the burn window, from the change's facts
    spans: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def _span_slo_counts(
    cursor: duckdb.DuckDBPyConnection,
    rows: list[_SloWindows],
    slos: list[SLO],
    *,
    bad_only: bool = False,
) -> list[tuple[int, ...]]:
    """(total, bad) before, after and in the burn window of each row (span-based SLOs).

    One scan: DuckDB counts the spans of the SLOs' services per minute (every window is whole
    minutes), with one bad count per distinct bad-event predicate; numpy sums them up minute
    by minute per service and environment, so that a window's count is the running sum at its
    end less the one at its start (joining every minute of every window costs more than the
    scan; DuckDB's running-sum window function, about three times the scan). ``bad_only``
    reads only the bad spans (a few per cent of them): the totals are then 0.
    """
    if not rows:
        return []
    predicates = sorted({bad_predicate(slos[r.slo]) for r in rows})
    bad = ", ".join(f"count(*) FILTER (WHERE {p}) AS bad{i}" for i, p in enumerate(predicates))
    only = f"AND ({' OR '.join(predicates)})" if bad_only else ""
    table = cursor.execute(
        f"""
        SELECT service_name, environment, epoch_us(start_time) // {_MINUTE_US} AS m,
               count(*) AS n, {bad}
        FROM spans
        WHERE kind = 'server' AND list_contains($services, service_name)
          AND start_time >= $lo AND start_time < $hi {only}
        GROUP BY ALL
        """,  # noqa: S608 - built from constants and validated numbers
        {
            "services": sorted({slos[r.slo].service for r in rows}),
            "lo": min(r.before.start for r in rows),
            "hi": max(max(r.after.end, r.burn.end) for r in rows),
        },
    ).to_arrow_table()
    # per (service, environment): its minutes in order and the running sums before each
    service = table.column("service_name").combine_chunks().dictionary_encode()
    env = table.column("environment").combine_chunks().dictionary_encode()
    env_codes = env.indices.fill_null(len(env.dictionary)).to_numpy()
    key = service.indices.to_numpy().astype(np.int64) * (len(env.dictionary) + 1) + env_codes
    minutes = table.column("m").to_numpy()
    order = np.lexsort((minutes, key))
    key, minutes = key[order], minutes[order]
    sums = [table.column(name).to_numpy()[order] for name in table.column_names[3:]]
    edges = [0, *(np.flatnonzero(np.diff(key)) + 1), len(key)]
    groups: dict[tuple[str, str | None], tuple[np.ndarray, list[np.ndarray]]] = {}
    for first, last in itertools.pairwise(edges):
        code = int(key[first])
        names = (service.dictionary[code // (len(env.dictionary) + 1)].as_py(),
                 None if code % (len(env.dictionary) + 1) == len(env.dictionary)
                 else env.dictionary[code % (len(env.dictionary) + 1)].as_py())  # fmt: skip
        groups[names] = (
            minutes[first:last],
            [np.concatenate([[0], np.cumsum(c[first:last])]) for c in sums],
        )

    def count(row: _SloWindows, window: TimeWindow) -> tuple[int, int]:
        slo = slos[row.slo]
        column = 1 + predicates.index(bad_predicate(slo))
        total = failed = 0
        for (service, env), (minutes, running) in groups.items():
            if service != slo.service or slo.environment not in (None, env):
                continue
            lo, hi = np.searchsorted(minutes, [epoch_minute(window.start),
                                               epoch_minute(window.end)])  # fmt: skip
            total += 0 if bad_only else int(running[0][hi] - running[0][lo])
            failed += int(running[column][hi] - running[column][lo])
        return total, failed

    return [(*count(r, r.before), *count(r, r.after), *count(r, r.burn)) for r in rows]


def _slo_counts(
    cursor: duckdb.DuckDBPyConnection,
    rows: list[_SloWindows],
    slos: list[SLO],
    environments: list[str],
) -> list[tuple[int, ...]]:
    """(total, bad) before, after and in the burn window of each row, for any SLO source.

    A span-based SLO of the change's own environment takes its totals (and, for availability,
    its bad events: the failed spans) from the change's facts, which are recorded once the
    change has closed; a latency SLO reads only its slow spans. Others (every environment, or
    from metrics) count everything.
    """
    found: dict[int, tuple[int, ...]] = {}
    slow, every = [], []
    for i, row in enumerate(rows):
        slo = slos[row.slo]
        if slo.source != "spans":
            counts: tuple[int, ...] = ()
            for window in (row.before, row.after, row.burn):
                counts += bad_events_since(cursor, slo, window.start, window.end)
            found[i] = counts
        elif slo.environment != environments[i]:
            every.append(i)
        elif slo.sli == "availability":
            found[i] = tuple(n for pair in row.spans for n in pair)
        else:
            slow.append(i)
    for i, counts in zip(every, _span_slo_counts(cursor, [rows[i] for i in every], slos),
                         strict=True):  # fmt: skip
        found[i] = counts
    slow_counts = _span_slo_counts(cursor, [rows[i] for i in slow], slos, bad_only=True)
    for i, counts in zip(slow, slow_counts, strict=True):
        (n1, _), (n2, _), (n3, _) = rows[i].spans
        found[i] = (n1, counts[1], n2, counts[3], n3, counts[5])
    return [found[i] for i in range(len(rows))]


def _effects(impact: ChangeImpact, facts: WindowFacts) -> None:
    """The error-rate, latency and engagement effects of every affected service."""
    for service, windows in facts.compared:
        found: list[Effect] = []
        (n1, bad1), (n2, bad2) = (facts.spans.get((service, s), (0, 0)) for s in (0, 1))
        if min(n1, n2) >= MIN_SAMPLE:
            found.append(Effect(service, "error_rate", two_proportion(bad1, n1, bad2, n2)))
            quantiles = facts.quantile_tests(service)
            shift = facts.latency_test(service)
            if shift is not None:
                found.append(Effect(service, "latency", shift, percentiles=quantiles))
            for test in quantiles:
                if test.quantile in TAIL_QUANTILES and enough_for(
                    test.quantile, test.n_before, test.n_after
                ):
                    metric = f"latency:{label(test.quantile)}"
                    found.append(Effect(service, metric, test))  # its before/after: the tail
        exposures = {k: v for k, v in facts.exposure.items() if k[0] == service}
        # a service that sends no engagement events (or none from these subjects) has none
        if any(engaged for _, engaged in exposures.values()):
            for cohort in sorted({c for (_, c, _) in exposures}):
                n1, e1 = exposures.get((service, cohort, 0), (0, 0))
                n2, e2 = exposures.get((service, cohort, 1), (0, 0))
                if min(n1, n2) >= MIN_SAMPLE:
                    engaged = two_proportion(e1, n1, e2, n2)
                    found.append(Effect(service, f"engagement:{cohort}", engaged))
        for effect in found:
            effect.confounded_with = windows.confounded_with
        impact.effects += found


def _budgets(
    cursor: duckdb.DuckDBPyConnection,
    impacts: list[tuple[ChangeImpact, WindowFacts]],
    slos: list[SLO],
    until: datetime,
) -> None:
    """Each SLO's effect and burn window for every affected service of every change."""
    rows, environments = [], []
    for i, (impact, facts) in enumerate(impacts):
        env = impact.change.environment
        for service, w in facts.compared:
            assert w.before is not None and w.after is not None
            burn = TimeWindow(w.after.start, w.burn_until or w.after.end)
            spans = (facts.spans.get((service, 0), (0, 0)), facts.spans.get((service, 1), (0, 0)),
                     facts.spans.get((service, 2), (0, 0)))  # fmt: skip
            for j, slo in enumerate(slos):
                if slo.service == service and slo.environment in (None, env):
                    rows.append(_SloWindows(i, j, w.before, w.after, burn, spans))
                    environments.append(env)
    if not rows:
        return
    used = sorted({r.slo for r in rows})
    budget = dict(zip(used, budget_events(cursor, [slos[j] for j in used], until), strict=True))
    for row, (n1, bad1, n2, bad2, n3, bad3) in zip(
        rows, _slo_counts(cursor, rows, slos, environments), strict=True
    ):
        impact = impacts[row.impact][0]
        slo = slos[row.slo]
        events = float(budget[row.slo])
        expected = n3 * bad1 / n1 if n1 else 0.0
        impact.budgets.append(
            BudgetBurn(slo.name, slo.service, row.burn, n3, bad3, expected, events,
                       slo.error_budget)
        )  # fmt: skip
        if min(n1, n2) >= MIN_SAMPLE:
            test: ProportionTest = two_proportion(bad1, n1, bad2, n2)
            windows = impact.windows[slo.service]
            effect = Effect(
                slo.service, f"budget:{slo.name}", test, error_budget=slo.error_budget,
                confounded_with=windows.confounded_with,
            )  # fmt: skip
            if slo.sli == "availability" and slo.source == "spans":
                # bad events are failed spans: on the same counts, the error-rate test
                errors = next(
                    (e for e in impact.effects
                     if e.service == slo.service and e.metric == "error_rate"), None,
                )  # fmt: skip
                if errors is not None and errors.test == test:
                    effect.same_as = "error_rate"
            impact.effects.append(effect)


def judge(impacts: list[ChangeImpact], correction: str, family: str) -> Family:
    """Adjust every effect of ``impacts`` as one family named ``family``, with
    ``correction`` (``bh`` or ``holm``); give each change its verdict and score."""
    _check(correction)
    tests = adjust([i.effects for i in impacts], correction)
    found = Family(family, correction, tests, len(impacts))
    for impact in impacts:
        impact.correction, impact.family = correction, found
        for effect in impact.effects:
            effect.family = family
        # effects on a service where another change was too close to leave out are the two
        # changes' together: they decide the verdict only when nothing else counts
        counted = [e for e in impact.counted if not e.confounded_with]
        joint = [e for e in impact.counted if e.confounded_with]
        if not impact.effects:
            impact.verdict = "not enough data"
        elif any(e.worse for e in counted):
            impact.verdict = "regression"
            counted = [e for e in counted if e.worse]
        elif counted:
            impact.verdict = "improvement"
        elif joint:
            impact.verdict = "confounded"
            counted = joint
        else:
            impact.verdict = "no detectable effect"
        top = max(counted, key=lambda e: e.relative_change, default=None)
        impact.score = top.relative_change if top else 0.0
        impact.score_effect = top.label if top else None
    return found


def assess(
    cursor: duckdb.DuckDBPyConnection,
    changes: list[ChangeReview],
    slos: list[SLO],
    *,
    until: datetime | None = None,
    half_width: timedelta = HALF_WIDTH,
) -> list[ChangeImpact]:
    """Every effect of every change, not judged yet (raw p-values; see :func:`judge`).

    ``until`` ends the SLO compliance windows whose budgets the burns are shares of (default:
    the latest after window).
    """
    ledger = [LedgerChange(c.change_id, c.time, c.flag_key, c.environment) for c in changes]
    facts = collect(cursor, ledger, half_width)
    pairs = []
    for change, f in zip(changes, facts, strict=True):
        before, after = f.nominal or (None, None)
        impact = ChangeImpact(change, f.services, before, after, dict(f.windows))
        _effects(impact, f)
        pairs.append((impact, f))
    ends = [w.after.end for _, f in pairs for _, w in f.compared if w.after is not None]
    if ends:
        _budgets(cursor, pairs, slos, until or max(ends))
    return [i for i, _ in pairs]


def _check(correction: str) -> None:
    if correction not in CORRECTIONS:
        raise AnalyticsError(
            f"unknown correction {correction!r}; choose from {sorted(CORRECTIONS)}"
        )


def change_impact(
    cursor: duckdb.DuckDBPyConnection,
    change: ChangeReview,
    slos: list[SLO],
    *,
    half_width: timedelta = HALF_WIDTH,
    until: datetime | None = None,
    correction: str = DEFAULT_CORRECTION,
) -> ChangeImpact:
    """Assess one change on its own (its tests are the whole family).

    ``until`` ends the SLO window whose budget the burn is a share of (default: the end of the
    after window); ``correction`` is ``"bh"`` (Benjamini–Hochberg) or ``"holm"``.
    """
    impacts = assess(cursor, [change], slos, until=until, half_width=half_width)
    judge(impacts, correction, f"change {change.change_id}")
    return impacts[0]


def rank(impacts: list[ChangeImpact]) -> list[ChangeImpact]:
    """In :data:`VERDICTS` order (regressions first); bigger scores first within a verdict."""
    ordered = sorted(impacts, key=lambda i: (VERDICTS.index(i.verdict), -i.score, i.change.time))
    for position, impact in enumerate(ordered, 1):
        impact.rank = position
    return ordered


def family_name(window: TimeWindow, environment: str | None) -> str:
    """How the family of one ranking is named in the output: the changes it ranks."""
    where = f" in {environment}" if environment else ""
    return f"changes made in [{window.start.isoformat()}, {window.end.isoformat()}){where}"


def change_impacts(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    slos: list[SLO],
    rules: Rules,
    keys: KeyRing,
    *,
    environment: str | None = None,
    half_width: timedelta = HALF_WIDTH,
    correction: str = DEFAULT_CORRECTION,
) -> list[ChangeImpact]:
    """Every change made in ``window``, assessed as one family and ranked (see :func:`rank`).

    Budget shares are of the SLO budgets of the compliance windows ending at the window's end.
    """
    _check(correction)  # before the costly part
    reviews = review_changes(cursor, window, rules, keys, environment=environment)
    impacts = assess(cursor, reviews, slos, until=window.end, half_width=half_width)
    judge(impacts, correction, family_name(window, environment))
    return rank(impacts)
