"""Recorded change-impact facts: change impact reads them and gets what it computes live."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import duckdb

from analytics import impact_records, recording
from analytics.governance import load_rules
from analytics.impact import change_impacts
from analytics.slo import load_slos
from analytics.windows import TimeWindow
from contracts.signing import KeyRing
from store.connection import Store
from store.migrations import latest_version, migrate
from store.writer import StoreWriter
from tests.readers import read_only_cursors

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def _copy_without_records(sample_week, tmp_path):
    """The sample week's store, without the facts its server may have recorded already."""
    db = tmp_path / "week.duckdb"
    shutil.copy(sample_week.db, db)
    with Store.open(db) as store:
        # as if each row had been ingested a second after it happened (not in one load)
        store.cursor().execute(
            "DELETE FROM impact_facts; DELETE FROM impact_windows; "
            "UPDATE decisions SET ingested_at = time + INTERVAL 1 SECOND; "
            "UPDATE engagement SET ingested_at = time + INTERVAL 1 SECOND; "
            "UPDATE spans SET ingested_at = start_time + INTERVAL 1 SECOND"
        )
    return db


def _impacts(store, week, keys):
    found = change_impacts(store.cursor(), week, load_slos(), load_rules(), keys)
    # as JSON text: equal NaNs (a test without variance) compare equal
    return [json.dumps(i.as_dict(), sort_keys=True) for i in found]


def test_recorded_facts_give_the_live_answer_and_are_used(sample_week, tmp_path):
    db = _copy_without_records(sample_week, tmp_path)
    week = TimeWindow(
        datetime.fromisoformat(sample_week.manifest["start"]),
        datetime.fromisoformat(sample_week.manifest["end"]),
    )
    keys = KeyRing.load(sample_week.keys)
    with Store.open(db) as store, StoreWriter(store) as writer:
        live = _impacts(store, week, keys)
        cursor = store.cursor()
        closed = impact_records.closed_facts(cursor, FAR_FUTURE)
        assert closed and impact_records.refresh(cursor, writer, FAR_FUTURE) == len(closed)
        assert impact_records.refresh(cursor, writer, FAR_FUTURE) == 0  # nothing new to record
        (recorded,) = cursor.execute("SELECT count(*) FROM impact_windows").fetchone()
        assert recorded == len(closed)
        assert _impacts(store, week, keys) == live

        # the facts really come from the table: an edited count shows up in the result
        change_id, service = cursor.execute(
            "SELECT change_id, service FROM impact_facts WHERE kind = 'spans' "
            "ORDER BY total DESC, change_id LIMIT 1"
        ).fetchone()
        cursor.execute(
            "UPDATE impact_facts SET hits = total WHERE change_id = $c AND service = $s "
            "AND kind = 'spans' AND side = 1",
            {"c": change_id, "s": service},
        )
        edited = {i["change"]["change_id"]: i for i in map(json.loads, _impacts(store, week, keys))}
        effect = next(
            e for e in edited[change_id]["effects"]
            if e["service"] == service and e["metric"] == "error_rate"
        )  # fmt: skip
        assert effect["after"]["rate"] == 1.0
        cursor.execute("DELETE FROM impact_facts")
        cursor.execute("DELETE FROM impact_windows")
        assert _impacts(store, week, keys) == live


def test_refresh_gathers_on_its_cursor_and_writes_only_through_the_writer(sample_week, tmp_path):
    """The facts are gathered on a reader cursor that cannot write; one write function of the
    writer stores them all."""
    db = _copy_without_records(sample_week, tmp_path)
    with Store.open(db) as store, StoreWriter(store) as writer:
        reader = read_only_cursors(store)()
        closed = impact_records.closed_facts(reader, FAR_FUTURE)
        assert closed and impact_records.refresh(reader, writer, FAR_FUTURE) == len(closed)
        assert impact_records.refresh(reader, writer, FAR_FUTURE) == 0
        assert writer.stats().write_fns == 1
        (recorded,) = reader.execute("SELECT count(*) FROM impact_windows").fetchone()
        assert recorded == len(closed)


