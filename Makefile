# dmobs — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt package.json package-lock.json
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install Python and front-end dependencies

run: install audit-key ## Serve the demo on http://127.0.0.1:8000 (SQLite, demo data)
	DEBUG=true $(PY) manage.py migrate --no-input
	DEBUG=true $(PY) manage.py seed_demo
	DEBUG=true $(PY) manage.py audit_seal --settle 0
	@echo "Sign in at http://$(HOST):$(PORT)/ as sarah, james, rita or root (password demo-pass-2026)"
	DEBUG=true $(PY) manage.py runserver $(HOST):$(PORT)

audit-key: install ## Create the development audit signing key in var/keys/ (kept if it exists)
	DEBUG=true $(PY) manage.py audit_keygen --out var/keys/audit-signing.pem --if-missing

seal: install ## Seal the audit log of the local database (audit_seal --loop beside the app in production)
	DEBUG=true $(PY) manage.py audit_seal

test: install imports ## Import contracts, then the whole test suite (DATABASE_URL picks the database; default SQLite)
	$(PY) -m pytest

imports: install ## Check the import contracts of pyproject.toml (import-linter; docs/ARCHITECTURE.md)
	$(VENV)/bin/lint-imports --no-cache

test-mongo: install ## MongoDB tests: against MONGODB_URI, or a local mongoeco emulator when unset
	tests/mongo/run.sh

lint: install imports ## ruff lint and format check, and the import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

dashboards: install ## Regenerate ops/grafana/dashboards/*.json from ops/grafana/build_dashboards.py
	$(PY) ops/grafana/build_dashboards.py

compose-check: install ## Validate both compose files (compose specification) and the Traefik configs (its schemas)
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml docker-compose.prod.yml
	$(VENV)/bin/check-jsonschema --schemafile ops/schemas/traefik-v3.json ops/traefik/traefik.yml
	$(VENV)/bin/check-jsonschema --schemafile ops/schemas/traefik-v3-file-provider.json ops/traefik/dynamic/*.yml

screenshots: install ## PNGs of the screens in docs/screenshots/ (headless Chromium)
	$(PY) -m tests.browser.screenshots

dashboard-screenshots: install ## PNGs of the seed dashboards in docs/dashboards/, drawn from a real Prometheus (needs Redis)
	$(PY) ops/grafana/render_panels.py

bench: install ## Benchmarks against the Django admin on PostgreSQL (BENCH_ROWS=1000000)
	$(PY) bench/run.py

bench-collectors: install ## Database time of a /metrics/platform scrape on 1M entries (BENCH_DB, BENCH_ROWS)
	$(PY) bench/collectors.py
bench-integrity: install ## Sealing and verifying speed on PostgreSQL (BENCH_ROWS=1000000)
	$(PY) bench/integrity.py

clean: ## Remove the venv, node_modules and the local database
	rm -rf $(VENV) .venv-mongoeco node_modules db.sqlite3 var staticfiles

.PHONY: help install run audit-key seal test imports test-mongo lint format dashboards compose-check screenshots dashboard-screenshots bench bench-collectors bench-integrity clean
