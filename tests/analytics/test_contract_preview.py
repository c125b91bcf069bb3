"""`contracts preview` on the sample week: what proposed contracts would have done to the
stored decisions and the quarantine."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.contract_preview import preview_contracts
from analytics.windows import TimeWindow, parse_instant
from contracts import load_registry
from store.connection import Store
from tests.contracts.copies import (
    copy_contracts,
    new_version,
    privacy_allowing_breaks,
    require_legal_basis,
)
from tests.sample_week import WEEK_END

PRIVACY = "feature_flag.evaluation.privacy"


def allowing_the_breaks(root):
    """Purpose optional, consent 'unknown' allowed: what the sample's contract break sent."""
    directory = copy_contracts(root)
    privacy_allowing_breaks(directory, purpose_optional=True)
    return directory


def privacy_copy(root, change):
    directory = copy_contracts(root)
    new_version(directory, PRIVACY, "1.1.0", "1.2.0", change)
    return directory


@pytest.fixture(scope="module")
def week_store(sample_week):
    store = Store.open(sample_week.db, read_only=True)
    yield store
    store.close()


def week():
    end = parse_instant(WEEK_END)
    return TimeWindow(end - timedelta(days=7), end)


def run(store, registry, **options):
    cursor = store.cursor()
    try:
        return preview_contracts(cursor, registry, week(), **options).as_dict()
    finally:
        cursor.close()


def test_the_sample_contract_breaks_would_pass_under_a_contract_allowing_them(
    week_store, sample_week, tmp_path
):
    """Every quarantined privacy decision of the story (the manifest's decisions_broken) would
    pass; nothing accepted breaks."""
    broken = sample_week.manifest["counts"]["decisions_broken"]
    assert broken > 0
    rv = run(week_store, load_registry(allowing_the_breaks(tmp_path)))
    assert (rv["would_pass"], rv["quarantined_checked"], rv["would_reject"]) == (broken, broken, 0)
    (group,) = [g for g in rv["groups"] if g["would_pass"]]
    assert (group["service"], group["contract"], group["would_pass"]) == (
        "recommendations",
        PRIVACY,
        broken,
    )
    window = week()  # the stored events preview reads: those of [start, end)
    stored = (
        week_store.cursor()
        .execute(
            "SELECT "
            + " + ".join(
                f"(SELECT count(*) FROM {table} WHERE time >= $start AND time < $end)"
                for table in ("decisions", "policy_changes", "engagement")
            ),
            {"start": window.start, "end": window.end},
        )
        .fetchone()[0]
    )
    assert rv["accepted_checked"] == stored


def test_the_shipped_contracts_change_nothing(week_store, sample_week):
    rv = run(week_store, load_registry(), service="recommendations")
    assert (rv["would_pass"], rv["would_reject"]) == (0, 0)
    assert rv["quarantined_checked"] == sample_week.manifest["counts"]["decisions_broken"]


def test_a_tighter_contract_reports_the_accepted_records_it_would_reject(week_store, tmp_path):
    """Requiring privacy.legal_basis rejects every stored privacy decision, with pointers."""
    registry = load_registry(privacy_copy(tmp_path, require_legal_basis))
    rv = run(week_store, registry, examples=2, service="recommendations")
    stored = (
        week_store.cursor()
        .execute(
            "SELECT service_name, count(*) FROM decisions "
            "WHERE policy_module = 'privacy' AND service_name = 'recommendations' GROUP BY 1"
        )
        .fetchall()
    )
    rejecting = {g["service"]: g["would_reject"] for g in rv["groups"] if g["would_reject"]}
    assert rejecting == dict(stored)
    example = next(g for g in rv["groups"] if g["would_reject"])["examples"][0]
    assert example["table"] == "decisions" and example["key"]
    assert {"pointer": "/privacy.legal_basis", "message": "required property is missing",
            "contract": PRIVACY, "version": "1.2.0"} in example["errors"]  # fmt: skip
    assert all(len(g["examples"]) <= 2 for g in rv["groups"])


def test_service_filter(week_store, tmp_path):
    rv = run(week_store, load_registry(allowing_the_breaks(tmp_path)),
             service="checkout")  # fmt: skip
    assert rv["would_pass"] == 0
    assert {g["service"] for g in rv["groups"]} == {"checkout"}
