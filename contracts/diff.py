"""`contracts diff`: what changed between two contract sets, and whether it may.

Versions are paired per contract: a version in both sets must be unchanged (released versions
are immutable: ``diff.changed-in-place``); a new version is compared with its predecessor (the
highest lower version in either set) and, with ``transitive``, with every lower version of the
same major too (semantic versioning: a new major may break on purpose). The mode says which
direction must not break, as in Schema Registry: ``backward`` (existing producers),
``forward`` (consumers), ``full`` (both) or ``none``. A change that breaks a checked direction
is an error unless its version is a new major (then a warning: unpinned producers move to the
newest version as soon as it is loaded); one that breaks only an unchecked direction is a
warning; compatible ones are info. The bump itself must match the changes (``diff.version-bump``):
a major for a checked break, a minor for any other schema change, a patch for annotations only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from contracts.compat import CONSUMER_BREAKING, PRODUCER_BREAKING, Change, compare_views, flatten
from contracts.consumers import ConsumedFields, load_consumers
from contracts.findings import Finding, Level, Report, finding
from contracts.lint import SEMVER
from contracts.sources import ContractSet, Document

Mode = Literal["backward", "forward", "full", "none"]
MODES: tuple[Mode, ...] = ("backward", "forward", "full", "none")
Bump = Literal["major", "minor", "patch", "none"]
_BUMP_ORDER: tuple[Bump, ...] = ("none", "patch", "minor", "major")


@dataclass(frozen=True, slots=True)
class _Version:
    doc: Document
    schema: dict[str, Any]
    name: str
    version: str
    event_name: str

    @property
    def key(self) -> tuple[int, int, int]:
        major, minor, patch = self.version.split(".")
        return int(major), int(minor), int(patch)


@dataclass
class _Side:
    versions: dict[str, dict[str, _Version]]
    documents: dict[str, Any]
    skipped: int


def _side(contracts: ContractSet) -> _Side:
    versions: dict[str, dict[str, _Version]] = {}
    documents: dict[str, Any] = {}
    skipped = 0
    for doc in contracts.schemas:
        schema = doc.data
        meta = schema.get("x-flaglens") if isinstance(schema, dict) else None
        if not (
            isinstance(meta, dict)
            and isinstance(meta.get("contract"), str)
            and isinstance(meta.get("version"), str)
            and SEMVER.match(meta["version"])
            and isinstance(schema, dict)
        ):
            skipped += 1  # lint says why; a diff needs name and version
            continue
        version = _Version(doc, schema, meta["contract"], meta["version"],
                           str(meta.get("event_name")))  # fmt: skip
        versions.setdefault(version.name, {}).setdefault(version.version, version)
        if isinstance(schema.get("$id"), str):
            documents[schema["$id"]] = schema
    return _Side(versions, documents, skipped)


def _bump(old: _Version, new: _Version) -> Bump:
    if new.key[0] != old.key[0]:
        return "major"
    if new.key[1] != old.key[1]:
        return "minor"
    return "patch" if new.key[2] != old.key[2] else "none"


class _Differ:
    def __init__(
        self, mode: Mode, transitive: bool, consumers: Mapping[str, ConsumedFields]
    ) -> None:
        self.mode = mode
        self.transitive = transitive
        self.consumers = consumers
        self.checked: set[str] = set()
        if mode in ("backward", "full"):
            self.checked.add("producers")
        if mode in ("forward", "full"):
            self.checked.add("consumers")

    def breaks(self, change: Change) -> set[str]:
        if change.rule in PRODUCER_BREAKING:
            return {"producers"}
        return {"consumers"} if change.rule in CONSUMER_BREAKING else set()

    def changes(
        self, old: _Version, old_docs: Mapping[str, Any], new: _Version,
        new_docs: Mapping[str, Any],
    ) -> list[Change]:  # fmt: skip
        consumed = self.consumers.get(new.event_name)
        return compare_views(flatten(old.schema, old_docs), flatten(new.schema, new_docs), consumed)

    def level(self, change: Change, bump: Bump) -> Level:
        broken = self.breaks(change)
        if broken & self.checked:
            return "warning" if bump == "major" else "error"
        return "warning" if broken else "info"

    def required_bump(self, changes: list[Change]) -> Bump:
        if any(self.breaks(c) & self.checked for c in changes):
            return "major"
        if any(c.rule != "diff.metadata" for c in changes):
            return "minor"
        return "patch" if changes else "none"


def _bump_finding(old: _Version, new: _Version, needed: Bump, got: Bump) -> Finding | None:
    tag = {"contract": new.name, "version": new.version}
    span = f"{old.version} -> {new.version}"
    if _BUMP_ORDER.index(got) < _BUMP_ORDER.index(needed):
        level: Level = "error" if needed == "major" else "warning"
        why = "breaking changes" if needed == "major" else "schema changes"
        message = f"{span} is a {got} bump, but its {why} need a {needed} version"
        return finding("diff.version-bump", new.doc.path, "/x-flaglens/version", message,
                       level=level, **tag)  # fmt: skip
    if needed == "none":
        message = f"{span}: the new version is identical to {old.version}"
        return finding("diff.version-bump", new.doc.path, "/x-flaglens/version", message,
                       level="info", **tag)  # fmt: skip
    if got == "major" and needed != "major":
        message = f"{span} is a major bump for changes that break nothing checked"
        return finding("diff.version-bump", new.doc.path, "/x-flaglens/version", message,
                       level="info", **tag)  # fmt: skip
    return None


def diff_sets(
    old: ContractSet,
    new: ContractSet,
    *,
    mode: Mode = "full",
    transitive: bool = False,
    consumers: Mapping[str, ConsumedFields] | None = None,
) -> Report:
    """Every ``diff.*`` finding from ``old`` to ``new``."""
    differ = _Differ(mode, transitive, load_consumers() if consumers is None else consumers)
    before, after = _side(old), _side(new)
    report = Report("diff", checked=[d.path for d in new.schemas])
    report.notes.append(
        f"compared {old.label} -> {new.label} (mode {mode}{', transitive' if transitive else ''})"
    )
    for side, label in ((before, old.label), (after, new.label)):
        if side.skipped:
            report.notes.append(f"{label}: {side.skipped} file(s) without a usable name and "
                                "version skipped (see lint)")  # fmt: skip
    out = report.findings
    for name in sorted(before.versions.keys() | after.versions.keys()):
        olds, news = before.versions.get(name, {}), after.versions.get(name, {})
        if not news:
            newest = max(olds.values(), key=lambda v: v.key)
            out.append(finding("diff.contract-removed", newest.doc.path, "",
                               f"contract {name} removed (versions {', '.join(sorted(olds))}); "
                               "its records now fail or go uncontracted",
                               contract=name, version=newest.version))  # fmt: skip
            continue
        for version in sorted(olds.keys() - news.keys()):
            out.append(finding("diff.version-removed", olds[version].doc.path, "",
                               f"{name}@{version} removed: records pinned to it now fail",
                               contract=name, version=version))  # fmt: skip
        for version in sorted(olds.keys() & news.keys()):
            a, b = olds[version], news[version]
            if a.schema != b.schema:
                found = differ.changes(a, before.documents, b, after.documents)
                what = ", ".join(sorted({c.rule for c in found})) or "only $id or x-flaglens"
                out.append(finding("diff.changed-in-place", b.doc.path, "",
                                   f"{name}@{version} changed without a new version ({what}); "
                                   "add a new version file instead", contract=name,
                                   version=version))  # fmt: skip
        everything = {**{v: (x, before.documents) for v, x in olds.items()},
                      **{v: (x, after.documents) for v, x in news.items()}}  # fmt: skip
        for version in sorted(news.keys() - olds.keys(), key=lambda v: news[v].key):
            current = news[version]
            lower = sorted((v for v in everything.values() if v[0].key < current.key),
                           key=lambda v: v[0].key)  # fmt: skip
            if not lower:
                out.append(finding("diff.contract-added", current.doc.path, "",
                                   f"new contract version {name}@{version}", contract=name,
                                   version=version))  # fmt: skip
                continue
            previous, previous_docs = lower[-1]
            changes = differ.changes(previous, previous_docs, current, after.documents)
            bump = _bump(previous, current)
            for change in changes:
                out.append(finding(change.rule, current.doc.path, change.pointer,
                                   f"{previous.version} -> {version}: {change.message}",
                                   level=differ.level(change, bump), contract=name,
                                   version=version))  # fmt: skip
            bump_finding = _bump_finding(previous, current, differ.required_bump(changes), bump)
            if bump_finding is not None:
                out.append(bump_finding)
            if transitive:
                for earlier, earlier_docs in lower[:-1]:
                    if earlier.key[0] != current.key[0]:
                        continue
                    for change in differ.changes(earlier, earlier_docs, current, after.documents):
                        if differ.breaks(change) & differ.checked:
                            out.append(finding(
                                change.rule, current.doc.path, change.pointer,
                                f"{earlier.version} -> {version} (transitive): {change.message}",
                                level=differ.level(change, "none"), contract=name,
                                version=version,
                            ))  # fmt: skip
    return report
