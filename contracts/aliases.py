"""Older semantic-convention attribute names, mapped forward before validation.

Several generations of the feature-flag conventions are in use at once (the OpenFeature
Python SDK still emits the pre-1.32 names; older layouts put the evaluated value in the
log body). Rather than reject those records, flaglens renames the attributes to the current
names and records what it did on the stored row.
"""

from __future__ import annotations

from typing import Any

# old name → current name (semantic-conventions registry-deprecated.yaml `renamed_to`)
RENAMED_ATTRIBUTES: dict[str, str] = {
    "feature_flag.variant": "feature_flag.result.variant",
    "feature_flag.provider_name": "feature_flag.provider.name",
    "feature_flag.evaluation.reason": "feature_flag.result.reason",
    "feature_flag.evaluation.error.message": "feature_flag.error.message",
}
_OLD_NAMES = frozenset(RENAMED_ATTRIBUTES)
_EVALUATION = "feature_flag.evaluation"
_VALUE = "feature_flag.result.value"


def normalize_legacy(record: dict[str, Any]) -> tuple[str, ...]:
    """Rename legacy attributes of a canonical record in place.

    Returns one ``"old->new"`` entry per rename (empty when nothing was renamed). When both
    names are present the current one wins and the old one is dropped, which the entry says.
    For ``feature_flag.evaluation`` events, a value carried in the body moves to
    ``feature_flag.result.value`` (the layout before semantic conventions 1.34).
    """
    done: list[str] = []
    if not _OLD_NAMES.isdisjoint(record):
        for old in _OLD_NAMES.intersection(record):
            new = RENAMED_ATTRIBUTES[old]
            value = record.pop(old)
            if new in record:
                done.append(f"{old}->{new} (dropped, new name present)")
            else:
                record[new] = value
                done.append(f"{old}->{new}")
        done.sort()
    if "body" in record and record.get("event_name") == _EVALUATION and _VALUE not in record:
        record[_VALUE] = record.pop("body")
        done.append(f"body->{_VALUE}")
    return tuple(done)
