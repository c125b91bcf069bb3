"""Canonical records → the event tables' typed columns, as the writer stores them."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.rows import RequestRows, json_text
from store.batch import LedgerEntry, WriteBatch
from store.connection import Store
from store.writer import StoreWriter

RESOURCE = {"service.name": "checkout", "deployment.environment.name": "prod"}
NANOS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


def _store_rows(tmp_path, add) -> Store:
    store = Store.open(tmp_path / "rows.duckdb")
    rows = RequestRows(request_id=1)
    add(rows)
    ledger = LedgerEntry(
        request_id=1, received_at=datetime.now(UTC), transport="http", signal="logs",
        encoding="json", compression=None, body_bytes=0, received=1, accepted=1, rejected=0,
        status_code=200, error=None, services=("checkout",),
    )  # fmt: skip
    with StoreWriter(store, max_group_delay=0) as writer:
        writer.submit(WriteBatch(ledger=ledger, tables=rows.arrow_tables())).result(30)
    return store


def test_decision_columns_come_from_the_canonical_record(tmp_path):
    span_event = {
        **RESOURCE,
        "event_name": "feature_flag.evaluation",
        "time_unix_nano": NANOS,
        "observed_time_unix_nano": NANOS + 5_000,
        "signal": "traces",
        "decision.id": "d-1",
        "feature_flag.key": "new-checkout",
        "feature_flag.version": 7,  # not a string: stored as its JSON text
        "feature_flag.result.variant": "on",
        "feature_flag.result.value": {"limit": 3, "tiers": ["a", "b"]},
        "feature_flag.context.id": "user-1",
        "policy.module": "release",
        "cohort.id": True,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
    }
    log_record = {
        **RESOURCE,
        "event_name": "feature_flag.evaluation",
        "time_unix_nano": NANOS,
        "observed_time_unix_nano": 0,  # unset
        "signal": "logs",
        "decision.id": "d-2",
        "feature_flag.key": "new-checkout",
        "feature_flag.version": "v3",
        "feature_flag.result.variant": "off",
        "policy.module": "release",
    }

    def add(rows: RequestRows) -> None:
        for record, renamed in ((span_event, ()), (log_record, ("feature_flag.variant->x",))):
            rows.add_event(
                record, contract_id="feature_flag.evaluation.release", contract_version="1.0.0",
                renamed=renamed,
            )  # fmt: skip

    store = _store_rows(tmp_path, add)
    rows = (
        store.cursor()
        .execute(
            "SELECT decision_id, time, observed_time, flag_version, value, cohort_id, source, "
            "subject_id, trace_id, span_id, renamed_attributes, attributes FROM decisions "
            "ORDER BY decision_id"
        )
        .fetchall()
    )
    store.close()
    first, second = rows
    assert first[0] == "d-1"
    assert first[1] == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert first[2] == datetime(2023, 11, 14, 22, 13, 20, 123461, tzinfo=UTC)
    assert first[3:8] == ("7", '{"limit":3,"tiers":["a","b"]}', "true", "span_event", "user-1")
    assert first[8:11] == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", None)
    assert first[11] == json_text(span_event)
    assert second[0] == "d-2"
    assert second[2] is None  # observed time 0 means unset
    assert second[3:8] == ("v3", None, None, "log", None)
    assert second[10] == ["feature_flag.variant->x"]


def test_policy_change_approvers_are_a_string_list(tmp_path):
    change = {
        **RESOURCE,
        "event_name": "policy.change",
        "time_unix_nano": NANOS,
        "signal": "logs",
        "policy.change.id": "c-1",
        "feature_flag.key": "new-checkout",
        "feature_flag.version": "v4",
        "policy.module": "release",
        "policy.change.actor": "alice",
        "policy.change.action": "update",
        "policy.change.approvers": ["bob", "carol"],
    }

    def add(rows: RequestRows) -> None:
        rows.add_event(change, contract_id="policy.change", contract_version="1.0.0", renamed=())

    store = _store_rows(tmp_path, add)
    row = (
        store.cursor()
        .execute(
            "SELECT change_id, version, actor, approvers, previous_version FROM policy_changes"
        )
        .fetchone()
    )
    store.close()
    assert row == ("c-1", "v4", "alice", ["bob", "carol"], None)
