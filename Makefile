# The product's front door: `make run` serves it, `make test` checks it.
# Without DATABASE_URL both use the embedded PostgreSQL in .local/ (config/localdb.py).

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
# Runs a command with the development environment: local database started, dev defaults set.
DEV := $(BIN)/python -m config.localdb run --

.PHONY: install run test lint format stop-db db-status

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(DEV) $(BIN)/python manage.py migrate --noinput
	$(DEV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(DEV) $(BIN)/python manage.py seed_demo
	$(DEV) $(BIN)/python manage.py dev_logins --port $(PORT)
	$(DEV) $(BIN)/gunicorn config.wsgi --bind 127.0.0.1:$(PORT) --workers 2 --access-logfile -

test: install lint
	$(DEV) $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stop-db:
	$(PYTHON) -m config.localdb stop

db-status:
	$(PYTHON) -m config.localdb status
