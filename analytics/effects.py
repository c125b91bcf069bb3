"""One compared metric of one service around a change, and when it counts in the verdict.

An effect *counts* when it is **significant** (its p-value, adjusted over the whole family of
tests ranked together, is below :data:`ALPHA`) and **meaningful** (its estimate is at least
the *minimum effect*). The minimum effect is the larger of a fixed floor (the smallest change
worth an SRE's attention) and the *detectable effect*: the change this comparison could detect
with 80 % power in a 5 % two-sided test at its sample sizes. So a comparison of few subjects
needs a larger effect than one of many, and an estimate inside the sampling noise never counts
however its p-value fell. The metrics:

=================  ===========================  ===========================================
metric             estimate                     floor
=================  ===========================  ===========================================
``error_rate``     after - before, share        0.5 percentage points
``latency``        Hodges–Lehmann shift, ms     10 % of the median before
``latency:p95``    p95 after - p95 before, ms   10 % of the p95 before (same for p99)
``engagement:C``   after - before, share        3 percentage points
``budget:S``       after - before, bad share    a tenth of the SLO's error budget, and the
                                                after window burning faster than the SLO
                                                allows (burn rate > 1)
=================  ===========================  ===========================================

*Worse* is more errors, slower, less engagement, more bad events; an estimate of exactly 0 has
no direction and never counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from analytics.quantiles import QuantileTest, label
from analytics.stats import (
    CORRECTIONS,
    Z_80_POWER,
    Z_95,
    ProportionTest,
    ShiftTest,
    minimum_detectable_difference,
)

ALPHA = 0.05
MIN_ERROR_RATE_CHANGE = 0.005  # absolute: half a percentage point
MIN_LATENCY_SHIFT = 0.10  # Hodges–Lehmann shift / median before
MIN_TAIL_CHANGE = 0.10  # percentile difference / percentile before
MIN_ENGAGEMENT_CHANGE = 0.03  # absolute: three percentage points
MIN_BUDGET_CHANGE = 0.10  # bad share after - before, as a share of the error budget (1 - o)

Direction = Literal["worse", "better", "none"]
Test = ProportionTest | ShiftTest | QuantileTest


@dataclass(slots=True)
class Effect:
    """One compared metric of one service (see the module docstring)."""

    service: str
    metric: str  # 'error_rate' | 'latency' | 'latency:p95' | 'engagement:<cohort>' | 'budget:<slo>'
    test: Test
    percentiles: tuple[QuantileTest, ...] = ()  # 'latency': p50, p95, p99 before and after
    error_budget: float | None = None  # 'budget:': the SLO's allowed bad share (1 - objective)
    confounded_with: tuple[str, ...] = ()  # other changes compared together on this service
    same_as: str | None = None  # the metric whose test this one is (adjusted as one)
    p_adjusted: float = 1.0
    correction: str = "bh"
    family: str = ""

    @property
    def kind(self) -> str:
        return self.metric.split(":", 1)[0]

    @property
    def estimate(self) -> float:
        test = self.test
        if isinstance(test, ShiftTest):
            return test.shift
        return test.difference

    @property
    def baseline(self) -> float:
        """The before value the estimate is relative to (never 0)."""
        test = self.test
        if isinstance(test, ShiftTest):
            return max(test.median_before, 1e-9)
        if isinstance(test, QuantileTest):
            return max(test.before, 1e-9)
        return test.rate_before if test.rate_before > 0 else 1.0 / test.n_before

    @property
    def direction(self) -> Direction:
        estimate = self.estimate
        if estimate == 0:
            return "none"
        up_is_worse = self.kind != "engagement"
        return "worse" if (estimate > 0) == up_is_worse else "better"

    @property
    def worse(self) -> bool:
        return self.direction == "worse"

    @property
    def detectable_effect(self) -> float | None:
        """The smallest estimate this comparison detects with 80 % power (5 %, two-sided)."""
        test = self.test
        if isinstance(test, ShiftTest):
            # the interval's half-width is 1.96 standard errors of the shift
            return (Z_95 + Z_80_POWER) * (test.ci_high - test.ci_low) / (2 * Z_95)
        if isinstance(test, QuantileTest):
            return test.detectable_difference
        n = test.n_before + test.n_after
        rate = (test.successes_before + test.successes_after) / n
        return minimum_detectable_difference(rate, test.n_before, test.n_after)

    @property
    def effect_floor(self) -> float:
        """The fixed smallest effect worth reporting for this metric, in the estimate's units."""
        kind = self.kind
        if kind == "error_rate":
            return MIN_ERROR_RATE_CHANGE
        if kind == "engagement":
            return MIN_ENGAGEMENT_CHANGE
        if kind == "budget":
            return MIN_BUDGET_CHANGE * (self.error_budget or 0.0)
        if isinstance(self.test, QuantileTest):
            return MIN_TAIL_CHANGE * self.baseline
        return MIN_LATENCY_SHIFT * self.baseline

    @property
    def minimum_effect(self) -> float:
        """max(floor, detectable effect): what the estimate must reach to count."""
        return max(self.effect_floor, self.detectable_effect or 0.0)

    def burn_rates(self) -> tuple[float, float] | None:
        """Budget effects: the burn rate (bad share / error budget) before and after."""
        if not self.error_budget or not isinstance(self.test, ProportionTest):
            return None
        return (
            self.test.rate_before / self.error_budget,
            self.test.rate_after / self.error_budget,
        )

    @property
    def meaningful(self) -> bool:
        """At least the minimum effect (budgets: and burning faster than allowed after)."""
        if abs(self.estimate) < self.minimum_effect:
            return False
        rates = self.burn_rates()
        return rates is None or not self.worse or rates[1] > 1.0

    @property
    def significant(self) -> bool:
        """Adjusted p below :data:`ALPHA` (the minimum effect plays no part)."""
        return self.p_adjusted < ALPHA

    @property
    def counts(self) -> bool:
        """Significant and meaningful, with a direction: part of the verdict."""
        return self.significant and self.meaningful and self.direction != "none"

    @property
    def relative_change(self) -> float:
        """|estimate| / baseline: 0.38 = the metric moved 38 % of its before value."""
        return abs(self.estimate) / self.baseline

    @property
    def label(self) -> str:
        return f"{self.service} {self.metric}"

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "service": self.service,
            "metric": self.metric,
            "estimate": self.estimate,
            "relative_change": self.relative_change,
            "direction": self.direction,
            "p_adjusted": self.p_adjusted,
            "correction": self.correction,
            "family": self.family,
            "significant": self.significant,
            "effect_floor": self.effect_floor,
            "detectable_effect": self.detectable_effect,
            "minimum_effect": self.minimum_effect,
            "meaningful": self.meaningful,
            "counts": self.counts,
            "confounded_with": list(self.confounded_with),
            "same_test_as": self.same_as,
            **self.test.as_dict(),
        }
        if self.percentiles:
            found["percentiles"] = {label(t.quantile): t.percentiles() for t in self.percentiles}
        rates = self.burn_rates()
        if rates is not None:
            found["burn_rate"] = {"before": rates[0], "after": rates[1]}
        return found


