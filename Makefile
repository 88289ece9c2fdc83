# The two commands of the README: `make serve` and `make test`.
# Both work on a fresh Debian machine: they install what is missing first.

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: serve test lint system-deps bench clean config-table

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,bench,lint]'
	touch $(STAMP)

system-deps:
	./scripts/install-system-deps

## Run Vitrine on its embedded default (records in ./var/vitrine.db, coordination in memory, in-process media
## worker, port 7880).
serve: $(STAMP)
	$(VENV)/bin/vitrine serve --dev

## Run the whole test suite (real aiortc peers, a real Redis, headless Chromium), in two worker processes:
## each test file runs whole on one of them, with its own Redis, PostgreSQL and Chromium.
test: system-deps $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error  # the outside browser clients of tests/interop, and esbuild
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

## Check types (mypy), style (ruff) and the floors: no import from a lower floor to a higher one, no circles
## (lint-imports; the contracts are in pyproject.toml); and the shared browser modules' types (tsc, from npm).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	npm ci --no-audit --no-fund --loglevel=error
	node_modules/.bin/tsc -p tsconfig.json

## Rewrite README.md's configuration table from Settings (tests/test_config_table.py fails when it is stale).
config-table: $(STAMP)
	$(VENV)/bin/python -m vitrine.core.settings_doc README.md

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
