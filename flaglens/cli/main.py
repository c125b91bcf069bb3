"""The one `flaglens` command line.

Each verb lives in its own module of this package and exposes ``register(subparsers)``, which
adds its parser and sets ``handler`` (a callable taking the parsed namespace and returning the
exit code). Modules are imported only when listed here, so a verb's heavy imports stay out of
the others' start-up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# verb module names, in the order `flaglens --help` lists them
_VERB_MODULES = (
    "serve",
    "demo",
    "sample_data",
    "analyze",
    "report",
    "export",
    "alerts",
    "store_status",
    "auth",
    "contracts",
    "quarantine",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every verb registered."""
    parser = argparse.ArgumentParser(
        prog="flaglens",
        description="OTLP ingestion, telemetry contracts and policy-decision analytics "
        "for feature-flag governance.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in _VERB_MODULES:
        importlib.import_module(f"flaglens.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
