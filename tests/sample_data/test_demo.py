"""`flaglens demo --load-only`: everything sent is stored or quarantined, every story is in.

The sample week (loaded once per session in process, see tests/sample_week.py) is checked here;
one e2e test runs the demo as a user does, its own server process and decode workers included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.sample_week import WEEK_END, WEEK_SEED
from tests.servers import REPO, require_e2e


def _assert_stored_counts_match_the_sent_ones(db: Path, counts: dict[str, Any]) -> None:
    con = duckdb.connect(str(db), read_only=True)
    try:
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        assert one("SELECT count(*) FROM decisions") == counts["decisions_valid"]
        assert one("SELECT count(*) FROM quarantine") == counts["decisions_broken"]
        assert one("SELECT count(*) FROM spans") == counts["spans"]
        assert one("SELECT count(*) FROM engagement") == counts["engagement"]
        assert one("SELECT count(*) FROM policy_changes") == counts["policy_changes"]
        # the ledger reconciles: received = accepted + rejected, and nothing was refused whole
        received, accepted, rejected, failed = con.execute(
            "SELECT sum(received), sum(accepted), sum(rejected), "
            "count(*) FILTER (WHERE status_code <> 200) FROM ingest_log"
        ).fetchone()
        sent = counts["log_records"] + counts["spans"] + counts["metric_points"]
        assert received == accepted + rejected == sent
        assert failed == 0
    finally:
        con.close()


def test_stored_counts_match_the_sent_ones(sample_week):
    counts = sample_week.manifest["counts"]
    _assert_stored_counts_match_the_sent_ones(sample_week.db, counts)
    # the server's answers (partial success) named every quarantined record as rejected
    assert sum(sample_week.summary.rejected.values()) == counts["decisions_broken"]


@pytest.mark.e2e
def test_demo_load_only_as_a_user_runs_it(tmp_path):
    """The command itself: a `flaglens serve` child on free ports, one day sent through it,
    the server stopped, and the stored counts printed.

    A quarter of the traffic: what is checked here (every record sent is stored or
    quarantined, the printed counts) holds at any size, and the day still holds every kind of
    record, the contract break's quarantined ones too; the full-size stories are the sample
    week's (above and below)."""
    require_e2e("flaglens demo")
    command = [
        sys.executable, "-m", "flaglens.cli.main", "demo", "--load-only", "--no-progress",
        "--dir", str(tmp_path), "--http-port", "0", "--grpc-port", "0", "--dashboard-port", "0",
        "--seed", str(WEEK_SEED), "--end", WEEK_END, "--days", "1", "--scale", "0.25",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = json.loads((tmp_path / "manifest.json").read_text())["counts"]
    kinds = ("decisions_valid", "decisions_broken", "spans", "engagement", "policy_changes")
    assert all(counts[kind] > 0 for kind in kinds), counts
    _assert_stored_counts_match_the_sent_ones(tmp_path / "flaglens.duckdb", counts)
    assert f"quarantine {counts['decisions_broken']:,}" in done.stdout
    assert f"stored: decisions {counts['decisions_valid']:,}" in done.stdout
    assert (tmp_path / "keys.toml").is_file()


def test_every_story_is_in_the_store(sample_week):
    stories = sample_week.manifest["stories"]
    con = duckdb.connect(str(sample_week.db), read_only=True)
    try:
        ids = {r[0] for r in con.execute("SELECT change_id FROM policy_changes").fetchall()}
        for name in ("regression", "cohort_shift", "harmless"):
            assert stories[name]["change_id"] in ids
        assert {bad["change_id"] for bad in stories["unauthorized"]} <= ids
        drift = stories["drift"]
        assert (
            con.execute(
                "SELECT count(*) FROM decisions WHERE flag_key = ? AND flag_version = ?",
                [drift["flag_key"], drift["version"]],
            ).fetchone()[0]
            == drift["count"]
            > 0
        )
        broken = stories["contract_break"]
        rows = con.execute(
            "SELECT service_name, min(time), max(time), count(*) FROM quarantine GROUP BY 1"
        ).fetchall()
        assert len(rows) == 1
        service, first, last, count = rows[0]
        assert service == broken["service"] and count == broken["records"]
        assert broken["from"] <= first.isoformat().replace("+00:00", "Z") <= broken["to"]
        assert last.isoformat().replace("+00:00", "Z") <= broken["to"]
        # payments still uses the old attribute names; the rename is recorded on its rows
        renamed = con.execute(
            "SELECT count(*) FROM decisions WHERE service_name = 'payments' AND "
            "list_contains(renamed_attributes, 'feature_flag.variant->feature_flag.result.variant')"
        ).fetchone()[0]
        assert renamed > 0
    finally:
        con.close()


def test_metric_points_are_stored_and_budgets_agree_with_spans(sample_week):
    """The week's request-duration histograms land in metric_points, and an SLO computed from
    them sees the same requests as the one computed from spans."""
    from datetime import datetime, timedelta

    from analytics.budgets import budget_status
    from analytics.slo import parse_slo
    from store.connection import Store

    counts = sample_week.manifest["counts"]
    end = datetime.fromisoformat(sample_week.manifest["end"])
    entry = {"name": "x", "service": "checkout", "environment": "prod", "sli": "availability",
             "objective": 0.99}  # fmt: skip
    with Store.open(sample_week.db, read_only=True) as store:
        cursor = store.cursor()
        stored = cursor.execute("SELECT count(*) FROM metric_points").fetchone()[0]
        from_spans = budget_status(cursor, parse_slo(entry, "t"), end)
        # a metric point is stamped at the end of its hour: the last hour lands at `end` itself
        from_metrics = budget_status(
            cursor, parse_slo(entry | {"source": "metrics"}, "t"), end + timedelta(seconds=1)
        )
    assert stored == counts["metric_points"] > 0
    assert (from_metrics.total, from_metrics.bad) == (from_spans.total, from_spans.bad)
