"""`flaglens auth token`: make a bearer token and the token-file entry that admits it."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add `flaglens auth`."""
    parser = subparsers.add_parser("auth", help="bearer tokens for the OTLP receivers")
    verbs = parser.add_subparsers(dest="auth_verb", metavar="ACTION", required=True)
    token = verbs.add_parser(
        "token",
        help="print a new token and its [[token]] entry for the --auth-file",
        description="The token is printed once; the file keeps only its SHA-256.",
    )
    token.add_argument("--name", required=True, help="who the token is for")
    token.add_argument(
        "--services", required=True, help="comma-separated service.name values it may write (*)"
    )
    token.set_defaults(handler=_token)


def _token(args: argparse.Namespace) -> int:
    from ingest.auth import new_token, token_hash

    services = [s.strip() for s in args.services.split(",") if s.strip()]
    if not services:
        raise SystemExit("flaglens auth token: --services needs at least one name (or *)")
    token = new_token()
    listed = ", ".join(f'"{s}"' for s in services)
    print(f"# token for {args.name} (shown once; exporters send 'Authorization: Bearer <token>'):")
    print(f"# {token}")
    print()
    print("[[token]]")
    print(f'name = "{args.name}"')
    print(f'sha256 = "{token_hash(token)}"')
    print(f"services = [{listed}]")
    return 0
