"""`flaglens auth token`: make a bearer token and the token-file entry that admits it."""

from __future__ import annotations

import argparse
from typing import Any

from ingest.auth import ROLES


def register(subparsers: Any) -> None:
    """Add `flaglens auth`."""
    parser = subparsers.add_parser(
        "auth", help="bearer tokens for the OTLP receivers, the read API and the dashboards"
    )
    verbs = parser.add_subparsers(dest="auth_verb", metavar="ACTION", required=True)
    token = verbs.add_parser(
        "token",
        help="print a new token and its [[token]] entry for the --auth-file",
        description="The token is printed once; the file keeps only its SHA-256. Roles: ingest "
        "writes the services it names and cannot read; read reads the API and the dashboards "
        "and cannot write; admin does both (any service unless --services narrows it).",
    )
    token.add_argument("--name", required=True, help="who the token is for")
    token.add_argument(
        "--role", choices=ROLES, default="ingest", help="what the token may do (default ingest)"
    )
    token.add_argument(
        "--services",
        help="comma-separated service.name values it may write, or * (ingest: required; "
        "admin: default *; read: none)",
    )
    token.set_defaults(handler=_token)


def _token(args: argparse.Namespace) -> int:
    from ingest.auth import new_token, token_hash

    services = [s.strip() for s in (args.services or "").split(",") if s.strip()]
    if args.role == "ingest" and not services:
        raise SystemExit("flaglens auth token: --services needs at least one name (or *)")
    if args.role == "read" and services:
        raise SystemExit(
            "flaglens auth token: a read token writes no services; drop --services, "
            "or use --role admin"
        )
    token = new_token()
    if args.role == "read":
        use = "readers send 'Authorization: Bearer <token>', or the token as a basic-auth password"
    else:
        use = "exporters send 'Authorization: Bearer <token>'"
    print(f"# token for {args.name} (shown once; {use}):")
    print(f"# {token}")
    print()
    print("[[token]]")
    print(f'name = "{args.name}"')
    if args.role != "ingest":
        print(f'role = "{args.role}"')
    print(f'sha256 = "{token_hash(token)}"')
    if services:
        listed = ", ".join(f'"{s}"' for s in services)
        print(f"services = [{listed}]")
    return 0