def test_only_closed_windows_are_recorded_and_moved_windows_are_gathered_again(
    sample_week, tmp_path
):
    db = _copy_without_records(sample_week, tmp_path)
    end = datetime.fromisoformat(sample_week.manifest["end"])
    week = TimeWindow(datetime.fromisoformat(sample_week.manifest["start"]), end)
    keys = KeyRing.load(sample_week.keys)
    with Store.open(db) as store, StoreWriter(store) as writer:
        cursor = store.cursor()
        every = impact_records.closed_facts(cursor, FAR_FUTURE)
        # an hour after the last reach closed... minus a minute: that one is not recorded yet
        last_end = max(f.reach.end for f in every)
        now = last_end + recording.LATE_DATA_GRACE - timedelta(minutes=1)
        recorded = impact_records.refresh(cursor, writer, now)
        assert 0 < recorded < len(every)
        assert (
            impact_records.refresh(cursor, writer, now + timedelta(minutes=1))
            == len(every) - recorded
        )
        live_before = _impacts(store, week, keys)

        # facts recorded for another reach (as after new data moved a change's bounds) are not
        # used: that change is gathered live, and the next refresh records it again
        moved = every[0].change_id
        cursor.execute("DELETE FROM impact_facts WHERE change_id = $c", {"c": moved})
        cursor.execute(
            "UPDATE impact_windows SET reach_end = reach_end - INTERVAL 1 MINUTE "
            "WHERE change_id = $c",
            {"c": moved},
        )
        assert _impacts(store, week, keys) == live_before
        assert impact_records.refresh(cursor, writer, FAR_FUTURE) == 1
        assert _impacts(store, week, keys) == live_before


def test_a_change_that_gains_a_neighbour_is_gathered_again(sample_week, tmp_path):
    """A change arriving late inside a recorded change's reach, on its services, moves its
    windows: the record no longer stands for it."""
    db = _copy_without_records(sample_week, tmp_path)
    week = TimeWindow(
        datetime.fromisoformat(sample_week.manifest["start"]),
        datetime.fromisoformat(sample_week.manifest["end"]),
    )
    keys = KeyRing.load(sample_week.keys)
    shift = sample_week.manifest["stories"]["cohort_shift"]
    with Store.open(db) as store:
        cursor = store.cursor()
        with StoreWriter(store) as writer:
            assert impact_records.refresh(cursor, writer, FAR_FUTURE) > 0
        # the same flag changed again two hours after the cohort shift
        cursor.execute(
            "INSERT INTO policy_changes SELECT * REPLACE (change_id || '-again' AS change_id, "
            "time + INTERVAL 2 HOUR AS time) FROM policy_changes WHERE change_id = $c",
            {"c": shift["change_id"]},
        )
        found = {i["change"]["change_id"]: i for i in map(json.loads, _impacts(store, week, keys))}
        mine = found[shift["change_id"]]
        assert mine["adjusted_for"] == [shift["change_id"] + "-again"]
        again = found[shift["change_id"] + "-again"]["change"]["time"]
        assert mine["windows"][shift["service"]]["after"][1] <= again
        cursor.execute("DELETE FROM impact_facts")
        cursor.execute("DELETE FROM impact_windows")
        assert [json.loads(i) for i in _impacts(store, week, keys)] == list(found.values())


def test_nothing_is_recorded_while_old_event_times_arrive(sample_week, tmp_path):
    db = _copy_without_records(sample_week, tmp_path)
    with Store.open(db) as store, StoreWriter(store) as writer:
        cursor = store.cursor()
        every = impact_records.closed_facts(cursor, FAR_FUTURE)
        first_end = min(f.reach.end for f in every)
        # a backfill: a span from before the first change's window closed, ingested just now
        now = FAR_FUTURE
        cursor.execute(
            "INSERT INTO spans BY NAME SELECT start_time, end_time, $now AS ingested_at, "
            "duration_ms, service_name, environment, name, kind, status_code, trace_id, "
            "'late' AS span_id, attributes, request_id FROM spans "
            "WHERE start_time < $first ORDER BY start_time LIMIT 1",
            {"now": now - timedelta(minutes=5), "first": first_end},
        )
        assert recording.ingest_frontier(cursor, now) < first_end
        assert impact_records.refresh(cursor, writer, now) == 0
        assert impact_records.refresh(cursor, writer, now + recording.LATE_DATA_GRACE) == len(every)


def test_a_version_3_store_upgrades_with_empty_fact_tables(tmp_path):
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    assert migrate(con, up_to=3) == [1, 2, 3]
    assert migrate(con) == list(range(4, latest_version() + 1))
    assert con.execute("SELECT count(*) FROM impact_facts").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM impact_windows").fetchone() == (0,)
    con.close()
