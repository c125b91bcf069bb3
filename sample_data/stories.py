"""The known answers injected into the sample week, and where in the week they happen.

Each story is placed at a fixed fraction of the simulated period, so any ``--days`` works. The
manifest (:func:`manifest`) writes them down for tests and people: what analytics must find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sample_data import world

if TYPE_CHECKING:
    from sample_data.generator import Change, Simulation

_NS = 1_000_000_000


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * _NS + when.microsecond * 1000


def _iso(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / _NS, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


@dataclass(frozen=True, slots=True)
class Regression:
    """A change after which the services evaluating its flag fail more and answer slower."""

    flag: str
    environment: str
    services: tuple[str, ...]
    time_ns: int
    extra_error_rate: float = 0.08
    latency_factor: float = 1.6


@dataclass(frozen=True, slots=True)
class TailRegression:
    """A change after which a few of one service's requests take a slow path: the median
    hardly moves, p95 and p99 do, and the latency SLO's budget burns faster than it allows."""

    flag: str
    environment: str
    service: str
    time_ns: int
    slow_share: float = 0.07
    slow_factor: float = 3.2


@dataclass(frozen=True, slots=True)
class Overlap:
    """A harmless change on a service a few hours after the regression changed it: its
    windows, and the regression's, must leave the other change out."""

    flag: str
    environment: str
    time_ns: int


@dataclass(frozen=True, slots=True)
class Confounded:
    """Two changes on one service minutes apart, after which it fails more: which of the two
    did it cannot be told, so neither may be blamed alone."""

    flag: str
    second_flag: str
    environment: str
    service: str
    time_ns: int
    second_ns: int
    extra_error_rate: float = 0.05


@dataclass(frozen=True, slots=True)
class CohortShift:
    """A change after which one cohort engages more on one service; the others do not move."""

    flag: str
    environment: str
    service: str
    cohort: str
    time_ns: int
    engagement_increase: float = 0.2


@dataclass(frozen=True, slots=True)
class Drift:
    """Decisions served under a version no change produced (a hot-fixed flag config)."""

    flag: str
    environment: str
    service: str
    version: str
    start_ns: int
    end_ns: int
    share: float = 0.3


@dataclass(frozen=True, slots=True)
class ContractBreak:
    """A deploy of one service that emits privacy decisions breaking their contract."""

    service: str
    environment: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class Unauthorized:
    """A change that governance must report, and the reason it must give."""

    reason: str
    flag: str
    environment: str
    actor: str
    time_ns: int
    approvers: int | None = None  # None: as many as governance asks
    key_id: str | None = "default"  # None: unsigned; "default": the environment's own key
    tamper: bool = False


@dataclass(frozen=True, slots=True)
class Stories:
    start: datetime
    end: datetime
    regression: Regression
    tail_regression: TailRegression
    overlap: Overlap
    confounded: Confounded
    cohort_shift: CohortShift
    harmless_flag: str
    harmless_ns: int
    drift: Drift
    contract_break: ContractBreak
    unauthorized: tuple[Unauthorized, ...]

    def changes(self, sim: Simulation) -> list[Change]:
        """Every policy change of the period, in time order (made through ``sim.change``)."""
        plan: list[tuple[int, dict[str, Any]]] = []
        for flag in world.FLAGS:  # every flag is created at the start, in both environments
            for env in world.ENVIRONMENTS:
                plan.append(
                    (_ns(self.start), {"flag": flag, "environment": env, "action": "create"})
                )
        span = _ns(self.end) - _ns(self.start)
        # routine, authorized staging rollouts (carol may change release flags in staging)
        for fraction, flag in ((0.15, "checkout-express-pay"), (0.5, "search-autocomplete")):
            plan.append(
                (
                    _ns(self.start) + int(span * fraction),
                    {
                        "flag": flag,
                        "environment": "staging",
                        "action": "rollout",
                        "actor": "carol@example.com",
                    },
                )
            )
        tail, overlap, confounded = self.tail_regression, self.overlap, self.confounded
        for flag, env, time_ns in (
            (self.regression.flag, self.regression.environment, self.regression.time_ns),
            (tail.flag, tail.environment, tail.time_ns),
            (overlap.flag, overlap.environment, overlap.time_ns),
            (confounded.flag, confounded.environment, confounded.time_ns),
            (confounded.second_flag, confounded.environment, confounded.second_ns),
            (self.cohort_shift.flag, self.cohort_shift.environment, self.cohort_shift.time_ns),
            (self.harmless_flag, "prod", self.harmless_ns),
        ):
            plan.append((time_ns, {"flag": flag, "environment": env, "action": "rollout"}))
        for bad in self.unauthorized:
            plan.append(
                (
                    bad.time_ns,
                    {
                        "flag": bad.flag,
                        "environment": bad.environment,
                        "actor": bad.actor,
                        "approvers": bad.approvers,
                        "key_id": bad.key_id,
                        "tamper": bad.tamper,
                    },
                )
            )
        plan.sort(key=lambda item: item[0])
        changes = []
        for time_ns, arguments in plan:
            when = datetime.fromtimestamp(time_ns // _NS, UTC) + timedelta(
                microseconds=(time_ns % _NS) // 1000
            )
            changes.append(sim.change(when=when, **arguments))
        return changes


