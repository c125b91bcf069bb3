"""The Policy changes page: changes ranked by impact, a service's timeline, a change's details."""

from __future__ import annotations

from typing import Any

from dash import html

from analytics import budgets, cohorts, impact, latency
from analytics.windows import TimeWindow
from dashboards import figures
from dashboards.pages.common import DataSource, _empty, _graph, _link, _pct, _table
from dashboards.state import ViewState, bucket_for


def changes(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.session.cursor()
    slos = source.session.config.slos
    impacts = source.impacts(window, state.environment)
    if not impacts:
        return [_empty("No policy.change events in this time range.", source)]
    services = sorted({s for i in impacts for s in i.services})
    service = state.service if state.service in services else (services[0] if services else None)
    content: list[Any] = []
    selected = next((i for i in impacts if i.change.change_id == state.change), None)
    if selected is not None:
        content.append(_change_details(selected))
    if service is not None:
        bucket = bucket_for(window, 96)
        env = state.environment or "prod"
        series = latency.request_series(cursor, window, bucket, service=service, environment=env)
        burn: list[tuple[object, float | None]] = []
        service_slos = [s for s in slos if s.service == service and s.sli == "availability"]
        if service_slos:
            points = budgets.budget_series(cursor, service_slos[0], window, bucket)
            burn = [(p.time - bucket, p.burn_rate) for p in points]
        engaged = cohorts.engagement_by_cohort(
            cursor, window, bucket, service=service, environment=env
        )
        per_time: dict[object, list[int]] = {}
        for period in engaged:
            acc = per_time.setdefault(period.period, [0, 0])
            acc[0] += period.engaged
            acc[1] += period.exposed
        engagement = [(t, e / n if n else None) for t, (e, n) in sorted(per_time.items())]
        mine = [i for i in impacts if service in i.services or not i.services]
        content.append(
            html.Div(
                [html.Span("Service: ")]
                + [html.Span([_link(s, "/changes", state, service=s), " "]) for s in services]
            )
        )
        content.append(
            _graph(
                figures.change_timeline(
                    series,
                    [i for i in mine if i.change.environment == env],
                    service=service,
                    burn=burn,
                    engagement=engagement,
                ),
                "changes-timeline",
            )
        )
    content.append(html.H3("Changes, ranked by impact"))
    content.append(
        _table(
            ["rank", "change", "time", "flag", "env", "version", "actor", "verdict", "authorized"],
            [
                [
                    i.rank,
                    _link(i.change.change_id, "/changes", state, change=i.change.change_id),
                    i.change.time.strftime("%Y-%m-%d %H:%M"),
                    i.change.flag_key,
                    i.change.environment,
                    i.change.version,
                    i.change.actor,
                    i.verdict,
                    "yes" if i.change.authorized else "NO: " + ", ".join(i.change.reasons),
                ]
                for i in impacts
            ],
            "changes-table",
        )
    )
    return content


def _change_details(item: impact.ChangeImpact) -> html.Div:
    change = item.change
    facts = [
        ("change", change.change_id),
        ("flag", f"{change.flag_key} ({change.module}) in {change.environment}"),
        ("versions", f"{change.previous_version or '-'} → {change.version}"),
        ("actor", change.actor),
        ("action", change.action),
        ("approvals", ", ".join(change.approvers) or "none"),
        ("ticket", change.ticket or "-"),
        ("signature", f"{change.signature.value} (key {change.key_id or '-'})"),
        ("authorized", "yes" if change.authorized else "NO: " + "; ".join(change.details)),
        ("verdict", item.verdict),
    ]
    windows = "-"
    if item.before and item.after:
        windows = (
            f"{item.before.start:%m-%d %H:%M} – {item.before.end:%m-%d %H:%M} vs "
            f"{item.after.start:%m-%d %H:%M} – {item.after.end:%m-%d %H:%M}"
        )
    rows = []
    for effect in item.effects:
        test = effect.test.as_dict()
        if "hodges_lehmann_shift" in test:
            before = f"median {test['median_before']:.1f} ms"
            after = f"median {test['median_after']:.1f} ms"
            change_text = f"{test['hodges_lehmann_shift']:+.1f} ms"
            low, high = test["ci95"]
            interval = f"[{low:+.1f}, {high:+.1f}] ms"
        else:
            before = f"{test['before']['rate']:.2%} of {test['before']['n']:,}"
            after = f"{test['after']['rate']:.2%} of {test['after']['n']:,}"
            change_text = f"{test['difference']:+.2%}"
            low, high = test["ci95"]
            interval = f"[{low:+.2%}, {high:+.2%}]"
        rows.append(
            [effect.service, effect.metric, before, after, change_text, interval,
             f"{effect.p_adjusted:.3g}", "yes" if effect.significant else "no"]
        )  # fmt: skip
    return html.Div(
        [
            html.H3(f"Change {change.change_id}"),
            html.Dl([part for k, v in facts for part in (html.Dt(k), html.Dd(v))]),
            html.P(f"Before / after windows: {windows}"),
            _table(
                [
                    "service",
                    "metric",
                    "before",
                    "after",
                    "change",
                    "95% CI",
                    "p (Holm)",
                    "significant",
                ],
                rows or [["-", "no comparison possible", "", "", "", "", "", ""]],
            ),
            html.H4("Error budget burned since the change"),
            _table(
                ["SLO", "bad events", "share of budget"],
                [[b.slo, f"{b.bad_since_change:,}", _pct(b.share_of_budget)] for b in item.budgets]
                or [["-", "", ""]],
            ),
        ],
        id="change-details",
        className="fl-details",
    )
