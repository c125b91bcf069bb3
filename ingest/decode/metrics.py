"""ExportMetricsServiceRequest → the metric points flaglens keeps, and counts of the rest.

The rule (README § Metrics): every data point of a histogram named
``http.server.request.duration`` and of every monotonic sum (a counter) is kept, with its
temporality as sent; points of every other metric (gauges, non-monotonic sums, other
histograms, exponential histograms, summaries) are accepted and counted per metric in
``metric_drops``. A point whose resource has no ``service.name``, or that breaks a record
limit, is rejected and quarantined.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.decode.canonical import _check_count, _Converter, _OverLimit, _resource
from ingest.limits import Limits

LATENCY_HISTOGRAM = "http.server.request.duration"
_TEMPORALITY = {1: "delta", 2: "cumulative"}


@dataclass(slots=True)
class MetricPoint:
    """One kept data point, in `metric_points` columns (times in unix nanoseconds)."""

    values: dict[str, Any]


@dataclass(slots=True)
class RejectedPoint:
    record: dict[str, Any]
    problem: str


@dataclass(slots=True)
class DecodedMetrics:
    points: list[MetricPoint] = field(default_factory=list)
    rejected: list[RejectedPoint] = field(default_factory=list)
    # (service, metric, kind) → points accepted but not kept
    dropped: Counter[tuple[str | None, str, str]] = field(default_factory=Counter)
    services: set[str] = field(default_factory=set)

    @property
    def received(self) -> int:
        return len(self.points) + len(self.rejected) + sum(self.dropped.values())


def _kept(metric: Any, kind: str | None) -> bool:
    if kind == "histogram":
        return bool(metric.name == LATENCY_HISTOGRAM)
    return kind == "sum" and bool(metric.sum.is_monotonic)


def _series(resource: dict[str, Any], metric: str, attributes: dict[str, Any]) -> str:
    key = orjson.dumps(
        [resource.get("service.name"), resource.get("deployment.environment.name"), metric,
         attributes],
        option=orjson.OPT_SORT_KEYS,
    )  # fmt: skip
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:20]


def _status(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def canonical_metrics(request: Any, limits: Limits) -> DecodedMetrics:
    """Every data point of the request, kept, dropped by the rule, or rejected."""
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                total += len(getattr(metric, kind).data_points) if kind else 0
    _check_count(total, limits)
    converter = _Converter(limits)
    out = DecodedMetrics()
    for resource_metrics in request.resource_metrics:
        resource, resource_problem = _resource(converter, resource_metrics.resource)
        service = resource.get("service.name")
        if isinstance(service, str):
            out.services.add(service)
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                if not _kept(metric, kind):
                    label = "sum (non-monotonic)" if kind == "sum" else kind
                    out.dropped[(service, metric.name, label)] += len(data.data_points)
                    continue
                temporality = _TEMPORALITY.get(data.aggregation_temporality, "unspecified")
                for point in data.data_points:
                    attributes: dict[str, Any] = {}
                    problem = resource_problem
                    try:
                        converter.attributes(point.attributes, attributes)
                    except _OverLimit as exc:
                        problem = str(exc)
                    record = {**resource, **attributes, "metric": metric.name}
                    if not isinstance(service, str) or not service:
                        problem = problem or "the resource has no service.name"
                    elif temporality == "unspecified":
                        problem = problem or "aggregation temporality is unspecified"
                    if problem:
                        out.rejected.append(RejectedPoint(record, problem))
                        continue
                    series = _series(resource, metric.name, attributes)
                    values: dict[str, Any] = {
                        "time": point.time_unix_nano,
                        "start_time": point.start_time_unix_nano or None,
                        "point_id": f"{series}:{point.start_time_unix_nano}:{point.time_unix_nano}",
                        "series": series,
                        "service_name": service,
                        "environment": resource.get("deployment.environment.name"),
                        "metric": metric.name,
                        "unit": metric.unit or None,
                        "kind": kind,
                        "temporality": temporality,
                        "http_route": attributes.get("http.route"),
                        "http_method": attributes.get("http.request.method"),
                        "http_status_code": _status(attributes.get("http.response.status_code")),
                        "count": None,
                        "sum": None,
                        "bounds": None,
                        "bucket_counts": None,
                        "value": None,
                        "attributes": record,
                    }
                    if kind == "histogram":
                        values["count"] = point.count
                        values["sum"] = point.sum if point.HasField("sum") else None
                        values["bounds"] = list(point.explicit_bounds)
                        values["bucket_counts"] = list(point.bucket_counts)
                    else:
                        which = point.WhichOneof("value")
                        values["value"] = float(getattr(point, which)) if which else None
                    out.points.append(MetricPoint(values))
    return out
