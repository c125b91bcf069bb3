"""The tests behind the verdicts, against scipy and hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analytics.stats import holm, location_shift, two_proportion


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
