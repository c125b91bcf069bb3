"""Open Policy Agent decision logs on POST /v1/opa/logs, in OPA's documented upload format (a
gzipped JSON array written the way OPA's chunk encoder writes it): mapped to decisions under
their own contract, with the same quarantine, dedupe, ledger and limits; hostile bodies get a
4xx or the quarantine, never a 500. (No package registry ships the OPA server, so the bodies are
built here from OPA's documented event format.)"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from typing import Any

import duckdb
import httpx
import pytest

from ingest.http_server import OPA_DECISION_LOGS_PATH, create_app
from ingest.service import IngestService
from ingest.settings import IngestSettings
from tests.servers import running_server

REVISION = "W3sibCI6InN5cy9jYXRhbG9nIiwicyI6NDA3MX1d"


DECISION_ID = "4ca636c1-55e4-417a-b1d8-4aceb67960d1"


def opa_event(decision_id: Any = DECISION_ID, **changes: Any) -> dict[str, Any]:
    """An event as OPA's decision-log plugin sends it (docs: Decision Log Service API)."""
    event: dict[str, Any] = {
        "labels": {"app": "checkout", "environment": "prod",
                   "id": "1780d507-aea2-45cc-ae50-fa153c8e4a5a", "version": "1.4.2"},
        "decision_id": decision_id,
        "bundles": {"authz": {"revision": REVISION}},
        "path": "http/example/authz/allow",
        "input": {"method": "GET", "path": "/salary/bob", "user": {"roles": ["hr"]}},
        "result": True,
        "requested_by": "[::1]:59943",
        "timestamp": "2026-11-20T12:00:00.123456789Z",
        "metrics": {"timer_rego_query_eval_ns": 7312},
        "req_id": 3,
    }  # fmt: skip
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def opa_upload(events: list[Any]) -> bytes:
    """As OPA's chunk encoder writes a chunk: '[' then events, each JSON + newline, ',' between,
    then ']', in one gzip stream."""
    raw = b"[" + b",".join(json.dumps(e).encode() + b"\n" for e in events) + b"]"
    return gzip.compress(raw)


HEADERS = {"content-type": "application/json", "content-encoding": "gzip"}


@pytest.fixture
def service(tmp_path):
    settings = IngestSettings.model_validate(
        {"db": tmp_path / "f.duckdb", "decode_workers": 0, "max_records_per_request": 100,
         "max_decompressed_bytes": 1 << 20, "writer_max_group_delay": 0}
    )  # fmt: skip
    service = IngestService(settings)
    service.start()
    yield service
    service.close()


def post(service: IngestService, body: bytes, headers: dict[str, str] | None = None):
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://flaglens") as client:
            return await client.post(OPA_DECISION_LOGS_PATH, content=body,
                                     headers=headers or HEADERS)  # fmt: skip

    return asyncio.run(send())


def rows(service: IngestService, sql: str) -> list[tuple[Any, ...]]:
    return service.store.cursor().execute(sql).fetchall()


def test_a_documented_upload_is_stored_quarantined_and_deduplicated(service):
    events = [
        opa_event(),
        opa_event("no-revision", bundles=None),
        opa_event(),  # the same decision again, as a retried chunk would carry it
    ]
    answer = post(service, opa_upload(events))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["received"], body["rejected"], body["duplicates"]) == (3, 1, 1)
    assert (
        "decision 1: feature_flag.evaluation.opa@1.0.0 /feature_flag.version"
        in (body["error_message"])
    )
    stored = rows(service, "select decision_id, service_name, environment, flag_key, flag_version,"
                  " rule_id, variant, value, provider_name, policy_module, source, contract_id,"
                  " epoch_ns(time) from decisions")  # fmt: skip
    assert stored == [
        ("4ca636c1-55e4-417a-b1d8-4aceb67960d1", "checkout", "prod", "http/example/authz/allow",
         REVISION, "http/example/authz/allow", "true", "true", "opa", "security",
         "opa_decision_log", "feature_flag.evaluation.opa", 1795176000123456000),
    ]  # fmt: skip
    quarantined = rows(service, "select signal, contract_id, errors from quarantine")
    assert [(s, c) for s, c, _ in quarantined] == [("opa", "feature_flag.evaluation.opa")]
    assert json.loads(quarantined[0][2])[0]["pointer"] == "/feature_flag.version"
    ledger = rows(service, "select signal, received, accepted, rejected, duplicates, services "
                  "from ingest_log")  # fmt: skip
    assert ledger == [("opa", 3, 2, 1, 1, ["checkout"])]
    again = post(service, opa_upload(events)).json()  # OPA retries a chunk it got no 2xx for
    assert again["duplicates"] == 2
    assert rows(service, "select count(*) from decisions") == [(1,)]


def test_labels_name_the_resource_and_several_bundles_make_the_version(service):
    event = opa_event(
        labels={"service.name": "payments", "deployment.environment.name": "staging",
                "policy.module": "release", "app": "ignored"},
        bundles={"b": {"revision": "r2"}, "a": {"revision": "r1"}},
        result={"allow": False, "reasons": ["no role"]},
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7",
    )  # fmt: skip
    assert post(service, opa_upload([event])).json()["rejected"] == 0
    stored = rows(service, "select service_name, environment, policy_module, flag_version, "
                  "variant, value, trace_id, span_id from decisions")  # fmt: skip
    assert stored == [("payments", "staging", "release", "a@r1,b@r2", None,
                       '{"allow":false,"reasons":["no role"]}', "4bf92f3577b34da6a3ce929d0e0e4736",
                       "00f067aa0ba902b7")]  # fmt: skip


