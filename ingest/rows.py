"""Accepted and rejected records → Arrow tables for the writer, in the tables' own columns.

This runs in the decode workers (:mod:`ingest.workers`), so building the typed columns here
costs the server process nothing: the writer appends the tables as they come. (Extracting them
in the writer with DuckDB's JSON functions, as an earlier version did, spent more of the
server's time than the append itself.) Each typed column is one list comprehension over the
request's canonical records; non-string values of string fields are kept as their JSON text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa

from store.tables import arrow_table

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
# table → (column, canonical field) for every VARCHAR column copied from the canonical record
_VALUE = "feature_flag.result.value"  # decisions.value: any JSON value
_APPROVERS = "policy.change.approvers"  # policy_changes.approvers: a list of strings
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

# decisions.source by the canonical record's signal
_SOURCES: Mapping[object, str] = {"logs": "log", "traces": "span_event", "opa": "opa_decision_log"}
# the above and the key column: every column taken from a canonical string field
_STRING_COLUMNS: Mapping[str, tuple[tuple[str, str], ...]] = {
    table: (*fields, *((_KEY_FIELDS[table],) if table in _KEY_FIELDS else ()))
    for table, fields in _STRING_FIELDS.items()
}
_RECORD_STRUCTS: Mapping[str, pa.DataType] = {
    table: pa.struct([(field, pa.string()) for _, field in fields])
    for table, fields in _STRING_COLUMNS.items()
}


def json_text(value: Any) -> str:
    """Compact JSON, UTF-8 kept as is."""
    return orjson.dumps(value).decode()


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json_text(value)


def _strings(values: list[Any]) -> pa.Array:
    """A string column: strings and None as they are, other JSON values as their JSON text."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # a number, bool, list or map among them
        return pa.array([_str_or_none(v) for v in values], pa.string())


def _string_columns(table: str, records: list[Mapping[str, Any]]) -> dict[str, pa.Array]:
    """A table's string columns, read from the records in one pass by Arrow itself.

    That pass takes strings only; when a field holds another JSON value somewhere (a number as
    ``feature_flag.version``, say), the columns are built one by one with :func:`_strings`.
    """
    fields = _STRING_COLUMNS[table]
    try:
        arrays = pa.array(records, type=_RECORD_STRUCTS[table]).flatten()
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        arrays = [_strings([r.get(field) for r in records]) for _, field in fields]
    return {column: array for (column, _), array in zip(fields, arrays, strict=True)}


def _micros(nanos: Any) -> int | None:
    """An OTLP time in nanoseconds (0: unset) → microseconds, or None."""
    if isinstance(nanos, str) and nanos.isdigit():
        nanos = int(nanos)
    if type(nanos) is int and nanos > 0:
        return nanos // _NS_PER_US
    return None


def _string_list(value: Any) -> list[str | None] | None:
    if not isinstance(value, list):
        return None
    return [_str_or_none(v) for v in value]


class _EventColumns:
    """The accepted events of one event table in one request."""

    __slots__ = ("attributes", "contract_ids", "records", "renamed", "table", "times", "versions")

    def __init__(self, table: str) -> None:
        self.table = table
        self.records: list[Mapping[str, Any]] = []
        self.times: list[int] = []
        self.attributes: list[str] = []
        self.contract_ids: list[str] = []
        self.versions: list[str] = []
        self.renamed: list[list[str] | None] = []

    def to_arrow(self, request_id: int) -> pa.Table:
        records = self.records
        columns: dict[str, Any] = {
            "time": [t // _NS_PER_US for t in self.times],
            "attributes": self.attributes,
            "contract_id": self.contract_ids,
            "contract_version": self.versions,
            "request_id": [request_id] * len(records),
        }
        columns.update(_string_columns(self.table, records))
        if self.table == "decisions":
            columns["renamed_attributes"] = self.renamed
            columns["observed_time"] = [_micros(r.get("observed_time_unix_nano")) for r in records]
            columns["value"] = [json_text(r[_VALUE]) if _VALUE in r else None for r in records]
            columns["source"] = [_SOURCES.get(r.get("signal"), "log") for r in records]
        elif self.table == "policy_changes":
            columns["approvers"] = [_string_list(r.get(_APPROVERS)) for r in records]
        return arrow_table(self.table, columns)


class RequestRows:
    """Everything one export request adds to the store, built record by record."""

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self._events: dict[str, _EventColumns] = {}
        self._spans: list[Mapping[str, Any]] = []
        self._metric_points: list[dict[str, Any]] = []
        self._metric_drops: list[dict[str, Any]] = []
        self._quarantine: list[dict[str, Any]] = []
        self._uncontracted: list[dict[str, Any]] = []
        self._uncontracted_counts: Counter[str | None] = Counter()

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
        columns.records.append(record)
        columns.times.append(int(record["time_unix_nano"]))
        columns.attributes.append(json_text(record))
        columns.contract_ids.append(contract_id)
        columns.versions.append(contract_version)
        columns.renamed.append(list(renamed) or None)
        return True

    def add_uncontracted(self, record: Mapping[str, Any], *, keep: bool) -> None:
        """Count a record no contract claims under its service; store it too when ``keep``."""
        service = _str_or_none(record.get("service.name"))
        self._uncontracted_counts[service] += 1
        if not keep:
            return
        severity = record.get("severity_number")
        self._uncontracted.append(
            {
                "time": _micros(record.get("time_unix_nano")),
                "service_name": service,
                "environment": _str_or_none(record.get("deployment.environment.name")),
                "event_name": _str_or_none(record.get("event_name")),
                "severity_number": severity if type(severity) is int else None,
                "record": json_text(record),
                "request_id": self.request_id,
            }
        )

    def uncontracted_counts(self) -> tuple[tuple[str | None, int], ...]:
        """(service.name, records) of the request's uncontracted records, by service."""
        return tuple(sorted(self._uncontracted_counts.items(), key=lambda kv: kv[0] or ""))

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
        """One Arrow table per table that received rows, in that table's columns."""
        tables = {name: cols.to_arrow(self.request_id) for name, cols in self._events.items()}
        if self._spans:
            tables["spans"] = self._spans_table()
        for table, rows in (("metric_points", self._metric_points),
                            ("metric_drops", self._metric_drops),
                            ("uncontracted", self._uncontracted)):  # fmt: skip
            if rows:
                tables[table] = arrow_table(table, {n: [r[n] for r in rows] for n in rows[0]})
        if self._quarantine:
            names = list(self._quarantine[0])
            tables["quarantine"] = arrow_table(
                "quarantine", {n: [row[n] for row in self._quarantine] for n in names}
            )
        return tables
