"""Every setting of `flaglens serve`, declared once: the ingest settings and the surfaces'.

:class:`ServeSettings` combines :class:`~ingest.settings.IngestSettings` (receivers, limits,
writer) with what the application runs beside them: the dashboards, the analytics files and the
alert rules. Each field is a flag (``--<name>`` with dashes), a ``FLAGLENS_<NAME>`` environment
variable and a row of ``docs/configuration.md``; :func:`setting_specs` says how, and
:mod:`flaglens.cli.flags` and :mod:`flaglens.settings_docs` build the flags and the reference
from it. ``analyze``, ``report`` and ``alerts evaluate`` read the analytics and alert files
through the same fields (:class:`AnalyticsFiles`, :class:`AlertFiles`).
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import annotated_types
from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from analytics.config_files import Duration
from ingest.settings import ENV_PREFIX, IngestSettings, Settings, setting, shown

if TYPE_CHECKING:
    from analytics.session import AnalyticsConfig

DEFAULT_DASHBOARD_PORT = 8050

_ANALYTICS = "analytics files"
_ALERTS = "alerts"
_DASHBOARDS = "dashboards"
_READ_API = "read API"


class AnalyticsFiles(Settings):
    """Where the analytics read their configuration (every verb that analyses)."""

    slos: Path | None = setting(
        None,
        description="The SLO file: objectives, SLIs and windows of the error budgets.",
        group=_ANALYTICS,
        shown_default="the built-in analytics/slos.toml",
    )
    governance: Path | None = setting(
        None,
        description="The governance rules: who may change which module in which environment, "
        "and the approvals each needs.",
        group=_ANALYTICS,
        shown_default="the built-in contracts/governance.toml",
    )
    keys: Path | None = setting(
        None,
        description="The signing key file: the control planes' public keys, each bound to "
        "environments. Without one every signature counts as made with an unknown key.",
        group=_ANALYTICS,
        shown_default="keys.toml beside the database, when there",
    )

    def analytics_config(self, db: Path | None) -> AnalyticsConfig:
        """The analytics configuration these files make (``db``: where keys.toml may sit)."""
        # imported here, as below: the analyses' and the alert rules' modules (numpy, pyarrow)
        # would otherwise load with every verb's flags, those that never analyse too
        from analytics.session import AnalyticsConfig

        return AnalyticsConfig(
            slo_file=self.slos, governance_file=self.governance, key_file=self.keys, db=db
        )


class AlertFiles(Settings):
    """The alert rules and where their notifications go (`serve`, `alerts evaluate`)."""

    alert_rules: Path | None = setting(
        None,
        description="The alert rules file: which conditions fire, for how long, with which labels.",
        group=_ALERTS,
        shown_default="the built-in alerts/alerts.toml",
    )
    alert_webhook: str | None = setting(
        None,
        description="The Alertmanager-compatible receiver URL notifications are posted to; it "
        "replaces the rules file's [receiver] url.",
        group=_ALERTS,
        metavar="URL",
        shown_default="the rules file's receiver url, else none (notifications stay queued)",
    )

    @property
    def rules_file(self) -> Path:
        """The alert rules file to read: the one given, else the built-in one."""
        from alerts.rules import DEFAULT_RULES_FILE

        return self.alert_rules or DEFAULT_RULES_FILE


class DashboardSettings(Settings):
    """The Dash app beside the receivers."""

    dashboard_port: int = setting(
        DEFAULT_DASHBOARD_PORT,
        description="The read listener's port, on --host: the dashboards and the read API "
        "(/api/v1); 0 picks a free one, announced on start.",
        group=_DASHBOARDS,
        ge=0,
        le=65535,
    )
    no_dashboards: bool = setting(
        False,
        description="Do not serve the dashboards. With --no-alerts too, the periodic round "
        "(which records closed windows for the dashboards) does not run.",
        group=_DASHBOARDS,
    )


class ReadApiSettings(Settings):
    """The read API beside the dashboards (docs/api.md)."""

    no_api: bool = setting(
        False,
        description="Do not serve the read API. The CLI's read verbs and the Python client then "
        "cannot read this server's database while it runs.",
        group=_READ_API,
    )
    api_query_timeout: float = setting(
        10.0,
        description="Seconds one read API query (an analysis, a report, a batch of an export) "
        "may run before it is interrupted and answered 503.",
        group=_READ_API,
        metavar="SECONDS",
        gt=0,
    )
    api_max_queries: int = setting(
        2,
        description="Read API queries that run at once; more wait up to 5 s for a slot, then "
        "are answered 503. Each runs on DuckDB's threads beside the writer.",
        group=_READ_API,
        ge=1,
        le=64,
    )
    api_export_max_rows: int = setting(
        1_000_000,
        description="Most rows one export sends; a larger one is refused (413) unless it asks "
        "for its first rows with limit=.",
        group=_READ_API,
        gt=0,
    )
    api_nice: int = setting(
        10,
        description="Nice value of the threads that run read API queries and dashboard pages "
        "(Linux): when ingest wants the cores they yield them; 0 runs them alike.",
        group=_READ_API,
        ge=0,
        le=19,
    )


class ServeSettings(AlertFiles, AnalyticsFiles, ReadApiSettings, DashboardSettings, IngestSettings):
    """Everything `flaglens serve` can be told."""

    alert_interval: Duration = setting(
        timedelta(seconds=30),
        description="How often the periodic round runs: alert rules evaluated and delivered, "
        "closed windows recorded for the dashboards. A duration such as 30s or 5m.",
        group=_ALERTS,
        metavar="DURATION",
        gt=timedelta(0),
    )
    no_alerts: bool = setting(False, description="Do not evaluate alert rules.", group=_ALERTS)
    no_ingest: bool = setting(
        False,
        description="Run no receivers and no writer: a reader on a store others write (a "
        "DuckLake), serving the dashboards and the read API from it and taking its turn at the "
        "periodic round and the lake's upkeep (the rounds lease).",
        group=_DASHBOARDS,
    )


# --- how each field is shown ----------------------------------------------------------------

_TEST_GROUP = "for tests and demonstrations only"
_METAVARS: dict[type, str] = {
    int: "N",
    float: "N",
    Path: "PATH",
    str: "TEXT",
    timedelta: "DURATION",
}
_SUMMARY = re.compile(r"(.+?[.!?])(?=\s+[A-Z]|\s*$)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One setting as the command line and the reference show it."""

    name: str
    flag: str  # --name-with-dashes
    variables: tuple[str, ...]  # FLAGLENS_NAME first, then the fallbacks it reads
    group: str
    metavar: str | None  # None: a switch (a flag without a value)
    default: str  # as documented
    default_is_value: bool  # the default is a value one could type (not a description of one)
    default_note: str | None  # the default in other words, e.g. "16 MiB"
    description: str
    allowed: str | None  # the constraints in words, e.g. "0 to 65535"
    test_only: bool

    @property
    def summary(self) -> str:
        """The description's first sentence (the ``--help`` line)."""
        match = _SUMMARY.match(self.description.strip())
        return match.group(1) if match else self.description.strip()


