"""`flaglens analyze <what>`: the analytics as tables for people or JSON for scripts.

Both formats come from the same ``as_dict()`` of each result, so they carry the same numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from analytics.errors import AnalyticsError
from analytics.windows import TimeWindow, parse_duration
from contracts.errors import ContractError
from store.errors import StoreError

ANALYSES = ("budgets", "latency", "cohorts", "changes", "mutations", "drift", "contracts")


def add_analytics_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the analytics read their configuration (shared with report, alerts, serve)."""
    parser.add_argument("--slos", type=Path, help="SLO file (default: analytics/slos.toml)")
    parser.add_argument(
        "--governance", type=Path, help="governance rules (default: contracts/governance.toml)"
    )
    parser.add_argument("--keys", type=Path, help="signing key file (default: keys.toml by --db)")


def register(subparsers: Any) -> None:
    """Add `flaglens analyze`."""
    parser = subparsers.add_parser(
        "analyze",
        help="error budgets, latency, cohorts, change impact, mutations, drift, contracts",
        description="Run one analysis over a time range of a flaglens database.",
    )
    parser.add_argument("what", choices=ANALYSES)
    parser.add_argument("--db", type=Path, default=Path("flaglens.duckdb"), help="DuckDB file")
    parser.add_argument("--from", dest="start", default="now-7d", help="start (default now-7d)")
    parser.add_argument("--to", dest="end", default="now", help="end (default now)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--service", help="only this service")
    parser.add_argument("--environment", help="only this environment")
    parser.add_argument("--bucket", help="time bucket for series, e.g. 1h (default: none)")
    parser.add_argument(
        "--by",
        default="service",
        help="latency grouping, comma separated: service,environment,route,flag,variant,version,"
        "module,rule",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="cohorts: test each cohort's engagement against the previous window of equal length",
    )
    parser.add_argument(
        "--rates",
        action="store_true",
        help="contracts: violation rates per service and contract instead of each error",
    )
    parser.add_argument(
        "--correction",
        choices=("holm", "bh"),
        default="holm",
        help="changes: multiple-testing correction, Holm (default) or Benjamini-Hochberg",
    )
    add_analytics_arguments(parser)
    parser.set_defaults(handler=_run)


class Context:
    """Open store, window and configuration for one analysis run."""

    def __init__(self, args: argparse.Namespace, cursor: Any, window: TimeWindow) -> None:
        self.args = args
        self.cursor = cursor
        self.window = window

    def slos(self) -> Any:
        from analytics.slo import DEFAULT_SLO_FILE, load_slos

        return load_slos(self.args.slos or DEFAULT_SLO_FILE)

    def rules(self) -> Any:
        from analytics.governance import DEFAULT_GOVERNANCE_FILE, load_rules

        return load_rules(self.args.governance or DEFAULT_GOVERNANCE_FILE)

    def keys(self) -> Any:
        return load_keys(self.args.keys, self.args.db)

    def bucket(self) -> timedelta | None:
        return parse_duration(self.args.bucket) if self.args.bucket else None

    def option(self, name: str, default: Any) -> Any:
        """An `analyze`-only option, with its default when the caller (e.g. the weekly report,
        which runs these analyses with its own arguments) does not have it."""
        return getattr(self.args, name, default)


def load_keys(path: Path | None, db: Path) -> Any:
    """The key ring from ``path``, else keys.toml beside the database, else an empty ring."""
    from analytics.governance import default_key_file
    from contracts.signing import KeyRing

    where = path or default_key_file(db)
    if path is None and not where.exists():
        print(
            f"flaglens: no key file at {where}; every signature will count as unknown_key "
            "(pass --keys)",
            file=sys.stderr,
        )
        return KeyRing({})
    return KeyRing.load(where)


def _budgets(ctx: Context) -> list[dict[str, Any]]:
    from analytics.budgets import budget_report

    slos = ctx.slos()
    if ctx.args.service:
        slos = [s for s in slos if s.service == ctx.args.service]
    return [s.as_dict() for s in budget_report(ctx.cursor, slos, ctx.window.end)]


def _latency(ctx: Context) -> list[dict[str, Any]]:
    from analytics.latency import latency_percentiles

    rows = latency_percentiles(
        ctx.cursor,
        ctx.window,
        by=tuple(part.strip() for part in ctx.args.by.split(",") if part.strip()),
        bucket=ctx.bucket(),
        service=ctx.args.service,
        environment=ctx.args.environment,
    )
    return [r.as_dict() for r in rows]


