"""The Python client: flaglens' analyses and rows as polars DataFrames, for notebooks and scripts.

::

    from flaglens import Client

    with Client("http://127.0.0.1:8050", token=...) as fl:   # a running server's read API
        budgets = fl.budgets(start="now-7d")
        decisions = fl.decisions(start="2026-11-16", end="2026-11-23", service="checkout")

    fl = Client(db="flaglens.duckdb")   # a database file; through its server if one holds it
    fl = Client(store="ducklake:postgres://flaglens@db/flaglens", data_path="/lake")   # a lake

Analyses return the rows `flaglens analyze NAME --format json` prints, one DataFrame row each
(nested values as structs and lists, instants as the same text). Row exports come as Arrow
from the server (no JSON on the way) and keep their types. Either way the values are those of
the CLI, which reads through this client too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
import pyarrow as pa

from analytics.analyses import ANALYSES, DEFAULT_CORRECTION, Query
from analytics.errors import AnalyticsError
from analytics.exports import ExportQuery
from analytics.session import AnalyticsConfig
from analytics.windows import TimeWindow, parse_duration
from api.formats import Format
from flaglens.backends import Backend, ClientError, HttpBackend, LocalBackend
from flaglens.discovery import ServerNote, read_note
from store.errors import StoreError
from store.location import StoreLocation, parse_store

__all__ = ["Client", "ClientError"]

TOKEN_VARIABLE = "FLAGLENS_TOKEN"
SERVER_VARIABLE = "FLAGLENS_SERVER"
CA_CERT_VARIABLE = "FLAGLENS_CA_CERT"


def _location(
    db: str | Path | None, store: str | StoreLocation | None, data_path: str | Path | None
) -> StoreLocation:
    if db is not None and store is not None:
        raise ClientError("give db=PATH or store=URL, not both")
    if isinstance(store, StoreLocation):
        return store
    source = store if store is not None else db
    if source is None:
        raise ClientError("give db=PATH or store=URL")
    try:
        return parse_store(source, data_path=data_path)
    except StoreError as exc:
        raise ClientError(str(exc)) from exc


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


class Client:
    """Read flaglens: through a server's read API (``url``), a database file (``db``), or a
    store URL (``store``: a file, or a DuckLake that the client reads directly, whoever writes
    it).

    Args:
        url: the server's read listener, e.g. ``http://127.0.0.1:8050`` (default:
            ``FLAGLENS_SERVER``, when ``db`` is not given either).
        db: a database file. When a running `flaglens serve` holds it (its note beside the
            file says so), the client reads through that server's API; otherwise it opens the
            file read-only (a server cannot start on it meanwhile: :meth:`close` it).
        store: a store URL (``ducklake:postgres://...`` with ``data_path``, or a DuckDB file
            as ``db`` is) or a parsed :class:`~store.location.StoreLocation`, instead of ``db``.
        data_path: where a DuckLake's data files are (with a ``ducklake:`` ``store``).
        token: a read token for a server with auth on (default: ``FLAGLENS_TOKEN``).
        verify: TLS verification for https: True (the system's CAs), a CA or certificate
            file, or False (default: ``FLAGLENS_CA_CERT`` if set, else True; a found server's
            own certificate).
        timeout: seconds per HTTP request.
        slos, governance, keys: the analytics files of a database opened directly (a server
            uses its own).
        on_server: told once, with a sentence, when ``db`` is read through its server.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        db: str | Path | None = None,
        store: str | StoreLocation | None = None,
        data_path: str | Path | None = None,
        token: str | None = None,
        verify: bool | str | None = None,
        timeout: float = 300.0,
        slos: Path | None = None,
        governance: Path | None = None,
        keys: Path | None = None,
        on_server: Callable[[str], None] | None = None,
    ) -> None:
        token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
        verify = verify if verify is not None else os.environ.get(CA_CERT_VARIABLE) or True
        if url is None and db is None and store is None:
            url = os.environ.get(SERVER_VARIABLE) or None
            if url is None:
                raise ClientError(
                    f"give a server URL, db=PATH or store=URL (or set {SERVER_VARIABLE})"
                )
        self.note: ServerNote | None = None
        self._backend: Backend
        if url is not None:
            self._backend = HttpBackend(url, token=token, verify=verify, timeout=timeout)
            self.source = url
            return
        location = _location(db, store, data_path)
        if location.is_lake:
            config = AnalyticsConfig(slo_file=slos, governance_file=governance, key_file=keys)
            self._backend = LocalBackend(location, config)
            self.source = location.describe()
            return
        path = Path(location.path)
        self.note = read_note(path)
        if self.note is not None:
            if on_server is not None:
                on_server(
                    f"{path} is held by `flaglens serve` (pid {self.note.pid}); reading "
                    f"through its API at {self.note.url}"
                )
            own_cert = self.note.tls_cert if verify is True and self.note.tls_cert else verify
            self._backend = HttpBackend(self.note.url, token=token, verify=own_cert,
                                        timeout=timeout)  # fmt: skip
            self.source = self.note.url
            return
        config = AnalyticsConfig(slo_file=slos, governance_file=governance, key_file=keys, db=path)
        self._backend = LocalBackend(path, config)
        self.source = str(path)

    @property
    def remote(self) -> bool:
        """True when reads go through a server's API."""
        return isinstance(self._backend, HttpBackend)

    # -- analyses ---------------------------------------------------------------------------

    def analysis_rows(self, name: str, query: Query) -> list[dict[str, Any]]:
        """The JSON-ready rows of one analysis (what ``--format json`` prints)."""
        if name not in ANALYSES:
            raise ClientError(f"no analysis {name!r}; analyses are: {', '.join(ANALYSES)}")
        return self._backend.analysis_rows(name, query)

    def analyze(
        self,
        name: str,
        *,
        start: str = "now-7d",
        end: str = "now",
        service: str | None = None,
        environment: str | None = None,
        bucket: str | None = None,
        by: str = "service",
        compare: bool = False,
        rates: bool = False,
        correction: str = DEFAULT_CORRECTION,
    ) -> pl.DataFrame:
        """One analysis as a DataFrame; the arguments are `flaglens analyze`'s flags."""
        try:
            query = Query(
                window=TimeWindow.parse(start, end),
                service=service,
                environment=environment,
                bucket=parse_duration(bucket) if bucket else None,
                by=tuple(part.strip() for part in by.split(",") if part.strip()),
                compare=compare,
                rates=rates,
                correction=correction,
            )
        except AnalyticsError as exc:
            raise ClientError(str(exc)) from exc
        return _frame(self.analysis_rows(name, query))

    def budgets(self, **options: Any) -> pl.DataFrame:
        """Error budgets per SLO (see :meth:`analyze` for the options)."""
        return self.analyze("budgets", **options)

    def latency(self, **options: Any) -> pl.DataFrame:
        """Latency percentiles per group (``by=``) and bucket."""
        return self.analyze("latency", **options)

    def cohorts(self, **options: Any) -> pl.DataFrame:
        """Cohort engagement (``compare=True``: shifts against the previous window)."""
        return self.analyze("cohorts", **options)

    def changes(self, **options: Any) -> pl.DataFrame:
        """Every policy change's impact, ranked."""
        return self.analyze("changes", **options)

    def mutations(self, **options: Any) -> pl.DataFrame:
        """Unauthorized changes, with reasons."""
        return self.analyze("mutations", **options)

    def drift(self, **options: Any) -> pl.DataFrame:
        """Decisions under versions no approved change produced."""
        return self.analyze("drift", **options)

    def contracts(self, **options: Any) -> pl.DataFrame:
        """Contract violations (``rates=True``: rates per service and contract)."""
        return self.analyze("contracts", **options)

    # -- report and alerts ------------------------------------------------------------------

    def weekly_report(self, week: str | None = None) -> dict[str, Any]:
        """The weekly report's data (what ``report.json`` holds); default the last complete
        ISO week."""
        from reports.weekly import last_complete_week

        return self._backend.weekly(week or last_complete_week())

    def alerts(self, *, state: str | None = None, rule: str | None = None) -> pl.DataFrame:
        """The alert instances the server keeps and their states."""
        return _frame(self._backend.alert_states(state, rule))

    def alert_history(
        self,
        *,
        start: str = "now-7d",
        end: str = "now",
        rule: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> pl.DataFrame:
        """State transitions, newest first, one page."""
        window = self._window(start, end)
        return _frame(self._backend.alert_history(window, rule, limit, offset))

    def alerts_dry_run(self, rules: Path, at: datetime | None = None) -> dict[str, Any]:
        """What evaluating ``rules`` at ``at`` would change and queue, writing nothing."""
        return self._backend.dry_run(rules, at)

    # -- row exports ------------------------------------------------------------------------

    def export_chunks(
        self,
        table: str,
        fmt: Format,
        *,
        start: str = "now-7d",
        end: str = "now",
        limit: int | None = None,
        **filters: str,
    ) -> Iterator[bytes]:
        """The bytes of an export in ``fmt`` (ndjson, csv, arrow, parquet), as they stream."""
        try:
            query = ExportQuery(table, self._window(start, end), filters)
        except AnalyticsError as exc:
            raise ClientError(str(exc)) from exc
        return self._backend.export_chunks(query, fmt, limit)

    def export(
        self,
        table: str,
        *,
        start: str = "now-7d",
        end: str = "now",
        limit: int | None = None,
        **filters: str,
    ) -> pl.DataFrame:
        """The rows of one table as a DataFrame, read as Arrow IPC."""
        body = b"".join(
            self.export_chunks(table, "arrow", start=start, end=end, limit=limit, **filters)
        )
        return pl.from_arrow(pa.ipc.open_stream(body).read_all())  # type: ignore[return-value]

    def decisions(self, **options: Any) -> pl.DataFrame:
        """Stored decisions (filters: service, environment, flag)."""
        return self.export("decisions", **options)

    def policy_changes(self, **options: Any) -> pl.DataFrame:
        """The change ledger (filters: service, environment, flag)."""
        return self.export("policy_changes", **options)

    def engagement(self, **options: Any) -> pl.DataFrame:
        """Engagement events (filters: service, environment, cohort)."""
        return self.export("engagement", **options)

    def spans(self, **options: Any) -> pl.DataFrame:
        """Stored spans (filters: service, environment)."""
        return self.export("spans", **options)

    def quarantine(self, **options: Any) -> pl.DataFrame:
        """Quarantined records with their reasons (filters: service, environment, contract);
        ``errors`` and ``record`` are JSON text (``pl.col("record").str.json_decode()``)."""
        return self.export("quarantine", **options)

    # -- contracts ---------------------------------------------------------------------------

    def preview_contracts(
        self,
        directory: Path,
        *,
        start: str = "now-7d",
        end: str = "now",
        service: str | None = None,
        examples: int = 3,
    ) -> dict[str, Any]:
        """What the contracts in ``directory`` would have done to the stored records of the
        range: per service and contract, accepted records they would reject (with examples) and
        quarantined ones they would pass (see docs/contracts.md)."""
        from contracts import ContractSourceError, read_path

        try:
            contract_set = read_path(directory)
        except ContractSourceError as exc:
            raise ClientError(str(exc)) from exc
        unreadable = [f"{doc.path}: {doc.error}" for doc in contract_set.schemas if doc.error]
        if unreadable:
            raise ClientError("cannot read the proposed contracts: " + "; ".join(unreadable))
        if not contract_set.schemas:
            raise ClientError(f"no contract files in {directory}")
        files = [(doc.path, doc.data) for doc in contract_set.schemas]
        window = self._window(start, end)
        return self._backend.preview_contracts(files, window, service, examples)

    # -- housekeeping -----------------------------------------------------------------------

    @staticmethod
    def _window(start: str, end: str) -> TimeWindow:
        try:
            return TimeWindow.parse(start, end)
        except AnalyticsError as exc:
            raise ClientError(str(exc)) from exc

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.source!r})"
