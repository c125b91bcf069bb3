"""Contract-violation alerts from an in-process server to a real webhook receiver on loopback."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx

from tests.alerts.receiver import WebhookReceiver
from tests.factories import otlp_json_logs, privacy_decision_attributes
from tests.inprocess import inprocess_server

RULES = """
[receiver]
group_by = ["alertname", "service"]
repeat_interval = "1h"

[[rule]]
name = "ContractViolations"
kind = "contract_violations"
window = "3s"
threshold = 1
for = "0s"
severity = "warning"
annotations = { summary = "{service} breaks {contract}" }
"""


def _send_broken(url: str, service: str, count: int = 3) -> None:
    records = [privacy_decision_attributes(**{"privacy.purpose": None}) for _ in range(count)]
    body = otlp_json_logs(records, {"service.name": service, "deployment.environment.name": "prod"})
    response = httpx.post(f"{url}/v1/logs", json=body, timeout=30)
    assert response.status_code == 200
    assert int(response.json()["partialSuccess"]["rejectedLogRecords"]) == count


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_firing_resolved_and_delivery_after_an_outage(tmp_path):
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)
    with WebhookReceiver() as receiver, inprocess_server(
        tmp_path / "f.duckdb", dashboards=True, alerts=True, alert_rules=rules,
        alert_webhook=receiver.url, alert_interval=timedelta(seconds=1),
    ) as server:  # fmt: skip
        # a service starts breaking its contract: one firing notification, with a link
        _send_broken(server.http_url, "svc-bad")
        _wait_for(lambda: receiver.alerts("firing", service="svc-bad"))
        (alert,) = receiver.alerts("firing", service="svc-bad")
        assert alert["labels"] == {
            "alertname": "ContractViolations",
            "severity": "warning",
            "service": "svc-bad",
            "contract": "feature_flag.evaluation.privacy",
        }
        assert alert["annotations"]["summary"] == ("svc-bad breaks feature_flag.evaluation.privacy")
        assert "/contracts?" in alert["generatorURL"] and "service=svc-bad" in alert["generatorURL"]
        assert alert["generatorURL"].startswith(server.urls["dashboards"].rstrip("/"))
        payload = receiver.received[0]
        assert payload["version"] == "4" and payload["status"] == "firing"
        assert payload["groupLabels"] == {"alertname": "ContractViolations", "service": "svc-bad"}
        # it stops: once the 3 s window has passed, one resolved notification
        _wait_for(lambda: receiver.alerts("resolved", service="svc-bad"))
        assert len(receiver.alerts("firing", service="svc-bad")) == 1
        (resolved,) = receiver.alerts("resolved", service="svc-bad")
        assert resolved["endsAt"] > resolved["startsAt"]
        # the receiver is down while another service breaks its contract...
        receiver.down = True
        _send_broken(server.http_url, "svc-late")
        _wait_for(lambda: receiver.refused >= 2)
        assert not receiver.alerts("firing", service="svc-late")
        # ...and gets the notification, once, when it is back
        receiver.down = False
        _wait_for(lambda: receiver.alerts("firing", service="svc-late"))
        time.sleep(3)
        assert len(receiver.alerts("firing", service="svc-late")) == 1


def test_governance_drift_and_budget_rules_on_the_sample_week(sample_week, tmp_path, capsys):
    """The same machinery for mutations, drift (pending, then firing after `for`) and burn."""
    import shutil
    from datetime import datetime

    from flaglens.cli.main import main

    db = tmp_path / "week.duckdb"
    shutil.copy(sample_week.db, db)  # evaluation writes alert state; keep the shared week clean
    stories = sample_week.manifest["stories"]
    first_drift = datetime.fromisoformat(stories["drift"]["first_seen"])
    common = ["alerts", "evaluate", "--db", str(db), "--keys", str(sample_week.keys)]
    with WebhookReceiver() as receiver:
        at = (first_drift + timedelta(minutes=2)).isoformat()
        assert main([*common, "--at", at, "--alert-webhook", receiver.url]) == 0
        out = capsys.readouterr().out
        assert "PolicyVersionDrift: new -> pending" in out
        evaluated = first_drift + timedelta(minutes=10)
        assert main([*common, "--at", evaluated.isoformat(), "--alert-webhook", receiver.url]) == 0
        assert "PolicyVersionDrift: pending -> firing" in capsys.readouterr().out
        (drifted,) = receiver.alerts("firing", alertname="PolicyVersionDrift")
        assert drifted["labels"]["version"] == stories["drift"]["version"]
        unauthorized = {
            a["labels"]["change_id"]: a["labels"]["reason"]
            for a in receiver.alerts("firing", alertname="UnauthorizedPolicyChange")
        }
        expected = {
            bad["change_id"]: bad["reason"]
            for bad in stories["unauthorized"]
            if timedelta(0) <= evaluated - datetime.fromisoformat(bad["time"]) < timedelta(days=1)
        }
        assert unauthorized == expected and expected
        burning = {
            a["labels"]["slo"] for a in receiver.alerts("firing", alertname="ErrorBudgetBurn")
        }
        assert "checkout-availability" in burning
        # a day later the mutations have left their 24 h window: resolved, each once
        day_after = (first_drift + timedelta(hours=30)).isoformat()
        assert main([*common, "--at", day_after, "--alert-webhook", receiver.url]) == 0
        resolved = receiver.alerts("resolved", alertname="UnauthorizedPolicyChange")
        assert {a["labels"]["change_id"] for a in resolved} == set(expected)