def place_stories(start: datetime, end: datetime) -> Stories:
    """The stories at their fixed fractions of [start, end)."""
    span = _ns(end) - _ns(start)

    def at(fraction: float) -> int:
        # on a whole minute, so manifests read well
        ns = _ns(start) + int(span * fraction)
        return ns - ns % (60 * _NS)

    unauthorized = (
        Unauthorized(
            "actor_not_allowed", "admin-bulk-export", "prod", "carol@example.com", at(0.12)
        ),
        Unauthorized(
            "missing_approvals",
            "privacy-data-retention",
            "prod",
            "bob@example.com",
            at(0.3),
            approvers=1,
        ),
        Unauthorized(
            "signature_missing",
            "billing-invoice-v2",
            "prod",
            "alice@example.com",
            at(0.42),
            key_id=None,
        ),
        Unauthorized(
            "signature_invalid",
            "ops-maintenance-banner",
            "prod",
            "alice@example.com",
            at(0.66),
            tamper=True,
        ),
        Unauthorized(
            "signature_wrong_environment",
            "checkout-gift-cards",
            "prod",
            "alice@example.com",
            at(0.78),
            key_id="cp-staging-2026",
        ),
    )
    return Stories(
        start=start,
        end=end,
        regression=Regression(
            flag="checkout-new-pricing",
            environment="prod",
            services=("checkout", "payments"),
            time_ns=at(0.6),
        ),
        tail_regression=TailRegression(
            flag="payments-retry-policy", environment="prod", service="payments", time_ns=at(0.2)
        ),
        overlap=Overlap(
            flag="checkout-promo-engine", environment="prod", time_ns=at(0.6) + 3 * 3600 * _NS
        ),
        confounded=Confounded(
            flag="recs-model-tier",
            second_flag="recs-personalised",
            environment="prod",
            service="recommendations",
            time_ns=at(0.85),
            second_ns=at(0.85) + 20 * 60 * _NS,
        ),
        cohort_shift=CohortShift(
            flag="search-ranking-v2",
            environment="prod",
            service="search",
            cohort="beta-testers",
            time_ns=at(0.35),
        ),
        harmless_flag="recs-carousel-color",
        harmless_ns=at(0.45),
        drift=Drift(
            flag="auth-mfa-prompt",
            environment="prod",
            service="auth",
            version="v1-hotfix",
            start_ns=at(0.7),
            end_ns=at(0.7) + 6 * 3600 * _NS,
        ),
        contract_break=ContractBreak(
            service="recommendations",
            environment="prod",
            start_ns=at(0.25),
            end_ns=at(0.25) + 4 * 3600 * _NS,
        ),
        unauthorized=unauthorized,
    )


