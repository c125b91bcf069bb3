"""The Contracts page: violation rates per contract and the quarantined records."""

from __future__ import annotations

import json
from typing import Any

from dash import html

from analytics import contract_health
from analytics.windows import TimeWindow
from dashboards import figures
from dashboards.pages.common import DataSource, _graph, _link, _pct, _table
from dashboards.state import ViewState, bucket_for

QUARANTINE_PAGE_SIZE = 20


def contract_page(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.session.cursor()
    rows = contract_health.violations(
        cursor, window, bucket=bucket_for(window, 60), service=state.service,
        environment=state.environment,
    )  # fmt: skip
    rates = contract_health.violation_rates(cursor, window, service=state.service)
    offset = (state.page - 1) * QUARANTINE_PAGE_SIZE
    records = cursor.execute(
        "SELECT quarantined_at, service_name, event_name, contract_id, contract_version, errors, "
        "record FROM quarantine WHERE coalesce(time, quarantined_at) >= $start "
        "AND coalesce(time, quarantined_at) < $end "
        "AND ($service IS NULL OR service_name = $service) "
        "ORDER BY quarantined_at DESC, request_id DESC LIMIT $limit OFFSET $offset",
        {
            "start": window.start,
            "end": window.end,
            "service": state.service,
            "limit": QUARANTINE_PAGE_SIZE,
            "offset": offset,
        },
    ).fetchall()
    figure = (
        figures.violations_figure(rows)
        if rows
        else figures.empty_figure("No contract violations in this range")
    )
    pager = html.Div(
        [
            _link("← newer", "/contracts", state, page=max(1, state.page - 1))
            if state.page > 1
            else html.Span(""),
            html.Span(f" page {state.page} "),
            _link("older →", "/contracts", state, page=state.page + 1)
            if len(records) == QUARANTINE_PAGE_SIZE
            else html.Span(""),
        ],
        id="quarantine-pager",
    )
    return [
        _graph(figure, "contracts-violations"),
        _table(
            ["service", "contract", "accepted", "rejected", "violation rate"],
            [
                [r.service, r.contract, f"{r.accepted:,}", f"{r.rejected:,}", _pct(r.rate)]
                for r in rates
            ],
            "contracts-rates",
        ),
        html.H3("Quarantined records"),
        pager,
        _table(
            ["quarantined", "service", "event", "contract", "errors", "record"],
            [
                [
                    at.strftime("%Y-%m-%d %H:%M:%S"),
                    service,
                    event,
                    f"{contract or '-'}@{version or '-'}",
                    "; ".join(
                        f"{e.get('pointer', '')}: {e.get('message', '')}"
                        for e in json.loads(errors)
                    ),
                    html.Details([html.Summary("show"), html.Pre(_pretty(record))]),
                ]
                for at, service, event, contract, version, errors, record in records
            ]
            or [["-", "", "", "", "nothing quarantined in this range", ""]],
            "quarantine-table",
        ),
    ]


def _pretty(record: str) -> str:
    return json.dumps(json.loads(record), indent=2, sort_keys=True)
