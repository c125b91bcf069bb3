"""The tests behind the verdicts, against scipy and hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.stats import (
    benjamini_hochberg,
    holm,
    location_shift,
    minimum_detectable_difference,
    pairwise_difference_quantile,
    sample_size_per_group,
    two_proportion,
)
from tests.analytics.helpers import LazyModule

stats = LazyModule("scipy.stats")


def test_two_proportion_by_hand():
    # 30/200 before, 60/200 after: pooled p = 90/400
    result = two_proportion(30, 200, 60, 200)
    pooled = 90 / 400
    z = (0.30 - 0.15) / math.sqrt(pooled * (1 - pooled) * (2 / 200))
    assert result.z == pytest.approx(z)
    assert result.p_value == pytest.approx(2 * (1 - stats.norm.cdf(z)))
    se = math.sqrt(0.15 * 0.85 / 200 + 0.30 * 0.70 / 200)
    assert result.ci_low == pytest.approx(0.15 - 1.959964 * se, abs=1e-6)
    assert result.ci_high == pytest.approx(0.15 + 1.959964 * se, abs=1e-6)


def test_two_proportion_without_variation_is_not_significant():
    assert two_proportion(0, 100, 0, 100).p_value == 1.0
    with pytest.raises(ValueError):
        two_proportion(0, 0, 1, 10)


def test_location_shift_matches_scipy_and_brute_force():
    rng = np.random.default_rng(11)
    before = rng.lognormal(4.0, 0.4, 300)
    after = rng.lognormal(4.0, 0.4, 250) + 15.0
    result = location_shift(before, after)
    reference = stats.mannwhitneyu(after, before, alternative="two-sided", method="asymptotic")
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.u == pytest.approx(reference.statistic)
    pairwise = sorted(a - b for a in after for b in before)
    assert result.shift == pytest.approx(float(np.median(pairwise)))
    assert result.ci_low < 15.0 < result.ci_high  # the true shift is inside the interval
    assert result.ci_low <= result.shift <= result.ci_high


def test_location_shift_of_identical_samples_is_zero():
    sample = np.arange(1.0, 101.0)
    result = location_shift(sample, sample.copy())
    assert result.shift == 0.0
    assert result.p_value == pytest.approx(1.0)


def test_holm_by_hand():
    # sorted: 0.01*4=0.04, 0.02*3=0.06, 0.03*2=0.06 (monotone), 0.5*1=0.5
    assert holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert holm([0.9, 0.8]) == [1.0, 1.0]


@pytest.mark.parametrize("seed", range(6))
def test_pairwise_difference_quantiles_equal_sorting_every_difference(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 120, 2)
    if seed % 2:  # heavy ties, as with durations rounded to whole milliseconds
        a, b = np.sort(rng.integers(0, 6, m).astype(float)), np.sort(rng.integers(0, 6, n) * 1.0)
    else:
        a, b = np.sort(rng.lognormal(4, 1, m)), np.sort(rng.lognormal(4, 1, n))
    every = np.sort(np.subtract.outer(a, b).ravel())
    for k in {0, len(every) // 3, len(every) // 2, len(every) - 1, int(rng.integers(len(every)))}:
        assert pairwise_difference_quantile(a, b, k) == every[k]
    with pytest.raises(ValueError):
        pairwise_difference_quantile(a, b, len(every))


def test_hodges_lehmann_interval_ranks_by_hand():
    rng = np.random.default_rng(5)
    before, after = rng.normal(100, 10, 40), rng.normal(104, 10, 30)
    result = location_shift(before, after)
    every = np.sort(np.subtract.outer(after, before).ravel())
    k = math.floor(40 * 30 / 2 - 1.959964 * math.sqrt(40 * 30 * 71 / 12))
    assert (result.ci_low, result.ci_high) == (every[k], every[len(every) - 1 - k])
    assert result.shift == pytest.approx(np.median(every))


def test_benjamini_hochberg_by_hand():
    # ascending 0.005, 0.01, 0.03, 0.04, 0.2 times 5/rank: 0.025, 0.025, 0.05, 0.05, 0.2
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2, 0.005]) == pytest.approx(
        [0.025, 0.05, 0.05, 0.2, 0.025]
    )
    # step-up: a larger p can pull the smaller ones' adjustment down to its own
    assert benjamini_hochberg([0.04, 0.045]) == pytest.approx([0.045, 0.045])


def test_detectable_difference_and_sample_size_by_hand():
    z_a, z_b = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    assert minimum_detectable_difference(0.3, 400, 600) == pytest.approx(
        (z_a + z_b) * math.sqrt(0.3 * 0.7 * (1 / 400 + 1 / 600))
    )
    assert minimum_detectable_difference(0.3, 0, 10) is None
    # Fleiss: p1 = 0.25, p2 = 0.30
    top = z_a * math.sqrt(2 * 0.275 * 0.725) + z_b * math.sqrt(0.25 * 0.75 + 0.3 * 0.7)
    assert sample_size_per_group(0.25, 0.05) == math.ceil(top**2 / 0.05**2)
    with pytest.raises(ValueError):
        sample_size_per_group(0.25, 0.0)
