"""`contracts lint`: one contract set checked on its own (rules ``lint.*`` in :data:`RULES`).

Each schema is meta-validated against draft 2020-12 and held to flaglens' conventions (``$id``
from name and version, ``x-flaglens`` complete and agreeing with the file name and the schema,
semantic versions, one file per contract version and one contract per event/module, every
``$ref`` resolving, the base contract's modules each covered); then every example is run:
``valid/`` ones must pass, ``invalid/`` ones must fail with exactly the errors they state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs

from contracts.errors import ContractError
from contracts.findings import Finding, Report, finding, json_pointer
from contracts.lint_examples import check_examples
from contracts.registry import SCHEMA_DIALECT, Contract, Registry, build_registry
from contracts.sources import ContractSet, Document

SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
ID_PREFIX = "https://flaglens.dev/contracts/"
_META = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)


@dataclass(frozen=True, slots=True)
class _Meta:
    """A contract file's x-flaglens block, once it is known to be well formed."""

    contract: str
    version: str
    event_name: str
    policy_module: str | None
    source: str | None


def expected_id(contract: str, version: str) -> str:
    return f"{ID_PREFIX}{contract}/{version}.json"


def _meta(doc: Document, schema: dict[str, Any], out: list[Finding]) -> _Meta | None:
    meta = schema.get("x-flaglens")
    if not isinstance(meta, dict):
        out.append(
            finding(
                "lint.x-flaglens", doc.path, "/x-flaglens",
                "x-flaglens is missing: add {contract, version, event_name, policy_module}",
            )
        )  # fmt: skip
        return None
    problems = []
    for key in ("contract", "version", "event_name"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            problems.append((key, f"x-flaglens.{key} must be a non-empty string"))
    for key in ("policy_module", "source"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            problems.append((key, f"x-flaglens.{key} must be a string or null"))
    for key, message in problems:
        out.append(finding("lint.x-flaglens", doc.path, json_pointer("x-flaglens", key), message))
    if problems:
        return None
    return _Meta(
        meta["contract"], meta["version"], meta["event_name"], meta.get("policy_module"),
        meta.get("source"),
    )  # fmt: skip


def _refs(value: Any, path: tuple[object, ...] = ()) -> Iterator[tuple[tuple[object, ...], str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "$ref" and isinstance(child, str):
                yield (*path, key), child
            elif key not in ("const", "enum", "examples", "default"):
                yield from _refs(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _refs(child, (*path, index))


def resolve_pointer(document: Any, fragment: str) -> tuple[bool, Any]:
    """Follow a JSON pointer fragment (``/properties/a``) into a document."""
    node = document
    for raw in fragment.split("/")[1:] if fragment else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node


def _check_schema(doc: Document, out: list[Finding]) -> tuple[dict[str, Any], _Meta] | None:
    """Findings of one schema file on its own; the schema and its x-flaglens when usable."""
    if doc.error is not None:
        out.append(finding("lint.json", doc.path, "", f"not readable JSON: {doc.error}"))
        return None
    schema = doc.data
    if not isinstance(schema, dict):
        out.append(finding("lint.json", doc.path, "", "a contract must be a JSON object"))
        return None
    if schema.get("$schema") != SCHEMA_DIALECT:
        out.append(
            finding(
                "lint.dialect", doc.path, "/$schema",
                f"$schema is {schema.get('$schema')!r}; contracts use {SCHEMA_DIALECT!r}",
            )
        )  # fmt: skip
    meta_errors = sorted(_META.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path)))
    for error in meta_errors:
        out.append(
            finding(
                "lint.meta-schema", doc.path, json_pointer(*error.absolute_path),
                f"not valid draft 2020-12: {error.message}",
            )
        )  # fmt: skip
    meta = _meta(doc, schema, out)
    if meta is None:
        return None
    usable = not meta_errors
    if not SEMVER.match(meta.version):
        out.append(
            finding(
                "lint.version", doc.path, "/x-flaglens/version",
                f"version {meta.version!r} is not MAJOR.MINOR.PATCH (e.g. 1.2.0)",
            )
        )  # fmt: skip
        usable = False
    wanted = expected_id(meta.contract, meta.version)
    if schema.get("$id") != wanted:
        out.append(
            finding(
                "lint.id", doc.path, "/$id", f"$id is {schema.get('$id')!r}; expected {wanted!r}"
            )
        )
        usable = usable and isinstance(schema.get("$id"), str)
    name = f"{meta.contract}-{meta.version}.json"
    if doc.relative != name:
        out.append(
            finding(
                "lint.file-name", doc.path, "",
                f"file is named {doc.relative!r}; x-flaglens says it is {name!r}",
            )
        )  # fmt: skip
    properties = schema.get("properties", {})
    consts = (("event_name", meta.event_name), ("policy.module", meta.policy_module))
    for field, declared in consts:
        spec = properties.get(field) if isinstance(properties, dict) else None
        if isinstance(spec, dict) and "const" in spec and declared is not None:
            if spec["const"] != declared:
                out.append(
                    finding(
                        "lint.x-flaglens-mismatch", doc.path,
                        json_pointer("properties", field, "const"),
                        f"{field} const is {spec['const']!r}; x-flaglens says {declared!r}",
                    )
                )  # fmt: skip
    return (schema, meta) if usable else None


def _check_refs(
    doc: Document, schema: dict[str, Any], documents: Mapping[str, Any], out: list[Finding]
) -> bool:
    ok = True
    for path, ref in _refs(schema):
        uri, _, fragment = ref.partition("#")
        target = schema if not uri or uri == schema.get("$id") else documents.get(uri)
        found = target is not None and resolve_pointer(target, fragment)[0]
        if not found:
            ok = False
            known = ", ".join(sorted(documents)) or "none"
            out.append(
                finding(
                    "lint.ref", doc.path, json_pointer(*path),
                    f"$ref {ref!r} resolves to nothing; contracts in this set: {known}",
                )
            )  # fmt: skip
    return ok


def _duplicates(
    files: Sequence[tuple[Document, dict[str, Any], _Meta]], out: list[Finding]
) -> list[tuple[Document, dict[str, Any], _Meta]]:
    seen: dict[tuple[str, str], str] = {}
    routes: dict[tuple[str, str | None, str | None], tuple[str, str]] = {}
    kept = []
    for doc, schema, meta in files:
        key = (meta.contract, meta.version)
        if key in seen:
            out.append(
                finding(
                    "lint.duplicate", doc.path, "/x-flaglens",
                    f"{meta.contract}@{meta.version} is also defined by {seen[key]}; "
                    "bump the version in one of them",
                )
            )  # fmt: skip
            continue
        seen[key] = doc.path
        route = (meta.event_name, meta.policy_module, meta.source)
        other = routes.setdefault(route, (meta.contract, doc.path))
        if other[0] != meta.contract:
            what = f"event {meta.event_name!r}, module {meta.policy_module!r}"
            if meta.source:
                what += f", source {meta.source!r}"
            out.append(
                finding(
                    "lint.duplicate", doc.path, "/x-flaglens",
                    f"{meta.contract} claims {what}, which {other[0]} ({other[1]}) already covers",
                )
            )  # fmt: skip
            continue
        kept.append((doc, schema, meta))
    return kept


def _compile(
    files: Sequence[tuple[Document, dict[str, Any], _Meta]], out: list[Finding]
) -> Registry | None:
    resources = jsonschema_rs.Registry([(schema["$id"], schema) for _, schema, _ in files])
    good = []
    for doc, schema, meta in files:
        try:
            jsonschema_rs.validator_for(schema, registry=resources)
        except (jsonschema_rs.ReferencingError, ValueError) as exc:
            out.append(
                finding(
                    "lint.compile", doc.path, "", f"cannot build a validator: {exc}",
                    contract=meta.contract, version=meta.version,
                )
            )  # fmt: skip
            continue
        good.append((doc.path, schema))
    try:
        return build_registry(good)
    except ContractError as exc:  # everything above passed; say so rather than crash
        out.append(finding("lint.compile", good[0][0] if good else "", "", str(exc)))
        return None


def _modules(registry: Registry, paths: Mapping[tuple[str, str], str], out: list[Finding]) -> None:
    newest: dict[str, Contract] = {}
    for contract in registry.contracts:
        newest[contract.name] = contract
    for base in newest.values():
        if base.source or base.policy_module is not None:
            continue
        spec = base.schema.get("properties", {}).get("policy.module")
        listed = spec.get("enum") if isinstance(spec, dict) else None
        if not isinstance(listed, list):
            continue
        covered = {
            c.policy_module: c
            for c in newest.values()
            if c.event_name == base.event_name and c.policy_module and not c.source
        }
        if not covered:  # no module contract builds on it: a policy.module field, not a base
            continue
        base_path = paths[(base.name, base.version)]
        for index, module in enumerate(listed):
            if module not in covered:
                out.append(
                    finding(
                        "lint.module-missing", base_path,
                        json_pointer("properties", "policy.module", "enum", index),
                        f"module {module!r} is listed but no contract has policy_module "
                        f"{module!r}; add one or remove it from the list",
                        contract=base.name, version=base.version,
                    )
                )  # fmt: skip
        for module, contract in sorted(covered.items()):
            if module not in listed:
                out.append(
                    finding(
                        "lint.module-unlisted", paths[(contract.name, contract.version)],
                        "/x-flaglens/policy_module",
                        f"module {module!r} is not in {base.name}'s policy.module list "
                        f"{listed}: its records are rejected by the base contract",
                        contract=contract.name, version=contract.version,
                    )
                )  # fmt: skip


def lint_set(contracts: ContractSet) -> Report:
    """Every ``lint.*`` finding of a contract set (schemas and examples)."""
    report = Report("lint", checked=[d.path for d in (*contracts.schemas, *contracts.examples)])
    out = report.findings
    if not contracts.schemas:
        report.notes.append(f"{contracts.label}: no contract files")
    checked = []
    for doc in contracts.schemas:
        result = _check_schema(doc, out)
        if result is not None:
            checked.append((doc, *result))
    documents = {schema["$id"]: schema for _, schema, _ in checked}
    checked = [item for item in checked if _check_refs(item[0], item[1], documents, out)]
    checked = _duplicates(checked, out)
    registry = _compile(checked, out) if checked else None
    if registry is not None:
        paths = {(meta.contract, meta.version): doc.path for doc, _, meta in checked}
        _modules(registry, paths, out)
        check_examples(registry, contracts.examples, out)
    return report