def _cohorts(ctx: Context) -> list[dict[str, Any]]:
    from analytics.cohorts import cohort_shifts, engagement_by_cohort

    if ctx.option("compare", False):
        shifts = cohort_shifts(
            ctx.cursor, ctx.window.previous(), ctx.window,
            service=ctx.args.service, environment=ctx.args.environment,
        )  # fmt: skip
        return [s.as_dict() for s in shifts]
    rows = engagement_by_cohort(
        ctx.cursor,
        ctx.window,
        ctx.bucket() or ctx.window.duration,
        service=ctx.args.service,
        environment=ctx.args.environment,
    )
    return [r.as_dict() for r in rows]


def _changes(ctx: Context) -> list[dict[str, Any]]:
    from analytics.impact import change_impacts

    impacts = change_impacts(
        ctx.cursor, ctx.window, ctx.slos(), ctx.rules(), ctx.keys(),
        environment=ctx.args.environment, correction=ctx.option("correction", "holm"),
    )  # fmt: skip
    return [i.as_dict() for i in impacts]


def _mutations(ctx: Context) -> list[dict[str, Any]]:
    from analytics.governance import unauthorized_mutations

    found = unauthorized_mutations(
        ctx.cursor, ctx.window, ctx.rules(), ctx.keys(), environment=ctx.args.environment
    )
    return [m.as_dict() for m in found]


def _drift(ctx: Context) -> list[dict[str, Any]]:
    from analytics.governance import drift

    found = drift(
        ctx.cursor, ctx.window, ctx.rules(), ctx.keys(),
        service=ctx.args.service, environment=ctx.args.environment,
    )  # fmt: skip
    return [d.as_dict() for d in found]


def _contracts(ctx: Context) -> list[dict[str, Any]]:
    from analytics.contract_health import violation_rates, violations

    if ctx.option("rates", False):
        rates = violation_rates(
            ctx.cursor, ctx.window, bucket=ctx.bucket(),
            service=ctx.args.service, environment=ctx.args.environment,
        )  # fmt: skip
        return [r.as_dict() for r in rates]
    rows = violations(
        ctx.cursor, ctx.window, bucket=ctx.bucket(),
        service=ctx.args.service, environment=ctx.args.environment,
    )  # fmt: skip
    return [r.as_dict() for r in rows]


RUNNERS: dict[str, Callable[[Context], list[dict[str, Any]]]] = {
    "budgets": _budgets,
    "latency": _latency,
    "cohorts": _cohorts,
    "changes": _changes,
    "mutations": _mutations,
    "drift": _drift,
    "contracts": _contracts,
}

# the columns a person sees per analysis (JSON has everything)
TABLE_COLUMNS: dict[str, Sequence[str]] = {
    "budgets": ("slo", "sli", "objective", "total", "bad", "consumed", "remaining", "burn_rates",
                "time_to_exhaustion_hours", "state"),
    "changes": ("rank", "verdict", "score", "change.change_id", "change.flag_key",
                "change.environment", "services", "change.authorized"),
    "cohorts --compare": ("cohort", "exposed_before", "engaged_before", "exposed_after",
                          "engaged_after", "test.difference", "test.ci95", "test.p_value",
                          "detectable_difference"),
    "mutations": ("change_id", "time", "environment", "flag_key", "actor", "reasons", "details"),
    "drift": ("flag_key", "environment", "version", "count", "first_seen", "last_seen",
              "services"),
}  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value)
    return str(value)


def _lookup(row: dict[str, Any], column: str) -> Any:
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def render_table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Plain aligned columns; nested values flattened."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(_lookup(row, c)) for c in columns] for row in rows]
    headers = [c.split(".")[-1] for c in columns]
    widths = [min(60, max(len(h), *(len(r[i]) for r in cells))) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    for row in cells:
        lines.append("  ".join(c[:w].ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def run_analysis(what: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Open the store read-only and run one analysis (also used by the weekly report)."""
    from store.connection import Store

    window = TimeWindow.parse(args.start, args.end)
    with Store.open(args.db, read_only=True) as store:
        return RUNNERS[what](Context(args, store.cursor(), window))


def _run(args: argparse.Namespace) -> int:
    try:
        rows = run_analysis(args.what, args)
    except (AnalyticsError, ContractError, StoreError) as exc:
        print(f"flaglens analyze: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        view = f"{args.what} --compare" if args.what == "cohorts" and args.compare else args.what
        print(render_table(rows, TABLE_COLUMNS.get(view)))
    return 0
