"""`flaglens quarantine replay` on a stopped database: checks against --contracts-dir, writes
itself, once."""

from __future__ import annotations

import json

import duckdb

from flaglens.cli.main import main
from store.connection import Store
from store.writer import StoreWriter
from tests.contracts.copies import PRIVACY, copy_contracts, privacy_allowing_breaks
from tests.factories import privacy_decision_attributes
from tests.ingest.test_replay import ingest


def test_replay_on_a_stopped_database(tmp_path, capsys):
    db = tmp_path / "stopped.duckdb"
    with Store.open(db) as store:
        writer = StoreWriter(store)
        writer.start()
        ingest(store, writer, [
            privacy_decision_attributes(**{"privacy.consent.state": "unknown"}),
            privacy_decision_attributes(**{"privacy.purpose": None}),
        ])  # fmt: skip
        writer.close()
    directory = copy_contracts(tmp_path)
    privacy_allowing_breaks(directory)
    args = ["quarantine", "replay", "--db", str(db), "--contracts-dir", str(directory)]
    assert main([*args, "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["released"], first["still_rejected"]) == (1, 1)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "0 released, 1 still rejected" in text
    assert "/privacy.purpose: required property is missing" in text
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT contract_id, contract_version FROM decisions").fetchall() == [
            (PRIVACY, "1.2.0")
        ]


def test_an_unknown_contract_is_a_usage_error(tmp_path, capsys):
    db = tmp_path / "empty.duckdb"
    Store.open(db).close()
    assert main(["quarantine", "replay", "--db", str(db), "--contract", "nope@1"]) == 2
    assert "flaglens quarantine replay:" in capsys.readouterr().err


def test_a_lake_is_replayed_through_a_server_only(tmp_path, capsys):
    lake = ["--store", "ducklake:postgres://postgres@127.0.0.1:1/x", "--data-path", str(tmp_path)]
    assert main(["quarantine", "replay", *lake]) == 2
    assert "is a lake: this verb opens a DuckDB file" in capsys.readouterr().err
