# The two commands of the README's quick start: `make demo` and `make test`.
VENV := .venv/bin

.PHONY: setup demo test check lint typecheck

setup:
	./scripts/setup

demo: setup
	$(VENV)/flaglens demo

lint:
	$(VENV)/ruff format --check .
	$(VENV)/ruff check .

typecheck:
	$(VENV)/mypy contracts store ingest analytics alerts reports dashboards flaglens sample_data

test: setup lint typecheck
	$(VENV)/pytest
