"""`flaglens alerts evaluate` on a database no server holds: its own writer, the same write
path as `flaglens serve`, and the same output as ever."""

from __future__ import annotations

from datetime import timedelta

from flaglens.cli.main import main
from store.connection import Store
from tests.alerts.receiver import WebhookReceiver
from tests.alerts.test_evaluator import NOW, RULES, add_violation
from tests.readers import read_only_beside_writers


def test_evaluate_writes_through_a_writer_of_its_own(tmp_path, capsys, monkeypatch):
    """Every cursor beside the writer's is read-only here, so each write went through it."""
    db, rules = tmp_path / "f.duckdb", tmp_path / "alerts.toml"
    rules.write_text(RULES)
    with Store.open(db) as store:
        add_violation(store, NOW - timedelta(minutes=1))
    writers = read_only_beside_writers(monkeypatch)
    with WebhookReceiver() as receiver:
        code = main(["alerts", "evaluate", "--db", str(db), "--at", NOW.isoformat(),
                     "--alert-rules", str(rules), "--alert-webhook", receiver.url])  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "ContractViolations: new -> firing  "
        "{severity=warning, service=svc-bad, contract=feature_flag.evaluation.privacy}",
        "1 active alert(s), 1 transition(s), 1 notification(s) queued",
        "delivered 1, failed 0",
    ]
    assert len(receiver.received) == 1
    (writer,) = writers
    stats = writer.stats()
    assert (stats.write_fns, stats.failed_write_fns) == (2, 0)  # the evaluation, the delivery
