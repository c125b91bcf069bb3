"""Where the read verbs (`analyze`, `report weekly`, `alerts evaluate --dry-run`, `export`) read.

Precedence: ``--server URL``, else ``--store URL`` or ``--db PATH``, else ``FLAGLENS_SERVER``,
else ``FLAGLENS_STORE`` or ``FLAGLENS_DB``, else ``./flaglens.duckdb``. A database file a
running `flaglens serve` holds is read through that server's API (found by the note it keeps
beside the file) and stderr says so; a DuckLake is read directly, whoever writes it. Every verb
prints the same bytes either way, since every way goes through :class:`flaglens.client.Client`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flaglens.cli.flags import add_setting_flags, settings_from_args
from flaglens.cli.stores import store_location
from flaglens.client import (
    CA_CERT_VARIABLE,
    SERVER_VARIABLE,
    TOKEN_VARIABLE,
    Client,
    ClientError,
)
from flaglens.settings import AnalyticsFiles
from ingest.settings import StoreSettings
from store.errors import StoreError

DEFAULT_DB = Path("flaglens.duckdb")


def add_reading_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db``, ``--store``, ``--data-path`` and the server options every read verb takes."""
    parser.add_argument(
        "--db",
        type=Path,
        help=f"DuckDB file (default {DEFAULT_DB}); read through its server when one holds it",
    )
    add_setting_flags(parser, StoreSettings, only=("store", "data_path"))
    parser.add_argument(
        "--server",
        help=f"read through this server's API, e.g. http://127.0.0.1:8050 ({SERVER_VARIABLE})",
    )
    parser.add_argument("--token", help=f"read token for a server with auth ({TOKEN_VARIABLE})")
    parser.add_argument(
        "--ca-cert",
        type=Path,
        help=f"certificate or CA to verify an https server by ({CA_CERT_VARIABLE})",
    )


def database(args: argparse.Namespace) -> Path:
    """The DuckDB file a verb that works on files only (``quarantine replay``) opens when no
    server is named.

    Raises:
        StoreError: the flags name a lake (such a verb reaches a lake through a server), or no
            store.
    """
    location = store_location(args)
    if location.is_lake:
        raise StoreError(
            f"{location.describe()} is a lake: this verb opens a DuckDB file; on a lake, name "
            "a server that writes it with --server"
        )
    return Path(location.path)


def _store_named(args: argparse.Namespace) -> bool:
    return bool(args.db or getattr(args, "store", None))


def open_client(args: argparse.Namespace, verb: str) -> Client:
    """The client the flags (and environment) name; raises ClientError."""
    server = args.server or (None if _store_named(args) else os.environ.get(SERVER_VARIABLE))
    verify: bool | str | None = str(args.ca_cert) if args.ca_cert else None

    def tell(sentence: str) -> None:
        print(f"flaglens {verb}: {sentence}", file=sys.stderr)

    files = AnalyticsFiles()
    if hasattr(args, "slos"):  # the verbs that analyse take the analytics files
        files = settings_from_args(AnalyticsFiles, args)
    if server:
        client = Client(server, token=args.token, verify=verify)
    else:
        try:
            location = store_location(args)
        except StoreError as exc:
            raise ClientError(str(exc)) from exc
        client = Client(
            store=location, token=args.token, verify=verify, slos=files.slos,
            governance=files.governance, keys=files.keys, on_server=tell,
        )  # fmt: skip
    if client.remote:
        named = (("--slos", files.slos), ("--governance", files.governance), ("--keys", files.keys))
        given = [flag for flag, value in named if value is not None]
        if given:
            tell(f"the server reads its own SLO, governance and key files ({', '.join(given)} "
                 "not sent)")  # fmt: skip
    return client
