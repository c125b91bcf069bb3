"""The statistical tests the analytics use, each returning the figures a report shows.

Written against the textbook definitions; the tests compare them with scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95 %


def normal_p_value(z: float) -> float:
    """Two-sided p-value of a standard normal statistic: ``2 * (1 - Phi(|z|))``.

    ``erfc`` gives it directly and exactly in the tail; scipy's ``norm.sf`` gives the same
    figure at about a hundred times the cost per call, which a page of hundreds of tests pays.
    """
    return math.erfc(abs(z) / math.sqrt(2))


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


Z_80_POWER = 0.8416212335729143  # one-sided quantile for 80 % power


def minimum_detectable_difference(
    rate: float, n1: int, n2: int, *, z_alpha: float = Z_95, z_power: float = Z_80_POWER
) -> float | None:
    """The smallest difference of proportions a two-sided 5 % test detects with 80 % power.

    Normal approximation around a common ``rate``: ``(z_a + z_b) * sqrt(p(1-p)(1/n1 + 1/n2))``.
    Reported next to every shift so that "no significant change" comes with how small a change
    could have been seen. None without observations on both sides.
    """
    if n1 <= 0 or n2 <= 0:
        return None
    return (z_alpha + z_power) * math.sqrt(rate * (1 - rate) * (1 / n1 + 1 / n2))


def sample_size_per_group(
    rate: float, difference: float, *, z_alpha: float = Z_95, z_power: float = Z_80_POWER
) -> int:
    """Subjects needed on each side to detect ``rate`` → ``rate + difference`` (5 %, 80 %).

    The textbook formula for two proportions with equal groups (Fleiss, without continuity
    correction): ``(z_a sqrt(2 p̄ q̄) + z_b sqrt(p1 q1 + p2 q2))² / d²``.
    """
    if difference == 0:
        raise ValueError("a difference of 0 needs an infinite sample")
    p1, p2 = rate, rate + difference
    if not (0 <= p1 <= 1 and 0 <= p2 <= 1):
        raise ValueError(f"rates {p1} and {p2} must both lie in [0, 1]")
    mean = (p1 + p2) / 2
    top = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil(top**2 / difference**2)


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
        p_value = normal_p_value(z)
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
    by the normal approximation of U's null distribution (Hollander & Wolfe's method). The
    order statistics are selected without forming the ``n * m`` differences (see
    :func:`pairwise_difference_quantile`), so a change's comparison costs about a millisecond.
    """
    n, m = len(before), len(after)
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one observation")
    a = np.sort(np.asarray(after, dtype=float))
    b = np.sort(np.asarray(before, dtype=float))
    u, p_value = mann_whitney(a, b)
    count = n * m
    k = max(0, math.floor(count / 2 - Z_95 * math.sqrt(n * m * (n + m + 1) / 12)))
    low_middle, high_middle = (count - 1) // 2, count // 2
    shift = (
        pairwise_difference_quantile(a, b, low_middle)
        + pairwise_difference_quantile(a, b, high_middle)
    ) / 2
    return ShiftTest(
        n, m, u, p_value, float(shift),
        pairwise_difference_quantile(a, b, k), pairwise_difference_quantile(a, b, count - 1 - k),
        float(np.median(b)), float(np.median(a)),
    )  # fmt: skip


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """U of sorted ``a`` against sorted ``b`` and its two-sided asymptotic p-value.

    The figures of ``scipy.stats.mannwhitneyu(a, b, method="asymptotic")`` (tie-corrected
    variance, continuity correction), counted with binary searches in the sorted samples
    instead of ranking the pooled one: ``U = #(a > b) + #(a = b) / 2`` over all pairs. scipy's
    wrapper costs a few milliseconds a call, which a page of hundreds of changes notices.
    """
    m, n = len(a), len(b)
    below = np.searchsorted(b, a, side="left")
    at_or_below = np.searchsorted(b, a, side="right")
    u = float(below.sum() + (at_or_below - below).sum() / 2)
    pooled = np.sort(np.concatenate([a, b]))
    edges = np.flatnonzero(np.diff(pooled)) + 1
    ties = np.diff(np.concatenate([[0], edges, [len(pooled)]]))
    total = m + n
    tie_term = float(np.sum(ties.astype(float) ** 3 - ties))
    variance = m * n / 12 * ((total + 1) - tie_term / (total * (total - 1) if total > 1 else 1))
    if variance <= 0:
        return u, 1.0
    z = (max(u, m * n - u) - m * n / 2 - 0.5) / math.sqrt(variance)
    return u, min(1.0, math.erfc(z / math.sqrt(2)))


