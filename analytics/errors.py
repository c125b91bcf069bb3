"""Errors raised by the analytics layer and the store.

AnalyticsError
├── InvalidWindow        a time range or duration that cannot be used
├── ConfigError          an SLO, governance, key or alert file that is wrong (names file and field)
└── StoreError           anything the database said
    ├── TransientStoreError   worth retrying (lock held, I/O hiccup)
    └── TerminalStoreError    will fail again (schema, constraint, corrupt file)
"""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base of every error this package raises."""


class InvalidWindow(AnalyticsError, ValueError):
    """A time window or duration that cannot be used."""


class ConfigError(AnalyticsError, ValueError):
    """A configuration file (SLOs, governance rules, keys, alert rules) that is wrong."""


class StoreError(AnalyticsError):
    """The database failed."""


class TransientStoreError(StoreError):
    """A database failure that may succeed when retried."""


class TerminalStoreError(StoreError):
    """A database failure that will not succeed when retried."""
