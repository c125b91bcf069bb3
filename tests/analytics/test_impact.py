"""Change impact on a hand-built store: every test statistic and the verdicts, computed here.

One change makes service ``api`` fail and slow down while its cohort engages more; one leaves
service ``calm`` as it was; one reaches a service with too few spans; one comes too early for a
before window. Expected figures come from scipy / numpy on the same rows, not from flaglens.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.governance import load_rules
from analytics.impact import change_impacts, comparison_windows
from analytics.slo import parse_slo
from analytics.windows import TimeWindow
from contracts.signing import KeyRing
from tests.analytics.helpers import (
    LazyModule,
    add_change,
    add_decisions,
    add_engagement,
    add_spans,
)

stats = LazyModule("scipy.stats")

T0 = datetime(2026, 11, 16, tzinfo=UTC)
CHANGE_AT = T0 + timedelta(hours=3, seconds=30)  # mid-minute: 03:00 is the settle gap
EVERY = timedelta(seconds=12)  # 300 spans an hour: 900 per 3-hour side, all of them sampled
SIDE = 900
UNTIL = T0 + timedelta(hours=7)


def _change(n: int, flag: str, at: datetime) -> tuple[dict, datetime]:
    attributes = {
        "policy.change.id": f"chg-{n}", "feature_flag.key": flag, "feature_flag.version": "v2",
        "policy.module": "release", "policy.change.actor": "alice@example.com",
        "deployment.environment.name": "prod", "policy.change.approvers": ["dana@example.com"],
    }  # fmt: skip
    return attributes, at


@pytest.fixture
def store(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    # api: 1 % errors and 100-149 ms before; 5 % errors and 130-179 ms after; every span in
    # the change's own minute fails (and must count on neither side)
    before_ms = [100.0 + i % 50 for i in range(SIDE)]
    after_ms = [130.0 + i % 50 for i in range(SIDE + 10)]
    add_spans(store, service="api", start=T0, every=EVERY, count=SIDE,
              errors={i for i in range(SIDE) if i % 100 == 0}, duration_ms=before_ms)  # fmt: skip
    add_spans(store, service="api", start=T0 + timedelta(hours=3), every=EVERY, count=5,
              errors=set(range(5)), duration_ms=500.0)  # fmt: skip
    add_spans(store, service="api", start=T0 + timedelta(hours=3, minutes=1), every=EVERY,
              count=SIDE + 10, errors={i for i in range(SIDE + 10) if i % 20 == 0},
              duration_ms=after_ms)  # fmt: skip
    # calm: the same before and after
    calm_ms = [80.0 + (i * 7) % 40 for i in range(2 * SIDE + 15)]
    add_spans(store, service="calm", start=T0, every=EVERY, count=2 * SIDE + 15,
              errors={i for i in range(2 * SIDE + 15) if i % 50 == 0},
              duration_ms=calm_ms)  # fmt: skip
    # tiny: 40 spans a side
    add_spans(store, service="tiny", start=T0, every=timedelta(minutes=4), count=95)
    # exposures to flag f on api: u0..u199 before (50 engage), u200..u449 after (125 engage)
    before_subjects = [f"u{i}" for i in range(200)]
    after_subjects = [f"u{i}" for i in range(200, 450)]
    add_decisions(store, flag="f", version="v1", subjects=before_subjects,
                  times=[T0 + timedelta(hours=1)] * 200)  # fmt: skip
    add_decisions(store, flag="f", version="v2", subjects=after_subjects,
                  times=[T0 + timedelta(hours=4)] * 250)  # fmt: skip
    add_engagement(store, subjects=before_subjects[:50], at=T0 + timedelta(hours=2))
    add_engagement(store, subjects=after_subjects[:125], at=T0 + timedelta(hours=5))
    # a subject engaged before but exposed only after does not count as engaged after
    add_engagement(store, subjects=after_subjects[200:], at=T0 + timedelta(hours=2))
    add_decisions(store, flag="g", version="v1", service="calm",
                  times=[T0 + timedelta(hours=2), T0 + timedelta(hours=4)])  # fmt: skip
    add_decisions(store, flag="h", version="v1", service="tiny",
                  times=[T0 + timedelta(hours=2), T0 + timedelta(hours=4)])  # fmt: skip
    for n, (flag, at) in enumerate(
        [("f", CHANGE_AT), ("g", CHANGE_AT), ("h", CHANGE_AT), ("e", T0 + timedelta(minutes=10))]
    ):
        add_change(store, *_change(n, flag, at), request_id=n)
    return store


SLO = parse_slo(
    {"name": "api-availability", "service": "api", "sli": "availability", "objective": 0.99},
    "test",
)


def _bh(p_values):
    order = np.argsort(p_values)
    adjusted, running = [0.0] * len(p_values), 1.0
    for position in reversed(range(len(p_values))):
        index = order[position]
        running = min(running, p_values[index] * len(p_values) / (position + 1))
        adjusted[index] = running
    return adjusted


def _holm(p_values):
    order = np.argsort(p_values)
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _z_test(x1, n1, x2, n2):
    pooled = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * stats.norm.sf(abs(z))


def _family(impacts):
    """Every distinct test of the call: one p-value per hypothesis (an availability budget
    test that is its service's error-rate test counts once)."""
    return [(i.change.change_id, e) for i in impacts for e in i.effects if e.same_as is None]


def test_windows_are_whole_minutes_around_the_change():
    first, last = T0, T0 + timedelta(hours=6, minutes=3)
    before, after = comparison_windows(CHANGE_AT, (first, last), timedelta(hours=24))
    assert before == TimeWindow(T0, T0 + timedelta(hours=3))
    assert after == TimeWindow(
        T0 + timedelta(hours=3, minutes=1), T0 + timedelta(hours=6, minutes=1)
    )
    assert comparison_windows(T0 + timedelta(minutes=10), (first, last)) is None  # < 1 h before


def test_every_figure_of_the_regression(store):
    impacts = change_impacts(
        store.cursor(), TimeWindow(T0, UNTIL), [SLO], load_rules(), KeyRing({})
    )
    regression = impacts[0]
    assert regression.change.change_id == "chg-0" and regression.rank == 1
    assert regression.services == ("api",)
    effects = {e.metric: e for e in regression.effects}
    assert set(effects) == {
        "error_rate", "latency", "latency:p95", "latency:p99", "engagement:c1",
        "budget:api-availability",
    }  # fmt: skip

    errors = effects["error_rate"].test
    assert (errors.successes_before, errors.n_before) == (9, SIDE)  # the gap's 5 failures: out
    assert (errors.successes_after, errors.n_after) == (45, SIDE)  # spans up to 06:01 only
    error_p = _z_test(9, SIDE, 45, SIDE)
    assert errors.p_value == pytest.approx(error_p)
    # the availability SLO's bad events are the failed spans: the same test, one hypothesis
    assert effects["budget:api-availability"].test == errors
    assert effects["budget:api-availability"].same_as == "error_rate"

    latency = effects["latency"].test
    before_ms = np.array([100.0 + i % 50 for i in range(SIDE)])
    after_ms = np.array([130.0 + i % 50 for i in range(SIDE)])
    reference = stats.mannwhitneyu(after_ms, before_ms, alternative="two-sided")
    assert latency.p_value == pytest.approx(reference.pvalue)
    assert latency.shift == float(np.median(np.subtract.outer(after_ms, before_ms)))
    assert latency.median_before == pytest.approx(124.5)
    # every latency comparison carries p50/p95/p99 before and after
    percentiles = effects["latency"].as_dict()["percentiles"]
    assert list(percentiles) == ["p50", "p95", "p99"]
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert percentiles[name]["before"]["value"] == pytest.approx(np.quantile(before_ms, q))
        assert percentiles[name]["after"]["value"] == pytest.approx(np.quantile(after_ms, q))
    p95 = effects["latency:p95"].test
    assert p95.difference == pytest.approx(
        np.quantile(after_ms, 0.95) - np.quantile(before_ms, 0.95)
    )

    engagement = effects["engagement:c1"].test
    assert (engagement.successes_before, engagement.n_before) == (50, 200)
    assert (engagement.successes_after, engagement.n_after) == (125, 250)
    engagement_p = _z_test(50, 200, 125, 250)
    assert engagement.p_value == pytest.approx(engagement_p)

    # the family: every distinct test of every change of the call, Benjamini–Hochberg
    family = _family(impacts)
    expected = _bh([e.test.p_value for _, e in family])
    assert [e.p_adjusted for _, e in family] == pytest.approx(expected)
    assert regression.family.tests == len(family) > len(regression.effects)
    assert regression.family.changes == 4 and regression.family.correction == "bh"
    assert all(e.family == regression.family.name for _, e in family)
    assert regression.verdict == "regression"
    # score: the largest counted effect in the verdict's direction, errors 1 % -> 5 % (x5)
    assert regression.score == pytest.approx((45 / SIDE - 9 / SIDE) / (9 / SIDE))
    assert regression.score_effect == "api error_rate"

    # budget burned in the burn window, 03:01 to the end of the reach (the last span of the
    # environment, 06:16): the after side's 46 failures (index 900 included) of the 28-day
    # budget 1 % x every api span
    (burn,) = regression.budgets
    total_api = SIDE + 5 + SIDE + 10
    assert (burn.window.start, burn.window.end) == (
        T0 + timedelta(hours=3, minutes=1),
        T0 + timedelta(hours=6, minutes=16),
    )
    assert burn.bad == burn.as_dict()["bad_since_change"] == 46 and burn.total == SIDE + 10
    assert burn.share_of_budget == pytest.approx(46 / (0.01 * total_api))
    # beyond the 1 % the before window would have given
    expected = (SIDE + 10) * 9 / SIDE
    assert burn.excess_share_of_budget == pytest.approx((46 - expected) / (0.01 * total_api))


def test_significant_is_the_adjusted_p_value_alone(store):
    """`significant` says adjusted p < 0.05; `counts` adds the minimum effect."""
    impacts = change_impacts(
        store.cursor(), TimeWindow(T0, UNTIL), [SLO], load_rules(), KeyRing({})
    )
    effects = {e.metric: e for e in impacts[0].effects}
    assert all(e.significant == (e.p_adjusted < 0.05) for e in effects.values())
    assert all(e.counts == (e.significant and e.meaningful) for e in effects.values())
    p99 = effects["latency:p99"]
    assert p99.minimum_effect == max(p99.effect_floor, p99.detectable_effect)
    as_json = effects["latency"].as_dict()
    for key in (
        "significant",
        "meaningful",
        "counts",
        "minimum_effect",
        "detectable_effect",
        "effect_floor",
        "correction",
        "family",
        "p_adjusted",
        "estimate",
    ):
        assert key in as_json


def test_harmless_tiny_and_early_changes(store):
    impacts = change_impacts(
        store.cursor(), TimeWindow(T0, UNTIL), [SLO], load_rules(), KeyRing({})
    )
    by_id = {i.change.change_id: i for i in impacts}
    calm = by_id["chg-1"]
    assert calm.verdict == "no detectable effect" and calm.services == ("calm",)
    assert {e.metric for e in calm.effects} == {
        "error_rate",
        "latency",
        "latency:p95",
        "latency:p99",
    }
    assert not any(e.counts for e in calm.effects)
    tiny = by_id["chg-2"]
    assert tiny.verdict == "not enough data" and tiny.services == ("tiny",) and not tiny.effects
    early = by_id["chg-3"]
    assert early.verdict == "not enough data" and early.before is None and early.services == ()
    assert [i.change.change_id for i in impacts] == ["chg-0", "chg-1", "chg-3", "chg-2"]
    assert [i.rank for i in impacts] == [1, 2, 3, 4]


def test_holm_instead_of_benjamini_hochberg(store):
    impacts = change_impacts(
        store.cursor(), TimeWindow(T0, UNTIL), [SLO], load_rules(), KeyRing({}),
        correction="holm",
    )  # fmt: skip
    family = _family(impacts)
    expected = _holm([e.test.p_value for _, e in family])
    assert [e.p_adjusted for _, e in family] == pytest.approx(expected)
    assert impacts[0].as_dict()["correction"] == "holm"
    assert impacts[0].as_dict()["family"]["correction"] == "holm"
    assert {e["correction"] for e in impacts[0].as_dict()["effects"]} == {"holm"}


def test_a_service_without_engagement_events_gets_no_engagement_tests(tmp_path, store_maker):
    """Exposed subjects with no engagement event on either side are no test (0/405 vs 0/392
    said "better")."""
    store = store_maker.new(tmp_path)
    add_spans(store, service="quiet", start=T0, every=EVERY, count=2 * SIDE + 15)
    subjects = [f"q{i}" for i in range(400)]
    add_decisions(store, flag="q", version="v1", service="quiet", subjects=subjects[:200],
                  times=[T0 + timedelta(hours=1)] * 200)  # fmt: skip
    add_decisions(store, flag="q", version="v2", service="quiet", subjects=subjects[200:],
                  times=[T0 + timedelta(hours=4)] * 200)  # fmt: skip
    add_change(store, *_change(9, "q", CHANGE_AT))
    (quiet,) = change_impacts(store.cursor(), TimeWindow(T0, UNTIL), [], load_rules(), KeyRing({}))
    assert quiet.services == ("quiet",)
    assert [e.metric for e in quiet.effects if e.metric.startswith("engagement")] == []
    assert {e.metric for e in quiet.effects} >= {"error_rate", "latency"}
