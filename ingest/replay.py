"""Quarantine replay: quarantined records that pass the contracts loaded now go to their tables.

A record quarantined under a contract that has since been fixed (a new version allows what it
sent) is checked again; one that passes is written to its table (``decisions``,
``policy_changes``, ``engagement``) through the one writer, as one request of its own
(transport ``replay`` in ``ingest_log``), so the writer's dedupe by ``decision.id`` /
``policy.change.id`` applies. The quarantine row stays; ``quarantine_releases`` gets a row
saying when it was released, by whom and under which contract version, and a row released
once is never replayed again (so a replay run twice releases nothing the second time).

Only log records and OPA decisions are replayed. Spans are quarantined whole with their events
(a span cannot be rebuilt from what the quarantine keeps), and records rejected for something
other than their contract (a size limit, a token that may not write the service) stay rejected
whatever the contracts say.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from contracts import Contract, Registry, UnknownContract, Verdict, Violation
from ingest.decode.opa import OPA_SOURCE
from ingest.rows import EVENT_TABLES, RequestRows
from store.batch import LedgerEntry, WriteBatch, WriteResult
from store.connection import Store
from store.errors import WriterOverloaded
from store.tables import arrow_table
from store.writer import StoreWriter

REPLAYED_SIGNALS = ("logs", OPA_SOURCE)
REPLAY_TRANSPORT = "replay"
# the canonical field that names each table's records (what the writer dedupes by)
_RECORD_KEYS: Mapping[str, str] = {
    "decisions": "decision.id",
    "policy_changes": "policy.change.id",
}
# quarantine errors that are about the record's contract: the rest (limits, tokens) stay
_NO_CONTRACT_POINTER = "/event_name"
_EXAMPLES = 3
_SUBMIT_PATIENCE = 120.0  # seconds a replay waits for room in a writer busy with ingest
# one replay at a time per process: two would both see a row as not yet released
_REPLAY_LOCK = threading.Lock()


class ReplayError(ValueError):
    """A replay that cannot run as asked (an unknown contract, a malformed --contract)."""


@dataclass(frozen=True, slots=True)
class ReplaySelection:
    """Which quarantined rows a replay looks at, and against what."""

    contract: str | None = None
    """Only rows quarantined under this contract (and checked against ``version`` of it)."""
    version: str | None = None
    """Check against this version (exact or a major) of ``contract``; None: route as ingest."""
    service: str | None = None
    since: datetime | None = None
    """Only rows quarantined at or after this instant."""

    @classmethod
    def parse(
        cls, contract: str | None, service: str | None = None, since: datetime | None = None
    ) -> ReplaySelection:
        """From ``--contract NAME[@VERSION]``.

        Raises:
            ReplayError: an empty name or version.
        """
        name, version = contract, None
        if contract is not None:
            name, _, version_text = contract.partition("@")
            version = version_text or None
            if not name or ("@" in contract and not version_text):
                raise ReplayError(
                    f"--contract {contract!r} is not NAME or NAME@VERSION "
                    "(e.g. feature_flag.evaluation.privacy@1.2.0)"
                )
        return cls(name, version, service, since)


@dataclass
class ReplayGroup:
    """What one (service, contract) group of quarantined rows came to."""

    service: str | None
    contract: str | None
    checked: int = 0
    released: int = 0
    still_rejected: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    """The first rows still rejected: their new errors."""


@dataclass
class ReplayResult:
    """The counts a replay reports (``request_id`` 0: nothing was written)."""

    dry_run: bool
    contracts: list[str]
    checked: int = 0
    released: int = 0
    still_rejected: int = 0
    not_replayable: int = 0
    """Rows a replay never releases: spans, metric points, limit or token rejections."""
    duplicates: int = 0
    """Released rows the writer dropped because their key was stored already."""
    request_id: int = 0
    groups: dict[tuple[str | None, str | None], ReplayGroup] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "contracts": self.contracts,
            "checked": self.checked,
            "released": self.released,
            "still_rejected": self.still_rejected,
            "not_replayable": self.not_replayable,
            "duplicates": self.duplicates,
            "request_id": self.request_id,
            "groups": [
                {
                    "service": g.service,
                    "contract": g.contract,
                    "checked": g.checked,
                    "released": g.released,
                    "still_rejected": g.still_rejected,
                    "examples": g.examples,
                }
                for _, g in sorted(self.groups.items(), key=lambda kv: str(kv[0]))
            ],
        }


def _contract_errors_only(errors: list[dict[str, Any]]) -> bool:
    """Whether every reason a row was rejected for is its contract's (or its lack of one)."""
    return all(
        error.get("contract") is not None or error.get("pointer") == _NO_CONTRACT_POINTER
        for error in errors
    )


def _checker(
    registry: Registry, selection: ReplaySelection
) -> Callable[[str, Mapping[str, Any]], Verdict]:
    """How a row is checked: against the pinned contract version, the receiver's contract
    (OPA), or routed as ingest routes it."""
    pinned: Contract | None = None
    if selection.version is not None and selection.contract is not None:
        try:
            pinned = registry.get(selection.contract, selection.version)
        except UnknownContract as exc:
            raise ReplayError(str(exc)) from exc
    elif selection.contract is not None:
        try:
            registry.get(selection.contract)
        except UnknownContract as exc:
            raise ReplayError(str(exc)) from exc
    try:
        opa: Callable[[Mapping[str, Any]], Verdict] | None = registry.source_contract(
            OPA_SOURCE
        ).check
    except UnknownContract:
        opa = None

    def check(signal: str, record: Mapping[str, Any]) -> Verdict:
        if pinned is not None:
            return pinned.check(record)
        if signal == OPA_SOURCE:
            if opa is None:
                problem = f"no contract names source {OPA_SOURCE!r}"
                return Verdict(None, None, (Violation(None, None, "", problem),))
            return opa(record)
        return registry.check(record)

    return check


