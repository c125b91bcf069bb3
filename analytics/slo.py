"""Service-level objectives as code: the SLO file and its validation.

The file is TOML, one ``[[slo]]`` table per objective, modelled on OpenSLO (README § SLOs)::

    [[slo]]
    name = "checkout-availability"
    service = "checkout"
    environment = "prod"          # optional: every environment when absent
    sli = "availability"          # good = spans not in error / all server spans
    objective = 0.99
    window = "28d"                # rolling; or  calendar = "week" | "month"  with  timezone
    budgeting = "occurrences"     # the only method flaglens computes

    [[slo]]
    name = "checkout-latency"
    service = "checkout"
    sli = "latency"               # good = server spans at or under threshold_ms / all
    threshold_ms = 300
    objective = 0.95

``source = "spans"`` (the default) counts server spans; ``source = "metrics"`` counts the
observations in ``http.server.request.duration`` histograms (delta or cumulative; a latency
threshold is compared with the bucket bounds, so put a bound at the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, model_validator

from analytics.config_files import STRICT, Duration, read_toml, validate
from analytics.errors import ConfigError
from analytics.windows import TimeWindow

# shipped as package data; a file-system path because users are told where it is
DEFAULT_SLO_FILE = Path(str(resources.files("analytics").joinpath("slos.toml")))
_REFERENCE_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class BurnRule:
    """One multi-window burn-rate condition (Google SRE workbook, chapter 5)."""

    severity: str  # 'page' | 'ticket'
    long: timedelta
    short: timedelta
    factor: float


# The workbook's thresholds, stated for a 30-day window: spending 2 % of the budget in 1 h,
# 5 % in 6 h (page) or 10 % in 3 d (ticket). Factors are rescaled to each SLO's own window.
_RULES_30D = (
    ("page", timedelta(hours=1), timedelta(minutes=5), 14.4),
    ("page", timedelta(hours=6), timedelta(minutes=30), 6.0),
    ("ticket", timedelta(days=3), timedelta(hours=6), 1.0),
)


@dataclass(frozen=True, slots=True)
class SLO:
    name: str
    service: str
    environment: str | None
    sli: str  # 'availability' | 'latency'
    objective: float
    window: timedelta  # rolling length (for calendar windows: the calendar period's length)
    calendar: str | None = None  # 'week' | 'month'
    timezone: str = "UTC"
    threshold_ms: float | None = None
    source: str = "spans"  # 'spans' | 'metrics'
    min_events: int = 100  # below this many events in a long window, no alert state is given
    description: str = ""

    @property
    def error_budget(self) -> float:
        """Allowed share of bad events."""
        return 1.0 - self.objective

    def burn_rules(self) -> tuple[BurnRule, ...]:
        scale = self.window / _REFERENCE_WINDOW
        return tuple(
            BurnRule(severity, long, short, factor * scale)
            for severity, long, short, factor in _RULES_30D
        )

    def compliance_window(self, at: datetime) -> TimeWindow:
        """The window the budget is counted over, ending at ``at``."""
        if self.calendar is None:
            return TimeWindow(at - self.window, at)
        local = at.astimezone(ZoneInfo(self.timezone))
        if self.calendar == "week":
            start = (local - timedelta(days=local.weekday())).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
        else:
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return TimeWindow(start.astimezone(at.tzinfo), at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": self.service,
            "environment": self.environment,
            "sli": self.sli,
            "objective": self.objective,
            "window": _format_duration(self.window),
            "calendar": self.calendar,
            "timezone": self.timezone,
            "threshold_ms": self.threshold_ms,
            "source": self.source,
        }


def _format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _objective(value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError("must be between 0 and 1 (exclusive)")
    return value


def _rolling_window(value: timedelta) -> timedelta:
    if value < timedelta(hours=1):
        raise ValueError("must be at least 1h")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown timezone; give an IANA name such as 'Europe/Berlin'") from None
    return value


class _SLOEntry(BaseModel):
    """One ``[[slo]]`` table as written."""

    model_config = STRICT

    name: str = Field(min_length=1)
    service: str = Field(min_length=1)
    environment: str | None = None
    sli: Literal["availability", "latency"]
    objective: Annotated[float, AfterValidator(_objective)]
    window: Annotated[Duration, AfterValidator(_rolling_window)] | None = None
    calendar: Literal["week", "month"] | None = None
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    threshold_ms: float | None = Field(None, gt=0)
    source: Literal["spans", "metrics"] = "spans"
    budgeting: Literal["occurrences"] = "occurrences"  # the only method flaglens computes
    min_events: int = Field(100, ge=0)
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> _SLOEntry:
        if self.calendar is not None and self.window is not None:
            raise ValueError("give either window (rolling) or calendar, not both")
        if self.sli == "latency" and self.threshold_ms is None:
            raise ValueError("a latency SLI needs threshold_ms > 0")
        return self

    def to_slo(self) -> SLO:
        if self.calendar is not None:
            window = timedelta(days=7 if self.calendar == "week" else 30)
        else:
            window = self.window or timedelta(days=28)
        return SLO(
            name=self.name,
            service=self.service,
            environment=self.environment,
            sli=self.sli,
            objective=self.objective,
            window=window,
            calendar=self.calendar,
            timezone=self.timezone,
            threshold_ms=self.threshold_ms,
            source=self.source,
            min_events=self.min_events,
            description=self.description,
        )


class _SLOFile(BaseModel):
    model_config = STRICT

    slo: list[dict[str, Any]] = []  # each entry is checked on its own, to name it


def _check_can_fire(slo: SLO, where: str) -> None:
    fastest = max(rule.factor for rule in slo.burn_rules())
    if fastest * slo.error_budget > 1.0:
        raise ConfigError(
            f"{where}: objective {slo.objective} leaves a budget of {slo.error_budget:.4g}; the "
            f"page threshold burns at {fastest:.3g}x, i.e. an error ratio of "
            f"{fastest * slo.error_budget:.3g} > 1, so it could never fire. Use an objective of "
            f"at least {1 - 1 / fastest:.4f} or a longer window."
        )


def parse_slo(entry: dict[str, Any], where: str) -> SLO:
    """One ``[[slo]]`` table → :class:`SLO`; raises :class:`ConfigError` naming ``where``
    (the file and entry), the field, the value and what is allowed."""
    name = entry.get("name")
    if isinstance(name, str) and name:
        where = f"{where} ({name})"
    slo = validate(_SLOEntry, entry, where).to_slo()
    _check_can_fire(slo, where)
    return slo


def load_slos(path: str | Path = DEFAULT_SLO_FILE) -> list[SLO]:
    """Read and validate an SLO file (ConfigError naming the file, entry and field)."""
    where = Path(path)
    entries = validate(_SLOFile, read_toml(where, "SLO file"), str(where)).slo
    if not entries:
        raise ConfigError(f"{where}: no [[slo]] tables")
    slos = [parse_slo(entry, f"{where} [[slo]] #{i + 1}") for i, entry in enumerate(entries)]
    names = [slo.name for slo in slos]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: duplicate SLO name(s): {', '.join(duplicates)}")
    return slos
