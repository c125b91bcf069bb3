"""Inputs for fuzzing the OTLP decoders, shared by the CI test and benchmarks/fuzz_decoders.py.

Four kinds of body, for each signal (logs, traces, metrics):

- random bytes and random JSON;
- a valid body with bytes flipped, inserted or cut (protobuf, gzip-compressed protobuf, JSON);
- OTLP/JSON with random values grafted in;
- a valid message with some of its scalar fields set to extreme values of their type (uint64
  max, negative int64, NaN, infinity, empty or odd-length ids, long digit strings), sent as
  protobuf or OTLP/JSON. These decode fine and test the mapping and the store, not the parser.

:func:`check_case` runs one body through the whole preparation path (decode, canonical mapping,
limits, contracts, row building) and commits what it produced through a real writer: the only
exception allowed on the way is IngestError, every rejected record must be in the quarantine,
and the commit must succeed.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from contracts import load_registry
from ingest.errors import IngestError
from ingest.limits import Limits
from ingest.pipeline import IngestPipeline
from store.writer import StoreWriter
from tests.factories import (
    decision_attributes,
    otlp_json_logs,
    prepare_http,
    privacy_decision_attributes,
)

PIPELINE = IngestPipeline(load_registry(), Limits(max_body_bytes=1 << 20))
_RESOURCE = [
    {"key": "service.name", "value": {"stringValue": "checkout"}},
    {"key": "deployment.environment.name", "value": {"stringValue": "prod"}},
]
_T0 = "1764000000000000000"
_T1 = "1764000060000000000"


def _attributes(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": {"stringValue": str(value)}} for key, value in mapping.items()]


VALID_JSON: dict[str, dict[str, Any]] = {
    "logs": otlp_json_logs([decision_attributes(), privacy_decision_attributes()]),
    "traces": {
        "resourceSpans": [{"resource": {"attributes": _RESOURCE}, "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "POST /checkout", "kind": 2, "startTimeUnixNano": _T0,
            "endTimeUnixNano": "1764000000250000000", "status": {"code": 2},
            "attributes": [{"key": "http.route", "value": {"stringValue": "/checkout"}},
                           {"key": "http.response.status_code", "value": {"intValue": "503"}}],
            "events": [{"name": "feature_flag.evaluation", "timeUnixNano": _T0,
                        "attributes": _attributes(decision_attributes())}],
        }]}]}]
    },
    "metrics": {
        "resourceMetrics": [{"resource": {"attributes": _RESOURCE}, "scopeMetrics": [{"metrics": [
            {"name": "http.server.request.duration", "unit": "s", "histogram": {
                "aggregationTemporality": 2, "dataPoints": [{
                    "startTimeUnixNano": _T0, "timeUnixNano": _T1, "count": "6", "sum": 1.5,
                    "explicitBounds": [0.1, 0.25, 1.0], "bucketCounts": ["1", "2", "2", "1"],
                    "attributes": [
                        {"key": "http.route", "value": {"stringValue": "/checkout"}},
                        {"key": "http.response.status_code", "value": {"intValue": "200"}}],
                }]}},
            {"name": "http.server.requests", "sum": {
                "aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
                    {"startTimeUnixNano": _T0, "timeUnixNano": _T1, "asInt": "6"}]}},
            {"name": "queue.depth", "gauge": {"dataPoints": [{"timeUnixNano": _T1,
                                                              "asDouble": 3.0}]}},
        ]}]}]
    },
}  # fmt: skip
_REQUESTS = {
    "logs": logs_service_pb2.ExportLogsServiceRequest,
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
}
SIGNALS = tuple(_REQUESTS)
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def valid_message(signal: str) -> Message:
    """A fresh, valid request message of the signal."""
    message: Message = _REQUESTS[signal]()
    document = json.loads(json.dumps(VALID_JSON[signal]))
    _ids(document, lambda text: base64.b64encode(bytes.fromhex(text)).decode())
    json_format.ParseDict(document, message)
    return message


def _ids(node: Any, convert: Any) -> None:
    """Rewrite trace/span ids in place (OTLP/JSON uses hex where protobuf's JSON uses base64)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = convert(value)
            else:
                _ids(value, convert)
    elif isinstance(node, list):
        for item in node:
            _ids(item, convert)


def otlp_json(message: Message) -> bytes:
    """A message as OTLP/JSON (hex ids)."""
    document = json_format.MessageToDict(message)
    _ids(document, lambda text: base64.b64decode(text).hex())
    return json.dumps(document).encode()


VALID_PROTOBUF = {signal: valid_message(signal).SerializeToString() for signal in SIGNALS}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=30,
)  # fmt: skip

