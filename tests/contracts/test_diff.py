"""`contracts diff`: each change class on a changed copy of the shipped contracts, each bump rule
and each mode; a classification that is wrong fails its case."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import RULES, diff_sets, read_directory
from tests.contracts.copies import add_custom, copy_contracts, edit_json, new_version

PRIVACY = "feature_flag.evaluation.privacy"
ENGAGEMENT = "user.engagement"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    directory = copy_contracts(tmp_path / "old")
    add_custom(directory)
    return directory


@pytest.fixture
def new(tmp_path: Path) -> Path:
    directory = copy_contracts(tmp_path / "new")
    add_custom(directory)
    return directory


def _findings(old: Path, new: Path, **options):
    return diff_sets(read_directory(old), read_directory(new), **options).findings


def _classes(old: Path, new: Path, **options) -> dict[str, str]:
    """Change class → level, leaving out the bump check (tested on its own)."""
    return {f.id: f.level for f in _findings(old, new, **options) if f.id != "diff.version-bump"}


def _prop(name, **spec):
    def change(schema):
        schema["properties"].setdefault(name, {}).update(spec)

    return change


def _drop_prop(name):
    return lambda schema: schema["properties"].pop(name)


def _require(name):
    return lambda schema: schema["required"].append(name)


def _unrequire(name):
    return lambda schema: schema["required"].remove(name)


def _consent(values):
    return _prop("privacy.consent.state", enum=values)


def _close(schema):
    schema["additionalProperties"] = False


# class → (contract, change made in a new major version of it, expected level in mode full).
# Each breaking class is checked as a major bump (a warning: allowed, but unpinned producers
# move to it) so that the bump check stays out of the way; compatible classes as a minor.
BREAKING = {
    "diff.required-added": (PRIVACY, _require("privacy.legal_basis")),
    "diff.enum-value-removed": (PRIVACY, _consent(["granted", "denied"])),
    "diff.type-narrowed": (PRIVACY, _prop("feature_flag.result.value", type="string")),
    "diff.range-narrowed": (PRIVACY, _prop("privacy.purpose", minLength=3)),
    "diff.pattern-tightened": (PRIVACY, _prop("privacy.purpose", pattern="^[a-z]+$")),
    "diff.additional-properties-closed": (ENGAGEMENT, _close),
    "diff.keyword-changed": (PRIVACY, _prop("privacy.purpose", multipleOf=2)),
    "diff.consumed-field-removed": (ENGAGEMENT, _drop_prop("cohort.id")),
    "diff.consumed-field-optional": (ENGAGEMENT, _unrequire("engagement.action")),
    "diff.type-widened": (PRIVACY, _prop("privacy.purpose", type=["string", "integer"])),
}
COMPATIBLE = {
    "diff.property-added": (ENGAGEMENT, _prop("engagement.target", type="string")),
    "diff.enum-value-added": (PRIVACY, _consent(["granted", "denied", "not_required", "x"])),
    "diff.range-loosened": (PRIVACY, _prop("privacy.purpose", minLength=0)),
    "diff.pattern-loosened": (ENGAGEMENT, lambda s: s["properties"]["trace_id"].pop("pattern")),
    "diff.required-removed": (PRIVACY, _unrequire("privacy.purpose")),
    "diff.property-removed": ("custom.event", _drop_prop("note")),
}


def _next(contract: str) -> tuple[str, str]:
    return ("1.1.0", "2.0.0") if contract == PRIVACY else ("1.0.0", "2.0.0")


@pytest.mark.parametrize("rule", sorted(BREAKING))
def test_each_breaking_change_class(old, new, rule):
    contract, change = BREAKING[rule]
    new_version(new, contract, *_next(contract), change)
    assert _classes(old, new) == {rule: "warning"}  # breaking, released as a new major
    minor = _next(contract)[0].rsplit(".", 2)[0] + ".9.0"
    (new / "schemas" / f"{contract}-2.0.0.json").unlink()
    new_version(new, contract, _next(contract)[0], minor, change)
    assert _classes(old, new) == {rule: "error"}  # the same change as a minor version


@pytest.mark.parametrize("rule", sorted(COMPATIBLE))
def test_each_compatible_change_class(old, new, rule):
    contract, change = COMPATIBLE[rule]
    base = _next(contract)[0]
    new_version(new, contract, base, base.split(".")[0] + ".9.0", change)
    assert _classes(old, new) == {rule: "info"}


def test_property_removed_under_additional_properties_false(old, new):
    for directory in (old, new):
        edit_json(directory / "schemas" / "custom.event-1.0.0.json", _close)
    new_version(new, "custom.event", "1.0.0", "2.0.0", _drop_prop("note"))
    assert _classes(old, new) == {"diff.property-removed-closed": "warning"}


def test_additional_properties_opened(old, new):
    for directory in (old, new):
        edit_json(directory / "schemas" / "custom.event-1.0.0.json", _close)
    new_version(new, "custom.event", "1.0.0", "1.1.0", lambda s: s.pop("additionalProperties"))
    assert _classes(old, new) == {"diff.additional-properties-opened": "info"}


def test_every_diff_class_has_a_case():
    covered = set(BREAKING) | set(COMPATIBLE) | {
        "diff.property-removed-closed", "diff.additional-properties-opened", "diff.metadata",
        "diff.contract-added", "diff.contract-removed", "diff.version-removed",
        "diff.changed-in-place", "diff.version-bump",
    }  # fmt: skip
    assert {r for r in RULES if r.startswith("diff.")} == covered


def test_annotations_only_is_metadata_and_a_patch_is_enough(old, new):
    new_version(new, PRIVACY, "1.1.0", "1.1.1", lambda s: s.update(description="reworded"))
    assert [(f.id, f.level) for f in _findings(old, new)] == [("diff.metadata", "info")]


def test_contracts_and_versions_added_and_removed(old, new):
    add_custom(new, "1.1.0")
    (new / "schemas" / f"{ENGAGEMENT}-1.0.0.json").unlink()
    (new / "schemas" / f"{PRIVACY}-1.0.0.json").unlink()
    found = {(f.id, f.level, f.version) for f in _findings(old, new)}
    assert found == {
        ("diff.contract-removed", "error", "1.0.0"),
        ("diff.version-removed", "error", "1.0.0"),
        ("diff.version-bump", "info", "1.1.0"),  # custom 1.1.0 is identical to 1.0.0
    }
    (old / "schemas" / "custom.event-1.0.0.json").unlink()
    (new / "schemas" / "custom.event-1.0.0.json").unlink()
    assert ("diff.contract-added", "info") in {(f.id, f.level) for f in _findings(old, new)}


def test_a_released_version_changed_in_place(old, new):
    edit_json(new / "schemas" / f"{PRIVACY}-1.1.0.json", _require("privacy.legal_basis"))
    (found,) = _findings(old, new)
    assert (found.id, found.level, found.version) == ("diff.changed-in-place", "error", "1.1.0")
    assert "diff.required-added" in found.message


@pytest.mark.parametrize(
    ("version", "change", "expected"),
    [
        ("1.2.0", _require("privacy.legal_basis"), ("error", "minor", "major")),
        ("1.1.1", _prop("privacy.note", type="string"), ("warning", "patch", "minor")),
        ("2.0.0", _prop("privacy.note", type="string"), ("info", "major", None)),
    ],
    ids=["breaking-as-minor", "schema-change-as-patch", "major-for-compatible"],
)
def test_version_bump_must_match_the_change(old, new, version, change, expected):
    new_version(new, PRIVACY, "1.1.0", version, change)
    bumps = [f for f in _findings(old, new) if f.id == "diff.version-bump"]
    level, got, needed = expected
    assert [(f.level, f.version) for f in bumps] == [(level, version)]
    assert f"is a {got} bump" in bumps[0].message
    if needed:
        assert f"need a {needed} version" in bumps[0].message


@pytest.mark.parametrize(
    ("mode", "rule", "level"),
    [
        ("backward", "diff.required-added", "error"),
        ("forward", "diff.required-added", "warning"),
        ("backward", "diff.type-widened", "warning"),
        ("forward", "diff.type-widened", "error"),
        ("none", "diff.required-added", "warning"),
    ],
)
def test_mode_decides_which_direction_is_an_error(old, new, mode, rule, level):
    contract, change = BREAKING[rule]
    new_version(new, contract, "1.1.0", "1.9.0", change)
    assert _classes(old, new, mode=mode) == {rule: level}


def test_transitive_compares_with_every_lower_version_of_the_major(old, new):
    """1.0.0 -> 1.1.0 drops `note`, 1.2.0 brings it back as an integer: compatible step by
    step, a type change against 1.0.0 that only the transitive mode sees."""
    new_version(new, "custom.event", "1.0.0", "1.1.0", _drop_prop("note"))
    new_version(new, "custom.event", "1.1.0", "1.2.0", _prop("note", type="integer"))
    plain = _classes(old, new)
    assert "diff.type-narrowed" not in plain
    transitive = [f for f in _findings(old, new, transitive=True) if "transitive" in f.message]
    # string -> integer: strings are refused (producers) and integers let in (consumers)
    assert {(f.id, f.version) for f in transitive} == {
        ("diff.type-narrowed", "1.2.0"),
        ("diff.type-widened", "1.2.0"),
    }
    assert all("1.0.0 -> 1.2.0" in f.message for f in transitive)


def test_shipped_privacy_versions_are_a_compatible_minor(tmp_path):
    """The one real version step in the shipped set, 1.0.0 -> 1.1.0, classifies as it should."""
    old = copy_contracts(tmp_path / "a")
    (old / "schemas" / f"{PRIVACY}-1.1.0.json").unlink()
    new = copy_contracts(tmp_path / "b")
    assert _classes(old, new) == {"diff.property-added": "info", "diff.metadata": "info"}
