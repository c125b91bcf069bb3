"""Percentiles of two samples with distribution-free intervals, and the tail test between them.

For a sample of ``n`` values and a quantile ``q``:

- the estimate is the sample quantile with linear interpolation (numpy's default, and DuckDB's
  ``quantile_cont``);
- its 95 % interval is exact and distribution-free: the order statistics ``x(l)`` and ``x(u)``
  with ``l`` and ``u`` taken from the binomial distribution of how many of ``n`` values lie under
  the true quantile (``Bin(n, q)``), so that the interval holds it with probability >= 95 %
  whatever the distribution. When the sample is too small to bound a side (e.g. p99 of 100
  values has no upper bound), that bound is None.

Between two samples (before, after) at quantile ``q`` (:func:`quantile_test`):

- the difference of the two estimates, with an approximate 95 % interval whose standard error
  is read off the two exact intervals (each interval's width / 2 x 1.96, combined in quadrature);
- Mood's quantile test (the median test generalised to any quantile): the values of both
  samples above the pooled sample's ``q``-quantile are counted per side and compared with a
  two-proportion z test. Its null hypothesis: both sides put the same share of their values
  above that threshold, as they do when both come from one distribution. It needs at least
  :data:`MIN_EXCEEDANCES` values expected above the threshold on each side
  (``n (1 - q) >= 5``: 100 values for p95, 500 for p99).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.stats import Z_80_POWER, Z_95, two_proportion

QUANTILES = (0.5, 0.95, 0.99)
"""The percentiles every latency comparison reports."""
TAIL_QUANTILES = (0.95, 0.99)
"""The percentiles tested as effects of their own (the median has the Mann–Whitney test)."""
MIN_EXCEEDANCES = 5


def label(q: float) -> str:
    """``0.95`` → ``"p95"``."""
    return f"p{round(q * 100):d}"


@functools.lru_cache(maxsize=4096)
def _ranks(n: int, q: float) -> tuple[int, int]:
    """1-based ranks (l, u) of the exact 95 % interval (see :func:`quantile_interval`)."""
    # imported here: scipy.stats is the costliest import of `flaglens serve`, whose periodic
    # rounds may never compare a percentile
    from scipy import stats

    cdf = stats.binom.cdf(np.arange(n + 1), n, q)  # P(B <= k), k = 0..n
    lower = int(np.searchsorted(cdf, 0.025, side="left"))  # smallest k: P(B <= k) >= 2.5 %
    upper = int(np.searchsorted(cdf, 0.975, side="left")) + 1  # smallest k: P(B >= k) <= 2.5 %
    return lower, upper


def quantile_interval(values: np.ndarray, q: float) -> tuple[float | None, float | None]:
    """The exact distribution-free 95 % interval of the ``q``-quantile of sorted ``values``.

    With ``B ~ Bin(n, q)`` the number of values under the true quantile,
    ``P(x(l) <= quantile < x(u)) = P(l <= B <= u - 1)`` (1-based order statistics): ``l`` is
    the largest rank with ``P(B <= l - 1) < 2.5 %`` and ``u`` the smallest with
    ``P(B >= u) <= 2.5 %``. A bound whose rank falls outside the sample is None.
    """
    n = len(values)
    lower_rank, upper_rank = _ranks(n, q)
    low = float(values[lower_rank - 1]) if lower_rank >= 1 else None
    high = float(values[upper_rank - 1]) if upper_rank <= n else None
    return low, high


def sorted_quantile(values: np.ndarray, q: float) -> float:
    """The ``q``-quantile of sorted ``values``, interpolated linearly (numpy's default)."""
    position = (len(values) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(values) - 1)
    return float(values[below] + (position - below) * (values[above] - values[below]))


def _se(low: float | None, high: float | None) -> float | None:
    return None if low is None or high is None else (high - low) / (2 * Z_95)


@dataclass(frozen=True, slots=True)
class QuantileTest:
    """One quantile of two samples (before, after): estimates, intervals and Mood's test."""

    quantile: float
    n_before: int
    n_after: int
    before: float
    before_low: float | None
    before_high: float | None
    after: float
    after_low: float | None
    after_high: float | None
    threshold: float  # the pooled sample's quantile
    above_before: int  # values above the threshold, per side
    above_after: int
    z: float
    p_value: float

    @property
    def difference(self) -> float:
        return self.after - self.before

    @property
    def standard_error(self) -> float | None:
        """Of the difference, from the two exact intervals (None when one is unbounded)."""
        before = _se(self.before_low, self.before_high)
        after = _se(self.after_low, self.after_high)
        if before is None or after is None:
            return None
        return math.sqrt(before**2 + after**2)

    @property
    def ci_low(self) -> float | None:
        se = self.standard_error
        return None if se is None else self.difference - Z_95 * se

    @property
    def ci_high(self) -> float | None:
        se = self.standard_error
        return None if se is None else self.difference + Z_95 * se

    @property
    def detectable_difference(self) -> float | None:
        """The difference a 5 % two-sided test would detect with 80 % power at this error."""
        se = self.standard_error
        return None if se is None else (Z_95 + Z_80_POWER) * se

    def percentiles(self) -> dict[str, Any]:
        """Before and after, each with its interval (the part every latency comparison shows)."""
        return {
            "before": {"value": self.before, "ci95": [self.before_low, self.before_high],
                       "n": self.n_before},
            "after": {"value": self.after, "ci95": [self.after_low, self.after_high],
                      "n": self.n_after},
            "difference": self.difference,
            "ci95": [self.ci_low, self.ci_high],
        }  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "quantile": self.quantile,
            **self.percentiles(),
            "threshold": self.threshold,
            "above_threshold": {"before": self.above_before, "after": self.above_after},
            "z": self.z,
            "p_value": self.p_value,
        }


def enough_for(q: float, n_before: int, n_after: int) -> bool:
    """Whether Mood's test at ``q`` has enough values above the threshold on both sides."""
    return min(n_before, n_after) * (1 - q) >= MIN_EXCEEDANCES


def quantile_test(before: np.ndarray, after: np.ndarray, q: float) -> QuantileTest:
    """Compare the ``q``-quantiles of two samples (see the module docstring)."""
    return quantile_tests(before, after, (q,))[0]


def quantile_tests(
    before: np.ndarray, after: np.ndarray, quantiles: tuple[float, ...] = QUANTILES
) -> tuple[QuantileTest, ...]:
    """:func:`quantile_test` at each of ``quantiles``, sorting the samples once."""
    if len(before) == 0 or len(after) == 0:
        raise ValueError("both samples need at least one observation")
    b = np.sort(np.asarray(before, dtype=float))
    a = np.sort(np.asarray(after, dtype=float))
    pooled = np.sort(np.concatenate([b, a]))
    found = []
    for q in quantiles:
        threshold = sorted_quantile(pooled, q)
        above_before = int(len(b) - np.searchsorted(b, threshold, side="right"))
        above_after = int(len(a) - np.searchsorted(a, threshold, side="right"))
        test = two_proportion(above_before, len(b), above_after, len(a))
        found.append(
            QuantileTest(
                q, len(b), len(a), sorted_quantile(b, q), *quantile_interval(b, q),
                sorted_quantile(a, q), *quantile_interval(a, q), threshold, above_before,
                above_after, test.z, test.p_value,
            )
        )  # fmt: skip
    return tuple(found)
