"""The sample week as plain data: sessions, decisions, engagement and signed policy changes.

:func:`simulate` plays the company of :mod:`sample_data.world` hour by hour, with diurnal traffic,
and injects the known stories (:mod:`sample_data.stories` places them); it yields one
:class:`Hour` at a time, so memory stays flat at any ``scale``. Nothing here knows about OTLP;
:mod:`sample_data.otlp` turns the hours into export requests through the OpenTelemetry SDK.

The same seed, days, scale and end time always give the same hours and the same manifest.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.signing import sign
from sample_data import world
from sample_data.stories import Stories, place_stories

SESSIONS_PER_HOUR = 500  # at scale 1, before the diurnal factor
SUBJECTS = 20_000  # at scale 1 (at least 1,000)
FLAG_EVALUATION_PROBABILITY = 0.45
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Options:
    seed: int = 7
    days: int = 7
    scale: float = 1.0
    end: datetime | None = None  # default: the current hour (UTC)

    def end_time(self) -> datetime:
        if self.end is not None:
            return self.end.astimezone(UTC)
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(slots=True)
class Session:
    """One request a subject makes to a service: a server span plus what it evaluated."""

    service: str
    environment: str
    start_ns: int
    duration_ms: float
    route: str
    method: str
    status_code: int
    error: bool
    decisions: list[dict[str, Any]] = field(default_factory=list)
    engagement: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One policy.change log record of the control plane."""

    environment: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class Hour:
    start: datetime
    sessions: list[Session]
    changes: list[Change]


@dataclass
class Tally:
    """What the simulation produced, by kind: the counts the manifest promises."""

    sessions: int = 0
    decisions: int = 0
    decisions_broken: int = 0
    engagement: int = 0
    changes: int = 0
    drift_decisions: int = 0
    drift_first_ns: int | None = None
    drift_last_ns: int | None = None
    broken_missing_field: int = 0
    broken_wrong_enum: int = 0
    decisions_as_logs: int = 0
    decisions_as_span_events: int = 0

    @property
    def log_records(self) -> int:
        """Log records sent: decisions outside span events, engagement and changes."""
        return self.decisions_as_logs + self.engagement + self.changes


def signing_keys(seed: int) -> dict[str, Ed25519PrivateKey]:
    """The control plane's keys, derived from the seed (demo keys, never for real use)."""
    rng = random.Random(f"keys-{seed}")
    return {
        key_id: Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        for key_id in world.KEY_ENVIRONMENTS
    }


def _bucket(*parts: str) -> float:
    """A stable number in [0, 1) for the parts (the same in every run and process)."""
    return (zlib.crc32(":".join(parts).encode()) % 100_000) / 100_000


def _diurnal(hour: int) -> float:
    """Traffic relative to the daily mean: low at night (UTC 03h), high in the afternoon."""
    return 1.0 + 0.6 * math.sin(2 * math.pi * (hour - 9) / 24)


