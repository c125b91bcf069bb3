"""Accepted and rejected records → column lists for the store's tables.

The pipeline hands each accepted canonical record (and each quarantined one) to a
:class:`TableRows` builder, which appends one value per column. Building columns (not row
dicts) lets the writer turn them into one Arrow table per request without another pass.
The columns here are the store's columns minus the commit-time ones the writer fills in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa

from analytics.warehouse.tables import arrow_table

_NS_PER_US = 1000

# columns of each table whose values are unix nanoseconds in the builder and timestamps in the store
_TIME_COLUMNS = {
    "decisions": ("time", "observed_time"),
    "policy_changes": ("time",),
    "engagement": ("time",),
    "spans": ("start_time", "end_time"),
    "quarantine": ("time",),
}


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else _json(value)


def _str_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [item if isinstance(item, str) else _json(item) for item in value]
    return [_str_or_none(value) or ""]


# (column, how to read it from a canonical record); the record keys are contract field names
_Extractor = Callable[[Mapping[str, Any]], Any]


def _key(name: str) -> _Extractor:
    return lambda record: record.get(name)


def _text(name: str) -> _Extractor:
    return lambda record: _str_or_none(record.get(name))


_DECISION_COLUMNS: tuple[tuple[str, _Extractor], ...] = (
    ("time", _key("time_unix_nano")),
    ("observed_time", _key("observed_time_unix_nano")),
    ("decision_id", _text("decision.id")),
    ("service_name", _text("service.name")),
    ("environment", _text("deployment.environment.name")),
    ("flag_key", _text("feature_flag.key")),
    ("flag_version", _text("feature_flag.version")),
    ("variant", _text("feature_flag.result.variant")),
    (
        "value",
        lambda r: (
            None if "feature_flag.result.value" not in r else _json(r["feature_flag.result.value"])
        ),
    ),
    ("reason", _text("feature_flag.result.reason")),
    ("provider_name", _text("feature_flag.provider.name")),
    ("subject_id", _text("feature_flag.context.id")),
    ("set_id", _text("feature_flag.set.id")),
    ("policy_module", _text("policy.module")),
    ("rule_id", _text("policy.rule.id")),
    ("cohort_id", _text("cohort.id")),
    ("error_type", _text("error.type")),
    ("privacy_purpose", _text("privacy.purpose")),
    ("privacy_consent_state", _text("privacy.consent.state")),
    ("source", lambda r: "span_event" if r.get("signal") == "traces" else "log"),
    ("trace_id", _key("trace_id")),
    ("span_id", _key("span_id")),
)

_CHANGE_COLUMNS: tuple[tuple[str, _Extractor], ...] = (
    ("time", _key("time_unix_nano")),
    ("change_id", _text("policy.change.id")),
    ("service_name", _text("service.name")),
    ("environment", _text("deployment.environment.name")),
    ("flag_key", _text("feature_flag.key")),
    ("policy_module", _text("policy.module")),
    ("actor", _text("policy.change.actor")),
    ("action", _text("policy.change.action")),
    ("previous_version", _text("policy.change.previous_version")),
    ("version", _text("feature_flag.version")),
    ("approvers", lambda r: _str_list(r.get("policy.change.approvers"))),
    ("ticket", _text("policy.change.ticket")),
    ("key_id", _text("policy.change.key_id")),
    ("signature", _text("policy.change.signature")),
)

_ENGAGEMENT_COLUMNS: tuple[tuple[str, _Extractor], ...] = (
    ("time", _key("time_unix_nano")),
    ("service_name", _text("service.name")),
    ("environment", _text("deployment.environment.name")),
    ("subject_id", _text("user.id")),
    ("cohort_id", _text("cohort.id")),
    ("action", _text("engagement.action")),
)

# event name → (table, record columns)
EVENT_TABLES: Mapping[str, tuple[str, tuple[tuple[str, _Extractor], ...]]] = {
    "feature_flag.evaluation": ("decisions", _DECISION_COLUMNS),
    "policy.change": ("policy_changes", _CHANGE_COLUMNS),
    "user.engagement": ("engagement", _ENGAGEMENT_COLUMNS),
}


class TableRows:
    """Column lists for one table of one request."""

    __slots__ = ("columns", "count", "table")

    def __init__(self, table: str, names: Sequence[str]) -> None:
        self.table = table
        self.columns: dict[str, list[Any]] = {name: [] for name in names}
        self.count = 0

    def append(self, values: Mapping[str, Any]) -> None:
        for name, column in self.columns.items():
            column.append(values.get(name))
        self.count += 1

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table with the store's schema (nanoseconds → timestamps)."""
        columns: dict[str, Any] = dict(self.columns)
        for name in _TIME_COLUMNS.get(self.table, ()):
            columns[name] = [None if ns is None else ns // _NS_PER_US for ns in columns[name]]
        return arrow_table(self.table, columns)


class RequestRows:
    """Everything one export request adds to the store, built record by record."""

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self._tables: dict[str, TableRows] = {}

    def _rows(self, table: str, names: Sequence[str]) -> TableRows:
        rows = self._tables.get(table)
        if rows is None:
            rows = self._tables[table] = TableRows(table, names)
        return rows

    def add_event(
        self,
        record: Mapping[str, Any],
        *,
        contract_id: str,
        contract_version: str,
        renamed: Sequence[str],
    ) -> bool:
        """Add an accepted event to its table; False when its event name has no table."""
        target = EVENT_TABLES.get(str(record.get("event_name")))
        if target is None:
            return False
        table, extractors = target
        values = {name: extract(record) for name, extract in extractors}
        values["contract_id"] = contract_id
        values["contract_version"] = contract_version
        values["attributes"] = _json(record)
        values["request_id"] = self.request_id
        if table == "decisions":
            values["renamed_attributes"] = list(renamed) or None
        self._rows(table, list(values)).append(values)
        return True

    def add_span(self, values: Mapping[str, Any]) -> None:
        """Add an accepted span (values keyed by `spans` column names, times in nanoseconds)."""
        row = dict(values)
        row["attributes"] = _json(row["attributes"])
        row["request_id"] = self.request_id
        self._rows("spans", list(row)).append(row)

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
        values = {
            "request_id": self.request_id,
            "signal": signal,
            "event_name": event_name,
            "service_name": _str_or_none(record.get("service.name")),
            "environment": _str_or_none(record.get("deployment.environment.name")),
            "time": record.get("time_unix_nano")
            if isinstance(record.get("time_unix_nano"), int)
            else None,
            "contract_id": contract_id,
            "contract_version": contract_version,
            "errors": _json(list(errors)),
            "record": _json(record),
            "status": "quarantined",
        }
        self._rows("quarantine", list(values)).append(values)

    def arrow_tables(self) -> dict[str, pa.Table]:
        """One Arrow table per table that received rows."""
        return {name: rows.to_arrow() for name, rows in self._tables.items() if rows.count}
