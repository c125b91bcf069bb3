"""The recorded facts of closed changes (``impact_windows``, ``impact_facts``).

Facts of changes whose reach has closed do not change any more, so they are *recorded*, as a
recording rule would: :func:`refresh` (run by ``flaglens serve`` with each alert evaluation)
stores the facts (:mod:`analytics.impact_facts`) of every change whose reach ended at least
:data:`~analytics.recording.LATE_DATA_GRACE` ago and before the event time of everything
ingested since then (the latency samples as their test results, which is all the assessment
needs). The facts are gathered on a reader cursor; only storing them (:func:`record`) is handed
to the store's one writer.

:func:`collect` answers change impact from here: it fills in the facts of changes recorded for
exactly the reach, flag, environment and other changes they have now (:func:`read_recorded`),
and gathers the rest live. A change whose reach moved (new data widened its bounds) or that
gained a neighbour is gathered live again, and recorded again by the next refresh. Data that
arrives later than that for a change already recorded is not counted in it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from analytics.impact_facts import WindowFacts, complete, data_bounds, frame, ledger
from analytics.impact_windows import HALF_WIDTH, LedgerChange, Windows
from analytics.quantiles import QuantileTest
from analytics.recording import LATE_DATA_GRACE, closed_until
from analytics.stats import ShiftTest
from analytics.views import register
from analytics.windows import TimeWindow
from store.write_fns import WriteFn
from store.writer import StoreWriter

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


def collect(
    cursor: duckdb.DuckDBPyConnection,
    changes: list[LedgerChange],
    half_width: timedelta = HALF_WIDTH,
) -> list[WindowFacts]:
    """The facts of each of ``changes`` (``index`` = its position), recorded or gathered.

    Changes without recorded facts for their present reach and candidates get their affected
    services (and those of their candidates) counted, their windows planned and their facts
    gathered.
    """
    facts, bounds = frame(cursor, changes, half_width)
    pending = read_recorded(cursor, [f for f in facts if f.nominal is not None])
    complete(cursor, pending, bounds, half_width)
    return facts


def record(facts: list[WindowFacts], now: datetime) -> WriteFn[None]:
    """The write function (see :mod:`store.write_fns`) that stores gathered ``facts``,
    replacing what was recorded before for the same changes.

    The rows are built (and the latency tests run) here, on the caller's thread; the write
    function only writes them.
    """
    windows, fact_rows = recorded_tables(facts)
    ids = [f.change_id for f in facts]
    any_facts = bool(fact_rows["change_id"][0])

    def write(cursor: duckdb.DuckDBPyConnection) -> None:
        try:
            cursor.execute(
                "DELETE FROM impact_facts WHERE change_id IN (SELECT unnest($ids))", {"ids": ids}
            )
            cursor.execute(
                "DELETE FROM impact_windows WHERE change_id IN (SELECT unnest($ids))", {"ids": ids}
            )
            register(cursor, "_recorded_windows", windows)
            cursor.execute(
                "INSERT INTO impact_windows BY NAME "
                "SELECT *, $now AS recorded_at FROM _recorded_windows",
                {"now": now},
            )
            if any_facts:
                register(cursor, "_recorded_facts", fact_rows)
                cursor.execute("INSERT INTO impact_facts BY NAME SELECT * FROM _recorded_facts")
        finally:
            for name in ("_recorded_windows", "_recorded_facts"):
                try:
                    cursor.unregister(name)
                except duckdb.Error:
                    pass

    return write


def closed_facts(
    cursor: duckdb.DuckDBPyConnection, now: datetime, *, grace: timedelta = LATE_DATA_GRACE
) -> list[WindowFacts]:
    """Every change of the ledger whose reach is closed at ``now``, framed (not gathered).

    Closed: it has windows, and its reach ends at or before :func:`closed_until`.
    """
    facts, _ = frame(cursor, ledger(cursor))
    until = closed_until(cursor, now, grace=grace)
    return [f for f in facts if f.nominal is not None and f.reach and f.reach.end <= until]


def refresh(
    cursor: duckdb.DuckDBPyConnection,
    writer: StoreWriter,
    now: datetime,
    *,
    grace: timedelta = LATE_DATA_GRACE,
) -> int:
    """Record the facts of closed changes not recorded yet for their present reach and
    candidates.

    Gathers them on ``cursor`` (a reader's) and stores them through ``writer``. Returns how
    many changes were (re)recorded. The first run on a large store assesses every closed change
    (as long as one uncached change-impact query); later runs compare what is recorded with the
    ledger only, and gather only the changes whose reach closed since.

    Raises:
        StoreError: the writer could not store them (nothing was stored).
    """
    closed = closed_facts(cursor, now, grace=grace)
    once = unique_ids([f.change_id for f in closed])
    found = recorded_keys(cursor, sorted(once))
    missing = [f for f in closed if f.change_id in once and found.get(f.change_id) != f.key]
    if not missing:
        return 0
    bounds = data_bounds(cursor, {f.environment for f in missing})
    complete(cursor, missing, bounds)
    writer.execute_write_fn(record(missing, now)).result()
    return len(missing)
