"""The dashboards on values from a hostile world: every URL value out of range is shown as a
message on the page (never a 500), and names from the data are shortened (whole on hover)
and escaped for Plotly."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from analytics.session import AnalyticsConfig, Session
from dashboards import figures
from dashboards.app import next_query, option_value, render_view, resolve_option
from dashboards.pages import PAGES, DataSource
from store.connection import Store
from tests.factories import (
    RECORDS_DAY,
    decision_attributes,
    otlp_json_logs,
    privacy_decision_attributes,
    write_documents,
)

ASTRAL = "\U0001d518" * 5000
LINK = '<a href="https://evil.example/x">click</a>'
T0 = "1764000000000000000"


def _span(service: str) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "GET /", "kind": 2, "startTimeUnixNano": T0, "endTimeUnixNano": T0,
        }]}],
    }]}  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    db = tmp_path_factory.mktemp("hostile") / "f.duckdb"
    store = Store.open(db)
    resource = {"service.name": LINK, "deployment.environment.name": ASTRAL}
    records = [
        decision_attributes(**{"cohort.id": LINK}),
        privacy_decision_attributes(**{"privacy.purpose": None}),
    ]
    write_documents(store, [("logs", otlp_json_logs(records, resource)), ("traces", _span(ASTRAL))])
    config = AnalyticsConfig(db=db, warn=lambda _message: None)
    yield DataSource(Session(store.cursor, config), "http://127.0.0.1:4318")
    store.close()


def _walk(node: Any):
    """Every Dash component (and dict) of a layout."""
    yield node
    children = getattr(node, "children", None)
    if isinstance(node, dict):
        children = list(node.values())
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            yield from _walk(child)


HOSTILE_URLS = [
    "from=now-999999d", "to=9999-12-31T23:59:59", "page=" + "9" * 5000, "page=²", "page=-3",
    "from=now-" + "9" * 5000 + "d", "from=0001-01-01T00:00Z", "to=now-1d&from=now",
    "refresh=" + "9" * 400 + "s", "service=" + "x" * 20_000, "change=%00%ff", "slo=%F0%9D",
]  # fmt: skip


@pytest.mark.parametrize("path", list(PAGES))
@pytest.mark.parametrize("query", HOSTILE_URLS, ids=lambda q: q[:24])
def test_url_values_out_of_range_are_a_message_not_a_500(source, path, query):
    """Each page renders with every hostile URL value: as a page or a message saying why."""
    header, _controls, content, _off, _interval = render_view(source, path, "?" + query)
    assert header is not None and content
    errors = [n for n in _walk(content) if getattr(n, "className", None) == "fl-error"]
    for error in errors:
        assert "Cannot show this page" in str(error.children)
        assert len(str(error.children)) < 600


def test_a_page_number_past_the_last_is_clamped(source):
    """5,000 digits, or '²', are a page number the page can show."""
    from dashboards.state import MAX_PAGE, ViewState

    assert ViewState.from_query("page=" + "9" * 5000).page == MAX_PAGE
    assert ViewState.from_query("page=²").page == 1
    assert ViewState.from_query("page=٣").page == 1


def test_menu_entries_are_short_with_the_whole_value_on_hover(source):
    """A 20 KB astral service name is a menu entry of at most 60 characters, label and value
    (the dropdown indexes every substring of both), the whole name its tooltip; the entry's
    value stands for the whole name when chosen."""
    _header, controls, _content, _off, _interval = render_view(source, "/", "?" + RECORDS_DAY)
    dropdowns = {n.id: n for n in _walk(controls) if type(n).__name__ == "Dropdown"}
    options = dropdowns["service"].options + dropdowns["environment"].options
    assert {o["title"] for o in options} >= {ASTRAL, LINK}
    assert all(len(o["label"]) <= 60 and len(o["value"]) <= 60 for o in options)
    known = [o["title"] for o in options]
    assert [resolve_option(o["value"], lambda: known) for o in options] == known


def test_a_chosen_long_name_reaches_the_url_whole(source):
    """The URL keeps the whole name: the view restores the menu entry that stands for it."""
    query = "?" + RECORDS_DAY + "&" + urlencode({"service": ASTRAL})
    _header, controls, _content, _off, _interval = render_view(source, "/", query)
    (service,) = [n for n in _walk(controls) if getattr(n, "id", None) == "service"]
    assert service.value == option_value(ASTRAL)
    assert next_query(query, "service", None, None, None, ASTRAL, None, "off") is None


def test_table_cells_are_short_with_the_whole_value_on_hover(source):
    """Long names in tables are shortened, with the whole value as the cell's title."""
    _header, _controls, content, _off, _interval = render_view(
        source, "/contracts", "?" + RECORDS_DAY
    )
    spans = [n for n in _walk(content) if type(n).__name__ == "Span" and getattr(n, "title", None)]
    texts = [str(n.children) for n in _walk(content) if isinstance(n, str)]
    assert all(len(t) <= 160 for t in texts)
    assert all(len(str(s.children)) <= 160 for s in spans)


def test_figure_labels_are_escaped_for_plotly(source):
    """Plotly would render a service named <a href=...> as a live link: it gets text."""
    from datetime import UTC, datetime

    from analytics.cohorts import CohortPeriod
    from analytics.contract_health import ViolationRow

    now = datetime(2025, 11, 24, tzinfo=UTC)
    violations = figures.violations_figure(
        [ViolationRow(LINK, "c", "1", LINK, now, 3), ViolationRow(ASTRAL, "c", "1", "e", now, 1)]
    )
    cohorts = figures.cohort_figure([CohortPeriod(LINK, now, 10, 3)], [])
    names = [t.name for t in violations.data] + [t.name for t in cohorts.data]
    assert all("<" not in n for n in names)
    assert any("&lt;a href" in n for n in names)
    assert all(len(n) < 200 for n in names)
    assert all("<a" not in (t.hovertext or "") for t in violations.data)
