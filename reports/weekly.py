"""The weekly metrics report: one ISO week against the week before, as data.

:func:`build_weekly` gathers every figure of the report as JSON-ready data ("this week | last
week | change" wherever a figure has a previous value); :mod:`.render` turns it into Markdown and
self-contained HTML. The changes, mutations and drift sections are produced by the same code as
``flaglens analyze`` over the same range, so the numbers agree.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics.analyses import Query, json_ready
from analytics.budgets import bad_events_since, budget_series, budget_status
from analytics.cohorts import cohort_shifts
from analytics.contract_health import violation_rates
from analytics.errors import InvalidWindow
from analytics.latency import latency_percentiles
from analytics.session import Session
from analytics.slo import SLO
from analytics.volume import decision_volume
from analytics.windows import TimeWindow

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(text: str) -> TimeWindow:
    """``2026-W47`` → Monday 00:00 UTC to the next Monday."""
    match = _WEEK.match(text.strip())
    if match is None:
        raise InvalidWindow(f"week {text!r} is not an ISO week like 2026-W47")
    try:
        monday = datetime.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError as exc:
        raise InvalidWindow(f"week {text!r}: {exc}") from exc
    start = monday.replace(tzinfo=UTC)
    return TimeWindow(start, start + timedelta(days=7))


def last_complete_week(now: datetime | None = None) -> str:
    """The ISO week before the current one (UTC)."""
    now = now or datetime.now(UTC)
    year, week, _ = (now - timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def _change(this: float | None, last: float | None) -> float | None:
    if this is None or last is None:
        return None
    return this - last


def _volume(cursor: duckdb.DuckDBPyConnection, week: TimeWindow) -> dict[str, Any]:
    this = decision_volume(cursor, week)[0]
    last = decision_volume(cursor, week.previous())[0]
    return {
        "this": this.as_dict() | {"total": this.accepted + this.rejected},
        "last": last.as_dict() | {"total": last.accepted + last.rejected},
        "change": {
            "accepted": this.accepted - last.accepted,
            "rejected": this.rejected - last.rejected,
            "acceptance_rate": _change(this.acceptance_rate, last.acceptance_rate),
        },
        "daily": [
            b.as_dict()
            for b in decision_volume(
                cursor, TimeWindow(week.start - timedelta(days=7), week.end), timedelta(days=1)
            )
        ],
    }


def _violations(cursor: duckdb.DuckDBPyConnection, week: TimeWindow) -> list[dict[str, Any]]:
    this = {(r.service, r.contract): r for r in violation_rates(cursor, week)}
    last = {(r.service, r.contract): r for r in violation_rates(cursor, week.previous())}
    rows = []
    for key in sorted(set(this) | set(last), key=lambda k: (str(k[0]), str(k[1]))):
        now_row, before = this.get(key), last.get(key)
        rejected_now = now_row.rejected if now_row else 0
        rejected_before = before.rejected if before else 0
        if not rejected_now and not rejected_before:
            continue
        rows.append(
            {
                "service": key[0],
                "contract": key[1],
                "this": {"rejected": rejected_now, "rate": now_row.rate if now_row else 0.0},
                "last": {"rejected": rejected_before, "rate": before.rate if before else 0.0},
                "change": {"rejected": rejected_now - rejected_before},
            }
        )
    return rows


def _slos(
    cursor: duckdb.DuckDBPyConnection, week: TimeWindow, slos: list[SLO]
) -> list[dict[str, Any]]:
    rows = []
    for slo in slos:
        status = budget_status(cursor, slo, week.end)
        budget = status.budget_events
        consumed = {}
        for name, window in (("this", week), ("last", week.previous())):
            _total, bad = bad_events_since(cursor, slo, window.start, window.end)
            consumed[name] = bad / budget if budget else None
        missed = []
        points = budget_series(cursor, slo, week, timedelta(days=1))
        previous_total = previous_bad = 0
        for point in points:
            total, bad = point.total - previous_total, point.bad - previous_bad
            previous_total, previous_bad = point.total, point.bad
            if total and (total - bad) / total < slo.objective:
                day = point.time - timedelta(days=1)
                missed.append({"day": day.date().isoformat(), "sli": (total - bad) / total})
        rows.append(
            {
                "slo": slo.name,
                "service": slo.service,
                "objective": slo.objective,
                "remaining_at_week_end": status.remaining,
                "state_at_week_end": status.state,
                "this": {"budget_consumed": consumed["this"]},
                "last": {"budget_consumed": consumed["last"]},
                "change": {"budget_consumed": _change(consumed["this"], consumed["last"])},
                "missed_days": missed,
            }
        )
    return rows


def _latency(cursor: duckdb.DuckDBPyConnection, week: TimeWindow) -> list[dict[str, Any]]:
    this = {r.group["service"]: r for r in latency_percentiles(cursor, week)}
    last = {r.group["service"]: r for r in latency_percentiles(cursor, week.previous())}
    rows = []
    for service in sorted(set(this) | set(last), key=str):
        now_row, before = this.get(service), last.get(service)

        def figures(row: Any) -> dict[str, Any] | None:
            if row is None:
                return None
            return {"count": row.count, "p50_ms": row.p50, "p95_ms": row.p95, "p99_ms": row.p99}

        a, b = figures(now_row), figures(before)
        rows.append(
            {
                "service": service,
                "this": a,
                "last": b,
                "change": {
                    k: _change(a[k] if a else None, b[k] if b else None)
                    for k in ("p50_ms", "p95_ms", "p99_ms")
                },
            }
        )
    return rows


def _cohorts(cursor: duckdb.DuckDBPyConnection, week: TimeWindow) -> list[dict[str, Any]]:
    rows = []
    for shift in cohort_shifts(cursor, week.previous(), week):
        test = shift.test
        rows.append(
            {
                "cohort": shift.cohort,
                "this": {"exposed": shift.exposed_after, "rate": test.rate_after if test else None},
                "last": {
                    "exposed": shift.exposed_before,
                    "rate": test.rate_before if test else None,
                },
                "change": {
                    "rate": test.difference if test else None,
                    "ci95": [test.ci_low, test.ci_high] if test else None,
                    "p_value": test.p_value if test else None,
                    "p_adjusted": shift.p_adjusted,
                    "correction": shift.correction,
                    "significant": shift.significant,
                },
            }
        )
    return rows


def build_weekly(session: Session, week_name: str) -> dict[str, Any]:
    """Every figure of the weekly report for ``week_name``, JSON-ready."""
    week = parse_week(week_name)
    cursor = session.cursor()
    query = Query(window=week)
    report = {
        "week": week_name,
        "from": week.start.isoformat(),
        "to": week.end.isoformat(),
        "previous": {"from": week.previous().start.isoformat(), "to": week.start.isoformat()},
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "decisions": _volume(cursor, week),
        "contract_violations": _violations(cursor, week),
        "slos": _slos(cursor, week, list(session.config.slos)),
        "latency": _latency(cursor, week),
        # the same rows as `flaglens analyze NAME --format json` for the week
        "changes": session.analyze("changes", query),
        "mutations": session.analyze("mutations", query),
        "drift": session.analyze("drift", query),
        "cohorts": _cohorts(cursor, week),
    }
    data: dict[str, Any] = json_ready(report)
    return data


def write_weekly(report: dict[str, Any], out: Path) -> list[Path]:
    """Write report.json, report.md and report.html under ``out``; returns their paths."""
    from reports.render import render_html, render_markdown

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md", out / "report.html"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(render_markdown(report), encoding="utf-8")
    paths[2].write_text(render_html(report), encoding="utf-8")
    return paths
