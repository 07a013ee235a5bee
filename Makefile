# slipway: `make demo` builds and pushes a real image; `make test` runs every test.
# Both do all set-up on a fresh machine (system packages, virtual environment).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all setup system venv node-test-deps test test-serial lint typecheck unit demo bench bench-smoke clean proto images

all: test

setup: system venv node-test-deps

system:
	@bash scripts/install-system.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "python packages: installing slipway with its test extras"
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# npm packages the tests read (GitHub's webhook example deliveries: tests/triggers/)
FORGE := tests/support/forge
$(FORGE)/node_modules/.package-lock.json: $(FORGE)/package-lock.json
	@echo "npm packages: $(FORGE)"
	@cd $(FORGE) && npm ci --no-audit --no-fund --silent

venv: $(STAMP) $(FORGE)/node_modules/.package-lock.json

# npm packages the tests start (a real OpenID provider: tests/support/oidc/)
OIDC_DIR := tests/support/oidc
$(OIDC_DIR)/node_modules/.installed: $(OIDC_DIR)/package-lock.json
	@echo "npm packages: tests/support/oidc (oidc-provider)"
	@cd $(OIDC_DIR) && npm ci --no-audit --no-fund --silent
	@touch $@

node-test-deps: $(OIDC_DIR)/node_modules/.installed

lint: venv
	$(BIN)/ruff check src tests benchmarks

typecheck: venv
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q -rs --durations=25 $(PYTEST_ARGS)

# two pytest processes side by side on two cores or more (scripts/run-tests.sh)
test: setup lint typecheck
	PYTEST_ARGS='$(PYTEST_ARGS)' bash scripts/run-tests.sh

# the same tests in one pytest process
test-serial: setup lint typecheck
	$(BIN)/pytest -q -rs --durations=25 $(PYTEST_ARGS)

demo: setup
	bash scripts/demo.sh

# the manager and worker images, tagged quay.io/slipway/NAME:VERSION; nothing is pulled
images: setup
	bash scripts/make-images.sh

bench: setup
	$(BIN)/python -m benchmarks.run

bench-smoke: setup
	$(BIN)/python -m benchmarks.run --smoke

proto: venv
	PYTHON=$(abspath $(BIN))/python scripts/gen-protocol.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
