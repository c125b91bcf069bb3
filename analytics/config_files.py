"""Reading the TOML configuration files (SLOs, governance rules, alert rules) into pydantic
models, with every problem reported as a :class:`~analytics.errors.ConfigError` that names the
file, the entry (``[[slo]] #2 (checkout-latency)``), the field, the bad value and what is
allowed.

pydantic stays at this edge: each file module validates its document with a model here and
turns it into the frozen dataclasses the analytics use.
"""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from analytics.errors import ConfigError
from analytics.windows import parse_duration

M = TypeVar("M", bound=BaseModel)

# TOML gives typed values: no string is taken for a number, no number for a string
STRICT = ConfigDict(extra="forbid", strict=True)


def _duration(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a duration such as '10m', '6h' or '28d' (a string)")
    return parse_duration(value)  # InvalidWindow is a ValueError: pydantic reports it


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A Prometheus-style duration written as a string: ``"30s"``, ``"6h"``, ``"28d"``."""


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The document of a TOML file; ConfigError when it cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def validate(model: type[M], document: Any, where: str) -> M:
    """``document`` as ``model``; ConfigError with one line per problem, each prefixed with
    ``where`` (the file, or the file and entry) and the problem's place in the document."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(problems(exc, model, document, where)) from None


def problems(exc: ValidationError, model: type[BaseModel], document: Any, where: str) -> str:
    """The lines of :func:`validate`'s message."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        header, field = _place(loc, document)
        message = _message(error, model, loc, field)
        place = " ".join(part for part in (where, header, field) if part)
        lines.append(f"{place}: {message}")
    return "\n".join(lines)


def _place(loc: Sequence[str | int], document: Any) -> tuple[str, str]:
    """Split a location into the TOML table it is in and the field within:
    ``("slo", 1, "objective")`` → ``("[[slo]] #2 (name)", "objective")``."""
    node, tables, header, k = document, [], "", 0
    while k < len(loc) and not header.startswith("[["):  # within an entry: fields only
        key = loc[k]
        child = node.get(key) if isinstance(node, dict) and isinstance(key, str) else None
        if isinstance(child, dict) and k + 1 < len(loc):
            tables.append(str(key))
            header, node, k = f"[{'.'.join(tables)}]", child, k + 1
            continue
        following = loc[k + 1] if k + 1 < len(loc) else None
        if isinstance(child, list) and isinstance(following, int) and following < len(child):
            entry = child[following]
            if isinstance(entry, dict):
                tables.append(str(key))
                name = entry.get("name")
                header = f"[[{'.'.join(tables)}]] #{following + 1}"
                if isinstance(name, str) and name:
                    header += f" ({name})"
                node, k = entry, k + 2
                continue
        break
    rest = loc[k:]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
    return header, field


def _message(error: Any, model: type[BaseModel], loc: Sequence[str | int], field: str) -> str:
    kind, text = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        value = error.get("input")
        tables = isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
        what = "table" if isinstance(value, dict) or tables else "field"
        allowed = f"; expected one of: {', '.join(known)}" if known else ""
        return f"unknown {what}{allowed}"
    if kind == "missing":
        return "missing (required)"
    text = text.removeprefix("Value error, ")
    if field and "input" in error and not isinstance(error["input"], dict):
        return f"{text} (got {error['input']!r})"
    return text


def _fields_at(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The field names (as written in the file) of the model at ``path`` inside ``model``."""
    current: Any = model
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            fields = {f.alias or name: f for name, f in current.model_fields.items()}
            if part not in fields:
                return []
            current = fields[part].annotation
        elif typing.get_origin(current) is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → X; ``Annotated[X, ...]`` → X."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return _unwrap(rest[0])
    return annotation
