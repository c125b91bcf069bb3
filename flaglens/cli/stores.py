"""The store flags every verb that opens a store shares: ``--db`` (a DuckDB file, as ever),
``--store`` (a store URL, :mod:`store.location`) and ``--data-path`` (a lake's data), the fields
of :class:`~ingest.settings.StoreSettings` (so ``FLAGLENS_STORE`` and the others apply too)."""

from __future__ import annotations

import argparse

from flaglens.cli.flags import add_setting_flags, settings_from_args
from ingest.settings import StoreSettings
from store.connection import Store
from store.location import StoreLocation


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, StoreSettings)


def store_location(args: argparse.Namespace) -> StoreLocation:
    """The store the flags (or variables) name: --store, else --db.

    Raises:
        StoreUrlError: the URL names no store, or a lake lacks its data path.
    """
    return settings_from_args(StoreSettings, args).store_location


def open_store(args: argparse.Namespace, *, read_only: bool) -> Store:
    return Store.open(store_location(args), read_only=read_only)
