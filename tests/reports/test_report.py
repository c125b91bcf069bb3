"""The weekly report on the sample week: names the stories, opens offline, agrees with analyze."""

from __future__ import annotations

import json

import pytest
from plotly.offline import get_plotlyjs
from selenium.webdriver.support.ui import WebDriverWait

from flaglens.cli.main import main
from reports.weekly import last_complete_week, parse_week
from tests.conftest import SCREENSHOTS

WEEK = "2026-W47"  # the sample week: Monday 2026-11-16 to Monday 2026-11-23


@pytest.fixture(scope="module")
def report_dir(sample_week, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    code = main(["report", "weekly", "--db", str(sample_week.db), "--keys",
                 str(sample_week.keys), "--week", WEEK, "--out", str(out)])  # fmt: skip
    assert code == 0
    return out


def test_week_parsing_and_default():
    week = parse_week(WEEK)
    assert (week.start.isoformat(), week.end.isoformat()) == (
        "2026-11-16T00:00:00+00:00", "2026-11-23T00:00:00+00:00",
    )  # fmt: skip
    from datetime import UTC, datetime

    assert last_complete_week(datetime(2026, 11, 25, tzinfo=UTC)) == WEEK


def test_report_names_the_regression_mutations_and_drift(report_dir, sample_week):
    stories = sample_week.manifest["stories"]
    markdown = (report_dir / "report.md").read_text()
    page = (report_dir / "report.html").read_text()
    regression = stories["regression"]["change_id"]
    for text in (markdown, page):
        line = next(li for li in text.splitlines() if regression in li and "regression" in li)
        assert stories["regression"]["flag_key"] in line
        for bad in stories["unauthorized"]:
            assert bad["change_id"] in text and bad["reason"] in text
        assert stories["drift"]["version"] in text
        assert "this week" in text and "last week" in text and "change" in text
    report = json.loads((report_dir / "report.json").read_text())
    ranked = [c for c in report["changes"] if c["verdict"] == "regression"]
    assert ranked[0]["change"]["change_id"] == regression and ranked[0]["rank"] == 1
    missed = {r["slo"]: r["missed_days"] for r in report["slos"]}
    assert missed["checkout-availability"] and not missed["search-availability"]


def test_json_matches_analyze_for_the_same_range(report_dir, sample_week, capsys):
    report = json.loads((report_dir / "report.json").read_text())
    week = parse_week(WEEK)
    for what in ("changes", "mutations", "drift"):
        assert main(["analyze", what, "--db", str(sample_week.db), "--keys",
                     str(sample_week.keys), "--from", week.start.isoformat(), "--to",
                     week.end.isoformat(), "--format", "json"]) == 0  # fmt: skip
        assert json.loads(capsys.readouterr().out) == report[what], what


@pytest.mark.browser
@pytest.mark.e2e
def test_html_is_self_contained_and_renders(report_dir, browser):
    page = (report_dir / "report.html").read_text()
    assert page.count(get_plotlyjs()[:2000]) == 1  # plotly.js inlined exactly once
    assert "<script src=" not in page  # nothing to fetch: opens offline
    browser.get((report_dir / "report.html").as_uri())
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "const el = document.getElementById('figure-0');"
            "return !!(el && el.data && el.data[0].x.length > 0);"
        )
    )
    assert browser.title == f"flaglens weekly report {WEEK}"
    browser.save_screenshot(str(SCREENSHOTS / "weekly-report.png"))


def test_report_names_the_tail_regression_and_the_changes_near_others(report_dir, sample_week):
    stories = sample_week.manifest["stories"]
    markdown = (report_dir / "report.md").read_text()
    lines = markdown.splitlines()

    def line_of(change_id):
        return next(li for li in lines if f"| {change_id} |" in li)

    tail = line_of(stories["tail_regression"]["change_id"])
    assert "| regression |" in tail and "latency:p95" in tail and "payments-latency" in tail
    overlapping = stories["overlapping"]
    harmless = line_of(overlapping["harmless"])
    assert f"| {overlapping['harmless_verdict']} |" in harmless
    assert f"windows exclude {overlapping['regression']}" in harmless
    assert f"windows exclude {overlapping['harmless']}" in line_of(overlapping["regression"])
    first, second = stories["confounded"]["change_ids"]
    assert "| confounded |" in line_of(first) and f"confounded with {second}" in line_of(first)
    assert f"confounded with {first}" in line_of(second)
    report = json.loads((report_dir / "report.json").read_text())
    family = report["changes"][0]["family"]
    assert f"({family['tests']} tests, bh)" in markdown
