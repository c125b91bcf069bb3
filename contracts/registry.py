"""The contract registry: loads every contract once, compiles it, and checks records.

A contract file is a JSON Schema (draft 2020-12) with an ``$id`` and an ``x-flaglens`` object
naming the contract, its semantic version, the event it describes and, for decision contracts,
the policy module. Records are mapped to a contract by ``event_name`` (and, for
``feature_flag.evaluation``, by ``policy.module``); a ``contract.version`` attribute pins an
exact version (``1.1.0``) or a major (``1``); otherwise the newest version applies.
Several versions of a contract stay live at once.

A contract whose ``x-flaglens`` names a ``source`` (``"opa"``) is not routed by event name: it
checks the records that receiver builds (:meth:`Registry.source_contract`). A record whose
event name no routed contract governs is *uncontracted*: its verdict says so, and the
receiver decides what to do with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs

from contracts.errors import DuplicateContract, InvalidContract, UnknownContract

EVALUATION_EVENT = "feature_flag.evaluation"
VERSION_ATTRIBUTE = "contract.version"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a record breaks its contract; ``pointer`` is an RFC 6901 JSON pointer."""

    contract_id: str | None
    contract_version: str | None
    pointer: str
    message: str

    def __str__(self) -> str:
        where = f"{self.contract_id}@{self.contract_version} " if self.contract_id else ""
        return f"{where}{self.pointer or '/'}: {self.message}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The contract a record was checked against and what it broke (nothing when ``ok``)."""

    contract_id: str | None
    contract_version: str | None
    violations: tuple[Violation, ...] = ()
    uncontracted: bool = False
    """No contract governs the record's event name (the violation says so)."""

    @property
    def ok(self) -> bool:
        return not self.violations


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True, slots=True)
class Contract:
    """One loaded, compiled contract version."""

    name: str
    version: str
    event_name: str
    policy_module: str | None
    schema: Mapping[str, Any]
    path: str
    validator: Any = field(repr=False, compare=False)
    passed: Verdict = field(repr=False, compare=False)
    source: str | None = None
    """The receiver this contract is bound to (``"opa"``); None: routed by event name."""

    @property
    def uri(self) -> str:
        return str(self.schema["$id"])

    def check(self, record: Mapping[str, Any]) -> Verdict:
        """Validate one record; valid records share one cached verdict."""
        if self.validator.is_valid(record):
            return self.passed
        violations = tuple(
            Violation(self.name, self.version, _pointer(error), _message(error))
            for error in self.validator.iter_errors(record)
        )
        return Verdict(self.name, self.version, violations)


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(error: Any) -> str:
    path = "".join(f"/{_escape(token)}" for token in error.instance_path)
    if type(error.kind).__name__ == "Required":
        return f"{path}/{_escape(error.kind.property)}"
    return path


def _message(error: Any) -> str:
    if type(error.kind).__name__ == "Required":
        return "required property is missing"
    return str(error.message)


def _read(path: Path | Any) -> tuple[str, dict[str, Any]]:
    name = str(path)
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidContract(name, f"cannot read JSON: {exc}") from exc
    return name, schema


# Documents that passed the metaschema, as canonical JSON: checking one costs ~20 ms and every
# server start, reload, replay and preview checks the same shipped files again.
_VALID_SCHEMAS: set[str] = set()


