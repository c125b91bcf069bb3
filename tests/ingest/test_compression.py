"""gzip bodies: every member is read (``cat a.gz b.gz``), and anything else after them is
refused, never answered 200 for less than was sent."""

from __future__ import annotations

import gzip

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from ingest.decode.compression import MAX_GZIP_MEMBERS, decompress
from ingest.errors import MalformedRequest, PayloadTooLarge
from ingest.limits import Limits
from tests.factories import decision_attributes, proto_logs
from tests.ingest.live import live_receivers

PROTOBUF = "application/x-protobuf"


def _logs(count: int, rule: str) -> bytes:
    records = [decision_attributes(**{"policy.rule.id": rule}) for _ in range(count)]
    return proto_logs(records).SerializeToString()


def test_every_member_is_inflated():
    """Several members inflate to their contents joined, as gzip -d reads them."""
    body = gzip.compress(b"first ") + gzip.compress(b"second ") + gzip.compress(b"third")
    assert decompress(body, "gzip", Limits()) == b"first second third"


@pytest.mark.parametrize(
    ("tail", "problem"),
    [(b"garbage", "not another gzip member"), (b"\x00" * 8, "not another gzip member"),
     (gzip.compress(b"cut")[:-3], "member 2 is truncated")],
    ids=["garbage", "zero padding", "truncated second member"],
)  # fmt: skip
def test_bytes_after_the_last_member_are_refused(tail, problem):
    """Anything after a member that is not a whole member makes the body malformed."""
    with pytest.raises(MalformedRequest, match=problem):
        decompress(gzip.compress(b"payload") + tail, "gzip", Limits())


def test_members_are_read_up_to_the_bound_and_refused_past_it():
    """Each member costs an inflater: up to MAX_GZIP_MEMBERS are read, one more is a 400."""
    member = gzip.compress(b"x")
    assert decompress(member * MAX_GZIP_MEMBERS, "gzip", Limits()) == b"x" * MAX_GZIP_MEMBERS
    with pytest.raises(MalformedRequest, match=f"more than {MAX_GZIP_MEMBERS} gzip members"):
        decompress(member * (MAX_GZIP_MEMBERS + 1), "gzip", Limits())


def test_the_inflated_limit_counts_every_member():
    """A bomb split over members is stopped at the limit like one in a single member."""
    member = gzip.compress(bytes(600 << 10))
    with pytest.raises(PayloadTooLarge):
        decompress(member * 2, "gzip", Limits(max_decompressed_bytes=1 << 20))


def test_a_multi_member_body_is_stored_whole_and_garbage_refused(tmp_path):
    """Over HTTP, the records of both members are stored; a body with trailing garbage is 400
    and nothing of it is stored."""
    two_members = gzip.compress(_logs(3, "member-1")) + gzip.compress(_logs(2, "member-2"))
    garbage = gzip.compress(_logs(4, "garbage")) + b"trailing garbage"
    headers = {"content-type": PROTOBUF, "content-encoding": "gzip"}
    with live_receivers(tmp_path / "f.duckdb", grpc=False) as live:
        ok = httpx.post(f"{live.http_url}/v1/logs", content=two_members, headers=headers)
        bad = httpx.post(f"{live.http_url}/v1/logs", content=garbage, headers=headers)
        rows = live.query("select rule_id, count(*) from decisions group by 1 order by 1")
        ledger = live.query("select status_code, received from ingest_log order by request_id")
    assert ok.status_code == 200
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(ok.content)
    assert answer.partial_success.rejected_log_records == 0
    assert bad.status_code == 400
    assert rows == [("member-1", 3), ("member-2", 2)]
    assert ledger == [(200, 5), (400, 0)]
