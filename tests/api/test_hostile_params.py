"""Every parameter of the read API on hostile values: a 4xx with a message, never a 500.

Each endpoint's parameters (query, path and filters) get the values of a hostile world:
integers past 64 bits and past what Python parses, Unicode digits, NUL, invalid UTF-8, a lone
``%``, astral-plane and very long text, SQL, times at and past the calendar's ends. The answer
is a 200 (text is data: a filter on it matches nothing) or a 4xx ``{"error", "detail"}`` that
says what was wrong.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from analytics.analyses import ANALYSES
from analytics.exports import EXPORT_TABLES
from analytics.session import AnalyticsConfig, Session
from api.params import MAX_OFFSET
from store.connection import Store
from tests.api.conftest import api_with
from tests.factories import RECORDS_DAY, decision_attributes, otlp_json_logs, write_documents

# already encoded for the query string: some are bytes no client library would send
HOSTILE = {
    "past 64 bits": "9" * 30,
    "past int()": "9" * 5000,
    "negative": "-1",
    "superscript": quote("²"),
    "arabic digits": quote("١٢"),
    "exponent": "1e3",
    "nan": "NaN",
    "hex": "0x10",
    "nul": "%00",
    "invalid utf-8": "%ED%B3%BF%ff%fe",
    "lone percent": "%",
    "empty": "",
    "blank": "%20",
    "comma": "%2C",
    "astral": quote("\U0001d518" * 1000),
    "long": "x" * 20_000,
    "sql": quote("'; DROP TABLE decisions; --"),
    "huge duration": "now-" + "9" * 5000 + "d",
    "end of time": quote("9999-12-31T23:59:59"),
    "year one": quote("0001-01-01T00:00Z"),
    "bad offset": quote("2026-11-16T00:00+25:00"),
}

_ANALYSIS = ("from", "to", "service", "environment", "bucket")
# the parameters only one analysis reads (the others parse them and ignore them)
_OWN = {"latency": ("by",), "cohorts": ("compare",), "contracts": ("rates",),
        "changes": ("correction",)}  # fmt: skip
# path → the parameters it takes (exports: their own filters besides)
ENDPOINTS: dict[str, tuple[str, ...]] = {
    **{f"/api/v1/analyses/{name}": (*_ANALYSIS, *_OWN.get(name, ())) for name in ANALYSES},
    "/api/v1/quarantine": ("from", "to", "service", "contract", "limit", "offset"),
    "/api/v1/alerts": ("state", "rule"),
    "/api/v1/alerts/history": ("from", "to", "rule", "limit", "offset"),
    **{
        f"/api/v1/exports/{table}": ("from", "to", "limit", "format", *spec.filters)
        for table, spec in EXPORT_TABLES.items()
    },
}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    db = tmp_path_factory.mktemp("hostile-api") / "f.duckdb"
    store = Store.open(db)
    write_documents(store, [("logs", otlp_json_logs([decision_attributes()]))])
    session = Session(store.cursor, AnalyticsConfig(db=db, warn=lambda _message: None))
    yield api_with(session)  # the test limits: reads at nice 0, a timeout no busy box reaches
    store.close()


def _assert_answered(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert body["error"] and body["detail"], what


@pytest.mark.parametrize(("path", "names"), list(ENDPOINTS.items()), ids=list(ENDPOINTS))
def test_every_query_parameter_on_hostile_values_is_answered(api, path, names):
    for name in names:
        for label, value in HOSTILE.items():
            window = "" if name in ("from", "to") or path == "/api/v1/alerts" else "&" + RECORDS_DAY
            url = f"{path}?{name}={value}{window}"
            _assert_answered(api.get(url), f"{name}={label} on {path}")


@pytest.mark.parametrize(
    "prefix", ["/api/v1/reports/weekly/", "/api/v1/analyses/", "/api/v1/exports/"]
)
def test_every_path_parameter_on_hostile_values_is_answered(api, prefix):
    weeks = {"week 99": "2026-W99", "week 0": "2026-W00", "year 0": "0000-W01",
             "year 10000": "10000-W01", "many digits": "9" * 5000 + "-W01"}  # fmt: skip
    for label, value in {**HOSTILE, **weeks}.items():
        response = api.get(prefix + (value or "x"))
        _assert_answered(response, f"{label} in {prefix}")
        assert response.status_code in (400, 404), f"{label} in {prefix}: {response.text[:200]}"


def test_the_dry_run_on_hostile_instants_and_rules_is_answered(api):
    for label, value in HOSTILE.items():
        _assert_answered(api.post(f"/api/v1/alerts/dry-run?at={value}"), f"at={label}")
    for body in [b"\xff\xfe", b"[[rule]]\nname = 1", b"\x00", b"[[rule]]\n" * 1000, b"a = 1e9999",
                 b"[[rule]]\nname = 'x'\nkind = 'contract_violations'\nwindow = '9999999999999d'"
                 b"\nthreshold = 1"]:  # fmt: skip
        response = api.post("/api/v1/alerts/dry-run", content=body)
        _assert_answered(response, f"rules {body[:30]!r}")
        assert response.status_code == 400, f"rules {body[:30]!r}: {response.text[:200]}"


@pytest.mark.parametrize("path", ["/api/v1/quarantine", "/api/v1/alerts/history"])
def test_an_offset_past_what_the_store_takes_is_a_400(api, path):
    """DuckDB's OFFSET is a signed 64-bit integer: one past it was a 500 (a conversion error)."""
    assert api.get(f"{path}?offset={MAX_OFFSET}&{RECORDS_DAY}").status_code == 200
    response = api.get(f"{path}?offset={MAX_OFFSET + 1}&{RECORDS_DAY}")
    assert response.status_code == 400
    assert f"is not between 0 and {MAX_OFFSET:,}" in response.json()["detail"]


@pytest.mark.parametrize(
    ("by", "fragment"),
    [("%20", "latency needs a grouping"), ("%2C", "latency needs a grouping"),
     ("service%2Cservice", "names ['service'] more than once")],
    ids=["blank", "commas only", "repeated"],
)  # fmt: skip
def test_a_latency_grouping_of_nothing_or_twice_the_same_is_a_400(api, by, fragment):
    """An empty grouping made `SELECT , count(*)` (a 500); a repeated one, duplicate columns."""
    response = api.get(f"/api/v1/analyses/latency?by={by}&{RECORDS_DAY}")
    assert response.status_code == 400
    assert fragment in response.json()["detail"]
