"""Who may change what: governance rules, unauthorized mutations and drift.

A change in ``policy_changes`` is *authorized* when its actor may change its module in its
environment (``contracts/governance.toml``), it has the approvals that (module, environment)
needs from people other than the actor, and its signature verifies with a key bound to its
environment (:mod:`contracts.signing`). Every failed check is a finding with its reason.

*Drift* is a decision evaluated under a ``feature_flag.version`` that no authorized change had
produced for that flag and environment by the time of the decision. Each drift names its
reason: the version was served before the authorized change that produced it
(``served_before_approval``), only unauthorized changes produced it here
(``unauthorized_change``), it was approved only in other environments (``other_environment``),
or no change of this environment produced it and none approved it anywhere
(``never_recorded``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import duckdb
import orjson
import pyarrow as pa
from pydantic import BaseModel, Field

from analytics.config_files import STRICT, read_toml, validate
from analytics.errors import ConfigError
from analytics.windows import TimeWindow
from contracts.signing import KeyRing, SignatureStatus

# the governance rules ship with the contracts (package data of `contracts`)
DEFAULT_GOVERNANCE_FILE = Path(str(resources.files("contracts").joinpath("governance.toml")))
Module = Literal["release", "privacy", "security", "cost"]
MODULES: tuple[str, ...] = get_args(Module)

# signature status → finding reason
_SIGNATURE_REASONS = {
    SignatureStatus.MISSING: "signature_missing",
    SignatureStatus.INVALID: "signature_invalid",
    SignatureStatus.UNKNOWN_KEY: "signature_unknown_key",
    SignatureStatus.WRONG_ENVIRONMENT: "signature_wrong_environment",
}


@dataclass(frozen=True, slots=True)
class Rules:
    """Allowed (actor → modules × environments) and approvals per (module, environment)."""

    actors: dict[str, tuple[frozenset[str], frozenset[str]]]
    approvals: dict[str, dict[str, int]]

    def allowed(self, actor: str, module: str, environment: str) -> bool:
        grant = self.actors.get(actor)
        return grant is not None and module in grant[0] and environment in grant[1]

    def approvals_needed(self, module: str, environment: str) -> int:
        return self.approvals.get(module, {}).get(environment, 0)


class _Actor(BaseModel):
    model_config = STRICT

    name: str = Field(min_length=1)
    modules: list[Module]
    environments: list[str]


class _GovernanceFile(BaseModel):
    model_config = STRICT

    actors: list[_Actor] = []
    approvals: dict[Module, dict[str, Annotated[int, Field(ge=0)]]] = {}


def load_rules(path: str | Path = DEFAULT_GOVERNANCE_FILE) -> Rules:
    """Read and check a governance file; errors name the file, the entry and the field."""
    where = Path(path)
    document = validate(_GovernanceFile, read_toml(where, "governance file"), str(where))
    actors: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for i, actor in enumerate(document.actors):
        if actor.name in actors:
            raise ConfigError(f"{where} [[actors]] #{i + 1}: actor {actor.name} is listed twice")
        actors[actor.name] = (frozenset(actor.modules), frozenset(actor.environments))
    approvals: dict[str, dict[str, int]] = {m: dict(n) for m, n in document.approvals.items()}
    return Rules(actors, approvals)


def default_key_file(db: str | Path) -> Path:
    """Where analytics look for the key file when none is given: beside the database."""
    return Path(db).resolve().parent / "keys.toml"


@dataclass(frozen=True, slots=True)
class DiscountedApproval:
    """An approver named on a change who does not count towards its approvals."""

    approver: str
    reason: str  # 'self_approval' (the actor) | 'duplicate' (named before on the same change)

    def as_dict(self) -> dict[str, str]:
        return {"approver": self.approver, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ChangeReview:
    """One change of the ledger and what governance says about it."""

    change_id: str
    time: datetime
    environment: str
    flag_key: str
    module: str
    actor: str
    action: str
    previous_version: str | None
    version: str
    approvers: tuple[str, ...]
    ticket: str | None
    key_id: str | None
    signature: SignatureStatus
    reasons: tuple[str, ...] = field(default_factory=tuple)
    details: tuple[str, ...] = field(default_factory=tuple)
    discounted_approvals: tuple[DiscountedApproval, ...] = field(default_factory=tuple)

    @property
    def authorized(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "time": self.time.isoformat(),
            "environment": self.environment,
            "flag_key": self.flag_key,
            "policy_module": self.module,
            "actor": self.actor,
            "action": self.action,
            "previous_version": self.previous_version,
            "version": self.version,
            "approvers": list(self.approvers),
            "discounted_approvals": [a.as_dict() for a in self.discounted_approvals],
            "ticket": self.ticket,
            "key_id": self.key_id,
            "signature": self.signature.value,
            "authorized": self.authorized,
            "reasons": list(self.reasons),
            "details": list(self.details),
        }


def review(row: dict[str, Any], rules: Rules, keys: KeyRing) -> ChangeReview:
    """Check one stored change (a ``policy_changes`` row with its ``attributes`` JSON)."""
    attributes = orjson.loads(row["attributes"])
    reasons, details = [], []
    actor, module, env = row["actor"], row["policy_module"], row["environment"]
    if not rules.allowed(actor, module, env):
        reasons.append("actor_not_allowed")
        details.append(f"{actor} may not change {module} flags in {env}")
    approvers: list[str] = []
    discounted = []
    for name in row["approvers"] or ():
        if name == actor:
            discounted.append(DiscountedApproval(name, "self_approval"))
        elif name in approvers:
            discounted.append(DiscountedApproval(name, "duplicate"))
        else:
            approvers.append(name)
    needed = rules.approvals_needed(module, env)
    if len(approvers) < needed:
        reasons.append("missing_approvals")
        not_counted = "".join(f"; {a.approver} not counted ({a.reason})" for a in discounted)
        details.append(f"{len(approvers)} of {needed} approvals ({module} in {env}){not_counted}")
    signature = keys.verify(attributes)
    if signature is not SignatureStatus.VALID:
        reasons.append(_SIGNATURE_REASONS[signature])
        details.append(f"signature {signature.value} (key {row['key_id'] or 'none'})")
    return ChangeReview(
        change_id=row["change_id"],
        time=row["time"],
        environment=env,
        flag_key=row["flag_key"],
        module=module,
        actor=actor,
        action=row["action"],
        previous_version=row["previous_version"],
        version=row["version"],
        approvers=tuple(approvers),
        ticket=row["ticket"],
        key_id=row["key_id"],
        signature=signature,
        reasons=tuple(reasons),
        details=tuple(details),
        discounted_approvals=tuple(discounted),
    )


def review_changes(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow | None,
    rules: Rules,
    keys: KeyRing,
    *,
    environment: str | None = None,
) -> list[ChangeReview]:
    """Every change in ``window`` (all of them when None), oldest first, reviewed."""
    where: list[str] = ["true"]
    params: dict[str, Any] = {}
    if window is not None:
        where.append("time >= $start AND time < $end")
        params |= {"start": window.start, "end": window.end}
    if environment:
        where.append("environment = $environment")
        params["environment"] = environment
    relation = cursor.execute(
        "SELECT change_id, time, environment, flag_key, policy_module, actor, action, "  # noqa: S608
        "previous_version, version, approvers, ticket, key_id, attributes FROM policy_changes "
        f"WHERE {' AND '.join(where)} ORDER BY time, change_id",
        params,
    )
    names = [d[0] for d in relation.description or ()]
    return [review(dict(zip(names, r, strict=True)), rules, keys) for r in relation.fetchall()]


def unauthorized_mutations(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    rules: Rules,
    keys: KeyRing,
    *,
    environment: str | None = None,
) -> list[ChangeReview]:
    """The changes in ``window`` that fail at least one governance check, newest first."""
    reviews = review_changes(cursor, window, rules, keys, environment=environment)
    return [r for r in reversed(reviews) if not r.authorized]


DRIFT_REASONS = ("served_before_approval", "unauthorized_change", "other_environment",
                 "never_recorded")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Drift:
    flag_key: str
    environment: str
    version: str
    count: int
    first_seen: datetime
    last_seen: datetime
    services: tuple[str, ...]
    produced_by_unauthorized: tuple[str, ...]  # ids of unauthorized changes with this version
    reason: str = "never_recorded"  # one of DRIFT_REASONS
    approved_at: datetime | None = None  # served_before_approval: the first authorized change
    approved_in: tuple[str, ...] = ()  # environments where an authorized change produced it

    def as_dict(self) -> dict[str, Any]:
        return {
            "flag_key": self.flag_key,
            "environment": self.environment,
            "version": self.version,
            "reason": self.reason,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "services": list(self.services),
            "produced_by_unauthorized": list(self.produced_by_unauthorized),
            "approved_at": None if self.approved_at is None else self.approved_at.isoformat(),
            "approved_in": list(self.approved_in),
        }


def drift(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    rules: Rules,
    keys: KeyRing,
    *,
    service: str | None = None,
    environment: str | None = None,
) -> list[Drift]:
    """Decisions served under a version no authorized change had produced by then."""
    reviews = review_changes(cursor, _until(window.end), rules, keys)
    approved: dict[tuple[str, str, str], datetime] = {}  # first authorized change
    approved_in: dict[tuple[str, str], set[str]] = {}
    unauthorized: dict[tuple[str, str, str], list[str]] = {}
    for r in reviews:
        key = (r.flag_key, r.environment, r.version)
        if r.authorized:
            approved[key] = min(approved.get(key, r.time), r.time)
            approved_in.setdefault((r.flag_key, r.version), set()).add(r.environment)
        else:
            unauthorized.setdefault(key, []).append(r.change_id)
    versions = list(approved)
    produced = pa.table(
        {
            "flag_key": [k[0] for k in versions],
            "environment": [k[1] for k in versions],
            "flag_version": [k[2] for k in versions],
            "approved_at": [approved[k] for k in versions],
        },
        schema=pa.schema(
            [("flag_key", pa.string()), ("environment", pa.string()),
             ("flag_version", pa.string()), ("approved_at", pa.timestamp("us", tz="UTC"))]
        ),
    )  # fmt: skip
    where = ["time >= $start", "time < $end"]
    params: dict[str, Any] = {"start": window.start, "end": window.end}
    if service:
        where.append("service_name = $service")
        params["service"] = service
    if environment:
        where.append("environment = $environment")
        params["environment"] = environment
    cursor.register("_authorized_versions", produced)
    try:
        # aggregate first (a few hundred groups), then keep the versions nobody authorized and
        # those served before the first change that did; count the latter's early decisions
        # again (rare, so the second scan is filtered to a few versions)
        rows = cursor.execute(
            "WITH d AS (SELECT flag_key, environment, flag_version, service_name, "  # noqa: S608
            "count(*) AS n, min(time) AS first, max(time) AS last FROM decisions "
            f"WHERE {' AND '.join(where)} GROUP BY ALL) "
            "SELECT d.flag_key, d.environment, d.flag_version, NULL AS approved_at, sum(n), "
            "min(first), max(last), list(service_name ORDER BY service_name) FROM d "
            "WHERE NOT EXISTS (SELECT 1 FROM _authorized_versions a WHERE a.flag_key = d.flag_key "
            "AND a.environment = d.environment AND a.flag_version = d.flag_version) "
            "GROUP BY ALL UNION ALL "
            "SELECT e.flag_key, e.environment, e.flag_version, e.approved_at, count(*), "
            "min(time), max(time), list(DISTINCT service_name ORDER BY service_name) "
            "FROM decisions JOIN (SELECT DISTINCT a.* FROM d JOIN _authorized_versions a "
            "USING (flag_key, environment, flag_version) WHERE d.first < a.approved_at) e "
            "USING (flag_key, environment, flag_version) "
            f"WHERE {' AND '.join(where)} AND time < e.approved_at GROUP BY ALL",
            params,
        ).fetchall()
    finally:
        cursor.unregister("_authorized_versions")
    found = []
    for flag, env, version, approved_at, n, first, last, services in rows:
        elsewhere = tuple(sorted(approved_in.get((flag, version), set()) - {env}))
        by_unauthorized = tuple(unauthorized.get((flag, env, version), ()))
        if approved_at is not None:
            reason = "served_before_approval"
        elif by_unauthorized:
            reason = "unauthorized_change"
        elif elsewhere:
            reason = "other_environment"
        else:
            reason = "never_recorded"
        found.append(
            Drift(flag, env, version, int(n), first, last, tuple(services), by_unauthorized,
                  reason, approved_at, elsewhere)
        )  # fmt: skip
    return sorted(found, key=lambda d: (-d.count, d.flag_key, d.environment, d.version))


def _until(end: datetime) -> TimeWindow:
    """From the beginning of time up to ``end``."""
    return TimeWindow(datetime(1970, 1, 1, tzinfo=end.tzinfo), end)
