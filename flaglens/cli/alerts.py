"""`flaglens alerts evaluate`: run the alert rules once against a database and deliver."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from analytics.errors import AnalyticsError
from analytics.windows import parse_instant
from contracts.errors import ContractError
from flaglens.cli.analyze import add_analytics_arguments, analytics_config
from flaglens.cli.flags import add_setting_flags, settings_from_args
from flaglens.settings import AlertFiles
from store.errors import StoreError


def add_alert_arguments(parser: argparse.ArgumentParser) -> None:
    """The alert rules and webhook (the fields of :class:`AlertFiles`, as `serve` has them)."""
    add_setting_flags(parser, AlertFiles)


def register(subparsers: Any) -> None:
    """Add `flaglens alerts`."""
    parser = subparsers.add_parser("alerts", help="evaluate alert rules once")
    verbs = parser.add_subparsers(dest="alerts_verb", metavar="ACTION", required=True)
    evaluate = verbs.add_parser(
        "evaluate",
        help="evaluate every rule now, record state and history, deliver notifications",
        description="Needs the database to itself (stop `flaglens serve`, which evaluates "
        "the same rules on an interval).",
    )
    evaluate.add_argument("--db", type=Path, default=Path("flaglens.duckdb"))
    evaluate.add_argument("--at", help="evaluate as of this instant (default now)")
    evaluate.add_argument("--dashboards-url", default="", help="base URL for alert links")
    add_alert_arguments(evaluate)
    add_analytics_arguments(evaluate)
    evaluate.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    import httpx

    from alerts.evaluator import Evaluator
    from alerts.rules import load_alert_config
    from alerts.webhook import deliver_pending
    from analytics.session import Session
    from store.connection import Store

    try:
        files = settings_from_args(AlertFiles, args)
        config = load_alert_config(files.rules_file, webhook=files.alert_webhook)
        at = parse_instant(args.at) if args.at else None
        with Store.open(args.db) as store:
            session = Session(store.cursor, analytics_config(args, args.db))
            evaluator = Evaluator(session, config, dashboards_url=args.dashboards_url)
            result = evaluator.evaluate(at)
            for t in result.transitions:
                labels = ", ".join(f"{k}={v}" for k, v in t.labels.items() if k != "alertname")
                print(f"{t.rule}: {t.from_state or 'new'} -> {t.to_state}  {{{labels}}}")
            print(
                f"{result.active} active alert(s), {len(result.transitions)} transition(s), "
                f"{result.notifications} notification(s) queued"
            )
            for name in sorted(result.failed_rules):
                print(f"rule {name} could not be evaluated (see log)", file=sys.stderr)
            if config.receiver.url:
                with httpx.Client(timeout=10) as client:
                    delivered = deliver_pending(store.cursor, config.receiver.url, client=client)
                retry = f" ({delivered.error}; will retry)" if delivered.error else ""
                print(f"delivered {delivered.delivered}, failed {delivered.failed}{retry}")
    except (AnalyticsError, ContractError, StoreError) as exc:
        print(f"flaglens alerts: {exc}", file=sys.stderr)
        return 2
    return 0
