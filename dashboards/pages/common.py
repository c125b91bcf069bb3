"""What the dashboard pages share: the data source they read from and small html helpers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dash import dcc, html

from analytics import impact
from analytics.labels import LABEL_CHARACTERS, shorten
from analytics.session import Session
from analytics.windows import TimeWindow
from dashboards.state import ViewState

IMPACT_CACHE_SECONDS = 30.0


@dataclass
class DataSource:
    """Where pages read from: the analytics session, and where exporters send (for hints)."""

    session: Session
    otlp_url: str = "http://127.0.0.1:4318"
    _impacts: dict[Any, tuple[float, list[impact.ChangeImpact]]] = field(
        default_factory=dict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def impacts(self, window: TimeWindow, environment: str | None) -> list[impact.ChangeImpact]:
        """Every change's impact, kept for :data:`IMPACT_CACHE_SECONDS`.

        Changes whose facts `flaglens serve` has not recorded yet (windows still open) are
        assessed live, counting distinct exposed subjects (seconds on millions of decisions),
        and three pages show the result; windows are rounded to the minute so that "last 7
        days" views share one result while it is fresh.
        """
        key = (window.start.replace(second=0, microsecond=0),
               window.end.replace(second=0, microsecond=0), environment)  # fmt: skip
        now = time.monotonic()
        with self._lock:
            hit = self._impacts.get(key)
            if hit is not None and now - hit[0] < IMPACT_CACHE_SECONDS:
                return hit[1]
        rounded = TimeWindow(key[0], key[1]) if key[1] > key[0] else window
        config = self.session.config
        result = impact.change_impacts(
            self.session.cursor(), rounded, list(config.slos), config.rules, config.keys,
            environment=environment,
        )  # fmt: skip
        with self._lock:
            self._impacts = {k: v for k, v in self._impacts.items() if now - v[0] < 60}
            self._impacts[key] = (now, result)
        return result


# most characters of a value in a table cell; the whole value is its tooltip
CELL_CHARACTERS = 160


def _link(text: str, path: str, state: ViewState, **changes: Any) -> dcc.Link:
    if len(text) <= LABEL_CHARACTERS:
        return dcc.Link(text, href=path + state.to_query(**changes))
    return dcc.Link(shorten(text), href=path + state.to_query(**changes), title=text)


def _cell(value: Any) -> Any:
    """A table cell: a long string shortened, its whole text on hover."""
    if isinstance(value, str) and len(value) > CELL_CHARACTERS:
        return html.Span(shorten(value, CELL_CHARACTERS), title=value)
    return value


def _label(text: str) -> Any:
    """A value shown in running text (a heading, a paragraph): shortened, whole on hover."""
    if len(text) <= LABEL_CHARACTERS:
        return text
    return html.Span(shorten(text), title=text)


def _table(headers: list[str], rows: list[list[Any]], table_id: str | None = None) -> html.Table:
    head = html.Thead(html.Tr([html.Th(h) for h in headers]))
    body = html.Tbody([html.Tr([html.Td(_cell(cell)) for cell in row]) for row in rows])
    props: dict[str, Any] = {"className": "fl-table"}
    if table_id:
        props["id"] = table_id
    return html.Table([head, body], **props)


def _empty(message: str, source: DataSource) -> html.Div:
    return html.Div(
        [
            html.P(message),
            html.P(
                [
                    "Point any OpenTelemetry OTLP exporter at ",
                    html.Code(source.otlp_url),
                    " (logs with event_name feature_flag.evaluation, policy.change, "
                    "user.engagement; server spans), or load the sample week with ",
                    html.Code(f"flaglens sample-data send --endpoint {source.otlp_url}"),
                    ".",
                ]
            ),
        ],
        className="fl-empty",
    )


def _graph(figure: Any, graph_id: str) -> dcc.Graph:
    return dcc.Graph(id=graph_id, figure=figure, config={"displaylogo": False})


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"
