"""Open Policy Agent decision logs → canonical ``feature_flag.evaluation`` records.

OPA's decision-log plugin POSTs a gzipped JSON array of events (``decision_id``, ``path``,
``input``, ``result``, ``bundles`` with their revisions, ``labels``, ``timestamp``, ...) to
``<service url><decision_logs.resource>``. Each event becomes one canonical decision, checked
against the contract bound to the ``opa`` source (``feature_flag.evaluation.opa``):

============================  ===================================================================
canonical field               from the event
============================  ===================================================================
``decision.id``               ``decision_id`` (the key duplicates are dropped by)
``feature_flag.key``          ``path`` (the decision asked for, ``authz/allow``), else ``query``
``policy.rule.id``            ``path``, else ``query``
``feature_flag.version``      the bundle revision (``name@revision`` joined by ``,`` when several
                              bundles; the deprecated top-level ``revision`` when no bundles)
``feature_flag.result.value`` ``result``; ``feature_flag.result.variant`` its text when scalar
``service.name``, ...         labels: ``service.name`` (else ``app``),
                              ``deployment.environment.name`` (else ``environment``),
                              ``policy.module`` (else ``security``: OPA decides authorization)
``time_unix_nano``            ``timestamp`` (RFC 3339, nanoseconds kept)
``trace_id``, ``span_id``     the same fields, when OPA's tracing set them
``error.type``                ``error.code`` of a failed evaluation
``opa.*``                     ``labels``, ``bundles``, ``input``, ``requested_by``, ``req_id``,
                              ``query``, ``erased``, ``masked``, ``error``, ``timestamp`` as sent
============================  ===================================================================

The record limits apply as to OTLP attributes: string length, nesting depth and the number of
fields (labels count as fields). An event over a limit, or one that is not a JSON object, is
quarantined with the reason; a body that is not a gzipped (or plain) JSON array is refused.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from ingest.decode.canonical import CanonicalRecord
from ingest.decode.compression import decompress
from ingest.errors import (
    MalformedDecisionLog,
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ingest.limits import Limits

OPA_MEDIA_TYPE = "application/json"
OPA_SOURCE = "opa"
DEFAULT_MODULE = "security"
_EVALUATION = "feature_flag.evaluation"
_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
_HEX = re.compile(r"^[0-9a-f]+$")
# event field → canonical field kept as sent
_KEPT = {
    "labels": "opa.labels", "bundles": "opa.bundles", "input": "opa.input",
    "requested_by": "opa.requested_by", "req_id": "opa.req_id", "query": "opa.query",
    "erased": "opa.erased", "masked": "opa.masked", "error": "opa.error",
    "timestamp": "opa.timestamp", "revision": "opa.revision",
}  # fmt: skip
# labels → canonical fields, first present wins
_LABELS = {
    "service.name": ("service.name", "app"),
    "deployment.environment.name": ("deployment.environment.name", "environment"),
    "policy.module": ("policy.module",),
}


def unix_nanos(text: Any) -> int | None:
    """An RFC 3339 timestamp (as Go marshals ``time.Time``) in unix nanoseconds, or None."""
    if not isinstance(text, str):
        return None
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{whole}{'+00:00' if zone.upper() == 'Z' else zone}")
    except ValueError:
        return None
    nanos = int(moment.timestamp()) * 1_000_000_000 + int((fraction or "").ljust(9, "0"))
    return nanos if nanos > 0 else None


def _too_big(value: Any, limits: Limits, depth: int = 1) -> str | None:
    """Why a JSON value breaks the per-record limits (None when it does not)."""
    if isinstance(value, str):
        if len(value) > limits.max_attribute_value_bytes // 4:
            size = len(value.encode())
            if size > limits.max_attribute_value_bytes:
                return (
                    f"a string value is {size} bytes, over the limit of "
                    f"{limits.max_attribute_value_bytes}"
                )
        return None
    if isinstance(value, dict | list):
        if depth >= limits.max_value_depth:
            return f"a value is nested deeper than {limits.max_value_depth} levels"
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict):
            for key in value:
                problem = _too_big(key, limits, depth)
                if problem:
                    return problem
        for child in children:
            problem = _too_big(child, limits, depth + 1)
            if problem:
                return problem
    return None


def _version(event: dict[str, Any]) -> str | None:
    bundles = event.get("bundles")
    if isinstance(bundles, dict) and bundles:
        revisions = {
            str(name): info.get("revision")
            for name, info in bundles.items()
            if isinstance(info, dict) and isinstance(info.get("revision"), str)
        }
        if len(revisions) == 1:
            return next(iter(revisions.values())) or None
        if revisions:
            return ",".join(f"{name}@{rev}" for name, rev in sorted(revisions.items()))
    revision = event.get("revision")
    return revision if isinstance(revision, str) and revision else None


def _variant(result: Any) -> str | None:
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, str):
        return result
    if isinstance(result, int | float):
        return orjson.dumps(result).decode()
    return None


def canonical_decision(event: Any, limits: Limits) -> CanonicalRecord:
    """One decision-log event as a canonical record (marked when it breaks a limit)."""
    if not isinstance(event, dict):
        problem = f"a decision log event must be a JSON object, not {type(event).__name__}"
        return CanonicalRecord({"signal": OPA_SOURCE, "opa.event": event}, (problem,))
    record: dict[str, Any] = {"event_name": _EVALUATION, "signal": OPA_SOURCE,
                              "feature_flag.provider.name": OPA_SOURCE}  # fmt: skip
    problems = []
    labels = event.get("labels")
    fields = len(event) + (len(labels) if isinstance(labels, dict) else 0)
    if fields > limits.max_attributes_per_record:
        problems.append(
            f"event has {fields} fields and labels, over the limit of "
            f"{limits.max_attributes_per_record}"
        )
    for key, value in event.items():
        too_big = _too_big(value, limits) or _too_big(key, limits)
        if too_big:
            problems.append(f"{key}: {too_big}")
    for source, target in _KEPT.items():
        if source in event:
            record[target] = event[source]
    if "decision_id" in event:
        record["decision.id"] = event["decision_id"]
    asked = event.get("path") or event.get("query")
    if asked is not None:
        record["feature_flag.key"] = asked
        record["policy.rule.id"] = asked
    if "result" in event:
        record["feature_flag.result.value"] = event["result"]
        variant = _variant(event["result"])
        if variant is not None:
            record["feature_flag.result.variant"] = variant
    version = _version(event)
    if version is not None:
        record["feature_flag.version"] = version
    if isinstance(labels, dict):
        for target, names in _LABELS.items():
            found = next((labels[n] for n in names if n in labels), None)
            if found is not None:
                record[target] = found
    record.setdefault("policy.module", DEFAULT_MODULE)
    nanos = unix_nanos(event.get("timestamp"))
    if nanos is not None:
        record["time_unix_nano"] = nanos
    for name, length in (("trace_id", 32), ("span_id", 16)):
        value = event.get(name)
        if isinstance(value, str) and len(value) == length and _HEX.match(value):
            record[name] = value
    error = event.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        record["error.type"] = error["code"]
    return CanonicalRecord(record, tuple(problems))


def decode_opa(
    body: bytes, *, content_type: str, content_encoding: str | None, limits: Limits
) -> list[CanonicalRecord]:
    """A decision-log upload → one canonical record per event.

    Raises:
        UnsupportedMediaType, UnsupportedEncoding, PayloadTooLarge, MalformedRequest.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != OPA_MEDIA_TYPE:
        raise UnsupportedMediaType(content_type or None, (OPA_MEDIA_TYPE,))
    try:
        raw = decompress(body, content_encoding, limits)
    except MalformedDecisionLog:
        raise
    except MalformedRequest as exc:  # say what the body was meant to be
        raise MalformedDecisionLog(exc.problem) from exc
    if not raw.strip():
        raise MalformedDecisionLog("empty body; OPA sends a JSON array of decision events")
    try:
        events = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedDecisionLog(f"not JSON ({exc})") from exc
    if not isinstance(events, list):
        raise MalformedDecisionLog(
            f"an upload is a JSON array of decision events, not a {type(events).__name__}"
        )
    if len(events) > limits.max_records_per_request:
        raise PayloadTooLarge(
            limit=limits.max_records_per_request, received=len(events), stage="records"
        )
    return [canonical_decision(event, limits) for event in events]
