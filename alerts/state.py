"""The alert states and history the evaluator keeps, as JSON-ready rows (what the read API and
the client list)."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from analytics.windows import TimeWindow

STATES = ("pending", "firing", "resolved", "inactive")
_STATE_COLUMNS = ("fingerprint", "rule", "state", "labels", "annotations", "active_since",
                  "fired_at", "resolved_at", "last_notified_at", "value")  # fmt: skip
_HISTORY_COLUMNS = ("changed_at", "fingerprint", "rule", "labels", "from_state", "to_state",
                    "value")  # fmt: skip


def alert_states(
    cursor: duckdb.DuckDBPyConnection, *, state: str | None = None, rule: str | None = None
) -> list[dict[str, Any]]:
    """Every alert instance the evaluator knows (or those in ``state`` / of ``rule``), firing
    first, then by rule and fingerprint."""
    rows = cursor.execute(
        f"SELECT {', '.join(_STATE_COLUMNS)} FROM alert_state "  # noqa: S608 - constant columns
        "WHERE ($state IS NULL OR state = $state) AND ($rule IS NULL OR rule = $rule) "
        "ORDER BY state != 'firing', state != 'pending', rule, fingerprint",
        {"state": state, "rule": rule},
    ).fetchall()
    return [_parsed(dict(zip(_STATE_COLUMNS, row, strict=True))) for row in rows]


def alert_history(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    *,
    rule: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """One page of the state transitions in ``window``, newest first."""
    rows = cursor.execute(
        f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM alert_history "  # noqa: S608
        "WHERE changed_at >= $start AND changed_at < $end AND ($rule IS NULL OR rule = $rule) "
        "ORDER BY changed_at DESC, fingerprint, to_state LIMIT $limit OFFSET $offset",
        {"start": window.start, "end": window.end, "rule": rule, "limit": limit,
         "offset": offset},
    ).fetchall()  # fmt: skip
    return [_parsed(dict(zip(_HISTORY_COLUMNS, row, strict=True))) for row in rows]


def _parsed(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("labels", "annotations"):
        if key in row:
            row[key] = json.loads(row[key])
    return row
