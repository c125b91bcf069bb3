"""Epoch-aligned cohort periods, recorded and read back: recorded + live equals fully live."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from analytics import cohort_periods
from analytics.cohorts import engagement_by_cohort
from analytics.windows import TimeWindow
from store.connection import Store
from store.migrations import latest_version, migrate
from store.writer import StoreWriter
from tests.analytics.helpers import add_decisions
from tests.analytics.test_cohort_masks import T0 as MIXED_T0
from tests.analytics.test_cohort_masks import fill_mixed
from tests.readers import read_only_cursors

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
D0 = datetime(2026, 11, 16, tzinfo=UTC)  # a day boundary since the epoch


def _engage(store, rows):
    store.cursor().executemany(
        "INSERT INTO engagement BY NAME SELECT ?::TIMESTAMPTZ AS time, now() AS ingested_at, "
        "'api' AS service_name, ? AS environment, ? AS subject_id, NULL AS cohort_id, "
        "'click' AS action, 'user.engagement' AS contract_id, '1.0.0' AS contract_version, "
        "'{}' AS attributes, 1 AS request_id",
        rows,
    )


def _tuples(periods):
    return [(p.period, p.cohort, p.exposed, p.engaged) for p in periods]


@pytest.fixture
def hand_built(tmp_path, store_maker):
    """Three days of a few subjects, counted by hand below."""
    store = store_maker.new(tmp_path)
    at = [D0 + HOUR, D0 + 13 * HOUR, D0 + DAY + HOUR, D0 + DAY + 13 * HOUR, D0 + 2 * DAY + HOUR]
    # (time, subjects, environment, cohort)
    for when, subjects, env, cohort in (
        (at[0], ["u0", "u9"], "prod", "a"),
        (at[1], ["u1", "u2"], "prod", "a"),
        (at[1], ["u2"], "staging", "a"),
        (at[2], ["u1", "u3"], "prod", "a"),
        (at[2], ["u3"], "prod", "b"),
        (at[3], ["u4"], "staging", "b"),
        (at[4], ["u5", "u6"], "prod", "a"),
    ):
        add_decisions(store, flag="f", version="v1", times=[when] * len(subjects),
                      subjects=subjects, environment=env, cohort=cohort)  # fmt: skip
    _engage(store, [(at[1] + HOUR, "staging", "u2"), (at[2] + HOUR, "prod", "u3"),
                    (at[3] + HOUR, "prod", "u4"), (at[4] + HOUR, "prod", "u6")])  # fmt: skip
    # each row ingested when it happened
    store.cursor().execute(
        "UPDATE decisions SET ingested_at = time; UPDATE engagement SET ingested_at = time"
    )
    return store


@pytest.fixture
def writer(hand_built):
    with StoreWriter(hand_built) as writer:
        yield writer


def test_periods_are_aligned_to_the_epoch_and_clipped_to_the_window(hand_built):
    # noon to noon: the day periods D0 and D0 + 1 d, each half in the window
    window = TimeWindow(D0 + 12 * HOUR, D0 + DAY + 12 * HOUR)
    found = _tuples(engagement_by_cohort(hand_built.cursor(), window, DAY))
    # D0 (from noon): u1, u2 (prod and staging) in a; u2 engaged in staging.
    # D0 + 1 d (to noon): u1, u3 in a, u3 in b; u3 engaged.
    assert found == [(D0, "a", 2, 1), (D0 + DAY, "a", 2, 1), (D0 + DAY, "b", 1, 1)]
    prod = engagement_by_cohort(hand_built.cursor(), window, DAY, environment="prod")
    # in prod alone u2's engagement (staging) does not count
    assert _tuples(prod) == [(D0, "a", 2, 0), (D0 + DAY, "a", 2, 1), (D0 + DAY, "b", 1, 1)]


def test_recorded_periods_are_read_and_the_edges_counted_live(hand_built, writer):
    cursor = hand_built.cursor()
    window = TimeWindow(D0 + 12 * HOUR, D0 + 2 * DAY + 12 * HOUR)
    live = {env: _tuples(engagement_by_cohort(cursor, window, DAY, environment=env))
            for env in (None, "prod", "staging")}  # fmt: skip
    # closed up to D0 + 2 d + 1 h: day periods D0 and D0 + 1 d; 1 h periods up to D0 + 2 d
    now = D0 + 2 * DAY + 2 * HOUR
    assert cohort_periods.refresh(cursor, writer, now) > 0
    assert cohort_periods.recorded_span(cursor, DAY) == (D0, D0 + 2 * DAY)
    assert cohort_periods.refresh(cursor, writer, now) == 0  # nothing new
    for env, expected in live.items():
        assert _tuples(engagement_by_cohort(cursor, window, DAY, environment=env)) == expected
    # only D0 + 1 d lies wholly inside the window: it is read from the records
    recorded, covered = cohort_periods.read(cursor, window, DAY, None)
    assert covered == TimeWindow(D0 + DAY, D0 + 2 * DAY)
    # by hand: u1, u3 in a; u3 in b and u4 (staging) in b, both engaged
    assert recorded == [(D0 + DAY, "a", 2, 1), (D0 + DAY, "b", 2, 2)]
    cursor.execute("UPDATE cohort_periods SET exposed = exposed + 100")
    marked = _tuples(engagement_by_cohort(cursor, window, DAY))
    assert [n for _, _, n, _ in marked] == [2, 102, 102, 2]  # edges live, the middle recorded


def test_recording_stops_at_closed_periods_and_continues_later(hand_built, writer):
    cursor = hand_built.cursor()
    # at D0 + 1 d 1:30 the grace leaves D0 + 1 d 0:30: whole days up to D0 + 1 d, hours too
    assert cohort_periods.refresh(cursor, writer, D0 + DAY + 90 * timedelta(minutes=1)) > 0
    assert cohort_periods.recorded_span(cursor, DAY) == (D0, D0 + DAY)
    # from the hour of the first decision (D0 + 1 h)
    assert cohort_periods.recorded_span(cursor, HOUR) == (D0 + HOUR, D0 + DAY)
    # a decision of D0 + 1 d 2:00 ingested at D0 + 3 d holds recording back to its time while
    # it is within the grace
    add_decisions(hand_built, flag="f", version="v1", times=[D0 + DAY + 2 * HOUR],
                  subjects=["late"])  # fmt: skip
    cursor.execute("UPDATE decisions SET ingested_at = $t WHERE subject_id = 'late'",
                   {"t": D0 + 3 * DAY})  # fmt: skip
    assert cohort_periods.refresh(cursor, writer, D0 + 3 * DAY + HOUR / 2) == 2  # two hours
    assert cohort_periods.recorded_span(cursor, DAY) == (D0, D0 + DAY)
    assert cohort_periods.recorded_span(cursor, HOUR) == (D0 + HOUR, D0 + DAY + 2 * HOUR)
    assert cohort_periods.refresh(cursor, writer, D0 + 3 * DAY + 2 * HOUR) > 0
    assert cohort_periods.recorded_span(cursor, DAY) == (D0, D0 + 3 * DAY)
    window = TimeWindow(D0, D0 + 3 * DAY)
    recorded = _tuples(engagement_by_cohort(cursor, window, DAY))
    cursor.execute("DELETE FROM cohort_periods; DELETE FROM cohort_periods_span")
    assert recorded == _tuples(engagement_by_cohort(cursor, window, DAY))


def test_refresh_counts_on_its_cursor_and_writes_only_through_the_writer(hand_built, writer):
    """The periods are counted on a reader cursor that cannot write; one write function of the
    writer stores them and their spans."""
    reader = read_only_cursors(hand_built)()
    now = D0 + 2 * DAY + 2 * HOUR
    assert cohort_periods.refresh(reader, writer, now) > 0
    assert cohort_periods.refresh(reader, writer, now) == 0
    assert writer.stats().write_fns == 1
    assert cohort_periods.recorded_span(reader, DAY) == (D0, D0 + 2 * DAY)


def test_two_refreshes_at_once_record_each_period_once(hand_built, writer):
    """Both count against the same recorded spans; the one that writes second finds them
    moved and records nothing."""
    now = D0 + 2 * DAY + 2 * HOUR
    gate = threading.Event()
    writer.execute_write_fn(lambda _cursor: gate.wait(30))  # holds the writer meanwhile
    counts: list[int] = []

    def refresh():
        counts.append(cohort_periods.refresh(hand_built.cursor(), writer, now))

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while writer.stats().pending_write_fns < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for thread in threads:
        thread.join(30)
    assert sorted(counts)[0] == 0 and sorted(counts)[1] > 0
    rows = (
        hand_built.cursor()
        .execute(
            "SELECT count(*), count(DISTINCT (width_s, period_start, environment, cohort)) "
            "FROM cohort_periods"
        )
        .fetchone()
    )
    assert rows[0] == rows[1] > 0


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, module_store_maker):
    store = module_store_maker.new(tmp_path_factory.mktemp("mixed"))
    fill_mixed(store.cursor())
    return store


@pytest.mark.parametrize("width", [HOUR, 6 * HOUR, DAY])
@pytest.mark.parametrize("environment", [None, "prod", "staging"])
def test_recorded_and_live_equal_live_on_mixed_data(mixed, width, environment):
    cursor = mixed.cursor()
    cursor.execute("DELETE FROM cohort_periods; DELETE FROM cohort_periods_span")
    window = TimeWindow(MIXED_T0, MIXED_T0 + 2 * DAY)  # not aligned to any width
    live = _tuples(engagement_by_cohort(cursor, window, width, environment=environment))
    with StoreWriter(mixed) as writer:
        assert cohort_periods.refresh(cursor, writer, FAR_FUTURE) > 0
    assert cohort_periods.read(cursor, window, width, environment) is not None
    found = engagement_by_cohort(cursor, window, width, environment=environment)
    assert _tuples(found) == live
    # a filter by service is always counted live
    assert _tuples(engagement_by_cohort(cursor, window, width, service="api")) == _tuples(
        engagement_by_cohort(cursor, window, width, service="api", environment=None)
    )


def test_recorded_and_live_equal_live_on_the_sample_week(sample_week, tmp_path):
    db = tmp_path / "week.duckdb"
    shutil.copy(sample_week.db, db)
    start = datetime.fromisoformat(sample_week.manifest["start"])
    end = datetime.fromisoformat(sample_week.manifest["end"])
    with Store.open(db) as store, StoreWriter(store) as writer:
        cursor = store.cursor()
        cursor.execute(
            "DELETE FROM cohort_periods; DELETE FROM cohort_periods_span; "
            "UPDATE decisions SET ingested_at = time + INTERVAL 1 SECOND; "
            "UPDATE engagement SET ingested_at = time + INTERVAL 1 SECOND"
        )
        windows = [
            TimeWindow(start, end),
            TimeWindow(start + 90 * timedelta(minutes=1), end - HOUR),
        ]
        live = {
            (w, width, env): _tuples(engagement_by_cohort(cursor, w, width, environment=env))
            for w in windows
            for width in (HOUR, 6 * HOUR)
            for env in (None, "prod")
        }
        assert cohort_periods.refresh(cursor, writer, FAR_FUTURE) > 0
        for (w, width, env), expected in live.items():
            assert cohort_periods.read(cursor, w, width, env) is not None
            assert _tuples(engagement_by_cohort(cursor, w, width, environment=env)) == expected
            assert expected


def test_a_version_4_store_upgrades_and_records(tmp_path):
    path = tmp_path / "v4.duckdb"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    assert migrate(con, up_to=4) == [1, 2, 3, 4]
    con.close()
    with Store.open(path) as store, StoreWriter(store) as writer:  # migrates
        cursor = store.cursor()
        newest = cursor.execute("SELECT max(version) FROM schema_migrations").fetchone()
        assert newest == (latest_version(),)
        assert migrate(cursor) == []
        add_decisions(store, flag="f", version="v1", times=[D0 + HOUR] * 2, subjects=["a", "b"])
        _engage(store, [(D0 + 2 * HOUR, "prod", "b")])
        assert cohort_periods.refresh(cursor, writer, FAR_FUTURE) > 0
        window = TimeWindow(D0, D0 + DAY)
        assert _tuples(engagement_by_cohort(cursor, window, DAY)) == [(D0, "c1", 2, 1)]
