"""`flaglens quarantine replay`: release the quarantined records that pass the contracts now.

Beside a running server (the one whose note is beside ``--db``, or ``--server``) the replay
runs in the server, through its admin endpoint, so that the server's writer writes (an admin
token with auth on); the contracts are the server's. On a stopped database it opens the file
and writes itself, checking against ``--contracts-dir`` (default: the shipped contracts).
Exit codes: 0, 2 for a usage error or a failed replay.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from flaglens.cli.reading import add_reading_arguments, database


def register(subparsers: Any) -> None:
    """Add `flaglens quarantine` and its verbs."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "quarantine",
        help="replay quarantined records against the contracts loaded now",
        description="Work on the quarantine: records rejected by their contract.",
    )
    verbs = parser.add_subparsers(dest="quarantine_verb", metavar="VERB", required=True)
    replay = verbs.add_parser(
        "replay",
        help="release quarantined records that pass the contracts loaded now",
        description="Check quarantined log records and OPA decisions again; those that pass "
        "are written to their tables (deduplicated by decision.id / policy.change.id) and "
        "recorded in quarantine_releases. A record is released once, however often this runs.",
    )
    replay.add_argument("--contract", metavar="NAME[@VERSION]",
                        help="only records quarantined under this contract; with @VERSION, "
                        "checked against that version (exact, or a major)")  # fmt: skip
    replay.add_argument("--service", help="only this service's records")
    replay.add_argument("--since", help="only records quarantined since: 7d, now-2h or an instant")
    replay.add_argument("--dry-run", action="store_true", help="count, write nothing")
    replay.add_argument(
        "--contracts-dir", type=Path,
        help="on a stopped database: the contracts to check against (default: the shipped "
        "ones); a running server uses its own",
    )  # fmt: skip
    replay.add_argument("--format", choices=("text", "json"), default="text")
    add_reading_arguments(replay)
    replay.set_defaults(handler=_replay)


def _since(text: str | None) -> str | None:
    """``7d`` → ``now-7d``; anything else as given (an instant, ``now-2h``)."""
    if text and text[0].isdigit() and not text[:4].isdigit():
        return f"now-{text}"
    return text


def render_text(result: dict[str, Any], where: str) -> str:
    verb = "would release" if result["dry_run"] else "released"
    lines = [f"quarantine replay on {where}:"]
    for group in result["groups"]:
        lines.append(
            f"  {group['service']}  {group['contract']}: {group['checked']} checked, "
            f"{group['released']} {verb}, {group['still_rejected']} still rejected"
        )
        for example in group["examples"]:
            errors = "; ".join(f"{e['pointer'] or '/'}: {e['message']}" for e in example["errors"])
            lines.append(
                f"    still rejected (request {example['quarantine_request_id']}): {errors}"
            )
    lines.append(
        f"{result['checked']:,} checked, {result['released']:,} {verb}, "
        f"{result['still_rejected']:,} still rejected, {result['not_replayable']:,} not "
        f"replayable (spans, limit or token rejections), {result['duplicates']:,} duplicates"
        + (f"; request {result['request_id']}" if result["request_id"] else "")
    )
    return "\n".join(lines) + "\n"


def _remote(url: str, args: argparse.Namespace, body: dict[str, Any], ca: str | None) -> Any:
    import httpx

    from flaglens.client import CA_CERT_VARIABLE, TOKEN_VARIABLE

    token = args.token or os.environ.get(TOKEN_VARIABLE) or None
    verify: bool | str = str(args.ca_cert) if args.ca_cert else (
        os.environ.get(CA_CERT_VARIABLE) or ca or True
    )  # fmt: skip
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/api/v1/admin/quarantine/replay", json=body, headers=headers,
            verify=verify, timeout=600,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise RuntimeError(f"cannot reach the server at {url}: {exc}") from exc
    if response.status_code != 200:
        try:
            detail = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = response.text[:500]
        raise RuntimeError(f"the server at {url} answered {response.status_code}: {detail}")
    return response.json()


def _local(db: Path, args: argparse.Namespace) -> dict[str, Any]:
    from analytics.windows import parse_instant
    from contracts import load_registry
    from ingest.replay import ReplaySelection, replay_quarantine
    from store.connection import Store
    from store.writer import StoreWriter

    since = parse_instant(_since(args.since)) if args.since else None  # type: ignore[arg-type]
    selection = ReplaySelection.parse(args.contract, args.service, since)
    registry = load_registry(args.contracts_dir)
    if not db.exists():
        raise RuntimeError(f"no database at {db}")
    with Store.open(db) as store:
        writer = StoreWriter(store)
        writer.start()
        try:
            result = replay_quarantine(store, writer, registry, selection, dry_run=args.dry_run)
        finally:
            writer.close()
    return result.as_dict()


def _replay(args: argparse.Namespace) -> int:
    from analytics.errors import AnalyticsError
    from contracts import ContractError
    from flaglens.client import SERVER_VARIABLE
    from flaglens.discovery import read_note
    from ingest.replay import ReplayError
    from store.errors import StoreError

    server = args.server or (None if args.db else os.environ.get(SERVER_VARIABLE) or None)
    try:
        db = database(args)
    except StoreError as exc:
        print(f"flaglens quarantine replay: {exc}", file=sys.stderr)
        return 2
    note = None if server else read_note(db)
    try:
        if server or note is not None:
            url = server or note.url  # type: ignore[union-attr]
            if args.contracts_dir is not None:
                print("flaglens quarantine replay: the server checks against its own contracts "
                      "(--contracts-dir not used)", file=sys.stderr)  # fmt: skip
            if note is not None:
                print(f"flaglens quarantine replay: {db} is held by `flaglens serve` (pid "
                      f"{note.pid}); replaying through it at {url}", file=sys.stderr)  # fmt: skip
            body = {"contract": args.contract, "service": args.service,
                    "since": _since(args.since), "dry_run": args.dry_run}  # fmt: skip
            result = _remote(url, args, body, note.tls_cert if note else None)
            where = url
        else:
            result = _local(db, args)
            where = str(db)
    except (RuntimeError, ReplayError, ContractError, StoreError, AnalyticsError) as exc:
        print(f"flaglens quarantine replay: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result, where))
    return 0
