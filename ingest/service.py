"""The ingest service: the store, the contracts, the writer and the export flow they share.

One :class:`IngestService` lives in a `flaglens serve` process. Every transport (OTLP/HTTP,
OTLP/gRPC) calls :meth:`IngestService.export`, which decodes and checks the request off the
event loop (in worker processes, see :mod:`ingest.workers`), hands the rows to the single
writer and returns only once they are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from contracts import build_registry, read_contract_files
from ingest.auth import TokenRing
from ingest.errors import IngestError, Overloaded
from ingest.inflight import Charge, InflightBytes, inflated_size
from ingest.pipeline import IngestPipeline, RequestMeta, Signal, Transport
from ingest.reload import ContractReloader
from ingest.settings import IngestSettings
from ingest.telemetry import SelfMetrics
from ingest.workers import Preparers
from store.batch import LedgerEntry, WriteBatch
from store.connection import Store
from store.errors import StoreError, TransientStoreError, WriterClosed, WriterOverloaded
from store.writer import StoreWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an exporter is answered after its records are committed."""

    request_id: int
    received: int
    rejected: int
    duplicates: int
    error_message: str


def _encoding_of(content_type: str) -> Literal["protobuf", "json"] | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-protobuf":
        return "protobuf"
    if media == "application/json":
        return "json"
    return None


def open_store(settings: IngestSettings) -> Store:
    """The store the settings name, opened read-write for this server."""
    return Store.open(
        settings.store_location,
        memory_limit=settings.memory_limit,
        threads=settings.duckdb_threads,
        lake_options=settings.lake_options,
    )