def manifest(sim: Simulation) -> dict[str, Any]:
    """The ground truth of a finished simulation, as JSON-ready data."""
    stories = sim.stories
    tally = sim.tally
    change_ids = _change_ids(sim)
    tail, overlap, confounded = stories.tail_regression, stories.overlap, stories.confounded
    return {
        "seed": sim.options.seed,
        "days": sim.options.days,
        "scale": sim.options.scale,
        "start": stories.start.isoformat().replace("+00:00", "Z"),
        "end": stories.end.isoformat().replace("+00:00", "Z"),
        "counts": {
            "sessions": tally.sessions,
            "spans": tally.sessions,
            "decisions": tally.decisions,
            "decisions_valid": tally.decisions - tally.decisions_broken,
            "decisions_broken": tally.decisions_broken,
            "decisions_as_span_events": tally.decisions_as_span_events,
            "engagement": tally.engagement,
            "policy_changes": tally.changes,
            "log_records": tally.log_records,
        },
        "stories": {
            "regression": {
                "change_id": change_ids[(stories.regression.flag, stories.regression.time_ns)],
                "flag_key": stories.regression.flag,
                "environment": stories.regression.environment,
                "services": list(stories.regression.services),
                "time": _iso(stories.regression.time_ns),
            },
            "tail_regression": {
                "change_id": change_ids[(tail.flag, tail.time_ns)],
                "flag_key": tail.flag,
                "environment": tail.environment,
                "service": tail.service,
                "time": _iso(tail.time_ns),
                "slow_share": tail.slow_share,
                "slow_factor": tail.slow_factor,
                "verdict": "regression",
                "counted": [f"{tail.service} latency:p95", f"{tail.service} latency:p99"],
                "not_counted": [f"{tail.service} latency"],
            },
            "overlapping": {
                "regression": change_ids[(stories.regression.flag, stories.regression.time_ns)],
                "harmless": change_ids[(overlap.flag, overlap.time_ns)],
                "flag_key": overlap.flag,
                "environment": overlap.environment,
                "services": ["checkout"],
                "time": _iso(overlap.time_ns),
                "harmless_verdict": "no detectable effect",
                "regression_verdict": "regression",
            },
            "confounded": {
                "change_ids": [
                    change_ids[(confounded.flag, confounded.time_ns)],
                    change_ids[(confounded.second_flag, confounded.second_ns)],
                ],
                "flag_keys": [confounded.flag, confounded.second_flag],
                "environment": confounded.environment,
                "service": confounded.service,
                "times": [_iso(confounded.time_ns), _iso(confounded.second_ns)],
                "verdict": "confounded",
            },
            "cohort_shift": {
                "change_id": change_ids[(stories.cohort_shift.flag, stories.cohort_shift.time_ns)],
                "flag_key": stories.cohort_shift.flag,
                "environment": stories.cohort_shift.environment,
                "service": stories.cohort_shift.service,
                "cohort": stories.cohort_shift.cohort,
                "time": _iso(stories.cohort_shift.time_ns),
            },
            "harmless": {
                "change_id": change_ids[(stories.harmless_flag, stories.harmless_ns)],
                "flag_key": stories.harmless_flag,
                "environment": "prod",
                "time": _iso(stories.harmless_ns),
            },
            "unauthorized": [
                {
                    "change_id": change_ids[(bad.flag, bad.time_ns)],
                    "reason": bad.reason,
                    "flag_key": bad.flag,
                    "environment": bad.environment,
                    "actor": bad.actor,
                    "time": _iso(bad.time_ns),
                }
                for bad in stories.unauthorized
            ],
            "drift": {
                "flag_key": stories.drift.flag,
                "environment": stories.drift.environment,
                "version": stories.drift.version,
                "services": [stories.drift.service],
                "count": tally.drift_decisions,
                "first_seen": _iso(tally.drift_first_ns) if tally.drift_first_ns else None,
                "last_seen": _iso(tally.drift_last_ns) if tally.drift_last_ns else None,
            },
            "contract_break": {
                "service": stories.contract_break.service,
                "environment": stories.contract_break.environment,
                "from": _iso(stories.contract_break.start_ns),
                "to": _iso(stories.contract_break.end_ns),
                "records": tally.decisions_broken,
                "missing_field": tally.broken_missing_field,
                "wrong_enum": tally.broken_wrong_enum,
            },
        },
    }


def _change_ids(sim: Simulation) -> dict[tuple[str, int], str]:
    return {
        (c.attributes["feature_flag.key"], c.time_ns): c.attributes["policy.change.id"]
        for c in sim.changes
    }
