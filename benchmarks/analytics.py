"""Analytics and dashboard query times on a large store.

Builds a store of ``--decisions`` decisions (default 10 million) over 7 days, with half as many
server spans, a tenth as many engagement events, a few thousand quarantined records and a
ledger of signed-looking changes, directly with DuckDB SQL (the OTLP path is measured by
`benchmarks/ingest.py`). Rows are inserted in time order, as ingestion writes them, each
ingested a second after it happened. Then runs
every query a dashboard page makes and reports each one's median time over ``--repeat`` runs,
against the target of 300 ms, and as a ratio to the baseline measured in the same run: one full
scan of ``decisions`` (``SELECT count(*), count(DISTINCT subject_id)``).

Change impact reads the facts `flaglens serve` records for closed changes (see
``analytics/impact_records.py``), so it is timed three ways: with nothing recorded (what the
dashboards pay for changes whose windows are still open), the background step recording all
of them (what a first refresh after start-up pays, off the page's path), and with everything
recorded (the page load). The refresh's "now" is a day after the data ends. Cohort
engagement per 6 h likewise: counted live with no period recorded, the recording of every
closed period of every recorded width, a refresh with nothing new, and the page load reading
the records (a window on the 6 h grid, and one off it, whose two partial periods are counted
live).

    .venv/bin/python benchmarks/analytics.py                      # 10M decisions (~2 GB file)
    .venv/bin/python benchmarks/analytics.py --decisions 1000000  # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analytics import (  # noqa: E402
    budgets,
    cohort_periods,
    cohorts,
    contract_health,
    governance,
    impact,
    impact_records,
    latency,
    volume,
)
from analytics.slo import load_slos  # noqa: E402
from analytics.windows import TimeWindow  # noqa: E402
from contracts.signing import KeyRing  # noqa: E402
from store.connection import Store  # noqa: E402
from store.writer import StoreWriter  # noqa: E402

END = datetime(2026, 11, 23, tzinfo=UTC)
START = END - timedelta(days=7)
TARGET_MS = 300.0
REFRESH_AT = END + timedelta(days=1)  # every change's windows have closed by then
SERVICES = "['checkout', 'payments', 'search', 'auth', 'recommendations']"


def build(store: Store, decisions: int) -> None:
    """Fill the store with synthetic rows, in time order."""
    cursor = store.cursor()
    seconds = int((END - START).total_seconds())
    spans = decisions // 2
    common = f"TIMESTAMPTZ '{START.isoformat()}'"
    cursor.execute(
        f"""
        INSERT INTO decisions BY NAME
        SELECT {common} + to_microseconds((i * {seconds} * 1000000 // {decisions})::BIGINT)
                   AS time,
               time + INTERVAL 1 SECOND AS ingested_at, 'd-' || i AS decision_id,
               {SERVICES}[1 + i % 5] AS service_name,
               CASE WHEN i % 7 = 0 THEN 'staging' ELSE 'prod' END AS environment,
               'flag-' || (i % 20) AS flag_key, 'v' || (1 + (i // ({decisions} // 3 + 1))) AS
                   flag_version,
               CASE WHEN hash(i) % 2 = 0 THEN 'on' ELSE 'off' END AS variant,
               'user-' || (hash(i) % 200000) AS subject_id,
               ['control', 'beta-testers', 'enterprise', 'new-users'][1 + (hash(i * 3) % 4)::BIGINT]
                   AS cohort_id,
               ['release', 'privacy', 'security', 'cost'][1 + i % 4] AS policy_module,
               'log' AS source, 'feature_flag.evaluation.release' AS contract_id,
               '1.0.0' AS contract_version, '{{}}' AS attributes, i // 512 AS request_id,
               lpad(to_hex(i // 2), 32, '0') AS trace_id, lpad(to_hex(i // 2), 16, '0') AS span_id
        FROM range({decisions}) t(i)
        """
    )
    cursor.execute(
        f"""
        INSERT INTO spans BY NAME
        SELECT {common} + to_microseconds((i * {seconds} * 1000000 // {spans})::BIGINT)
                   AS start_time,
               start_time AS end_time, start_time + INTERVAL 1 SECOND AS ingested_at,
               exp(4.5 + 0.5 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random()))
                   AS duration_ms,
               {SERVICES}[1 + (i * 2) % 5] AS service_name,
               CASE WHEN (i * 2) % 7 = 0 THEN 'staging' ELSE 'prod' END AS environment,
               'GET /x' AS name, 'server' AS kind,
               CASE WHEN random() < 0.004 THEN 'error' ELSE 'unset' END AS status_code,
               '/x' AS http_route, 200 AS http_status_code,
               lpad(to_hex(i), 32, '0') AS trace_id, lpad(to_hex(i), 16, '0') AS span_id,
               '{{}}' AS attributes, i // 512 AS request_id
        FROM range({spans}) t(i)
        """
    )
    cursor.execute(
        f"""
        INSERT INTO engagement BY NAME
        SELECT {common} + to_microseconds((i * {seconds} * 1000000 // {decisions // 10})::BIGINT)
                   AS time, time + INTERVAL 1 SECOND AS ingested_at,
               {SERVICES}[1 + i % 5] AS service_name, 'prod' AS environment,
               'user-' || (hash(i * 10) % 200000) AS subject_id,
               ['control', 'beta-testers', 'enterprise', 'new-users'][1 + (hash(i) % 4)::BIGINT]
                   AS cohort_id, 'click' AS action, 'user.engagement' AS contract_id,
               '1.0.0' AS contract_version, '{{}}' AS attributes, 0 AS request_id
        FROM range({decisions // 10}) t(i)
        """
    )
    cursor.execute(
        f"""
        INSERT INTO quarantine BY NAME
        SELECT now() AS quarantined_at, 0 AS request_id, 'logs' AS signal,
               'feature_flag.evaluation' AS event_name, 'recommendations' AS service_name,
               'prod' AS environment,
               {common} + to_microseconds((i * {seconds} * 1000000 // 5000)::BIGINT) AS time,
               'feature_flag.evaluation.privacy' AS contract_id, '1.1.0' AS contract_version,
               '[{{"contract": "feature_flag.evaluation.privacy", "version": "1.1.0",
                  "pointer": "/privacy.purpose", "message": "required property is missing"}}]'
                   AS errors, '{{}}' AS record
        FROM range(5000) t(i)
        """
    )
    cursor.execute(
        f"""
        INSERT INTO policy_changes BY NAME
        SELECT {common} + to_microseconds((i * {seconds} * 1000000 // 60)::BIGINT) AS time,
               now() AS ingested_at, 'chg-' || i AS change_id, 'control-plane' AS service_name,
               CASE WHEN i % 7 = 0 THEN 'staging' ELSE 'prod' END AS environment,
               'flag-' || (i % 20) AS flag_key, 'release' AS policy_module,
               'alice@example.com' AS actor, 'rollout' AS action, 'v' || (1 + i // 20) AS version,
               ['dana@example.com'] AS approvers, 'policy.change' AS contract_id,
               '1.0.0' AS contract_version,
               json_object('policy.change.id', 'chg-' || i, 'feature_flag.key', 'flag-' || (i % 20))
                   AS attributes, 0 AS request_id
        FROM range(60) t(i)
        """
    )
    cursor.execute("CHECKPOINT")


def queries(store: Store, writer: StoreWriter) -> dict[str, Callable[[], Any]]:
    """Every query the dashboard pages make, for the last 7 days and the last 24 hours, and
    the periodic round's recording (written through ``writer``)."""
    week = TimeWindow(START, END)
    day = TimeWindow(END - timedelta(days=1), END)
    slos = load_slos()
    rules = governance.load_rules()
    keys = KeyRing({})
    hour, six_hours = timedelta(hours=1), timedelta(hours=6)

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
        return lambda: fn(store.cursor(), *args, **kwargs)

    three_hours = 3 * hour
    # a 7-day window starting 3.5 h into a 6 h period: its first and last periods are partial
    off_grid = TimeWindow(START + 3.5 * hour, END - 2.5 * hour)
    return {
        "overview: decision volume (total)": run(volume.decision_volume, week),
        "overview: decision volume per hour": run(volume.decision_volume, week, hour),
        "overview: services and environments": run(volume.known_values, "service_name"),
        "overview/budgets: 7 SLO statuses": run(budgets.budget_report, slos, END),
        "budgets: budget series (1 SLO, per hour)": run(budgets.budget_series, slos[0], week, hour),
        "changes: request series (1 service, per 2h)": run(
            latency.request_series, week, 2 * hour, service="checkout", environment="prod"
        ),
        "latency: p50/p95/p99 per service, 7d": run(latency.latency_percentiles, week),
        "latency: per variant (decisions join), 24h": run(
            latency.latency_percentiles, day, by=("service", "variant")
        ),
        "cohorts: engagement per 6h, none recorded": lambda: (
            forget_periods(store),
            cohorts.engagement_by_cohort(store.cursor(), week, six_hours),
        ),
        "serve (background): record cohort periods": lambda: (
            forget_periods(store),
            cohort_periods.refresh(store.cursor(), writer, REFRESH_AT),
        ),
        "serve (background): cohort refresh, nothing new": run(
            cohort_periods.refresh, writer, REFRESH_AT
        ),
        "cohorts: engagement per 6h, 7d (recorded)": run(
            cohorts.engagement_by_cohort, week, six_hours
        ),
        "cohorts: per 6h, off the 6h grid (edges live)": run(
            cohorts.engagement_by_cohort, off_grid, six_hours
        ),
        "changes: engagement (1 service, per 3h)": run(
            cohorts.engagement_by_cohort, week, three_hours, service="checkout", environment="prod"
        ),
        "report: cohort shifts, 7d vs the week before": run(
            cohorts.cohort_shifts, week.previous(), week
        ),
        "changes: impact of all 60 changes, none recorded": lambda: (
            forget_facts(store),
            impact.change_impacts(store.cursor(), week, slos, rules, keys),
        ),
        "serve (background): record facts of 60 changes": lambda: (
            forget_facts(store),
            impact_records.refresh(store.cursor(), writer, REFRESH_AT),
        ),
        "serve (background): refresh, nothing new": run(impact_records.refresh, writer, REFRESH_AT),
        "changes: impact of every change, 7d (recorded)": run(
            impact.change_impacts, week, slos, rules, keys
        ),
        "mutations: unauthorized changes, 7d": run(
            governance.unauthorized_mutations, week, rules, keys
        ),
        "mutations: drift, 7d": run(governance.drift, week, rules, keys),
        "contracts: violations per hour": run(contract_health.violations, week, bucket=hour),
        "contracts: violation rates": run(contract_health.violation_rates, week),
        "contracts: violation rates per hour": run(
            contract_health.violation_rates, week, bucket=hour
        ),
    }


def forget_facts(store: Store) -> None:
    """Drop every recorded change fact (not timed on its own: a few milliseconds)."""
    cursor = store.cursor()
    cursor.execute("DELETE FROM impact_facts")
    cursor.execute("DELETE FROM impact_windows")


def forget_periods(store: Store) -> None:
    """Drop every recorded cohort period (not timed on its own: a few milliseconds)."""
    store.cursor().execute("DELETE FROM cohort_periods; DELETE FROM cohort_periods_span")


def timed(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="keep the store here (default: a temp dir)")
    parser.add_argument(
        "--threads",
        type=int,
        help="DuckDB threads (default: DuckDB's own, as `flaglens serve` unless --duckdb-threads)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.duckdb"
        store = Store.open(path, threads=args.threads)
        if store.cursor().execute("SELECT count(*) FROM decisions").fetchone() == (0,):
            started = time.perf_counter()
            build(store, args.decisions)
            print(f"built {args.decisions:,} decisions in {time.perf_counter() - started:.0f} s")
        baseline = timed(
            lambda: (
                store.cursor()
                .execute("SELECT count(*), count(DISTINCT subject_id) FROM decisions")
                .fetchall()
            ),
            args.repeat,
        )
        print(f"{'query':<48} {'median ms':>10} {'x baseline':>11}  target {TARGET_MS:.0f} ms")
        print(f"{'baseline: full scan of decisions':<48} {baseline:10.1f} {1.0:11.2f}")
        slow = 0
        with StoreWriter(store) as writer:
            for name, fn in queries(store, writer).items():
                ms = timed(fn, args.repeat)
                slow += ms > TARGET_MS
                mark = "" if ms <= TARGET_MS else "  OVER"
                print(f"{name:<48} {ms:10.1f} {ms / baseline:11.2f}{mark}")
        print(f"{slow} quer{'y' if slow == 1 else 'ies'} over {TARGET_MS:.0f} ms")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
