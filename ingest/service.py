"""The ingest service: the store, the contracts, the writer and the export flow they share.

One :class:`IngestService` lives in a `flaglens serve` process. Every transport (OTLP/HTTP,
OTLP/gRPC) calls :meth:`IngestService.export`, which decodes and checks the request off the
event loop (in worker processes, see :mod:`ingest.workers`), hands the rows to the single
writer and returns only once they are committed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from contracts import build_registry, read_contract_files
from ingest.auth import TokenRing
from ingest.errors import IngestError, Overloaded
from ingest.pipeline import IngestPipeline, RequestMeta, Signal, Transport
from ingest.reload import ContractReloader
from ingest.settings import IngestSettings
from ingest.telemetry import SelfMetrics
from ingest.workers import Preparers
from store.connection import Store
from store.errors import StoreError, TransientStoreError, WriterOverloaded
from store.writer import LedgerEntry, StoreWriter, WriteBatch

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


class IngestService:
    """Owns the store and its writer for the life of the server."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        # a broken contract must stop start-up, before the database is touched
        # read once: the decode workers build their registries from these same documents
        contract_files = read_contract_files(settings.contracts_dir)
        self.registry = build_registry(contract_files)
        self.store = Store.open(
            settings.db, memory_limit=settings.memory_limit, threads=settings.duckdb_threads
        )
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

    async def export(
        self,
        signal: Signal,
        body: bytes,
        *,
        content_type: str,
        content_encoding: str | None,
        transport: Transport,
        authorization: str | None = None,
    ) -> ExportResult:
        """Store one export request; returns after its rows are committed.

        Raises:
            IngestError: the request cannot be used; its ``status``/``grpc_code`` say how to answer.
            StoreError: the commit failed (TransientStoreError: worth retrying).
        """
        grant = None
        if self.tokens is not None:
            try:
                grant = self.tokens.writer(authorization)
            except IngestError as exc:
                self.telemetry.record_request(signal, transport, exc.status)
                raise
        meta = RequestMeta(
            grant=grant,
            request_id=self.writer.next_request_id(),
            signal=signal,
            transport=transport,
            encoding=_encoding_of(content_type),
            compression=(content_encoding or None),
            body_bytes=len(body),
            received_at=datetime.now(UTC),
        )
        # the contracts current now check this request, even if a reload swaps them meanwhile
        preparers = self.preparers
        with self.writer.incoming():  # the writer may wait for it to fill its group
            try:
                prepared = await preparers.prepare(
                    meta, body, content_type=content_type, content_encoding=content_encoding
                )
            except IngestError as exc:
                self.record_failure(meta, exc.status, str(exc))
                self.telemetry.record_request(signal, transport, exc.status)
                raise
            try:
                future = self.writer.submit(prepared.batch)
            except WriterOverloaded as exc:
                self.telemetry.record_request(signal, transport, Overloaded.status)
                raise Overloaded(retry_after=exc.retry_after) from exc
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
        except WriterOverloaded:
            log.warning("ledger row for failed request %d dropped: writer full", meta.request_id)
