"""Accepted and rejected records → Arrow tables for the writer.

Typed columns of event tables are extracted by DuckDB, not Python: for each accepted event the
pipeline keeps only the canonical record serialised once as JSON, plus the few fields the writer
needs before inserting (the record's key and time, for duplicate detection). The writer inserts
with :data:`TYPED_SELECTS`, one JSON parse per row in DuckDB's C++ (which also runs beside
Python, since DuckDB releases the GIL). Building the columns per record in Python cost more than
decoding the protobuf did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa

from analytics.warehouse.tables import arrow_table

_NS_PER_US = 1000
_TIMESTAMP = pa.timestamp("us", tz="UTC")

# accepted event name → table
EVENT_TABLES: Mapping[str, str] = {
    "feature_flag.evaluation": "decisions",
    "policy.change": "policy_changes",
    "user.engagement": "engagement",
}
# table → the canonical key identifying a record (for duplicate detection), if any
_KEY_FIELDS: Mapping[str, tuple[str, str]] = {
    "decisions": ("decision_id", "decision.id"),
    "policy_changes": ("change_id", "policy.change.id"),
}
# table → (column, canonical field) for every VARCHAR column DuckDB extracts from the JSON
_STRING_FIELDS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "decisions": (
        ("service_name", "service.name"),
        ("environment", "deployment.environment.name"),
        ("flag_key", "feature_flag.key"),
        ("flag_version", "feature_flag.version"),
        ("variant", "feature_flag.result.variant"),
        ("reason", "feature_flag.result.reason"),
        ("provider_name", "feature_flag.provider.name"),
        ("subject_id", "feature_flag.context.id"),
        ("set_id", "feature_flag.set.id"),
        ("policy_module", "policy.module"),
        ("rule_id", "policy.rule.id"),
        ("cohort_id", "cohort.id"),
        ("error_type", "error.type"),
        ("privacy_purpose", "privacy.purpose"),
        ("privacy_consent_state", "privacy.consent.state"),
        ("trace_id", "trace_id"),
        ("span_id", "span_id"),
        ("observed_ns", "observed_time_unix_nano"),
        ("signal", "signal"),
    ),
    "policy_changes": (
        ("service_name", "service.name"),
        ("environment", "deployment.environment.name"),
        ("flag_key", "feature_flag.key"),
        ("policy_module", "policy.module"),
        ("actor", "policy.change.actor"),
        ("action", "policy.change.action"),
        ("previous_version", "policy.change.previous_version"),
        ("version", "feature_flag.version"),
        ("ticket", "policy.change.ticket"),
        ("key_id", "policy.change.key_id"),
        ("signature", "policy.change.signature"),
    ),
    "engagement": (
        ("service_name", "service.name"),
        ("environment", "deployment.environment.name"),
        ("subject_id", "user.id"),
        ("cohort_id", "cohort.id"),
        ("action", "engagement.action"),
    ),
}
# columns computed from the extracted strings rather than copied
_DERIVED: Mapping[str, tuple[tuple[str, str], ...]] = {
    "decisions": (
        # HUGEINT: an OTLP time is an unsigned 64-bit count of nanoseconds, past BIGINT's range
        (
            "observed_time",
            "make_timestamp((nullif(observed_ns::HUGEINT, 0) // 1000)::BIGINT)::TIMESTAMPTZ",
        ),
        ("value", "json_extract(attributes, '$.\"feature_flag.result.value\"')"),
        ("source", "CASE signal WHEN 'traces' THEN 'span_event' ELSE 'log' END"),
    ),
    "policy_changes": (
        (
            "approvers",
            "CAST(json_extract(attributes, '$.\"policy.change.approvers\"') AS VARCHAR[])",
        ),
    ),
    "engagement": (),
}
_PASSED_THROUGH = ("time", "attributes", "contract_id", "contract_version", "request_id")


def _typed_select(table: str) -> str:
    fields = _STRING_FIELDS[table]
    paths = ", ".join("'$.\"" + field + "\"'" for _, field in fields)
    extracted = ", ".join(f"v[{i + 1}] AS {column}" for i, (column, _) in enumerate(fields))
    inner = f"SELECT *, json_extract_string(attributes, [{paths}]) AS v FROM _incoming"  # noqa: S608
    outer = [*_PASSED_THROUGH, *(f"{expr} AS {column}" for column, expr in _DERIVED[table])]
    if table in _KEY_FIELDS:
        outer.append(_KEY_FIELDS[table][0])
    if table == "decisions":
        outer.append("renamed_attributes")
    outer.extend(column for column, _ in fields if column not in ("observed_ns", "signal"))
    return f"SELECT {', '.join(outer)} FROM (SELECT *, {extracted} FROM ({inner}))"  # noqa: S608


# table → SELECT over the registered `_incoming` raw rows producing the table's columns
TYPED_SELECTS: Mapping[str, str] = {table: _typed_select(table) for table in _STRING_FIELDS}


def _raw_schema(table: str) -> pa.Schema:
    fields = [pa.field("time", _TIMESTAMP)]
    if table in _KEY_FIELDS:
        fields.append(pa.field(_KEY_FIELDS[table][0], pa.string()))
    fields += [
        pa.field("attributes", pa.string()),
        pa.field("contract_id", pa.string()),
        pa.field("contract_version", pa.string()),
        pa.field("request_id", pa.int64()),
    ]
    if table == "decisions":
        fields.append(pa.field("renamed_attributes", pa.list_(pa.string())))
    return pa.schema(fields)


RAW_SCHEMAS: Mapping[str, pa.Schema] = {table: _raw_schema(table) for table in _STRING_FIELDS}


def json_text(value: Any) -> str:
    """Compact JSON, UTF-8 kept as is."""
    return orjson.dumps(value).decode()


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json_text(value)


class _EventColumns:
    """Raw column lists of one event table for one request."""

    __slots__ = ("attributes", "contract_ids", "keys", "renamed", "table", "times", "versions")

    def __init__(self, table: str) -> None:
        self.table = table
        self.times: list[int] = []
        self.keys: list[str | None] = []
        self.attributes: list[str] = []
        self.contract_ids: list[str] = []
        self.versions: list[str] = []
        self.renamed: list[list[str] | None] = []

    def to_arrow(self, request_id: int) -> pa.Table:
        count = len(self.attributes)
        columns: dict[str, Any] = {
            "time": pa.array([t // _NS_PER_US for t in self.times], pa.int64()).cast(_TIMESTAMP),
            "attributes": self.attributes,
            "contract_id": self.contract_ids,
            "contract_version": self.versions,
            "request_id": pa.array([request_id] * count, pa.int64()),
        }
        if self.table in _KEY_FIELDS:
            columns[_KEY_FIELDS[self.table][0]] = self.keys
        if self.table == "decisions":
            columns["renamed_attributes"] = self.renamed
        schema = RAW_SCHEMAS[self.table]
        return pa.table({name: columns[name] for name in schema.names}, schema=schema)


class RequestRows:
    """Everything one export request adds to the store, built record by record."""

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self._events: dict[str, _EventColumns] = {}
        self._spans: list[Mapping[str, Any]] = []
        self._metric_points: list[dict[str, Any]] = []
        self._metric_drops: list[dict[str, Any]] = []
        self._quarantine: list[dict[str, Any]] = []

    def add_event(
        self,
        record: Mapping[str, Any],
        *,
        contract_id: str,
        contract_version: str,
        renamed: Sequence[str],
    ) -> bool:
        """Add an accepted event to its table; False when its event name has no table."""
        table = EVENT_TABLES.get(str(record.get("event_name")))
        if table is None:
            return False
        columns = self._events.get(table)
        if columns is None:
            columns = self._events[table] = _EventColumns(table)
        columns.times.append(int(record["time_unix_nano"]))
        key = _KEY_FIELDS.get(table)
        columns.keys.append(_str_or_none(record.get(key[1])) if key else None)
        columns.attributes.append(json_text(record))
        columns.contract_ids.append(contract_id)
        columns.versions.append(contract_version)
        columns.renamed.append(list(renamed) or None)
        return True

    def add_span(self, values: Mapping[str, Any]) -> None:
        """Add an accepted span (values keyed by `spans` column names, times in nanoseconds)."""
        self._spans.append(values)

    def add_metric_point(self, values: Mapping[str, Any]) -> None:
        """Add a kept data point (values keyed by `metric_points` columns, times in ns)."""
        row = dict(values)
        row["time"] = row["time"] // _NS_PER_US
        if row["start_time"] is not None:
            row["start_time"] = row["start_time"] // _NS_PER_US
        row["attributes"] = json_text(row["attributes"])
        row["request_id"] = self.request_id
        self._metric_points.append(row)

    def add_metric_drop(self, *, service: str | None, metric: str, kind: str, points: int) -> None:
        """Count data points accepted but not kept, by the rule of ingest.decode.metrics."""
        self._metric_drops.append(
            {"request_id": self.request_id, "service_name": service, "metric": metric,
             "kind": kind, "points": points}
        )  # fmt: skip

    def add_quarantine(
        self,
        *,
        signal: str,
        record: Mapping[str, Any],
        event_name: str | None,
        contract_id: str | None,
        contract_version: str | None,
        errors: Sequence[Mapping[str, Any]],
    ) -> None:
        """Keep a rejected record whole, with every reason it was rejected."""
        time = record.get("time_unix_nano")
        self._quarantine.append(
            {
                "request_id": self.request_id,
                "signal": signal,
                "event_name": event_name,
                "service_name": _str_or_none(record.get("service.name")),
                "environment": _str_or_none(record.get("deployment.environment.name")),
                "time": time // _NS_PER_US if type(time) is int and time > 0 else None,
                "contract_id": contract_id,
                "contract_version": contract_version,
                "errors": json_text(list(errors)),
                "record": json_text(record),
                "status": "quarantined",
            }
        )

    def _spans_table(self) -> pa.Table:
        names = (
            *("start_time", "end_time", "duration_ms", "service_name", "environment", "name"),
            *("kind", "status_code", "http_route", "http_method", "http_status_code"),
            *("trace_id", "span_id", "parent_span_id"),
        )
        columns: dict[str, list[Any]] = {n: [s[n] for s in self._spans] for n in names}
        for name in ("start_time", "end_time"):
            columns[name] = [ns // _NS_PER_US for ns in columns[name]]
        columns["attributes"] = [json_text(s["attributes"]) for s in self._spans]
        columns["request_id"] = [self.request_id] * len(self._spans)
        return arrow_table("spans", columns)

    def arrow_tables(self) -> dict[str, pa.Table]:
        """One Arrow table per table that received rows (event tables in their raw layout)."""
        tables = {name: cols.to_arrow(self.request_id) for name, cols in self._events.items()}
        if self._spans:
            tables["spans"] = self._spans_table()
        for table, rows in (("metric_points", self._metric_points),
                            ("metric_drops", self._metric_drops)):  # fmt: skip
            if rows:
                tables[table] = arrow_table(table, {n: [r[n] for r in rows] for n in rows[0]})
        if self._quarantine:
            names = list(self._quarantine[0])
            tables["quarantine"] = arrow_table(
                "quarantine", {n: [row[n] for row in self._quarantine] for n in names}
            )
        return tables
