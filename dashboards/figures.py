"""Plotly figures from analytics results: pure functions, no database, tested directly.

Colours follow the conventions users bring from Grafana: red for regressions and firing
alerts, green for improvements and OK, grey for no effect, orange for unauthorized.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analytics.budgets import BudgetPoint, BudgetStatus
from analytics.cohorts import CohortPeriod
from analytics.contract_health import ViolationRow
from analytics.impact import ChangeImpact
from analytics.labels import hover, plotly_text
from analytics.latency import RequestBucket
from analytics.volume import VolumeBucket

VERDICT_COLOURS = {
    "regression": "#d62728",
    "confounded": "#9467bd",
    "improvement": "#2ca02c",
    "no detectable effect": "#7f7f7f",
    "not enough data": "#bcbd22",
}
UNAUTHORIZED_COLOUR = "#ff7f0e"
_LAYOUT = {"template": "plotly_white", "margin": {"l": 50, "r": 20, "t": 40, "b": 40}}


def empty_figure(message: str) -> go.Figure:
    """A blank chart that says why it is blank."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, font={"size": 14})
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT)
    return figure


def volume_figure(buckets: Sequence[VolumeBucket]) -> go.Figure:
    """Accepted and quarantined decisions per bucket, stacked."""
    figure = go.Figure(
        [
            go.Bar(x=[b.time for b in buckets], y=[b.accepted for b in buckets], name="accepted"),
            go.Bar(
                x=[b.time for b in buckets],
                y=[b.rejected for b in buckets],
                name="quarantined",
                marker_color="#d62728",
            ),
        ]
    )
    figure.update_layout(barmode="stack", title="Decision events", **_LAYOUT)
    return figure


def budget_figure(points: Sequence[BudgetPoint], title: str) -> go.Figure:
    """Budget remaining against the ideal straight-line spend."""
    times = [p.time for p in points]
    figure = go.Figure(
        [
            go.Scatter(x=times, y=[p.remaining for p in points], name="remaining", mode="lines"),
            go.Scatter(
                x=times,
                y=[p.ideal for p in points],
                name="ideal",
                mode="lines",
                line={"dash": "dash", "color": "#7f7f7f"},
            ),
        ]
    )
    figure.add_hline(y=0, line_color="#d62728", line_width=1)
    figure.update_layout(title=plotly_text(title, 120), yaxis_tickformat=".0%", **_LAYOUT)
    return figure


def burn_rate_figure(status: BudgetStatus) -> go.Figure:
    """Burn rate per window, with each alert rule's threshold."""
    names = list(status.burn_rates)
    figure = go.Figure(
        go.Bar(x=names, y=[status.burn_rates[n] or 0.0 for n in names], name="burn rate")
    )
    for rule in status.rules:
        figure.add_hline(
            y=rule.factor,
            line_dash="dot",
            line_color="#d62728" if rule.severity == "page" else UNAUTHORIZED_COLOUR,
            annotation_text=f"{rule.severity} {rule.long}/{rule.short} ({rule.factor:.3g}x)",
        )
    figure.update_layout(title=f"Burn rates: {plotly_text(status.slo.name)}", **_LAYOUT)
    return figure


def _change_text(impact: ChangeImpact) -> str:
    change = impact.change
    authorized = "" if change.authorized else " (unauthorized)"
    confounded = f" with {', '.join(impact.confounded_with)}" if impact.confounded_with else ""
    return (
        f"{change.change_id} {change.flag_key} {change.version}: {impact.verdict}{authorized}"
        f"{confounded}"
    )


