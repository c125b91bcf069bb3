"""Hand-built stores for known-answer tests: rows inserted with SQL into a real (in-memory)
DuckDB store, migrated as a file would be, or a DuckLake (``store_maker.new``, tests/stores.py)."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from typing import Any

from store.connection import Store


class LazyModule:
    """The module ``name``, imported when one of its names is first used: scipy.stats, the
    known answers' reference, costs more to import than the rest of a worker's collection, and
    most workers never use it. (importlib's LazyLoader would not do: pytest's collection looks
    at every module-level name, which loads it.)"""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):  # pytest's and copy's probes: not the module's names
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)


def add_spans(
    store: Store,
    *,
    service: str,
    start: datetime,
    every: timedelta,
    count: int,
    errors: set[int] | None = None,
    duration_ms: float | list[float] = 100.0,
    environment: str = "prod",
) -> None:
    """``count`` server spans from ``start``, one per ``every``; indices in ``errors`` fail."""
    errors = errors or set()
    rows = []
    for i in range(count):
        at = start + i * every
        duration = duration_ms[i] if isinstance(duration_ms, list) else duration_ms
        rows.append(
            (at, at + timedelta(milliseconds=duration), at, duration, service, environment,
             "GET /x", "server", "error" if i in errors else "unset", "/x", "GET",
             500 if i in errors else 200, f"{i:032x}", f"{i:016x}", None, "{}", 1)
        )  # fmt: skip
    _insert(store, "INSERT INTO spans SELECT * FROM _rows", rows, _SPAN_COLUMNS)


_SPAN_COLUMNS = (
    "start_time", "end_time", "ingested_at", "duration_ms", "service_name", "environment", "name",
    "kind", "status_code", "http_route", "http_method", "http_status_code", "trace_id", "span_id",
    "parent_span_id", "attributes", "request_id",
)  # fmt: skip


def _insert(store: Store, sql: str, rows: list[tuple], columns: tuple[str, ...]) -> None:
    """Run ``sql`` over ``rows`` registered as ``_rows`` (one statement: executemany is slow)."""
    import pyarrow as pa

    if not rows:
        return
    table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})
    cursor = store.cursor()
    cursor.register("_rows", table)
    try:
        cursor.execute(sql)
    finally:
        cursor.unregister("_rows")


def add_change(store: Store, attributes: dict, at: datetime, request_id: int = 1) -> None:
    """One policy_changes row, typed columns taken from the canonical ``attributes``."""
    import json

    store.cursor().execute(
        "INSERT INTO policy_changes BY NAME SELECT $at AS time, $at AS ingested_at, "
        "$a->>'$.\"policy.change.id\"' AS change_id, 'control-plane' AS service_name, "
        "$a->>'$.\"deployment.environment.name\"' AS environment, "
        "$a->>'$.\"feature_flag.key\"' AS flag_key, $a->>'$.\"policy.module\"' AS policy_module, "
        "$a->>'$.\"policy.change.actor\"' AS actor, 'update' AS action, "
        "$a->>'$.\"feature_flag.version\"' AS version, "
        "CAST($a->'$.\"policy.change.approvers\"' AS VARCHAR[]) AS approvers, "
        "$a->>'$.\"policy.change.key_id\"' AS key_id, "
        "$a->>'$.\"policy.change.signature\"' AS signature, 'policy.change' AS contract_id, "
        "'1.0.0' AS contract_version, $a AS attributes, $r AS request_id",
        {"at": at, "a": json.dumps(attributes), "r": request_id},
    )


def add_decisions(
    store: Store,
    *,
    flag: str,
    version: str,
    times: list[datetime],
    service: str = "api",
    environment: str = "prod",
    subjects: list[str] | None = None,
    cohort: str = "c1",
) -> None:
    rows = []
    for i, at in enumerate(times):
        subject = subjects[i] if subjects else f"user-{i}"
        rows.append((at, f"{flag}-{version}-{service}-{at.timestamp()}-{i}", service, environment,
                     flag, version, subject, cohort))  # fmt: skip
    _insert(
        store,
        "INSERT INTO decisions BY NAME SELECT t::TIMESTAMPTZ AS time, now() AS ingested_at, "
        "id AS decision_id, service AS service_name, env AS environment, flag AS flag_key, "
        "version AS flag_version, subject AS subject_id, cohort AS cohort_id, "
        "'release' AS policy_module, 'log' AS source, "
        "'feature_flag.evaluation.release' AS contract_id, '1.0.0' AS contract_version, "
        "'{}' AS attributes, 1 AS request_id FROM _rows",
        rows,
        ("t", "id", "service", "env", "flag", "version", "subject", "cohort"),
    )


def add_engagement(
    store: Store,
    *,
    subjects: list[str],
    at: datetime,
    service: str = "api",
    environment: str = "prod",
    cohort: str = "c1",
) -> None:
    """One click per subject at ``at``."""
    _insert(
        store,
        "INSERT INTO engagement BY NAME SELECT t::TIMESTAMPTZ AS time, now() AS ingested_at, "
        "service AS service_name, env AS environment, subject AS subject_id, "
        "cohort AS cohort_id, 'click' AS action, 'user.engagement' AS contract_id, "
        "'1.0.0' AS contract_version, '{}' AS attributes, 1 AS request_id FROM _rows",
        [(at, service, environment, subject, cohort) for subject in subjects],
        ("t", "service", "env", "subject", "cohort"),
    )
