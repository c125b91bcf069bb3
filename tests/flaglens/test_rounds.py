"""The periodic round of `flaglens serve`, in process: it reads on cursors that cannot write
and writes everything (alert state, deliveries, change facts, cohort periods) through the
writer it is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.rules import load_alert_config
from analytics.session import AnalyticsConfig, Session
from flaglens.rounds import PeriodicRounds
from store.connection import Store
from store.writer import StoreWriter
from tests.alerts.receiver import WebhookReceiver
from tests.alerts.test_evaluator import RULES, add_violation
from tests.analytics.helpers import add_change, add_decisions, add_spans
from tests.readers import read_only_cursors

T0 = datetime(2026, 11, 16, tzinfo=UTC)
NOW = datetime(2100, 1, 1, tzinfo=UTC)  # every window closed; nothing ingested since


def fill_one_change(store: Store, now: datetime) -> None:
    """A change of flag f at T0 + 3 h with three hours of api spans and exposures either
    side (a closed window, so its facts and cohort periods get recorded), and a contract
    violation received a minute before ``now`` (an alert fires)."""
    add_spans(store, service="api", start=T0, every=timedelta(minutes=1), count=7 * 60)
    change = {
        "policy.change.id": "chg-1", "feature_flag.key": "f", "feature_flag.version": "v2",
        "policy.module": "release", "policy.change.actor": "alice@example.com",
        "deployment.environment.name": "prod", "policy.change.approvers": ["dana@example.com"],
    }  # fmt: skip
    add_change(store, change, T0 + timedelta(hours=3, seconds=30))
    for version, hour in (("v1", 1), ("v2", 5)):
        add_decisions(store, flag="f", version=version, times=[T0 + timedelta(hours=hour)] * 20)
    add_violation(store, now - timedelta(minutes=1))


def test_one_round_writes_everything_through_the_writer(tmp_path):
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)
    with Store.open(tmp_path / "f.duckdb") as store, StoreWriter(store) as writer:
        fill_one_change(store, NOW)
        session = Session(read_only_cursors(store), AnalyticsConfig())
        with WebhookReceiver() as receiver:
            config = load_alert_config(rules, webhook=receiver.url)
            rounds = PeriodicRounds(session, writer, config, interval=timedelta(hours=1))
            try:
                rounds.run_once(NOW)
            finally:
                rounds.stop()
            assert len(receiver.received) == 1
        cursor = store.cursor()
        assert cursor.execute("SELECT state FROM alert_state").fetchall() == [("firing",)]
        delivered = "SELECT count(*) FROM alert_outbox WHERE delivered_at IS NOT NULL"
        assert cursor.execute(delivered).fetchone() == (1,)
        assert cursor.execute("SELECT change_id FROM impact_windows").fetchall() == [("chg-1",)]
        (periods,) = cursor.execute("SELECT count(*) FROM cohort_periods").fetchone()
        assert periods > 0
        stats = writer.stats()
    # the evaluation, the delivery, the change facts, the cohort periods
    assert (stats.write_fns, stats.failed_write_fns) == (4, 0)
