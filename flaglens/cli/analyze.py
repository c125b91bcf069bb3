"""`flaglens analyze <what>`: the analytics as tables for people or JSON for scripts.

Both formats come from the same rows (:mod:`analytics.analyses`), so they carry the same numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analytics.analyses import ANALYSES, CORRECTIONS, DEFAULT_CORRECTION, Query
from analytics.errors import AnalyticsError
from analytics.session import AnalyticsConfig
from analytics.windows import TimeWindow, parse_duration
from flaglens.cli.flags import add_setting_flags, settings_from_args
from flaglens.cli.reading import add_reading_arguments, open_client
from flaglens.settings import AnalyticsFiles


def add_analytics_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the analytics read their configuration (the fields of :class:`AnalyticsFiles`,
    as `serve` has them)."""
    add_setting_flags(parser, AnalyticsFiles)


def register(subparsers: Any) -> None:
    """Add `flaglens analyze`."""
    parser = subparsers.add_parser(
        "analyze",
        help="error budgets, latency, cohorts, change impact, mutations, drift, contracts",
        description="Run one analysis over a time range of a flaglens database, or of a "
        "running server's (--server, or the server that holds --db), or of a DuckLake (--store).",
    )
    parser.add_argument("what", choices=tuple(ANALYSES))
    add_reading_arguments(parser)
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
        choices=CORRECTIONS,
        default=DEFAULT_CORRECTION,
        help="changes, cohorts --compare: correction over every test ranked together, "
        "Benjamini-Hochberg (default: false discovery rate) or Holm (family-wise error rate)",
    )
    add_analytics_arguments(parser)
    parser.set_defaults(handler=_run)


def analytics_config(args: argparse.Namespace, db: Path | None) -> AnalyticsConfig:
    """The analytics configuration the flags of :func:`add_analytics_arguments` (else their
    variables) name."""
    return settings_from_args(AnalyticsFiles, args).analytics_config(db)


def query_from_args(args: argparse.Namespace) -> Query:
    """The window, filters and options of `flaglens analyze`."""
    return Query(
        window=TimeWindow.parse(args.start, args.end),
        service=args.service,
        environment=args.environment,
        bucket=parse_duration(args.bucket) if args.bucket else None,
        by=tuple(part.strip() for part in args.by.split(",") if part.strip()),
        compare=args.compare,
        rates=args.rates,
        correction=args.correction,
    )


# the columns a person sees per analysis (JSON has everything)
TABLE_COLUMNS: dict[str, Sequence[str]] = {
    "budgets": ("slo", "sli", "objective", "total", "bad", "consumed", "remaining", "burn_rates",
                "time_to_exhaustion_hours", "state"),
    "changes": ("rank", "verdict", "score", "score_effect", "change.change_id",
                "change.flag_key", "change.environment", "services", "change.authorized",
                "confounded_with", "adjusted_for"),
    "cohorts --compare": ("cohort", "exposed_before", "engaged_before", "exposed_after",
                          "engaged_after", "test.difference", "test.ci95", "test.p_value",
                          "p_adjusted", "significant", "detectable_difference"),
    "mutations": ("change_id", "time", "environment", "flag_key", "actor", "reasons", "details"),
    "drift": ("flag_key", "environment", "version", "reason", "count", "first_seen",
              "last_seen", "services"),
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


def _run(args: argparse.Namespace) -> int:
    from flaglens.client import ClientError

    try:
        query = query_from_args(args)
        with open_client(args, "analyze") as client:
            rows = client.analysis_rows(args.what, query)
    except (AnalyticsError, ClientError) as exc:
        print(f"flaglens analyze: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        view = f"{args.what} --compare" if args.what == "cohorts" and args.compare else args.what
        print(render_table(rows, TABLE_COLUMNS.get(view)))
    return 0
