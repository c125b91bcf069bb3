"""One analytics session: where the store is read, and the configuration analyses need.

The CLI, the dashboards, the weekly report and the alert rules all take a :class:`Session`: a
cursor factory for the store plus the SLO, governance and key files, each read and checked
once (on first use, or all at once by :meth:`AnalyticsConfig.check`) rather than on every
query. Named analyses run through :meth:`Session.analyze` (see :mod:`analytics.analyses`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from analytics.analyses import Query, run
from analytics.governance import DEFAULT_GOVERNANCE_FILE, Rules, default_key_file, load_rules
from analytics.slo import DEFAULT_SLO_FILE, SLO, load_slos
from contracts.signing import KeyRing


def _warn_on_stderr(message: str) -> None:
    print(f"flaglens: {message}", file=sys.stderr)


class AnalyticsConfig:
    """The SLO file, governance rules and signing keys, each parsed once.

    Args:
        slo_file: the SLO file (default: the one shipped with flaglens).
        governance_file: the governance rules (default: the ones shipped with the contracts).
        key_file: the signing key file. When None, ``keys.toml`` beside ``db`` is used if it
            exists; otherwise every signature counts as made with an unknown key, and ``warn``
            is told so once.
        db: the database file the default key file sits beside.
        warn: where that warning goes (default: standard error).
    """

    def __init__(
        self,
        *,
        slo_file: Path | None = None,
        governance_file: Path | None = None,
        key_file: Path | None = None,
        db: Path | None = None,
        warn: Callable[[str], None] = _warn_on_stderr,
    ) -> None:
        self.slo_file = slo_file or DEFAULT_SLO_FILE
        self.governance_file = governance_file or DEFAULT_GOVERNANCE_FILE
        self._key_file_given = key_file is not None
        self.key_file = key_file or (default_key_file(db) if db is not None else None)
        self._warn = warn

    @functools.cached_property
    def slos(self) -> tuple[SLO, ...]:
        return tuple(load_slos(self.slo_file))

    @functools.cached_property
    def rules(self) -> Rules:
        return load_rules(self.governance_file)

    @functools.cached_property
    def keys(self) -> KeyRing:
        where = self.key_file
        if where is None or (not self._key_file_given and not where.exists()):
            shown = where if where is not None else "keys.toml"
            self._warn(
                f"no key file at {shown}; every signature will count as unknown_key (pass --keys)"
            )
            return KeyRing({})
        return KeyRing.load(where)

    def check(self) -> None:
        """Read every file now, so that a broken one stops start-up (raises ConfigError or
        KeyFileError naming the file and the field)."""
        _ = self.slos, self.rules, self.keys


class Session:
    """A store to read and the configuration to read it with.

    Args:
        cursor_factory: a new DuckDB cursor per call (one per thread and query).
        config: the analytics configuration.
    """

    def __init__(
        self, cursor_factory: Callable[[], duckdb.DuckDBPyConnection], config: AnalyticsConfig
    ) -> None:
        self._cursor_factory = cursor_factory
        self.config = config

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._cursor_factory()

    def analyze(self, name: str, query: Query) -> list[dict[str, Any]]:
        """Run the named analysis (see :data:`analytics.analyses.ANALYSES`); JSON-ready rows,
        exactly what ``flaglens analyze NAME --format json`` prints."""
        return run(self, name, query)
