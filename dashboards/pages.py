"""The dashboard pages: each a function of (data source, view state) → Dash components.

Pages query through the analytics layer (aggregation happens in DuckDB; only aggregates reach
the browser) with a fresh cursor per render, so they read while ingestion writes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
from dash import dcc, html

from analytics import budgets, cohorts, contract_health, governance, impact, latency, volume
from analytics.governance import Rules
from analytics.queries.windows import TimeWindow
from analytics.slo import SLO, load_slos
from contracts.signing import KeyRing
from dashboards import figures
from dashboards.state import ViewState, bucket_for

PAGES = {
    "/": "Overview",
    "/changes": "Policy changes",
    "/budgets": "Error budgets",
    "/cohorts": "Cohorts",
    "/mutations": "Mutations & drift",
    "/contracts": "Contracts",
}
QUARANTINE_PAGE_SIZE = 20
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


# -- overview -----------------------------------------------------------------------------


def overview(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.cursor_factory()
    total = volume.decision_volume(
        cursor, window, service=state.service, environment=state.environment
    )[0]
    if total.accepted + total.rejected == 0:
        return [_empty("No decision events in this time range.", source)]
    rate = (total.accepted + total.rejected) / window.duration.total_seconds()
    buckets = volume.decision_volume(
        cursor, window, bucket_for(window), service=state.service, environment=state.environment
    )
    slos = [s for s in source.slos() if state.service in (None, s.service)]
    statuses = budgets.budget_report(cursor, slos, window.end)
    rules, keys = source.rules(), source.keys()
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


# -- policy changes ------------------------------------------------------------------------


def changes(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.cursor_factory()
    slos = source.slos()
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


# -- error budgets -------------------------------------------------------------------------


def budget_page(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.cursor_factory()
    slos = [s for s in source.slos() if state.service in (None, s.service)]
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


# -- cohorts -------------------------------------------------------------------------------


def cohort_page(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.cursor_factory()
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
                    f"{effect.p_adjusted:.3g}", "yes" if effect.significant else "no",
                ]
            )  # fmt: skip
    return [
        _graph(figures.cohort_figure(periods, shown), "cohorts-engagement"),
        html.H3("Engagement shifts around changes"),
        _table(
            [
                "change",
                "flag",
                "service",
                "cohort",
                "before",
                "after",
                "shift [95% CI]",
                "p (Holm)",
                "significant",
            ],
            rows or [["-", "no change had enough exposed subjects", "", "", "", "", "", "", ""]],
            "cohorts-shifts",
        ),
    ]


# -- mutations & drift ---------------------------------------------------------------------


def mutation_page(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.cursor_factory()
    rules, keys = source.rules(), source.keys()
    bad = governance.unauthorized_mutations(
        cursor, window, rules, keys, environment=state.environment
    )
    drifted = governance.drift(
        cursor, window, rules, keys, service=state.service, environment=state.environment
    )
    notice = []
    if not source.key_file.exists():
        notice.append(
            html.P(
                f"No key file at {source.key_file}: every signature counts as unknown.",
                className="fl-error",
            )
        )
    return [
        *notice,
        html.H3(f"Unauthorized changes ({len(bad)})"),
        _table(
            [
                "time",
                "change",
                "flag",
                "env",
                "module",
                "actor",
                "approvals",
                "signature",
                "reasons",
            ],
            [
                [
                    m.time.strftime("%Y-%m-%d %H:%M"),
                    _link(m.change_id, "/changes", state, change=m.change_id),
                    m.flag_key,
                    m.environment,
                    m.module,
                    m.actor,
                    ", ".join(m.approvers) or "none",
                    m.signature.value,
                    "; ".join(m.details),
                ]
                for m in bad
            ]
            or [["-", "every change in this range is authorized", "", "", "", "", "", "", ""]],
            "mutations-table",
        ),
        html.H3(f"Drifted versions ({len(drifted)})"),
        _table(
            ["flag", "env", "version", "decisions", "first seen", "last seen", "services"],
            [
                [
                    d.flag_key,
                    d.environment,
                    d.version,
                    f"{d.count:,}",
                    d.first_seen.strftime("%Y-%m-%d %H:%M"),
                    d.last_seen.strftime("%Y-%m-%d %H:%M"),
                    ", ".join(d.services),
                ]
                for d in drifted
            ]
            or [
                [
                    "-",
                    "",
                    "no drift: every version served came from an authorized change",
                    "",
                    "",
                    "",
                    "",
                ]
            ],
            "drift-table",
        ),
    ]


# -- contracts -----------------------------------------------------------------------------


def contract_page(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.cursor_factory()
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


RENDERERS: dict[str, Callable[[DataSource, ViewState, TimeWindow], list[Any]]] = {
    "/": overview,
    "/changes": changes,
    "/budgets": budget_page,
    "/cohorts": cohort_page,
    "/mutations": mutation_page,
    "/contracts": contract_page,
}
