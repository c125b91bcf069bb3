"""Alert rules as code: the rules file, and what each kind of rule finds in the store.

Each rule kind turns the store at one instant into *instances*: label sets whose condition holds
now, each with a measured value. The evaluator (:mod:`alerts.evaluator`) tracks
them over time by fingerprint.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from analytics.errors import ConfigError, InvalidWindow
from analytics.session import Session
from analytics.windows import TimeWindow, parse_duration

DEFAULT_RULES_FILE = Path(str(resources.files("alerts").joinpath("alerts.toml")))
KINDS = ("contract_violations", "unauthorized_mutation", "drift", "budget_burn")


@dataclass(frozen=True, slots=True)
class Receiver:
    url: str | None  # None: notifications stay queued in alert_outbox
    group_by: tuple[str, ...] = ("alertname",)
    repeat_interval: timedelta = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    kind: str
    window: timedelta = timedelta(minutes=10)
    threshold: float | None = None
    rate: float | None = None
    for_: timedelta = timedelta(0)
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertConfig:
    receiver: Receiver
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Instance:
    """One label set for which a rule's condition holds now."""

    labels: dict[str, str]
    value: float
    page: str  # dashboard path the notification links to, e.g. "/contracts?service=x"


def _duration(entry: dict[str, Any], key: str, where: str, default: timedelta) -> timedelta:
    if key not in entry:
        return default
    try:
        return parse_duration(str(entry[key]))
    except InvalidWindow as exc:
        raise ConfigError(f"{where}: {key}: {exc}") from exc


def _strings(value: Any, where: str, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{where}: {key} must be a table of strings")
    return {str(k): v for k, v in value.items()}


def load_alert_config(
    path: str | Path = DEFAULT_RULES_FILE, *, webhook: str | None = None
) -> AlertConfig:
    """Read and check an alert rules file; errors name the file, the rule and the field.

    ``webhook``, when given, replaces the file's receiver URL (``--alert-webhook``).
    """
    where = Path(path)
    try:
        document = tomllib.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read alert rules {where}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    receiver_entry = document.get("receiver", {})
    url = receiver_entry.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http", "https"))):
        raise ConfigError(f"{where} [receiver]: url must be an http(s) URL")
    group_by = receiver_entry.get("group_by", ["alertname"])
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise ConfigError(f"{where} [receiver]: group_by must be a list of label names")
    receiver = Receiver(
        webhook or url,
        tuple(group_by),
        _duration(receiver_entry, "repeat_interval", f"{where} [receiver]", timedelta(hours=4)),
    )
    rules = []
    for i, entry in enumerate(document.get("rule", [])):
        label = f"{where} [[rule]] #{i + 1}"
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{label}: name must be a non-empty string")
        label = f"{label} ({name})"
        kind = entry.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{label}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        unknown = set(entry) - {"name", "kind", "window", "threshold", "rate", "for",
                                "severity", "labels", "annotations"}  # fmt: skip
        if unknown:
            raise ConfigError(f"{label}: unknown field(s) {', '.join(sorted(unknown))}")
        threshold, rate = entry.get("threshold"), entry.get("rate")
        if kind == "contract_violations" and threshold is None and rate is None:
            raise ConfigError(f"{label}: give a threshold (count) or a rate")
        for key, value in (("threshold", threshold), ("rate", rate)):
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ConfigError(f"{label}: {key} must be a number >= 0")
        rules.append(
            Rule(
                name=name,
                kind=kind,
                window=_duration(entry, "window", label, timedelta(minutes=10)),
                threshold=threshold,
                rate=rate,
                for_=_duration(entry, "for", label, timedelta(0)),
                severity=str(entry.get("severity", "warning")),
                labels=_strings(entry.get("labels", {}), label, "labels"),
                annotations=_strings(entry.get("annotations", {}), label, "annotations"),
            )
        )
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: rule names must be unique")
    if not rules:
        raise ConfigError(f"{where}: no [[rule]] tables")
    return AlertConfig(receiver, tuple(rules))


def _contract_violations(
    cursor: duckdb.DuckDBPyConnection, rule: Rule, now: datetime, _session: Session
) -> list[Instance]:
    # arrival time: an alert is about what flaglens is receiving now
    rows = cursor.execute(
        """
        WITH bad AS (
            SELECT coalesce(service_name, '?') AS service, coalesce(contract_id, event_name, '?')
                   AS contract, count(*) AS n
            FROM quarantine WHERE quarantined_at > $start AND quarantined_at <= $now GROUP BY ALL
        ), good AS (
            SELECT service_name AS service, contract_id AS contract, count(*) AS n FROM decisions
            WHERE ingested_at > $start AND ingested_at <= $now GROUP BY ALL
        )
        SELECT bad.service, bad.contract, bad.n, coalesce(good.n, 0)
        FROM bad LEFT JOIN good USING (service, contract)
        """,
        {"start": now - rule.window, "now": now},
    ).fetchall()
    found = []
    for service, contract, bad, good in rows:
        rate = bad / (bad + good)
        hit = (rule.threshold is not None and bad >= rule.threshold) or (
            rule.rate is not None and rate >= rule.rate
        )
        if hit:
            found.append(
                Instance(
                    {"service": service, "contract": contract},
                    float(bad),
                    f"/contracts?from=now-1h&service={service}",
                )
            )
    return found


def _unauthorized(
    cursor: duckdb.DuckDBPyConnection, rule: Rule, now: datetime, session: Session
) -> list[Instance]:
    from analytics.governance import unauthorized_mutations

    found = unauthorized_mutations(
        cursor, TimeWindow(now - rule.window, now), session.config.rules, session.config.keys
    )
    return [
        Instance(
            {
                "change_id": m.change_id,
                "flag": m.flag_key,
                "environment": m.environment,
                "actor": m.actor,
                "reason": ",".join(m.reasons),
            },
            1.0,
            f"/changes?change={m.change_id}",
        )
        for m in found
    ]


def _drift(
    cursor: duckdb.DuckDBPyConnection, rule: Rule, now: datetime, session: Session
) -> list[Instance]:
    from analytics.governance import drift

    found = drift(
        cursor, TimeWindow(now - rule.window, now), session.config.rules, session.config.keys
    )
    return [
        Instance(
            {
                "flag": d.flag_key,
                "environment": d.environment,
                "version": d.version,
                "service": ",".join(d.services),
            },
            float(d.count),
            "/mutations",
        )
        for d in found
    ]


def _budget_burn(
    cursor: duckdb.DuckDBPyConnection, _rule: Rule, now: datetime, session: Session
) -> list[Instance]:
    from analytics.budgets import budget_status

    found = []
    for slo in session.config.slos:
        status = budget_status(cursor, slo, now)
        if status.state in ("page", "ticket"):
            found.append(
                Instance(
                    {"slo": slo.name, "service": slo.service, "severity": status.state},
                    float(status.burn_rates.get("1h") or 0.0),
                    f"/budgets?slo={slo.name}",
                )
            )
    return found


CONDITIONS: dict[str, Callable[[duckdb.DuckDBPyConnection, Rule, datetime, Session],
                               list[Instance]]] = {
    "contract_violations": _contract_violations,
    "unauthorized_mutation": _unauthorized,
    "drift": _drift,
    "budget_burn": _budget_burn,
}  # fmt: skip
