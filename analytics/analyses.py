"""The named analyses: what `flaglens analyze NAME` runs, the weekly report reuses and the read
API serves, each a function of a session and a query giving JSON-ready rows.

Rows are made JSON-ready here, once (:func:`json_ready`), so that every surface prints the same
values: a timestamp becomes its ``str()`` (``2026-11-22 10:00:00+00:00``), a tuple a list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from analytics.errors import AnalyticsError, InvalidWindow
from analytics.windows import TimeWindow

if TYPE_CHECKING:
    from analytics.session import Session


MAX_BUCKETS = 100_000
Correction = Literal["bh", "holm"]
CORRECTIONS: tuple[Correction, ...] = ("bh", "holm")
DEFAULT_CORRECTION: Final[Correction] = "bh"


@dataclass(frozen=True, slots=True)
class Query:
    """What an analysis is asked about: a window and the filters and options of `analyze`."""

    window: TimeWindow
    service: str | None = None
    environment: str | None = None
    bucket: timedelta | None = None
    """Time bucket for series (None: one row for the whole window where that applies)."""
    by: tuple[str, ...] = ("service",)
    """Latency grouping."""
    compare: bool = False
    """Cohorts: test each cohort against the previous window of equal length."""
    rates: bool = False
    """Contracts: violation rates per service and contract instead of each error."""
    correction: str = DEFAULT_CORRECTION
    """Changes and cohort shifts: the correction over the family of tests ranked together,
    ``bh`` (Benjamini–Hochberg, false discovery rate) or ``holm`` (family-wise error rate)."""

    def __post_init__(self) -> None:
        if self.bucket is not None:
            if self.bucket <= timedelta(0):
                raise InvalidWindow(f"bucket {self.bucket} is not a positive duration")
            buckets = self.window.duration / self.bucket
            if buckets > MAX_BUCKETS:
                raise InvalidWindow(
                    f"bucket {self.bucket} splits the window into {buckets:,.0f} buckets, more "
                    f"than {MAX_BUCKETS:,}; choose a wider bucket or a shorter window"
                )
        if self.correction not in CORRECTIONS:
            raise AnalyticsError(
                f"correction {self.correction!r} is not one of {', '.join(CORRECTIONS)}"
            )


def json_ready(value: Any) -> Any:
    """``value`` with every non-JSON type replaced by its ``str()`` (tuples become lists)."""
    if isinstance(value, Mapping):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _budgets(session: Session, query: Query) -> list[dict[str, Any]]:
    from analytics.budgets import budget_report

    slos = [s for s in session.config.slos if query.service in (None, s.service)]
    return [s.as_dict() for s in budget_report(session.cursor(), slos, query.window.end)]


def _latency(session: Session, query: Query) -> list[dict[str, Any]]:
    from analytics.latency import latency_percentiles

    rows = latency_percentiles(
        session.cursor(),
        query.window,
        by=query.by,
        bucket=query.bucket,
        service=query.service,
        environment=query.environment,
    )
    return [r.as_dict() for r in rows]


def _cohorts(session: Session, query: Query) -> list[dict[str, Any]]:
    from analytics.cohorts import cohort_shifts, engagement_by_cohort

    if query.compare:
        shifts = cohort_shifts(
            session.cursor(), query.window.previous(), query.window,
            service=query.service, environment=query.environment, correction=query.correction,
        )  # fmt: skip
        return [s.as_dict() for s in shifts]
    rows = engagement_by_cohort(
        session.cursor(),
        query.window,
        query.bucket or query.window.duration,
        service=query.service,
        environment=query.environment,
    )
    return [r.as_dict() for r in rows]


def _changes(session: Session, query: Query) -> list[dict[str, Any]]:
    from analytics.impact import change_impacts

    config = session.config
    impacts = change_impacts(
        session.cursor(), query.window, list(config.slos), config.rules, config.keys,
        environment=query.environment, correction=query.correction,
    )  # fmt: skip
    return [i.as_dict() for i in impacts]


def _mutations(session: Session, query: Query) -> list[dict[str, Any]]:
    from analytics.governance import unauthorized_mutations

    config = session.config
    found = unauthorized_mutations(
        session.cursor(), query.window, config.rules, config.keys, environment=query.environment
    )
    return [m.as_dict() for m in found]


def _drift(session: Session, query: Query) -> list[dict[str, Any]]:
    from analytics.governance import drift

    config = session.config
    found = drift(
        session.cursor(), query.window, config.rules, config.keys,
        service=query.service, environment=query.environment,
    )  # fmt: skip
    return [d.as_dict() for d in found]


def _contracts(session: Session, query: Query) -> list[dict[str, Any]]:
    from analytics.contract_health import violation_rates, violations

    if query.rates:
        rates = violation_rates(
            session.cursor(), query.window, bucket=query.bucket,
            service=query.service, environment=query.environment,
        )  # fmt: skip
        return [r.as_dict() for r in rates]
    rows = violations(
        session.cursor(), query.window, bucket=query.bucket,
        service=query.service, environment=query.environment,
    )  # fmt: skip
    return [r.as_dict() for r in rows]


Analysis = Callable[["Session", Query], list[dict[str, Any]]]
# name → analysis, in the order `flaglens analyze --help` lists them
ANALYSES: dict[str, Analysis] = {
    "budgets": _budgets,
    "latency": _latency,
    "cohorts": _cohorts,
    "changes": _changes,
    "mutations": _mutations,
    "drift": _drift,
    "contracts": _contracts,
}


def run(session: Session, name: str, query: Query) -> list[dict[str, Any]]:
    """Run one named analysis; its rows made JSON-ready.

    Raises:
        KeyError: no analysis of that name.
        AnalyticsError, StoreError, ContractError: the analysis itself failed.
    """
    rows: list[dict[str, Any]] = json_ready(ANALYSES[name](session, query))
    return rows
