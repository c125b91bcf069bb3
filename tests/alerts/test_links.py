"""Dashboard links in alert notifications (Alertmanager's generatorURL) carry names from the
data URL-encoded: a service named with markup or ``&`` is one query value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from alerts.rules import CONDITIONS, Rule
from analytics.session import AnalyticsConfig, Session
from store.connection import Store
from tests.factories import otlp_json_logs, privacy_decision_attributes, write_documents

HOSTILE = '<a href="https://evil.example/x">click</a>&from=now-30d#frag'


def test_a_hostile_service_name_is_one_encoded_query_value(tmp_path):
    store = Store.open(tmp_path / "f.duckdb")
    try:
        resource = {"service.name": HOSTILE, "deployment.environment.name": "prod"}
        broken = privacy_decision_attributes(**{"privacy.purpose": None})  # breaks its contract
        write_documents(store, [("logs", otlp_json_logs([broken], resource))])
        session = Session(store.cursor, AnalyticsConfig(warn=lambda _message: None))
        rule = Rule("violations", "contract_violations", window=timedelta(hours=1), threshold=1)
        (instance,) = CONDITIONS["contract_violations"](
            store.cursor(), rule, datetime.now(UTC), session
        )
    finally:
        store.close()
    link = urlsplit(instance.page)
    assert link.path == "/contracts" and link.fragment == ""
    assert parse_qs(link.query) == {"from": ["now-1h"], "service": [HOSTILE]}
    assert "<" not in instance.page and " " not in instance.page
