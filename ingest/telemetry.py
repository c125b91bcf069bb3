"""flaglens' own health, reported the way the services it watches report theirs.

Counters of records received / accepted / rejected / dropped per signal and contract, requests
per signal, transport and status, and gauges of the writer's queue and commit latency. They
are kept here (for ``GET /metrics`` in the Prometheus text format and ``/healthz``) and recorded
through the OpenTelemetry SDK, which exports them over OTLP/HTTP when an endpoint is configured
(``--self-otlp-endpoint``, else ``OTEL_EXPORTER_OTLP_ENDPOINT``; over gRPC when
``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``), e.g. to a collector or another flaglens.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from store.writer import WriterStats

_ACCEPTED_TABLES = ("decisions", "policy_changes", "engagement")
# services counted apart in the uncontracted counter; beyond, "(other)": the names come from
# senders, and a label per name must not grow without bound
_MAX_UNCONTRACTED_SERVICES = 1000


def _by_contract(table: pa.Table, column: str = "contract_id") -> Mapping[str, int]:
    if column not in table.column_names:
        return {"-": table.num_rows}
    counts = pc.value_counts(table.column(column).fill_null("-"))
    return {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _exporter(endpoint: str, protocol: str) -> MetricExporter:
    """The SDK's OTLP metric exporter for a base URL: gRPC when asked, else HTTP."""
    if protocol.strip().lower() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=endpoint.rstrip("/") + "/v1/metrics")