@dataclass(frozen=True, slots=True)
class Family:
    """The tests adjusted together: every effect of every change one call ranks."""

    name: str
    correction: str
    tests: int
    changes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "correction": self.correction,
            "tests": self.tests,
            "changes": self.changes,
            "alpha": ALPHA,
        }


def hypotheses(changes: list[list[Effect]]) -> dict[tuple[int, str, str], list[Effect]]:
    """The distinct hypotheses among the effects of ``changes`` (one list per change): an
    effect that is another's test on the same counts (``same_as``: an availability SLO's budget
    test is its service's error-rate test) is one hypothesis with it, adjusted once."""
    found: dict[tuple[int, str, str], list[Effect]] = {}
    for number, effects in enumerate(changes):
        for effect in effects:
            key = (number, effect.service, effect.same_as or effect.metric)
            found.setdefault(key, []).append(effect)
    return found


def adjust(changes: list[list[Effect]], correction: str) -> int:
    """Adjust the p-values of the effects of ``changes`` (one list per change) together, as one
    family, with ``correction``; returns the number of distinct hypotheses (see
    :func:`hypotheses`)."""
    distinct = hypotheses(changes)
    adjusted = CORRECTIONS[correction]([same[0].test.p_value for same in distinct.values()])
    for same, p in zip(distinct.values(), adjusted, strict=True):
        for effect in same:
            effect.p_adjusted = p
            effect.correction = correction
    return len(distinct)
