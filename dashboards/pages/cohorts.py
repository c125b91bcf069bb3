"""The Cohorts page: engagement per cohort over time and its shifts around changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dash import html

from analytics import cohorts
from analytics.windows import TimeWindow
from dashboards import figures
from dashboards.pages.common import DataSource, _empty, _graph, _link, _table
from dashboards.state import ViewState, bucket_for


def cohort_page(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.session.cursor()
    bucket = max(bucket_for(window, 40), timedelta(hours=1))
    periods = cohorts.engagement_by_cohort(
        cursor, window, bucket, service=state.service, environment=state.environment
    )
    if not periods:
        return [_empty("No exposed subjects (decisions with cohort.id) in this range.", source)]
    impacts = source.impacts(window, state.environment)
    shown = [i for i in impacts if i.effects and state.service in (None, *i.services)]
    rows = []
    for item in shown:
        for effect in item.effects:
            if not effect.metric.startswith("engagement:"):
                continue
            test = effect.test.as_dict()
            low, high = test["ci95"]
            rows.append(
                [
                    _link(item.change.change_id, "/changes", state, change=item.change.change_id),
                    item.change.flag_key, effect.service, effect.metric.split(":", 1)[1],
                    f"{test['before']['rate']:.1%} of {test['before']['n']:,}",
                    f"{test['after']['rate']:.1%} of {test['after']['n']:,}",
                    f"{test['difference']:+.1%} [{low:+.1%}, {high:+.1%}]",
                    f"{effect.p_adjusted:.3g}", "yes" if effect.counts else "no",
                ]
            )  # fmt: skip
    family = impacts[0].family if impacts else None
    note = (
        f"p adjusted ({family.correction}) over all {family.tests} tests of the changes in "
        "this range, as on the Policy changes page; a shift counts at adjusted p < 0.05 when "
        "it is at least its minimum effect."
        if family else ""
    )  # fmt: skip
    return [
        _graph(figures.cohort_figure(periods, shown), "cohorts-engagement"),
        html.H3("Engagement shifts around changes"),
        html.P(note, className="fl-note"),
        _table(
            [
                "change",
                "flag",
                "service",
                "cohort",
                "before",
                "after",
                "shift [95% CI]",
                "p adjusted",
                "counts",
            ],
            rows or [["-", "no change had enough exposed subjects", "", "", "", "", "", "", ""]],
            "cohorts-shifts",
        ),
    ]
