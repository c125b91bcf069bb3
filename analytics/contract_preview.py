"""What a proposed contract set would have done to stored traffic (`flaglens contracts preview`).

Every event stored in a time range (``decisions``, ``policy_changes``, ``engagement``: the
whole canonical record is in ``attributes``) and every quarantined log record or OPA decision
of that range is checked against the proposed contracts. Per service and contract the preview
says how many accepted records would now be rejected (with the first few and their JSON
pointers) and how many quarantined ones would now pass. Quarantined spans (kept whole, with
their events) and records rejected for something other than their contract (a size limit, a
token) are counted as not rechecked: no contract change lets them in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from analytics.windows import TimeWindow
from contracts import Registry, UnknownContract, Verdict, Violation

# the receiver OPA decisions come through (ingest.decode.opa.OPA_SOURCE), and how they are stored
_OPA_SOURCE = "opa"
_RECHECKED_SIGNALS = ("logs", _OPA_SOURCE)
_BATCH_ROWS = 10_000
DEFAULT_EXAMPLES = 3
# the tables of accepted events → the column that names a record (for the examples)
_STORED: Mapping[str, str] = {
    "decisions": "decision_id",
    "policy_changes": "change_id",
    "engagement": "NULL",
}


@dataclass
class PreviewGroup:
    """One service and contract (the proposed contract a record reaches, else its old one)."""

    service: str | None
    contract: str | None
    accepted_checked: int = 0
    would_reject: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    quarantined_checked: int = 0
    would_pass: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "contract": self.contract,
            "accepted_checked": self.accepted_checked,
            "would_reject": self.would_reject,
            "examples": self.examples,
            "quarantined_checked": self.quarantined_checked,
            "would_pass": self.would_pass,
            "still_rejected": self.quarantined_checked - self.would_pass,
        }


@dataclass
class Preview:
    """The whole preview: totals and the groups, by service then contract."""

    window: TimeWindow
    contracts: list[str]
    groups: dict[tuple[str | None, str | None], PreviewGroup] = field(default_factory=dict)
    not_rechecked: int = 0

    def group(self, service: str | None, contract: str | None) -> PreviewGroup:
        key = (service, contract)
        found = self.groups.get(key)
        if found is None:
            found = self.groups[key] = PreviewGroup(service, contract)
        return found

    def as_dict(self) -> dict[str, Any]:
        groups = [g.as_dict() for _, g in sorted(self.groups.items(), key=lambda kv: str(kv[0]))]
        return {
            "from": self.window.start.isoformat(),
            "to": self.window.end.isoformat(),
            "contracts": self.contracts,
            "accepted_checked": sum(g["accepted_checked"] for g in groups),
            "would_reject": sum(g["would_reject"] for g in groups),
            "quarantined_checked": sum(g["quarantined_checked"] for g in groups),
            "would_pass": sum(g["would_pass"] for g in groups),
            "not_rechecked": self.not_rechecked,
            "groups": groups,
        }


def _violations(verdict: Verdict) -> list[dict[str, Any]]:
    return [
        {"contract": v.contract_id, "version": v.contract_version, "pointer": v.pointer,
         "message": v.message}
        for v in verdict.violations
    ]  # fmt: skip


def _checker(registry: Registry) -> Callable[[bool, Mapping[str, Any]], Verdict]:
    """A record's verdict: routed by event name, or (OPA decisions) the receiver's contract."""
    try:
        opa: Callable[[Mapping[str, Any]], Verdict] | None = registry.source_contract(
            _OPA_SOURCE
        ).check
    except UnknownContract:
        opa = None
    missing = Verdict(
        None, None, (Violation(None, None, "", "no proposed contract names source 'opa'"),)
    )

    def check(from_opa: bool, record: Mapping[str, Any]) -> Verdict:
        if not from_opa:
            return registry.check(record)
        return opa(record) if opa is not None else missing

    return check


def _batches(cursor: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[Any, ...]]]:
    while rows := cursor.fetchmany(_BATCH_ROWS):
        yield rows


def _instant(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat()


def _contract_errors_only(errors: list[dict[str, Any]]) -> bool:
    return all(
        error.get("contract") is not None or error.get("pointer") == "/event_name"
        for error in errors
    )


def preview_contracts(
    cursor: duckdb.DuckDBPyConnection,
    registry: Registry,
    window: TimeWindow,
    *,
    service: str | None = None,
    examples: int = DEFAULT_EXAMPLES,
) -> Preview:
    """Check the stored and quarantined records of ``window`` against ``registry``.

    Args:
        cursor: a reading cursor of the store.
        registry: the proposed contracts.
        window: records by event time (quarantined ones without one: by quarantine time).
        service: only this service's records.
        examples: how many would-be rejections to show per group.
    """
    check = _checker(registry)
    preview = Preview(window, [f"{c.name}@{c.version}" for c in registry.contracts])
    params = {"start": window.start, "end": window.end, "service": service}
    for table, key in _STORED.items():
        source = "source = 'opa_decision_log'" if table == "decisions" else "false"
        cursor.execute(
            f"SELECT service_name, contract_id, {key}, epoch_us(time), {source}, "  # noqa: S608 - constants
            f'attributes::VARCHAR FROM "{table}" WHERE time >= $start AND time < $end '
            "AND ($service IS NULL OR service_name = $service) ORDER BY time",
            params,
        )
        for rows in _batches(cursor):
            for row_service, stored_contract, record_key, time, from_opa, text in rows:
                verdict = check(bool(from_opa), orjson.loads(text))
                group = preview.group(row_service, verdict.contract_id or stored_contract)
                group.accepted_checked += 1
                if verdict.ok:
                    continue
                group.would_reject += 1
                if len(group.examples) < examples:
                    group.examples.append(
                        {"table": table, "key": record_key, "time": _instant(time),
                         "errors": _violations(verdict)}
                    )  # fmt: skip
    cursor.execute(
        "SELECT service_name, contract_id, signal, errors::VARCHAR, record::VARCHAR "
        "FROM quarantine WHERE status = 'quarantined' "
        "AND coalesce(time, quarantined_at) >= $start AND coalesce(time, quarantined_at) < $end "
        "AND ($service IS NULL OR service_name = $service)",
        params,
    )
    for rows in _batches(cursor):
        for row_service, old_contract, signal, errors, text in rows:
            if signal not in _RECHECKED_SIGNALS or not _contract_errors_only(orjson.loads(errors)):
                preview.not_rechecked += 1
                continue
            verdict = check(signal == _OPA_SOURCE, orjson.loads(text))
            group = preview.group(row_service, verdict.contract_id or old_contract)
            group.quarantined_checked += 1
            if verdict.ok and verdict.contract_version is not None:
                group.would_pass += 1
    return preview
