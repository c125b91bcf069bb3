"""`flaglens analyze`: the table and the JSON carry the same numbers."""

from __future__ import annotations

import json

import pytest

from dashboards.cli.main import main

WINDOW = ["--from", "2026-11-16T00:00Z", "--to", "2026-11-23T00:00Z"]


@pytest.mark.parametrize(
    "what", ["budgets", "latency", "cohorts", "changes", "mutations", "drift", "contracts"]
)
def test_each_analysis_in_both_formats(sample_week, capsys, what):
    common = [what, "--db", str(sample_week.db), "--keys", str(sample_week.keys), *WINDOW]
    assert main(["analyze", *common, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows, f"{what} returned nothing on the sample week"
    assert main(["analyze", *common]) == 0
    table = capsys.readouterr().out
    assert len(table.splitlines()) == len(rows) + 1  # header + one line per row
    if what == "mutations":
        for row in rows:
            assert row["change_id"] in table and row["reasons"][0] in table
    if what == "budgets":
        for row in rows:
            assert row["slo"] in table and f"{row['objective']:.4g}" in table


def test_bad_input_is_a_clear_error(sample_week, capsys):
    code = main(["analyze", "budgets", "--db", str(sample_week.db), "--from", "yesterday"])
    assert code == 2
    assert "neither ISO-8601" in capsys.readouterr().err
    code = main(["analyze", "budgets", "--db", str(sample_week.directory / "missing.duckdb")])
    assert code == 2
    assert "no database at" in capsys.readouterr().err
