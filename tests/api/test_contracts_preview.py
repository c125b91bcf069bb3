"""``POST /api/v1/contracts/preview`` and `flaglens contracts preview` over the sample week: the
API, the client on the file and the CLI give the same counts; bad bodies are 400s."""

from __future__ import annotations

import json

import pytest

from contracts import read_contract_files
from flaglens.cli.main import main
from flaglens.client import Client
from tests.api.conftest import WEEK
from tests.contracts.copies import PRIVACY, copy_contracts, privacy_allowing_breaks


@pytest.fixture(scope="module")
def proposed(tmp_path_factory):
    directory = copy_contracts(tmp_path_factory.mktemp("proposed"))
    privacy_allowing_breaks(directory, purpose_optional=True)
    return directory


def body_of(directory):
    files = read_contract_files(directory)
    return {"schemas": [{"path": path, "schema": schema} for path, schema in files]}


def test_the_api_and_the_client_on_the_file_agree(api, sample_week, proposed):
    params = {**WEEK, "service": "recommendations"}
    answer = api.post("/api/v1/contracts/preview", params=params, json=body_of(proposed))
    assert answer.status_code == 200, answer.text
    rv = answer.json()
    broken = sample_week.manifest["counts"]["decisions_broken"]
    assert (rv["would_pass"], rv["would_reject"]) == (broken, 0)
    assert f"{PRIVACY}@1.2.0" in rv["contracts"]
    with Client(db=sample_week.db) as client:
        local = client.preview_contracts(
            proposed, start=WEEK["from"], end=WEEK["to"], service="recommendations"
        )
    assert local == rv


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "send the proposed contracts as"),
        (b'{"schemas": []}', "the proposed contract set is empty"),
        (b'{"schemas": [{"path": "x.json"}]}', "send the proposed contracts as"),
        (b'{"schemas": [{"path": "x.json", "schema": {"type": "object"}}]}', "x-flaglens"),
    ],
    ids=["not json", "empty", "no schema", "not a contract"],
)
def test_bad_bodies_are_400s(api, body, fragment):
    answer = api.post("/api/v1/contracts/preview", params=WEEK, content=body)
    assert answer.status_code == 400
    assert fragment in answer.json()["detail"]


def test_unknown_parameters_and_examples_out_of_range_are_400s(api, proposed):
    for params in ({**WEEK, "servce": "x"}, {**WEEK, "examples": "1000"}):  # before any read
        answer = api.post("/api/v1/contracts/preview", params=params, json=body_of(proposed))
        assert answer.status_code == 400


def test_the_cli_prints_the_groups(sample_week, proposed, capsys):
    code = main(["contracts", "preview", str(proposed), "--db", str(sample_week.db),
                 "--from", WEEK["from"], "--to", WEEK["to"], "--service", "recommendations",
                 "--fail-on-reject"])  # fmt: skip
    out = capsys.readouterr().out
    broken = sample_week.manifest["counts"]["decisions_broken"]
    assert code == 0
    assert f"{broken:,} would pass" in out
    assert "recommendations" in out and PRIVACY in out


def test_the_cli_refuses_a_missing_directory(sample_week, tmp_path, capsys):
    code = main(["contracts", "preview", str(tmp_path / "nothing"), "--db", str(sample_week.db)])
    assert code == 2
    assert "flaglens contracts preview:" in capsys.readouterr().err


def test_json_output(sample_week, proposed, capsys):
    code = main(["contracts", "preview", str(proposed), "--db", str(sample_week.db),
                 "--from", WEEK["from"], "--to", WEEK["to"], "--format", "json",
                 "--service", "checkout"])  # fmt: skip
    assert code == 0
    rv = json.loads(capsys.readouterr().out)
    assert rv["would_pass"] == 0 and {g["service"] for g in rv["groups"]} == {"checkout"}
