"""Errors raised by the analytics layer (the store has its own, :mod:`store.errors`).

AnalyticsError
├── InvalidWindow        a time range or duration that cannot be used
└── ConfigError          an SLO, governance, key or alert file that is wrong (names file and field)
"""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base of every error this package raises."""


class InvalidWindow(AnalyticsError, ValueError):
    """A time window or duration that cannot be used."""


class ConfigError(AnalyticsError, ValueError):
    """A configuration file (SLOs, governance rules, keys, alert rules) that is wrong."""
