"""The read surface of a running `flaglens serve`, through real HTTP: every read verb prints the
same bytes beside a live server as on the stopped database, and the read listener follows the
server's auth and TLS.

The server runs in this process (``tests/inprocess.py``, the same composition on real sockets);
the one e2e test checks a few verbs beside a real `flaglens serve` process that holds the file.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl

import httpx
import polars as pl
import pytest

from analytics.analyses import ANALYSES
from flaglens import Client
from flaglens.cli.main import main
from flaglens.discovery import note_path
from ingest.auth import token_hash
from tests.factories import decision_attributes, otlp_json_logs
from tests.ingest.test_auth_tls import _self_signed
from tests.inprocess import start_inprocess
from tests.servers import start_server

WEEK = ["--from", "2026-11-16T00:00Z", "--to", "2026-11-23T00:00Z"]
DAY = ["--from", "2026-11-20T06:00Z", "--to", "2026-11-20T12:00Z"]
OPTIONS = [["cohorts", "--compare"], ["contracts", "--rates", "--bucket", "1d"],
           ["changes", "--correction", "bh"], ["latency", "--by", "service,route", "--bucket",
                                               "1d"]]  # fmt: skip
# the big tables over six hours of the week, the small ones over all of it
EXPORTS = {"decisions": DAY, "engagement": DAY, "spans": DAY, "policy_changes": WEEK,
           "quarantine": WEEK}  # fmt: skip


def _verbs(db, out) -> dict[str, list[str]]:
    common = ["--db", str(db)]
    verbs: dict[str, list[str]] = {}
    for what in [[name] for name in ANALYSES] + OPTIONS:
        for fmt in ("table", "json"):
            verbs[f"analyze {' '.join(what)} {fmt}"] = ["analyze", *what, *common, *WEEK,
                                                        "--format", fmt]  # fmt: skip
    verbs["report"] = ["report", "weekly", *common, "--week", "2026-W47", "--out", str(out)]
    verbs["alerts"] = ["alerts", "evaluate", "--dry-run", *common, "--at", "2026-11-22T12:00Z"]
    for table, window in EXPORTS.items():
        for fmt in ("ndjson", "csv", "arrow", "parquet"):
            verbs[f"export {table} {fmt}"] = ["export", table, *common, *window, "--format", fmt,
                                              "--out", str(out / f"{table}.{fmt}")]  # fmt: skip
    return verbs


# what the e2e test runs beside a real process: an analysis in each format, the report, the
# alerts and an export in the binary formats
REAL_PROCESS_VERBS = ("analyze drift table", "analyze drift json", "report", "alerts",
                      "export decisions parquet", "export policy_changes arrow")  # fmt: skip


def _run_all(
    db, out, capture, only: tuple[str, ...] = ()
) -> dict[str, tuple[int, bytes, str, dict[str, bytes]]]:
    """Each verb's exit code, standard output, standard error and the files it wrote."""
    out.mkdir(exist_ok=True)
    results = {}
    for name, argv in _verbs(db, out).items():
        if only and name not in only:
            continue
        code = main(argv)
        captured = capture.readouterr()
        files = {p.name: p.read_bytes() for p in out.iterdir()}
        for path in out.iterdir():
            path.unlink()
        results[name] = (code, captured.out, captured.err.decode(), files)
    return results


def _comparable(files: dict[str, bytes]) -> dict[str, bytes]:
    report = files.get("report.json")
    if report is not None:  # the one field that differs between two runs: when it was made
        data = json.loads(report)
        data.pop("generated_at")
        files = files | {"report.json": json.dumps(data).encode()}
    return files


def _compare(live, stopped, api_url: str) -> None:
    assert set(live) == set(stopped)
    for name, (code, out, err, files) in live.items():
        assert code == 0, f"{name}: {err}"
        assert "reading through its API at " + api_url in err, name
        s_code, s_out, s_err, s_files = stopped[name]
        assert (s_code, "reading through" in s_err) == (0, False), name
        assert out == s_out, name
        assert _comparable(files) == _comparable(s_files), name


def _copy_week(sample_week, folder):
    db = folder / "flaglens.duckdb"
    shutil.copy(sample_week.db, db)
    shutil.copy(sample_week.keys, folder / "keys.toml")
    return db


