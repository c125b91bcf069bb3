"""docs/contracts.md documents every finding id with its level (the ids are a public promise)."""

from __future__ import annotations

import re

from contracts import RULES
from tests.servers import REPO


def test_every_finding_id_is_documented_with_its_level():
    text = (REPO / "docs" / "contracts.md").read_text(encoding="utf-8")
    found = re.findall(r"^\| `((?:lint|diff|check)\.[a-z-]+)` \| ([^|]+) \|", text, re.M)
    rows = dict(found)
    assert set(rows) == set(RULES)
    for rule in RULES.values():
        level = rows[rule.id].strip()
        if level in ("error", "warning", "info"):
            assert level == rule.level, rule.id
        elif level in ("producers", "consumers"):
            assert rule.level == "error", rule.id
        elif level == "—":
            assert rule.level == "info", rule.id
