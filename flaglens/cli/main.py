"""The one `flaglens` command line.

Each verb lives in its own module of this package and exposes ``register(subparsers)``, which
adds its parser and sets ``handler`` (a callable taking the parsed namespace and returning the
exit code). A command line that names a verb imports that verb's module only, so a verb's heavy
imports (the server's receivers, scipy, polars) stay out of the others' start-up; ``--help``
and a mistyped verb import them all, to list them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Collection, Sequence

# each verb and the module that registers it, in the order `flaglens --help` lists them
_VERB_MODULES = {
    "serve": "serve",
    "demo": "demo",
    "sample-data": "sample_data",
    "analyze": "analyze",
    "report": "report",
    "export": "export",
    "alerts": "alerts",
    "store": "store_status",
    "auth": "auth",
    "contracts": "contracts",
    "quarantine": "quarantine",
}


def build_parser(verbs: Collection[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser with every verb registered, or only ``verbs``."""
    parser = argparse.ArgumentParser(
        prog="flaglens",
        description="OTLP ingestion, telemetry contracts and policy-decision analytics "
        "for feature-flag governance.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, module in _VERB_MODULES.items():
        if verbs is None or verb in verbs:
            importlib.import_module(f"flaglens.cli.{module}").register(subparsers)
    return parser


def parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser for this command line: with its verb's module only when it starts with a
    known verb (the top-level parser takes no option but ``--help``), with every verb else."""
    verb = argv[0] if argv else None
    return build_parser([verb] if verb in _VERB_MODULES else None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parser_for(arguments).parse_args(arguments)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
