"""One export request, from bytes to rows: decode → canonical form → contracts → rows.

Transport-neutral: the HTTP routes and the gRPC servicers both call :meth:`IngestPipeline.prepare`
and hand the resulting :class:`~store.batch.WriteBatch` to the writer. Records are rejected one
by one (never the whole request for one bad record): each rejected record is kept whole in the
quarantine with its reasons and counted in the OTLP partial success. A log record no contract
claims (see :class:`~contracts.Verdict`'s ``uncontracted``) is, by the ``uncontracted`` setting,
counted only (``ignore``), also stored in its own table (``keep``) or rejected (``reject``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from contracts import Registry, UnknownContract, Verdict, Violation, normalize_legacy
from ingest.auth import Grant
from ingest.decode import CanonicalRecord, canonical_traces, decode_logs, decode_request
from ingest.decode.metrics import canonical_metrics
from ingest.decode.opa import OPA_SOURCE, decode_opa
from ingest.limits import Limits
from ingest.rows import RequestRows
from store.batch import LedgerEntry, WriteBatch

Signal = Literal["logs", "traces", "metrics", "opa"]
"""What a request carries; ``opa`` is an Open Policy Agent decision-log upload (HTTP only)."""
Transport = Literal["http", "grpc"]
Uncontracted = Literal["ignore", "keep", "reject"]

# how many rejected records the partial-success message describes before summarising
_MESSAGE_EXAMPLES = 5
_SPAN_SERVICE_MISSING = {
    "contract": None,
    "version": None,
    "pointer": "/service.name",
    "message": "resource attribute service.name is required on every span",
}


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """What the transport knows about a request before decoding it."""

    request_id: int
    signal: Signal
    transport: Transport
    encoding: Literal["protobuf", "json"] | None
    compression: str | None
    body_bytes: int
    received_at: datetime
    grant: Grant | None = None  # the bearer token's grant, when the server requires tokens


@dataclass(frozen=True, slots=True)
class PreparedExport:
    """A decoded and checked request, ready for the writer."""

    batch: WriteBatch
    received: int
    rejected: int
    error_message: str
    services: tuple[str, ...]


def _violation_dict(violation: Violation) -> dict[str, Any]:
    return {
        "contract": violation.contract_id,
        "version": violation.contract_version,
        "pointer": violation.pointer,
        "message": violation.message,
    }


def _limit_errors(messages: Sequence[str]) -> list[dict[str, Any]]:
    return [{"contract": None, "version": None, "pointer": "", "message": m} for m in messages]


def _record_errors(item: CanonicalRecord, verdict: Verdict) -> list[dict[str, Any]]:
    """What one record broke, per-record limits first, as quarantine errors (often none)."""
    if not (item.limit_violations or verdict.violations):
        return []
    errors = _limit_errors(item.limit_violations)
    errors.extend(_violation_dict(v) for v in verdict.violations)
    return errors


def _describe(errors: Sequence[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        where = f"{error['contract']}@{error['version']} " if error["contract"] else ""
        parts.append(f"{where}{error['pointer'] or '/'}: {error['message']}")
    return "; ".join(parts)


class _Rejections:
    """Collects the rejected records' reasons for the partial-success message."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.count = 0
        self.examples: list[str] = []

    def add(self, index: int, errors: Sequence[dict[str, Any]]) -> None:
        self.count += 1
        if len(self.examples) < _MESSAGE_EXAMPLES:
            self.examples.append(f"{self.unit} {index}: {_describe(errors)}")

    def message(self, received: int) -> str:
        if not self.count:
            return ""
        text = f"rejected {self.count} of {received} {self.unit}s: " + " | ".join(self.examples)
        if self.count > len(self.examples):
            text += f" | (+{self.count - len(self.examples)} more, see the quarantine table)"
        return text


