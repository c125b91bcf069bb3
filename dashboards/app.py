"""The Dash application: navigation, the time/filter controls in the URL, and page routing.

Every view is a URL: the path picks the page and the query holds the time range, filters,
refresh interval and selection (:mod:`dashboards.state`). Changing a control rewrites the URL;
a URL change re-renders the page. Auto-refresh (off by default) re-renders on a timer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import dash
import duckdb
from dash import Input, Output, State, dcc, html

from analytics.errors import AnalyticsError
from analytics.labels import LABEL_CHARACTERS, shorten
from analytics.volume import known_values
from contracts.errors import ContractError
from dashboards.pages import PAGES, DataSource
from dashboards.state import REFRESH_CHOICES, RELATIVE_RANGES, ViewState
from store.errors import StoreError

log = logging.getLogger(__name__)
_CUSTOM = "__custom__"
_STAND_IN = "…#"  # between a long value's start and its hash in a menu entry's value


def _header(pathname: str, state: ViewState) -> html.Div:
    links: list[Any] = [html.Span("flaglens", className="fl-brand")]
    for path, page in PAGES.items():
        links.append(
            dcc.Link(
                page.title,
                href=path + state.to_query(change=None, slo=None, page=1),
                className="fl-active" if path == pathname else "",
                id=f"nav-{path.strip('/') or 'overview'}",
            )
        )
    return html.Div(links, className="fl-header")


def option_value(value: str | None) -> str | None:
    """What a menu entry of ``value`` selects: the value itself, or for a long one a short
    stand-in (its start and a hash). Dash's dropdown indexes every substring of its entries'
    labels and values for its search, so a 20 KB name held a browser for minutes."""
    if value is None or len(value) <= LABEL_CHARACTERS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[:40]}{_STAND_IN}{digest}"


def _option(value: str) -> dict[str, Any]:
    """A menu entry for a value from the data: short label and value, the whole on hover."""
    return {"label": shorten(value), "value": option_value(value), "title": value}


def resolve_option(selected: str | None, known: Callable[[], list[str]]) -> str | None:
    """The value from the data a menu entry stands for (see :func:`option_value`); ``known``
    lists the values, asked only for a stand-in."""
    if selected is None or _STAND_IN not in selected:
        return selected
    return next((value for value in known() if option_value(value) == selected), selected)


def _controls(state: ViewState, source: DataSource) -> html.Div:
    cursor = source.session.cursor()
    services = known_values(cursor, "service_name")
    environments = known_values(cursor, "environment")
    relative = (
        state.start if state.end == "now" and state.start in RELATIVE_RANGES.values() else None
    )
    return html.Div(
        [
            dcc.Dropdown(
                id="range",
                options=[{"label": k, "value": v} for k, v in RELATIVE_RANGES.items()]
                + [{"label": "Absolute range", "value": _CUSTOM}],
                value=relative or _CUSTOM,
                clearable=False,
                className="fl-control",
                style={"width": "200px"},
            ),
            dcc.Input(
                id="from",
                value=state.start,
                debounce=True,
                placeholder="from",
                style={"width": "190px"},
            ),
            dcc.Input(
                id="to", value=state.end, debounce=True, placeholder="to", style={"width": "190px"}
            ),
            dcc.Dropdown(
                id="service",
                options=[_option(s) for s in services],
                value=option_value(state.service),
                placeholder="all services",
                className="fl-control",
                style={"width": "200px"},
            ),
            dcc.Dropdown(
                id="environment",
                options=[_option(e) for e in environments],
                value=option_value(state.environment),
                placeholder="all environments",
                className="fl-control",
                style={"width": "200px"},
            ),
            dcc.Dropdown(
                id="refresh",
                options=[
                    {"label": "auto-refresh off" if r == "off" else f"every {r}", "value": r}
                    for r in REFRESH_CHOICES
                ],
                value=state.refresh,
                clearable=False,
                className="fl-control",
                style={"width": "200px"},
            ),
        ],
        className="fl-controls",
    )


def render_view(source: DataSource, pathname: str | None, search: str | None) -> tuple[Any, ...]:
    """(header, controls, content, timer disabled, timer interval) for a URL; errors are shown
    on the page, never swallowed."""
    path = pathname if pathname in PAGES else "/"
    state = ViewState.from_query(search)
    refresh = state.refresh_ms()
    controls: Any = html.Div()
    try:
        controls = _controls(state, source)
        content = PAGES[path].render(source, state, state.window())
    except (AnalyticsError, ContractError, StoreError, duckdb.Error, ValueError,
            ArithmeticError) as exc:  # fmt: skip
        log.warning("dashboard %s%s failed: %s", path, (search or "")[:200], exc)
        content = [html.Div(f"Cannot show this page: {exc}", className="fl-error")]
    return (
        _header(path, state),
        controls,
        [html.H2(PAGES[path].title), *content],
        refresh is None,
        refresh or 30_000,
    )


def next_query(
    search: str | None,
    trigger: str | None,
    relative: str | None,
    start: str | None,
    end: str | None,
    service: str | None,
    environment: str | None,
    refresh: str | None,
) -> str | None:
    """The URL query after a control changed (None: nothing to change)."""
    state = ViewState.from_query(search)
    if trigger == "range" and relative and relative != _CUSTOM:
        start, end = relative, "now"
    query = state.to_query(
        start=start or state.start,
        end=end or state.end,
        service=service or None,
        environment=environment or None,
        refresh=refresh or "off",
        page=1,
    )
    return None if query == (search or "") else query


def create_dash_app(source: DataSource, *, requests_pathname_prefix: str = "/") -> dash.Dash:
    """Build the dashboards over ``source``."""
    app = dash.Dash(
        __name__,
        title="flaglens",
        suppress_callback_exceptions=True,
        requests_pathname_prefix=requests_pathname_prefix,
        update_title="",
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Div(id="header"),
            html.Div(id="controls"),
            dcc.Loading(html.Div(id="content", className="fl-content"), delay_show=400),
            dcc.Interval(id="tick", disabled=True, interval=30_000),
        ]
    )

    @app.callback(
        Output("header", "children"),
        Output("controls", "children"),
        Output("content", "children"),
        Output("tick", "disabled"),
        Output("tick", "interval"),
        Input("url", "pathname"),
        Input("url", "search"),
        Input("tick", "n_intervals"),
    )
    def render(pathname: str | None, search: str | None, _tick: int | None) -> tuple[Any, ...]:
        return render_view(source, pathname, search)

    @app.callback(
        Output("url", "search"),
        Input("range", "value"),
        Input("from", "value"),
        Input("to", "value"),
        Input("service", "value"),
        Input("environment", "value"),
        Input("refresh", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def apply_controls(
        relative: str | None,
        start: str | None,
        end: str | None,
        service: str | None,
        environment: str | None,
        refresh: str | None,
        search: str | None,
    ) -> str:
        cursor = source.session.cursor
        service = resolve_option(service, lambda: known_values(cursor(), "service_name"))
        environment = resolve_option(environment, lambda: known_values(cursor(), "environment"))
        query = next_query(
            search, dash.ctx.triggered_id, relative, start, end, service, environment, refresh
        )
        if query is None:
            raise dash.exceptions.PreventUpdate
        return query

    return app
