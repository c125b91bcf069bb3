"""The configuration reference, ``docs/configuration.md``, written from the settings model.

Run ``python -m flaglens.settings_docs`` to rewrite the file after changing a setting;
``tests/flaglens/test_settings.py`` fails while the file differs from what this writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from flaglens.settings import ServeSettings, SettingSpec, setting_specs

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
REGENERATE = ".venv/bin/python -m flaglens.settings_docs"

_INTRO = f"""\
# Configuration of `flaglens serve`

<!-- Written by `{REGENERATE}` from the settings model
(ingest/settings.py, flaglens/settings.py): change the fields there, then regenerate. -->

Every setting is a flag and a `FLAGLENS_*` environment variable of the same name. A flag wins
over the variable, the variable over the default; for the self-metrics export, the
OpenTelemetry SDK's own `OTEL_EXPORTER_OTLP_*` variables apply when flaglens' are not set.
Switches (flags without a value) take `true` or `false` as variables:
`FLAGLENS_NO_GRPC=true` is `--no-grpc`. A value of the wrong type or out of range stops the
server before it opens anything, with exit code 2 and one line per bad setting naming the flag
and the variable. `flaglens serve --help` lists the same settings, in the same groups.

`flaglens analyze`, `flaglens report weekly` and `flaglens alerts evaluate` read the
[analytics files](#analytics-files) and the alert rules and webhook through the same flags and
variables.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(spec: SettingSpec) -> str:
    flag = f"`{spec.flag}`" if spec.metavar is None else f"`{spec.flag} {spec.metavar}`"
    variables = "<br>".join(f"`{v}`" for v in spec.variables)
    meaning = spec.description.strip()
    if spec.allowed:
        meaning += f" Allowed: {spec.allowed}."
    default = f"`{spec.default}`" if spec.default_is_value else _cell(spec.default)
    if spec.default_note:
        default += f" ({spec.default_note})"
    return f"| {flag} | {variables} | {default} | {_cell(meaning)} |"


def render() -> str:
    """The whole reference, as written to ``docs/configuration.md``."""
    parts = [_INTRO]
    group = None
    for spec in setting_specs(ServeSettings):
        if spec.group != group:
            group = spec.group
            parts.append(f"\n## {group[0].upper()}{group[1:]}\n\n")
            parts.append("| flag | variable | default | meaning |\n|---|---|---|---|\n")
        parts.append(_row(spec) + "\n")
    return "".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flaglens.settings_docs", description="Rewrite docs/configuration.md."
    )
    parser.add_argument("--out", type=Path, default=REFERENCE, help="where to write ('-': stdout)")
    args = parser.parse_args(argv)
    text = render()
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
