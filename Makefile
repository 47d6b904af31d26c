# The product's front door: `make run` serves it, `make test` checks it.
# Without DATABASE_URL both use the embedded PostgreSQL in .local/ (config/localdb.py).

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
# Runs a command with the development environment: local database started, dev defaults set.
DEV := $(BIN)/python -m config.localdb run --

.PHONY: install browser run screenshots test lint format stop-db db-status

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Debian's chromium and chromium-driver, for the real-browser tests (tests/e2e) and screenshots:
# installed when root; otherwise the e2e tests skip (and fail under CI=true).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "Installing chromium and chromium-driver for the e2e tests (apt-get)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium chromium-driver >/dev/null; \
	else \
	  echo "chromium/chromedriver missing and not root: e2e tests will be skipped (they fail under CI=true); sudo apt-get install chromium chromium-driver"; \
	fi

run: install
	$(DEV) $(BIN)/python manage.py migrate --noinput
	$(DEV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(DEV) $(BIN)/python manage.py seed_demo
	$(DEV) $(BIN)/python manage.py dev_logins --port $(PORT)
	$(DEV) $(BIN)/gunicorn config.wsgi -c config/gunicorn.conf.py --bind 127.0.0.1:$(PORT) --workers 2

# PNGs of the admin pages listed in tests/e2e/screenshots.py, in docs/screenshots/.
screenshots: install browser
	$(DEV) $(BIN)/python manage.py migrate --noinput
	$(DEV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(DEV) $(BIN)/python manage.py seed_demo
	$(DEV) $(BIN)/python manage.py dev_logins
	$(DEV) $(BIN)/python -m tests.e2e.screenshots

test: install lint browser
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
