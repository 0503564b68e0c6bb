# Routine targets. `make demo` installs and starts the demo; `make test` runs every test.
# `make test-postgres` runs the tests that use the database on PostgreSQL; `make services` starts PostgreSQL and Redis.
PYTHON ?= python3
# The database `make test-postgres` names; pytest-django creates (and drops) test_<name> beside it.
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/qfexdash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-js test-postgres test-services services lint bench soak load chromium nodejs screenshots

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's Chromium; install it when we may (root), otherwise say how.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else echo "chromium is missing: run 'sudo apt-get install -y chromium' (browser tests will be skipped)"; fi; }

# The live page's pure modules (number, time and label formatting, schedules, sequencing) have unit tests run
# by Node's own test runner; no npm packages. Install Node when we may (root), otherwise say how.
nodejs:
	@command -v node >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null); \
	  else echo "node is missing: run 'sudo apt-get install -y nodejs'"; exit 1; fi; }

test-js: nodejs
	node --test tests/js/

# The demo prints a password for a staff user, so it runs only with DEBUG on and on an empty database or its
# own (S36); DEBUG=true here is for this local demo only.
demo: install
	DEBUG=true $(BIN)/python manage.py demo $(ARGS)

# ruff; the layer contract of pyproject.toml ([tool.importlinter]): pages and admin → live → accounts →
# models, orders/qfex and orders/simulator know neither Django nor the app; then mypy (strict for orders.qfex,
# orders.simulator and orders.live.feed; settings in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy

test: install chromium lint test-js
	$(BIN)/pytest $(ARGS)

# The one-minute loop: every test that runs inside pytest's own processes (no Daphne, no Chromium, no
# subprocess; tests/tiers.py decides), spread over four processes. No lint, no Node tests.
test-fast: install
	$(BIN)/pytest -m "not slow" -n 4 --dist worksteal $(ARGS)

# The tests that use the site's database, with DATABASE_URL pointing at PostgreSQL. The others run the same
# code on either database, or start Daphne on their own SQLite file; `make test` runs them all.
test-postgres: install chromium
	DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest --database-tests-only $(ARGS)

# Only the tests on the real PostgreSQL and Redis (several Daphne processes, leases, failover).
test-services: install
	$(BIN)/pytest -m services $(ARGS)

# Start PostgreSQL and Redis on 127.0.0.1 when they are installed but stopped.
services:
	.ci/services

bench: install
	$(BIN)/python -m bench $(ARGS)

# The long runs of docs/reliability.md: every fault F1-F12 for 10 minutes each (about 2 h; e.g.
# ARGS="--seconds-per-fault 120 --faults F1,F9"), and 1000 sockets on one process with updates flowing.
soak: install
	$(BIN)/python -m bench.soak $(ARGS)

load: install
	$(BIN)/python -m bench.load $(ARGS)

# docs/screenshots/*.png: the live page at a desk and on a phone, light and dark, on the demo's data
# (simulator + Daphne + Chromium, started by bench/screenshots.py through the end-to-end tests' stack).
screenshots: install chromium
	$(BIN)/python -m bench.screenshots $(ARGS)