def _submit(writer: StoreWriter, batch: WriteBatch) -> Future[WriteResult]:
    """Queue the release; while ingest fills the writer, wait for room as an exporter would."""
    deadline = time.monotonic() + _SUBMIT_PATIENCE
    while True:
        try:
            return writer.submit(batch)
        except WriterOverloaded as exc:
            if time.monotonic() + exc.retry_after > deadline:
                raise
            time.sleep(exc.retry_after)


_CANDIDATES = """
SELECT q.request_id, md5(q.record::VARCHAR) AS record_md5, q.signal, q.event_name,
       q.service_name, q.contract_id, q.errors::VARCHAR, q.record::VARCHAR
FROM quarantine q
WHERE q.status = 'quarantined'
  AND ($contract IS NULL OR q.contract_id = $contract)
  AND ($service IS NULL OR q.service_name = $service)
  AND ($since IS NULL OR q.quarantined_at >= $since)
  AND NOT EXISTS (
      SELECT 1 FROM quarantine_releases r
      WHERE r.quarantine_request_id = q.request_id AND r.record_md5 = md5(q.record::VARCHAR))
ORDER BY q.quarantined_at, q.request_id
"""


def replay_quarantine(
    store: Store,
    writer: StoreWriter,
    registry: Registry,
    selection: ReplaySelection,
    *,
    dry_run: bool = False,
    released_by: str = "local",
) -> ReplayResult:
    """Check the selected quarantined rows again; write those that pass (unless ``dry_run``).

    Returns once the writer has committed the released rows.

    Raises:
        ReplayError: the selection names a contract (or version) not loaded.
        StoreError: the commit failed.
    """
    check = _checker(registry, selection)
    result = ReplayResult(dry_run, [f"{c.name}@{c.version}" for c in registry.contracts])
    with _REPLAY_LOCK:
        cursor = store.cursor()
        try:
            rows = cursor.execute(
                _CANDIDATES,
                {"contract": selection.contract, "service": selection.service,
                 "since": selection.since},
            ).fetchall()  # fmt: skip
        finally:
            cursor.close()
        request_id = 0 if dry_run else writer.next_request_id()
        out = RequestRows(request_id)
        releases: list[dict[str, Any]] = []
        services: set[str] = set()
        for q_request, md5, signal, event_name, service, contract_id, errors, text in rows:
            if signal not in REPLAYED_SIGNALS or not _contract_errors_only(orjson.loads(errors)):
                result.not_replayable += 1
                continue
            record = orjson.loads(text)
            verdict = check(signal, record)
            table = EVENT_TABLES.get(str(record.get("event_name")))
            group_key = (service, verdict.contract_id or contract_id)
            group = result.groups.get(group_key)
            if group is None:
                group = result.groups[group_key] = ReplayGroup(*group_key)
            group.checked += 1
            result.checked += 1
            contract, version = verdict.contract_id, verdict.contract_version
            if not verdict.ok or table is None or contract is None or version is None:
                group.still_rejected += 1
                result.still_rejected += 1
                if len(group.examples) < _EXAMPLES:
                    group.examples.append(
                        {"quarantine_request_id": q_request, "errors": [
                            {"pointer": v.pointer, "message": v.message}
                            for v in verdict.violations
                        ] or [{"pointer": "/event_name", "message": "no table for this event"}]}
                    )  # fmt: skip
                continue
            group.released += 1
            result.released += 1
            if dry_run:
                continue
            out.add_event(record, contract_id=contract, contract_version=version, renamed=())
            if isinstance(service, str):
                services.add(service)
            key_field = _RECORD_KEYS.get(table or "")
            key = record.get(key_field) if key_field else None
            releases.append(
                {
                    "request_id": request_id,
                    "quarantine_request_id": q_request,
                    "record_md5": md5,
                    "signal": signal,
                    "event_name": event_name,
                    "service_name": service,
                    "target_table": table,
                    "record_key": key if isinstance(key, str) else None,
                    "contract_id": contract,
                    "contract_version": version,
                    "released_by": released_by,
                }
            )
        if dry_run or not releases:
            return result
        tables: dict[str, pa.Table] = dict(out.arrow_tables())
        tables["quarantine_releases"] = arrow_table(
            "quarantine_releases", {n: [r[n] for r in releases] for n in releases[0]}
        )
        ledger = LedgerEntry(
            request_id=request_id,
            received_at=datetime.now(UTC),
            transport=REPLAY_TRANSPORT,
            signal="logs",
            encoding=None,
            compression=None,
            body_bytes=0,
            received=len(releases),
            accepted=len(releases),
            rejected=0,
            status_code=200,
            error=None,
            services=tuple(sorted(services)),
        )
        written = _submit(writer, WriteBatch(ledger=ledger, tables=tables)).result()
        result.duplicates = written.duplicates
        result.request_id = request_id
    return result
