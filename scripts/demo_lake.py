"""`make demo-lake`: the demo on a DuckLake, with a throwaway PostgreSQL as its catalog.

Starts a PostgreSQL cluster (Debian's `postgresql`, as `scripts/setup` installs it) on a free
loopback port, runs `flaglens demo --store ducklake:postgres://... --data-path DIR/lake` on it,
and stops and removes the cluster when the demo ends (Ctrl-C). Arguments are passed to
`flaglens demo` (e.g. --load-only, --dashboard-port 0).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flaglens.cli.main import main
from tests.postgres import MISSING, cluster, find_binaries

DIRECTORY = Path("flaglens-demo-lake")


def run(argv: list[str]) -> int:
    if find_binaries() is None:
        print(f"demo-lake: {MISSING}", file=sys.stderr)
        return 2
    data = DIRECTORY / "lake"
    shutil.rmtree(data, ignore_errors=True)  # its catalog went with the last cluster
    with cluster(durable=True) as postgres:
        store = postgres.lake_url()
        print(f"demo-lake: catalog {store}, data in {data}", flush=True)
        return main(["demo", "--dir", str(DIRECTORY), "--store", store, "--data-path", str(data),
                     *argv])  # fmt: skip


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