class IngestService:
    """Owns the store and its writer for the life of the server."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        # a broken contract must stop start-up, before the database is touched
        # read once: the decode workers build their registries from these same documents
        contract_files = read_contract_files(settings.contracts_dir)
        self.registry = build_registry(contract_files)
        self.store = open_store(settings)
        self.writer = StoreWriter(
            self.store,
            max_group_rows=settings.writer_max_group_rows,
            max_group_delay=settings.writer_max_group_delay,
            max_group_wait=settings.writer_max_group_wait,
            commit_delay=settings.writer_commit_delay,
            max_pending_rows=settings.writer_max_pending_rows,
        )
        self.pipeline = IngestPipeline(self.registry, settings.limits, settings.uncontracted)
        self.preparers = Preparers(self.pipeline, contract_files, settings.decode_workers)
        self.tokens = TokenRing.load(settings.auth_file) if settings.auth_file else None
        self.inflight = InflightBytes(settings.max_inflight_bytes, settings.max_body_bytes)
        # listener name → its connection counters (set by the server composition)
        self.listeners: dict[str, Callable[[], Mapping[str, int]]] = {}
        self.telemetry = SelfMetrics(
            self.writer.stats,
            otlp_endpoint=settings.self_otlp_endpoint,
            otlp_protocol=settings.self_otlp_protocol,
        )
        self.reloader = ContractReloader(self)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self.writer.start()
            self.preparers.start()
            self._started = True

    def close(self) -> None:
        """Drain the writer (every accepted request gets committed), then close the store."""
        if self._started:
            self.preparers.close()
            self.writer.close()
            self._started = False
        self.telemetry.shutdown()
        self.store.close()

    def connection_stats(self) -> dict[str, dict[str, int]]:
        """Each listener's connection counters (for /healthz)."""
        return {name: dict(stats()) for name, stats in self.listeners.items()}

    def admit(self, nbytes: int | None) -> Charge:
        """Charge a new request against the in-flight bound before its body is read (None: its
        size is not known yet).

        Raises:
            Overloaded: the bound would be passed; read nothing, answer 503 / UNAVAILABLE.
        """
        return self.inflight.admit(nbytes)

    async def export(
        self,
        signal: Signal,
        body: bytes,
        *,
        content_type: str,
        content_encoding: str | None,
        transport: Transport,
        authorization: str | None = None,
        charge: Charge | None = None,
    ) -> ExportResult:
        """Store one export request; returns after its rows are committed.

        ``charge`` is what the transport admitted the request for (:meth:`admit`); the request
        is charged for what it holds at each step until it is answered. Every request, answered
        or refused, gets a row in ``ingest_log``.

        Raises:
            IngestError: the request cannot be used; its ``status``/``grpc_code`` say how to answer.
            StoreError: the commit failed (TransientStoreError: worth retrying).
        """
        meta = RequestMeta(
            request_id=self.writer.next_request_id(),
            signal=signal,
            transport=transport,
            encoding=_encoding_of(content_type),
            compression=(content_encoding or None),
            body_bytes=len(body),
            received_at=datetime.now(UTC),
        )
        own_charge = charge is None
        if charge is None:
            try:
                charge = self.inflight.admit(len(body))
            except Overloaded as exc:
                self.refuse(meta, exc)
                raise
        try:
            return await self._export(meta, body, content_type, content_encoding,
                                      authorization, charge)  # fmt: skip
        finally:
            if own_charge:
                charge.release()

    async def _export(
        self,
        meta: RequestMeta,
        body: bytes,
        content_type: str,
        content_encoding: str | None,
        authorization: str | None,
        charge: Charge,
    ) -> ExportResult:
        signal, transport = meta.signal, meta.transport
        if self.tokens is not None:
            try:
                meta = replace(meta, grant=self.tokens.writer(authorization))
            except IngestError as exc:
                self.refuse(meta, exc)
                raise
        limit = self.settings.max_decompressed_bytes
        charge.hold(len(body) + inflated_size(body, content_encoding, limit))
        # the contracts current now check this request, even if a reload swaps them meanwhile
        preparers = self.preparers
        with self.writer.incoming():  # the writer may wait for it to fill its group
            try:
                prepared = await preparers.prepare(
                    meta, body, content_type=content_type, content_encoding=content_encoding
                )
            except IngestError as exc:
                self.refuse(meta, exc)
                raise
            # the body stays referenced (by the transport) until the answer
            charge.hold(len(body) + prepared.batch.nbytes)
            try:
                future = self.writer.submit(prepared.batch)
            except WriterOverloaded as exc:
                overloaded = Overloaded(retry_after=exc.retry_after)
                self.refuse(meta, overloaded)
                raise overloaded from exc
        try:
            result = await asyncio.wrap_future(future)
        except TransientStoreError:
            self.telemetry.record_request(signal, transport, 503)
            raise
        except StoreError:
            self.telemetry.record_request(signal, transport, 500)
            raise
        self.telemetry.record_request(
            signal,
            transport,
            200,
            received=prepared.received,
            tables=prepared.batch.tables,
            uncontracted=prepared.batch.ledger.uncontracted,
        )
        return ExportResult(
            request_id=meta.request_id,
            received=prepared.received,
            rejected=prepared.rejected,
            duplicates=result.duplicates,
            error_message=prepared.error_message,
        )

    def refuse(self, meta: RequestMeta, error: IngestError) -> None:
        """Count a request refused as a whole and write its ``ingest_log`` row."""
        self.telemetry.record_request(meta.signal, meta.transport, error.status)
        self.record_failure(meta, error.status, str(error))

    def refuse_unread(
        self,
        signal: Signal,
        transport: Transport,
        error: IngestError,
        *,
        content_type: str | None,
        content_encoding: str | None,
        body_bytes: int,
    ) -> None:
        """:meth:`refuse` for a request the transport refused before handing it over (its
        body unread, too large or not an export at all); ``body_bytes`` as declared."""
        meta = RequestMeta(
            request_id=self.writer.next_request_id(),
            signal=signal,
            transport=transport,
            encoding=_encoding_of(content_type or ""),
            compression=(content_encoding or None),
            body_bytes=body_bytes,
            received_at=datetime.now(UTC),
        )
        self.refuse(meta, error)

    def record_failure(self, meta: RequestMeta, status: int, error: str) -> None:
        """Write a ledger row for a request refused as a whole (best effort, not awaited)."""
        entry = LedgerEntry(
            request_id=meta.request_id,
            received_at=meta.received_at,
            transport=meta.transport,
            signal=meta.signal,
            encoding=meta.encoding,
            compression=meta.compression,
            body_bytes=meta.body_bytes,
            received=0,
            accepted=0,
            rejected=0,
            status_code=status,
            error=error[:2000],
            services=(),
        )
        try:
            self.writer.submit(WriteBatch(ledger=entry, tables={}))
        except (WriterOverloaded, WriterClosed):
            log.warning("ledger row for refused request %d dropped: writer full or closed",
                        meta.request_id)  # fmt: skip
