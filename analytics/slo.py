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

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analytics.errors import ConfigError, InvalidWindow
from analytics.windows import TimeWindow, parse_duration

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


def _field(entry: dict[str, Any], name: str, kind: type, where: str, default: Any = ...) -> Any:
    if name not in entry:
        if default is ...:
            raise ConfigError(f"{where}: missing required field {name!r}")
        return default
    value = entry[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}: {name} must be a {kind.__name__}, got {value!r}")
    return value


def parse_slo(entry: dict[str, Any], where: str) -> SLO:
    """One ``[[slo]]`` table → :class:`SLO`; raises :class:`ConfigError` naming the field."""
    known = {
        "name", "service", "environment", "sli", "objective", "window", "calendar",
        "timezone", "threshold_ms", "source", "budgeting", "min_events", "description",
    }  # fmt: skip
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    name = _field(entry, "name", str, where)
    where = f"{where} ({name})"
    sli = _field(entry, "sli", str, where)
    if sli not in ("availability", "latency"):
        raise ConfigError(f"{where}: sli must be 'availability' or 'latency', got {sli!r}")
    objective = _field(entry, "objective", float, where)
    if not 0.0 < objective < 1.0:
        raise ConfigError(f"{where}: objective must be between 0 and 1 (exclusive): {objective}")
    budgeting = _field(entry, "budgeting", str, where, "occurrences")
    if budgeting != "occurrences":
        raise ConfigError(f"{where}: budgeting {budgeting!r} is not supported (occurrences)")
    calendar = _field(entry, "calendar", str, where, None)
    timezone = _field(entry, "timezone", str, where, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: unknown timezone {timezone!r}") from exc
    if calendar is not None:
        if "window" in entry:
            raise ConfigError(f"{where}: give either window (rolling) or calendar, not both")
        if calendar not in ("week", "month"):
            raise ConfigError(f"{where}: calendar must be 'week' or 'month', got {calendar!r}")
        window = timedelta(days=7 if calendar == "week" else 30)
    else:
        try:
            window = parse_duration(_field(entry, "window", str, where, "28d"))
        except InvalidWindow as exc:
            raise ConfigError(f"{where}: window: {exc}") from exc
        if window < timedelta(hours=1):
            raise ConfigError(f"{where}: window must be at least 1h")
    threshold = _field(entry, "threshold_ms", float, where, None)
    if sli == "latency" and (threshold is None or threshold <= 0):
        raise ConfigError(f"{where}: a latency SLI needs threshold_ms > 0")
    source = _field(entry, "source", str, where, "spans")
    if source not in ("spans", "metrics"):
        raise ConfigError(f"{where}: source must be 'spans' or 'metrics', got {source!r}")
    slo = SLO(
        name=name,
        service=_field(entry, "service", str, where),
        environment=_field(entry, "environment", str, where, None),
        sli=sli,
        objective=objective,
        window=window,
        calendar=calendar,
        timezone=timezone,
        threshold_ms=threshold,
        source=source,
        min_events=_field(entry, "min_events", int, where, 100),
        description=_field(entry, "description", str, where, ""),
    )
    fastest = max(rule.factor for rule in slo.burn_rules())
    if fastest * slo.error_budget > 1.0:
        raise ConfigError(
            f"{where}: objective {objective} leaves a budget of {slo.error_budget:.4g}; the "
            f"page threshold burns at {fastest:.3g}x, i.e. an error ratio of "
            f"{fastest * slo.error_budget:.3g} > 1, so it could never fire. Use an objective of "
            f"at least {1 - 1 / fastest:.4f} or a longer window."
        )
    return slo


def load_slos(path: str | Path = DEFAULT_SLO_FILE) -> list[SLO]:
    """Read and validate an SLO file."""
    where = Path(path)
    try:
        document = tomllib.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read SLO file {where}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    entries = document.get("slo", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: no [[slo]] tables")
    slos = [parse_slo(entry, f"{where} [[slo]] #{i + 1}") for i, entry in enumerate(entries)]
    names = [slo.name for slo in slos]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: duplicate SLO name(s): {', '.join(duplicates)}")
    return slos
