"""`flaglens analyze`: the table and the JSON carry the same numbers."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys

import pytest

from flaglens.cli import main as cli_main
from flaglens.cli.main import main
from store.connection import Store
from tests.servers import REPO

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


def _field_names(value, under=""):
    """Every object key in ``value``, but not the service names that key ``windows``, nor into
    the free text of ``details``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if under != "windows":
                yield key
            yield from _field_names(item, "" if under == "windows" else key)
    elif isinstance(value, list):
        for item in value:
            yield from _field_names(item, under)


def test_every_field_of_analyze_changes_json_is_documented(sample_week, capsys):
    text = (REPO / "docs" / "analytics.md").read_text(encoding="utf-8")
    section = text.split("### `flaglens analyze changes --format json`", 1)[1]
    section = section.split("\n### ", 1)[0]
    documented = set(re.findall(r"`([a-z_0-9]+)`", section))
    common = ["--db", str(sample_week.db), "--keys", str(sample_week.keys), *WINDOW]
    assert main(["analyze", "changes", *common, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    fields = set(_field_names(rows))
    assert {"percentiles", "confounded_with", "burn_window", "family", "same_test_as"} <= fields
    assert fields - documented == set()
    latency = [e for r in rows for e in r["effects"] if e["metric"] == "latency"]
    assert latency and all(set(e["percentiles"]) == {"p50", "p95", "p99"} for e in latency)
    assert all(p["before"]["value"] and p["after"]["value"] and p["before"]["ci95"]
               for e in latency for p in e["percentiles"].values())  # fmt: skip


def test_bad_input_is_a_clear_error(sample_week, capsys):
    code = main(["analyze", "budgets", "--db", str(sample_week.db), "--from", "yesterday"])
    assert code == 2
    assert "neither ISO-8601" in capsys.readouterr().err
    code = main(["analyze", "budgets", "--db", str(sample_week.directory / "missing.duckdb")])
    assert code == 2
    assert "no database at" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "view"),
    [
        (["cohorts", "--compare", "--from", "2026-11-19T12:00Z", "--to", "2026-11-23T00:00Z"],
         "cohorts --compare"),
        (["contracts", "--rates", "--bucket", "1d", *WINDOW], "contracts"),
        (["changes", "--correction", "holm", *WINDOW], "changes"),
    ],
)  # fmt: skip
def test_options_in_both_formats(sample_week, capsys, args, view):
    common = [*args, "--db", str(sample_week.db), "--keys", str(sample_week.keys)]
    assert main(["analyze", *common, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows
    assert main(["analyze", *common]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == len(rows) + 1
    if view == "cohorts --compare":
        # the shifts against the previous 3.5 days: every cohort was exposed on both sides
        assert all(r["exposed_before"] and r["exposed_after"] for r in rows)
        for row, line in zip(rows, table[1:], strict=True):
            assert line.startswith(row["cohort"])
            if row["test"]:
                assert f"{row['test']['p_value']:.4g}" in line
    if view == "changes":
        assert {r["correction"] for r in rows} == {"holm"}
        assert {e["correction"] for r in rows for e in r["effects"]} == {"holm"}
    if view == "contracts":
        assert {"bucket", "accepted", "rejected", "violation_rate"} <= set(rows[0])


@pytest.mark.e2e
def test_a_database_held_by_another_process_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "held.duckdb"
    Store.open(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from store.connection import Store; s = Store.open(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", str(path)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert main(["analyze", "budgets", "--db", str(path)]) == 2
        error = capsys.readouterr().err
        assert "in use by another process" in error and str(path) in error
    finally:
        holder.communicate(timeout=30)


@pytest.mark.parametrize(
    ("argv", "modules"),
    [
        (["store", "status", "--help"], ["store_status"]),
        (["sample-data", "--help"], ["sample_data"]),
        (["--help"], list(cli_main._VERB_MODULES.values())),
        (["no-such-verb"], list(cli_main._VERB_MODULES.values())),
    ],
)
def test_a_command_line_imports_the_module_of_its_verb_only(monkeypatch, capsys, argv, modules):
    """A verb's start-up does not pay for the others' imports (the server's, scipy, polars);
    --help and a mistyped verb list every verb."""
    imported: list[str] = []
    real = importlib.import_module

    def record(name: str):
        imported.append(name.removeprefix("flaglens.cli."))
        return real(name)

    monkeypatch.setattr(cli_main.importlib, "import_module", record)
    with pytest.raises(SystemExit):
        main(argv)
    assert imported == modules
    if argv == ["--help"]:
        listed = capsys.readouterr().out
        assert all(f"    {verb}" in listed for verb in cli_main._VERB_MODULES)
