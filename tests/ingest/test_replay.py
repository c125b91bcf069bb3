"""Quarantine replay in process: exactly the rows that pass the contracts now are released,
through the writer, once; the quarantine keeps them and quarantine_releases says when and
under which contract version."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from contracts import load_registry
from ingest.auth import Grant
from ingest.limits import Limits
from ingest.pipeline import IngestPipeline, RequestMeta
from ingest.replay import ReplayError, ReplaySelection, replay_quarantine
from store.connection import Store
from store.writer import StoreWriter
from tests.contracts.copies import copy_contracts, privacy_allowing_breaks
from tests.factories import otlp_json_logs, privacy_decision_attributes

PRIVACY = "feature_flag.evaluation.privacy"


def allow_unknown_consent(root):
    """A copy of the shipped contracts whose privacy 1.2.0 allows consent state 'unknown'."""
    directory = copy_contracts(root)
    privacy_allowing_breaks(directory)
    return directory


def ingest(store, writer, records, grant=None):
    pipeline = IngestPipeline(load_registry(), Limits())
    body = json.dumps(otlp_json_logs(records)).encode()
    meta = RequestMeta(writer.next_request_id(), "logs", "http", "json", None, len(body),
                       datetime.now(UTC), grant=grant)  # fmt: skip
    prepared = pipeline.prepare(meta, body, content_type="application/json",
                                content_encoding=None)  # fmt: skip
    writer.submit(prepared.batch).result()


@pytest.fixture
def loaded(tmp_path):
    """A store with 1 accepted privacy decision and 4 quarantined: two with consent 'unknown',
    one without a purpose, one 'unknown' sent with a token that may not write its service."""
    store = Store.open(tmp_path / "q.duckdb")
    writer = StoreWriter(store)
    writer.start()
    ingest(store, writer, [
        privacy_decision_attributes(),
        privacy_decision_attributes(**{"privacy.consent.state": "unknown"}),
        privacy_decision_attributes(**{"privacy.consent.state": "unknown"}),
        privacy_decision_attributes(**{"privacy.purpose": None}),
    ])  # fmt: skip
    ingest(store, writer, [privacy_decision_attributes(**{"privacy.consent.state": "unknown"})],
           grant=Grant("other-team", frozenset({"search"})))  # fmt: skip
    yield store, writer, load_registry(allow_unknown_consent(tmp_path))
    writer.close()
    store.close()


def count(store, sql):
    cursor = store.cursor()
    try:
        return cursor.execute(sql).fetchone()[0]
    finally:
        cursor.close()


def test_replay_releases_exactly_the_rows_that_pass_now_once(loaded):
    """The two 'unknown' consents are released under privacy 1.2.0; the missing purpose and the
    token refusal stay; a second run releases nothing."""
    store, writer, registry = loaded
    assert count(store, "SELECT count(*) FROM quarantine") == 4
    first = replay_quarantine(store, writer, registry, ReplaySelection())
    assert (first.checked, first.released, first.still_rejected, first.not_replayable) == (
        3,
        2,
        1,
        1,
    )
    assert count(store, "SELECT count(*) FROM decisions") == 3
    assert count(store, "SELECT count(*) FROM decisions WHERE contract_version = '1.2.0'") == 2
    releases = (
        store.cursor()
        .execute(
            "SELECT contract_id, contract_version, released_by, target_table, request_id "
            "FROM quarantine_releases"
        )
        .fetchall()
    )
    assert releases == [(PRIVACY, "1.2.0", "local", "decisions", first.request_id)] * 2
    ledger = (
        store.cursor()
        .execute(
            "SELECT transport, received, accepted, rejected FROM ingest_log WHERE request_id = $r",
            {"r": first.request_id},
        )
        .fetchall()
    )
    assert ledger == [("replay", 2, 2, 0)]
    second = replay_quarantine(store, writer, registry, ReplaySelection())
    assert (second.checked, second.released, second.request_id) == (1, 0, 0)
    assert count(store, "SELECT count(*) FROM decisions") == 3
    assert count(store, "SELECT count(*) FROM quarantine") == 4


def test_replay_under_the_contracts_of_ingest_releases_nothing(loaded):
    """With the contracts the records were rejected by, nothing passes."""
    store, writer, _ = loaded
    result = replay_quarantine(store, writer, load_registry(), ReplaySelection())
    assert (result.checked, result.released) == (3, 0)
    assert count(store, "SELECT count(*) FROM quarantine_releases") == 0


def test_dry_run_counts_and_writes_nothing(loaded):
    store, writer, registry = loaded
    result = replay_quarantine(store, writer, registry, ReplaySelection(), dry_run=True)
    assert (result.released, result.request_id) == (2, 0)
    assert count(store, "SELECT count(*) FROM decisions") == 1
    assert count(store, "SELECT count(*) FROM quarantine_releases") == 0


def test_pinned_version_checks_against_that_version(loaded):
    """--contract privacy@1.1.0 checks against 1.1.0, which still rejects 'unknown'."""
    store, writer, registry = loaded
    pinned = ReplaySelection.parse(f"{PRIVACY}@1.1.0")
    assert replay_quarantine(store, writer, registry, pinned).released == 0
    newest = ReplaySelection.parse(f"{PRIVACY}@1.2")
    assert replay_quarantine(store, writer, registry, newest).released == 2


@pytest.mark.parametrize("spec", ["@1.0.0", "x@", "no.such.contract", f"{PRIVACY}@9"])
def test_bad_contract_selection_is_refused(loaded, spec):
    store, writer, registry = loaded
    with pytest.raises(ReplayError):
        replay_quarantine(store, writer, registry, ReplaySelection.parse(spec))


def test_service_and_since_select_rows(loaded):
    store, writer, registry = loaded
    other = ReplaySelection(service="search")
    assert replay_quarantine(store, writer, registry, other).checked == 0
    later = ReplaySelection(since=datetime(2100, 1, 1, tzinfo=UTC))
    assert replay_quarantine(store, writer, registry, later).checked == 0
