"""Copies of the shipped contracts to break and change in tests, and one small extra contract."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.servers import REPO

SHIPPED = REPO / "contracts"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def copy_contracts(root: Path) -> Path:
    """The shipped schemas and examples under ``root/contracts`` (the shipped layout)."""
    target = root / "contracts"
    shutil.copytree(SHIPPED / "schemas", target / "schemas")
    shutil.copytree(SHIPPED / "examples", target / "examples")
    return target


def require_legal_basis(schema: dict[str, Any]) -> None:
    """A change for :func:`new_version`: privacy decisions must name their legal basis (no
    stored one does)."""
    schema["required"] = [*schema["required"], "privacy.legal_basis"]


def custom_schema(version: str = "1.0.0", **changes: Any) -> dict[str, Any]:
    """A small contract of its own (event ``custom.event``), valid unless changed."""
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"https://flaglens.dev/contracts/custom.event/{version}.json",
        "x-flaglens": {"contract": "custom.event", "version": version,
                       "event_name": "custom.event", "policy_module": None},
        "type": "object",
        "required": ["event_name", "service.name"],
        "properties": {
            "event_name": {"const": "custom.event"},
            "service.name": {"type": "string", "minLength": 1},
            "note": {"type": "string"},
        },
    }  # fmt: skip
    schema.update(changes)
    return schema


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def edit_json(path: Path, change: Any) -> None:
    """Apply ``change(value)`` (which edits in place) to a JSON file."""
    value = read_json(path)
    change(value)
    write_json(path, value)


def add_custom(directory: Path, version: str = "1.0.0", **changes: Any) -> Path:
    """Add custom.event at ``version`` with one valid and one invalid example."""
    path = write_json(
        directory / "schemas" / f"custom.event-{version}.json", custom_schema(version, **changes)
    )
    examples = directory / "examples" / "custom.event" / version
    record = {"event_name": "custom.event", "service.name": "checkout"}
    write_json(examples / "valid" / "ok.json", {"record": record, "expect": {}})
    write_json(
        examples / "invalid" / "no-service.json",
        {
            "record": {"event_name": "custom.event"},
            "expect": {"errors": [{"pointer": "/service.name",
                                   "message": "required property is missing"}]},
        },
    )  # fmt: skip
    return path


def new_version(directory: Path, name: str, old: str, new: str, change: Any) -> Path:
    """Add ``name@new`` to a copy: the ``old`` file with its version bumped, then changed."""
    schema = read_json(directory / "schemas" / f"{name}-{old}.json")
    schema["$id"] = f"https://flaglens.dev/contracts/{name}/{new}.json"
    schema["x-flaglens"]["version"] = new
    change(schema)
    return write_json(directory / "schemas" / f"{name}-{new}.json", schema)


PRIVACY = "feature_flag.evaluation.privacy"


def privacy_allowing_breaks(directory: Path, *, purpose_optional: bool = False) -> Path:
    """Add privacy 1.2.0 to a copy: consent state 'unknown' allowed (and, with
    ``purpose_optional``, privacy.purpose optional), with 1.1.0's examples moved to 1.2.0 (the
    ones it now allows under valid/), so that the set lints."""

    def change(schema: dict[str, Any]) -> None:
        schema["properties"]["privacy.consent.state"]["enum"].append("unknown")
        if purpose_optional:
            schema["required"] = [r for r in schema["required"] if r != "privacy.purpose"]

    path = new_version(directory, PRIVACY, "1.1.0", "1.2.0", change)
    now_valid = {"unknown-consent-state.json"} | (
        {"missing-purpose.json"} if purpose_optional else set()
    )
    old, new = (
        directory / "examples" / PRIVACY / "1.1.0",
        directory / "examples" / PRIVACY / "1.2.0",
    )
    for example in sorted(old.glob("*/*.json")):
        value = read_json(example)
        if value["record"].get("contract.version") == "1.1.0":
            value["record"]["contract.version"] = "1.2.0"
        if value.get("expect", {}).get("version") == "1.1.0":
            value["expect"]["version"] = "1.2.0"
        kind = example.parent.name
        if example.name in now_valid:
            kind, value["expect"] = "valid", {}
        write_json(new / kind / example.name, value)
    return path
