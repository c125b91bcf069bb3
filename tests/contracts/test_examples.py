"""Every example event kept beside the contracts gets the verdict it documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts import load_registry

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
FILES = sorted(EXAMPLES.glob("*/*/*/*.json"))


def test_every_live_contract_version_has_examples():
    """Valid and invalid ones; the base decision contract, which no valid record ends at
    (a valid decision always matches its module's contract), has invalid ones only."""
    registry = load_registry()
    for contract in registry.contracts:
        folder = EXAMPLES / contract.name / contract.version
        assert list((folder / "invalid").glob("*.json")), f"no invalid example for {folder}"
        if contract.name != "feature_flag.evaluation":
            assert list((folder / "valid").glob("*.json")), f"no valid example for {folder}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: "/".join(p.parts[-4:]))
def test_example(path):
    contract, version, kind = path.parts[-4:-1]
    example = json.loads(path.read_text())
    registry = load_registry()
    bound = registry.get(contract, version)
    # a contract bound to a receiver (OPA) checks that receiver's records; no route reaches it
    verdict = bound.check(example["record"]) if bound.source else registry.check(example["record"])
    assert (verdict.contract_id, verdict.contract_version) == (contract, version)
    assert example["expect"] == {**example["expect"], "contract": contract, "version": version}
    if kind == "valid":
        assert verdict.ok, [str(v) for v in verdict.violations]
        return
    assert not verdict.ok
    for expected in example["expect"]["errors"]:
        assert any(
            v.pointer == expected["pointer"]
            and (
                v.message == expected["message"]
                if "message" in expected
                else expected["message_contains"] in v.message
            )
            for v in verdict.violations
        ), (expected, [str(v) for v in verdict.violations])
