"""The weekly report, quarantined records and alerts over HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from reports.weekly import build_weekly
from tests.api.conftest import WEEK

RULES = """
[[rule]]
name = "AnyViolation"
kind = "contract_violations"
window = "7d"
threshold = 1
"""


def _without_time(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "generated_at"}


def test_the_weekly_report_is_what_report_json_holds(api, week_session):
    response = api.get("/api/v1/reports/weekly/2026-W47")
    assert response.status_code == 200
    assert _without_time(response.json()) == _without_time(build_weekly(week_session, "2026-W47"))
    bad = api.get("/api/v1/reports/weekly/2026-47")
    assert bad.status_code == 400 and "is not an ISO week like 2026-W47" in bad.json()["detail"]


def test_quarantine_pages_follow_one_another(api, sample_week):
    """Pages of 150 cover every quarantined record of the week once; next ends at the last."""
    seen, url, params = [], "/api/v1/quarantine", WEEK | {"limit": "150"}
    while url:
        page = api.get(url, params=params).json()
        seen += page["records"]
        url, params = (urlsplit(page["next"]).path, parse_qs(urlsplit(page["next"]).query)) \
            if page["next"] else (None, None)  # fmt: skip
    assert len(seen) == sample_week.manifest["stories"]["contract_break"]["records"]
    assert len({(r["request_id"], str(r["record"])) for r in seen}) == len(seen)
    first = seen[0]
    assert first["errors"][0]["contract"] and first["record"]["service.name"]


def test_quarantine_filters_by_service_and_contract(api):
    every = api.get("/api/v1/quarantine", params=WEEK | {"limit": "1000"}).json()["records"]
    service, contract = every[0]["service_name"], every[0]["contract_id"]
    some = api.get(
        "/api/v1/quarantine", params=WEEK | {"limit": "1000", "service": service,
                                             "contract": contract},
    ).json()["records"]  # fmt: skip
    assert some and all(r["service_name"] == service and r["contract_id"] == contract for r in some)
    none = api.get("/api/v1/quarantine", params=WEEK | {"service": "nobody"}).json()
    assert none == {"records": [], "next": None}
    assert api.get("/api/v1/quarantine", params={"limit": "0"}).status_code == 400


def test_alert_states_and_history_are_listed(api, week_session):
    states = api.get("/api/v1/alerts").json()
    stored = week_session.cursor().execute("SELECT count(*) FROM alert_state").fetchone()[0]
    assert len(states) == stored
    assert all(isinstance(s["labels"], dict) for s in states)
    history = api.get("/api/v1/alerts/history", params={"from": "2026-01-01T00:00Z"}).json()
    assert set(history) == {"transitions", "next"}
    assert api.get("/api/v1/alerts", params={"state": "angry"}).status_code == 400


def test_a_dry_run_evaluates_the_rules_sent_and_writes_nothing(api, week_session):
    cursor = week_session.cursor()

    def stored():
        return [cursor.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("alert_state", "alert_history", "alert_outbox")]  # fmt: skip

    before = stored()
    # now: the rule counts records by when they were quarantined (when the week was loaded)
    response = api.post(
        "/api/v1/alerts/dry-run", content=RULES, headers={"content-type": "application/toml"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["transitions"]
    assert {t["rule"] for t in result["transitions"]} <= {"AnyViolation", "ContractViolations",
                                                          "ErrorBudgetBurn"}  # fmt: skip
    assert any(t["rule"] == "AnyViolation" and t["to_state"] == "firing"
               for t in result["transitions"])  # fmt: skip
    assert result["notifications"] >= 1 and stored() == before


def test_a_dry_run_with_broken_rules_is_a_400(api):
    response = api.post("/api/v1/alerts/dry-run", content='[[rule]]\nname = "x"\nkind = "nope"')
    assert response.status_code == 400
    assert "kind: Input should be" in response.json()["detail"]
