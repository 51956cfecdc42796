# PureBridge: `make run` starts the embedded default, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
APT_PACKAGES_TEST := postgresql redis-server chromium

.PHONY: run test lint format bench system-deps codex claude-code clean

$(PY):
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || \
	  scripts/apt-install.sh python3-venv
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.lock pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	touch $@

system-deps:
	@scripts/apt-install.sh $(APT_PACKAGES_TEST)

# The Codex CLI, for the end-to-end test of /v1/responses with a real client.
codex:
	@scripts/install-codex.sh

# Claude Code, for the end-to-end test of /v1/messages with a real agent.
claude-code:
	@scripts/install-claude-code.sh

run: $(VENV)/.installed
	@scripts/run.sh $(HOST) $(PORT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(VENV)/.installed system-deps codex claude-code lint
	@scripts/with-services.sh $(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed system-deps
	@scripts/with-services.sh $(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .tools .pytest_cache .ruff_cache .mypy_cache test-artifacts
