"""The Mutations & drift page: unauthorized changes and versions served without one."""

from __future__ import annotations

from typing import Any

from dash import html

from analytics import governance
from analytics.windows import TimeWindow
from dashboards.pages.common import DataSource, _link, _table
from dashboards.state import ViewState


def mutation_page(source: DataSource, state: ViewState, window: TimeWindow) -> list[Any]:
    cursor = source.session.cursor()
    rules, keys = source.session.config.rules, source.session.config.keys
    bad = governance.unauthorized_mutations(
        cursor, window, rules, keys, environment=state.environment
    )
    drifted = governance.drift(
        cursor, window, rules, keys, service=state.service, environment=state.environment
    )
    notice = []
    key_file = source.session.config.key_file
    if key_file is None or not key_file.exists():
        notice.append(
            html.P(
                f"No key file at {key_file or 'keys.toml'}: every signature counts as unknown.",
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
