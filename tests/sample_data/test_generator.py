"""The sample week generator: reproducible, and its manifest agrees with what it emits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from contracts import load_registry, normalize_legacy
from contracts.signing import KeyRing, SignatureStatus
from ingest.decode import canonical_logs, canonical_traces, decode_request
from ingest.decode.metrics import canonical_metrics
from ingest.limits import Limits
from sample_data.generator import Options, Simulation
from sample_data.otlp import SdkEmitter, otlp_json
from sample_data.stories import manifest
from sample_data.week import write_key_file

END = datetime(2026, 11, 23, tzinfo=UTC)


def _played(options: Options) -> tuple[Simulation, int]:
    sim = Simulation(options)
    sessions = sum(len(hour.sessions) for hour in sim.hours())
    return sim, sessions


def test_same_seed_same_manifest_and_counts():
    first, sessions_a = _played(Options(seed=3, days=2, scale=0.2, end=END))
    second, sessions_b = _played(Options(seed=3, days=2, scale=0.2, end=END))
    other, _ = _played(Options(seed=4, days=2, scale=0.2, end=END))
    assert sessions_a == sessions_b > 0
    assert manifest(first) == manifest(second)
    assert manifest(first)["counts"] != manifest(other)["counts"]


def test_stories_are_placed_inside_the_period():
    sim, _ = _played(Options(seed=1, days=3, scale=0.2, end=END))
    truth = manifest(sim)
    stories = truth["stories"]
    start, end = truth["start"], truth["end"]
    names = ("regression", "tail_regression", "overlapping", "cohort_shift", "harmless")
    times = [stories[name]["time"] for name in names]
    times += [bad["time"] for bad in stories["unauthorized"]]
    times += stories["confounded"]["times"]
    assert all(start <= t < end for t in times)
    # the overlapping change comes three hours after the regression, the confounded pair
    # twenty minutes apart
    regression = datetime.fromisoformat(stories["regression"]["time"])
    overlap = datetime.fromisoformat(stories["overlapping"]["time"])
    assert overlap - regression == timedelta(hours=3)
    assert stories["overlapping"]["regression"] == stories["regression"]["change_id"]
    first, second = (datetime.fromisoformat(t) for t in stories["confounded"]["times"])
    assert second - first == timedelta(minutes=20)
    reasons = {bad["reason"] for bad in stories["unauthorized"]}
    assert reasons == {
        "actor_not_allowed", "missing_approvals", "signature_missing", "signature_invalid",
        "signature_wrong_environment",
    }  # fmt: skip
    assert stories["contract_break"]["records"] == (
        stories["contract_break"]["missing_field"] + stories["contract_break"]["wrong_enum"]
    )


def test_signatures_verify_only_where_the_story_says(tmp_path):
    sim, _ = _played(Options(seed=5, days=1, scale=0.05, end=END))
    write_key_file(sim, tmp_path / "keys.toml")
    ring = KeyRing.load(tmp_path / "keys.toml")
    broken = {bad["change_id"]: bad["reason"] for bad in manifest(sim)["stories"]["unauthorized"]}
    expected = {
        "signature_missing": SignatureStatus.MISSING,
        "signature_invalid": SignatureStatus.INVALID,
        "signature_wrong_environment": SignatureStatus.WRONG_ENVIRONMENT,
    }
    for change in sim.changes:
        status = ring.verify(change.attributes)
        reason = broken.get(change.attributes["policy.change.id"])
        assert status is expected.get(reason or "", SignatureStatus.VALID), change.attributes


def test_emitted_requests_hold_what_the_manifest_counts():
    """Every record the SDK emits decodes through flaglens' own decoder; counts agree."""
    sim = Simulation(Options(seed=2, days=1, scale=0.05, end=END))
    registry = load_registry()
    limits = Limits()
    logs = spans = span_events = invalid = points = 0
    emitter = SdkEmitter(2)
    for export in emitter.exports(sim.hours()):
        body = json.dumps(otlp_json(export)).encode()  # through OTLP/JSON, as `write` does
        request = decode_request(
            export.signal, body, content_type="application/json", content_encoding=None,
            limits=limits,
        )  # fmt: skip
        if export.signal == "metrics":
            decoded = canonical_metrics(request, limits)
            assert not decoded.rejected and not decoded.dropped
            points += len(decoded.points)
            continue
        if export.signal == "logs":
            records = canonical_logs(request, limits)
            logs += len(records)
        else:
            rows, events = canonical_traces(request, limits)
            spans += len(rows)
            span_events += len(events)
            records = events
        for item in records:
            normalize_legacy(item.record)
            invalid += not registry.check(item.record).ok
    counts = manifest(sim)["counts"]
    assert logs == counts["log_records"]
    assert spans == counts["spans"]
    assert span_events == counts["decisions_as_span_events"]
    assert invalid == counts["decisions_broken"]
    assert points == emitter.metric_points > 0
