"""`flaglens sample-data send|write`: the seeded sample week, through OTLP or into files."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from analytics.errors import InvalidWindow
from analytics.windows import parse_instant


def add_week_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that decide which week is played (shared with `flaglens demo`)."""
    parser.add_argument("--days", type=int, default=7, help="days simulated (default 7)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="traffic multiplier (default 1: ~240k records)"
    )
    parser.add_argument(
        "--end",
        help="end of the simulated period, ISO 8601 (default: the current hour, UTC)",
    )


def week_options(args: argparse.Namespace) -> Any:
    from sample_data.generator import Options

    if args.days < 1:
        raise SystemExit("flaglens sample-data: --days must be at least 1")
    if not 0 < args.scale <= 1000:
        raise SystemExit("flaglens sample-data: --scale must be in (0, 1000]")
    end: datetime | None = None
    if args.end:
        try:
            end = parse_instant(args.end)
        except InvalidWindow as exc:
            raise SystemExit(f"flaglens sample-data: --end: {exc}") from exc
    return Options(seed=args.seed, days=args.days, scale=args.scale, end=end)


def register(subparsers: Any) -> None:
    """Add `flaglens sample-data`."""
    parser = subparsers.add_parser(
        "sample-data",
        help="generate the sample week (send it over OTLP, or write OTLP/JSON files)",
        description="A seeded week of a small company's telemetry with known stories in it "
        "(a regression, a cohort shift, a harmless change, unauthorized mutations, drift, a "
        "contract break), described in manifest.json beside the data.",
    )
    verbs = parser.add_subparsers(dest="sample_verb", metavar="ACTION", required=True)
    send = verbs.add_parser("send", help="send the week to an OTLP/HTTP endpoint")
    send.add_argument("--endpoint", default="http://127.0.0.1:4318", help="OTLP/HTTP base URL")
    send.add_argument("--out", type=Path, help="write manifest.json and keys.toml here")
    send.add_argument("--token", help="bearer token, if the endpoint asks for one")
    send.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_week_arguments(send)
    send.set_defaults(handler=_send)
    write = verbs.add_parser("write", help="write the week as OTLP/JSON request files")
    write.add_argument("--out", type=Path, required=True, help="directory to write")
    add_week_arguments(write)
    write.set_defaults(handler=_write)


def print_summary(summary: Any, truth: dict[str, Any]) -> None:
    sent = summary.sent
    print(
        f"sent {sent['logs']:,} log records, {sent['traces']:,} spans and "
        f"{sent['metrics']:,} metric points in "
        f"{summary.requests:,} requests ({summary.retries} retries)"
    )
    accepted = (
        f"accepted {summary.accepted('logs'):,} log records, "
        f"{summary.accepted('traces'):,} spans, {summary.accepted('metrics'):,} metric points"
    )
    print(
        f"{accepted}; rejected {summary.rejected['logs']:,} log records, "
        f"{summary.rejected['traces']:,} spans (quarantined by the server)"
    )
    expected = truth["stories"]["contract_break"]["records"]
    print(f"the manifest expects {expected:,} rejected decisions (the contract-break story)")
    for message in summary.first_errors[:2]:
        print(f"  server said: {message[:300]}")


def _send(args: argparse.Namespace) -> int:
    from sample_data.otlp import SendError
    from sample_data.week import send_week

    options = week_options(args)
    try:
        summary, truth = send_week(
            options, args.endpoint, args.out, token=args.token, progress=not args.no_progress
        )
    except SendError as exc:
        print(f"flaglens sample-data send: {exc}", file=sys.stderr)
        return 1
    print_summary(summary, truth)
    if args.out:
        print(f"manifest and keys written to {args.out}/")
    return 0


def _write(args: argparse.Namespace) -> int:
    from sample_data.week import write_week

    counts, truth = write_week(week_options(args), args.out)
    print(
        f"wrote {counts['logs']:,} log records, {counts['traces']:,} spans and "
        f"{counts['metrics']:,} metric points as OTLP/JSON "
        f"to {args.out}/ (with manifest.json and keys.toml)"
    )
    print(json.dumps(truth["counts"]))
    return 0
