"""`flaglens report weekly`: the weekly metrics report as HTML, Markdown and JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flaglens.cli.analyze import add_analytics_arguments
from flaglens.cli.reading import add_reading_arguments, open_client


def register(subparsers: Any) -> None:
    """Add `flaglens report`."""
    parser = subparsers.add_parser("report", help="write the weekly metrics report")
    kinds = parser.add_subparsers(dest="report_kind", metavar="KIND", required=True)
    weekly = kinds.add_parser(
        "weekly",
        help="one ISO week against the one before: report.html, report.md, report.json",
    )
    add_reading_arguments(weekly)
    weekly.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: the last complete one)")
    weekly.add_argument("--out", type=Path, required=True, help="directory to write")
    add_analytics_arguments(weekly)
    weekly.set_defaults(handler=_weekly)


def _weekly(args: argparse.Namespace) -> int:
    from flaglens.client import ClientError
    from reports.weekly import last_complete_week, write_weekly

    week = args.week or last_complete_week()
    try:
        with open_client(args, "report") as client:
            report = client.weekly_report(week)
    except ClientError as exc:
        print(f"flaglens report: {exc}", file=sys.stderr)
        return 2
    for path in write_weekly(report, args.out):
        print(f"wrote {path}")
    return 0
