"""The Policy changes page: changes ranked by impact, a service's timeline, a change's details."""

from __future__ import annotations

from typing import Any

from dash import html

from analytics import budgets, cohorts, impact, latency
from analytics.effects import Effect
from analytics.quantiles import QuantileTest, label
from analytics.stats import ShiftTest
from analytics.windows import TimeWindow
from dashboards import figures
from dashboards.pages.common import DataSource, _empty, _graph, _label, _link, _pct, _table
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
    content.append(html.P(_family_note(impacts), className="fl-note"))
    content.append(
        _table(
            [
                "rank",
                "change",
                "time",
                "flag",
                "env",
                "version",
                "actor",
                "verdict",
                "other changes",
                "authorized",
            ],
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
                    _others(i),
                    "yes" if i.change.authorized else "NO: " + ", ".join(i.change.reasons),
                ]
                for i in impacts
            ],
            "changes-table",
        )
    )
    return content


def _family_note(impacts: list[impact.ChangeImpact]) -> str:
    family = impacts[0].family if impacts else None
    if family is None or not family.tests:
        return "No change had enough data for a test."
    name = {"bh": "Benjamini–Hochberg", "holm": "Holm"}.get(family.correction, family.correction)
    return (
        f"p-values adjusted together ({name}) over all {family.tests} tests of the "
        f"{family.changes} changes ranked here; an effect counts at adjusted p < 0.05 when it "
        "is at least its minimum effect."
    )


def _others(item: impact.ChangeImpact) -> str:
    """Other changes on the same services: confounded with, or left out of the windows."""
    parts = []
    if item.confounded_with:
        parts.append("confounded with " + ", ".join(item.confounded_with))
    if item.adjusted_for:
        parts.append("windows exclude " + ", ".join(item.adjusted_for))
    return "; ".join(parts) or "-"


def _span(window: TimeWindow | None) -> str:
    return "-" if window is None else f"{window.start:%m-%d %H:%M} – {window.end:%m-%d %H:%M}"


def _effect_row(effect: Effect) -> list[str]:
    test = effect.test
    if isinstance(test, ShiftTest):
        before, after = f"median {test.median_before:.1f} ms", f"median {test.median_after:.1f} ms"
        change_text = f"{test.shift:+.1f} ms (HL)"
        interval = f"[{test.ci_low:+.1f}, {test.ci_high:+.1f}] ms"
        minimum = f"{effect.minimum_effect:.1f} ms"
    elif isinstance(test, QuantileTest):
        name = effect.metric.split(":", 1)[1]
        before, after = f"{name} {test.before:.1f} ms", f"{name} {test.after:.1f} ms"
        change_text = f"{test.difference:+.1f} ms"
        interval = (
            "unbounded" if test.ci_low is None or test.ci_high is None
            else f"[{test.ci_low:+.1f}, {test.ci_high:+.1f}] ms"
        )  # fmt: skip
        minimum = f"{effect.minimum_effect:.1f} ms"
    else:
        before = f"{test.rate_before:.2%} of {test.n_before:,}"
        after = f"{test.rate_after:.2%} of {test.n_after:,}"
        change_text = f"{test.difference:+.2%}"
        interval = f"[{test.ci_low:+.2%}, {test.ci_high:+.2%}]"
        minimum = f"{effect.minimum_effect:.2%}"
    return [effect.service, effect.metric, before, after, change_text, interval,
            f"{effect.p_adjusted:.3g}", minimum, "yes" if effect.counts else "no"]  # fmt: skip


def _bound(value: float | None) -> str:
    return "∞" if value is None else f"{value:.1f}"


def _percentile_rows(item: impact.ChangeImpact) -> list[list[str]]:
    rows = []
    for effect in item.effects:
        if effect.metric != "latency":
            continue
        for test in effect.percentiles:
            rows.append(
                [effect.service, label(test.quantile),
                 f"{test.before:.1f} [{_bound(test.before_low)}, {_bound(test.before_high)}]",
                 f"{test.after:.1f} [{_bound(test.after_low)}, {_bound(test.after_high)}]",
                 f"{test.difference:+.1f}"]
            )  # fmt: skip
    return rows


def _change_details(item: impact.ChangeImpact) -> html.Div:
    change = item.change
    discounted = ", ".join(f"{a.approver} ({a.reason})" for a in change.discounted_approvals)
    facts = [
        ("change", change.change_id),
        ("flag", f"{change.flag_key} ({change.module}) in {change.environment}"),
        ("versions", f"{change.previous_version or '-'} → {change.version}"),
        ("actor", change.actor),
        ("action", change.action),
        ("approvals", ", ".join(change.approvers) or "none"),
        ("discounted approvals", discounted or "none"),
        ("ticket", change.ticket or "-"),
        ("signature", f"{change.signature.value} (key {change.key_id or '-'})"),
        ("authorized", "yes" if change.authorized else "NO: " + "; ".join(change.details)),
        ("verdict", item.verdict),
        ("other changes", _others(item)),
    ]
    windows = f"{_span(item.before)} vs {_span(item.after)}"
    per_service = [
        f"{service}: {_span(w.before)} vs {_span(w.after)}"
        for service, w in sorted(item.windows.items())
        if (w.before, w.after) != (item.before, item.after)
    ]
    if per_service:
        windows += "; shortened for other changes on " + "; ".join(per_service)
    family = item.family
    p_label = f"p ({family.correction}, {family.tests} tests)" if family else "p"
    return html.Div(
        [
            html.H3(["Change ", _label(change.change_id)]),
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
                    p_label,
                    "minimum effect",
                    "counts",
                ],
                [_effect_row(e) for e in item.effects]
                or [["-", "no comparison possible", "", "", "", "", "", "", ""]],
                "change-effects",
            ),
            html.H4("Latency percentiles (ms, with 95% intervals)"),
            _table(
                ["service", "percentile", "before", "after", "change"],
                _percentile_rows(item) or [["-", "", "", "", ""]],
                "change-percentiles",
            ),
            html.H4("Error budget burned in the change's burn window"),
            _table(
                ["SLO", "window", "bad events", "share of budget", "burn rate"],
                [
                    [
                        b.slo,
                        _span(b.window),
                        f"{b.bad:,}",
                        _pct(b.share_of_budget),
                        "-" if b.burn_rate is None else f"{b.burn_rate:.2f}",
                    ]
                    for b in item.budgets
                ]
                or [["-", "", "", "", ""]],
            ),
        ],
        id="change-details",
        className="fl-details",
    )
