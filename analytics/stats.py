"""The statistical tests the analytics use, each returning the figures a report shows.

Written against the textbook definitions; the tests compare them with scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

Z_95 = 1.959963984540054  # two-sided 95 %


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """Two-proportion z test of ``after`` against ``before``."""

    successes_before: int
    n_before: int
    successes_after: int
    n_after: int
    difference: float  # p_after - p_before
    ci_low: float  # 95 % Wald interval of the difference (unpooled)
    ci_high: float
    z: float
    p_value: float

    @property
    def rate_before(self) -> float:
        return self.successes_before / self.n_before

    @property
    def rate_after(self) -> float:
        return self.successes_after / self.n_after

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": {"successes": self.successes_before, "n": self.n_before,
                       "rate": self.rate_before},
            "after": {"successes": self.successes_after, "n": self.n_after,
                      "rate": self.rate_after},
            "difference": self.difference,
            "ci95": [self.ci_low, self.ci_high],
            "z": self.z,
            "p_value": self.p_value,
        }  # fmt: skip


def two_proportion(x1: int, n1: int, x2: int, n2: int) -> ProportionTest:
    """z test with the pooled standard error; interval with the unpooled one."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    difference = p2 - p1
    if se_pooled == 0:
        z, p_value = 0.0, 1.0
    else:
        z = difference / se_pooled
        p_value = float(2 * stats.norm.sf(abs(z)))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return ProportionTest(
        x1, n1, x2, n2, difference, difference - Z_95 * se, difference + Z_95 * se, z, p_value
    )


@dataclass(frozen=True, slots=True)
class ShiftTest:
    """Mann–Whitney U test with the Hodges–Lehmann shift (after - before) and its interval."""

    n_before: int
    n_after: int
    u: float
    p_value: float
    shift: float
    ci_low: float
    ci_high: float
    median_before: float
    median_after: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_before": self.n_before,
            "n_after": self.n_after,
            "median_before": self.median_before,
            "median_after": self.median_after,
            "u": self.u,
            "p_value": self.p_value,
            "hodges_lehmann_shift": self.shift,
            "ci95": [self.ci_low, self.ci_high],
        }


def location_shift(before: np.ndarray, after: np.ndarray) -> ShiftTest:
    """Two-sided Mann–Whitney U; HL shift = median of all pairwise ``after - before``.

    The 95 % interval takes the order statistics of the pairwise differences at the ranks given
    by the normal approximation of U's null distribution (Hollander & Wolfe's method).
    """
    n, m = len(before), len(after)
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one observation")
    result = stats.mannwhitneyu(after, before, alternative="two-sided", method="asymptotic")
    differences = np.subtract.outer(after, before).ravel()
    count = len(differences)
    k = max(0, math.floor(n * m / 2 - Z_95 * math.sqrt(n * m * (n + m + 1) / 12)))
    middle = ((count - 1) // 2, count // 2)
    # only four order statistics are needed: select them instead of sorting n*m values
    picked = np.partition(differences, sorted({k, count - 1 - k, *middle}))
    shift = float((picked[middle[0]] + picked[middle[1]]) / 2)
    low = float(picked[k])
    high = float(picked[count - 1 - k])
    return ShiftTest(
        n, m, float(result.statistic), float(result.pvalue), shift, low, high,
        float(np.median(before)), float(np.median(after)),
    )  # fmt: skip


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    count = len(p_values)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
