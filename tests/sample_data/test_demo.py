"""`flaglens demo --load-only`: everything sent is stored or quarantined, every story is in."""

from __future__ import annotations

import duckdb


def test_stored_counts_match_the_sent_ones(sample_week):
    counts = sample_week.manifest["counts"]
    con = duckdb.connect(str(sample_week.db), read_only=True)
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
    assert f"quarantine {counts['decisions_broken']:,}" in sample_week.output


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