_UINT64 = st.sampled_from((0, 1, 2**31, 2**32 - 1, 2**63 - 1, 2**63, 2**64 - 1)) | st.integers(
    0, 2**64 - 1
)
_INT64 = st.sampled_from((-(2**63), -1, 0, 2**31, 2**63 - 1)) | st.integers(-(2**63), 2**63 - 1)
_INT32 = st.sampled_from((-(2**31), -1, 0, 7, 2**31 - 1)) | st.integers(-(2**31), 2**31 - 1)
_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_ENUM: _INT32,  # proto3 enums are open: any int32 decodes
    FieldDescriptor.TYPE_DOUBLE: st.floats(),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_STRING: st.sampled_from(("", "9" * 30, "200", "-1", "feature_flag"))
    | st.text(max_size=12),
    FieldDescriptor.TYPE_BYTES: st.sampled_from((b"", b"\0" * 16, b"\1" * 3))
    | st.binary(max_size=20),
}


def _scalar_slots(message: Message) -> list[tuple[Message, Any]]:
    """Every scalar field (set or not, repeated or not) of a message and its sub-messages."""
    slots: list[tuple[Message, Any]] = []  # Any: upb's descriptor type is not the stub's
    for field in message.DESCRIPTOR.fields:
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            slots.append((message, field))
        elif field.is_repeated:
            for item in getattr(message, field.name):
                if isinstance(item, Message):  # map fields aside, OTLP has none
                    slots.extend(_scalar_slots(item))
        elif message.HasField(field.name):
            slots.extend(_scalar_slots(getattr(message, field.name)))
    return slots


@st.composite
def extreme_message(draw: st.DrawFn, signal: str) -> Message:
    """A valid message with one to four scalar fields set to extreme values of their type."""
    message = valid_message(signal)
    slots = _scalar_slots(message)
    for _ in range(draw(st.integers(1, 4))):
        owner, field = draw(st.sampled_from(slots))
        values = _SCALARS[field.type]
        if field.is_repeated:
            repeated = getattr(owner, field.name)
            del repeated[:]
            repeated.extend(draw(st.lists(values, max_size=6)))
        else:
            setattr(owner, field.name, draw(values))
    return message


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid body with a few bytes flipped, inserted or cut."""
    body = bytearray(valid)
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(("flip", "insert", "cut")))
        at = draw(st.integers(0, max(0, len(body) - 1)))
        if action == "flip" and body:
            body[at] = draw(st.integers(0, 255))
        elif action == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif body:
            del body[at : at + draw(st.integers(1, 16))]
    return bytes(body)


def _records(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The innermost objects of an OTLP/JSON document: log records, spans or metrics."""
    (resources,) = document.values()
    scopes = next(value for key, value in resources[0].items() if key != "resource")
    records: list[dict[str, Any]] = next(
        value for key, value in scopes[0].items() if key != "scope"
    )
    return records


@st.composite
def json_documents(draw: st.DrawFn, signal: str) -> bytes:
    """OTLP/JSON with random values grafted into it, or random JSON altogether."""
    if draw(st.booleans()):
        return json.dumps(draw(json_values)).encode()
    document: Any = json.loads(json.dumps(VALID_JSON[signal]))
    record = draw(st.sampled_from(_records(document)))
    key = draw(st.sampled_from(sorted(record)))
    record[key] = draw(json_values)
    return json.dumps(document).encode()


Case = tuple[str, str, bytes, str | None]  # signal, Content-Type, body, Content-Encoding
_PROTOBUF, _JSON = "application/x-protobuf", "application/json"


def _cases(signal: str) -> st.SearchStrategy[Case]:
    valid_proto = VALID_PROTOBUF[signal]
    valid_json = json.dumps(VALID_JSON[signal]).encode()
    return st.one_of(
        st.tuples(st.just(signal), st.just(_PROTOBUF), st.binary(max_size=512), st.none()),
        st.tuples(st.just(signal), st.just(_PROTOBUF), mutated(valid_proto), st.none()),
        st.tuples(st.just(signal), st.just(_JSON), json_documents(signal), st.none()),
        st.tuples(st.just(signal), st.just(_JSON), mutated(valid_json), st.none()),
        st.tuples(st.just(signal), st.just(_PROTOBUF), mutated(gzip.compress(valid_proto)),
                  st.just("gzip")),
        extreme_message(signal).map(lambda m: (signal, _PROTOBUF, m.SerializeToString(), None)),
        extreme_message(signal).map(lambda m: (signal, _JSON, otlp_json(m), None)),
    )  # fmt: skip


cases = st.one_of(*(_cases(signal) for signal in SIGNALS))


def check_case(case: Case, writer: StoreWriter) -> None:
    """Prepare the body and commit the result; IngestError is the one allowed refusal."""
    signal, content_type, body, encoding = case
    try:
        prepared = prepare_http(
            PIPELINE, writer.next_request_id(), signal, body, content_type, encoding
        )
    except IngestError:
        return
    quarantine = prepared.batch.tables.get("quarantine")
    assert prepared.rejected == (quarantine.num_rows if quarantine is not None else 0)
    writer.submit(prepared.batch).result(timeout=60)  # a StoreError here fails the property
