"""The alert evaluator: pending → firing → resolved per label set, with history and an outbox.

One evaluation at instant ``now``:

1. every rule lists its instances (label sets whose condition holds, :mod:`.rules`);
2. each instance is identified by its *fingerprint* (a hash of its sorted labels); a new one
   becomes ``pending``, or ``firing`` at once when the rule's ``for`` is 0; a pending one
   becomes ``firing`` once it has held for ``for``; a firing one that no longer holds becomes
   ``resolved`` (a pending one is dropped quietly, as Prometheus does);
3. firing alerts that are new, or whose last notification is older than the receiver's
   ``repeat_interval``, and newly resolved ones, are grouped by the receiver's ``group_by``
   labels into Alertmanager webhook payloads (version 4) and queued in ``alert_outbox``.

Every transition is written to ``alert_history``; the state and the outbox are written in the
same transaction, so a crash never loses or repeats a notification. The conditions (step 1) are
queried on a reader cursor; steps 2 and 3, which read the current state and write the next, run
as one write function of the store's writer (see :mod:`store.write_fns`). :mod:`.webhook`
delivers the outbox with retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from alerts.rules import CONDITIONS, AlertConfig, Instance, Rule
from analytics.errors import AnalyticsError
from analytics.session import Session
from contracts.errors import ContractError
from store.writer import StoreWriter

log = logging.getLogger(__name__)
_NEVER = "0001-01-01T00:00:00Z"
_Write = tuple[str, dict[str, Any]]  # a statement and its parameters, run in one transaction


def fingerprint(labels: dict[str, str]) -> str:
    text = json.dumps(labels, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The key/value pairs every map shares."""
    shared = dict(maps[0])
    for other in maps[1:]:
        shared = {k: v for k, v in shared.items() if other.get(k) == v}
    return shared


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Transition:
    fingerprint: str
    rule: str
    labels: dict[str, str]
    from_state: str | None
    to_state: str


