"""Who may change what: governance rules, unauthorized mutations and drift.

A change in ``policy_changes`` is *authorized* when its actor may change its module in its
environment (``contracts/governance.toml``), it has the approvals that (module, environment)
needs from people other than the actor, and its signature verifies with a key bound to its
environment (:mod:`contracts.signing`). Every failed check is a finding with its reason.

*Drift* is a decision evaluated under a ``feature_flag.version`` that no authorized change
produced for that flag and environment (at any time before the window's end).
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
    approvers = tuple(dict.fromkeys(a for a in (row["approvers"] or ()) if a != actor))
    needed = rules.approvals_needed(module, env)
    if len(approvers) < needed:
        reasons.append("missing_approvals")
        details.append(f"{len(approvers)} of {needed} approvals ({module} in {env})")
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
        approvers=approvers,
        ticket=row["ticket"],
        key_id=row["key_id"],
        signature=signature,
        reasons=tuple(reasons),
        details=tuple(details),
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "flag_key": self.flag_key,
            "environment": self.environment,
            "version": self.version,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "services": list(self.services),
            "produced_by_unauthorized": list(self.produced_by_unauthorized),
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
    """Versions decisions were served under that no authorized change produced."""
    reviews = review_changes(cursor, _until(window.end), rules, keys)
    authorized = [(r.flag_key, r.environment, r.version) for r in reviews if r.authorized]
    unauthorized: dict[tuple[str, str, str], list[str]] = {}
    for r in reviews:
        if not r.authorized:
            unauthorized.setdefault((r.flag_key, r.environment, r.version), []).append(r.change_id)
    produced = pa.table(
        {
            "flag_key": [a[0] for a in authorized],
            "environment": [a[1] for a in authorized],
            "flag_version": [a[2] for a in authorized],
        },
        schema=pa.schema(
            [("flag_key", pa.string()), ("environment", pa.string()), ("flag_version", pa.string())]
        ),
    )
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
        # aggregate first (a few hundred groups), then keep the versions nobody authorized
        rows = cursor.execute(
            "SELECT flag_key, environment, flag_version, sum(n), min(first), max(last), "  # noqa: S608
            "list(service_name ORDER BY service_name) FROM ("
            "SELECT flag_key, environment, flag_version, service_name, count(*) AS n, "
            f"min(time) AS first, max(time) AS last FROM decisions WHERE {' AND '.join(where)} "
            "GROUP BY ALL) d WHERE NOT EXISTS (SELECT 1 FROM _authorized_versions a "
            "WHERE a.flag_key = d.flag_key AND a.environment = d.environment "
            "AND a.flag_version = d.flag_version) "
            "GROUP BY flag_key, environment, flag_version ORDER BY sum(n) DESC",
            params,
        ).fetchall()
    finally:
        cursor.unregister("_authorized_versions")
    return [
        Drift(
            flag,
            env,
            version,
            int(n),
            first,
            last,
            tuple(services),
            tuple(unauthorized.get((flag, env, version), ())),
        )
        for flag, env, version, n, first, last, services in rows
    ]


def _until(end: datetime) -> TimeWindow:
    """From the beginning of time up to ``end``."""
    return TimeWindow(datetime(1970, 1, 1, tzinfo=end.tzinfo), end)
