"""The sample week on the wire: OpenTelemetry SDK records, OTLP requests, sent or written.

Each (service, environment) gets its own SDK ``LoggerProvider`` and ``TracerProvider`` with
that resource, exactly as an instrumented service would have; records are made through the SDK's
Logs and Tracing APIs with the simulated timestamps, then encoded by the encoders the stock OTLP
exporters use. Sending goes through plain HTTP so that the server's answers (partial success:
how many records it rejected, and why) can be counted; the stock exporters drop that answer.
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

from sample_data import world
from sample_data.generator import Change, Hour, Session

RECORDS_PER_REQUEST = 2_000
_SCOPE = "flaglens.sample_data"
# the bucket bounds semantic conventions recommend for http.server.request.duration (seconds)
DURATION_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class _SeededIds(IdGenerator):
    """Trace and span ids from the simulation's seed, so runs are reproducible."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1


@dataclass(slots=True)
class _Source:
    """The SDK pipeline of one (service, environment)."""

    logs: InMemoryLogRecordExporter
    spans: InMemorySpanExporter
    logger_provider: LoggerProvider
    tracer_provider: TracerProvider


@dataclass(frozen=True, slots=True)
class Export:
    """One encoded OTLP request."""

    signal: str  # 'logs' | 'traces' | 'metrics'
    body: bytes
    records: int  # log records, spans or data points
    request: Any = field(repr=False)  # the protobuf message, for writing as OTLP/JSON


