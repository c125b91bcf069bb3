"""budget_events: the budget of each SLO in events, as the full budget status has it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from analytics.budgets import budget_events, budget_statuses
from analytics.slo import load_slos, parse_slo
from store.connection import Store


def test_budget_events_equal_those_of_the_budget_statuses(sample_week):
    end = datetime.fromisoformat(sample_week.manifest["end"])
    slos = [
        *load_slos(),
        parse_slo({"name": "calendar", "service": "checkout", "sli": "availability",
                   "objective": 0.99, "calendar": "week"}, "test"),
        parse_slo({"name": "metrics", "service": "checkout", "sli": "latency", "source": "metrics",
                   "threshold_ms": 250, "objective": 0.95}, "test"),
    ]  # fmt: skip
    with Store.open(sample_week.db, read_only=True) as store:
        for at in (end - timedelta(hours=1), end - timedelta(days=2, hours=5)):
            expected = [s.budget_events for s in budget_statuses(store.cursor(), slos, at)]
            assert budget_events(store.cursor(), slos, at) == pytest.approx(expected, rel=0, abs=0)
            assert all(e > 0 for e in expected)
