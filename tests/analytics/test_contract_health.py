"""Contract health on hand-built rows: violation counts per error and rates over time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from analytics.contract_health import violation_rates, violations
from analytics.windows import TimeWindow
from tests.analytics.helpers import add_decisions

T0 = datetime(2026, 11, 16, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _reject(store, at, *, errors, service="api", contract="feature_flag.evaluation.privacy"):
    store.cursor().execute(
        "INSERT INTO quarantine BY NAME SELECT now() AS quarantined_at, 1 AS request_id, "
        "'logs' AS signal, 'feature_flag.evaluation' AS event_name, $service AS service_name, "
        "'prod' AS environment, $at AS time, $contract AS contract_id, "
        "'1.1.0' AS contract_version, $errors AS errors, '{}' AS record",
        {"at": at, "service": service, "contract": contract, "errors": json.dumps(errors)},
    )


MISSING = {"contract": "feature_flag.evaluation.privacy", "version": "1.1.0",
           "pointer": "/privacy.purpose", "message": "required property is missing"}  # fmt: skip
BAD_STATE = MISSING | {"pointer": "/privacy.consent.state", "message": "not one of the enum"}


@pytest.fixture
def store(tmp_path, store_maker):
    store = store_maker.new(tmp_path)
    # hour 0: 30 accepted, 2 rejected (one with two errors); hour 1: 10 accepted, 0 rejected;
    # hour 2: 0 accepted, 1 rejected
    add_decisions(
        store, flag="f", version="v1", times=[T0 + timedelta(minutes=i) for i in range(30)]
    )
    add_decisions(store, flag="f", version="v1",
                  times=[T0 + HOUR + timedelta(minutes=i) for i in range(10)])  # fmt: skip
    _reject(store, T0 + timedelta(minutes=5), errors=[MISSING, BAD_STATE])
    _reject(store, T0 + timedelta(minutes=6), errors=[MISSING])
    _reject(store, T0 + 2 * HOUR, errors=[MISSING])
    return store


def test_violations_per_error_and_hour(store):
    rows = violations(store.cursor(), TimeWindow(T0, T0 + 3 * HOUR), bucket=HOUR)
    summary = [(r.bucket, r.error, r.violations) for r in rows]
    assert summary == [
        (T0, "/privacy.purpose: required property is missing", 2),
        (T0, "/privacy.consent.state: not one of the enum", 1),
        (T0 + 2 * HOUR, "/privacy.purpose: required property is missing", 1),
    ]
    assert {(r.contract, r.version) for r in rows} == {("feature_flag.evaluation.privacy", "1.1.0")}


def test_violation_rates_whole_window_and_per_hour(store):
    window = TimeWindow(T0, T0 + 3 * HOUR)
    (whole,) = violation_rates(store.cursor(), window)
    assert (whole.contract, whole.accepted, whole.rejected) == ("feature_flag.evaluation", 40, 3)
    assert whole.rate == pytest.approx(3 / 43)
    hourly = violation_rates(store.cursor(), window, bucket=HOUR)
    assert [(r.bucket, r.accepted, r.rejected) for r in hourly] == [
        (T0, 30, 2), (T0 + HOUR, 10, 0), (T0 + 2 * HOUR, 0, 1),
    ]  # fmt: skip
    assert hourly[2].rate == 1.0
    assert violation_rates(store.cursor(), window, environment="staging") == []
