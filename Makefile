# The two commands of the README's quick start: `make demo` and `make test`.
VENV := .venv/bin
# Where this is set (this machine's environment sets it), Python compiles every module it imports
# afresh: each test process and server would recompile hundreds of modules. Their bytecode goes
# into the git-ignored __pycache__ folders instead.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: setup demo demo-lake test checks lint typecheck contracts-check pytest wheel

setup:
	./scripts/setup

demo: setup
	$(VENV)/flaglens demo

# the same demo on a DuckLake whose catalog is a throwaway PostgreSQL (docs/deployment.md)
demo-lake: setup
	$(VENV)/python scripts/demo_lake.py

lint:
	$(VENV)/ruff format --check .
	$(VENV)/ruff check .

typecheck:
	$(VENV)/mypy contracts store ingest analytics alerts reports dashboards api flaglens sample_data

# The project's own contracts against the previous commit (in a shallow clone or on the first
# commit it says what it could not compare and lints only).
contracts-check:
	$(VENV)/flaglens contracts check contracts --base HEAD~1

pytest:
	$(VENV)/pytest

# the built wheel, installed outside the tree, runs the demo (scripts/check-wheel)
wheel:
	./scripts/check-wheel

# pytest on its workers and, beside it, the other checks one after another: the suite leaves a
# core idle often enough (servers starting and stopping, exporters' schedules) for them to fit.
test: setup
	$(MAKE) --no-print-directory -j2 pytest checks

checks:
	$(MAKE) --no-print-directory -j1 lint typecheck contracts-check wheel