class SdkEmitter:
    """Turns simulated hours into OTLP export requests through the OpenTelemetry SDK."""

    def __init__(self, seed: int) -> None:
        self._ids = _SeededIds(random.Random(f"ids-{seed}"))
        self._sources: dict[tuple[str, str], _Source] = {}
        # this hour's request durations (s) per (service, env) and (route, method, status)
        self._durations: dict[tuple[str, str], dict[tuple[str, str, int], list[float]]] = {}
        # running request counts (a cumulative counter, as most SDKs send by default)
        self._requests: dict[tuple[str, str], dict[tuple[str, str, int], int]] = {}
        self._started_ns: int | None = None
        self.metric_points = 0

    def _source(self, service: str, environment: str) -> _Source:
        source = self._sources.get((service, environment))
        if source is None:
            resource = Resource.create(
                {
                    "service.name": service,
                    "service.version": "2026.11.1",
                    "deployment.environment.name": environment,
                }
            )
            logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
            logger_provider = LoggerProvider(resource=resource)
            logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
            spans = InMemorySpanExporter()
            tracer_provider = TracerProvider(resource=resource, id_generator=self._ids)
            tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
            source = _Source(logs, spans, logger_provider, tracer_provider)
            self._sources[(service, environment)] = source
        return source

    def session(self, session: Session) -> None:
        source = self._source(session.service, session.environment)
        key = (session.route, session.method, session.status_code)
        per_source = self._durations.setdefault((session.service, session.environment), {})
        per_source.setdefault(key, []).append(session.duration_ms / 1000)
        counts = self._requests.setdefault((session.service, session.environment), {})
        counts[key] = counts.get(key, 0) + 1
        tracer = source.tracer_provider.get_tracer(_SCOPE)
        logger = source.logger_provider.get_logger(_SCOPE)
        end_ns = session.start_ns + int(session.duration_ms * 1_000_000)
        span = tracer.start_span(
            f"{session.method} {session.route}",
            kind=SpanKind.SERVER,
            start_time=session.start_ns,
            attributes={
                "http.request.method": session.method,
                "http.route": session.route,
                "http.response.status_code": session.status_code,
                "url.scheme": "https",
            },
        )
        context = trace.set_span_in_context(span)
        as_span_events = world.SERVICES[session.service].decisions_as_span_events
        for decision in session.decisions:
            attributes = dict(decision)
            when = attributes.pop("time_unix_nano")
            if as_span_events:
                span.add_event("feature_flag.evaluation", attributes, timestamp=when)
            else:
                logger.emit(
                    timestamp=when,
                    observed_timestamp=when,
                    context=context,
                    event_name="feature_flag.evaluation",
                    attributes=attributes,
                )
        if session.error:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {session.status_code}"))
            span.set_attribute("error.type", str(session.status_code))
        span.end(end_time=end_ns)
        if session.engagement is not None:
            attributes = dict(session.engagement)
            when = attributes.pop("time_unix_nano")
            logger.emit(
                timestamp=when,
                observed_timestamp=when,
                context=context,
                event_name="user.engagement",
                attributes=attributes,
            )

    def change(self, change: Change) -> None:
        source = self._source(world.CONTROL_PLANE, change.environment)
        attributes = {
            k: v for k, v in change.attributes.items() if k != "deployment.environment.name"
        }
        source.logger_provider.get_logger(_SCOPE).emit(
            timestamp=change.time_ns,
            observed_timestamp=change.time_ns,
            event_name="policy.change",
            attributes=attributes,
        )

    def drain(self) -> Iterator[Export]:
        """Everything emitted since the last drain, as requests of at most 2,000 records."""
        logs = [r for s in self._sources.values() for r in s.logs.get_finished_logs()]
        spans = [r for s in self._sources.values() for r in s.spans.get_finished_spans()]
        for source in self._sources.values():
            source.logs.clear()
            source.spans.clear()
        for i in range(0, len(logs), RECORDS_PER_REQUEST):
            chunk = logs[i : i + RECORDS_PER_REQUEST]
            request = encode_logs(chunk)
            yield Export("logs", request.SerializeToString(), len(chunk), request)
        for i in range(0, len(spans), RECORDS_PER_REQUEST):
            part = spans[i : i + RECORDS_PER_REQUEST]
            traces = encode_spans(part)
            yield Export("traces", traces.SerializeToString(), len(part), traces)

    def hour_metrics(self, start_ns: int, end_ns: int) -> Export | None:
        """The hour's metrics, as a service's SDK would export them at the end of the hour:
        a delta histogram of http.server.request.duration and a cumulative request counter."""
        if self._started_ns is None:
            self._started_ns = start_ns
        resources = []
        points = 0
        for (service, env), per_key in sorted(self._durations.items()):
            histogram_points, counter_points = [], []
            for (route, method, status), durations in sorted(per_key.items()):
                attributes: dict[str, str | int] = {
                    "http.route": route,
                    "http.request.method": method,
                    "http.response.status_code": status,
                }
                buckets = [0] * (len(DURATION_BOUNDS) + 1)
                for seconds in durations:
                    buckets[bisect.bisect_left(DURATION_BOUNDS, seconds)] += 1
                histogram_points.append(
                    HistogramDataPoint(
                        attributes=attributes, start_time_unix_nano=start_ns,
                        time_unix_nano=end_ns, count=len(durations), sum=sum(durations),
                        bucket_counts=buckets, explicit_bounds=DURATION_BOUNDS,
                        min=min(durations), max=max(durations),
                    )
                )  # fmt: skip
                counter_points.append(
                    NumberDataPoint(
                        attributes=attributes, start_time_unix_nano=self._started_ns,
                        time_unix_nano=end_ns,
                        value=self._requests[(service, env)][(route, method, status)],
                    )
                )  # fmt: skip
            points += len(histogram_points) + len(counter_points)
            metrics = [
                Metric("http.server.request.duration", "server request duration", "s",
                       Histogram(histogram_points, AggregationTemporality.DELTA)),
                Metric("http.server.requests", "server requests", "{request}",
                       Sum(counter_points, AggregationTemporality.CUMULATIVE, is_monotonic=True)),
            ]  # fmt: skip
            resource = self._source(service, env).logger_provider.resource
            resources.append(
                ResourceMetrics(resource, [ScopeMetrics(InstrumentationScope(_SCOPE), metrics,
                                                        "")], "")
            )  # fmt: skip
        self._durations.clear()
        if not points:
            return None
        self.metric_points += points
        request = encode_metrics(MetricsData(resources))
        return Export("metrics", request.SerializeToString(), points, request)

    def exports(self, hours: Iterable[Hour], *, hours_per_flush: int = 3) -> Iterator[Export]:
        """Emit the hours and yield their requests, flushing every few simulated hours."""
        hour_ns = 3600 * 1_000_000_000
        for n, hour in enumerate(hours, 1):
            for change in hour.changes:
                self.change(change)
            for session in hour.sessions:
                self.session(session)
            start_ns = int(hour.start.timestamp()) * 1_000_000_000
            metrics = self.hour_metrics(start_ns, start_ns + hour_ns)
            if metrics is not None:
                yield metrics
            if n % hours_per_flush == 0:
                yield from self.drain()
        yield from self.drain()


# -- sending -------------------------------------------------------------------------------


