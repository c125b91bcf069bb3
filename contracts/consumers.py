"""The fields flaglens reads from each stored event (``consumers.toml``), for `contracts diff`."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from contracts.errors import InvalidContract


@dataclass(frozen=True, slots=True)
class ConsumedFields:
    """What the store and analytics read of one event."""

    event_name: str
    table: str
    required: frozenset[str]
    """Read into NOT NULL columns: a record without them cannot be stored."""
    optional: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        return self.required | self.optional


def parse_consumers(text: str, *, name: str = "consumers.toml") -> Mapping[str, ConsumedFields]:
    """Event name → its consumed fields.

    Raises:
        InvalidContract: the file is not TOML of the documented shape.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidContract(name, f"not TOML: {exc}") from exc
    out = {}
    for event, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("table"), str):
            raise InvalidContract(name, f'[{event!r}] needs table = "..."')
        lists = {key: entry.get(key, []) for key in ("required", "optional")}
        for key, values in lists.items():
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InvalidContract(name, f"[{event!r}] {key} must be a list of field names")
        out[event] = ConsumedFields(
            event, entry["table"], frozenset(lists["required"]), frozenset(lists["optional"])
        )
    return out


@functools.cache
def load_consumers() -> Mapping[str, ConsumedFields]:
    """The consumed fields shipped with flaglens."""
    text = resources.files("contracts").joinpath("consumers.toml").read_text("utf-8")
    return parse_consumers(text)