def _at_most(a: np.ndarray, b: np.ndarray, d: float) -> int:
    """How many pairwise differences ``a[j] - b[i]`` are <= ``d`` (a, b sorted)."""
    # a[j] - b[i] <= d  <=>  b[i] >= a[j] - d
    return int(len(a) * len(b) - np.searchsorted(b, a - d, side="left").sum())


def pairwise_difference_quantile(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """The ``k``-th smallest (0-based) of all ``a[j] - b[i]``, for sorted ``a`` and ``b``.

    Bisects on the value, counting the differences under a candidate with one binary search
    per element of ``a`` (O((n + m) log n) per step), until few differences remain between
    the bounds; those are then listed and the exact one selected. Same answer as sorting the
    ``n * m`` differences, in a fraction of the time and memory.
    """
    total = len(a) * len(b)
    if not 0 <= k < total:
        raise ValueError(f"rank {k} outside 0..{total - 1}")
    lo = float(a[0] - b[-1])  # the smallest difference
    if k == 0:
        return lo
    hi = float(a[-1] - b[0])  # the largest difference
    # bounds a margin outside every difference, so that rounding in a - d cannot matter:
    # at_most(lo) = 0 and at_most(hi) = total
    lo -= max(1.0, abs(lo))
    hi += max(1.0, abs(hi))
    # invariant: at_most(lo) = below <= k < at_most(hi), so the answer lies in (lo, hi]
    below = _at_most(a, b, lo)
    limit = 4 * (len(a) + len(b))
    if total > limit:
        # narrow the bracket first with the quantiles of a fixed pseudo-random sample of
        # differences around rank k (a few standard errors either side)
        rng = np.random.default_rng(len(a) * 7919 + len(b))
        size = limit
        sample = np.sort(a[rng.integers(0, len(a), size)] - b[rng.integers(0, len(b), size)])
        q = k / total
        spread = 4 * math.sqrt(size * q * (1 - q)) + 2
        low_at, high_at = math.floor(q * size - spread), math.ceil(q * size + spread)
        if low_at >= 0:
            candidate = float(sample[low_at])
            at_candidate = _at_most(a, b, candidate)
            if at_candidate <= k:
                lo, below = candidate, at_candidate
        if high_at < size:
            candidate = float(sample[high_at])
            if _at_most(a, b, candidate) > k:
                hi = candidate
    for _ in range(200):
        if _at_most(a, b, hi) - below <= limit:
            break
        mid = lo + (hi - lo) / 2
        if not lo < mid < hi:
            break  # adjacent floats: every remaining difference is the same value
        at_mid = _at_most(a, b, mid)
        if at_mid > k:
            hi = mid
        else:
            lo, below = mid, at_mid
    # list the differences in (lo, hi]: for each a[j], the b[i] in [a[j] - hi, a[j] - lo)
    start = np.searchsorted(b, a - hi, side="left")
    stop = np.searchsorted(b, a - lo, side="left")
    counts = stop - start
    rows = np.repeat(np.arange(len(a)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    values = a[rows] - b[np.repeat(start, counts) + offsets]
    return float(np.partition(values, k - below)[k - below])


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


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (step-up, monotone, capped at 1).

    Controls the false discovery rate rather than the family-wise error rate: less strict than
    :func:`holm` when many metrics are compared at once.
    """
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i], reverse=True)
    adjusted = [1.0] * count
    running = 1.0
    for position, index in enumerate(order):
        rank = count - position  # 1-based rank in ascending order
        running = min(running, p_values[index] * count / rank)
        adjusted[index] = min(1.0, running)
    return adjusted


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}
