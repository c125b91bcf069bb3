"""`flaglens contracts lint | diff | check | preview`: contracts as code (see docs/contracts.md).

Exit codes: 0 when no finding reaches ``--fail-on``, 1 when one does, 2 for a usage error (a
path that does not exist, a git revision that is not there in a clone with its full history).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from contracts import (
    FORMATS,
    LEVELS,
    MODES,
    ContractSet,
    ContractSourceError,
    Report,
    check_directory,
    default_directory,
    diff_sets,
    lint_set,
    read_path,
    read_revision,
    render,
)


def register(subparsers: Any) -> None:
    """Add `flaglens contracts` and its verbs."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "contracts",
        help="lint, diff and check telemetry contracts (for CI)",
        description="Contracts as code: lint a contracts directory, classify the changes "
        "between two versions of it, or both at once against a git base for CI.",
    )
    verbs = parser.add_subparsers(dest="contracts_verb", metavar="VERB", required=True)

    lint = verbs.add_parser(
        "lint",
        help="meta-validate the schemas, check conventions, run the examples",
        description="Lint a contracts directory: schemas (draft 2020-12, $id, x-flaglens, "
        "versions, $ref, modules) and examples (valid/ pass, invalid/ fail as stated).",
    )
    lint.add_argument("directory", nargs="?", type=Path, help="contracts directory "
                      "(default: the contracts flaglens ships)")  # fmt: skip
    _output_arguments(lint)
    lint.set_defaults(handler=_lint)

    diff = verbs.add_parser(
        "diff",
        help="classify the changes from OLD to NEW (directories, files or git revisions)",
        description="Classify each change per contract as breaking for existing producers, "
        "breaking for consumers or compatible, and check each new version's bump. OLD and NEW "
        "are directories or files; one that is not a path is a git revision of the other's "
        "path (flaglens contracts diff HEAD~1 contracts).",
    )
    diff.add_argument("old", nargs="?", help="old contracts: a path or a git revision")
    diff.add_argument("new", nargs="?", help="new contracts: a path (default: the shipped ones)")
    diff.add_argument("--base", help="git revision to take OLD from (instead of OLD)")
    _mode_arguments(diff)
    _output_arguments(diff)
    diff.set_defaults(handler=_diff)

    check = verbs.add_parser(
        "check",
        help="lint + diff against a git base, for CI (exit 0 clean, 1 findings, 2 usage)",
        description="Lint DIR and diff it against --base (e.g. origin/main or HEAD~1). In a "
        "shallow clone or on a first commit it says what it could not compare and lints only.",
    )
    check.add_argument("directory", nargs="?", type=Path, help="contracts directory "
                       "(default: the contracts flaglens ships)")  # fmt: skip
    check.add_argument("--base", help="git revision to compare with (default: lint only)")
    _mode_arguments(check)
    _output_arguments(check)
    check.set_defaults(handler=_check)

    from flaglens.cli.contracts_preview import register_preview

    register_preview(verbs)


def _mode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="full",
        help="which direction must not break, as in Schema Registry: backward (existing "
        "producers), forward (consumers), full (both; default) or none",
    )
    parser.add_argument(
        "--transitive",
        action="store_true",
        help="compare each new version with every lower version of its major, not only the "
        "one before it",
    )


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="output (default text)")
    parser.add_argument(
        "--fail-on",
        choices=LEVELS,
        default="error",
        help="exit 1 when a finding is at this level or above (default error)",
    )
    parser.add_argument("--output", "-o", type=Path, help="write the report here, not stdout")


def _emit(args: argparse.Namespace, report: Report) -> int:
    text = render(report, args.format, args.fail_on)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        if args.format != "text":  # still say the outcome where a person reads it
            print(render(report, "text", args.fail_on).splitlines()[-1])
    else:
        sys.stdout.write(text)
    return report.exit_code(args.fail_on)


def _usage(args: argparse.Namespace, exc: Exception) -> int:
    print(f"flaglens contracts {args.contracts_verb}: {exc}", file=sys.stderr)
    return 2


def _lint(args: argparse.Namespace) -> int:
    try:
        contracts = read_path(args.directory or default_directory())
    except ContractSourceError as exc:
        return _usage(args, exc)
    return _emit(args, lint_set(contracts))


def _side(spec: str | None, other: str | None) -> ContractSet:
    """A path when ``spec`` is one, else a git revision of the other side's path."""
    if spec is not None and Path(spec).exists():
        return read_path(Path(spec))
    anchor = Path(other) if other is not None and Path(other).exists() else default_directory()
    if spec is None:
        return read_path(anchor)
    return read_revision(spec, anchor)


def _diff(args: argparse.Namespace) -> int:
    old_spec, new_spec = args.old, args.new
    if args.base is not None:
        if new_spec is not None:
            return _usage(args, ValueError("give --base or OLD NEW, not both"))
        old_spec, new_spec = args.base, old_spec
    if old_spec is None:
        return _usage(args, ValueError("give OLD and NEW, or --base REVISION [NEW]"))
    try:
        new = _side(new_spec, old_spec)
        old = _side(old_spec, new_spec)
    except ContractSourceError as exc:
        return _usage(args, exc)
    return _emit(args, diff_sets(old, new, mode=args.mode, transitive=args.transitive))


def _check(args: argparse.Namespace) -> int:
    try:
        report = check_directory(
            args.directory or default_directory(),
            base=args.base,
            mode=args.mode,
            transitive=args.transitive,
        )
    except ContractSourceError as exc:
        return _usage(args, exc)
    return _emit(args, report)