class Simulation:
    """The sample week; iterate :meth:`hours` once."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.end = options.end_time()
        self.start = self.end - timedelta(days=options.days)
        self.rng = random.Random(options.seed)
        self.keys = signing_keys(options.seed)
        self.stories: Stories = place_stories(self.start, self.end)
        self.tally = Tally()
        subjects = max(1_000, round(SUBJECTS * options.scale))
        cohort_names = list(world.COHORTS)
        shares = [world.COHORTS[name][0] for name in cohort_names]
        self.subjects = [f"user-{i:06d}" for i in range(subjects)]
        self.cohort_of = dict(
            zip(self.subjects, self.rng.choices(cohort_names, shares, k=subjects), strict=True)
        )
        self.roles_of = {s: self.rng.choice(world.ROLES) for s in self.subjects}
        # (flag, environment) → version currently served, and the latest one in the ledger
        self.version: dict[tuple[str, str], str] = {}
        self._ledger_version: dict[tuple[str, str], str] = {}
        self._change_seq = 0
        self._decision_seq = 0
        self._services = list(world.SERVICES.values())
        self._service_weights = [s.weight for s in self._services]
        self.changes: list[Change] = self.stories.changes(self)

    # -- policy changes -------------------------------------------------------------------

    def change(
        self,
        *,
        when: datetime,
        flag: str,
        environment: str,
        action: str = "update",
        actor: str | None = None,
        approvers: int | None = None,
        key_id: str | None = "default",
        tamper: bool = False,
        version: str | None = None,
    ) -> Change:
        """A control-plane change, signed and approved as governance.toml asks unless told."""
        module = world.FLAGS[flag].module
        self._change_seq += 1
        previous = self._ledger_version.get((flag, environment))
        new_version = version or (f"v{int(previous[1:]) + 1}" if previous else "v1")
        actor = actor or world.OWNER_OF_MODULE[module]
        needed = _approvals_needed(module, environment) if approvers is None else approvers
        attributes: dict[str, Any] = {
            "policy.change.id": f"chg-{self.options.seed}-{self._change_seq:04d}",
            "feature_flag.key": flag,
            "feature_flag.version": new_version,
            "policy.module": module,
            "policy.change.actor": actor,
            "policy.change.action": action,
            "policy.change.ticket": f"FLAG-{1000 + self._change_seq}",
            "deployment.environment.name": environment,
        }
        if previous:
            attributes["policy.change.previous_version"] = previous
        approver_names = [name for name in world.APPROVERS if name != actor][:needed]
        if approver_names:
            attributes["policy.change.approvers"] = approver_names
        if key_id is not None:
            key_id = world.KEY_FOR_ENVIRONMENT[environment] if key_id == "default" else key_id
            attributes["policy.change.key_id"] = key_id
            attributes["policy.change.signature"] = sign(attributes, self.keys[key_id])
            if tamper:  # changed after signing: the signature no longer verifies
                attributes["policy.change.ticket"] += "-edited"
        self._ledger_version[(flag, environment)] = new_version
        self.tally.changes += 1
        return Change(environment, _ns(when), attributes)

    # -- traffic --------------------------------------------------------------------------

    def _decision(
        self, session: Session, flag_key: str, subject: str, cohort: str, offset_ns: int
    ) -> dict[str, Any]:
        flag = world.FLAGS[flag_key]
        env = session.environment
        variant = (
            flag.variants[0] if _bucket(flag_key, subject) < flag.rollout else flag.variants[1]
        )
        version = self.version[(flag_key, env)]
        time_ns = session.start_ns + offset_ns
        drift = self.stories.drift
        if (
            flag_key == drift.flag
            and env == drift.environment
            and drift.start_ns <= time_ns < drift.end_ns
            and self.rng.random() < drift.share
        ):
            version = drift.version
            self.tally.drift_decisions += 1
            self.tally.drift_first_ns = self.tally.drift_first_ns or time_ns
            self.tally.drift_last_ns = time_ns
        self._decision_seq += 1
        attributes: dict[str, Any] = {
            "time_unix_nano": time_ns,
            "feature_flag.key": flag_key,
            "feature_flag.version": version,
            "feature_flag.result.variant": variant,
            "feature_flag.result.reason": "targeting_match"
            if variant == flag.variants[0]
            else "split",
            "feature_flag.provider.name": "flagd",
            "feature_flag.context.id": subject,
            "decision.id": f"d{self.options.seed}-{self._decision_seq:010d}",
            "policy.module": flag.module,
            "policy.rule.id": f"{flag_key}-rule-{1 if variant == flag.variants[0] else 2}",
            "cohort.id": cohort,
        }
        if flag.module == "privacy":
            consent = self.rng.choices(("granted", "denied", "not_required"), (85, 10, 5))[0]
            attributes["privacy.purpose"] = self.rng.choice(world.PRIVACY_PURPOSES)
            attributes["privacy.consent.state"] = consent
            broken = self.stories.contract_break
            if (
                session.service == broken.service
                and env == broken.environment
                and broken.start_ns <= time_ns < broken.end_ns
            ):
                self.tally.decisions_broken += 1
                if self._decision_seq % 2:
                    del attributes["privacy.purpose"]
                    self.tally.broken_missing_field += 1
                else:
                    attributes["privacy.consent.state"] = "unknown"
                    self.tally.broken_wrong_enum += 1
        elif flag.module == "security":
            attributes["user.roles"] = list(self.roles_of[subject])
        elif flag.module == "cost":
            attributes["cost.center"] = world.COST_CENTERS[zlib.crc32(flag_key.encode()) % 3]
        if session.service == "payments":
            # payments still runs an SDK with the pre-1.27 attribute names
            attributes["feature_flag.variant"] = attributes.pop("feature_flag.result.variant")
            attributes["feature_flag.provider_name"] = attributes.pop("feature_flag.provider.name")
        return attributes

    def _session(self, start_ns: int) -> Session:
        rng = self.rng
        service = rng.choices(self._services, self._service_weights)[0]
        env = "prod" if rng.random() < world.ENVIRONMENT_WEIGHTS["prod"] else "staging"
        subject = rng.choice(self.subjects)
        cohort = self.cohort_of[subject]
        error_rate = service.error_rate
        latency = rng.lognormvariate(math.log(service.median_ms), service.sigma)
        regression = self.stories.regression
        if env == regression.environment and service.name in regression.services:
            if start_ns >= regression.time_ns:
                error_rate += regression.extra_error_rate
                latency *= regression.latency_factor
        tail = self.stories.tail_regression
        if env == tail.environment and service.name == tail.service and start_ns >= tail.time_ns:
            if rng.random() < tail.slow_share:
                latency *= tail.slow_factor
        confounded = self.stories.confounded
        if env == confounded.environment and service.name == confounded.service:
            if start_ns >= confounded.time_ns:
                error_rate += confounded.extra_error_rate
        error = rng.random() < error_rate
        route = rng.choice(service.routes)
        session = Session(
            service=service.name,
            environment=env,
            start_ns=start_ns,
            duration_ms=round(latency, 3),
            route=route,
            method="POST" if "checkout" in route or "payments" in route else "GET",
            status_code=rng.choice((500, 503)) if error else 200,
            error=error,
        )
        evaluated = [
            f
            for f in service.flags
            if world.FLAGS[f].every_session or rng.random() < FLAG_EVALUATION_PROBABILITY
        ]
        if not evaluated:
            evaluated = [rng.choice(service.flags)]
        for i, flag_key in enumerate(evaluated):
            offset = int((i + 1) * latency * 1_000_000 / (len(evaluated) + 2))
            session.decisions.append(self._decision(session, flag_key, subject, cohort, offset))
        engage = world.COHORTS[cohort][1]
        shift = self.stories.cohort_shift
        if (
            service.name == shift.service
            and env == shift.environment
            and cohort == shift.cohort
            and start_ns >= shift.time_ns
        ):
            engage += shift.engagement_increase
        if rng.random() < engage:
            session.engagement = {
                "time_unix_nano": start_ns + int(latency * 1_000_000) + 5 * _NS,
                "user.id": subject,
                "cohort.id": cohort,
                "engagement.action": rng.choice(world.ENGAGEMENT_ACTIONS),
                "feature_flag.key": evaluated[0],
            }
        self._count(service.decisions_as_span_events, session)
        return session

    def _count(self, as_span_events: bool, session: Session) -> None:
        tally = self.tally
        tally.sessions += 1
        tally.decisions += len(session.decisions)
        if as_span_events:
            tally.decisions_as_span_events += len(session.decisions)
        else:
            tally.decisions_as_logs += len(session.decisions)
        tally.engagement += session.engagement is not None

    def hours(self) -> Iterator[Hour]:
        """The whole period, one hour at a time, in time order."""
        changes = self.changes
        hour = self.start
        per_hour = SESSIONS_PER_HOUR * self.options.scale
        while hour < self.end:
            next_hour = hour + timedelta(hours=1)
            due = [c for c in changes if _ns(hour) <= c.time_ns < _ns(next_hour)]
            count = max(1, round(per_hour * _diurnal(hour.hour) * (0.9 + 0.2 * self.rng.random())))
            starts = sorted(self.rng.randrange(_ns(hour), _ns(next_hour)) for _ in range(count))
            sessions = []
            for start_ns in starts:
                # a change takes effect for sessions after it, in time order
                while due and due[0].time_ns <= start_ns:
                    self._apply(due.pop(0))
                sessions.append(self._session(start_ns))
            while due:
                self._apply(due.pop(0))
            yield Hour(
                hour, sessions, [c for c in changes if _ns(hour) <= c.time_ns < _ns(next_hour)]
            )
            hour = next_hour

    def _apply(self, change: Change) -> None:
        """From its time on, the flag's decisions carry the version the change produced."""
        attributes = change.attributes
        key = (attributes["feature_flag.key"], change.environment)
        self.version[key] = attributes["feature_flag.version"]


def _approvals_needed(module: str, environment: str) -> int:
    return world.APPROVALS.get(module, {}).get(environment, 0)


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * _NS + when.microsecond * 1000
