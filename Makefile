# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && echo $$p && break; done)
VENV ?= .venv
BIN := $(VENV)/bin
LINT_DIRS := $(wildcard src tests bench examples scripts)

.PHONY: run test lint check docs docs-build bench bench-quick system-deps lock clean

# `make run` needs only what serving needs; tests, lint and benchmarks add the dev and bench extras.
$(BIN)/.installed-run: pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $@

$(BIN)/.installed: $(BIN)/.installed-run
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench,docs]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

system-deps:
	@scripts/ensure-system-deps.sh

run: $(BIN)/.installed-run
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory node_modules/.installed; \
	  else echo "npm not found: the demo page at / will lack phoenix.js"; fi
	$(BIN)/relaygate serve

test: system-deps $(BIN)/.installed node_modules/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy

check: lint test

# The documentation site (docs/, mkdocs.yml): served with live reload, or built as CI does.
docs: $(BIN)/.installed
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

docs-build: $(BIN)/.installed
	$(BIN)/mkdocs build --strict --site-dir site

bench: system-deps $(BIN)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick:
	$(MAKE) bench BENCH_ARGS=--quick

# Refresh the constraints file (the lock) from a fresh resolution of pyproject.toml.
lock:
	rm -rf /tmp/relaygate-lock && $(PYTHON) -m venv /tmp/relaygate-lock
	/tmp/relaygate-lock/bin/pip install -q '.[dev,bench,docs]'
	/tmp/relaygate-lock/bin/pip freeze --exclude relaygate > constraints.txt

clean:
	rm -rf $(VENV) node_modules var site .pytest_cache .mypy_cache .ruff_cache
