"""How the read verbs find what to read: the note a server leaves beside its database, and
the store flags (a DuckLake is read directly)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from flaglens.cli.main import main
from flaglens.client import Client, ClientError
from flaglens.discovery import ServerNote, note_path, read_note, remove_note, write_note

WINDOW = ["--from", "2026-11-16T00:00Z", "--to", "2026-11-23T00:00Z"]


def test_a_note_is_read_while_its_server_lives(tmp_path):
    db = tmp_path / "f.duckdb"
    write_note(db, ServerNote("http://127.0.0.1:1", os.getpid(), auth=True))
    assert read_note(db) == ServerNote("http://127.0.0.1:1", os.getpid(), auth=True)
    remove_note(db, os.getpid() + 1)  # not the writer's: stays
    assert note_path(db).exists()
    remove_note(db, os.getpid())
    assert not note_path(db).exists() and read_note(db) is None


def test_a_note_left_by_a_dead_server_is_ignored(tmp_path):
    db = tmp_path / "f.duckdb"
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    write_note(db, ServerNote("http://127.0.0.1:1", int(done.stdout), auth=False))
    assert read_note(db) is None and read_note(db, live_only=False) is not None


def test_a_database_with_a_live_note_is_read_through_its_server(tmp_path, capsys):
    """The verb says on stderr where it reads; an unreachable server is a clear error."""
    db = tmp_path / "f.duckdb"
    write_note(db, ServerNote("http://127.0.0.1:9", os.getpid(), auth=False))
    assert main(["analyze", "budgets", "--db", str(db), *WINDOW]) == 2
    err = capsys.readouterr().err
    assert f"{db} is held by `flaglens serve` (pid {os.getpid()}); reading through its API" in err
    assert "cannot read from the server at http://127.0.0.1:9" in err


def test_alerts_evaluate_leaves_alert_state_to_the_server(tmp_path, capsys):
    db = tmp_path / "f.duckdb"
    write_note(db, ServerNote("http://127.0.0.1:9", os.getpid(), auth=False))
    assert main(["alerts", "evaluate", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "owns alert state" in err and "--dry-run" in err
    assert not db.exists()


def test_export_writes_the_format_its_file_names(sample_week, tmp_path, capsys):
    out = tmp_path / "changes.parquet"
    assert main(["export", "policy_changes", "--db", str(sample_week.db), *WINDOW,
                 "--out", str(out)]) == 0  # fmt: skip
    assert pq.read_table(out).num_rows == sample_week.manifest["counts"]["policy_changes"]
    assert main(["export", "decisions", "--db", str(sample_week.db), *WINDOW,
                 "--cohort", "beta"]) == 2  # fmt: skip
    assert "decisions cannot be filtered by cohort" in capsys.readouterr().err


def test_export_to_standard_output(sample_week, capfdbinary):
    assert main(["export", "quarantine", "--db", str(sample_week.db), *WINDOW,
                 "--limit", "3"]) == 0  # fmt: skip
    lines = capfdbinary.readouterr().out.splitlines()
    assert len(lines) == 3 and all(json.loads(line)["errors"] for line in lines)


def test_export_offers_every_table_and_format():
    """The verb's lists (kept apart so that the command line starts without DuckDB) match."""
    from analytics.exports import EXPORT_TABLES
    from api.formats import FORMATS
    from flaglens.cli import export

    assert export.TABLES == tuple(EXPORT_TABLES) and export.FORMATS == FORMATS


def test_a_failed_export_leaves_no_file(sample_week, tmp_path, capsys):
    out = tmp_path / "d.arrow"
    assert main(["export", "decisions", "--db", str(sample_week.db), "--from", "yesterday",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "neither ISO-8601" in capsys.readouterr().err and not out.exists()


def test_a_store_url_naming_a_held_file_is_read_through_its_server_too(tmp_path, capsys):
    db = tmp_path / "f.duckdb"
    write_note(db, ServerNote("http://127.0.0.1:9", os.getpid(), auth=False))
    assert main(["analyze", "budgets", "--store", f"duckdb:{db}", *WINDOW]) == 2
    assert f"{db} is held by `flaglens serve`" in capsys.readouterr().err


def test_a_lake_without_its_data_path_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FLAGLENS_DATA_PATH", raising=False)
    lake = "ducklake:postgres://flaglens@127.0.0.1:9/flaglens"
    for verb in (["analyze", "budgets"], ["export", "decisions"], ["alerts", "evaluate"]):
        assert main([*verb, "--store", lake]) == 2
        assert "a DuckLake needs --data-path (FLAGLENS_DATA_PATH)" in capsys.readouterr().err
    with pytest.raises(ClientError, match="needs --data-path"):
        Client(store=lake)
    with pytest.raises(ClientError, match="not both"):
        Client(db=tmp_path / "f.duckdb", store=lake, data_path=tmp_path)
