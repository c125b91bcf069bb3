"""Classify the differences between two versions of a contract (rules ``diff.*``).

Each version is first flattened to a :class:`View`: its ``allOf`` parts and ``$ref`` targets
(a module contract builds on the base) merged into one set of properties, each property's
constraints merged into :class:`Facets` (types, allowed values, bounds, patterns, items). Two
views are then compared field by field. A change breaks *producers* when the new version
rejects records the old one accepted (Schema Registry's BACKWARD direction: the door reads old
producers' records with the new contract); it breaks *consumers* when the new version lets in
records the store and analytics cannot read as before (FORWARD: a removed field they read, a
widened type). Keywords this module does not know are compared as JSON and, when they differ,
treated as breaking for producers: it cannot prove otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.consumers import ConsumedFields
from contracts.findings import json_pointer

PRODUCER_BREAKING = frozenset(
    {
        "diff.required-added", "diff.enum-value-removed", "diff.type-narrowed",
        "diff.range-narrowed", "diff.pattern-tightened", "diff.property-removed-closed",
        "diff.additional-properties-closed", "diff.keyword-changed",
        "diff.version-removed", "diff.contract-removed",
    }
)  # fmt: skip
CONSUMER_BREAKING = frozenset(
    {"diff.consumed-field-removed", "diff.consumed-field-optional", "diff.type-widened"}
)
_TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})
# keywords that describe and never constrain
_ANNOTATIONS = frozenset(
    {
        "title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
        "writeOnly", "contentEncoding", "contentMediaType", "format",
    }
)  # fmt: skip
# lower/upper bound keywords per family: (keyword, exclusive)
_LOWER = {
    "minimum": ("value", False), "exclusiveMinimum": ("value", True),
    "minLength": ("length", False), "minItems": ("items", False),
    "minProperties": ("properties", False),
}  # fmt: skip
_UPPER = {
    "maximum": ("value", False), "exclusiveMaximum": ("value", True),
    "maxLength": ("length", False), "maxItems": ("items", False),
    "maxProperties": ("properties", False),
}  # fmt: skip
_FAMILY_WORDS = {"value": "value", "length": "length", "items": "item count",
                 "properties": "property count"}  # fmt: skip
_TOP_LEVEL_SKIP = frozenset({"$schema", "$id", "properties", "required", "allOf", "$defs"})


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _type_set(value: Any) -> frozenset[str]:
    names = {value} if isinstance(value, str) else set(value) if isinstance(value, list) else set()
    if "number" in names:
        names.add("integer")
    return frozenset(names & _TYPES)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


@dataclass
class Facets:
    """The merged constraints on one value (a property, or the items of an array)."""

    types: frozenset[str] | None = None
    enum: dict[str, Any] | None = None  # canonical JSON → value
    lower: dict[str, tuple[float, bool]] = field(default_factory=dict)
    upper: dict[str, tuple[float, bool]] = field(default_factory=dict)
    patterns: set[str] = field(default_factory=set)
    items: Facets | None = None
    other: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    def effective_types(self) -> frozenset[str]:
        types = _TYPES if self.types is None else self.types
        if self.enum is not None:
            types = types & frozenset(_json_type(v) for v in self.enum.values())
        return types


@dataclass
class View:
    """A contract version flattened: its properties, required fields and other keywords."""

    properties: dict[str, Facets] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    closed: bool = False
    other: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


class _Flattener:
    """Merges a schema's parts, following ``$ref`` into the other documents of its set."""

    def __init__(self, documents: Mapping[str, Any]) -> None:
        self.documents = documents

    def _target(self, ref: str, document: Any) -> Any:
        uri, _, fragment = ref.partition("#")
        node = document if not uri else self.documents.get(uri)
        for raw in fragment.split("/")[1:] if fragment else []:
            token = raw.replace("~1", "/").replace("~0", "~")
            node = node.get(token) if isinstance(node, dict) else None
        return node

    def view(self, schema: Mapping[str, Any], document: Any = None, view: View | None = None,
             depth: int = 0) -> View:  # fmt: skip
        view = view if view is not None else View()
        document = schema if document is None else document
        if depth > 16:  # a reference cycle: contracts do not nest this deep
            view.other["$ref"] = "(cycle)"
            return view
        for part in schema.get("allOf", []) if isinstance(schema.get("allOf"), list) else []:
            if isinstance(part, dict):
                self.view(part, document, view, depth + 1)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self._target(ref, document)
            if isinstance(target, dict):
                uri = ref.partition("#")[0]
                self.view(target, self.documents.get(uri, document), view, depth + 1)
            else:
                view.other["$ref"] = ref
        properties = schema.get("properties", {})
        for name, spec in properties.items() if isinstance(properties, dict) else ():
            facets = view.properties.setdefault(name, Facets())
            self.merge(facets, spec, document, depth + 1)
        required = schema.get("required", [])
        view.required.update(r for r in required if isinstance(r, str))
        if schema.get("additionalProperties") is False:
            view.closed = True
        for key, value in schema.items():
            if key in _TOP_LEVEL_SKIP or key == "$ref" or key == "additionalProperties":
                continue
            if key in ("title", "description", "$comment"):
                view.metadata[key] = _canonical(value)
            elif key == "x-flaglens" and isinstance(value, dict):
                routing = {k: v for k, v in value.items() if k not in ("version", "contract")}
                view.other["x-flaglens"] = _canonical(routing)
            elif key != "x-flaglens":
                view.other[key] = _canonical(value)
        return view

    def merge(self, facets: Facets, spec: Any, document: Any, depth: int) -> None:
        """Add one schema's constraints to ``facets`` (all of them must hold)."""
        if not isinstance(spec, dict) or depth > 16:
            if spec is False:
                facets.types = frozenset()
            return
        ref = spec.get("$ref")
        if isinstance(ref, str):
            target = self._target(ref, document)
            if isinstance(target, dict):
                self.merge(facets, target, document, depth + 1)
            else:
                facets.other["$ref"] = ref
        for part in spec.get("allOf", []) if isinstance(spec.get("allOf"), list) else []:
            self.merge(facets, part, document, depth + 1)
        for key, value in spec.items():
            if key in ("$ref", "allOf"):
                continue
            if key == "type":
                types = _type_set(value)
                facets.types = types if facets.types is None else facets.types & types
            elif key in ("enum", "const"):
                values = value if key == "enum" and isinstance(value, list) else [value]
                allowed = {_canonical(v): v for v in values}
                if facets.enum is not None:
                    allowed = {k: v for k, v in allowed.items() if k in facets.enum}
                facets.enum = allowed
            elif key in _LOWER and isinstance(value, int | float):
                family, exclusive = _LOWER[key]
                bound = (float(value), exclusive)
                facets.lower[family] = max(facets.lower.get(family, bound), bound)
            elif key in _UPPER and isinstance(value, int | float):
                family, exclusive = _UPPER[key]
                old = facets.upper.get(family, (float(value), exclusive))
                bound = (float(value), exclusive)
                facets.upper[family] = min(old, bound, key=lambda b: (b[0], not b[1]))
            elif key == "pattern" and isinstance(value, str):
                facets.patterns.add(value)
            elif key == "items":
                facets.items = facets.items or Facets()
                self.merge(facets.items, value, document, depth + 1)
            elif key in _ANNOTATIONS:
                facets.metadata[key] = _canonical(value)
            else:
                facets.other[key] = _canonical(value)