def change_timeline(
    series: Sequence[RequestBucket],
    impacts: Sequence[ChangeImpact],
    *,
    service: str,
    burn: Sequence[tuple[object, float | None]] = (),
    engagement: Sequence[tuple[object, float | None]] = (),
) -> go.Figure:
    """Stacked panels sharing time: budget burn, error rate, p95/p99, engagement; every change
    is a marker (colour by verdict, orange ring when unauthorized) in the top panel and a line
    across all panels. Markers carry the change id for click handling."""
    figure = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=("Error-budget burn rate", "Error rate", "Latency p95 / p99 (ms)",
                        "Engagement rate"),
    )  # fmt: skip
    times = [b.time for b in series]
    figure.add_trace(
        go.Scatter(x=[t for t, _ in burn], y=[v for _, v in burn], name="burn rate"), 1, 1
    )
    figure.add_trace(go.Scatter(x=times, y=[b.error_rate for b in series], name="error rate"), 2, 1)
    figure.add_trace(go.Scatter(x=times, y=[b.p95 for b in series], name="p95"), 3, 1)
    figure.add_trace(go.Scatter(x=times, y=[b.p99 for b in series], name="p99"), 3, 1)
    figure.add_trace(
        go.Scatter(x=[t for t, _ in engagement], y=[v for _, v in engagement], name="engaged"),
        4,
        1,
    )
    top = max((v or 0.0 for _, v in burn), default=1.0) or 1.0
    # one line per change across the shared x axis, set once: add_vline per change copies
    # every shape so far into each of the four panels (seconds for a day of 30 changes)
    lines = []
    for impact in impacts:
        change = impact.change
        colour = VERDICT_COLOURS[impact.verdict]
        lines.append(
            {"type": "line", "xref": "x", "yref": "paper", "x0": change.time, "x1": change.time,
             "y0": 0, "y1": 1, "line": {"color": colour, "width": 1}, "opacity": 0.6}
        )  # fmt: skip
        figure.add_trace(
            go.Scatter(
                x=[change.time],
                y=[top],
                mode="markers",
                marker={
                    "size": 14,
                    "color": colour,
                    "symbol": "diamond",
                    "line": {
                        "width": 3,
                        "color": UNAUTHORIZED_COLOUR if not change.authorized else colour,
                    },
                },
                name=plotly_text(change.change_id),
                customdata=[change.change_id],
                hovertext=plotly_text(hover(_change_text(impact)), None),
                hoverinfo="text",
                showlegend=False,
            ),
            1,
            1,
        )
    figure.update_yaxes(tickformat=".1%", row=2, col=1)
    figure.update_yaxes(tickformat=".0%", row=4, col=1)
    figure.update_layout(
        height=820, title=f"{plotly_text(service)}: changes against SLIs", shapes=lines, **_LAYOUT
    )
    return figure


def cohort_figure(periods: Sequence[CohortPeriod], impacts: Sequence[ChangeImpact]) -> go.Figure:
    """Engagement rate per cohort over time, with changes as vertical lines."""
    figure = go.Figure()
    for cohort in sorted({p.cohort for p in periods}):
        rows = [p for p in periods if p.cohort == cohort]
        figure.add_trace(
            go.Scatter(
                x=[p.period for p in rows],
                y=[p.rate for p in rows],
                name=plotly_text(cohort),
                mode="lines+markers",
                customdata=[[p.engaged, p.exposed] for p in rows],
                hovertemplate="%{y:.1%} (%{customdata[0]} of %{customdata[1]})",
            )
        )
    for impact in impacts:
        figure.add_vline(
            x=impact.change.time, line_color=VERDICT_COLOURS[impact.verdict], line_dash="dot"
        )
    figure.update_layout(title="Engaged / exposed subjects per cohort", yaxis_tickformat=".0%",
                         **_LAYOUT)  # fmt: skip
    return figure


def violations_figure(rows: Sequence[ViolationRow]) -> go.Figure:
    """Contract violations per bucket, one stacked series per service and error."""
    figure = go.Figure()
    keys = sorted({(r.service or "?", r.contract or "?", r.error) for r in rows})
    for service, contract, error in keys:
        mine = [r for r in rows if (r.service or "?", r.contract or "?", r.error) == (
            service, contract, error)]  # fmt: skip
        figure.add_trace(
            go.Bar(
                x=[r.bucket for r in mine],
                y=[r.violations for r in mine],
                name=f"{plotly_text(service)} · {plotly_text(contract)} · {plotly_text(error)}",
                hovertext=plotly_text(hover(f"{service} · {contract} · {error}"), None),
            )
        )
    figure.update_layout(barmode="stack", title="Contract violations", **_LAYOUT,
                         legend={"orientation": "h", "y": -0.2})  # fmt: skip
    return figure