def test_every_read_verb_prints_the_same_bytes_beside_a_live_server(
    sample_week, tmp_path, capsysbinary
):
    db = _copy_week(sample_week, tmp_path)
    # no alert rounds and no dashboards: nothing but the readers touches the database
    server = start_inprocess(db, api=True)
    try:
        assert json.loads(note_path(db).read_text())["url"] == server.api_url
        live = _run_all(db, tmp_path / "out", capsysbinary)
        with Client(db=db) as client:
            assert client.remote
            frames = {name: client.analyze(name, start=WEEK[1], end=WEEK[3]) for name in ANALYSES}
    finally:
        server.stop()
    assert not note_path(db).exists()
    stopped = _run_all(db, tmp_path / "out", capsysbinary)
    _compare(live, stopped, server.api_url)
    for name, frame in frames.items():
        printed = json.loads(live[f"analyze {name} json"][1])
        assert isinstance(frame, pl.DataFrame) and frame.height == len(printed), name


@pytest.mark.e2e
def test_read_verbs_beside_a_real_server_that_holds_the_database(
    sample_week, tmp_path, capsysbinary
):
    db = _copy_week(sample_week, tmp_path)
    server = start_server(db, "--no-alerts", "--decode-workers", "0")  # it only reads
    try:
        assert json.loads(note_path(db).read_text())["url"] == server.api_url
        live = _run_all(db, tmp_path / "out", capsysbinary, REAL_PROCESS_VERBS)
    finally:
        assert server.stop() == 0
    assert not note_path(db).exists()
    stopped = _run_all(db, tmp_path / "out", capsysbinary, REAL_PROCESS_VERBS)
    assert set(live) == set(REAL_PROCESS_VERBS)
    _compare(live, stopped, server.api_url)


READ, INGEST = "reader-token", "checkout-token"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secured")
    cert, key = _self_signed(folder)
    tokens = folder / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "grafana"\nrole = "read"\nsha256 = "{token_hash(READ)}"\n\n'
        f'[[token]]\nname = "checkout"\nsha256 = "{token_hash(INGEST)}"\n'
        'services = ["checkout"]\n'
    )
    db = folder / "f.duckdb"
    server = start_inprocess(
        db, dashboards=True, api=True, auth_file=tokens, tls_cert=cert, tls_key=key,
        api_export_max_rows=2,
    )  # fmt: skip
    try:
        yield server, db, ssl.create_default_context(cafile=str(cert))
    finally:
        server.stop()


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"me:{token}".encode()).decode()


def test_the_dashboards_need_a_read_token_and_tls(secured):
    server, _db, cert = secured
    url = server.urls["dashboards"]
    assert url.startswith("https://")
    asked = httpx.get(url, verify=cert)
    assert asked.status_code == 401 and asked.headers["www-authenticate"].startswith("Basic")
    page = httpx.get(url, verify=cert, headers={"authorization": _basic(READ)})
    assert page.status_code == 200 and "_dash-config" in page.text
    refused = httpx.get(url, verify=cert, headers={"authorization": _basic(INGEST)})
    assert refused.status_code == 403
    with pytest.raises(httpx.HTTPError):  # no plain HTTP on the read port
        httpx.get(url.replace("https://", "http://"), timeout=5)


def test_roles_over_the_api_and_otlp(secured):
    server, _db, cert = secured
    api = f"{server.api_url}/api/v1"
    with httpx.Client(verify=cert, timeout=30) as http:
        ingest = {"authorization": f"Bearer {INGEST}"}
        read = {"authorization": f"Bearer {READ}"}
        assert http.get(f"{api}/analyses/drift", headers=read).status_code == 200
        refused = http.get(f"{api}/analyses/drift", headers=ingest)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        assert http.get(f"{api}/analyses/drift").status_code == 401
        body = otlp_json_logs([decision_attributes() for _ in range(3)])
        written = http.post(f"{server.http_url}/v1/logs", json=body, headers=ingest)
        assert written.status_code == 200
        refused = http.post(f"{server.http_url}/v1/logs", json=body, headers=read)
        assert refused.status_code == 403 and "may not write" in refused.json()["message"]
        # bad input through the real server: 4xx with the reason
        for path, params, status, fragment in [
            ("/analyses/drift", {"from": "tomorrowish"}, 400, "neither ISO-8601"),
            ("/analyses/drift", {"flavour": "x"}, 400, "unknown parameter(s) flavour"),
            ("/exports/decisions", {"from": "2000-01-01"}, 413, "more than the cap of 2"),
        ]:
            answer = http.get(f"{api}{path}", params=params, headers=read)
            assert answer.status_code == status and fragment in answer.json()["detail"], path
        openapi = http.get(f"{api}/openapi.json", headers=read).json()
        assert "/api/v1/exports/{table}" in openapi["paths"]


def test_the_cli_finds_the_tls_server_and_sends_its_token(secured, monkeypatch, capsys):
    _server, db, _cert = secured
    assert main(["analyze", "drift", "--db", str(db), "--format", "json"]) == 2
    assert "401" in capsys.readouterr().err
    monkeypatch.setenv("FLAGLENS_TOKEN", READ)
    assert main(["analyze", "drift", "--db", str(db), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
