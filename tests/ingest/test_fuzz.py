"""Property-based fuzzing of the OTLP decoders: whatever the body, only IngestError escapes, every
rejected record is quarantined, and whatever was prepared commits to a real store.

A short run in CI; `benchmarks/fuzz_decoders.py` runs the same properties for longer.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from store.connection import Store
from store.writer import StoreWriter
from tests.factories import prepare_http
from tests.ingest.fuzzing import PIPELINE, SIGNALS, cases, check_case, valid_message


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    store = Store.open(tmp_path_factory.mktemp("fuzz") / "f.duckdb")
    with StoreWriter(store, max_group_delay=0) as running:
        yield running
    store.close()


@pytest.mark.parametrize("signal", SIGNALS)
def test_the_seed_bodies_are_valid(writer, signal):
    """The fuzzer mutates requests that are accepted whole, not ones already refused."""
    body = valid_message(signal).SerializeToString()
    prepared = prepare_http(
        PIPELINE, writer.next_request_id(), signal, body, "application/x-protobuf"
    )
    assert prepared.received >= 1
    assert prepared.rejected == 0, prepared.error_message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_no_body_escapes_as_anything_but_an_ingest_error(writer, case):
    check_case(case, writer)
