# servicedesk — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
# The first interpreter that really runs and is >= 3.11 (pyenv shims may exist but fail).
PYTHON ?= $(shell for c in python3.13 python3.12 python3.11 python3; do $$c -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 && echo $$c && break; done)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO ?= org
# DEMO=incidents: the real ServiceNow log (UCI dataset 498, CC BY 4.0; see README "Importing history").
INCIDENT_LOG ?= ../shared/data/uci-incident-event-log/incident_event_log.zip
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/servicedesk
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: install run test lint format chromium bench clean

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo 'Python >= 3.11 is needed'; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

# Debian's Chromium for the browser tests (never a downloaded browser).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; \
	fi

# Embedded default: SQLite + file-system broker. With DATABASE_URL / REDIS_URL set, uses them.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@if [ "$(DEMO)" = "incidents" ]; then \
		$(BIN)/python manage.py seed_demo --accounts-only && \
		$(BIN)/python manage.py import_incidents $(INCIDENT_LOG) --preset servicenow --lead lead; \
	else $(BIN)/python manage.py seed_demo; fi
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m servicedesk.launcher

test: install chromium
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf var db.sqlite3 .pytest_cache