def _check_schema(name: str, schema: dict[str, Any]) -> None:
    try:
        text = json.dumps(schema, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        text = None  # not plain JSON (NaN, a non-string key): checked every time
    if text is not None and text in _VALID_SCHEMAS:
        return
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise InvalidContract(
            name, f"not a valid draft 2020-12 schema at {where}: {exc.message}"
        ) from exc
    if text is not None:
        _VALID_SCHEMAS.add(text)


def validate_contract_schema(name: str, schema: Any) -> dict[str, Any]:
    """Check what the registry needs of a contract file's JSON; returns it as a dict.

    Raises:
        InvalidContract: names the file and the first problem found.
    """
    if not isinstance(schema, dict):
        raise InvalidContract(name, "a contract must be a JSON object")
    _check_schema(name, schema)
    meta = schema.get("x-flaglens")
    if not isinstance(meta, dict) or not {"contract", "version", "event_name"} <= meta.keys():
        raise InvalidContract(name, "missing x-flaglens {contract, version, event_name}")
    if "$id" not in schema:
        raise InvalidContract(name, "missing $id")
    try:
        _version_key(str(meta["version"]))
    except ValueError as exc:
        raise InvalidContract(
            name, f"version {meta['version']!r} is not MAJOR.MINOR.PATCH"
        ) from exc
    return schema


def schema_folder(directory: Path) -> Path:
    """Where a contracts directory keeps its schema files: ``DIR/schemas/`` when there is one
    (the layout of the shipped ``contracts/``), else ``DIR`` itself."""
    nested = directory / "schemas"
    return nested if nested.is_dir() else directory


def _schema_files(directory: Path | None) -> list[Any]:
    if directory is not None:
        if not directory.is_dir():
            raise InvalidContract(directory, "contracts directory does not exist")
        return sorted(schema_folder(directory).glob("*.json"))
    root = resources.files("contracts").joinpath("schemas")
    return sorted((p for p in root.iterdir() if p.name.endswith(".json")), key=lambda p: p.name)


class Registry:
    """Every loaded contract, and the mapping from records to contracts."""

    def __init__(self, contracts: Iterable[Contract]) -> None:
        self._versions: dict[str, list[Contract]] = {}
        for contract in contracts:
            self._versions.setdefault(contract.name, []).append(contract)
        for versions in self._versions.values():
            versions.sort(key=lambda c: _version_key(c.version))
        # event name → contract name for events with no module split
        self._by_event: dict[str, str] = {}
        self._modules: dict[str, str] = {}
        self._sources: dict[str, str] = {}
        for name, versions in self._versions.items():
            newest = versions[-1]
            if newest.source is not None:
                self._sources[newest.source] = name
            elif newest.policy_module is None:
                self._by_event[newest.event_name] = name
            else:
                self._modules[newest.policy_module] = name
        # the event names routed contracts govern; any other record is uncontracted
        self.governed_events = frozenset(c.event_name for c in self.contracts if c.source is None)
        # (event_name, policy.module, contract.version) → where such records go; bounded, since
        # the values come from senders
        self._routes: dict[tuple[str | None, ...], Contract | Verdict] = {}

    @property
    def contracts(self) -> list[Contract]:
        """Every loaded contract version, by name then version."""
        return [c for name in sorted(self._versions) for c in self._versions[name]]

    def get(self, name: str, version: str | None = None) -> Contract:
        """A contract by name and exact version, major (``"1"``), or newest when None."""
        versions = self._versions.get(name)
        if not versions:
            raise UnknownContract(name, version, sorted(self._versions))
        if version is None:
            return versions[-1]
        wanted = version.split(".")
        matching = [c for c in versions if c.version.split(".")[: len(wanted)] == wanted]
        if not matching:
            raise UnknownContract(name, version, [c.version for c in versions])
        return matching[-1]

    def source_contract(self, source: str) -> Contract:
        """The newest contract bound to a receiver (``"opa"``).

        Raises:
            UnknownContract: no loaded contract names that source.
        """
        name = self._sources.get(source)
        if name is None:
            raise UnknownContract(f"(source {source})", None, sorted(self._versions))
        return self._versions[name][-1]

    def _contract_name(self, record: Mapping[str, Any]) -> str | None:
        event = record.get("event_name")
        if event == EVALUATION_EVENT:
            module = record.get("policy.module")
            return (
                self._modules.get(module, self._by_event.get(EVALUATION_EVENT))
                if isinstance(module, str)
                else self._by_event.get(EVALUATION_EVENT)
            )
        return self._by_event.get(event) if isinstance(event, str) else None

    def check(self, record: Mapping[str, Any]) -> Verdict:
        """The contract for a record and what the record breaks of it."""
        event = record.get("event_name")
        module = record.get("policy.module")
        pinned = record.get(VERSION_ATTRIBUTE)
        route = (event, module, pinned)
        # only strings and None make a key: 1, 1.0 and True are one key but route differently
        cacheable = (
            type(event) is str
            and (module is None or type(module) is str)
            and (pinned is None or type(pinned) is str)
        )
        target = self._routes.get(route) if cacheable else None
        if target is None:
            target = self._route(record)
            if cacheable and len(self._routes) < _ROUTE_CACHE_SIZE:
                self._routes[route] = target
        return target.check(record) if isinstance(target, Contract) else target

    def _route(self, record: Mapping[str, Any]) -> Contract | Verdict:
        """The contract a record is checked against, or the verdict when there is none."""
        name = self._contract_name(record)
        if name is None:
            event = record.get("event_name")
            known = ", ".join(sorted(self.governed_events))
            violation = Violation(
                None,
                None,
                "/event_name",
                f"no contract for event {event!r}; contracted events: {known}",
            )
            uncontracted = not (isinstance(event, str) and event in self.governed_events)
            return Verdict(None, None, (violation,), uncontracted=uncontracted)
        pinned = record.get(VERSION_ATTRIBUTE)
        try:
            return self.get(name, None if pinned is None else str(pinned))
        except UnknownContract as exc:
            return Verdict(name, None, (Violation(name, None, f"/{VERSION_ATTRIBUTE}", str(exc)),))

    def check_batch(self, records: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        """Check many records; the hot path of ingestion."""
        check = self.check
        return [check(record) for record in records]


_ROUTE_CACHE_SIZE = 4096


def load_registry(directory: Path | None = None) -> Registry:
    """Load, meta-validate and compile every contract.

    Args:
        directory: a folder of contract files (or one holding them in ``schemas/``); default:
            the contracts shipped in this package.

    Raises:
        InvalidContract: a file is not a usable contract (names the file and the problem).
        DuplicateContract: two files define the same contract name and version.
    """
    return build_registry(read_contract_files(directory))


def read_contract_files(directory: Path | None = None) -> list[tuple[str, Any]]:
    """The contract files of a directory (default: the shipped ones), read and parsed:
    ``(file name, JSON)`` pairs for :func:`build_registry`. A server reads them once and hands
    the same documents to its decode workers, so that all check against one set even when the
    files change meanwhile.

    Raises:
        InvalidContract: a file is not readable JSON, or the directory does not exist.
    """
    return [_read(path) for path in _schema_files(directory)]


def build_registry(files: Sequence[tuple[str, Any]]) -> Registry:
    """A registry from contract documents already read: ``(file name, parsed JSON)`` pairs.

    Raises:
        InvalidContract, DuplicateContract: as :func:`load_registry`.
    """
    loaded = [(name, validate_contract_schema(name, schema)) for name, schema in files]
    registry = jsonschema_rs.Registry([(schema["$id"], schema) for _, schema in loaded])
    seen: dict[tuple[str, str], str] = {}
    contracts = []
    for path, schema in loaded:
        meta = schema["x-flaglens"]
        key = (str(meta["contract"]), str(meta["version"]))
        if key in seen:
            raise DuplicateContract(key[0], key[1], [seen[key], path])
        seen[key] = path
        try:
            validator = jsonschema_rs.validator_for(schema, registry=registry)
        except (jsonschema_rs.ReferencingError, ValueError) as exc:
            raise InvalidContract(path, f"cannot compile: {exc}") from exc
        source = meta.get("source")
        contracts.append(
            Contract(
                name=key[0],
                version=key[1],
                event_name=str(meta["event_name"]),
                policy_module=meta.get("policy_module"),
                schema=schema,
                path=path,
                validator=validator,
                passed=Verdict(key[0], key[1]),
                source=str(source) if source is not None else None,
            )
        )
    return Registry(contracts)
