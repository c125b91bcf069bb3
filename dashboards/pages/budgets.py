"""The Error budgets page: each SLO's remaining budget, burn rates and budget over time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from analytics import budgets
from analytics.windows import TimeWindow
from dashboards import figures
from dashboards.pages.common import DataSource, _empty, _graph, _link, _num, _pct, _table
from dashboards.state import ViewState, bucket_for


def budget_page(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.session.cursor()
    slos = [s for s in source.session.config.slos if state.service in (None, s.service)]
    if not slos:
        return [_empty("No SLO matches this filter; SLOs are defined in the SLO file.", source)]
    statuses = budgets.budget_report(cursor, slos, window.end)
    if all(s.total == 0 for s in statuses):
        return [_empty("No server spans for these SLOs in their windows.", source)]
    content: list[Any] = [
        _table(
            [
                "SLO",
                "window",
                "events",
                "bad",
                "remaining",
                "5m",
                "30m",
                "1h",
                "6h",
                "3d",
                "time to exhaustion",
                "state",
            ],
            [
                [
                    _link(s.slo.name, "/budgets", state, slo=s.slo.name),
                    f"{s.window.start:%m-%d %H:%M} – {s.window.end:%m-%d %H:%M}",
                    f"{s.total:,}",
                    f"{s.bad:,}",
                    _pct(s.remaining),
                    *[_num(s.burn_rates[k]) for k in budgets.BURN_WINDOWS],
                    _duration(s.time_to_exhaustion),
                    s.state,
                ]
                for s in statuses
            ],
            "budgets-table",
        )
    ]
    chosen = [s for s in statuses if s.slo.name == state.slo] or statuses[:2]
    for status in chosen:
        points = budgets.budget_series(cursor, status.slo, window, bucket_for(window))
        content.append(
            _graph(
                figures.budget_figure(points, f"{status.slo.name}: budget remaining"),
                f"budget-{status.slo.name}",
            )
        )
        content.append(_graph(figures.burn_rate_figure(status), f"burn-{status.slo.name}"))
    return content


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    hours = value.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 72 else f"{hours / 24:.1f} d"
