"""A dry run says what an evaluation would do and writes nothing, so it runs on a read-only
store (and beside a server, which owns alert state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.evaluator import Evaluator
from alerts.rules import load_alert_config
from analytics.session import AnalyticsConfig, Session
from store.connection import Store
from store.writer import StoreWriter

RULES = """
[[rule]]
name = "Violations"
kind = "contract_violations"
window = "1h"
threshold = 2
"""
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _quarantine(store: Store, service: str, count: int, at: datetime) -> None:
    for i in range(count):
        store.cursor().execute(
            "INSERT INTO quarantine (quarantined_at, request_id, signal, service_name, "
            "contract_id, errors, record) VALUES ($at, $i, 'logs', $service, 'c', '[]', '{}')",
            {"at": at, "i": i, "service": service},
        )


def _tables(store: Store) -> list[int]:
    cursor = store.cursor()
    return [cursor.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("alert_state", "alert_history", "alert_outbox")]  # fmt: skip


def test_a_dry_run_predicts_the_evaluation_and_writes_nothing(tmp_path):
    path = tmp_path / "f.duckdb"
    with Store.open(path) as store:
        _quarantine(store, "svc-bad", 3, NOW - timedelta(minutes=5))
        _quarantine(store, "svc-ok", 1, NOW - timedelta(minutes=5))
    config = load_alert_config("rules", text=RULES)
    with Store.open(path, read_only=True) as store:  # a write would fail here
        dry = Evaluator(Session(store.cursor, AnalyticsConfig()), config).evaluate(
            NOW, dry_run=True
        )
        assert _tables(store) == [0, 0, 0]
    with Store.open(path) as store, StoreWriter(store) as writer:
        real = Evaluator(Session(store.cursor, AnalyticsConfig()), config, writer).evaluate(NOW)
        assert _tables(store) == [1, 1, 1]
    assert dry.as_dict() == real.as_dict()
    assert [(t.labels["service"], t.from_state, t.to_state) for t in dry.transitions] == [
        ("svc-bad", None, "firing")
    ]
    assert dry.notifications == 1


def test_an_evaluator_without_a_writer_only_plans(tmp_path):
    """Built without the store's writer (the read API's dry runs), it refuses to record."""
    with Store.open(tmp_path / "f.duckdb") as store:
        evaluator = Evaluator(
            Session(store.cursor, AnalyticsConfig()), load_alert_config("rules", text=RULES)
        )
        with pytest.raises(ValueError, match="without the store's writer"):
            evaluator.evaluate(NOW)
        assert _tables(store) == [0, 0, 0]
