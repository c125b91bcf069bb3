"""contracts/consumers.toml names exactly the fields ingest/rows.py stores in typed columns, and
`required` exactly those whose columns are NOT NULL; analytics' signed fields are among them."""

from __future__ import annotations

import duckdb
import pytest

from contracts import load_consumers
from contracts.signing import _SIGNED_FIELDS, KEY_ID, SIGNATURE
from ingest import rows
from store.migrations import migrate

# canonical fields rows.py reads outside the string-column tables, per table
_OTHER_FIELDS = {
    "decisions": {
        "time": "time_unix_nano",
        "observed_time": "observed_time_unix_nano",
        "value": "feature_flag.result.value",
    },
    "policy_changes": {"time": "time_unix_nano", "approvers": "policy.change.approvers"},
    "engagement": {"time": "time_unix_nano"},
}


def _columns(table: str) -> dict[str, str]:
    """Column → the canonical field it is read from."""
    mapping = {column: name for column, name in rows._STRING_COLUMNS[table]}
    return mapping | _OTHER_FIELDS[table]


def _not_null(table: str) -> set[str]:
    con = duckdb.connect()
    migrate(con)
    found = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = ? AND is_nullable = 'NO'",
        [table],
    ).fetchall()
    return {name for (name,) in found}


@pytest.mark.parametrize("event", sorted(rows.EVENT_TABLES))
def test_consumed_fields_match_the_typed_columns(event):
    consumed = load_consumers()[event]
    table = rows.EVENT_TABLES[event]
    assert consumed.table == table
    columns = _columns(table)
    assert consumed.all == set(columns.values())
    assert consumed.required == {columns[c] for c in _not_null(table) if c in columns}


def test_every_event_table_is_declared():
    assert set(load_consumers()) == set(rows.EVENT_TABLES)


def test_signed_fields_are_consumed():
    """The governance analytics verify signatures over these: removing one breaks them."""
    assert {*_SIGNED_FIELDS, SIGNATURE, KEY_ID} <= load_consumers()["policy.change"].all
