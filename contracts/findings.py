"""What `contracts lint`, `diff` and `check` report: findings with stable ids, and the report.

Every id a finding can carry is listed in :data:`RULES` with its default level and a one-line
summary; docs/contracts.md lists the same ids, and a test keeps the two in step. Ids never
change meaning: a new rule gets a new id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Level = Literal["error", "warning", "info"]
LEVELS: tuple[Level, ...] = ("info", "warning", "error")
"""Levels from the least to the most severe."""


def level_rank(level: Level) -> int:
    return LEVELS.index(level)


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of finding."""

    id: str
    level: Level
    summary: str


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return {rule.id: rule for rule in rules}


RULES: Mapping[str, Rule] = _rules(
    # lint: one contract set on its own
    Rule("lint.json", "error", "a contract or example file is not readable JSON"),
    Rule("lint.meta-schema", "error", "a contract is not a valid draft 2020-12 JSON Schema"),
    Rule("lint.dialect", "error", "$schema is missing or not draft 2020-12"),
    Rule("lint.x-flaglens", "error", "x-flaglens is missing, incomplete or mistyped"),
    Rule("lint.version", "error", "the version is not a semantic version MAJOR.MINOR.PATCH"),
    Rule("lint.id", "error", "$id is not https://flaglens.dev/contracts/<contract>/<version>.json"),
    Rule("lint.file-name", "error", "the file is not named <contract>-<version>.json"),
    Rule(
        "lint.x-flaglens-mismatch",
        "error",
        "the event_name or policy.module const disagrees with x-flaglens",
    ),
    Rule(
        "lint.duplicate",
        "error",
        "two files claim the same contract@version, or two contracts the same event/module",
    ),
    Rule("lint.ref", "error", "a $ref resolves to nothing in the contract set"),
    Rule("lint.compile", "error", "the validator cannot be built (an unsupported regex, ...)"),
    Rule("lint.module-missing", "error", "the base contract lists a module no contract covers"),
    Rule("lint.module-unlisted", "error", "a module contract's module is not in the base's list"),
    Rule("lint.example-file", "error", "an example file lacks record/expect or has no contract"),
    Rule("lint.example-routed", "error", "an example reaches another contract than its folder's"),
    Rule("lint.example-valid", "error", "a valid/ example breaks its contract"),
    Rule(
        "lint.example-invalid",
        "error",
        "an invalid/ example passes, or fails otherwise than it states",
    ),
    Rule(
        "lint.examples-missing", "warning", "a contract version has no valid or no invalid example"
    ),
    # diff: two contract sets
    Rule("diff.required-added", "error", "a field became required (breaks existing producers)"),
    Rule("diff.enum-value-removed", "error", "an enum or const allows fewer values (producers)"),
    Rule("diff.type-narrowed", "error", "a field allows fewer JSON types (producers)"),
    Rule("diff.range-narrowed", "error", "a bound (minimum, length, items) tightened (producers)"),
    Rule("diff.pattern-tightened", "error", "a pattern was added or changed (producers)"),
    Rule(
        "diff.property-removed-closed",
        "error",
        "a property was removed under additionalProperties: false (producers)",
    ),
    Rule(
        "diff.additional-properties-closed",
        "error",
        "additionalProperties became false (producers)",
    ),
    Rule(
        "diff.keyword-changed",
        "error",
        "a keyword flaglens cannot classify changed (treated as breaking for producers)",
    ),
    Rule("diff.version-removed", "error", "a contract version was removed (pinned producers)"),
    Rule("diff.contract-removed", "error", "a whole contract was removed (its producers)"),
    Rule(
        "diff.consumed-field-removed",
        "error",
        "a field the typed columns or analytics read was removed (consumers)",
    ),
    Rule(
        "diff.consumed-field-optional",
        "error",
        "a field a NOT NULL column reads is no longer required (consumers)",
    ),
    Rule("diff.type-widened", "error", "a field allows more JSON types (consumers)"),
    Rule("diff.property-added", "info", "a new optional field (compatible)"),
    Rule("diff.enum-value-added", "info", "an enum allows more values (compatible)"),
    Rule("diff.range-loosened", "info", "a bound loosened or removed (compatible)"),
    Rule("diff.pattern-loosened", "info", "a pattern was removed (compatible)"),
    Rule("diff.required-removed", "info", "a field is no longer required (compatible)"),
    Rule("diff.property-removed", "info", "a property nothing reads was removed (compatible)"),
    Rule(
        "diff.additional-properties-opened",
        "info",
        "additionalProperties: false was dropped (compatible)",
    ),
    Rule("diff.metadata", "info", "only titles, descriptions or examples changed"),
    Rule("diff.contract-added", "info", "a new contract or contract version"),
    Rule(
        "diff.changed-in-place",
        "error",
        "a released contract version changed without a new version",
    ),
    Rule("diff.version-bump", "error", "the version bump does not match the change's class"),
    # check: the CI run around the two
    Rule("check.base", "info", "what the check compared against (or why it could not)"),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a check found, located by file and JSON pointer (RFC 6901) in that file."""

    id: str
    level: Level
    file: str
    pointer: str
    message: str
    contract: str | None = None
    version: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "level": self.level,
            "file": self.file,
            "pointer": self.pointer,
            "message": self.message,
            "contract": self.contract,
            "version": self.version,
        }


def finding(
    rule_id: str,
    file: str,
    pointer: str,
    message: str,
    *,
    level: Level | None = None,
    contract: str | None = None,
    version: str | None = None,
) -> Finding:
    """A finding of a catalogued rule, at the rule's level unless ``level`` says otherwise."""
    rule = RULES[rule_id]
    return Finding(
        rule_id, level or rule.level, file, pointer, message, contract=contract, version=version
    )


@dataclass
class Report:
    """What one verb found, the files it looked at, and notes on what it compared."""

    verb: str
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Report) -> None:
        self.findings.extend(other.findings)
        self.checked.extend(f for f in other.checked if f not in self.checked)
        self.notes.extend(other.notes)

    def at_or_above(self, level: Level) -> list[Finding]:
        rank = level_rank(level)
        return [f for f in self.findings if level_rank(f.level) >= rank]

    def exit_code(self, fail_on: Level) -> int:
        """0 when nothing reaches ``fail_on``, else 1 (2, usage errors, is the CLI's)."""
        return 1 if self.at_or_above(fail_on) else 0

    def counts(self) -> dict[Level, int]:
        return {level: sum(f.level == level for f in self.findings) for level in LEVELS}


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by file and pointer: the order every output uses."""
    return sorted(findings, key=lambda f: (-level_rank(f.level), f.file, f.pointer, f.id))


def json_pointer(*tokens: object) -> str:
    """An RFC 6901 pointer from path tokens (``json_pointer("properties", "a/b")``)."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)
