"""`flaglens report weekly`: the weekly metrics report as HTML, Markdown and JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from analytics.errors import AnalyticsError
from contracts.errors import ContractError
from flaglens.cli.analyze import add_analytics_arguments, analytics_config
from store.errors import StoreError


def register(subparsers: Any) -> None:
    """Add `flaglens report`."""
    parser = subparsers.add_parser("report", help="write the weekly metrics report")
    kinds = parser.add_subparsers(dest="report_kind", metavar="KIND", required=True)
    weekly = kinds.add_parser(
        "weekly",
        help="one ISO week against the one before: report.html, report.md, report.json",
    )
    weekly.add_argument("--db", type=Path, default=Path("flaglens.duckdb"))
    weekly.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: the last complete one)")
    weekly.add_argument("--out", type=Path, required=True, help="directory to write")
    add_analytics_arguments(weekly)
    weekly.set_defaults(handler=_weekly)


def _weekly(args: argparse.Namespace) -> int:
    from analytics.session import Session
    from reports.weekly import build_weekly, last_complete_week, write_weekly
    from store.connection import Store

    week = args.week or last_complete_week()
    try:
        with Store.open(args.db, read_only=True) as store:
            report = build_weekly(Session(store.cursor, analytics_config(args, args.db)), week)
    except (AnalyticsError, ContractError, StoreError) as exc:
        print(f"flaglens report: {exc}", file=sys.stderr)
        return 2
    for path in write_weekly(report, args.out):
        print(f"wrote {path}")
    return 0
