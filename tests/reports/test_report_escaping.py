"""Names from the data in the weekly report: escaped for Markdown and HTML in report.md, for
Plotly in report.html's figures (where <a href> would be a live link)."""

from __future__ import annotations

import re

import pytest

from analytics.session import AnalyticsConfig, Session
from reports.render import _figures, render_html, render_markdown
from reports.weekly import build_weekly
from store.connection import Store
from tests.factories import decision_attributes, otlp_json_logs, write_documents

SCRIPT = "<script>alert(1)</script>"
LINK = '<a href="https://evil.example/x">click</a>'
T0 = "1764000000000000000"  # 2025-11-24, in ISO week 2025-W48


def _span(service: str) -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "GET /", "kind": 2, "startTimeUnixNano": T0, "endTimeUnixNano": T0,
        }]}],
    }]}  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    store = Store.open(tmp_path_factory.mktemp("report") / "f.duckdb")
    try:
        resource = {"service.name": SCRIPT, "deployment.environment.name": "prod"}
        write_documents(store, [
            ("logs", otlp_json_logs([decision_attributes(**{"cohort.id": LINK})], resource)),
            ("traces", _span(LINK)),
        ])  # fmt: skip
        session = Session(store.cursor, AnalyticsConfig(warn=lambda _message: None))
        yield build_weekly(session, "2025-W48")
    finally:
        store.close()


def test_markdown_carries_no_raw_markup(report):
    """report.md shows the names as text: no raw <script>, no link."""
    markdown = render_markdown(report)
    assert LINK in str(report)  # the data holds the name...
    # ...every < and > of a name escaped in the Markdown (the report's own prose may say p < 0.05)
    raw = re.search(r"(?<!\\)</?(a|script)\b|(?<!\\)>click|(?<!\\)>alert", markdown)
    assert raw is None, markdown[max(0, raw.start() - 200) : raw.end() + 80]
    assert "\\<a href" in markdown and "\\<script\\>" in markdown


def test_html_figures_show_names_as_text(report):
    """Plotly renders its own link markup: the figures' labels are escaped."""
    labels = [str(x) for figure in _figures(report) for trace in figure.data
              for x in (trace.x or ())]  # fmt: skip
    assert any("&lt;a href" in label for label in labels)
    assert not any("<a" in label for label in labels)
    page = render_html(report)
    assert "<script>alert(1)" not in page
