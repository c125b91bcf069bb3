"""`contracts lint`: the shipped contracts are clean; each rule fires on a copy broken for it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contracts import RULES, lint_set, read_directory
from tests.contracts.copies import (
    add_custom,
    copy_contracts,
    custom_schema,
    edit_json,
    read_json,
    write_json,
)

PRIVACY = "feature_flag.evaluation.privacy"


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    directory = copy_contracts(tmp_path)
    add_custom(directory)
    return directory


def _errors(directory: Path) -> dict[str, list[str]]:
    """Error-level finding ids → the pointers they were found at."""
    found: dict[str, list[str]] = {}
    for f in lint_set(read_directory(directory)).findings:
        if f.level == "error":
            found.setdefault(f.id, []).append(f.pointer)
    return found


def test_shipped_contracts_and_the_custom_one_are_clean(contracts):
    """The fixture every case breaks has no finding at all, so each case's findings are its own."""
    assert lint_set(read_directory(contracts)).findings == []


def _custom(directory: Path) -> Path:
    return directory / "schemas" / "custom.event-1.0.0.json"


def _set(path: Path, *keys: str | int, value: object) -> None:
    def change(doc):
        node = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    edit_json(path, change)


def _delete(path: Path, *keys: str | int) -> None:
    def change(doc):
        node = doc
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    edit_json(path, change)


def _break_json(d):
    write_json(d / "schemas" / "broken-1.0.0.json", {})  # then made unreadable
    (d / "schemas" / "broken-1.0.0.json").write_text("{", encoding="utf-8")


def _duplicate_route(d):
    other = custom_schema()
    other["$id"] = "https://flaglens.dev/contracts/custom.other/1.0.0.json"
    other["x-flaglens"]["contract"] = "custom.other"
    write_json(d / "schemas" / "custom.other-1.0.0.json", other)


def _unlisted_module(d):
    schema = read_json(d / "schemas" / "feature_flag.evaluation.cost-1.0.0.json")
    schema["$id"] = "https://flaglens.dev/contracts/feature_flag.evaluation.ops/1.0.0.json"
    schema["x-flaglens"].update(contract="feature_flag.evaluation.ops", policy_module="ops")
    schema["properties"]["policy.module"]["const"] = "ops"
    write_json(d / "schemas" / "feature_flag.evaluation.ops-1.0.0.json", schema)


def _remove_module(d):
    (d / "schemas" / "feature_flag.evaluation.cost-1.0.0.json").unlink()
    shutil.rmtree(d / "examples" / "feature_flag.evaluation.cost")


def _example(d, kind, name):
    return d / "examples" / "custom.event" / "1.0.0" / kind / name


def _misrouted(d):
    _set(_example(d, "valid", "ok.json"), "record", "event_name", value="user.engagement")


def _orphan(d):
    write_json(d / "examples" / "custom.event" / "9.9.9" / "valid" / "x.json", {"record": {}})


def _stated_wrongly(d):
    _set(_example(d, "invalid", "no-service.json"), "expect", "errors", 0, "pointer",
         value="/event_name")  # fmt: skip


# rule → (how to break the copy, the error ids lint must then report and nothing else)
CASES = {
    "lint.json": (_break_json, {"lint.json"}),
    "lint.meta-schema": (
        lambda d: _set(_custom(d), "properties", "note", "minLength", value=-1),
        # an unusable contract leaves its examples without a contract
        {"lint.meta-schema", "lint.example-file"},
    ),
    "lint.dialect": (
        lambda d: _set(_custom(d), "$schema", value="http://json-schema.org/draft-07/schema#"),
        {"lint.dialect"},
    ),
    "lint.x-flaglens": (
        lambda d: _delete(_custom(d), "x-flaglens", "event_name"),
        {"lint.x-flaglens", "lint.example-file"},
    ),
    "lint.version": (
        lambda d: _set(_custom(d), "x-flaglens", "version", value="1.0"),
        {"lint.version", "lint.id", "lint.file-name", "lint.example-file"},
    ),
    "lint.id": (
        lambda d: _set(_custom(d), "$id", value="https://example.com/custom.json"),
        {"lint.id"},
    ),
    "lint.file-name": (
        lambda d: _custom(d).rename(_custom(d).with_name("custom.json")),
        {"lint.file-name"},
    ),
    "lint.x-flaglens-mismatch": (
        lambda d: _set(_custom(d), "properties", "event_name", "const", value="custom.evnt"),
        # the examples then break the const too
        {"lint.x-flaglens-mismatch", "lint.example-valid", "lint.example-invalid"},
    ),
    "lint.duplicate": (_duplicate_route, {"lint.duplicate"}),
    "lint.ref": (
        lambda d: _set(
            _custom(d),
            "allOf",
            value=[{"$ref": "https://flaglens.dev/contracts/nothing/1.0.0.json"}],
        ),
        {"lint.ref", "lint.example-file"},
    ),
    "lint.compile": (
        lambda d: _set(_custom(d), "properties", "note", "pattern", value="("),
        {"lint.compile", "lint.example-file"},
    ),
    "lint.module-missing": (_remove_module, {"lint.module-missing"}),
    "lint.module-unlisted": (_unlisted_module, {"lint.module-unlisted"}),
    "lint.example-file": (_orphan, {"lint.example-file"}),
    "lint.example-routed": (_misrouted, {"lint.example-routed"}),
    "lint.example-valid": (
        lambda d: _delete(_example(d, "valid", "ok.json"), "record", "service.name"),
        {"lint.example-valid"},
    ),
    "lint.example-invalid": (_stated_wrongly, {"lint.example-invalid"}),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_lint_rule_fires_on_a_copy_broken_for_it(contracts, rule):
    breaking, expected = CASES[rule]
    breaking(contracts)
    assert set(_errors(contracts)) == expected


def test_every_error_rule_of_lint_has_a_case():
    lint_errors = {r.id for r in RULES.values() if r.id.startswith("lint.") and r.level == "error"}
    assert lint_errors == set(CASES)


def test_an_invalid_example_that_passes_is_a_finding(contracts):
    path = _example(contracts, "invalid", "no-service.json")
    _set(path, "record", "service.name", value="checkout")
    assert _errors(contracts) == {"lint.example-invalid": ["/record"]}


def test_an_error_the_example_does_not_state_is_a_finding(contracts):
    """Exactly the stated errors: one more than stated is reported at the record's pointer."""
    _set(_example(contracts, "invalid", "no-service.json"), "record", "note", value=5)
    assert _errors(contracts) == {"lint.example-invalid": ["/record/note"]}


def test_a_version_without_invalid_examples_is_a_warning(contracts):
    shutil.rmtree(contracts / "examples" / "custom.event" / "1.0.0" / "invalid")
    findings = lint_set(read_directory(contracts)).findings
    assert [(f.id, f.level, f.contract) for f in findings] == [
        ("lint.examples-missing", "warning", "custom.event")
    ]


def test_findings_carry_file_and_pointer(contracts):
    _set(contracts / "schemas" / f"{PRIVACY}-1.1.0.json", "$id", value="urn:x")
    (found,) = lint_set(read_directory(contracts)).findings
    assert (found.file.endswith(f"schemas/{PRIVACY}-1.1.0.json"), found.pointer) == (True, "/$id")
    assert (
        "expected 'https://flaglens.dev/contracts/feature_flag.evaluation.privacy/1.1.0.json'"
        in found.message
    )
