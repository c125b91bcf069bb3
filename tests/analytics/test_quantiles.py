"""Percentiles with exact intervals and Mood's quantile test, against scipy and brute force."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.quantiles import (
    enough_for,
    quantile_interval,
    quantile_test,
    quantile_tests,
    sorted_quantile,
)
from analytics.stats import mann_whitney, normal_p_value
from tests.analytics.helpers import LazyModule

stats = LazyModule("scipy.stats")


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_quantile_and_its_interval_by_hand(q):
    values = np.sort(np.random.default_rng(3).lognormal(4, 0.5, 700))
    assert sorted_quantile(values, q) == pytest.approx(np.quantile(values, q))
    low, high = quantile_interval(values, q)
    # ranks from the binomial distribution of how many values lie under the true quantile
    lower = int(stats.binom.ppf(0.025, 700, q))
    upper = int(stats.binom.ppf(0.975, 700, q)) + 1
    assert (low, high) == (values[lower - 1], values[upper - 1])
    assert stats.binom.cdf(upper - 1, 700, q) - stats.binom.cdf(lower - 1, 700, q) >= 0.95


def test_an_interval_the_sample_cannot_bound_is_open():
    """p99 of 100 values has no upper bound at 95 %."""
    low, high = quantile_interval(np.arange(100.0), 0.99)
    assert low is not None and high is None
    assert not enough_for(0.99, 100, 1000) and enough_for(0.95, 100, 100)


def test_the_interval_covers_the_true_percentile_95_times_in_100():
    rng = np.random.default_rng(7)
    true_p95 = float(np.exp(4 + 0.4 * stats.norm.ppf(0.95)))
    covered = 0
    for _ in range(1000):
        low, high = quantile_interval(np.sort(rng.lognormal(4, 0.4, 400)), 0.95)
        covered += low <= true_p95 < high
    assert 0.935 <= covered / 1000 <= 0.975


def test_mood_quantile_test_is_the_chi_square_of_the_two_by_two_table():
    rng = np.random.default_rng(11)
    before, after = rng.lognormal(4, 0.4, 500), rng.lognormal(4.05, 0.45, 600)
    test = quantile_test(before, after, 0.95)
    threshold = np.quantile(np.concatenate([before, after]), 0.95)
    assert test.threshold == pytest.approx(threshold)
    table = [[(before > threshold).sum(), (before <= threshold).sum()],
             [(after > threshold).sum(), (after <= threshold).sum()]]  # fmt: skip
    assert (test.above_before, test.above_after) == (table[0][0], table[1][0])
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    assert test.z**2 == pytest.approx(chi2)
    assert test.p_value == pytest.approx(p_value)
    assert test.before == pytest.approx(np.quantile(before, 0.95))
    assert [t.quantile for t in quantile_tests(before, after)] == [0.5, 0.95, 0.99]


@pytest.mark.parametrize("q", [0.95, 0.99])
def test_mood_quantile_test_holds_its_level_under_the_null(q):
    """Same distribution on both sides: about 5 % of 2,000 tests reject at 0.05."""
    rng = np.random.default_rng(int(q * 100))
    rejected = sum(
        quantile_test(rng.lognormal(4, 0.4, 600), rng.lognormal(4, 0.4, 600), q).p_value < 0.05
        for _ in range(2000)
    )
    assert 0.03 <= rejected / 2000 <= 0.065


def test_mann_whitney_equals_scipy_with_and_without_ties():
    rng = np.random.default_rng(5)
    for rounding in (None, -1):
        a, b = rng.lognormal(4, 0.4, 300), rng.lognormal(4.1, 0.4, 250)
        if rounding is not None:
            a, b = np.round(a, rounding), np.round(b, rounding)
        u, p_value = mann_whitney(np.sort(a), np.sort(b))
        reference = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
        assert u == reference.statistic
        assert p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_normal_p_value_is_scipys():
    for z in (0.0, 1.0, -1.96, 5.0, 12.0):
        assert normal_p_value(z) == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
