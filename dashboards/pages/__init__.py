"""The dashboard pages: each a function of (data source, view state) → Dash components.

Pages query through the analytics layer (aggregation happens in DuckDB; only aggregates reach
the browser) with a fresh cursor per render, so they read while ingestion writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from analytics.windows import TimeWindow
from dashboards.pages import budgets, changes, cohorts, contracts, mutations, overview
from dashboards.pages.common import DataSource
from dashboards.state import ViewState

__all__ = ["PAGES", "DataSource", "Page"]


class Page(NamedTuple):
    """A dashboard page: its title and the function that renders its content."""

    title: str
    render: Callable[[DataSource, ViewState, TimeWindow], list[Any]]


# URL path → page, in the order of the navigation bar
PAGES: dict[str, Page] = {
    "/": Page("Overview", overview.overview),
    "/changes": Page("Policy changes", changes.changes),
    "/budgets": Page("Error budgets", budgets.budget_page),
    "/cohorts": Page("Cohorts", cohorts.cohort_page),
    "/mutations": Page("Mutations & drift", mutations.mutation_page),
    "/contracts": Page("Contracts", contracts.contract_page),
}