class IngestPipeline:
    """Turns export requests into write batches, checking every record against its contract."""

    def __init__(
        self, registry: Registry, limits: Limits, uncontracted: Uncontracted = "ignore"
    ) -> None:
        self.registry = registry
        self.limits = limits
        self.uncontracted: Uncontracted = uncontracted

    def prepare(
        self, meta: RequestMeta, body: bytes, *, content_type: str, content_encoding: str | None
    ) -> PreparedExport:
        """Decode and check one request.

        Raises:
            IngestError: the request as a whole cannot be used (bad body, too large, ...).
        """
        rows = RequestRows(meta.request_id)
        if meta.signal == "logs":
            items = decode_logs(
                body,
                content_type=content_type,
                content_encoding=content_encoding,
                limits=self.limits,
            )
            received, rejections, services = self._logs(items, rows, meta.grant)
        elif meta.signal == "opa":
            items = decode_opa(
                body,
                content_type=content_type,
                content_encoding=content_encoding,
                limits=self.limits,
            )
            received, rejections, services = self._logs(items, rows, meta.grant, OPA_SOURCE)
        else:
            message = decode_request(
                meta.signal,
                body,
                content_type=content_type,
                content_encoding=content_encoding,
                limits=self.limits,
            )
            if meta.signal == "traces":
                received, rejections, services = self._traces(message, rows, meta.grant)
            else:
                received, rejections, services = self._metrics(message, rows, meta.grant)
        error_message = rejections.message(received)
        ledger = LedgerEntry(
            request_id=meta.request_id,
            received_at=meta.received_at,
            transport=meta.transport,
            signal=meta.signal,
            encoding=meta.encoding,
            compression=meta.compression,
            body_bytes=meta.body_bytes,
            received=received,
            accepted=received - rejections.count,
            rejected=rejections.count,
            status_code=200,
            error=error_message or None,
            services=tuple(sorted(services)),
            uncontracted=rows.uncontracted_counts(),
        )
        return PreparedExport(
            batch=WriteBatch(ledger=ledger, tables=rows.arrow_tables()),
            received=received,
            rejected=rejections.count,
            error_message=error_message,
            services=tuple(sorted(services)),
        )

    def _check(
        self, items: Sequence[CanonicalRecord]
    ) -> list[tuple[str | None, str | None, list[dict[str, Any]], tuple[str, ...]]]:
        """Contract verdicts for canonical records: (contract, version, errors, renamed)."""
        renamed = [normalize_legacy(item.record) for item in items]
        verdicts = self.registry.check_batch([item.record for item in items])
        results = []
        for item, verdict, names in zip(items, verdicts, renamed, strict=True):
            errors = _record_errors(item, verdict)
            results.append((verdict.contract_id, verdict.contract_version, errors, names))
        return results

    def _source_check(self, source: str) -> Callable[[Mapping[str, Any]], Verdict]:
        """The check of the contract bound to a receiver; without one, every record fails."""
        try:
            return self.registry.source_contract(source).check
        except UnknownContract as exc:
            problem = f"{exc}: add a contract whose x-flaglens names source {source!r}"
            verdict = Verdict(None, None, (Violation(None, None, "", problem),))
            return lambda _record: verdict

    def _logs(
        self,
        items: list[CanonicalRecord],
        rows: RequestRows,
        grant: Grant | None,
        source: str | None = None,
    ) -> tuple[int, _Rejections, set[str]]:
        """Log records (or, with ``source``, that receiver's records) checked and added."""
        rejections = _Rejections("log record" if source is None else "decision")
        services: set[str] = set()
        check = self.registry.check if source is None else self._source_check(source)
        signal = "logs" if source is None else source
        for index, item in enumerate(items):  # the hot loop: one pass per record
            record = item.record
            renamed = normalize_legacy(record)
            verdict = check(record)
            service = record.get("service.name")
            if isinstance(service, str):
                services.add(service)
            if verdict.uncontracted and self._accepts_uncontracted(item, service, grant):
                rows.add_uncontracted(record, keep=self.uncontracted == "keep")
                continue
            errors = _record_errors(item, verdict)
            if grant is not None and not grant.allows(service):
                errors = [_not_allowed(grant, service), *errors]
            contract, version = verdict.contract_id, verdict.contract_version
            if not errors and contract is not None and version is not None:
                if rows.add_event(
                    record, contract_id=contract, contract_version=version, renamed=renamed
                ):
                    continue
                errors = [
                    {
                        "contract": contract,
                        "version": version,
                        "pointer": "/event_name",
                        "message": f"event {record.get('event_name')!r} has no table to store it",
                    }
                ]
            rows.add_quarantine(
                signal=signal,
                record=record,
                event_name=_event_name(record),
                contract_id=contract,
                contract_version=version,
                errors=errors,
            )
            rejections.add(index, errors)
        return len(items), rejections, services

    def _accepts_uncontracted(
        self, item: CanonicalRecord, service: object, grant: Grant | None
    ) -> bool:
        """Whether a record no contract claims is accepted: not in ``reject`` mode, not from a
        service its token may not write, and (when it is to be stored) within the limits."""
        if self.uncontracted == "reject" or (grant is not None and not grant.allows(service)):
            return False
        return self.uncontracted == "ignore" or not item.limit_violations

    def _metrics(
        self, request: Any, rows: RequestRows, grant: Grant | None
    ) -> tuple[int, _Rejections, set[str]]:
        decoded = canonical_metrics(request, self.limits)
        rejections = _Rejections("data point")
        index = 0
        for point in decoded.points:
            service = point.values["service_name"]
            if grant is not None and not grant.allows(service):
                errors = [_not_allowed(grant, service)]
                self._quarantine_point(rows, point.values["attributes"], errors)
                rejections.add(index, errors)
            else:
                rows.add_metric_point(point.values)
            index += 1
        for rejected in decoded.rejected:
            errors = [
                {"contract": None, "version": None, "pointer": "", "message": rejected.problem}
            ]
            self._quarantine_point(rows, rejected.record, errors)
            rejections.add(index, errors)
            index += 1
        for (service, metric, kind), points in decoded.dropped.items():
            rows.add_metric_drop(service=service, metric=metric, kind=kind, points=points)
        return decoded.received, rejections, decoded.services

    @staticmethod
    def _quarantine_point(
        rows: RequestRows, record: dict[str, Any], errors: list[dict[str, Any]]
    ) -> None:
        rows.add_quarantine(
            signal="metrics",
            record=record,
            event_name=str(record.get("metric")),
            contract_id=None,
            contract_version=None,
            errors=errors,
        )

    def _traces(
        self, request: Any, rows: RequestRows, grant: Grant | None
    ) -> tuple[int, _Rejections, set[str]]:
        spans, events = canonical_traces(request, self.limits)
        checked = self._check(events)
        # a span is rejected (and quarantined whole) when any of its decision events is
        events_by_span: dict[int, list[int]] = {}
        for event_index, event in enumerate(events):
            events_by_span.setdefault(event.span_index, []).append(event_index)
        rejections = _Rejections("span")
        services: set[str] = set()
        for span_index, span in enumerate(spans):
            if span.service_name:
                services.add(span.service_name)
            errors = _limit_errors(span.limit_violations)
            if not span.service_name:
                errors.append(dict(_SPAN_SERVICE_MISSING))
            elif grant is not None and not grant.allows(span.service_name):
                errors.append(_not_allowed(grant, span.service_name))
            own_events = events_by_span.get(span_index, [])
            for event_index in own_events:
                errors.extend(checked[event_index][2])
            if errors:
                record = dict(span.attributes)
                record["span.name"] = span.name
                record["events"] = [events[i].record for i in own_events]
                rows.add_quarantine(
                    signal="traces",
                    record=record,
                    event_name="span",
                    contract_id=next((c[0] for i in own_events if (c := checked[i])[2]), None),
                    contract_version=next((c[1] for i in own_events if (c := checked[i])[2]), None),
                    errors=errors,
                )
                rejections.add(span_index, errors)
                continue
            rows.add_span(span.row())
            for event_index in own_events:
                contract, version, _, renamed = checked[event_index]
                rows.add_event(
                    events[event_index].record,
                    contract_id=contract or "",
                    contract_version=version or "",
                    renamed=renamed,
                )
        return len(spans), rejections, services


def _not_allowed(grant: Grant, service: object) -> dict[str, Any]:
    shown = repr(service)
    if len(shown) > 200:
        shown = shown[:200] + f"... ({len(shown)} characters)"
    if not isinstance(service, str):
        shown = f"{shown} (a {type(service).__name__}, not a string)"
    return {
        "contract": None,
        "version": None,
        "pointer": "/service.name",
        "message": f"service.name {shown} may not be written with token {grant.name!r} "
        f"(it may write: {', '.join(sorted(grant.services))})",
    }


def _event_name(record: dict[str, Any]) -> str | None:
    name = record.get("event_name")
    return name if isinstance(name, str) else None


def utc_now() -> datetime:
    """The current instant, UTC-aware."""
    return datetime.now(UTC)