@dataclass
class SendSummary:
    """Counts from the server's own answers."""

    sent: dict[str, int] = field(default_factory=lambda: {"logs": 0, "traces": 0, "metrics": 0})
    rejected: dict[str, int] = field(default_factory=lambda: {"logs": 0, "traces": 0, "metrics": 0})
    requests: int = 0
    retries: int = 0
    first_errors: list[str] = field(default_factory=list)

    def accepted(self, signal: str) -> int:
        return self.sent[signal] - self.rejected[signal]

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "sent": dict(self.sent),
            "accepted": {s: self.accepted(s) for s in self.sent},
            "rejected": dict(self.rejected),
            "first_errors": list(self.first_errors),
        }


class SendError(RuntimeError):
    """The endpoint refused a request for good (not a retryable condition)."""


class OtlpSender:
    """Posts encoded requests to an OTLP/HTTP endpoint, a few in flight, retrying 503/429."""

    def __init__(self, endpoint: str, *, in_flight: int = 3, token: str | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        headers = {"content-type": "application/x-protobuf"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._client = httpx.Client(timeout=120, headers=headers)
        self._pool = ThreadPoolExecutor(in_flight, thread_name_prefix="otlp-send")
        self._in_flight = in_flight
        self.summary = SendSummary()

    def _post(self, export: Export) -> int:
        """Send one request until it is answered for good; returns its rejected count."""
        delay = 0.5
        for _attempt in range(20):
            try:
                response = self._client.post(
                    f"{self.endpoint}/v1/{export.signal}", content=export.body
                )
            except httpx.TransportError as exc:
                error: str = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return self._rejected(export.signal, response.content)
                if response.status_code not in (429, 502, 503, 504):
                    raise SendError(
                        f"{export.signal}: HTTP {response.status_code}: {response.text[:300]}"
                    )
                error = f"HTTP {response.status_code}"
                delay = float(response.headers.get("retry-after", delay))
            self.summary.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 10)
        raise SendError(f"{export.signal}: gave up after 20 attempts, last: {error}")

    def _rejected(self, signal: str, content: bytes) -> int:
        if signal == "logs":
            logs = ExportLogsServiceResponse.FromString(content)
            rejected = int(logs.partial_success.rejected_log_records)
            message = logs.partial_success.error_message
        elif signal == "metrics":
            points = ExportMetricsServiceResponse.FromString(content)
            rejected = int(points.partial_success.rejected_data_points)
            message = points.partial_success.error_message
        else:
            spans = ExportTraceServiceResponse.FromString(content)
            rejected = int(spans.partial_success.rejected_spans)
            message = spans.partial_success.error_message
        if message and len(self.summary.first_errors) < 5:
            self.summary.first_errors.append(message)
        return rejected

    def send_all(self, exports: Iterable[Export], progress: Any = None) -> SendSummary:
        """Send every request; ``progress`` (a tqdm bar or None) advances by log records and
        spans (metric points are few: one per series and hour)."""
        pending: list[tuple[Export, Future[int]]] = []

        def settle(export: Export, future: Future[int]) -> None:
            self.summary.rejected[export.signal] += future.result()
            self.summary.sent[export.signal] += export.records
            self.summary.requests += 1
            if progress is not None and export.signal != "metrics":  # the bar counts records
                progress.update(export.records)

        for export in exports:
            pending.append((export, self._pool.submit(self._post, export)))
            while len(pending) >= self._in_flight * 2:
                settle(*pending.pop(0))
        for export, future in pending:
            settle(export, future)
        return self.summary

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()


# -- writing OTLP/JSON ---------------------------------------------------------------------

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping uses base64."""
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex() if key in _ID_FIELDS else _hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def otlp_json(export: Export) -> dict[str, Any]:
    """The request as OTLP/JSON (camelCase keys, enums as integers, ids in hex)."""
    return _hex_ids(MessageToDict(export.request, use_integers_for_enums=True))  # type: ignore[no-any-return]


def write_exports(exports: Iterable[Export], out: Path) -> dict[str, int]:
    """Write each request as ``<signal>-NNNN.json`` under ``out``; returns records per signal."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {"logs": 0, "traces": 0, "metrics": 0}
    numbers = {"logs": 0, "traces": 0, "metrics": 0}
    for export in exports:
        numbers[export.signal] += 1
        path = out / f"{export.signal}-{numbers[export.signal]:04d}.json"
        path.write_text(json.dumps(otlp_json(export), separators=(",", ":")) + "\n")
        counts[export.signal] += export.records
    return counts
