# The product's front door: `make run` serves it, `make test` checks it.
# Without DATABASE_URL both use the embedded PostgreSQL in .local/ (config/localdb.py).

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
# Runs a command with the development environment: local database started, dev defaults set.
DEV := $(BIN)/python -m config.localdb run --
# One line before a step and one with its elapsed time after (config/steps.py, stdlib only:
# it runs before .venv exists): a first run is never silent.
STEP = $(PYTHON) -m config.steps

.PHONY: install browser db run screenshots test test-pgbouncer lint format stop-db db-status bench wrk

$(BIN)/.installed: pyproject.toml
	@$(STEP) "installing the project into $(VENV) (pip, quiet; minutes on a first run)" -- sh -c \
	  "test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	   $(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'"
	@touch $@

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

# wrk, the HTTP load generator of `manage.py bench` (Debian's package): installed when root.
wrk:
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "Installing wrk for the bench (apt-get)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends wrk >/dev/null; \
	else \
	  echo "wrk missing and not root: the bench skips its HTTP half; sudo apt-get install -y wrk"; \
	fi

# The hot paths over HTTP and as SQL, and the scale sweeps, in a scratch database
# (docs/performance.md). BENCH_FLAGS passes flags, e.g. BENCH_FLAGS="--duration 10".
BENCH_FLAGS ?=
bench: install db wrk
	@$(STEP) "migrating the database" -- $(DEV) $(BIN)/python manage.py migrate --noinput -v 0
	@$(STEP) "running the bench (minutes; writes var/bench/bench.json and bench.md)" -- \
	  $(DEV) $(BIN)/python manage.py bench $(BENCH_FLAGS)

run: install db
	@$(STEP) "migrating the database" -- $(DEV) $(BIN)/python manage.py migrate --noinput -v 0
	@$(STEP) "collecting static files" -- \
	  $(DEV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@$(STEP) "loading the demo data" -- $(DEV) $(BIN)/python manage.py seed_demo
	@$(STEP) "creating the dev logins" -- $(DEV) $(BIN)/python manage.py dev_logins --port $(PORT)
	@$(STEP) "serving on http://127.0.0.1:$(PORT)/ (Ctrl-C stops)" -- \
	  $(DEV) $(BIN)/gunicorn config.wsgi -c config/gunicorn.conf.py --bind 127.0.0.1:$(PORT)

# Starts the embedded PostgreSQL (initdb on first use) unless DATABASE_URL is set.
db:
	@$(STEP) "starting PostgreSQL" -- $(PYTHON) -m config.localdb ensure

# PNGs of the admin pages listed in tests/e2e/screenshots.py, in docs/screenshots/.
screenshots: install browser
	$(DEV) $(BIN)/python manage.py migrate --noinput
	$(DEV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(DEV) $(BIN)/python manage.py seed_demo
	$(DEV) $(BIN)/python manage.py dev_logins
	$(DEV) $(BIN)/python -m tests.e2e.screenshots

# The API tests, run a second time through PgBouncer in transaction mode (`make test`'s last
# step, or alone: `make test-pgbouncer`): every role and user id must be transaction-scoped.
API_TESTS := tests/recsys_experiments/api tests/test_api_fuzz.py tests/deck/test_auth_and_me.py \
  $(filter-out tests/recsys_experiments/api/%,$(sort $(wildcard tests/*/test_*_api.py tests/*/*/test_*_api.py)))

PGBOUNCER_STEP = @$(STEP) "running the API tests through PgBouncer (transaction mode)" -- \
	  env RECSYS_PGBOUNCER=1 $(DEV) $(BIN)/pytest -q -p no:cacheprovider $(API_TESTS)

test: install lint browser db
	@$(STEP) "running the tests" -- $(DEV) $(BIN)/pytest
	$(PGBOUNCER_STEP)

test-pgbouncer: install db
	$(PGBOUNCER_STEP)

lint: install
	@$(STEP) "linting (ruff check, ruff format --check)" -- \
	  sh -c "$(BIN)/ruff check . && $(BIN)/ruff format --check ."

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# `make db` (or `make run`/`make test`) starts it again.
stop-db:
	@$(PYTHON) -m config.localdb stop

# Prints "running" or "stopped" and exits 0 for both (localdb status itself exits 3 when
# stopped, for scripts); non-zero only when the state cannot be read.
db-status:
	@$(PYTHON) -m config.localdb status; code=$$?; [ $$code -eq 0 ] || [ $$code -eq 3 ]
