"""Command-line flags made from settings models (:mod:`flaglens.settings`).

Every field becomes ``--<name>`` in its ``--help`` group: a switch (no value) for a boolean, a
flag with a value otherwise. Values are handed to the model as given, so a flag and its
``FLAGLENS_*`` variable are parsed and checked by the same code; a flag wins over the variable,
which wins over the default.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import Any, TypeVar

from pydantic import ValidationError

from flaglens.settings import SettingSpec, setting_specs
from ingest.settings import Settings

S = TypeVar("S", bound=Settings)


def _help(spec: SettingSpec) -> str:
    note = f" ({spec.default_note})" if spec.default_note else ""
    default = "" if spec.metavar is None else f"default: {spec.default}{note}; "
    return f"{spec.summary} ({default}{' or '.join(spec.variables)})".replace("%", "%%")


def add_setting_flags(
    parser: argparse.ArgumentParser,
    model: type[Settings],
    *,
    only: Collection[str] | None = None,
) -> None:
    """Add a flag per field of ``model`` (only the fields named in ``only``, when given)."""
    groups: dict[str, Any] = {}
    for spec in setting_specs(model):
        if only is not None and spec.name not in only:
            continue
        if spec.group not in groups:
            groups[spec.group] = parser.add_argument_group(spec.group)
        group = groups[spec.group]
        if spec.metavar is None:
            group.add_argument(spec.flag, action="store_true", default=None, help=_help(spec))
        else:
            group.add_argument(spec.flag, metavar=spec.metavar, help=_help(spec))


def given_flags(args: argparse.Namespace, model: type[Settings]) -> dict[str, Any]:
    """The fields of ``model`` that flags set, as given (strings, or True for a switch)."""
    given = {}
    for name in model.model_fields:
        value = getattr(args, name, None)
        if value is not None:
            given[name] = value
    return given


def settings_from_args(model: type[S], args: argparse.Namespace) -> S:
    """``model`` from the flags in ``args``, then the ``FLAGLENS_*`` variables, then defaults.

    Raises:
        ValidationError: a bad value (see :func:`settings_problems`).
    """
    return model(**given_flags(args, model))


def _shown_input(value: object) -> str:
    # flag and variable values are strings: shown bare unless quotes are needed to see them
    if isinstance(value, str) and value and value.strip() == value:
        return value
    return repr(value)


def settings_problems(exc: ValidationError, model: type[Settings]) -> str:
    """One line per bad setting, naming the flag and the variables it can come from."""
    by_key: dict[str, SettingSpec] = {}
    for spec in setting_specs(model):
        for key in (spec.name, *spec.variables):
            by_key[key.lower()] = spec
    lines = []
    for error in exc.errors():
        key = str(error["loc"][0]).lower() if error["loc"] else "?"
        found = by_key.get(key)
        where = f"{found.flag} / {' / '.join(found.variables)}" if found else key
        lines.append(f"{where}: {error['msg']} (got {_shown_input(error.get('input'))})")
    return "invalid settings:\n  " + "\n  ".join(lines)
