"""A seeded month of harmless changes, its rows generated with numpy straight into a store.

Three services in ``prod`` for 30 days, each with a steady 80 server spans an hour (log-normal
latency, 3 % errors) and 150 decisions an hour for its own flag (subjects from a pool per
service, in two cohorts), 30 % of them followed by an engagement event. Every four hours,
staggered between services, the service's flag is changed: 537 changes, none of which changes
anything. With a half-width of two hours, each change's windows hold about 160 spans and 300
exposed subjects a side (every test but p99, which needs 500 spans a side, runs), and no
change falls in another's reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from analytics.slo import SLO, parse_slo
from store.connection import Store

START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30
SERVICES = ("alpha", "bravo", "charlie")
SPANS_PER_HOUR = 80
DECISIONS_PER_HOUR = 150
EVERY = timedelta(hours=4)
HALF_WIDTH = timedelta(hours=2)
SUBJECTS = 100_000  # per service: nearly every decision has a subject of its own
_US = 1_000_000


@dataclass(frozen=True)
class Month:
    store: Store
    slos: list[SLO]
    changes: int


def _insert(store: Store, sql: str, table: pa.Table) -> None:
    cursor = store.cursor()
    cursor.register("_rows", table)
    try:
        cursor.execute(sql)
    finally:
        cursor.unregister("_rows")


def build_month(store: Store, seed: int) -> Month:
    """Fill ``store`` with the month (see the module docstring); returns it with its SLOs."""
    rng = np.random.default_rng(seed)
    start_us = int(START.timestamp()) * _US
    span_us = DAYS * 24 * 3600 * _US
    spans, decisions = DAYS * 24 * SPANS_PER_HOUR, DAYS * 24 * DECISIONS_PER_HOUR
    changes = 0
    for number, service in enumerate(SERVICES):
        times = np.sort(rng.integers(start_us, start_us + span_us, spans))
        ids = np.arange(spans) + number * spans
        _insert(
            store,
            "INSERT INTO spans BY NAME SELECT make_timestamp(t)::TIMESTAMPTZ AS start_time, "
            "make_timestamp(t)::TIMESTAMPTZ AS end_time, make_timestamp(t)::TIMESTAMPTZ AS "
            f"ingested_at, d AS duration_ms, '{service}' AS service_name, 'prod' AS environment, "
            "'GET /x' AS name, 'server' AS kind, CASE WHEN e THEN 'error' ELSE 'unset' END AS "
            "status_code, '/x' AS http_route, 'GET' AS http_method, CASE WHEN e THEN 500 ELSE "
            "200 END AS http_status_code, i::VARCHAR AS trace_id, i::VARCHAR AS span_id, "
            "'{}' AS attributes, 0 AS request_id FROM _rows",
            pa.table({
                "t": times, "d": rng.lognormal(np.log(60 + 30 * number), 0.45, spans),
                "e": rng.random(spans) < 0.03, "i": ids,
            }),
        )  # fmt: skip
        times = np.sort(rng.integers(start_us, start_us + span_us, decisions))
        subjects = rng.integers(0, SUBJECTS, decisions)
        engaged = rng.random(decisions) < 0.3
        _insert(
            store,
            "INSERT INTO decisions BY NAME SELECT make_timestamp(t)::TIMESTAMPTZ AS time, "
            "make_timestamp(t)::TIMESTAMPTZ AS ingested_at, u::VARCHAR AS decision_id, "
            f"'{service}' AS service_name, 'prod' AS environment, 'flag-{service}' AS flag_key, "
            "'v1' AS flag_version, u::VARCHAR AS subject_id, 'c' || (u % 2) AS cohort_id, "
            "'release' AS policy_module, 'log' AS source, 'c' AS contract_id, "
            "'1.0.0' AS contract_version, '{}' AS attributes, 0 AS request_id FROM _rows",
            pa.table({"t": times, "u": subjects}),
        )
        _insert(
            store,
            "INSERT INTO engagement BY NAME SELECT make_timestamp(t + 1000000)::TIMESTAMPTZ AS "
            "time, make_timestamp(t)::TIMESTAMPTZ AS ingested_at, "
            f"'{service}' AS service_name, 'prod' AS environment, u::VARCHAR AS subject_id, "
            "'c' || (u % 2) AS cohort_id, 'click' AS action, 'e' AS contract_id, "
            "'1.0.0' AS contract_version, '{}' AS attributes, 0 AS request_id FROM _rows",
            pa.table({"t": times[engaged], "u": subjects[engaged]}),
        )
        first = START + HALF_WIDTH + timedelta(hours=number * 4 / len(SERVICES), minutes=7)
        times_of_changes = []
        at = first
        while at + HALF_WIDTH + timedelta(minutes=2) < START + timedelta(days=DAYS):
            times_of_changes.append(at)
            at += EVERY
        _insert(
            store,
            "INSERT INTO policy_changes BY NAME SELECT t AS time, t AS ingested_at, "
            f"'chg-{service}-' || n AS change_id, 'control-plane' AS service_name, "
            f"'prod' AS environment, 'flag-{service}' AS flag_key, 'release' AS policy_module, "
            "'alice@example.com' AS actor, 'update' AS action, 'v1' AS version, "
            "['dana@example.com'] AS approvers, 'policy.change' AS contract_id, "
            "'1.0.0' AS contract_version, '{}' AS attributes, 0 AS request_id FROM _rows",
            pa.table(
                {
                    "t": pa.array(times_of_changes, pa.timestamp("us", tz="UTC")),
                    "n": np.arange(len(times_of_changes)),
                }
            ),
        )
        changes += len(times_of_changes)
    slos = [
        parse_slo(definition, "month")
        for service in SERVICES
        for definition in (
            {"name": f"{service}-availability", "service": service, "sli": "availability",
             "objective": 0.97},
            {"name": f"{service}-latency", "service": service, "sli": "latency",
             "threshold_ms": 150, "objective": 0.95},
        )
    ]  # fmt: skip
    return Month(store, slos, changes)
