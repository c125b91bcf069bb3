"""When an effect counts: significance, the minimum effect (floor or detectable), direction."""

from __future__ import annotations

import pytest

from analytics.effects import Effect, adjust, hypotheses
from analytics.quantiles import QuantileTest
from analytics.stats import ShiftTest, holm, minimum_detectable_difference, two_proportion


def _shift(shift: float, median: float = 100.0, half_width: float = 1.0) -> ShiftTest:
    return ShiftTest(
        1000, 1000, 0.0, 1e-9, shift, shift - half_width, shift + half_width, median,
        median + shift,
    )  # fmt: skip


def test_a_significant_but_tiny_latency_shift_does_not_count():
    tiny = Effect("api", "latency", _shift(6.0), p_adjusted=0.001)  # 6 % of the median
    large = Effect("api", "latency", _shift(12.0), p_adjusted=0.001)  # 12 %
    assert tiny.significant and not tiny.meaningful and not tiny.counts
    assert large.counts and large.worse and large.relative_change == pytest.approx(0.12)


def test_a_shift_inside_the_sampling_noise_needs_more_than_the_floor():
    """The minimum effect is the detectable shift when the interval is wide."""
    noisy = Effect("api", "latency", _shift(12.0, half_width=15.0), p_adjusted=0.001)
    assert noisy.effect_floor == pytest.approx(10.0)
    assert noisy.detectable_effect == pytest.approx((1.959964 + 0.841621) * 15.0 / 1.959964)
    assert noisy.minimum_effect == noisy.detectable_effect > 12.0
    assert noisy.significant and not noisy.counts


def test_error_rate_and_engagement_directions_and_thresholds():
    errors_up = Effect("api", "error_rate", two_proportion(10, 1000, 60, 1000), p_adjusted=0.0)
    assert errors_up.counts and errors_up.worse
    assert errors_up.relative_change == pytest.approx((0.06 - 0.01) / 0.01)
    barely = Effect("api", "error_rate", two_proportion(10, 100000, 400, 100000), p_adjusted=0.0)
    assert barely.significant and not barely.counts  # +0.39 points: below the half-point floor
    engaged_up = Effect("api", "engagement:beta", two_proportion(30, 100, 60, 100),
                        p_adjusted=0.01)  # fmt: skip
    assert engaged_up.counts and engaged_up.direction == "better"
    not_significant = Effect("api", "engagement:beta", two_proportion(30, 100, 60, 100),
                             p_adjusted=0.2)  # fmt: skip
    assert not not_significant.significant and not not_significant.counts


def test_engagement_needs_the_detectable_difference_of_its_sample():
    """+8 points at ~530 subjects a side is under the 80 %-power difference (~8.0 points)."""
    effect = Effect("api", "engagement:c", two_proportion(159, 530, 201, 530), p_adjusted=0.01)
    detectable = minimum_detectable_difference(360 / 1060, 530, 530)
    assert effect.detectable_effect == pytest.approx(detectable)
    assert 0.078 < effect.estimate < detectable
    assert effect.significant and not effect.counts


def test_no_difference_has_no_direction():
    """0/405 against 0/392 is not "better"."""
    same = Effect("api", "engagement:c", two_proportion(0, 405, 0, 392), p_adjusted=0.0)
    assert same.direction == "none" and not same.counts


def test_budget_counts_only_when_burning_faster_than_the_slo_allows():
    """A significant rise in bad events counts once the after window burns the budget."""
    burning = Effect("api", "budget:lat", two_proportion(20, 2000, 140, 2000), error_budget=0.05,
                     p_adjusted=0.0)  # fmt: skip
    assert burning.burn_rates() == pytest.approx((0.2, 1.4))
    assert burning.counts and burning.worse
    within = Effect("api", "budget:lat", two_proportion(20, 2000, 80, 2000), error_budget=0.05,
                    p_adjusted=0.0)  # fmt: skip
    assert within.significant and within.burn_rates()[1] == pytest.approx(0.8)
    assert not within.counts  # 4 % bad after: inside the 5 % budget
    assert burning.as_dict()["burn_rate"] == pytest.approx({"before": 0.2, "after": 1.4})


def test_tail_effects_are_relative_to_the_percentile_before():
    test = QuantileTest(0.95, 1000, 1000, 100.0, 96.0, 104.0, 130.0, 125.0, 136.0, 112.0, 20,
                        80, 6.0, 1e-9)  # fmt: skip
    tail = Effect("api", "latency:p95", test, p_adjusted=1e-8)
    assert tail.estimate == 30.0 and tail.effect_floor == pytest.approx(10.0)
    assert tail.counts and tail.worse and tail.relative_change == pytest.approx(0.3)


def test_an_availability_budget_test_and_the_error_rate_test_are_one_hypothesis():
    """Adjusted once: the family counts it once and both get the same adjusted p."""
    errors = two_proportion(10, 1000, 60, 1000)
    change = [
        Effect("api", "error_rate", errors),
        Effect("api", "budget:avail", errors, error_budget=0.01, same_as="error_rate"),
        Effect("api", "latency", _shift(12.0)),
    ]
    other = [Effect("api", "error_rate", errors)]  # another change: another hypothesis
    assert len(hypotheses([change, other])) == 3
    assert adjust([change, other], "holm") == 3
    expected = holm([errors.p_value, 1e-9, errors.p_value])  # the three distinct p-values
    assert change[0].p_adjusted == change[1].p_adjusted == pytest.approx(expected[0])
    assert change[2].p_adjusted == pytest.approx(expected[1])
    assert {e.correction for e in change} == {"holm"}
