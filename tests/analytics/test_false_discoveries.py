"""A month of harmless changes: how often a page of them shows a discovery that is not there.

The changes of :mod:`tests.analytics.month` (537 harmless changes on three services) are
assessed once and judged in pages of six consecutive changes, each page one family, as a page
or weekly report judges the changes it ranks (the issue's week held six harmless changes).
With Benjamini–Hochberg over the page, a page of harmless changes shows any counted effect
with probability at most 5 % (the documented false-discovery rate). 90 pages tell 5 % from
13 %: at 5 % more than 8 flagged pages happen with probability 2.5 %, at 13 % at most 8 with
probability 15 %. Judged as change impact did before (each change its own Holm family, the
fixed floors as the only minimum effect), the same changes flag about one page in six.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.governance import load_rules, review_changes
from analytics.impact import ChangeImpact, assess, judge
from analytics.windows import TimeWindow
from contracts.signing import KeyRing
from tests.analytics.month import DAYS, HALF_WIDTH, START, build_month

PAGE = 6
SEED = 1


@pytest.fixture(scope="module")
def month_impacts(module_store_maker, tmp_path_factory) -> list[ChangeImpact]:
    with module_store_maker.new(tmp_path_factory.mktemp("month")) as store:
        month = build_month(store, SEED)
        cursor = store.cursor()
        window = TimeWindow(START, START + timedelta(days=DAYS))
        reviews = review_changes(cursor, window, load_rules(), KeyRing({}))
        impacts = assess(cursor, reviews, month.slos, half_width=HALF_WIDTH)
    assert len(impacts) == month.changes > 500
    return impacts


def _pages(impacts: list[ChangeImpact]) -> list[list[ChangeImpact]]:
    return [impacts[i : i + PAGE] for i in range(0, len(impacts) - PAGE + 1, PAGE)]


def test_every_harmless_change_was_tested(month_impacts):
    """Each change has its error-rate, latency, p95, two engagement and two budget tests."""
    metrics = {
        tuple(sorted(e.metric.replace(e.service, "S") for e in i.effects)) for i in month_impacts
    }
    assert metrics == {
        ("budget:S-availability", "budget:S-latency", "engagement:c0", "engagement:c1",
         "error_rate", "latency", "latency:p95"),
    }  # fmt: skip
    assert all(not i.adjusted_for and not i.confounded_with for i in month_impacts)


def test_pages_of_harmless_changes_show_false_discoveries_at_most_at_the_documented_rate(
    month_impacts,
):
    """Judged page by page (BH over the page), at most 8 of 90 pages flag anything."""
    pages = _pages(month_impacts)
    flagged = 0
    for page in pages:
        family = judge(page, "bh", "page")
        # the availability budget test is its service's error-rate test: one hypothesis
        assert (family.changes, family.tests) == (PAGE, 6 * PAGE)
        flagged += any(i.verdict != "no detectable effect" for i in page)
    assert len(pages) == 89
    assert flagged <= 8


def test_the_old_rule_on_the_same_changes_flags_more_than_the_bound(month_impacts):
    """The simulation tells the rates apart: judged as change impact did before (each change
    its own Holm family, an effect counted at adjusted p < 0.05 past the fixed floor alone),
    the same changes flag more than 8 of the 89 pages (about 3 % of changes, 16 % of pages)."""
    flagged_pages = flagged_changes = 0
    for page in _pages(month_impacts):
        hits = 0
        for impact in page:
            judge([impact], "holm", impact.change.change_id)
            hits += any(
                e.p_adjusted < 0.05 and abs(e.estimate) >= e.effect_floor and e.direction != "none"
                for e in impact.effects
            )
        flagged_changes += hits
        flagged_pages += hits > 0
    assert flagged_pages > 8
    assert flagged_changes > 0.02 * len(month_impacts)
