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
from typing import Annotated, Literal, get_args
from urllib.parse import urlencode

import duckdb
from pydantic import AfterValidator, BaseModel, Field, model_validator

from analytics.config_files import STRICT, Duration, read_toml, validate
from analytics.errors import ConfigError
from analytics.session import Session
from analytics.windows import TimeWindow

DEFAULT_RULES_FILE = Path(str(resources.files("alerts").joinpath("alerts.toml")))
Kind = Literal["contract_violations", "unauthorized_mutation", "drift", "budget_burn"]
KINDS: tuple[str, ...] = get_args(Kind)


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


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


class _ReceiverEntry(BaseModel):
    model_config = STRICT

    url: Annotated[str, AfterValidator(_http_url)] | None = None
    group_by: list[str] = ["alertname"]
    repeat_interval: Duration = timedelta(hours=4)


class _RuleEntry(BaseModel):
    model_config = STRICT

    name: str = Field(min_length=1)
    kind: Kind
    window: Duration = timedelta(minutes=10)
    threshold: float | None = Field(None, ge=0)
    rate: float | None = Field(None, ge=0)
    for_: Duration = Field(timedelta(0), alias="for")
    severity: str = "warning"
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}

    @model_validator(mode="after")
    def _has_condition(self) -> _RuleEntry:
        if self.kind == "contract_violations" and self.threshold is None and self.rate is None:
            raise ValueError("a contract_violations rule needs a threshold (count) or a rate")
        return self


class _AlertFile(BaseModel):
    model_config = STRICT

    receiver: _ReceiverEntry = _ReceiverEntry()
    rule: list[_RuleEntry] = []


def load_alert_config(
    path: str | Path = DEFAULT_RULES_FILE, *, webhook: str | None = None, text: str | None = None
) -> AlertConfig:
    """Read and check an alert rules file; errors name the file, the rule and the field.

    ``webhook``, when given, replaces the file's receiver URL (``--alert-webhook``). ``text``,
    when given, is the file's content (sent to the read API for a dry run); ``path`` then only
    names it in errors.
    """
    where = Path(path)
    if text is None:
        raw = read_toml(where, "alert rules")
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    document = validate(_AlertFile, raw, str(where))
    if not document.rule:
        raise ConfigError(f"{where}: no [[rule]] tables")
    names = [r.name for r in document.rule]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"{where}: rule names must be unique; given more than once: {', '.join(duplicates)}"
        )
    entry = document.receiver
    receiver = Receiver(webhook or entry.url, tuple(entry.group_by), entry.repeat_interval)
    rules = tuple(
        Rule(
            name=r.name,
            kind=r.kind,
            window=r.window,
            threshold=r.threshold,
            rate=r.rate,
            for_=r.for_,
            severity=r.severity,
            labels=dict(r.labels),
            annotations=dict(r.annotations),
        )
        for r in document.rule
    )
    return AlertConfig(receiver, rules)


def _page(path: str, query: dict[str, str]) -> str:
    """A dashboard link with its query values URL-encoded (a name may hold ``&``, ``#``,
    spaces or markup: it must arrive as one value, not as more of the URL)."""
    return f"{path}?{urlencode(query)}"


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
                    _page("/contracts", {"from": "now-1h", "service": service}),
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
            _page("/changes", {"change": m.change_id}),
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
                    _page("/budgets", {"slo": slo.name}),
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
