"""The Python client on a database file: DataFrames with the CLI's values, Arrow exports."""

from __future__ import annotations

import json

import polars as pl
import pytest

from analytics.analyses import ANALYSES
from flaglens import Client, ClientError
from flaglens.cli.main import main

WINDOW = {"start": "2026-11-16T00:00Z", "end": "2026-11-23T00:00Z"}
FLAGS = ["--from", WINDOW["start"], "--to", WINDOW["end"]]


def without_nulls(value):
    """``value`` with null object fields dropped: a DataFrame's struct has every field any row
    has, null where a row's object lacks it, so that is the same value."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.fixture(scope="module")
def client(sample_week):
    with Client(db=sample_week.db, keys=sample_week.keys) as client:
        yield client


@pytest.mark.parametrize("name", list(ANALYSES))
def test_each_analysis_is_a_frame_of_the_cli_json(client, sample_week, capsys, name):
    assert main(["analyze", name, "--db", str(sample_week.db), "--keys", str(sample_week.keys),
                 "--format", "json", *FLAGS]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    frame = getattr(client, name)(**WINDOW)
    assert isinstance(frame, pl.DataFrame) and frame.height == len(printed) > 0
    assert without_nulls(frame.to_dicts()) == without_nulls(printed)


def test_exports_keep_their_types(client, sample_week):
    frame = client.decisions(start="2026-11-20T12:00Z", end="2026-11-20T13:00Z", service="auth")
    assert frame.schema["time"] == pl.Datetime("us", "UTC")
    assert frame.height > 0 and set(frame["service_name"]) == {"auth"}
    changes = client.policy_changes(**WINDOW)
    assert changes.schema["approvers"] == pl.List(pl.String)
    assert changes.height == sample_week.manifest["counts"]["policy_changes"]


def test_bad_input_is_a_client_error(client):
    with pytest.raises(ClientError, match="neither ISO-8601"):
        client.budgets(start="a while ago")
    with pytest.raises(ClientError, match="spans cannot be filtered by flag"):
        client.spans(flag="x")
    with pytest.raises(ClientError, match="no database at"):
        Client(db="/nonexistent/flaglens.duckdb")
