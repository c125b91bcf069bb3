"""`contracts check`: lint a contracts directory and diff it against a git base, for CI.

Lack of history is not a failure: in a shallow clone, or when the base would be before the
first commit, the check says so (``check.base``) and lints only. A base that does not exist in
a full clone is a usage error, as a typo in ``--base`` should be.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from contracts.consumers import ConsumedFields
from contracts.diff import Mode, diff_sets
from contracts.errors import BaseUnavailable
from contracts.findings import Report, finding
from contracts.lint import lint_set
from contracts.sources import display_path, read_directory, read_revision


def check_directory(
    directory: Path,
    *,
    base: str | None,
    mode: Mode = "full",
    transitive: bool = False,
    consumers: Mapping[str, ConsumedFields] | None = None,
) -> Report:
    """Lint ``directory`` and, when ``base`` is given, diff it against that git revision.

    Raises:
        ContractSourceError: the directory cannot be read, or ``base`` names no commit in a
            clone that has its full history.
    """
    new = read_directory(directory)
    report = Report("check")
    report.extend(lint_set(new))
    where = display_path(directory)
    if base is None:
        report.findings.append(
            finding("check.base", where, "", "no --base given: linted only, nothing compared")
        )
        return report
    try:
        old = read_revision(base, directory)
    except BaseUnavailable as exc:
        if not exc.lack_of_history:
            raise
        message = f"no diff against {base}: {exc.problem}; linted only"
        report.findings.append(finding("check.base", where, "", message))
        return report
    if not old.schemas:
        message = f"{where} has no contracts at {old.label}: every contract counts as new"
    else:
        message = f"compared with {old.label} ({len(old.schemas)} contract files)"
    report.findings.append(finding("check.base", where, "", message))
    report.extend(diff_sets(old, new, mode=mode, transitive=transitive, consumers=consumers))
    return report
