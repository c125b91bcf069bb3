"""`flaglens contracts preview NEW_DIR`: proposed contracts against the stored traffic.

Reads as the other read verbs do (``--db``, through the server that holds it, or
``--server``). Exit codes: 0, or 1 with ``--fail-on-reject`` when an accepted record would be
rejected; 2 for a usage error or a failed read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from flaglens.cli.reading import add_reading_arguments, open_client


def register_preview(verbs: Any) -> None:
    """Add `flaglens contracts preview`."""
    preview = verbs.add_parser(
        "preview",
        help="re-check stored and quarantined records of a range against proposed contracts",
        description="Check the records stored in a time range and the quarantined ones against "
        "the contracts in NEW_DIR: per service and contract, how many accepted records would "
        "now be rejected (with the first examples and their pointers) and how many quarantined "
        "ones would now pass. Writes nothing.",
    )
    preview.add_argument("directory", type=Path, metavar="NEW_DIR", help="proposed contracts")
    add_reading_arguments(preview)
    preview.add_argument("--since", default="7d", help="how far back from now (default 7d)")
    preview.add_argument("--from", dest="start", help="start instant (instead of --since)")
    preview.add_argument("--to", dest="end", default="now", help="end instant (default now)")
    preview.add_argument("--service", help="only this service's records")
    preview.add_argument("--examples", type=int, default=3, help="examples per group (default 3)")
    preview.add_argument("--format", choices=("text", "json"), default="text")
    preview.add_argument(
        "--fail-on-reject",
        action="store_true",
        help="exit 1 when an accepted record would be rejected (for CI)",
    )
    preview.set_defaults(handler=_preview)


def _errors(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['pointer'] or '/'}: {e['message']}" for e in errors)


def render_text(result: dict[str, Any], source: str) -> str:
    """The preview as a table per service and contract, examples under their group."""
    lines = [
        f"preview of {len(result['contracts'])} contract versions on {source}, "
        f"{result['from']} .. {result['to']}",
    ]
    header = ("service", "contract", "accepted", "would reject", "quarantined", "would pass")
    rows = [
        (str(g["service"]), str(g["contract"]), str(g["accepted_checked"]), str(g["would_reject"]),
         str(g["quarantined_checked"]), str(g["would_pass"]))
        for g in result["groups"]
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row, group in zip([header, *rows], [None, *result["groups"]], strict=True):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        for example in (group or {}).get("examples", []):
            lines.append(
                f"    would reject {example['table']} {example['key'] or '(no key)'} at "
                f"{example['time']}: {_errors(example['errors'])}"
            )
    lines.append(
        f"{result['accepted_checked']:,} accepted records checked, {result['would_reject']:,} "
        f"would be rejected; {result['quarantined_checked']:,} quarantined checked, "
        f"{result['would_pass']:,} would pass; {result['not_rechecked']:,} quarantined not "
        "rechecked (spans, limit or token rejections)"
    )
    return "\n".join(lines) + "\n"


def _preview(args: argparse.Namespace) -> int:
    from flaglens.client import ClientError

    start = args.start or f"now-{args.since}"
    try:
        with open_client(args, "contracts preview") as client:
            result = client.preview_contracts(
                args.directory, start=start, end=args.end, service=args.service,
                examples=args.examples,
            )  # fmt: skip
            source = client.source
    except ClientError as exc:
        print(f"flaglens contracts preview: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result, source))
    return 1 if args.fail_on_reject and result["would_reject"] else 0
