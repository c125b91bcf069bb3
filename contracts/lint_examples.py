"""The examples half of `contracts lint`: every example record gets the verdict it documents.

An example is ``examples/<contract>/<version>/{valid,invalid}/<name>.json`` holding
``{"description", "record", "expect"}``; an invalid one lists in ``expect.errors`` every error
it must produce, each a ``pointer`` and either an exact ``message`` or a ``message_contains``.
Errors the record produces but the example does not state are findings too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.errors import UnknownContract
from contracts.findings import Finding, finding, json_pointer
from contracts.registry import Contract, Registry, Verdict, Violation
from contracts.sources import Document

_KINDS = ("valid", "invalid")


def _verdict(registry: Registry, contract: Contract, record: dict[str, Any]) -> Verdict:
    # a contract bound to a receiver is never reached by routing: check it directly
    return contract.check(record) if contract.source else registry.check(dict(record))


def _matches(expected: Any, violation: Violation) -> bool:
    if not isinstance(expected, dict) or expected.get("pointer") != violation.pointer:
        return False
    if "message" in expected:
        return bool(expected["message"] == violation.message)
    return str(expected.get("message_contains", "")) in violation.message


def _check_invalid(doc: Document, stated: Any, verdict: Verdict, out: list[Finding]) -> None:
    if verdict.ok:
        out.append(
            finding(
                "lint.example-invalid", doc.path, "/record",
                "this invalid/ example passes its contract",
                contract=verdict.contract_id, version=verdict.contract_version,
            )
        )  # fmt: skip
        return
    if not isinstance(stated, list) or not stated:
        out.append(
            finding(
                "lint.example-file", doc.path, "/expect/errors",
                "an invalid/ example lists the errors it must produce in expect.errors",
                contract=verdict.contract_id, version=verdict.contract_version,
            )
        )  # fmt: skip
        return
    for index, expected in enumerate(stated):
        if not any(_matches(expected, v) for v in verdict.violations):
            got = "; ".join(str(v) for v in verdict.violations)
            out.append(
                finding(
                    "lint.example-invalid", doc.path, json_pointer("expect", "errors", index),
                    f"expected error {expected!r} was not produced; got: {got}",
                contract=verdict.contract_id, version=verdict.contract_version,
                )
            )  # fmt: skip
    for violation in verdict.violations:
        if not any(_matches(expected, violation) for expected in stated):
            out.append(
                finding(
                    "lint.example-invalid", doc.path, "/record" + violation.pointer,
                    f"error not stated in expect.errors: {violation}",
                contract=verdict.contract_id, version=verdict.contract_version,
                )
            )  # fmt: skip


def _check_one(
    registry: Registry, doc: Document, out: list[Finding]
) -> tuple[str, str, str] | None:
    """Check one example; returns its (contract, version, kind) when its folder is known."""
    if doc.error is not None:
        out.append(finding("lint.json", doc.path, "", f"not readable JSON: {doc.error}"))
        return None
    parts = doc.relative.split("/")
    contract_name, version, kind = parts[0], parts[1], parts[2]
    data = doc.data
    if kind not in _KINDS:
        message = f"examples go in valid/ or invalid/, not {kind}/"
        out.append(finding("lint.example-file", doc.path, "", message))
        return None
    if not isinstance(data, dict) or not isinstance(data.get("record"), dict):
        out.append(finding("lint.example-file", doc.path, "/record", "no record object"))
        return None
    expect = data.get("expect", {})
    if not isinstance(expect, dict):
        out.append(finding("lint.example-file", doc.path, "/expect", "expect must be an object"))
        return None
    try:
        contract = registry.get(contract_name, version)
    except UnknownContract:
        contract = None
    if contract is None or contract.version != version:
        out.append(
            finding(
                "lint.example-file", doc.path, "",
                f"folder {contract_name}/{version} names no contract version in this set",
            )
        )  # fmt: skip
        return None
    for key, wanted in (("contract", contract_name), ("version", version)):
        if key in expect and expect[key] != wanted:
            out.append(
                finding(
                    "lint.example-file", doc.path, json_pointer("expect", key),
                    f"expect.{key} is {expect[key]!r} but the example is in {wanted}'s folder",
                )
            )  # fmt: skip
    verdict = _verdict(registry, contract, data["record"])
    routed = (verdict.contract_id, verdict.contract_version)
    if routed != (contract_name, version):
        reached = f"{routed[0]}@{routed[1]}" if routed[0] else "no contract"
        out.append(
            finding(
                "lint.example-routed", doc.path, "/record",
                f"the record reaches {reached}, not {contract_name}@{version} (check its "
                "event_name, policy.module and contract.version)",
                contract=contract_name, version=version,
            )
        )  # fmt: skip
    elif kind == "valid":
        for violation in verdict.violations:
            out.append(
                finding(
                    "lint.example-valid", doc.path, "/record" + violation.pointer,
                    f"valid/ example breaks its contract: {violation}",
                    contract=contract_name, version=version,
                )
            )  # fmt: skip
    else:
        _check_invalid(doc, expect.get("errors"), verdict, out)
    return contract_name, version, kind


def check_examples(registry: Registry, examples: Sequence[Document], out: list[Finding]) -> None:
    """Run every example against the registry, then note contract versions lacking some."""
    have: set[tuple[str, str, str]] = set()
    for doc in examples:
        where = _check_one(registry, doc, out)
        if where is not None:
            have.add(where)
    contracts = registry.contracts
    modular = {c.event_name for c in contracts if c.policy_module and not c.source}
    for contract in contracts:
        # a base contract that module contracts build on ends no valid record's route
        base = not contract.source and not contract.policy_module
        for kind in _KINDS:
            if kind == "valid" and base and contract.event_name in modular:
                continue
            if (contract.name, contract.version, kind) not in have:
                out.append(
                    finding(
                        "lint.examples-missing", contract.path, "",
                        f"no {kind}/ example in examples/{contract.name}/{contract.version}/",
                        contract=contract.name, version=contract.version,
                    )
                )  # fmt: skip
