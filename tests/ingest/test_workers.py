"""Decode workers: a lost worker costs a retry, never a record (that none outlives a server
killed hard is checked by tests/ingest/test_crash.py, which kills one)."""

from __future__ import annotations

import json
import pickle

import duckdb
import httpx
import pytest

from ingest.errors import IngestError, MalformedRequest, Overloaded, PayloadTooLarge
from tests.factories import decision_attributes, otlp_json_logs
from tests.servers import start_server

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "error",
    [
        MalformedRequest("protobuf", "truncated message"),
        PayloadTooLarge(limit=10, received=20, stage="records"),
        Overloaded(retry_after=2.5, reason="a decode worker stopped"),
    ],
)
def test_request_errors_cross_the_process_boundary_whole(error: IngestError):
    """Raised in a worker, re-raised in the server: same class, message and attributes."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
    assert (copy.status, copy.grpc_code) == (error.status, error.grpc_code)


@pytest.mark.e2e
def test_a_killed_worker_is_replaced_and_nothing_acknowledged_is_lost(tmp_path):
    db = tmp_path / "f.duckdb"
    server = start_server(db, "--decode-workers", "2")
    acknowledged: list[str] = []
    answers: list[int] = []
    try:
        server.decode_workers(2)[0].kill()
        with httpx.Client(timeout=30) as client:
            for _ in range(6):
                batch = [decision_attributes() for _ in range(50)]
                response = client.post(
                    f"{server.http_url}/v1/logs",
                    content=json.dumps(otlp_json_logs(batch)).encode(),
                    headers=JSON,
                )
                answers.append(response.status_code)
                if response.status_code == 200:
                    acknowledged.extend(a["decision.id"] for a in batch)
                else:
                    assert response.status_code == 503
                    assert response.headers["retry-after"] == "1"
                    assert "decode worker" in response.text
            health = client.get(f"{server.http_url}/healthz").json()
        assert answers[-5:] == [200] * 5, answers  # at most the first request is refused
        assert health["decode_workers"] == {"processes": 2, "restarts": 1}
        assert len(server.decode_workers(2)) == 2
    finally:
        server.stop()
    assert any("a decode worker died" in line for line in server.output)
    with duckdb.connect(str(db), read_only=True) as con:
        stored = {r[0] for r in con.execute("SELECT decision_id FROM decisions").fetchall()}
    assert stored == set(acknowledged)