def flatten(schema: Mapping[str, Any], documents: Mapping[str, Any]) -> View:
    """A contract version's :class:`View`; ``documents`` maps ``$id`` to the set's schemas."""
    return _Flattener(documents).view(schema)


@dataclass(frozen=True, slots=True)
class Change:
    """One classified difference; ``rule`` is a ``diff.*`` id."""

    rule: str
    pointer: str
    message: str


def _shown(values: Mapping[str, Any]) -> str:
    return ", ".join(sorted(json.dumps(v) for v in values.values()))


def _bounds(old: Facets, new: Facets, where: str, pointer: str, out: list[Change]) -> None:
    for side, stricter_if_higher in (("lower", True), ("upper", False)):
        old_b: dict[str, tuple[float, bool]] = getattr(old, side)
        new_b: dict[str, tuple[float, bool]] = getattr(new, side)
        for family in sorted(old_b.keys() | new_b.keys()):
            word = f"{'minimum' if side == 'lower' else 'maximum'} {_FAMILY_WORDS[family]}"
            a, b = old_b.get(family), new_b.get(family)
            if a == b:
                continue
            if a is None or b is None:
                narrowed = a is None
            else:
                key = (b[0], b[1]) if stricter_if_higher else (-b[0], b[1])
                narrowed = key > ((a[0], a[1]) if stricter_if_higher else (-a[0], a[1]))
            text = f"{where}: {word} {_bound(a)} -> {_bound(b)}"
            rule = "diff.range-narrowed" if narrowed else "diff.range-loosened"
            out.append(Change(rule, pointer, text))


def _bound(bound: tuple[float, bool] | None) -> str:
    if bound is None:
        return "none"
    value = int(bound[0]) if bound[0].is_integer() else bound[0]
    return f"{value} (exclusive)" if bound[1] else str(value)


