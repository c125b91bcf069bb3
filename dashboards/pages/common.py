"""What the dashboard pages share: the data source they read from and small html helpers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from dash import dcc, html

from analytics import governance, impact
from analytics.governance import Rules
from analytics.slo import SLO, load_slos
from analytics.windows import TimeWindow
from contracts.signing import KeyRing
from dashboards.state import ViewState

IMPACT_CACHE_SECONDS = 30.0


@dataclass
class DataSource:
    """Where pages read from: the store, and the configuration files analytics need."""

    cursor_factory: Callable[[], duckdb.DuckDBPyConnection]
    slo_file: Path
    governance_file: Path
    key_file: Path
    otlp_url: str = "http://127.0.0.1:4318"
    _impacts: dict[Any, tuple[float, list[impact.ChangeImpact]]] = field(
        default_factory=dict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def slos(self) -> list[SLO]:
        return load_slos(self.slo_file)

    def rules(self) -> Rules:
        return governance.load_rules(self.governance_file)

    def keys(self) -> KeyRing:
        return KeyRing.load(self.key_file) if self.key_file.exists() else KeyRing({})

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
        result = impact.change_impacts(
            self.cursor_factory(), rounded, self.slos(), self.rules(), self.keys(),
            environment=environment,
        )  # fmt: skip
        with self._lock:
            self._impacts = {k: v for k, v in self._impacts.items() if now - v[0] < 60}
            self._impacts[key] = (now, result)
        return result


def _link(text: str, path: str, state: ViewState, **changes: Any) -> dcc.Link:
    return dcc.Link(text, href=path + state.to_query(**changes))


def _table(headers: list[str], rows: list[list[Any]], table_id: str | None = None) -> html.Table:
    head = html.Thead(html.Tr([html.Th(h) for h in headers]))
    body = html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows])
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
