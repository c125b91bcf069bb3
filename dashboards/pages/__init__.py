"""The dashboard pages: each a function of (data source, view state) → Dash components.

Pages query through the analytics layer (aggregation happens in DuckDB; only aggregates reach
the browser) with a fresh cursor per render, so they read while ingestion writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analytics.queries.windows import TimeWindow
from dashboards.pages import budgets, changes, cohorts, contracts, mutations, overview
from dashboards.pages.common import DataSource
from dashboards.state import ViewState

__all__ = ["PAGES", "RENDERERS", "DataSource"]

PAGES = {
    "/": "Overview",
    "/changes": "Policy changes",
    "/budgets": "Error budgets",
    "/cohorts": "Cohorts",
    "/mutations": "Mutations & drift",
    "/contracts": "Contracts",
}

RENDERERS: dict[str, Callable[[DataSource, ViewState, TimeWindow], list[Any]]] = {
    "/": overview.overview,
    "/changes": changes.changes,
    "/budgets": budgets.budget_page,
    "/cohorts": cohorts.cohort_page,
    "/mutations": mutations.mutation_page,
    "/contracts": contracts.contract_page,
}
