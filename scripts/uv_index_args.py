"""Print, one per line, the `uv pip install` options that give uv the package sources pip is
configured with here (its config files and PIP_* variables, as `pip config list` shows them).

uv reads no pip configuration. Without these options it would see only PyPI, where pip on this
machine also looks in local indexes, find-links folders and a constraints file. Run with a
Python that has pip: ``.venv/bin/python scripts/uv_index_args.py``; with ``--build``, the
options for `uv build` (whose constraints apply to the build environment).
"""

from __future__ import annotations

import re
import subprocess
import sys

# pip option → uv option; pip lists several values separated by whitespace
_OPTIONS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}
_LINE = re.compile(r"^(?P<section>[^.]*)\.(?P<key>[a-z-]+)='(?P<value>.*)'$")


def uv_arguments(pip_config_list: str, *, build: bool = False) -> list[str]:
    """The uv options for the output of `pip config list` (environment entries win)."""
    values: dict[str, list[str]] = {}
    for line in pip_config_list.splitlines():
        match = _LINE.match(line.strip())
        if match is None or match["key"] not in _OPTIONS:
            continue
        if match["section"] == ":env:" or match["key"] not in values:
            values[match["key"]] = match["value"].split()
    arguments: list[str] = []
    for key, option in _OPTIONS.items():
        if build and option == "--constraint":
            option = "--build-constraints"
        for value in values.get(key, ()):
            arguments += [option, value]
    if "extra-index-url" in values or "find-links" in values:
        # pip takes the best version from all its sources; uv, by default, the first source
        # that has the package at all (a local index with one old release would win)
        arguments += ["--index-strategy", "unsafe-best-match"]
    return arguments


def main() -> int:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    print("\n".join(uv_arguments(done.stdout, build="--build" in sys.argv[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
