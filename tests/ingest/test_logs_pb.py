"""The compiled logs decoder gives exactly the records of the Python path, or declines.

`ingest/decode/_logs_pb.c` may return None ("let the Python path decide") whenever it likes, but
when it returns records they must be the Python path's records, key order and types included,
and the Python path must have found nothing wrong with them. Generated requests check both
halves: well-formed ones within the limits must take the compiled path; mutated bytes and tight
limits must never make the two paths disagree.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

import ingest.decode
from ingest.decode import (
    _logs_pb,  # a build without the extension fails here, loudly
    canonical_logs,
    decode_logs,
)
from ingest.decode.otlp_proto import decode_protobuf
from ingest.errors import IngestError, MalformedRequest
from ingest.limits import Limits
from tests.factories import proto_value

PROTOBUF = "application/x-protobuf"
KEYS = (
    "service.name", "deployment.environment", "deployment.environment.name", "event.name",
    "feature_flag.key", "decision.id", "policy.module", "body", "signal",
)  # fmt: skip


def compiled(raw: bytes, limits: Limits) -> list[dict[str, Any]] | None:
    return _logs_pb.canonical_logs(
        raw,
        limits.max_records_per_request,
        limits.max_attributes_per_record,
        limits.max_attribute_value_bytes,
        limits.max_value_depth,
        limits.max_attribute_key_bytes,
    )


def python_path(raw: bytes, limits: Limits) -> list[Any] | IngestError:
    try:
        return canonical_logs(decode_protobuf("logs", raw), limits)
    except IngestError as exc:
        return exc


def as_seen(records: list[dict[str, Any]]) -> str:
    """Records with their key order and value types (repr keeps True apart from 1, NaN equal)."""
    return repr([list(record.items()) for record in records])


values = st.recursive(
    st.none() | st.text(max_size=12) | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats() | st.binary(max_size=10),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)  # fmt: skip
attributes = st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=6), values), max_size=8)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    request = ExportLogsServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        resource_logs = request.resource_logs.add()
        for key, value in draw(attributes):
            resource_logs.resource.attributes.append(KeyValue(key=key, value=proto_value(value)))
        resource_logs.schema_url = draw(st.text(max_size=5))
        for _ in range(draw(st.integers(1, 2))):
            scope_logs = resource_logs.scope_logs.add()
            scope_logs.scope.name = draw(st.text(max_size=5))
            for key, value in draw(st.lists(st.tuples(st.text(max_size=3), values), max_size=2)):
                scope_logs.scope.attributes.append(KeyValue(key=key, value=proto_value(value)))
            for _ in range(draw(st.integers(1, 3))):
                log = LogRecord(
                    time_unix_nano=draw(st.sampled_from([0, 1, 2**64 - 1, 1_700_000_000 * 10**9])),
                    observed_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
                    severity_number=draw(st.integers(-3, 24)),  # type: ignore[arg-type]
                    severity_text=draw(st.text(max_size=5)),
                    trace_id=draw(st.binary(max_size=17)),
                    span_id=draw(st.binary(max_size=9)),
                    event_name=draw(st.sampled_from(["", "feature_flag.evaluation", "é"])),
                    flags=draw(st.integers(0, 2**32 - 1)),
                    dropped_attributes_count=draw(st.integers(0, 3)),
                )
                if draw(st.booleans()):
                    log.body.CopyFrom(proto_value(draw(values)))
                for key, value in draw(attributes):
                    log.attributes.append(KeyValue(key=key, value=proto_value(value)))
                scope_logs.log_records.append(log)
    return request.SerializeToString()


# Examples per property in the suite (hypothesis draws new ones each run and replays the failures
# it saved); `benchmarks/fuzz_decoders.py --logs-pb-examples N` runs the same three properties
# with N examples each (docs/testing.md).
EXAMPLES = 40
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def well_formed_take_the_compiled_path(raw: bytes) -> None:
    limits = Limits()
    expected = python_path(raw, limits)
    assert not isinstance(expected, IngestError)
    assert all(not item.limit_violations for item in expected)
    fast = compiled(raw, limits)
    assert fast is not None
    assert as_seen(fast) == as_seen([item.record for item in expected])


@PROPERTY
@given(raw=requests())
def test_well_formed_requests_take_the_compiled_path_with_the_same_records(raw):
    well_formed_take_the_compiled_path(raw)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(requests()))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, len(raw)))
        if op == "flip" and at < len(raw):
            raw[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[at : at + draw(st.integers(1, 4))]
        else:
            raw[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(raw)


tight_limits = st.builds(
    Limits,
    max_records_per_request=st.integers(0, 10),
    max_attributes_per_record=st.integers(0, 20),
    max_attribute_value_bytes=st.integers(0, 16),
    max_value_depth=st.integers(1, 3),
)


def declines_exactly_over_a_limit(raw: bytes, limits: Limits) -> None:
    fast = compiled(raw, limits)
    expected = python_path(raw, limits)
    over = isinstance(expected, IngestError) or any(i.limit_violations for i in expected)
    assert (fast is None) == over
    if fast is not None:
        assert as_seen(fast) == as_seen([item.record for item in expected])  # type: ignore[union-attr]


@PROPERTY
@given(raw=requests(), limits=tight_limits)
def test_the_compiled_path_declines_exactly_the_requests_over_a_limit(raw, limits):
    declines_exactly_over_a_limit(raw, limits)


any_limits = tight_limits | st.just(Limits())


def never_disagrees_on_damaged_bytes(raw: bytes, limits: Limits) -> None:
    fast = compiled(raw, limits)
    if fast is None:
        return  # declined: the Python path decides alone
    expected = python_path(raw, limits)
    assert not isinstance(expected, IngestError), f"Python path refused it: {expected}"
    assert all(not item.limit_violations for item in expected)
    assert as_seen(fast) == as_seen([item.record for item in expected])


@PROPERTY
@given(raw=mutated(), limits=any_limits)
def test_the_compiled_path_never_disagrees_on_damaged_bytes(raw, limits):
    never_disagrees_on_damaged_bytes(raw, limits)


def _one_record(resource: dict[str, Any] | None = None, **attributes: Any) -> bytes:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in (resource or {}).items():
        resource_logs.resource.attributes.append(KeyValue(key=key, value=proto_value(value)))
    log = resource_logs.scope_logs.add().log_records.add()
    for key, value in attributes.items():
        log.attributes.append(KeyValue(key=key, value=proto_value(value)))
    return request.SerializeToString()


@pytest.mark.parametrize(
    "raw",
    [
        _one_record({"service.name": None}, a=1),  # a None service is dropped from the record
        _one_record({"service.name": 7}, a=1),  # a non-string one is kept as sent
        _one_record({"deployment.environment": "prod"}),  # the pre-1.27 name
        _one_record(**{"event.name": "x"}),  # event name from the attribute
        _one_record(**{"event.name": ""}),  # ... unless it is empty
        _one_record(blob=b"\x00\x01\xfe", nothing=None, big=-(2**63), half=0.5),
    ],
)
def test_edge_cases_agree(raw):
    fast = compiled(raw, Limits())
    assert fast is not None
    assert as_seen(fast) == as_seen([i.record for i in python_path(raw, Limits())])  # type: ignore[union-attr]


def test_resource_after_its_scopes_on_the_wire_is_still_applied():
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="checkout"))
    )
    resource_logs.scope_logs.add().log_records.append(LogRecord(time_unix_nano=5))
    resource_bytes = resource_logs.resource.SerializeToString()
    scopes_bytes = resource_logs.scope_logs[0].SerializeToString()
    # ResourceLogs with field 2 (scope_logs) before field 1 (resource)
    inner = (
        b"\x12" + bytes([len(scopes_bytes)]) + scopes_bytes
        + b"\x0a" + bytes([len(resource_bytes)]) + resource_bytes
    )  # fmt: skip
    raw = b"\x0a" + bytes([len(inner)]) + inner
    fast = compiled(raw, Limits())
    assert fast is not None
    assert fast[0]["service.name"] == "checkout"
    assert as_seen(fast) == as_seen([i.record for i in python_path(raw, Limits())])  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "limits", "problem"),
    [
        (_one_record(a="x" * 20), Limits(max_attribute_value_bytes=10), "over the limit of 10"),
        (_one_record(a=[[["deep"]]]), Limits(max_value_depth=2), "deeper than 2"),
        (_one_record(a=b"bytes"), Limits(max_value_depth=1), "deeper than 1"),
        (_one_record(a=1, b=2, c=3), Limits(max_attributes_per_record=2), "3 attributes"),
    ],
)
def test_records_over_a_limit_are_left_to_the_python_path(raw, limits, problem):
    assert compiled(raw, limits) is None
    (item,) = decode_logs(raw, content_type=PROTOBUF, content_encoding=None, limits=limits)
    assert problem in " ".join(item.limit_violations)


def test_invalid_utf8_is_a_malformed_request_on_either_path():
    raw = _one_record(key="\x00marker").replace(b"\x00marker", b"\xffmarker")
    assert compiled(raw, Limits()) is None
    with pytest.raises(MalformedRequest):
        decode_logs(raw, content_type=PROTOBUF, content_encoding=None, limits=Limits())


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, by hand (the message classes refuse deep nesting)."""
    length, size = b"", len(payload)
    while True:
        length += bytes([size & 0x7F | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            break
    return bytes([number << 3 | 2]) + length + payload


def test_deep_nesting_is_left_to_the_python_path_whatever_the_depth_limit():
    value = _field(1, b"leaf")  # AnyValue.string_value
    for _ in range(300):
        value = _field(5, _field(1, value))  # AnyValue.array_value.values[0]
    key_value = _field(1, b"a") + _field(2, value)
    raw = _field(1, _field(2, _field(2, _field(6, key_value))))
    limits = Limits(max_value_depth=10_000)
    assert compiled(raw, limits) is None  # declined at its own cap, not recursing 300 deep
    with pytest.raises(MalformedRequest):  # upb refuses messages nested this deep
        decode_logs(raw, content_type=PROTOBUF, content_encoding=None, limits=limits)


def test_without_the_extension_every_request_takes_the_python_path(monkeypatch):
    raw = _one_record({"service.name": "checkout"}, a=1, b="two")
    fast = decode_logs(raw, content_type=PROTOBUF, content_encoding=None, limits=Limits())
    monkeypatch.setattr(ingest.decode, "compiled_logs", None)  # as where no compiler was found
    slow = decode_logs(raw, content_type=PROTOBUF, content_encoding=None, limits=Limits())
    assert as_seen([i.record for i in slow]) == as_seen([i.record for i in fast])
