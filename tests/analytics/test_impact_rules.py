"""The verdict rules of change impact: significance and the smallest effect worth reporting."""

from __future__ import annotations

from analytics.impact import Effect
from analytics.stats import ShiftTest, two_proportion


def _shift(shift: float, median: float = 100.0) -> ShiftTest:
    return ShiftTest(1000, 1000, 0.0, 1e-9, shift, shift - 1, shift + 1, median, median + shift)


def test_a_significant_but_tiny_latency_shift_does_not_count():
    tiny = Effect("api", "latency", _shift(6.0), p_adjusted=0.001)  # 6 % of the median
    large = Effect("api", "latency", _shift(12.0), p_adjusted=0.001)  # 12 %
    assert not tiny.significant and tiny.size == 0.0
    assert large.significant and large.worse and large.size == 0.12


def test_error_rate_and_engagement_directions_and_thresholds():
    errors_up = Effect("api", "error_rate", two_proportion(10, 1000, 60, 1000), p_adjusted=0.0)
    assert errors_up.significant and errors_up.worse
    assert errors_up.size == (0.06 - 0.01) / 0.01
    barely = Effect("api", "error_rate", two_proportion(10, 100000, 400, 100000), p_adjusted=0.0)
    assert not barely.significant  # +0.39 points: below the half-point minimum
    engaged_up = Effect("api", "engagement:beta", two_proportion(30, 100, 50, 100),
                        p_adjusted=0.01)  # fmt: skip
    assert engaged_up.significant and not engaged_up.worse
    not_significant = Effect("api", "engagement:beta", two_proportion(30, 100, 50, 100),
                             p_adjusted=0.2)  # fmt: skip
    assert not not_significant.significant
