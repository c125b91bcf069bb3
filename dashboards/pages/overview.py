"""The Overview page: decision rate, acceptance, SLOs, latest changes, mutations, violations."""

from __future__ import annotations

from typing import Any

from dash import html

from analytics import budgets, contract_health, governance, volume
from analytics.windows import TimeWindow
from dashboards import figures
from dashboards.pages.common import DataSource, _empty, _graph, _link, _num, _pct, _table
from dashboards.state import ViewState, bucket_for


def overview(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.session.cursor()
    total = volume.decision_volume(
        cursor, window, service=state.service, environment=state.environment
    )[0]
    if total.accepted + total.rejected == 0:
        return [_empty("No decision events in this time range.", source)]
    rate = (total.accepted + total.rejected) / window.duration.total_seconds()
    buckets = volume.decision_volume(
        cursor, window, bucket_for(window), service=state.service, environment=state.environment
    )
    slos = [s for s in source.session.config.slos if state.service in (None, s.service)]
    statuses = budgets.budget_report(cursor, slos, window.end)
    rules, keys = source.session.config.rules, source.session.config.keys
    impacts = source.impacts(window, state.environment)
    latest = sorted(impacts, key=lambda i: i.change.time, reverse=True)[:8]
    bad = governance.unauthorized_mutations(
        cursor, window, rules, keys, environment=state.environment
    )
    rates = contract_health.violation_rates(cursor, window, service=state.service)
    return [
        html.Div(
            [
                html.Div([html.H3(f"{rate:,.2f}"), html.P("decisions / s")], className="fl-kpi"),
                html.Div(
                    [html.H3(_pct(total.acceptance_rate)), html.P("accepted by contract")],
                    className="fl-kpi",
                    id="kpi-acceptance",
                ),
                html.Div(
                    [html.H3(f"{len(bad)}"), html.P("unauthorized changes")], className="fl-kpi"
                ),
                html.Div(
                    [html.H3(f"{total.rejected:,}"), html.P("quarantined decisions")],
                    className="fl-kpi",
                ),
            ],
            className="fl-kpis",
        ),
        _graph(figures.volume_figure(buckets), "overview-volume"),
        html.H3(_link("SLOs by remaining budget", "/budgets", state)),
        _table(
            ["SLO", "SLI", "objective", "remaining", "1h burn", "state"],
            [
                [
                    _link(s.slo.name, "/budgets", state, slo=s.slo.name),
                    s.slo.sli,
                    f"{s.slo.objective:.2%}",
                    _pct(s.remaining),
                    _num(s.burn_rates.get("1h")),
                    s.state,
                ]
                for s in statuses
            ],
            "overview-slos",
        ),
        html.H3(_link("Latest changes", "/changes", state)),
        _table(
            ["time", "change", "flag", "env", "verdict", "authorized"],
            [
                [
                    i.change.time.strftime("%Y-%m-%d %H:%M"),
                    _link(i.change.change_id, "/changes", state, change=i.change.change_id),
                    i.change.flag_key,
                    i.change.environment,
                    i.verdict,
                    "yes" if i.change.authorized else "NO",
                ]
                for i in latest
            ],
            "overview-changes",
        ),
        html.H3(_link("Unauthorized mutations", "/mutations", state)),
        _table(
            ["time", "change", "actor", "reasons"],
            [
                [m.time.strftime("%Y-%m-%d %H:%M"), m.change_id, m.actor, ", ".join(m.reasons)]
                for m in bad[:5]
            ],
        ),
        html.H3(_link("Contract violations", "/contracts", state)),
        _table(
            ["service", "contract", "accepted", "rejected", "violation rate"],
            [
                [r.service, r.contract, f"{r.accepted:,}", f"{r.rejected:,}", _pct(r.rate)]
                for r in rates
                if r.rejected
            ]
            or [["-", "no violations in this range", "", "", ""]],
        ),
    ]
