"""While `flaglens serve` runs, nothing writes to the store but its writer.

The server runs in process (:func:`flaglens.server.serve`, the composition `flaglens serve`
runs) on a store that, once the writer has taken its own cursor, hands out only cursors on
which DuckDB refuses every write (:mod:`tests.readers`). Everything that runs beside the writer
then works on those: the periodic round (alert evaluation and delivery, recorded change facts
and cohort periods), the read API (every analysis, the weekly report, alert state, history and
a dry run, the quarantine, an export) and the dashboards' pages. A write on any of them fails
in DuckDB, which shows here as a round or page that logs its failure, an API answer that is
not 200, or write functions that never reach the writer. The check holds for every cursor the
store hands out; the last test keeps it that way (nothing else opens a database or reaches
for the store's connection).
"""

from __future__ import annotations

import ast
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from analytics.analyses import ANALYSES
from dashboards.pages import PAGES
from flaglens.server import Announcer, serve
from flaglens.settings import ServeSettings
from store.connection import Store
from tests.alerts.receiver import WebhookReceiver
from tests.alerts.test_evaluator import RULES
from tests.factories import decision_attributes, otlp_json_logs
from tests.flaglens.test_rounds import fill_one_change
from tests.readers import read_only_beside_writers
from tests.servers import REPO
from tests.test_layers import ALLOWED

T0 = datetime(2026, 11, 16, tzinfo=UTC)
WINDOW = {"from": "2026-11-16T00:00Z", "to": "2026-11-17T00:00Z"}
_RENDER = {
    "output": "..header.children...controls.children...content.children..."
    "tick.disabled...tick.interval..",
    "outputs": [{"id": i, "property": p} for i, p in (
        ("header", "children"), ("controls", "children"), ("content", "children"),
        ("tick", "disabled"), ("tick", "interval"))],
    "changedPropIds": ["url.pathname"],
    "state": [],
}  # fmt: skip


def _until(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def _drive(
    urls: dict[str, str], answers: list[tuple[str, int, str]], failures: list[BaseException]
) -> None:
    """Ingest, wait for a round's four write functions, read everything, stop the server."""
    try:
        _until("the server announces its read API", lambda: "read API" in urls)
        with httpx.Client(timeout=60) as client:
            otlp, read = urls["OTLP/HTTP"], urls["read API"].removesuffix("/api/v1")

            def get(path: str, **kwargs: Any) -> httpx.Response:
                response = client.get(read + path, **kwargs)
                answers.append((path, response.status_code, response.text[:300]))
                return response

            body = otlp_json_logs([decision_attributes()])
            record = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
            record["timeUnixNano"] = str(time.time_ns())  # not late data
            sent = client.post(otlp + "/v1/logs", json=body)
            answers.append(("/v1/logs", sent.status_code, sent.text[:300]))

            def writes() -> int:
                stats = client.get(otlp + "/healthz").json()["writer"]
                return int(stats["write_fns"]) + int(stats["failed_write_fns"])

            # the first round: the evaluation, the delivery, the change facts, cohort periods
            try:
                _until("the first round's write functions", lambda: writes() >= 4, timeout=20)
            except AssertionError:
                raise AssertionError(str(client.get(otlp + "/healthz").json()["writer"])) from None
            for name in ANALYSES:
                get(f"/api/v1/analyses/{name}", params=WINDOW)
            get("/api/v1/reports/weekly/2026-W47")
            get("/api/v1/alerts")
            get("/api/v1/alerts/history", params=WINDOW)
            get("/api/v1/quarantine", params=WINDOW)
            get("/api/v1/exports/decisions", params={**WINDOW, "format": "csv"})
            dry = client.post(read + "/api/v1/alerts/dry-run")
            answers.append(("dry-run", dry.status_code, dry.text[:300]))
            for path in PAGES:
                inputs = [
                    {"id": "url", "property": "pathname", "value": path},
                    {"id": "url", "property": "search", "value": "?from=2026-11-16T00:00Z"},
                    {"id": "tick", "property": "n_intervals", "value": 0},
                ]
                page = client.post(read + "/_dash-update-component",
                                   json={**_RENDER, "inputs": inputs})  # fmt: skip
                _, failed, shown = page.text.partition("Cannot show this page: ")
                answers.append((f"page {path}", 500 if failed else page.status_code,
                                shown[:300] or page.text[:300]))  # fmt: skip
            answers.append(("healthz", 200, client.get(otlp + "/healthz").text))
    except BaseException as exc:
        failures.append(exc)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # serve() drains the writer and returns


def test_nothing_writes_beside_the_writer_while_the_server_runs(tmp_path, monkeypatch, caplog):
    db, rules = tmp_path / "f.duckdb", tmp_path / "alerts.toml"
    rules.write_text(RULES)
    with Store.open(db) as store:
        fill_one_change(store, datetime.now(UTC))
        # received long ago, as they were made: late data would hold the recording back
        store.cursor().execute("UPDATE decisions SET ingested_at = time")
    writers = read_only_beside_writers(monkeypatch)
    urls: dict[str, str] = {}
    answers: list[tuple[str, int, str]] = []
    failures: list[BaseException] = []
    with WebhookReceiver() as receiver:
        settings = ServeSettings(
            db=db, http_port=0, no_grpc=True, dashboard_port=0, decode_workers=0,
            alert_rules=rules, alert_webhook=receiver.url, alert_interval=timedelta(hours=1),
        )  # fmt: skip
        driver = threading.Thread(target=_drive, args=(urls, answers, failures), daemon=True)
        driver.start()
        with caplog.at_level(logging.WARNING):
            assert serve(settings, announce=Announcer(lambda line: _announced(urls, line))) == 0
        driver.join(30)
        assert not failures, (failures, [r.getMessage() for r in caplog.records])
        assert len(receiver.received) == 1  # the firing alert was delivered
    assert len(writers) == 1  # the service's writer, the one the round wrote through
    refused = [a for a in answers if a[1] != 200]
    assert not refused, refused
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(answers) == len(ANALYSES) + len(PAGES) + 8
    with Store.open(db, read_only=True) as store:
        cursor = store.cursor()
        for table in ("alert_state", "alert_history", "impact_windows", "cohort_periods"):
            (rows,) = cursor.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert rows > 0, table
        delivered = "SELECT count(*) FROM alert_outbox WHERE delivered_at IS NOT NULL"
        assert cursor.execute(delivered).fetchone() == (1,)


def _announced(urls: dict[str, str], line: str) -> None:
    what, _, url = line.removeprefix("flaglens: ").partition(" listening on ")
    urls[what] = url


def test_only_the_store_opens_the_database():
    """Every cursor on the database comes from :meth:`Store.cursor` (which the test above
    makes read-only): no package code but ``store/connection.py`` calls ``duckdb.connect``
    with a database (an in-memory one is its own database) or touches ``Store._connection``."""
    found = []
    for package in ALLOWED:
        for path in sorted((REPO / package).rglob("*.py")):
            where = path.relative_to(REPO).as_posix()
            if where == "store/connection.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr == "_connection":
                    found.append(f"{where}:{node.lineno} ._connection")
                connects = (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "connect"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "duckdb"
                )
                # config= alone is an in-memory DuckDB (store/lake.py's, to attach a lake)
                named = {keyword.arg for keyword in getattr(node, "keywords", ())}
                if connects and (getattr(node, "args", None) or named - {"config"}):
                    found.append(f"{where}:{node.lineno} duckdb.connect(...)")
    assert found == []
