"""The evaluator and the webhook in process, on a real store whose reader cursors cannot write:
state, history and outbox go through the writer in one transaction; deliveries are marked
there when the receiver answered 2xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alerts.evaluator import Evaluator
from alerts.rules import load_alert_config
from alerts.webhook import deliver_pending
from analytics.session import AnalyticsConfig, Session
from store.connection import Store
from store.errors import StoreError
from store.writer import StoreWriter
from tests.alerts.receiver import WebhookReceiver
from tests.readers import read_only_cursors

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
RULES = """
[receiver]
group_by = ["alertname", "service"]

[[rule]]
name = "ContractViolations"
kind = "contract_violations"
window = "10m"
threshold = 1
"""


def add_violation(store: Store, at: datetime, service: str = "svc-bad") -> None:
    """One quarantined privacy decision of ``service``, received at ``at``."""
    store.cursor().execute(
        "INSERT INTO quarantine BY NAME SELECT $at AS quarantined_at, 1 AS request_id, "
        "'logs' AS signal, 'feature_flag.evaluation' AS event_name, $service AS service_name, "
        "'prod' AS environment, $at AS time, 'feature_flag.evaluation.privacy' AS contract_id, "
        "'1.1.0' AS contract_version, '[]' AS errors, '{}' AS record",
        {"at": at, "service": service},
    )


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "alerts.duckdb") as store:
        yield store


@pytest.fixture
def writer(store):
    with StoreWriter(store) as writer:
        yield writer


def evaluator(store, writer, tmp_path, webhook=None):
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)
    session = Session(read_only_cursors(store), AnalyticsConfig())
    return Evaluator(session, load_alert_config(rules, webhook=webhook), writer)


def table(store, query):
    return store.cursor().execute(query).fetchall()


def test_an_evaluation_writes_state_history_and_outbox_through_the_writer(store, writer, tmp_path):
    """Firing, then resolved: each evaluation is one write function of the writer."""
    add_violation(store, NOW - timedelta(minutes=1))
    alerts = evaluator(store, writer, tmp_path)
    fired = alerts.evaluate(NOW)
    assert [(t.from_state, t.to_state) for t in fired.transitions] == [(None, "firing")]
    assert (fired.active, fired.notifications) == (1, 1)
    resolved = alerts.evaluate(NOW + timedelta(minutes=30))
    assert [(t.from_state, t.to_state) for t in resolved.transitions] == [("firing", "resolved")]
    assert table(store, "SELECT state FROM alert_state") == [("resolved",)]
    assert table(store, "SELECT from_state, to_state FROM alert_history ORDER BY changed_at") == [
        (None, "firing"),
        ("firing", "resolved"),
    ]
    assert table(store, "SELECT id, status FROM alert_outbox ORDER BY id") == [
        (1, "firing"),
        (2, "resolved"),
    ]
    assert writer.stats().write_fns == 2


def test_state_history_and_outbox_are_written_in_one_transaction(store, writer, tmp_path):
    """When the outbox cannot be written, neither are the state and the history; the next
    evaluation starts from the state before."""
    add_violation(store, NOW - timedelta(minutes=1))
    alerts = evaluator(store, writer, tmp_path)
    store.cursor().execute("ALTER TABLE alert_outbox RENAME TO outbox_away")
    with pytest.raises(StoreError, match="alert_outbox"):
        alerts.evaluate(NOW)
    assert table(store, "SELECT count(*) FROM alert_state") == [(0,)]
    assert table(store, "SELECT count(*) FROM alert_history") == [(0,)]
    store.cursor().execute("ALTER TABLE outbox_away RENAME TO alert_outbox")
    again = alerts.evaluate(NOW)
    assert [(t.from_state, t.to_state) for t in again.transitions] == [(None, "firing")]
    assert writer.stats().failed_write_fns == 1


def test_a_delivery_is_marked_delivered_exactly_when_the_receiver_answered_2xx(
    store, writer, tmp_path
):
    """A refusal schedules a retry; the next round delivers, once; the rows due are read on a
    reader cursor and every outcome is written by the writer."""
    add_violation(store, NOW - timedelta(minutes=1))
    with WebhookReceiver() as receiver, httpx.Client(timeout=10) as client:
        evaluator(store, writer, tmp_path, webhook=receiver.url).evaluate(NOW)
        reader = read_only_cursors(store)()
        receiver.down = True
        refused = deliver_pending(reader, writer, receiver.url, client=client, now=NOW)
        assert (refused.delivered, refused.failed, refused.error) == (0, 1, "HTTP 503")
        assert table(
            store, "SELECT attempts, next_attempt_at, delivered_at, last_error FROM alert_outbox"
        ) == [(1, NOW + timedelta(seconds=1), None, "HTTP 503")]
        receiver.down = False
        early = deliver_pending(reader, writer, receiver.url, client=client, now=NOW)
        assert (early.delivered, early.failed, receiver.received) == (0, 0, [])  # not due yet
        later = NOW + timedelta(seconds=1)
        delivered = deliver_pending(reader, writer, receiver.url, client=client, now=later)
        assert (delivered.delivered, delivered.failed) == (1, 0)
        assert (
            deliver_pending(reader, writer, receiver.url, client=client, now=later).delivered == 0
        )
        assert len(receiver.received) == 1
    ((attempts, delivered_at),) = table(store, "SELECT attempts, delivered_at FROM alert_outbox")
    assert attempts == 2 and delivered_at is not None
    assert writer.stats().write_fns == 3  # the evaluation, the refusal, the delivery
