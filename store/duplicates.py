"""Duplicate deliveries: which rows of a commit the store holds already, or holds twice.

An exporter that times out sends the same records again, and each record carries a key of its
own (a decision id, a span's trace and span ids). The writer drops a repeated key inside the
commit's transaction: among the group itself, and among stored rows whose event time lies in the
incoming rows' time range. :class:`RecentKeys` answers that lookup for live traffic without a
query; older time ranges are looked up in the database, which is cheap because DuckDB skips row
groups by their min/max. On a store other processes write as well (a DuckLake), the database is
always asked: RecentKeys knows only this writer's commits, and a retry may land on another
replica.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from store.recent_keys import RecentKeys

# table → (key columns identifying a record, event-time column bounding the duplicate lookup)
DEDUPE_KEYS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "decisions": (("decision_id",), "time"),
    "policy_changes": (("change_id",), "time"),
    "spans": (("trace_id", "span_id"), "start_time"),
    "metric_points": (("point_id",), "time"),
}
NO_TIME = -(2**63)  # the event time (µs) below every stored one


@dataclass(frozen=True, slots=True)
class Kept:
    """What :meth:`DuplicateFilter.drop` leaves of a table's rows in one commit."""

    rows: pa.Table
    dropped_by: dict[int, int]
    """Rows dropped, by the index of the request (the owner) they came from."""
    keys: list[str]
    times: list[int]
    """The kept rows' keys and event times (µs), to remember once they are committed."""


class DuplicateFilter:
    """The writer's duplicate lookup, one :class:`RecentKeys` a table; used on its thread only."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, *, shared: bool, capacity: int) -> None:
        self._cursor = cursor
        self._shared = shared
        self._recent = {
            table: RecentKeys(self._newest_stored(table, time_column), capacity)
            for table, (_, time_column) in DEDUPE_KEYS.items()
        }

    def recent(self, table: str) -> RecentKeys:
        """The keys of ``table`` this writer committed lately."""
        return self._recent[table]

    def _newest_stored(self, table: str, time_column: str) -> int:
        query = f'SELECT epoch_us(max({time_column})) FROM "{table}"'  # noqa: S608 - constants
        row = self._cursor.execute(query).fetchone()
        return NO_TIME if row is None or row[0] is None else int(row[0])

    def drop(self, table: str, rows: pa.Table, owners: list[int]) -> Kept:
        """Drop rows already stored, or earlier in ``rows``; ``owners[i]`` is row i's request."""
        key_columns, time_column = DEDUPE_KEYS[table]
        if len(key_columns) == 1:
            keys = rows[key_columns[0]]
        else:
            keys = pc.binary_join_element_wise(*(rows[c] for c in key_columns), "/")
        key_list: list[str] = keys.to_pylist()
        times: list[int] = rows[time_column].cast(pa.int64()).to_pylist()
        low, high = min(times), max(times)
        recent = self._recent[table]
        unique = set(key_list)
        if low >= recent.floor and not self._shared:
            seen = recent.stored(unique, low, high)
        else:
            seen = self._stored_keys(table, keys, rows[time_column])
        if not seen and len(unique) == len(key_list):
            return Kept(rows, {}, key_list, times)
        keep = []
        dropped_by: dict[int, int] = {}
        for index, key in enumerate(key_list):
            if key in seen:
                keep.append(False)
                dropped_by[owners[index]] = dropped_by.get(owners[index], 0) + 1
            else:
                seen.add(key)
                keep.append(True)
        kept_keys = [key for key, kept in zip(key_list, keep, strict=True) if kept]
        kept_times = [t for t, kept in zip(times, keep, strict=True) if kept]
        return Kept(rows.filter(pa.array(keep)), dropped_by, kept_keys, kept_times)

    def committed(self, table: str, kept: Kept) -> None:
        """The kept rows are stored: later lookups find them without a query."""
        self._recent[table].add(kept.keys, kept.times)

    def uncertain(self, table: str, kept: Kept) -> None:
        """A COMMIT failed, so the kept rows may be stored or not: ask the database about their
        time range from now on."""
        self._recent[table].forget(max(kept.times, default=NO_TIME))

    def _stored_keys(self, table: str, keys: pa.ChunkedArray, times: pa.ChunkedArray) -> set[str]:
        """Which keys the database holds with an event time in the range of ``times``."""
        key_columns, time_column = DEDUPE_KEYS[table]
        low, high = pc.min_max(times).values()
        key_sql = " || '/' || ".join(key_columns)
        # DuckDB reads the local variable named in the query (cheaper than register())
        _keys = pa.table({"k": keys})
        stored = self._cursor.execute(
            f'SELECT DISTINCT {key_sql} FROM "{table}" '  # noqa: S608 - constant names
            f"WHERE {time_column} BETWEEN $low AND $high "
            f"AND {key_sql} IN (SELECT k FROM _keys)",
            {"low": low.as_py(), "high": high.as_py()},
        ).fetchall()
        return {row[0] for row in stored}
