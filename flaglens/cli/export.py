"""`flaglens export`: the stored rows of one table as NDJSON, CSV, Arrow IPC or Parquet.

From a stopped database or through a running server (the one that holds ``--db``, or
``--server``); the bytes are the same either way. Exports are bounded: past the cap (the
server's ``--api-export-max-rows``; 1,000,000 on a database read directly) they are refused
unless ``--limit`` asks for the first rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flaglens.cli.reading import add_reading_arguments, open_client

_FILTERS = ("service", "environment", "flag", "cohort", "contract")
# as analytics.exports.EXPORT_TABLES and api.formats.FORMATS name them (a test checks), kept
# here so that building the command line does not import DuckDB and Arrow
TABLES = ("decisions", "policy_changes", "engagement", "spans", "quarantine")
FORMATS = ("ndjson", "csv", "arrow", "parquet")


def register(subparsers: Any) -> None:
    """Add `flaglens export`."""
    parser = subparsers.add_parser(
        "export",
        help="stored rows of one table as NDJSON, CSV, Arrow or Parquet",
        description="Write the rows of one table over a time range (in the order they were "
        "stored) to --out or standard output. Filters: decisions and policy_changes take "
        "--service, --environment, --flag; engagement --service, --environment, --cohort; "
        "spans --service, --environment; quarantine --service, --environment, --contract.",
    )
    parser.add_argument("table", choices=TABLES)
    add_reading_arguments(parser)
    parser.add_argument("--from", dest="start", default="now-7d", help="start (default now-7d)")
    parser.add_argument("--to", dest="end", default="now", help="end (default now)")
    for name in _FILTERS:
        parser.add_argument(f"--{name}", help=f"only this {name}")
    parser.add_argument(
        "--format", choices=FORMATS, help="default: from --out's suffix, else ndjson"
    )
    parser.add_argument("--limit", type=int, help="write at most this many rows (the first)")
    parser.add_argument("--out", type=Path, help="file to write (default: standard output)")
    parser.set_defaults(handler=_run)


def _format(args: argparse.Namespace) -> str:
    from api.formats import SUFFIXES

    if args.format:
        return str(args.format)
    if args.out is not None:
        for fmt, suffix in SUFFIXES.items():
            if args.out.suffix == suffix:
                return fmt
    return "ndjson"


def _run(args: argparse.Namespace) -> int:
    from flaglens.client import ClientError

    fmt = _format(args)
    if args.out is None and fmt in ("arrow", "parquet") and sys.stdout.isatty():
        print(f"flaglens export: {fmt} is binary; write it to a file with --out", file=sys.stderr)
        return 2
    filters = {name: getattr(args, name) for name in _FILTERS if getattr(args, name)}
    out = args.out.open("wb") if args.out is not None else sys.stdout.buffer
    try:
        with open_client(args, "export") as client:
            chunks = client.export_chunks(
                args.table, fmt, start=args.start, end=args.end,  # type: ignore[arg-type]
                limit=args.limit, **filters,
            )  # fmt: skip
            for chunk in chunks:
                out.write(chunk)
    except ClientError as exc:
        print(f"flaglens export: {exc}", file=sys.stderr)
        if args.out is not None:
            out.close()
            args.out.unlink(missing_ok=True)  # no half-written file
        return 2
    finally:
        if not out.closed:
            out.flush()
            if args.out is not None:
                out.close()
    return 0