@dataclass
class Evaluation:
    at: datetime
    active: int = 0
    transitions: list[Transition] = field(default_factory=list)
    notifications: int = 0
    failed_rules: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what the read API answers for a dry run."""
        return {
            "at": _rfc3339(self.at),
            "active": self.active,
            "transitions": [
                {"fingerprint": t.fingerprint, "rule": t.rule, "labels": t.labels,
                 "from_state": t.from_state, "to_state": t.to_state}
                for t in self.transitions
            ],
            "notifications": self.notifications,
            "failed_rules": sorted(self.failed_rules),
        }  # fmt: skip


@dataclass
class _Current:
    fingerprint: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    active_since: datetime
    last_notified_at: datetime | None
    value: float | None
    page: str = ""


class Evaluator:
    """Evaluates the rules against a store and queues notifications (see module docstring).

    Its writes go to ``writer``; one built without a writer only plans (``dry_run``), as the
    read API and a read-only database do.
    """

    def __init__(
        self,
        session: Session,
        config: AlertConfig,
        writer: StoreWriter | None = None,
        *,
        dashboards_url: str = "",
    ) -> None:
        self.session = session
        self.config = config
        self.writer = writer
        self.dashboards_url = dashboards_url.rstrip("/")

    def _instances(
        self, cursor: duckdb.DuckDBPyConnection, now: datetime, failed: set[str]
    ) -> dict[str, tuple[Rule, Instance, dict[str, str], dict[str, str]]]:
        active = {}
        for rule in self.config.rules:
            try:
                instances = CONDITIONS[rule.kind](cursor, rule, now, self.session)
            except (AnalyticsError, ContractError, duckdb.Error) as exc:
                # a rule that cannot be evaluated must not resolve its alerts
                log.error("alert rule %s failed; its alerts keep their state: %s", rule.name, exc)
                failed.add(rule.name)
                continue
            for instance in instances:
                labels = {"alertname": rule.name, "severity": rule.severity, **rule.labels}
                labels.update(instance.labels)
                values = _Defaults(labels)
                annotations = {k: v.format_map(values) for k, v in rule.annotations.items()}
                link = f"{self.dashboards_url}{instance.page}" if self.dashboards_url else ""
                if link:
                    annotations["dashboard"] = link
                active[fingerprint(labels)] = (rule, instance, labels, annotations)
        return active

    def _current(self, cursor: duckdb.DuckDBPyConnection) -> dict[str, _Current]:
        rows = cursor.execute(
            "SELECT fingerprint, rule, labels, annotations, state, active_since, "
            "last_notified_at, value FROM alert_state WHERE state IN ('pending', 'firing')"
        ).fetchall()
        return {
            r[0]: _Current(r[0], r[1], json.loads(r[2]), json.loads(r[3]), r[4], r[5], r[6], r[7])
            for r in rows
        }

    def evaluate(self, now: datetime | None = None, *, dry_run: bool = False) -> Evaluation:
        """Run every rule once at ``now``; returns what changed.

        With ``dry_run`` nothing is written (the writer is not even asked): the result says
        what an evaluation at ``now`` would change and queue, given the stored states.

        Raises:
            StoreError: the writer could not store the new state (nothing was stored).
        """
        at = now or datetime.now(UTC)
        cursor = self.session.cursor()
        failed: set[str] = set()
        active = self._instances(cursor, at, failed)
        if dry_run:
            result = Evaluation(at, failed_rules=failed)
            self._plan(cursor, active, result, [], at)
            return result
        if self.writer is None:
            msg = (
                "this Evaluator was built without the store's writer, so it can only plan: "
                "pass the writer (Evaluator(session, config, writer)) or evaluate(dry_run=True)"
            )
            raise ValueError(msg)

        def apply(cursor: duckdb.DuckDBPyConnection) -> Evaluation:
            # planned on the writer's cursor, inside its transaction, so the stored state it
            # starts from is the one it replaces
            result = Evaluation(at, failed_rules=failed)
            writes: list[_Write] = []
            self._plan(cursor, active, result, writes, at)
            for sql, params in writes:
                cursor.execute(sql, params)
            return result

        return self.writer.execute_write_fn(apply).result()

    def _plan(
        self,
        cursor: duckdb.DuckDBPyConnection,
        active: dict[str, tuple[Rule, Instance, dict[str, str], dict[str, str]]],
        result: Evaluation,
        writes: list[_Write],
        now: datetime,
    ) -> None:
        """Work out the transitions and notifications against the stored states, filling
        ``result`` and listing the statements that record them in ``writes``."""
        result.active = len(active)
        current = self._current(cursor)
        notify: list[tuple[_Current, str]] = []
        for fp, (rule, instance, labels, notes) in active.items():
            known = current.get(fp)
            if known is None:
                state = "firing" if rule.for_.total_seconds() == 0 else "pending"
                known = _Current(fp, rule.name, labels, notes, state, now, None,
                                 instance.value)  # fmt: skip
                self._transition(writes, result, known, None, state, now)
            elif known.state == "pending" and now - known.active_since >= rule.for_:
                self._transition(writes, result, known, "pending", "firing", now)
                known.state = "firing"
            known.annotations, known.value = notes, instance.value
            known.page = instance.page
            repeat = self.config.receiver.repeat_interval
            if known.state == "firing" and (
                known.last_notified_at is None or now - known.last_notified_at >= repeat
            ):
                notify.append((known, "firing"))
            self._save(writes, known, now)
        for fp, known in current.items():
            if fp in active or known.rule in result.failed_rules:
                continue
            if known.state == "firing":
                self._transition(writes, result, known, "firing", "resolved", now)
                known.state = "resolved"
                notify.append((known, "resolved"))
            else:
                self._transition(writes, result, known, known.state, "inactive", now)
                known.state = "inactive"
            self._save(writes, known, now)
        result.notifications = self._enqueue(cursor, writes, notify, now)

    def _transition(
        self,
        writes: list[_Write],
        result: Evaluation,
        alert: _Current,
        from_state: str | None,
        to_state: str,
        now: datetime,
    ) -> None:
        result.transitions.append(
            Transition(alert.fingerprint, alert.rule, alert.labels, from_state, to_state)
        )
        writes.append((
            "INSERT INTO alert_history VALUES ($at, $fp, $rule, $labels, $from, $to, $value)",
            {
                "at": now, "fp": alert.fingerprint, "rule": alert.rule,
                "labels": json.dumps(alert.labels), "from": from_state, "to": to_state,
                "value": alert.value,
            },
        ))  # fmt: skip

    def _save(self, writes: list[_Write], alert: _Current, now: datetime) -> None:
        # a DELETE and an INSERT rather than INSERT OR REPLACE: a DuckLake store has no
        # primary keys (the evaluator's transaction makes the pair one change)
        writes.append(
            ("DELETE FROM alert_state WHERE fingerprint = $fp", {"fp": alert.fingerprint})
        )
        writes.append((
            "INSERT INTO alert_state VALUES ($fp, $rule, $labels, $annotations, "
            "$state, $since, $fired, $resolved, $notified, $value)",
            {
                "fp": alert.fingerprint,
                "rule": alert.rule,
                "labels": json.dumps(alert.labels),
                "annotations": json.dumps(alert.annotations),
                "state": alert.state,
                "since": alert.active_since,
                "fired": now if alert.state == "firing" else None,
                "resolved": now if alert.state == "resolved" else None,
                "notified": alert.last_notified_at,
                "value": alert.value,
            },
        ))  # fmt: skip

    def _enqueue(
        self,
        cursor: duckdb.DuckDBPyConnection,
        writes: list[_Write],
        notify: list[tuple[_Current, str]],
        now: datetime,
    ) -> int:
        groups: dict[str, list[tuple[_Current, str]]] = {}
        group_labels: dict[str, dict[str, str]] = {}
        for alert, status in notify:
            labels = {k: alert.labels.get(k, "") for k in self.config.receiver.group_by}
            key = json.dumps(labels, sort_keys=True)
            groups.setdefault(key, []).append((alert, status))
            group_labels[key] = labels
        row = cursor.execute("SELECT coalesce(max(id), 0) FROM alert_outbox").fetchone()
        next_id = int(row[0]) + 1 if row else 1
        for key, members in groups.items():
            payload = self._payload(key, group_labels[key], members, now)
            writes.append((
                "INSERT INTO alert_outbox (id, created_at, group_key, status, payload, "
                "next_attempt_at) VALUES ($id, $now, $key, $status, $payload, $now)",
                {"id": next_id, "now": now, "key": key, "status": payload["status"],
                 "payload": json.dumps(payload)},
            ))  # fmt: skip
            next_id += 1
            for alert, _status in members:
                alert.last_notified_at = now
                self._save(writes, alert, now)
        return len(groups)

    def _payload(
        self,
        key: str,
        group_labels: dict[str, str],
        members: list[tuple[_Current, str]],
        now: datetime,
    ) -> dict[str, Any]:
        alerts: list[dict[str, Any]] = [
            {
                "status": status,
                "labels": alert.labels,
                "annotations": alert.annotations,
                "startsAt": _rfc3339(alert.active_since),
                "endsAt": _rfc3339(now) if status == "resolved" else _NEVER,
                "generatorURL": alert.annotations.get("dashboard", ""),
                "fingerprint": alert.fingerprint,
            }
            for alert, status in members
        ]
        common_labels = _common([alert.labels for alert, _ in members])
        common_annotations = _common([alert.annotations for alert, _ in members])
        return {
            "version": "4",
            "groupKey": f"{{}}:{key}",
            "truncatedAlerts": 0,
            "status": "firing" if any(s == "firing" for _, s in members) else "resolved",
            "receiver": "flaglens",
            "groupLabels": group_labels,
            "commonLabels": common_labels,
            "commonAnnotations": common_annotations,
            "externalURL": self.dashboards_url,
            "alerts": alerts,
        }
