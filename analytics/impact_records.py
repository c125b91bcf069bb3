"""The recorded facts of closed changes (``impact_windows``, ``impact_facts``): read and built.

:func:`read_recorded` fills in the facts of changes recorded for exactly their present flag,
environment, reach and candidates; :func:`recorded_tables` turns gathered facts into the rows
:func:`analytics.impact_facts.record` writes. See :mod:`analytics.impact_facts` for when a
change is recorded.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import duckdb
import pyarrow as pa

from analytics.impact_facts import WindowFacts
from analytics.impact_windows import Windows
from analytics.quantiles import QuantileTest
from analytics.stats import ShiftTest
from analytics.views import register
from analytics.windows import TimeWindow

_TIME = pa.timestamp("us", tz="UTC")
# the columns of impact_facts a row may leave NULL, in table order
_FACT_VALUES = (
    "cohort", "total", "hits", "before_start", "before_end", "after_start", "after_end",
    "adjusted_for", "confounded_with", "burn_until", "latency", "quantile",
)  # fmt: skip


def unique_ids(change_ids: list[str]) -> set[str]:
    """Change ids that occur once (a ledger holding one id twice is never recorded for it)."""
    seen = Counter(change_ids)
    return {change_id for change_id, n in seen.items() if n == 1}


def _window(start: Any, end: Any) -> TimeWindow | None:
    return None if start is None or end is None else TimeWindow(start, end)


def recorded_keys(
    cursor: duckdb.DuckDBPyConnection, change_ids: list[str]
) -> dict[str, tuple[Any, ...]]:
    """change_id → the key (see :attr:`WindowFacts.key`) its facts were recorded for."""
    if not change_ids:
        return {}
    # ids as a view, not a list parameter: DuckDB converts a list parameter element by element,
    # trying to import pandas for each one where it is not installed (milliseconds for 60 ids)
    register(cursor, "_recorded_ids", {"id": (change_ids, pa.string())})
    try:
        rows = cursor.execute(
            "SELECT change_id, flag_key, environment, reach_start, reach_end, candidates "
            "FROM impact_windows WHERE change_id IN (SELECT id FROM _recorded_ids)"
        ).fetchall()
    finally:
        cursor.unregister("_recorded_ids")
    return {row[0]: (*row[1:5], tuple(row[5])) for row in rows}


def read_recorded(cursor: duckdb.DuckDBPyConnection, facts: list[WindowFacts]) -> list[WindowFacts]:
    """Fill in the facts recorded for exactly these changes; returns the others (not filled)."""
    if not facts:
        return []
    once = unique_ids([f.change_id for f in facts])
    found = recorded_keys(cursor, sorted(once))
    usable = {
        f.change_id: f for f in facts if f.change_id in once and found.get(f.change_id) == f.key
    }
    if usable:
        register(cursor, "_recorded_ids", {"id": (sorted(usable), pa.string())})
        try:
            table = cursor.execute(
                "SELECT change_id, kind, service, side, cohort, total, hits, before_start, "
                "before_end, after_start, after_end, adjusted_for, confounded_with, "
                "burn_until, latency, quantile FROM impact_facts "
                "WHERE change_id IN (SELECT id FROM _recorded_ids) "
                "ORDER BY change_id, service, quantile.quantile"
            ).to_arrow_table()
        finally:
            cursor.unregister("_recorded_ids")
        columns = {name: table[name].to_pylist() for name in table.column_names}
        services: dict[str, list[str]] = defaultdict(list)
        quantiles: dict[tuple[str, str], list[QuantileTest]] = defaultdict(list)
        for i, change_id in enumerate(columns["change_id"]):
            f = usable[change_id]
            kind, service, side = columns["kind"][i], columns["service"][i], columns["side"][i]
            total, hits = columns["total"][i], columns["hits"][i]
            if kind == "service":
                services[change_id].append(service)
                f.windows[service] = Windows(
                    _window(columns["before_start"][i], columns["before_end"][i]),
                    _window(columns["after_start"][i], columns["after_end"][i]),
                    tuple(columns["adjusted_for"][i]), tuple(columns["confounded_with"][i]),
                    columns["burn_until"][i],
                )  # fmt: skip
            elif kind == "spans":
                f.spans[(service, side)] = (total, hits)
            elif kind == "exposure":
                f.exposure[(service, columns["cohort"][i], side)] = (total, hits)
            elif kind == "latency":
                f.shifts[service] = ShiftTest(**columns["latency"][i])
            elif kind == "quantile":
                quantiles[(change_id, service)].append(QuantileTest(**columns["quantile"][i]))
        for change_id, names in services.items():
            usable[change_id].services = tuple(sorted(names))
        for (change_id, service), tests in quantiles.items():
            usable[change_id].quantiles[service] = tuple(tests)
    for f in usable.values():
        f.recorded = True
    return [f for f in facts if f.change_id not in usable]


def _struct(fields: dict[str, Any], integers: tuple[str, ...]) -> pa.DataType:
    return pa.struct(
        [(name, pa.int64() if name.startswith(integers) else pa.float64()) for name in fields]
    )


_SHIFT_FIELDS = ShiftTest.__dataclass_fields__
_SHIFT_TYPE = _struct(_SHIFT_FIELDS, ("n_",))
_QUANTILE_FIELDS = QuantileTest.__dataclass_fields__
_QUANTILE_TYPE = _struct(_QUANTILE_FIELDS, ("n_", "above_"))


def recorded_tables(
    facts: list[WindowFacts],
) -> tuple[dict[str, tuple[list[Any], Any]], dict[str, tuple[list[Any], Any]]]:
    """The ``impact_windows`` and ``impact_facts`` columns (without ``recorded_at``) that
    record ``facts``; the latency tests are run here if they have not been yet."""
    rows: dict[str, list[Any]] = defaultdict(list)

    def add(f: WindowFacts, kind: str, service: str, side: int = 0, **values: Any) -> None:
        for name in _FACT_VALUES:
            rows[name].append(values.get(name))
        rows["change_id"].append(f.change_id)
        rows["kind"].append(kind)
        rows["service"].append(service)
        rows["side"].append(side)

    for f in facts:
        for service in f.services:
            w = f.windows[service]
            add(f, "service", service,
                before_start=w.before.start if w.before else None,
                before_end=w.before.end if w.before else None,
                after_start=w.after.start if w.after else None,
                after_end=w.after.end if w.after else None,
                adjusted_for=list(w.adjusted_for), confounded_with=list(w.confounded_with),
                burn_until=w.burn_until)  # fmt: skip
        for (service, side), (total, bad) in f.spans.items():
            add(f, "spans", service, side, total=total, hits=bad)
        for (service, cohort, side), (exposed, engaged) in f.exposure.items():
            add(f, "exposure", service, side, cohort=cohort, total=exposed, hits=engaged)
        for service in f.services:
            shift = f.latency_test(service)
            if shift is not None:
                add(f, "latency", service, latency={k: getattr(shift, k) for k in _SHIFT_FIELDS})
            for test in f.quantile_tests(service):
                add(f, "quantile", service,
                    quantile={k: getattr(test, k) for k in _QUANTILE_FIELDS})  # fmt: skip
    windows: dict[str, tuple[list[Any], Any]] = {
        "change_id": ([f.change_id for f in facts], pa.string()),
        "flag_key": ([f.flag for f in facts], pa.string()),
        "environment": ([f.environment for f in facts], pa.string()),
        "reach_start": ([f.reach.start if f.reach else None for f in facts], _TIME),
        "reach_end": ([f.reach.end if f.reach else None for f in facts], _TIME),
        "candidates": ([list(f.key[4]) for f in facts], pa.list_(pa.string())),
    }
    fact_columns = {
        "change_id": (rows["change_id"], pa.string()),
        "kind": (rows["kind"], pa.string()),
        "service": (rows["service"], pa.string()),
        "side": (rows["side"], pa.uint8()),
        "cohort": (rows["cohort"], pa.string()),
        "total": (rows["total"], pa.int64()),
        "hits": (rows["hits"], pa.int64()),
        "before_start": (rows["before_start"], _TIME),
        "before_end": (rows["before_end"], _TIME),
        "after_start": (rows["after_start"], _TIME),
        "after_end": (rows["after_end"], _TIME),
        "adjusted_for": (rows["adjusted_for"], pa.list_(pa.string())),
        "confounded_with": (rows["confounded_with"], pa.list_(pa.string())),
        "burn_until": (rows["burn_until"], _TIME),
        "latency": (rows["latency"], _SHIFT_TYPE),
        "quantile": (rows["quantile"], _QUANTILE_TYPE),
    }
    return windows, fact_columns
