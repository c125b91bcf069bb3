"""The README's promises, run as written."""

from __future__ import annotations

import re

import duckdb
from opentelemetry._logs import _internal as otel_logs
from opentelemetry.util._once import Once

from tests.servers import REPO

README_ENDPOINT = "http://127.0.0.1:4318"  # the default port, which tests must not bind


def _section_code(heading: str, language: str) -> str:
    """The one ``language`` code block under the README's ``## heading``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1, f"expected one {language} block under '## {heading}'"
    return blocks[0]


def test_send_your_own_telemetry_snippet_stores_its_decision(ingest_server, monkeypatch):
    """The Python snippet of "Send your own telemetry", pointed at a server on a free port,
    gets its decision stored with the values it sent."""
    snippet = _section_code("Send your own telemetry", "python")
    assert snippet.count(README_ENDPOINT) == 1
    decision_id = re.search(r'"decision\.id": "([^"]+)"', snippet)
    assert decision_id is not None
    # the snippet sets the process-wide logger provider: it gets a fresh slot, restored after
    monkeypatch.setattr(otel_logs, "_LOGGER_PROVIDER", None)
    monkeypatch.setattr(otel_logs, "_LOGGER_PROVIDER_SET_ONCE", Once())
    exec(snippet.replace(README_ENDPOINT, ingest_server.http_url), {"__name__": "readme"})
    ingest_server.stop()  # drains the writer
    with duckdb.connect(str(ingest_server.db), read_only=True) as con:
        stored = con.execute(
            "SELECT service_name, environment, flag_key, flag_version, variant, subject_id "
            "FROM decisions WHERE decision_id = $id",
            {"id": decision_id.group(1)},
        ).fetchall()
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()
    assert stored == [("checkout", "prod", "new-pricing", "v7", "on", "user-42")]
    assert quarantined == (0,)
