# biopilot — the two commands (and a few more). Everything installs itself into .venv.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= runs

.PHONY: install run test lint types contracts pytest bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make run: the live demo line (twin over OPC UA, ingest, monitor, report into $(OUT)/), then
## the cockpit on http://127.0.0.1:8000 until Ctrl-C; e.g. RUN_ARGS="--no-serve --days 3"
RUN_ARGS ?=
run: install
	$(VENV)/bin/biopilot run --out $(OUT) $(RUN_ARGS)

## make test: lint, architecture contracts, types, then the test suite
test: install lint contracts types pytest

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

contracts: install
	$(VENV)/bin/lint-imports

types: install
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest -q

## make bench: every benchmark prints its table; results are kept in benchmarks/RESULTS.md
bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(OUT) .mypy_cache .pytest_cache .ruff_cache .import_linter_cache
