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


def test_regression_first_cohort_shift_found_harmless_not_flagged(sample_week):
    stories = sample_week.manifest["stories"]
    with Store.open(sample_week.db, read_only=True) as store:
        impacts = change_impacts(
            store.cursor(), _window(sample_week.manifest), load_slos(), load_rules(),
            KeyRing.load(sample_week.keys),
        )  # fmt: skip
    by_id = {i.change.change_id: i for i in impacts}
    first = impacts[0]
    assert first.change.change_id == stories["regression"]["change_id"]
    assert first.verdict == "regression"
    assert set(first.services) == set(stories["regression"]["services"])
    worse = {(e.service, e.metric) for e in first.effects if e.significant and e.worse}
    for service in stories["regression"]["services"]:
        assert {(service, "error_rate"), (service, "latency")} <= worse
    assert any(b.share_of_budget and b.share_of_budget > 0.1 for b in first.budgets)

    shift = by_id[stories["cohort_shift"]["change_id"]]
    moved = [e for e in shift.effects if e.significant]
    assert [(e.service, e.metric) for e in moved] == [
        (stories["cohort_shift"]["service"], f"engagement:{stories['cohort_shift']['cohort']}")
    ]
    assert not moved[0].worse

    harmless = by_id[stories["harmless"]["change_id"]]
    assert harmless.verdict == "no detectable effect"
    assert harmless.effects  # it was tested, not skipped for lack of data
    assert [i.verdict for i in impacts].count("regression") == 1
