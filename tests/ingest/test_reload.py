"""Contract reload in process: a set that lints is swapped in; one that does not leaves the old
set serving, with the error in the status /healthz shows."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from ingest.http_server import create_app
from ingest.reload import ReloadFailed
from ingest.service import IngestService
from ingest.settings import IngestSettings
from tests.contracts.copies import (
    copy_contracts,
    privacy_allowing_breaks,
    read_json,
    write_json,
)
from tests.factories import otlp_json_logs, privacy_decision_attributes

PRIVACY = "feature_flag.evaluation.privacy"


@pytest.fixture
def served(tmp_path):
    directory = copy_contracts(tmp_path)
    service = IngestService(
        IngestSettings(db=tmp_path / "r.duckdb", contracts_dir=directory, decode_workers=0)
    )
    service.start()
    yield service, directory
    service.close()


def post_unknown_consent(service):
    body = otlp_json_logs([privacy_decision_attributes(**{"privacy.consent.state": "unknown"})])

    async def go():
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://otlp") as client:
            export = await client.post("/v1/logs", content=json.dumps(body),
                                       headers={"content-type": "application/json"})  # fmt: skip
            health = await client.get("/healthz")
            return export.json(), health.json()

    return asyncio.run(go())


def test_a_reload_swaps_in_a_set_that_lints(served):
    """Before: 'unknown' consent is rejected; after adding privacy 1.2.0 and reloading, accepted."""
    service, directory = served
    answer, health = post_unknown_consent(service)
    assert answer["partialSuccess"]["rejectedLogRecords"] == "1"
    assert health["contracts"]["generation"] == 1
    privacy_allowing_breaks(directory)
    status = service.reloader.reload("test")
    assert (status.generation, status.last_error) == (2, None)
    assert f"{PRIVACY}@1.2.0" in status.contracts
    answer, health = post_unknown_consent(service)
    assert answer.get("partialSuccess", {}).get("rejectedLogRecords", "0") in ("0", 0)
    assert health["contracts"]["generation"] == 2


def test_a_set_that_does_not_lint_leaves_the_old_one(served):
    """A broken file: the reload fails with the finding, the old set keeps serving, /healthz
    says why."""
    service, directory = served
    (directory / "schemas" / "broken-1.0.0.json").write_text("{ not json")
    with pytest.raises(ReloadFailed, match=r"lint\.json"):
        service.reloader.reload("test")
    answer, health = post_unknown_consent(service)
    assert answer["partialSuccess"]["rejectedLogRecords"] == "1"
    contracts = health["contracts"]
    assert (contracts["generation"], contracts["failed_reloads"]) == (1, 1)
    assert "does not lint" in contracts["last_error"]
    (directory / "schemas" / "broken-1.0.0.json").unlink()
    assert service.reloader.reload("test").last_error is None


def test_a_set_whose_examples_fail_is_refused(served):
    """Lint runs the examples: a new version one of whose invalid examples passes is refused."""
    service, directory = served
    privacy_allowing_breaks(directory)
    examples = directory / "examples" / PRIVACY / "1.2.0"
    example = read_json(examples / "valid" / "unknown-consent-state.json")
    example["expect"] = {"errors": [{"pointer": "/privacy.consent.state",
                                     "message_contains": "not one of"}]}  # fmt: skip
    (examples / "valid" / "unknown-consent-state.json").unlink()
    write_json(examples / "invalid" / "unknown-consent-state.json", example)
    with pytest.raises(ReloadFailed, match=r"lint\.example-invalid"):
        service.reloader.reload("test")
    assert f"{PRIVACY}@1.2.0" not in service.reloader.snapshot()["contracts"]
