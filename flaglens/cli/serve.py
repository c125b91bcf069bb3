"""`flaglens serve`: its flags, and the server they describe (see :mod:`flaglens.server`).

The flags are made from the settings model (:class:`flaglens.settings.ServeSettings`), one per
field; ``docs/configuration.md`` lists them with their variables and defaults.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pydantic import ValidationError

from analytics.errors import AnalyticsError
from contracts.errors import ContractError
from flaglens.cli.flags import add_setting_flags, settings_from_args, settings_problems
from flaglens.server import ExposureError, serve
from flaglens.settings import ServeSettings
from ingest.auth import TokenFileError
from store.errors import StoreError


def register(subparsers: Any) -> None:
    """Add `flaglens serve`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        usage="%(prog)s [options]",
        help="run the OTLP receivers (and dashboards) on a DuckDB file or a DuckLake",
        description="Receive OTLP exports, check them against the telemetry contracts and store "
        "them in DuckDB; serve the dashboards and evaluate the alert rules beside them. Binds "
        "to 127.0.0.1 unless --host says otherwise.",
        epilog="Every flag can also be set by its FLAGLENS_* environment variable (a flag wins "
        "over the variable; a switch's variable takes true or false). The configuration "
        "reference, docs/configuration.md, describes each setting in full.",
    )
    add_setting_flags(parser, ServeSettings)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from_args(ServeSettings, args)
    except ValidationError as exc:
        print(f"flaglens serve: {settings_problems(exc, ServeSettings)}", file=sys.stderr)
        return 2
    try:
        return serve(settings)
    except (AnalyticsError, ContractError, StoreError, ExposureError, TokenFileError) as exc:
        print(f"flaglens serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(
            f"flaglens serve: cannot listen on {settings.host}:{settings.http_port}: {exc}",
            file=sys.stderr,
        )
        return 2
