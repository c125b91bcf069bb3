"""Row exports over HTTP: every format, the filters, the cap, and what is refused."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from analytics.windows import parse_instant
from tests.api.conftest import WEEK, api_with

# the big tables are exported over an hour of the week, to keep the test quick
HOUR = {"from": "2026-11-20T12:00Z", "to": "2026-11-20T13:00Z"}
RANGES = {"decisions": HOUR, "engagement": HOUR, "spans": HOUR, "policy_changes": WEEK,
          "quarantine": WEEK}  # fmt: skip


def _count(session, table, where="true", window=WEEK):
    column = {"spans": "start_time", "quarantine": "coalesce(time, quarantined_at)"}.get(
        table, "time"
    )
    row = (
        session.cursor()
        .execute(
            f"SELECT count(*) FROM {table} "
            f"WHERE {column} >= $start AND {column} < $end AND {where}",
            {"start": parse_instant(window["from"]), "end": parse_instant(window["to"])},
        )
        .fetchone()
    )
    return row[0]


def _rows(fmt: str, body: bytes) -> list[dict]:
    if fmt == "arrow":
        return pa.ipc.open_stream(body).read_all().to_pylist()
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body)).to_pylist()
    if fmt == "csv":
        return pa_csv.read_csv(io.BytesIO(body)).to_pylist()
    return [json.loads(line) for line in body.decode().splitlines()]


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "arrow", "parquet"])
@pytest.mark.parametrize("table", list(RANGES))
def test_each_table_in_each_format_holds_every_row_of_the_range(api, week_session, table, fmt):
    response = api.get(f"/api/v1/exports/{table}", params=RANGES[table] | {"format": fmt})
    assert response.status_code == 200, response.text
    rows = _rows(fmt, response.content)
    expected = _count(week_session, table, window=RANGES[table])
    assert len(rows) == expected == int(response.headers["x-flaglens-rows"]) and expected
    assert response.headers["content-type"].startswith(
        {"ndjson": "application/x-ndjson", "csv": "text/csv", "arrow":
         "application/vnd.apache.arrow.stream", "parquet": "application/vnd.apache.parquet"}[fmt]
    )  # fmt: skip


def test_typed_formats_keep_types_and_nested_values(api):
    """Arrow keeps timestamps and lists; NDJSON embeds the JSON columns as objects."""
    arrow = api.get("/api/v1/exports/policy_changes", params=WEEK | {"format": "arrow"})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert pa.types.is_timestamp(table.schema.field("time").type)
    assert pa.types.is_list(table.schema.field("approvers").type)
    ndjson = api.get("/api/v1/exports/policy_changes", params=WEEK)
    first = json.loads(ndjson.content.splitlines()[0])
    assert isinstance(first["attributes"], dict) and isinstance(first["approvers"], list)
    assert first["change_id"] == table.column("change_id")[0].as_py()


def test_filters_narrow_the_rows(api, week_session):
    params = HOUR | {"service": "checkout", "environment": "prod", "format": "arrow"}
    response = api.get("/api/v1/exports/decisions", params=params)
    table = pa.ipc.open_stream(response.content).read_all()
    assert set(table.column("service_name").to_pylist()) == {"checkout"}
    assert set(table.column("environment").to_pylist()) == {"prod"}
    where = "service_name = 'checkout' AND environment = 'prod'"
    expected = _count(week_session, "decisions", where, HOUR)
    assert table.num_rows == expected


def test_the_accept_header_picks_the_format(api):
    response = api.get(
        "/api/v1/exports/policy_changes", params=WEEK,
        headers={"accept": "text/html;q=0.9, application/vnd.apache.parquet"},
    )  # fmt: skip
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert pq.read_table(io.BytesIO(response.content)).num_rows > 0


def test_past_the_cap_the_export_is_refused_unless_a_limit_asks_for_the_first_rows(week_session):
    api = api_with(week_session, export_max_rows=100)
    response = api.get("/api/v1/exports/decisions", params=WEEK)
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "export_too_large"
    assert "more than the cap of 100" in body["detail"] and "limit=" in body["detail"]
    response = api.get("/api/v1/exports/decisions", params=WEEK | {"limit": "40"})
    assert response.status_code == 200 and len(response.content.splitlines()) == 40
    response = api.get("/api/v1/exports/decisions", params=WEEK | {"limit": "101"})
    assert response.status_code == 400 and "between 1 and the export cap 100" in response.text


@pytest.mark.parametrize(
    ("path", "params", "headers", "status", "fragment"),
    [
        ("decisions", {"cohort": "beta"}, {}, 400, "unknown parameter(s) cohort"),
        ("decisions", {"format": "xlsx"}, {}, 400, "format 'xlsx' is not one of"),
        ("decisions", {}, {"accept": "application/xml"}, 406, "names no format"),
        ("decisions", {"from": "last tuesday"}, {}, 400, "neither ISO-8601"),
        ("decisions", {"limit": "lots"}, {}, 400, "limit: Input should be a valid integer"),
        ("ledger", {}, {}, 404, "no export 'ledger'; exports are: decisions"),
    ],
    ids=["filter of another table", "unknown format", "unacceptable", "bad time", "bad limit",
         "unknown table"],
)  # fmt: skip
def test_bad_requests_are_refused_with_the_reason(api, path, params, headers, status, fragment):
    response = api.get(f"/api/v1/exports/{path}", params=WEEK | params, headers=headers)
    assert response.status_code == status
    assert fragment in response.json()["detail"]


def test_the_listing_names_each_table_and_its_filters(api):
    listing = api.get("/api/v1/exports").json()
    assert listing["exports"]["quarantine"] == {
        "filters": ["from", "to", "service", "environment", "contract"]
    }
    assert set(listing["formats"]) == {"ndjson", "csv", "arrow", "parquet"}
