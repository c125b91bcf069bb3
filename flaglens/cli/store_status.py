"""`flaglens store status`: what a store holds, per table and per writer, and on a lake who
holds the rounds lease and how many files and catalog bytes the lake takes. `flaglens store
copy`: a DuckDB file's rows into a new lake."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from flaglens.cli.stores import add_store_arguments, open_store
from store.errors import StoreError
from store.status import store_status
from store.transfer import copy_file_into


def register(subparsers: Any) -> None:
    """Add `flaglens store`."""
    parser = subparsers.add_parser("store", help="look at a store (a DuckDB file or a lake)")
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status",
        help="rows per table, the ledger per writer, a lake's lease, snapshot, files and size",
        description="Read-only: runs beside the servers of a lake (not beside the server of a "
        "DuckDB file, which holds it).",
    )
    add_store_arguments(status)
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(handler=_status)
    copy = actions.add_parser(
        "copy",
        help="copy every row of a DuckDB file into an empty store (moving to a lake)",
        description="Copies the tables of --from into the store named by --store/--data-path "
        "(created and migrated if new), in one transaction. Stop the server of --from first.",
    )
    copy.add_argument("--from", dest="source", type=Path, required=True, help="DuckDB file")
    add_store_arguments(copy)
    copy.set_defaults(handler=_copy)


def _copy(args: argparse.Namespace) -> int:
    try:
        with open_store(args, read_only=False) as store:
            copied = copy_file_into(args.source, store)
    except StoreError as exc:
        print(f"flaglens store: {exc}", file=sys.stderr)
        return 2
    print(f"copied {sum(copied.values()):,} rows: " + ", ".join(
        f"{name} {rows:,}" for name, rows in copied.items() if rows
    ))  # fmt: skip
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        with open_store(args, read_only=True) as store:
            status = store_status(store)
    except StoreError as exc:
        print(f"flaglens store: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        json.dump(status, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{status['store']} ({status['kind']}, schema version {status['schema_version']})")
    for name, rows in status["rows"].items():
        print(f"  {name:<22} {rows:>12,}")
    for writer in status["writers"]:
        print(
            f"  writer {writer['writer'] or '(before 0006)'}: {writer['requests']:,} requests, "
            f"{writer['accepted']:,} accepted, {writer['duplicates']:,} duplicates, "
            f"last at {writer['last_received_at']}"
        )
    if "lake" in status:
        lease, lake = status["lease"], status["lake"]
        held = f"{lease['holder']} until {lease['expires_at']}" if lease["live"] else "nobody"
        print(f"  rounds lease: {held}")
        print(
            f"  snapshot {lake['snapshot']}, {lake['data_files']:,} data files "
            f"({lake['data_bytes'] / 2**20:.1f} MiB, {lake['delete_files']} with deletes), "
            f"catalog {lake['catalog_bytes'] / 2**20:.1f} MiB"
        )
    return 0
