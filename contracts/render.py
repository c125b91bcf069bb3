"""A :class:`~contracts.findings.Report` as text, JSON, JUnit XML or GitHub annotations."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from contracts.findings import Finding, Level, Report, level_rank, sorted_findings

Format = Literal["text", "json", "junit", "github"]
FORMATS: tuple[Format, ...] = ("text", "json", "junit", "github")
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def line_of(path: str, pointer: str) -> int:
    """The line a JSON pointer's last key is on in a pretty-printed file (1 when unknown)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return 1
    offset = 0
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if token.isdigit():
            continue  # array positions have no key to find
        match = re.compile(re.escape(json.dumps(token)) + r"\s*:").search(text, offset)
        if match is None:
            break
        offset = match.start()
    return text.count("\n", 0, offset) + 1


def _summary(report: Report, fail_on: Level) -> str:
    counts = report.counts()
    verdict = "FAILED" if report.exit_code(fail_on) else "ok"
    return (
        f"flaglens contracts {report.verb}: {verdict}: {counts['error']} error(s), "
        f"{counts['warning']} warning(s), {counts['info']} info (fails on {fail_on} and above; "
        f"{len(report.checked)} files checked)"
    )


def _text(report: Report, fail_on: Level) -> str:
    lines = [f"note: {note}" for note in report.notes]
    for f in sorted_findings(report.findings):
        where = f"{f.file}:{line_of(f.file, f.pointer)}" if Path(f.file).is_file() else f.file
        lines.append(f"{where}: {f.level} {f.id} {f.pointer or '/'}: {f.message}")
    lines.append(_summary(report, fail_on))
    return "\n".join(lines) + "\n"


def _json(report: Report, fail_on: Level) -> str:
    body = {
        "verb": report.verb,
        "failed": bool(report.exit_code(fail_on)),
        "fail_on": fail_on,
        "counts": report.counts(),
        "notes": report.notes,
        "checked": report.checked,
        "findings": [f.as_dict() for f in sorted_findings(report.findings)],
    }
    return json.dumps(body, indent=2) + "\n"


def _line(f: Finding) -> str:
    return f"{f.level} {f.id} {f.pointer or '/'}: {f.message}"


def _junit(report: Report, fail_on: Level) -> str:
    """One test case per file looked at; findings at or above ``fail_on`` are its failures."""
    by_file: dict[str, list[Finding]] = {path: [] for path in report.checked}
    for f in sorted_findings(report.findings):
        by_file.setdefault(f.file, []).append(f)
    rank = level_rank(fail_on)
    failures = sum(any(level_rank(f.level) >= rank for f in fs) for fs in by_file.values())
    name = quoteattr(f"flaglens contracts {report.verb}")
    cases = []
    for path, found in by_file.items():
        failing = [f for f in found if level_rank(f.level) >= rank]
        other = [f for f in found if level_rank(f.level) < rank]
        body = "".join(
            f"<failure type={quoteattr(f.id)} message={quoteattr(f.message)}>"
            f"{escape(_line(f))}</failure>"
            for f in failing
        )
        if other:
            text = "\n".join(_line(f) for f in other)
            body += f"<system-out>{escape(text)}</system-out>"
        cases.append(
            f"  <testcase classname={quoteattr('contracts.' + report.verb)} "
            f"name={quoteattr(path)}>{body}</testcase>"
        )
    notes = escape("\n".join(report.notes))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites>\n <testsuite name={name} tests="{len(by_file)}" '
        f'failures="{failures}" errors="0">\n'
        + "\n".join(cases)
        + f"\n  <system-out>{notes}</system-out>\n </testsuite>\n</testsuites>\n"
    )


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(report: Report, fail_on: Level) -> str:
    """GitHub Actions workflow commands: one annotation per finding, on its file and line."""
    lines = []
    for f in sorted_findings(report.findings):
        properties = ",".join(
            (
                f"file={_escape_property(f.file)}",
                f"line={line_of(f.file, f.pointer)}",
                f"title={_escape_property(f.id)}",
            )
        )
        message = _escape_data(f"{f.pointer or '/'}: {f.message}")
        lines.append(f"::{_GITHUB_LEVEL[f.level]} {properties}::{message}")
    lines.append(_summary(report, fail_on))
    return "\n".join(lines) + "\n"


_RENDERERS: dict[Format, Callable[[Report, Level], str]] = {
    "text": _text,
    "json": _json,
    "junit": _junit,
    "github": _github,
}


def render(report: Report, fmt: Format, fail_on: Level = "error") -> str:
    """The report in one of :data:`FORMATS`."""
    return _RENDERERS[fmt](report, fail_on)
