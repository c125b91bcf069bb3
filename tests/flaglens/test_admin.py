"""The admin endpoints in process: an admin token only, bad replay bodies as 400s, a replay
through the service's own writer."""

from __future__ import annotations

import json

import pytest

from analytics.session import AnalyticsConfig, Session
from api import create_api
from flaglens.admin import admin_router
from ingest.auth import token_hash
from ingest.service import IngestService
from ingest.settings import IngestSettings
from tests.api.conftest import AsgiClient
from tests.factories import otlp_json_logs, privacy_decision_attributes


@pytest.fixture
def admin(tmp_path):
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "ops"\nsha256 = "{token_hash("a")}"\nrole = "admin"\n'
        f'[[token]]\nname = "grafana"\nsha256 = "{token_hash("r")}"\nrole = "read"\n'
        f'[[token]]\nname = "exp"\nsha256 = "{token_hash("i")}"\nservices = ["*"]\n'
    )
    service = IngestService(
        IngestSettings(db=tmp_path / "a.duckdb", auth_file=tokens, decode_workers=0)
    )
    service.start()
    session = Session(service.store.cursor, AnalyticsConfig(db=tmp_path / "a.duckdb"))
    app = create_api(session, routers=[admin_router(service)])
    yield service, app
    service.close()


@pytest.mark.parametrize(
    ("token", "status"), [(None, 401), ("wrong", 401), ("r", 403), ("i", 403), ("a", 200)]
)
def test_only_an_admin_token_replays(admin, token, status):
    _, app = admin
    headers = {"authorization": f"Bearer {token}"} if token else {}
    answer = AsgiClient(app, headers).post("/api/v1/admin/quarantine/replay", json={})
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"contrct": "x"}, "unknown field(s) contrct"),
        ({"dry_run": "yes"}, "dry_run must be true or false"),
        ({"since": "yesterday"}, "since:"),
        ({"contract": "no.such"}, "no.such"),
        ({"contract": 3}, "contract must be a string"),
    ],
)
def test_bad_replay_bodies_are_400s(admin, body, fragment):
    _, app = admin
    answer = AsgiClient(app, {"authorization": "Bearer a"}).post(
        "/api/v1/admin/quarantine/replay", content=json.dumps(body)
    )
    assert answer.status_code == 400
    assert fragment in answer.json()["detail"]


def test_a_failed_reload_is_a_422_and_the_old_set_stays(admin, tmp_path):
    service, app = admin
    broken = tmp_path / "broken"
    (broken / "schemas").mkdir(parents=True)
    (broken / "schemas" / "x-1.0.0.json").write_text("{")
    service.settings = service.settings.model_copy(update={"contracts_dir": broken})
    answer = AsgiClient(app, {"authorization": "Bearer a"}).post("/api/v1/admin/contracts/reload")
    assert answer.status_code == 422
    assert answer.json()["error"] == "reload_failed"
    assert service.reloader.snapshot()["generation"] == 1


def test_a_dry_run_through_the_endpoint_writes_nothing(admin):
    service, app = admin
    record = privacy_decision_attributes(**{"privacy.consent.state": "unknown"})
    body = json.dumps(otlp_json_logs([record])).encode()
    import asyncio

    asyncio.run(
        service.export("logs", body, content_type="application/json", content_encoding=None,
                       transport="http", authorization="Bearer i")
    )  # fmt: skip
    answer = AsgiClient(app, {"authorization": "Bearer a"}).post(
        "/api/v1/admin/quarantine/replay", json={"dry_run": True}
    )
    assert answer.status_code == 200
    assert (answer.json()["checked"], answer.json()["released"]) == (1, 0)
