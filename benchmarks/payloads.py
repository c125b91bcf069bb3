"""The request bodies the benchmarks send: OTLP protobuf made by the OpenTelemetry SDK itself."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

RECORDS_PER_REQUEST = 512
_PLACEHOLDER = b"Q" * 16


def build_template() -> bytes:
    """One encoded ExportLogsServiceRequest whose decision ids all start with the placeholder."""
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
        logger.emit(event_name="feature_flag.evaluation", attributes=attributes)
    provider.shutdown()
    return bytes(encode_logs(exporter.get_finished_logs()).SerializeToString())


def request_body(template: bytes, n: int) -> bytes:
    return template.replace(_PLACEHOLDER, f"{n:016x}".encode())
