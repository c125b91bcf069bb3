"""`flaglens alerts evaluate`: run the alert rules once against a database and deliver."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analytics.errors import AnalyticsError
from analytics.windows import parse_instant
from contracts.errors import ContractError
from flaglens.cli.analyze import add_analytics_arguments, analytics_config
from flaglens.cli.flags import add_setting_flags, settings_from_args
from flaglens.cli.reading import add_reading_arguments, open_client
from flaglens.cli.stores import store_location
from flaglens.settings import AlertFiles
from store.connection import Store
from store.errors import StoreError, TransientStoreError
from store.lease import CatalogLease


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
        description="Records state and delivers: needs the database to itself (a running "
        "`flaglens serve` owns alert state and evaluates the rules on an interval). With "
        "--dry-run nothing is written: it says what an evaluation would change and queue, on "
        "a stopped database or through a running server. On a lake, which servers share, it "
        "takes the rounds lease for the evaluation and refuses while a server holds it.",
    )
    add_reading_arguments(evaluate)
    evaluate.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing; print the transitions and notifications an evaluation would make",
    )
    evaluate.add_argument("--at", help="evaluate as of this instant (default now)")
    evaluate.add_argument("--dashboards-url", default="", help="base URL for alert links")
    add_alert_arguments(evaluate)
    add_analytics_arguments(evaluate)
    evaluate.set_defaults(handler=_evaluate)


def _print_transitions(transitions: list[dict[str, Any]]) -> None:
    for t in transitions:
        labels = ", ".join(f"{k}={v}" for k, v in t["labels"].items() if k != "alertname")
        print(f"{t['rule']}: {t['from_state'] or 'new'} -> {t['to_state']}  {{{labels}}}")


def _dry_run(args: argparse.Namespace) -> int:
    from flaglens.client import ClientError

    try:
        at = parse_instant(args.at) if args.at else None
        rules = settings_from_args(AlertFiles, args).rules_file
        with open_client(args, "alerts") as client:
            result = client.alerts_dry_run(rules, at)
    except (AnalyticsError, ClientError) as exc:
        print(f"flaglens alerts: {exc}", file=sys.stderr)
        return 2
    _print_transitions(result["transitions"])
    print(
        f"{result['active']} active alert(s), {len(result['transitions'])} transition(s), "
        f"{result['notifications']} notification(s) would be queued (dry run: nothing written)"
    )
    for name in result["failed_rules"]:
        print(f"rule {name} could not be evaluated (see the log)", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)

    import httpx

    from alerts.evaluator import Evaluator
    from alerts.rules import load_alert_config
    from alerts.webhook import deliver_pending
    from analytics.session import Session
    from flaglens.discovery import read_note
    from store.writer import StoreWriter

    try:
        location = store_location(args)
    except StoreError as exc:
        print(f"flaglens alerts: {exc}", file=sys.stderr)
        return 2
    db = None if location.is_lake else Path(location.path)
    note = read_note(db) if db is not None else None
    if args.server or note is not None:
        held = f"`flaglens serve` (pid {note.pid}) holds {db}; it" if note else "the server"
        print(
            f"flaglens alerts: {held} owns alert state and evaluates the rules itself on its "
            "interval; add --dry-run to see what an evaluation would do now",
            file=sys.stderr,
        )
        return 2
    try:
        files = settings_from_args(AlertFiles, args)
        config = load_alert_config(files.rules_file, webhook=files.alert_webhook)
        at = parse_instant(args.at) if args.at else None
        # the same write path as `flaglens serve`: a writer of its own, closed (drained) on exit
        with Store.open(location) as store, _rounds_lease(store), StoreWriter(store) as writer:
            session = Session(store.cursor, analytics_config(args, db))
            evaluator = Evaluator(session, config, writer, dashboards_url=args.dashboards_url)
            result = evaluator.evaluate(at)
            _print_transitions(result.as_dict()["transitions"])
            print(
                f"{result.active} active alert(s), {len(result.transitions)} transition(s), "
                f"{result.notifications} notification(s) queued"
            )
            for name in sorted(result.failed_rules):
                print(f"rule {name} could not be evaluated (see log)", file=sys.stderr)
            if config.receiver.url:
                with httpx.Client(timeout=10) as client:
                    delivered = deliver_pending(
                        store.cursor(), writer, config.receiver.url, client=client
                    )
                retry = f" ({delivered.error}; will retry)" if delivered.error else ""
                print(f"delivered {delivered.delivered}, failed {delivered.failed}{retry}")
    except (AnalyticsError, ContractError, StoreError) as exc:
        print(f"flaglens alerts: {exc}", file=sys.stderr)
        return 2
    return 0


@contextlib.contextmanager
def _rounds_lease(store: Store) -> Iterator[None]:
    """Hold the store's rounds lease for the evaluation (always held on a DuckDB file)."""
    lease = store.lease("rounds")
    if isinstance(lease, CatalogLease) and not lease.renew():
        raise TransientStoreError(
            f"{lease.holder_state()} holds the rounds lease of {store.path} and evaluates the "
            "alert rules itself; stop it, or let it do this"
        )
    try:
        yield
    finally:
        lease.close()
