"""The analytics on a DuckLake answer exactly what they answer on a DuckDB file: one day of the
sample week at a fifth of its scale (loaded once through the real OTLP path) copied into a lake on
a real PostgreSQL, every named analysis run on both, and the periodic recording run on both.

The queries are the same whatever the rows, so a small day covers them; the whole week cost
minutes on the lake for no query more."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics import cohort_periods, impact_records
from analytics.analyses import ANALYSES, Query
from analytics.contract_preview import preview_contracts
from analytics.session import AnalyticsConfig, Session
from analytics.windows import TimeWindow
from contracts import load_registry
from store.connection import Store
from store.transfer import copy_file_into
from store.writer import StoreWriter
from tests.contracts.copies import (
    copy_contracts,
    new_version,
    privacy_allowing_breaks,
    require_legal_basis,
)
from tests.sample_week import LoadedWeek, load_week
from tests.stores import StoreMaker

pytestmark = pytest.mark.e2e

# (analysis, options) pairs: every analysis, and the options that change which queries run
CASES = [(name, {}) for name in ANALYSES] + [
    ("cohorts", {"compare": True}),
    ("contracts", {"rates": True}),
    ("latency", {"by": ("service", "flag", "variant")}),
]


@pytest.fixture(scope="module")
def small_day(tmp_path_factory) -> LoadedWeek:
    return load_week(tmp_path_factory.mktemp("day"), days=1, scale=0.2)


@pytest.fixture(scope="module")
def week_stores(small_day, postgres, tmp_path_factory):
    """The day's file and a lake holding the same rows."""
    lake = StoreMaker("ducklake", postgres).open(tmp_path_factory.mktemp("day-lake"))
    copied = copy_file_into(small_day.db, lake)
    assert copied["decisions"] > 1_000
    native = Store.open(small_day.db, read_only=True)
    yield native, lake
    native.close()
    lake.close()


# what the recording writes, less the moment it was written
_RECORDED = {
    "impact_windows": "SELECT * EXCLUDE (recorded_at) FROM impact_windows",
    "impact_facts": "SELECT * FROM impact_facts",
    "cohort_periods": "SELECT * FROM cohort_periods",
    "cohort_periods_span": "SELECT * EXCLUDE (recorded_at) FROM cohort_periods_span",
}


def _window(manifest) -> TimeWindow:
    return TimeWindow(
        datetime.fromisoformat(manifest["start"]), datetime.fromisoformat(manifest["end"])
    )


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}{sorted(o)}" for n, o in CASES])
def test_every_analysis_answers_the_same_on_the_lake(small_day, week_stores, name, options):
    native, lake = week_stores
    config = AnalyticsConfig(key_file=small_day.keys)
    query = Query(window=_window(small_day.manifest), **options)
    expected = Session(native.cursor, config).analyze(name, query)
    assert expected, f"{name} found nothing on the sample week: the comparison would be empty"
    assert Session(lake.cursor, config).analyze(name, query) == expected


def test_contract_previews_answer_the_same_on_the_lake(small_day, week_stores, tmp_path):
    """What proposed contracts would pass out of the quarantine and reject among the stored
    records (the previews ``tests/analytics/test_contract_preview.py`` checks on the week)."""
    native, lake = week_stores
    allowing = copy_contracts(tmp_path / "allowing")
    privacy_allowing_breaks(allowing, purpose_optional=True)
    tighter = copy_contracts(tmp_path / "tighter")
    new_version(tighter, "feature_flag.evaluation.privacy", "1.1.0", "1.2.0", require_legal_basis)
    for directory in (allowing, tighter):
        registry = load_registry(directory)
        expected = preview_contracts(native.cursor(), registry, _window(small_day.manifest))
        assert expected.as_dict()["would_pass"] + expected.as_dict()["would_reject"] > 0
        found = preview_contracts(lake.cursor(), registry, _window(small_day.manifest))
        assert found.as_dict() == expected.as_dict()


def test_the_periodic_recording_records_the_same_on_the_lake(small_day, tmp_path, week_stores):
    """Change facts and cohort periods, recorded afresh (through a writer, as the server's
    rounds do) on a copy of the file and on the lake."""
    _, lake = week_stores
    copy = Store.open(tmp_path / "copy.duckdb")
    copy_file_into(small_day.db, copy)
    now = datetime(2030, 1, 1, tzinfo=UTC)  # after the week and its ingestion: all closed
    recorded = []
    for store in (copy, lake):
        cursor = store.cursor()
        for table in _RECORDED:
            cursor.execute(f"DELETE FROM {table}")
        with StoreWriter(store) as writer:
            impact_records.refresh(store.cursor(), writer, now)
            cohort_periods.refresh(store.cursor(), writer, now)
        recorded.append(
            {
                table: sorted(cursor.execute(_RECORDED[table]).fetchall(), key=repr)
                for table in _RECORDED
            }
        )
    copy.close()
    assert recorded[0]["impact_facts"]
    assert recorded[1] == recorded[0]
