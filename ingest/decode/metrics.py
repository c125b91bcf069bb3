"""ExportMetricsServiceRequest → the metric points flaglens keeps, and counts of the rest.

The rule (README § Metrics): every data point of a histogram named
``http.server.request.duration`` and of every monotonic sum (a counter) is kept, with its
temporality as sent; points of every other metric (gauges, non-monotonic sums, other
histograms, exponential histograms, summaries) are accepted and counted per metric in
``metric_drops``. A point whose resource has no ``service.name``, that breaks a record limit,
or that the OTLP data model forbids (bucket counts that do not match the bounds or the count,
bounds not strictly increasing, no time) is rejected and quarantined with the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.decode.canonical import (
    _as_str,
    _check_count,
    _Converter,
    _OverLimit,
    _resource,
    _too_many,
    http_status_code,
)
from ingest.limits import Limits

LATENCY_HISTOGRAM = "http.server.request.duration"
_TEMPORALITY = {1: "delta", 2: "cumulative"}
_INT64_MAX = 2**63 - 1


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


def _point_problem(point: Any, kind: str) -> str | None:
    """Why a data point cannot be stored as the OTLP data model defines it (None: it can).

    Histograms must have one more bucket count than bounds (or neither), strictly increasing
    finite bounds, and bucket counts adding up to the count; counts must fit the BIGINT
    columns; every point needs its time.
    """
    if not point.time_unix_nano:
        return "time_unix_nano is 0; every data point needs the end time of its interval"
    if kind != "histogram":
        return None
    bounds, buckets = point.explicit_bounds, point.bucket_counts
    if buckets and len(buckets) != len(bounds) + 1:
        return f"{len(buckets)} bucket counts for {len(bounds)} bounds; want {len(bounds) + 1}"
    if not buckets and bounds:
        return f"{len(bounds)} bounds but no bucket counts"
    if any(not math.isfinite(b) for b in bounds) or any(
        low >= high for low, high in itertools.pairwise(bounds)
    ):
        return "explicit_bounds must be finite and strictly increasing"
    if point.count > _INT64_MAX or any(n > _INT64_MAX for n in buckets):
        return f"a count is over {_INT64_MAX}, past the range flaglens stores"
    if buckets and sum(buckets) != point.count:
        return f"bucket counts add up to {sum(buckets)}, not to the count {point.count}"
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
        service = _as_str(resource.get("service.name"))  # typed columns take strings only
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
                    problem = problem or _too_many(
                        len(resource_metrics.resource.attributes) + len(point.attributes), limits
                    )
                    record = {**resource, **attributes, "metric": metric.name}
                    if not isinstance(service, str) or not service:
                        problem = problem or "the resource has no service.name"
                    elif temporality == "unspecified":
                        problem = problem or "aggregation temporality is unspecified"
                    problem = problem or _point_problem(point, kind)
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
                        "environment": _as_str(resource.get("deployment.environment.name")),
                        "metric": metric.name,
                        "unit": metric.unit or None,
                        "kind": kind,
                        "temporality": temporality,
                        "http_route": _as_str(attributes.get("http.route")),
                        "http_method": _as_str(attributes.get("http.request.method")),
                        "http_status_code": http_status_code(
                            attributes.get("http.response.status_code")
                        ),
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
