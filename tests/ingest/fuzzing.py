"""Inputs for fuzzing the OTLP decoders, shared by the CI test and benchmarks/fuzz_decoders.py.

`prepare_any` runs one body through the whole preparation path (decode, canonical mapping,
limits, contracts, row building): the only exception it may raise is IngestError.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from contracts import load_registry
from ingest.errors import IngestError
from ingest.limits import Limits
from ingest.pipeline import IngestPipeline, RequestMeta
from tests.factories import decision_attributes, otlp_json_logs, privacy_decision_attributes

PIPELINE = IngestPipeline(load_registry(), Limits(max_body_bytes=1 << 20))
VALID_JSON = otlp_json_logs([decision_attributes(), privacy_decision_attributes()])
_request = logs_service_pb2.ExportLogsServiceRequest()
json_format.ParseDict(json.loads(json.dumps(VALID_JSON)), _request)
VALID_PROTOBUF = _request.SerializeToString()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=30,
)  # fmt: skip


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


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    """OTLP/JSON with random values grafted into it, or random JSON altogether."""
    if draw(st.booleans()):
        return json.dumps(draw(json_values)).encode()
    document: Any = json.loads(json.dumps(VALID_JSON))
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    key = draw(st.sampled_from(sorted(record)))
    record[key] = draw(json_values)
    return json.dumps(document).encode()


bodies = st.one_of(
    st.tuples(st.just("application/x-protobuf"), st.binary(max_size=512), st.just(None)),
    st.tuples(st.just("application/x-protobuf"), mutated(VALID_PROTOBUF), st.just(None)),
    st.tuples(st.just("application/json"), json_documents(), st.just(None)),
    st.tuples(st.just("application/json"), mutated(json.dumps(VALID_JSON).encode()), st.just(None)),
    st.tuples(st.just("application/x-protobuf"), mutated(gzip.compress(VALID_PROTOBUF)),
              st.just("gzip")),
)  # fmt: skip


def prepare_any(content_type: str, body: bytes, encoding: str | None, signal: str) -> None:
    """Run the body through the pipeline; IngestError is the one allowed failure."""
    meta = RequestMeta(
        request_id=1, signal=signal, transport="http",  # type: ignore[arg-type]
        encoding="json" if "json" in content_type else "protobuf", compression=encoding,
        body_bytes=len(body), received_at=datetime.now(UTC),
    )  # fmt: skip
    try:
        PIPELINE.prepare(meta, body, content_type=content_type, content_encoding=encoding)
    except IngestError:
        pass
