"""Every analysis over HTTP answers what `flaglens analyze --format json` prints; bad input is
a 400 that says why."""

from __future__ import annotations

import pytest

from analytics.analyses import ANALYSES, Query
from analytics.windows import TimeWindow
from tests.api.conftest import WEEK


@pytest.mark.parametrize("name", list(ANALYSES))
def test_each_analysis_answers_the_rows_of_the_cli(api, week_session, name):
    """The answer is the session's rows for the same window, value for value."""
    response = api.get(f"/api/v1/analyses/{name}", params=WEEK)
    assert response.status_code == 200
    expected = week_session.analyze(name, Query(TimeWindow.parse(WEEK["from"], WEEK["to"])))
    assert response.json() == expected and expected


def test_options_reach_the_analysis(api, week_session):
    """bucket, by, service, compare, rates and correction mean what the CLI's flags mean."""
    cases = {
        "latency": ({"by": "service,route", "bucket": "1d", "service": "checkout"},
                    {"by": ("service", "route"), "service": "checkout"}),
        "contracts": ({"rates": "true"}, {"rates": True}),
        "changes": ({"correction": "holm"}, {"correction": "holm"}),
        "cohorts": ({"compare": "true", "correction": "holm"}, {"compare": True,
                                                                "correction": "holm"}),
    }  # fmt: skip
    window = TimeWindow.parse(WEEK["from"], WEEK["to"])
    for name, (params, fields) in cases.items():
        response = api.get(f"/api/v1/analyses/{name}", params=WEEK | params)
        assert response.status_code == 200, response.text
        bucket = {"bucket": window.duration / 7} if "bucket" in params else {}
        assert response.json() == week_session.analyze(name, Query(window, **fields, **bucket))


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"from": "yesterday"}, "neither ISO-8601"),
        ({"to": "now-99999999999d"}, "longer than any window"),
        ({"from": "2026-11-23T00:00Z", "to": "2026-11-16T00:00Z"}, "is not after its start"),
        ({"servce": "checkout"}, "unknown parameter(s) servce"),
        ({"bucket": "0s"}, "not a positive duration"),
        ({"bucket": "1ms"}, "more than 100,000"),
        ({"bucket": "fortnight"}, "<int><ms|s|m|h|d|w>"),
        ({"compare": "maybe"}, "compare: Input should be a valid boolean"),
        ({"correction": "bonferroni"}, "correction: Input should be 'bh' or 'holm'"),
        ({"by": "planet"}, "cannot group latency by ['planet']"),
        ({"from": "0001-01-01T00:00Z", "to": "9999-12-31T23:59:59", "compare": "true"},
         "outside the range a window may span, 1970-01-01 to 2200-01-01"),
    ],
    ids=["bad time", "overflowing duration", "reversed window", "unknown filter", "zero bucket",
         "too many buckets", "bad duration", "bad boolean", "bad correction", "bad grouping",
         "window at the calendar's ends"],
)  # fmt: skip
def test_bad_input_is_a_400_with_the_reason(api, params, fragment):
    name = "latency" if "by" in params else "cohorts"
    response = api.get(f"/api/v1/analyses/{name}", params=WEEK | params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request" and fragment in body["detail"]


def test_unknown_names_are_404_with_what_exists(api):
    response = api.get("/api/v1/analyses/horoscope")
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "no analysis 'horoscope'; analyses are: " + ", ".join(ANALYSES),
    }
    response = api.get("/api/v2/budgets")
    assert response.status_code == 404 and "/api/v1/docs" in response.json()["detail"]
    response = api.post("/api/v1/analyses/budgets")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


def test_openapi_describes_every_endpoint(api):
    paths = set(api.get("/api/v1/openapi.json").json()["paths"])
    assert paths == {
        "/api/v1/analyses", "/api/v1/analyses/{name}", "/api/v1/reports/weekly",
        "/api/v1/reports/weekly/{week}", "/api/v1/quarantine", "/api/v1/alerts",
        "/api/v1/alerts/history", "/api/v1/alerts/dry-run", "/api/v1/exports",
        "/api/v1/exports/{table}", "/api/v1/contracts/preview",
    }  # fmt: skip