def compare_facets(old: Facets, new: Facets, where: str, pointer: str) -> list[Change]:
    """The changes between two sets of constraints on one value."""
    out: list[Change] = []
    old_types, new_types = old.effective_types(), new.effective_types()
    if old_types - new_types:
        lost = ", ".join(sorted(old_types - new_types))
        out.append(Change("diff.type-narrowed", pointer, f"{where}: no longer accepts {lost}"))
    if new_types - old_types:
        gained = ", ".join(sorted(new_types - old_types))
        out.append(Change("diff.type-widened", pointer, f"{where}: now also accepts {gained}"))
    if old.enum != new.enum:
        if new.enum is not None and (old.enum is None or new.enum.keys() < old.enum.keys()):
            lost = "any value" if old.enum is None else _shown(
                {k: v for k, v in old.enum.items() if k not in new.enum}
            )  # fmt: skip
            text = f"{where}: no longer allows {lost} (allowed: {_shown(new.enum)})"
            out.append(Change("diff.enum-value-removed", pointer, text))
        elif old.enum is not None and (new.enum is None or new.enum.keys() > old.enum.keys()):
            gained = "any value" if new.enum is None else _shown(
                {k: v for k, v in new.enum.items() if k not in old.enum}
            )  # fmt: skip
            out.append(Change("diff.enum-value-added", pointer, f"{where}: now allows {gained}"))
        elif old.enum is not None and new.enum is not None:
            removed = {k: v for k, v in old.enum.items() if k not in new.enum}
            added = {k: v for k, v in new.enum.items() if k not in old.enum}
            text = f"{where}: no longer allows {_shown(removed)}"
            out.append(Change("diff.enum-value-removed", pointer, text))
            out.append(
                Change("diff.enum-value-added", pointer, f"{where}: now allows {_shown(added)}")
            )
    _bounds(old, new, where, pointer, out)
    if new.patterns - old.patterns:
        text = f"{where}: pattern {sorted(old.patterns) or 'none'} -> {sorted(new.patterns)}"
        out.append(Change("diff.pattern-tightened", pointer, text))
    elif old.patterns - new.patterns:
        text = f"{where}: pattern {sorted(old.patterns)} removed"
        out.append(Change("diff.pattern-loosened", pointer, text))
    if old.items is not None or new.items is not None:
        out += compare_facets(old.items or Facets(), new.items or Facets(), f"{where}[]",
                              pointer + "/items")  # fmt: skip
    for key in sorted(old.other.keys() | new.other.keys()):
        if old.other.get(key) != new.other.get(key):
            text = (
                f"{where}: {key} {old.other.get(key, 'absent')} -> {new.other.get(key, 'absent')}"
            )
            out.append(Change("diff.keyword-changed", f"{pointer}/{key}", text))
    return out


def compare_views(old: View, new: View, consumed: ConsumedFields | None) -> list[Change]:
    """Every classified change from one contract version to another."""
    out: list[Change] = []
    reads = consumed.all if consumed else frozenset()
    needs = consumed.required if consumed else frozenset()
    names = old.properties.keys() | new.properties.keys() | old.required | new.required
    for name in sorted(names):
        pointer = json_pointer("properties", name)
        in_old, in_new = name in old.properties, name in new.properties
        removed_consumed = False
        if in_old and not in_new:
            if new.closed:
                text = f"{name} removed while additionalProperties is false: records with it fail"
                out.append(Change("diff.property-removed-closed", pointer, text))
            if name in reads:
                removed_consumed = True
                text = f"{name} removed, but flaglens reads it ({consumed and consumed.table})"
                out.append(Change("diff.consumed-field-removed", pointer, text))
            elif not new.closed:
                out.append(Change("diff.property-removed", pointer, f"{name} removed"))
        elif in_new and not in_old:
            if name not in new.required:
                out.append(Change("diff.property-added", pointer, f"new optional field {name}"))
        elif in_old and in_new:
            out += compare_facets(old.properties[name], new.properties[name], name, pointer)
        if name in new.required and name not in old.required:
            out.append(Change("diff.required-added", "/required", f"{name} is now required"))
        if name in old.required and name not in new.required and not removed_consumed:
            if name in needs:
                text = f"{name} is no longer required, but a NOT NULL column reads it"
                out.append(Change("diff.consumed-field-optional", "/required", text))
            else:
                out.append(Change("diff.required-removed", "/required", f"{name} is optional now"))
    if new.closed and not old.closed:
        text = "additionalProperties is now false: records with other fields fail"
        out.append(Change("diff.additional-properties-closed", "/additionalProperties", text))
    elif old.closed and not new.closed:
        text = "additionalProperties: false dropped"
        out.append(Change("diff.additional-properties-opened", "/additionalProperties", text))
    for key in sorted(old.other.keys() | new.other.keys()):
        if old.other.get(key) != new.other.get(key):
            text = f"{key} {old.other.get(key, 'absent')} -> {new.other.get(key, 'absent')}"
            out.append(Change("diff.keyword-changed", json_pointer(key), text))
    changed_metadata = [json_pointer(k) for k in sorted(old.metadata.keys() | new.metadata.keys())
                        if old.metadata.get(k) != new.metadata.get(k)]  # fmt: skip
    for name in sorted(old.properties.keys() & new.properties.keys()):
        a, b = old.properties[name].metadata, new.properties[name].metadata
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        changed_metadata += [json_pointer("properties", name, k) for k in keys]
    if changed_metadata:
        text = "annotations changed at " + ", ".join(changed_metadata)
        out.append(Change("diff.metadata", changed_metadata[0], text))
    return out
