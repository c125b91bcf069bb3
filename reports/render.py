"""The weekly report as Markdown and as one self-contained HTML file (plotly.js inlined once).

Both renderings walk the same sections of the report data, so they show the same figures.
Values from the data (service, SLO, flag names) are escaped for where they land: HTML in
report.html, Plotly's pseudo-HTML in its figures, Markdown and HTML in report.md.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from analytics.labels import markdown_text, plotly_labels

Table = tuple[list[str], list[list[str]]]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _pp(value: float | None) -> str:
    """A change of a share, in percentage points."""
    return "-" if value is None else f"{value * 100:+.2f} pp"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _delta_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _signed(value: int | None) -> str:
    return "-" if value is None else f"{value:+,}"


def _family(changes: list[dict[str, Any]]) -> str:
    family = next((c["family"] for c in changes if c.get("family")), None)
    if family is None:
        return "no tests"
    return f"{family['tests']} tests, {family['correction']}"


def _effect_text(effect: dict[str, Any]) -> str:
    """``checkout latency:p95 +127 ms (worse)``; shares in percentage points."""
    estimate = effect["estimate"]
    if effect["metric"].startswith("latency"):
        amount = f"{estimate:+.0f} ms"
    else:
        amount = _pp(estimate)
    return f"{effect['service']} {effect['metric']} {amount} ({effect['direction']})"


def _others(change: dict[str, Any]) -> str:
    parts = []
    if change["confounded_with"]:
        parts.append("confounded with " + ", ".join(change["confounded_with"]))
    if change["adjusted_for"]:
        parts.append("windows exclude " + ", ".join(change["adjusted_for"]))
    return "; ".join(parts) or "-"


def _sections(report: dict[str, Any]) -> list[tuple[str, str, Table]]:
    """(title, note, table) per section, in report order."""
    d = report["decisions"]
    sections = [
        (
            "Decision volume and acceptance",
            "Decision events received; accepted = kept their telemetry contract.",
            (
                ["figure", "this week", "last week", "change"],
                [
                    ["accepted", _int(d["this"]["accepted"]), _int(d["last"]["accepted"]),
                     _signed(d["change"]["accepted"])],
                    ["quarantined", _int(d["this"]["rejected"]), _int(d["last"]["rejected"]),
                     _signed(d["change"]["rejected"])],
                    ["acceptance rate", _pct(d["this"]["acceptance_rate"]),
                     _pct(d["last"]["acceptance_rate"]), _pp(d["change"]["acceptance_rate"])],
                ],
            ),
        ),
        (
            "Contract violations",
            "Records rejected at the door, by service and contract.",
            (
                ["service", "contract", "this week", "last week", "change", "rate this week"],
                [[r["service"] or "-", r["contract"] or "-", _int(r["this"]["rejected"]),
                  _int(r["last"]["rejected"]), _signed(r["change"]["rejected"]),
                  _pct(r["this"]["rate"])] for r in report["contract_violations"]]
                or [["-", "no violations in either week", "", "", "", ""]],
            ),
        ),
        (
            "Error budgets",
            "Budget consumed = bad events in the week / the SLO window's budget at week end.",
            (
                ["SLO", "objective", "consumed this week", "last week", "change",
                 "remaining at week end", "state", "days missed"],
                [[r["slo"], _pct(r["objective"]), _pct(r["this"]["budget_consumed"]),
                  _pct(r["last"]["budget_consumed"]), _pp(r["change"]["budget_consumed"]),
                  _pct(r["remaining_at_week_end"]), r["state_at_week_end"],
                  ", ".join(m["day"] for m in r["missed_days"]) or "none"]
                 for r in report["slos"]],
            ),
        ),
        (
            "Latency (server spans, ms)",
            "Percentiles per service; change = this week minus last week.",
            (
                ["service", "p50", "p95", "p99", "p99 last week", "p50 change", "p99 change"],
                [[r["service"], _ms((r["this"] or {}).get("p50_ms")),
                  _ms((r["this"] or {}).get("p95_ms")), _ms((r["this"] or {}).get("p99_ms")),
                  _ms((r["last"] or {}).get("p99_ms")), _delta_ms(r["change"]["p50_ms"]),
                  _delta_ms(r["change"]["p99_ms"])] for r in report["latency"]],
            ),
        ),
        (
            "Policy changes, ranked by impact",
            "Before/after comparison of the services evaluating each changed flag. Effects "
            "counted: adjusted p < 0.05 over every test of the week's changes "
            f"({_family(report['changes'])}) and at least the minimum effect.",
            (
                ["rank", "change", "time", "flag", "env", "verdict", "authorized",
                 "effects counted", "budget burned", "other changes"],
                [[str(c["rank"]), c["change"]["change_id"], c["change"]["time"][:16],
                  c["change"]["flag_key"], c["change"]["environment"], c["verdict"],
                  "yes" if c["change"]["authorized"] else "NO",
                  "; ".join(_effect_text(e) for e in c["effects"] if e["counts"]) or "-",
                  "; ".join(f"{b['slo']} {_pct(b['share_of_budget'])}" for b in c["budgets"]
                            if b["bad"]) or "-",
                  _others(c)]
                 for c in report["changes"] if c["verdict"] != "not enough data"],
            ),
        ),
        (
            "Unauthorized mutations",
            "Changes that failed a governance check, with the reason.",
            (
                ["change", "time", "flag", "env", "actor", "reasons"],
                [[m["change_id"], m["time"][:16], m["flag_key"], m["environment"], m["actor"],
                  ", ".join(m["reasons"])] for m in report["mutations"]]
                or [["-", "", "", "", "", "none"]],
            ),
        ),
        (
            "Drift",
            "Decisions served under a version no authorized change produced.",
            (
                ["flag", "env", "version", "decisions", "first seen", "last seen", "services"],
                [[x["flag_key"], x["environment"], x["version"], _int(x["count"]),
                  x["first_seen"][:16], x["last_seen"][:16], ", ".join(x["services"])]
                 for x in report["drift"]] or [["-", "", "", "", "", "", "none"]],
            ),
        ),
        (
            "Cohort engagement",
            "Engaged / exposed subjects over the week; two-proportion test against last week, "
            "p adjusted over every cohort (Benjamini-Hochberg).",
            (
                ["cohort", "this week", "last week", "change", "95% CI", "p", "p adjusted",
                 "significant"],
                [[r["cohort"], _pct(r["this"]["rate"]), _pct(r["last"]["rate"]),
                  _pp(r["change"]["rate"]),
                  "-" if r["change"]["ci95"] is None else
                  f"[{_pp(r['change']['ci95'][0])}, {_pp(r['change']['ci95'][1])}]",
                  "-" if r["change"]["p_value"] is None else f"{r['change']['p_value']:.3g}",
                  "-" if r["change"]["p_adjusted"] is None else
                  f"{r['change']['p_adjusted']:.3g}",
                  "yes" if r["change"]["significant"] else "no"] for r in report["cohorts"]],
            ),
        ),
    ]  # fmt: skip
    return sections


def _title(report: dict[str, Any]) -> str:
    return f"flaglens weekly report {report['week']}"


def _period(report: dict[str, Any]) -> str:
    start = datetime.fromisoformat(report["from"])
    end = datetime.fromisoformat(report["to"])
    return f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (UTC), compared with the week before"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# {_title(report)}", "", _period(report), ""]
    for title, note, (headers, rows) in _sections(report):
        lines += [f"## {title}", "", note, ""]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" for _ in headers) + "|")
        for row in rows:
            lines.append("| " + " | ".join(markdown_text(cell) for cell in row) + " |")
        lines.append("")
    return "\n".join(lines)


def _figures(report: dict[str, Any]) -> list[go.Figure]:
    daily = report["decisions"]["daily"]
    start = report["from"]
    this = [d for d in daily if d["time"] >= start]
    last = [d for d in daily if d["time"] < start]
    volume = go.Figure(
        [
            go.Bar(name="this week", x=[d["time"][:10] for d in this],
                   y=[d["accepted"] + d["rejected"] for d in this]),
            go.Bar(name="last week (same weekday)", x=[d["time"][:10] for d in this],
                   y=[d["accepted"] + d["rejected"] for d in last][: len(this)]),
        ]
    )  # fmt: skip
    volume.update_layout(title="Decision events per day", barmode="group")
    budgets = go.Figure(
        [
            go.Bar(name=name, x=plotly_labels([r["slo"] for r in report["slos"]]),
                   y=[r[key]["budget_consumed"] for r in report["slos"]])
            for name, key in (("this week", "this"), ("last week", "last"))
        ]
    )  # fmt: skip
    budgets.update_layout(title="Error budget consumed", barmode="group", yaxis_tickformat=".0%")
    latency = go.Figure(
        [
            go.Bar(name=name, x=plotly_labels([r["service"] for r in report["latency"]]),
                   y=[(r[key] or {}).get("p99_ms") for r in report["latency"]])
            for name, key in (("this week", "this"), ("last week", "last"))
        ]
    )  # fmt: skip
    latency.update_layout(title="p99 latency (ms)", barmode="group")
    for figure in (volume, budgets, latency):
        figure.update_layout(template="plotly_white", height=340, margin={"t": 50, "b": 40})
    return [volume, budgets, latency]


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    esc: Callable[[str], str] = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 24px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; }
th { background: #f3f4f6; }
.note { color: #555; }
.figures > div { max-width: 1100px; }
"""


def render_html(report: dict[str, Any]) -> str:
    """One file that opens offline: plotly.js is inlined once, figures reference it."""
    figures = "".join(
        f.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"figure-{i}",
            config={"responsive": True},
            default_width="100%",
        )
        for i, f in enumerate(_figures(report))
    )
    sections = "".join(
        f"<h2>{html.escape(title)}</h2><p class='note'>{html.escape(note)}</p>"
        + _html_table(headers, rows)
        for title, note, (headers, rows) in _sections(report)
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(_title(report))}</title><style>{_STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(_title(report))}</h1><p>{html.escape(_period(report))}</p>"
        f"<div class='figures'>{figures}</div>{sections}</body></html>\n"
    )