def flag_of(name: str) -> str:
    """The flag of a field: ``http_port`` → ``--http-port``."""
    return "--" + name.replace("_", "-")


def variable_of(name: str) -> str:
    """The environment variable of a field: ``http_port`` → ``FLAGLENS_HTTP_PORT``."""
    return ENV_PREFIX + name.upper()


def _variables(name: str, field: FieldInfo) -> tuple[str, ...]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        others = [c for c in alias.choices if isinstance(c, str) and c not in (name,)]
        return tuple(dict.fromkeys([variable_of(name), *(c.upper() for c in others)]))
    return (variable_of(name),)


def _base_type(annotation: Any) -> Any:
    """``int | None`` → int; ``Annotated[timedelta, ...]`` → timedelta."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(rest[0]) if len(rest) == 1 else annotation
    return annotation


def render_value(value: Any) -> str:
    """A value as one would type it: ``none``, ``false``, ``30s``, ``4318``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds == 0:
            return "0s"
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if seconds >= size and seconds % size == 0:
                return f"{int(seconds // size)}{unit}"
        return f"{int(seconds * 1000)}ms"
    return str(value)


def _size_note(name: str, value: Any) -> str | None:
    """``16 MiB`` beside a byte count of 16777216 (fields named ``*_bytes``)."""
    if name.endswith("_bytes") and isinstance(value, int):
        for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if value >= size and value % size == 0:
                return f"{value // size} {unit}"
    return None


def _allowed(field: FieldInfo, base: Any) -> str | None:
    if typing.get_origin(base) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(base))
    low: Any = None
    high: Any = None
    low_open = high_open = False
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high, high_open = item.lt, True
    if base is int:
        if low_open and low is not None:
            low, low_open = low + 1, False
        if high_open and high is not None:
            high, high_open = high - 1, False
    if low is not None and high is not None and not (low_open or high_open):
        return f"{render_value(low)} to {render_value(high)}"
    parts = []
    if low is not None:
        parts.append(f"{'above' if low_open else 'at least'} {render_value(low)}")
    if high is not None:
        parts.append(f"{'below' if high_open else 'at most'} {render_value(high)}")
    return ", ".join(parts) or None


def _spec(name: str, field: FieldInfo) -> SettingSpec:
    how = shown(field)
    base = _base_type(field.annotation)
    switch = base is bool
    default_is_value = False
    if how is not None and how.default is not None:
        default = how.default
    elif field.default_factory is not None:
        default = "computed when the server starts"  # a test asks for shown_default instead
    else:
        default, default_is_value = render_value(field.default), field.default is not None
    metavar = None
    if not switch:
        metavar = (how.metavar if how else None) or _METAVARS.get(base, "VALUE")
    return SettingSpec(
        name=name,
        flag=flag_of(name),
        variables=_variables(name, field),
        group=_TEST_GROUP if how and how.test_only else (how.group if how else "other"),
        metavar=metavar,
        default=default,
        default_is_value=default_is_value,
        default_note=_size_note(name, field.default),
        description=field.description or "",
        allowed=None if switch else _allowed(field, base),
        test_only=bool(how and how.test_only),
    )


def setting_specs(model: type[Settings]) -> tuple[SettingSpec, ...]:
    """The model's settings grouped in the order the groups first appear, test-only last."""
    specs = [_spec(name, field) for name, field in model.model_fields.items()]
    order = list(dict.fromkeys(s.group for s in specs if not s.test_only))
    order.append(_TEST_GROUP)
    return tuple(sorted(specs, key=lambda s: order.index(s.group)))
