"""Property-based fuzzing of the OTLP decoders: whatever the body, only IngestError escapes.

A short run in CI; `benchmarks/fuzz_decoders.py` runs the same properties for longer.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.fuzzing import bodies, prepare_any


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=bodies, signal=st.sampled_from(("logs", "traces")))
def test_no_body_escapes_as_anything_but_an_ingest_error(case, signal):
    content_type, body, encoding = case
    prepare_any(content_type, body, encoding, signal)