class SelfMetrics:
    """The receivers' counters and the writer's gauges (see the module docstring)."""

    def __init__(
        self,
        writer_stats: Callable[[], WriterStats],
        *,
        otlp_endpoint: str | None = None,
        otlp_protocol: str = "http/protobuf",
    ) -> None:
        self._writer_stats = writer_stats
        self._lock = threading.Lock()
        self._records: Counter[tuple[str, str, str]] = Counter()  # signal, outcome, contract
        self._requests: Counter[tuple[str, str, int]] = Counter()  # signal, transport, status
        self._uncontracted: Counter[tuple[str, str]] = Counter()  # signal, service
        readers: list[MetricReader] = []
        if otlp_endpoint:
            exporter = _exporter(otlp_endpoint, otlp_protocol)
            readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=15_000))
        self._provider = MeterProvider(
            resource=Resource.create({"service.name": "flaglens"}), metric_readers=readers
        )
        meter = self._provider.get_meter("flaglens.ingest")
        self._record_counter = meter.create_counter(
            "flaglens.ingest.records", unit="{record}", description="records by outcome"
        )
        self._request_counter = meter.create_counter(
            "flaglens.ingest.requests", unit="{request}", description="export requests"
        )
        meter.create_observable_gauge(
            "flaglens.writer.queue.rows", callbacks=[self._queue], unit="{row}"
        )
        meter.create_observable_gauge(
            "flaglens.writer.commit.duration", callbacks=[self._commit], unit="ms"
        )

    def _queue(self, _options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._writer_stats().pending_rows)

    def _commit(self, _options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._writer_stats().last_commit_ms)

    def _add(self, signal: str, outcome: str, contract: str, count: int) -> None:
        if count <= 0:
            return
        self._records[(signal, outcome, contract)] += count
        self._record_counter.add(count, {"signal": signal, "outcome": outcome,
                                         "contract": contract})  # fmt: skip

    def record_request(
        self,
        signal: str,
        transport: str,
        status: int,
        *,
        received: int = 0,
        tables: Mapping[str, pa.Table] | None = None,
        uncontracted: Iterable[tuple[str | None, int]] = (),
    ) -> None:
        """Count one answered export request and, when it was stored, its records."""
        with self._lock:
            self._requests[(signal, transport, status)] += 1
            self._request_counter.add(
                1, {"signal": signal, "transport": transport, "status": status}
            )
            if status != 200 or tables is None:
                return
            self._add(signal, "received", "-", received)
            for name in _ACCEPTED_TABLES:
                if name in tables:
                    for contract, n in _by_contract(tables[name]).items():
                        self._add(signal, "accepted", contract, n)
            for name in ("spans", "metric_points"):
                if name in tables:
                    self._add(signal, "accepted", "-", tables[name].num_rows)
            if "quarantine" in tables:
                for contract, n in _by_contract(tables["quarantine"]).items():
                    self._add(signal, "rejected", contract, n)
            if "metric_drops" in tables:
                dropped = pc.sum(tables["metric_drops"].column("points")).as_py() or 0
                self._add(signal, "dropped", "-", int(dropped))
            for service, n in uncontracted:
                self._add(signal, "uncontracted", "-", n)
                name = "-" if service is None else service
                if (signal, name) not in self._uncontracted and (
                    len(self._uncontracted) >= _MAX_UNCONTRACTED_SERVICES
                ):
                    name = "(other)"
                self._uncontracted[(signal, name)] += n

    def snapshot(self) -> dict[str, Any]:
        """Counters as JSON-ready lists (for /healthz)."""
        with self._lock:
            return {
                "records": [
                    {"signal": s, "outcome": o, "contract": c, "count": n}
                    for (s, o, c), n in sorted(self._records.items())
                ],
                "requests": [
                    {"signal": s, "transport": t, "status": code, "count": n}
                    for (s, t, code), n in sorted(self._requests.items())
                ],
                "uncontracted": [
                    {"signal": s, "service": service, "count": n}
                    for (s, service), n in sorted(self._uncontracted.items())
                ],
            }

    def prometheus_text(self) -> str:
        """The counters and gauges in the Prometheus text exposition format."""
        stats = self._writer_stats()
        lines = [
            "# HELP flaglens_ingest_records_total Records by signal, outcome and contract.",
            "# TYPE flaglens_ingest_records_total counter",
        ]
        with self._lock:
            for (signal, outcome, contract), n in sorted(self._records.items()):
                lines.append(
                    f'flaglens_ingest_records_total{{signal="{signal}",outcome="{outcome}",'
                    f'contract="{_escape(contract)}"}} {n}'
                )
            lines += [
                "# HELP flaglens_ingest_requests_total Export requests by signal, transport, "
                "status.",
                "# TYPE flaglens_ingest_requests_total counter",
            ]
            for (signal, transport, status), n in sorted(self._requests.items()):
                lines.append(
                    f'flaglens_ingest_requests_total{{signal="{signal}",transport="{transport}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP flaglens_ingest_uncontracted_records_total Records no contract claims, "
                "accepted, by signal and service.",
                "# TYPE flaglens_ingest_uncontracted_records_total counter",
            ]
            for (signal, service), n in sorted(self._uncontracted.items()):
                lines.append(
                    f'flaglens_ingest_uncontracted_records_total{{signal="{signal}",'
                    f'service="{_escape(service)}"}} {n}'
                )
        gauges = (
            ("flaglens_writer_queue_rows", "Rows waiting for the writer.", stats.pending_rows),
            ("flaglens_writer_commit_ms", "Duration of the last commit.", stats.last_commit_ms),
            ("flaglens_writer_commit_mean_ms", "Mean commit duration.", stats.mean_commit_ms),
            ("flaglens_writer_refused_total", "Requests refused: queue full.",
             stats.refused_batches),
            ("flaglens_writer_duplicates_total", "Duplicate records dropped.",
             stats.duplicates_dropped),
            ("flaglens_writer_write_fns_total", "Write functions committed (alerts, records).",
             stats.write_fns),
            ("flaglens_writer_write_fns_failed_total", "Write functions rolled back.",
             stats.failed_write_fns),
        )  # fmt: skip
        for name, help_text, value in gauges:
            kind = "counter" if name.endswith("_total") else "gauge"
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n"

    def shutdown(self) -> None:
        self._provider.shutdown()
