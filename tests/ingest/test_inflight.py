"""The bound on bytes in flight: past it a request is refused with 503 + Retry-After (gRPC:
UNAVAILABLE + RetryInfo) before its body is read, and what is held never passes the bound by
more than one request."""

from __future__ import annotations

import json
import socket
import threading
import time

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from ingest.errors import Overloaded
from ingest.inflight import InflightBytes, inflated_size
from tests.factories import decision_attributes, otlp_json_logs
from tests.ingest.live import live_receivers

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
LIMIT = 2 << 20


def _body(records: int, rule: str) -> bytes:
    document = otlp_json_logs(
        [decision_attributes(**{"policy.rule.id": rule}) for _ in range(records)]
    )
    request = logs_service_pb2.ExportLogsServiceRequest()
    json_format.ParseDict(json.loads(json.dumps(document)), request)
    return request.SerializeToString()


def test_the_bound_refuses_what_would_pass_it():
    """A request is admitted for what its body is expected to come to; one that would pass
    the bound is refused and charged nothing; one is always admitted when nothing is held."""
    budget = InflightBytes(4000)
    first = budget.admit(5000)  # alone: admitted whatever its size
    assert first.nbytes == 5000 * budget.expansion
    with pytest.raises(Overloaded, match=r"holds 0\.0 MiB"):
        budget.admit(10)
    first.release()
    second = budget.admit(200)
    with pytest.raises(Overloaded):
        second.reserve_body(2000)
    second.hold(3000)  # held already: charged, never refused
    assert budget.snapshot().held_bytes == 3000
    second.release()
    assert budget.snapshot().as_dict() | {"peak_bytes": 0} == {
        "held_bytes": 0, "peak_bytes": 0, "limit_bytes": 4000, "requests": 2, "refused": 2,
    }  # fmt: skip


def test_the_expected_expansion_is_learnt():
    """What requests came to hold per byte of body is what the next ones reserve."""
    budget = InflightBytes(1 << 30)
    for _ in range(100):
        charge = budget.admit(1000)
        charge.hold(10_000)
        charge.release()
    assert 9 < budget.expansion <= 10


def test_a_gzip_body_is_charged_for_its_inflated_size():
    """The gzip trailer's size counts (between the body's size and the inflation limit)."""
    import gzip

    body = gzip.compress(bytes(100_000))
    assert inflated_size(body, "gzip", 1 << 20) == 100_000
    assert inflated_size(body, "gzip", 50_000) == 50_000
    assert inflated_size(body, None, 1 << 20) == len(body)


@pytest.fixture
def live(tmp_path):
    with live_receivers(tmp_path / "f.duckdb", max_inflight_bytes=LIMIT) as receivers:
        yield receivers


def test_past_the_bound_http_is_refused_before_the_body_is_read(live):
    """With the bound taken, a request is answered 503 + Retry-After on its headers alone."""
    held = live.service.inflight.admit(LIMIT)
    try:
        with socket.create_connection(live.http_address, timeout=5) as sock:
            sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/x-protobuf\r\n"
                         b"Content-Length: 5000000\r\n\r\n")  # fmt: skip
            sock.settimeout(5)
            answer = b""
            while b"--max-inflight-bytes" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    finally:
        held.release()
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 503 ")
    assert b"retry-after: " in head
    assert b"--max-inflight-bytes" in answer


def test_past_the_bound_grpc_is_unavailable_with_retry_info(live):
    """With the bound taken, a gRPC export is UNAVAILABLE with a RetryInfo delay."""
    held = live.service.inflight.admit(LIMIT)
    try:
        with grpc.insecure_channel(live.grpc_target) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                channel.unary_unary(LOGS_EXPORT)(_body(10, "grpc"), timeout=10)
    finally:
        held.release()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    trailers = dict(caught.value.trailing_metadata())
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.seconds >= 1


def test_concurrent_large_requests_stay_within_the_bound_and_all_arrive(tmp_path):
    """Eight concurrent ~150 KB requests against a 1 MiB bound and a slow writer: some are
    told to retry, none fails, what is held stays within the bound plus one request, and
    every record is stored once."""
    base = _body(400, "concurrent")
    # distinct decision ids per body, at the same length ("d-00000001" -> "a-00000001", ...)
    bodies = [base.replace(b"d-0", f"{chr(97 + i)}-0".encode()) for i in range(8)]
    statuses: list[int] = []
    lock = threading.Lock()

    def send(url: str, body: bytes) -> None:
        # one client per sender for its retries (a new httpx client builds an SSL context)
        with httpx.Client(timeout=60) as client:
            for _ in range(200):
                headers = {"content-type": "application/x-protobuf"}
                status = client.post(url, content=body, headers=headers).status_code
                with lock:
                    statuses.append(status)
                if status != 503:
                    return
                time.sleep(0.05)

    with live_receivers(tmp_path / "f.duckdb", grpc=False, max_inflight_bytes=1 << 20,
                        writer_commit_delay=0.1) as live:  # fmt: skip
        threads = [threading.Thread(target=send, args=(f"{live.http_url}/v1/logs", b))
                   for b in bodies]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        snapshot = live.service.inflight.snapshot()
        stored = live.query("select count(*), count(distinct decision_id) from decisions")
    assert set(statuses) == {200, 503}
    assert statuses.count(200) == 8
    assert snapshot.refused > 0 and snapshot.held_bytes == 0
    # a request is admitted for what it is expected to hold: only one passes the bound
    assert snapshot.peak_bytes <= (1 << 20) + 6 * len(base)
    assert stored == [(8 * 400, 8 * 400)]