def _members(count: int) -> bytes:
    return b"".join(gzip.compress(b" ") for _ in range(count - 1)) + opa_upload([opa_event()])


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\x1f\x8b garbage", None, 400),
        (gzip.compress(b'{"decision_id": "x"}'), None, 400),
        (gzip.compress(b"not json"), None, 400),
        (gzip.compress(b""), None, 400),
        (gzip.compress(b"[" * 5000 + b"]" * 5000), None, 400),
        (opa_upload([opa_event()]) + b"trailing", None, 400),
        (_members(65), None, 400),
        (_members(3), None, 200),
        (gzip.compress(b"[" + b" " * (2 << 20) + b"]"), None, 413),  # inflates past 1 MiB
        (opa_upload([opa_event(str(i)) for i in range(101)]), None, 413),
        (
            opa_upload([opa_event()]),
            {"content-type": "application/x-protobuf", "content-encoding": "gzip"},
            415,
        ),
        (
            opa_upload([opa_event()]),
            {"content-type": "application/json", "content-encoding": "br"},
            415,
        ),
        (json.dumps([opa_event()]).encode(), {"content-type": "application/json"}, 200),
    ],
    ids=[
        "not-gzip",
        "an-object",
        "not-json",
        "empty",
        "nested-5000",
        "trailing-bytes",
        "65-members",
        "3-members",
        "bomb",
        "101-events",
        "protobuf",
        "brotli",
        "uncompressed",
    ],
)
def test_whole_bodies_that_cannot_be_used_get_a_4xx(service, body, headers, status):
    answer = post(service, body, headers)
    assert answer.status_code == status, answer.text
    if status != 200:
        assert "OPA decision log" in answer.text or status in (413, 415)
        for _ in range(100):  # the failed request's ledger row is written without waiting
            ledger = rows(service, "select signal, status_code from ingest_log")
            if ledger:
                break
            time.sleep(0.02)
        assert ledger == [("opa", status)]


@pytest.mark.parametrize(
    ("event", "pointer", "message"),
    [
        (5, "", "must be a JSON object"),
        (None, "", "must be a JSON object"),
        (opa_event(decision_id=7), "/decision.id", "is not of type"),
        (opa_event(timestamp="yesterday"), "/time_unix_nano", "required property"),
        (opa_event(labels=["app"]), "/opa.labels", "is not of type"),
        (opa_event(labels={"environment": "prod"}), "/service.name", "required property"),
        (opa_event(path=None), "/feature_flag.key", "required property"),
        (opa_event(result=None), "", "anyOf"),
        (opa_event(input={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}), "",
         "nested deeper than 8"),
        (opa_event(input="x" * 70_000), "", "over the limit of 65536"),
        (opa_event(labels={"app": "checkout", **{f"l{i}": "v" for i in range(300)}}), "",
         "over the limit of 256"),
    ],
    ids=["number", "null", "numeric-id", "bad-timestamp", "labels-list", "no-service",
         "no-path", "no-result", "deep-input", "long-string", "many-labels"],
)  # fmt: skip
def test_hostile_events_are_quarantined_with_the_reason(service, event, pointer, message):
    answer = post(service, opa_upload([opa_event("fine"), event]))
    assert answer.status_code == 200
    assert (answer.json()["received"], answer.json()["rejected"]) == (2, 1)
    ((errors,),) = rows(service, "select errors from quarantine")
    assert any(e["pointer"] == pointer and message in e["message"] for e in json.loads(errors)), (
        errors
    )
    assert rows(service, "select decision_id from decisions") == [("fine",)]


@pytest.mark.e2e
def test_a_real_server_with_decode_workers_and_tokens(tmp_path):
    """Through `flaglens serve` (decode workers, bearer tokens as OPA's services.credentials
    sends them): a token bound to checkout cannot write payments' decisions."""
    from ingest.auth import token_hash

    token = "opa-checkout-token"
    auth = tmp_path / "tokens.toml"
    auth.write_text(f'[[token]]\nname = "opa"\nsha256 = "{token_hash(token)}"\n'
                    'services = ["checkout"]\n')  # fmt: skip
    db = tmp_path / "f.duckdb"
    other = opa_event("p-1", labels={"app": "payments", "environment": "prod"})
    with running_server(db, "--auth-file", str(auth), "--decode-workers", "1") as server:
        url = server.http_url + OPA_DECISION_LOGS_PATH
        headers = {**HEADERS, "authorization": f"Bearer {token}"}
        answer = httpx.post(url, content=opa_upload([opa_event(), other]), headers=headers)
        refused = httpx.post(url, content=opa_upload([opa_event()]), headers=HEADERS)
    assert answer.status_code == 200 and answer.json()["rejected"] == 1
    assert refused.status_code == 401
    con = duckdb.connect(str(db), read_only=True)
    assert con.sql("select service_name from decisions").fetchall() == [("checkout",)]
    assert con.sql("select service_name from quarantine").fetchall() == [("payments",)]
