"""Tail-only latency regressions on a hand-built store: found, and pure noise in the tail not.

Service ``pay`` answers every 12 s with log-normal latency (median 60 ms); after its change 7 %
of the requests take a slow path 3.2 times longer: the median moves by a few per cent, p95 and
p99 by a third or more, and the share over the 140 ms latency SLO goes from 0.3 % to about 6 %.
Three ``calm`` services change too, with the same distribution before and after. 900 spans a
side: every span is in the latency sample, so the expected percentiles are numpy's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.governance import load_rules
from analytics.impact import change_impacts
from analytics.slo import parse_slo
from analytics.windows import TimeWindow
from contracts.signing import KeyRing
from tests.analytics.helpers import LazyModule, add_change, add_decisions, add_spans

stats = LazyModule("scipy.stats")

T0 = datetime(2026, 11, 16, tzinfo=UTC)
CHANGE_AT = T0 + timedelta(hours=3, seconds=30)
EVERY = timedelta(seconds=12)
SIDE = 900
CALM = ("calm-1", "calm-2", "calm-3")
SLOS = [
    parse_slo({"name": f"{s}-latency", "service": s, "sli": "latency", "threshold_ms": 140,
               "objective": 0.95}, "test")
    for s in ("pay", *CALM)
]  # fmt: skip


def _durations(rng: np.random.Generator, slow_share: float) -> list[float]:
    values = rng.lognormal(np.log(60.0), 0.3, SIDE)
    slow = rng.random(SIDE) < slow_share
    values[slow] *= 3.2
    return [float(v) for v in values]


@pytest.fixture
def samples(tmp_path, store_maker):
    """The store, and each service's before and after durations."""
    store = store_maker.new(tmp_path)
    # the data runs to 07:00, so that both windows are the full three hours
    add_spans(store, service="clock", start=T0, every=timedelta(minutes=10), count=43)
    rng = np.random.default_rng(2026)
    drawn = {}
    for number, service in enumerate(("pay", *CALM)):
        before = _durations(rng, 0.0)
        after = _durations(rng, 0.07 if service == "pay" else 0.0)
        drawn[service] = (np.array(before), np.array(after))
        add_spans(store, service=service, start=T0, every=EVERY, count=SIDE, duration_ms=before)
        add_spans(store, service=service, start=T0 + timedelta(hours=3, minutes=1), every=EVERY,
                  count=SIDE, duration_ms=after)  # fmt: skip
        flag = f"flag-{service}"
        add_decisions(store, flag=flag, version="v1", service=service,
                      times=[T0 + timedelta(hours=1), T0 + timedelta(hours=4)])  # fmt: skip
        attributes = {
            "policy.change.id": f"chg-{service}", "feature_flag.key": flag,
            "feature_flag.version": "v2", "policy.module": "release",
            "policy.change.actor": "alice@example.com", "deployment.environment.name": "prod",
        }  # fmt: skip
        add_change(store, attributes, CHANGE_AT, request_id=number)
    return store, drawn


def _impacts(store):
    found = change_impacts(
        store.cursor(), TimeWindow(T0, T0 + timedelta(hours=7)), SLOS, load_rules(), KeyRing({})
    )
    return {i.change.change_id: i for i in found}


def test_a_tail_only_regression_is_found(samples):
    store, drawn = samples
    pay = _impacts(store)["chg-pay"]
    effects = {e.metric: e for e in pay.effects}
    assert pay.verdict == "regression" and pay.rank == 1
    counted = {m for m, e in effects.items() if e.counts and e.worse}
    assert counted == {"latency:p95", "latency:p99", "budget:pay-latency"}
    median = effects["latency"]
    assert not median.counts  # the middle barely moved: under the 10 % floor
    assert median.relative_change < 0.1
    before, after = drawn["pay"]
    for name, q in (("p95", 0.95), ("p99", 0.99)):
        tail = effects[f"latency:{name}"].test
        assert tail.before == pytest.approx(np.quantile(before, q))
        assert tail.after == pytest.approx(np.quantile(after, q))
        assert tail.difference / tail.before > 0.25
        assert tail.ci_low is not None and tail.ci_low > 0  # the interval excludes no change
    budget = effects["budget:pay-latency"]
    assert budget.burn_rates()[1] > 1.0  # more than 5 % of the requests over 140 ms


def test_every_latency_comparison_shows_the_percentiles_with_intervals(samples):
    store, drawn = samples
    pay = _impacts(store)["chg-pay"].as_dict()
    latency = next(e for e in pay["effects"] if e["metric"] == "latency")
    before, after = drawn["pay"]
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        row = latency["percentiles"][name]
        assert row["before"]["value"] == pytest.approx(np.quantile(before, q))
        assert row["after"]["value"] == pytest.approx(np.quantile(after, q))
        low, high = row["before"]["ci95"]
        assert low <= row["before"]["value"] <= high
        # the exact interval: the order statistics at the binomial ranks l and u (1-based)
        # with P(B < l) < 2.5 % and P(B >= u) <= 2.5 %, B ~ Bin(900, q)
        ordered = np.sort(before)
        lower = int(stats.binom.ppf(0.025, SIDE, q))
        upper = int(stats.binom.ppf(0.975, SIDE, q)) + 1
        assert stats.binom.cdf(upper - 1, SIDE, q) - stats.binom.cdf(lower - 1, SIDE, q) >= 0.95
        assert (low, high) == (ordered[lower - 1], ordered[upper - 1])


def test_pure_noise_in_the_tail_is_not_a_regression(samples):
    store, _ = samples
    found = _impacts(store)
    for service in CALM:
        calm = found[f"chg-{service}"]
        assert calm.verdict == "no detectable effect", service
        assert {e.metric for e in calm.effects} >= {"latency", "latency:p95", "latency:p99"}
        assert not any(e.counts for e in calm.effects)
