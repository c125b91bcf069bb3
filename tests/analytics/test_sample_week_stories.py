"""On the sample week, the analytics find every story of the manifest and nothing else."""

from __future__ import annotations

from datetime import datetime

from analytics.governance import drift, load_rules, unauthorized_mutations
from analytics.impact import change_impacts
from analytics.slo import load_slos
from analytics.windows import TimeWindow
from contracts.signing import KeyRing
from store.connection import Store


def _window(manifest):
    return TimeWindow(
        datetime.fromisoformat(manifest["start"]), datetime.fromisoformat(manifest["end"])
    )


def test_every_unauthorized_mutation_with_its_reason_and_no_other(sample_week):
    stories = sample_week.manifest["stories"]
    with Store.open(sample_week.db, read_only=True) as store:
        found = unauthorized_mutations(
            store.cursor(), _window(sample_week.manifest), load_rules(),
            KeyRing.load(sample_week.keys),
        )  # fmt: skip
    assert {m.change_id: m.reasons for m in found} == {
        bad["change_id"]: (bad["reason"],) for bad in stories["unauthorized"]
    }


def test_the_drift_and_only_the_drift(sample_week):
    truth = sample_week.manifest["stories"]["drift"]
    with Store.open(sample_week.db, read_only=True) as store:
        found = drift(
            store.cursor(), _window(sample_week.manifest), load_rules(),
            KeyRing.load(sample_week.keys),
        )  # fmt: skip
    assert [(d.flag_key, d.environment, d.version) for d in found] == [
        (truth["flag_key"], truth["environment"], truth["version"])
    ]
    assert found[0].count == truth["count"]
    assert list(found[0].services) == truth["services"]
    assert found[0].first_seen.isoformat()[:19] == truth["first_seen"][:19]


def _impacts(sample_week):
    with Store.open(sample_week.db, read_only=True) as store:
        return change_impacts(
            store.cursor(), _window(sample_week.manifest), load_slos(), load_rules(),
            KeyRing.load(sample_week.keys),
        )  # fmt: skip


def test_regression_first_cohort_shift_found_harmless_not_flagged(sample_week):
    stories = sample_week.manifest["stories"]
    impacts = _impacts(sample_week)
    by_id = {i.change.change_id: i for i in impacts}
    first = impacts[0]
    assert first.change.change_id == stories["regression"]["change_id"]
    assert first.verdict == "regression"
    assert set(first.services) == set(stories["regression"]["services"])
    worse = {(e.service, e.metric) for e in first.effects if e.counts and e.worse}
    for service in stories["regression"]["services"]:
        assert {(service, "error_rate"), (service, "latency")} <= worse
    assert any(b.share_of_budget and b.share_of_budget > 0.1 for b in first.budgets)

    shift = by_id[stories["cohort_shift"]["change_id"]]
    moved = [e for e in shift.effects if e.counts]
    assert [(e.service, e.metric) for e in moved] == [
        (stories["cohort_shift"]["service"], f"engagement:{stories['cohort_shift']['cohort']}")
    ]
    assert not moved[0].worse

    harmless = by_id[stories["harmless"]["change_id"]]
    assert harmless.verdict == "no detectable effect"
    assert harmless.effects  # it was tested, not skipped for lack of data
    regressions = {i.change.change_id for i in impacts if i.verdict == "regression"}
    assert regressions == {
        stories["regression"]["change_id"],
        stories["tail_regression"]["change_id"],
    }


def test_the_tail_only_regression_is_found_by_its_tail(sample_week):
    truth = sample_week.manifest["stories"]["tail_regression"]
    tail = {i.change.change_id: i for i in _impacts(sample_week)}[truth["change_id"]]
    assert tail.verdict == truth["verdict"] == "regression"
    counted = {e.label for e in tail.effects if e.counts and e.worse}
    assert set(truth["counted"]) <= counted
    assert not set(truth["not_counted"]) & counted
    latency = next(e for e in tail.effects if e.label == f"{truth['service']} latency")
    p95 = latency.as_dict()["percentiles"]["p95"]
    assert p95["after"]["value"] > 1.25 * p95["before"]["value"]


def test_the_overlapping_pair_blames_only_the_regression(sample_week):
    truth = sample_week.manifest["stories"]["overlapping"]
    by_id = {i.change.change_id: i for i in _impacts(sample_week)}
    harmless, regression = by_id[truth["harmless"]], by_id[truth["regression"]]
    assert harmless.verdict == truth["harmless_verdict"]
    assert harmless.adjusted_for == (truth["regression"],)
    assert regression.verdict == truth["regression_verdict"]
    assert truth["harmless"] in regression.adjusted_for
    for service in truth["services"]:
        assert regression.windows[service].after.end <= harmless.change.time


def test_the_confounded_pair_names_each_other(sample_week):
    truth = sample_week.manifest["stories"]["confounded"]
    by_id = {i.change.change_id: i for i in _impacts(sample_week)}
    first, second = (by_id[c] for c in truth["change_ids"])
    assert first.verdict == second.verdict == truth["verdict"]
    assert first.confounded_with == (second.change.change_id,)
    assert second.confounded_with == (first.change.change_id,)
