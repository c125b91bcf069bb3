"""The request bodies the benchmarks send: OTLP protobuf made by the OpenTelemetry SDK itself.

The SDK encodes one template; each request patches it instead of encoding again, so the load
generator costs little CPU: the decision ids' placeholder becomes the request's number, and a
sentinel timestamp (time_unix_nano and observed_time_unix_nano, fixed64 fields, so its 8
little-endian bytes appear verbatim) becomes the current time. Every request thus carries
current event times, as a live exporter's would, rather than the template's one instant.
"""

from __future__ import annotations

import time

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

RECORDS_PER_REQUEST = 512
_PLACEHOLDER = b"Q" * 16
# an instant in 2042 whose bytes (fe ed fa ce de ad be 1f) occur nowhere else in the template
_SENTINEL_NS = int.from_bytes(b"\xfe\xed\xfa\xce\xde\xad\xbe\x1f", "little")
_SENTINEL = _SENTINEL_NS.to_bytes(8, "little")


def build_template() -> bytes:
    """One encoded ExportLogsServiceRequest whose decision ids all start with the placeholder
    and whose records are all stamped with the sentinel time."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(
        resource=Resource.create(
            {"service.name": "checkout", "deployment.environment.name": "prod"}
        )
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("bench")
    modules = ("release", "privacy", "security", "cost")
    for i in range(RECORDS_PER_REQUEST):
        module = modules[i % 4]
        attributes: dict[str, object] = {
            "feature_flag.key": f"flag-{i % 30}",
            "feature_flag.version": "v7",
            "feature_flag.result.variant": "on" if i % 3 else "off",
            "feature_flag.result.reason": "targeting_match",
            "feature_flag.provider.name": "flagd",
            "feature_flag.context.id": f"user-{i * 7919 % 50000}",
            "decision.id": _PLACEHOLDER.decode() + f"{i:04d}",
            "policy.module": module,
            "policy.rule.id": f"rule-{i % 5}",
            "cohort.id": f"cohort-{i % 4}",
        }
        if module == "privacy":
            attributes |= {"privacy.purpose": "personalisation", "privacy.consent.state": "granted"}
        elif module == "security":
            attributes["user.roles"] = ("member",)
        elif module == "cost":
            attributes["cost.center"] = "cc-42"
        logger.emit(
            event_name="feature_flag.evaluation",
            attributes=attributes,
            timestamp=_SENTINEL_NS,
            observed_timestamp=_SENTINEL_NS,
        )
    provider.shutdown()
    body = bytes(encode_logs(exporter.get_finished_logs()).SerializeToString())
    if body.count(_SENTINEL) != 2 * RECORDS_PER_REQUEST:
        raise RuntimeError("the sentinel time is not where request_body would patch it")
    return body


def request_body(template: bytes, n: int) -> bytes:
    """Request number ``n``: unique decision ids, every record stamped with the current time."""
    now = time.time_ns().to_bytes(8, "little")
    return template.replace(_PLACEHOLDER, f"{n:016x}".encode()).replace(_SENTINEL, now)
