# Two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types imports suite unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/netlog-bot demo

# Starts the Pub/Sub emulator on a free port, checks PostgreSQL, then lint (Python and the Dockerfile),
# types, layering, all tests.
test: $(STAMP)
	tests/services.sh $(MAKE) --no-print-directory lint types imports suite

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

types: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

suite: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The day-to-day loop: every test that needs neither the emulator nor a subprocess (PostgreSQL yes).
unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration" $(PYTEST_ARGS)

# Storm benchmarks, each figure beside a baseline from the same run; BENCH_ARGS="--ingest" adds Pub/Sub.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
