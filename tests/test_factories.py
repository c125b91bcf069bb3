"""The builders of tests/factories.py agree with each other."""

from __future__ import annotations

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.factories import (
    decision_attributes,
    otlp_json_logs,
    privacy_decision_attributes,
    proto_logs,
)


def test_the_protobuf_logs_are_the_json_logs_parsed():
    odd = {"x.list": [1, "a", True], "x.f": 1.5, "x.b": False}
    records = [decision_attributes(), privacy_decision_attributes(), decision_attributes(**odd)]
    for resource in (None, {"service.name": "payments", "deployment.environment.name": "dev"}):
        parsed = json_format.ParseDict(
            otlp_json_logs(records, resource), ExportLogsServiceRequest()
        )
        assert proto_logs(records, resource) == parsed
