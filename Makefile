# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# DEBUG=1 (or true, yes, on) in the environment or on the command line: a development run.
DEBUG_ON = $(filter 1 true yes on True TRUE Yes YES On ON,$(strip $(DEBUG)))

.PHONY: run test worker install install-dev bench lint lock clean

# requirements*.txt are locks (exact versions with hashes) compiled from
# requirements*.in: install them as they are, never resolve here.
$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# Static files for a run with DEBUG off, collected (hashed names, compressed)
# into STATIC_ROOT again only when a source file or the packages changed.
VAR_DIR         ?= var
STATIC_ROOT     ?= $(VAR_DIR)/static
STATIC_MANIFEST := $(STATIC_ROOT)/staticfiles.json
$(STATIC_MANIFEST): $(VENV)/.runtime $(shell find static -type f 2>/dev/null)
	DEBUG=0 $(BIN)/python manage.py collectstatic --noinput --verbosity 0

## run: install, migrate, load the demo catalog when the database is empty, serve http://127.0.0.1:8000
##   with DEBUG off (the site's own error pages, static files collected and served
##   by whitenoise, a secret key kept in var/secret_key). DEBUG=1 make run: debug
##   pages, static files from the source folders and reloading on code changes.
run: install $(if $(DEBUG_ON),,$(STATIC_MANIFEST))
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT) $(if $(DEBUG_ON),,--noreload)

## test: install, check lint and the dependency rules (make lint), then run the suite but its browser tests
test: install-dev lint
	$(BIN)/python -m pytest -m "not browser" $(PYTEST_ARGS)

## test-browser: the browser tests (tests/browser/, real headless Chromium: /usr/bin/chromium; CI runs them too)
test-browser: install-dev
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

## worker: a Celery worker (needs CELERY_BROKER_URL and DATABASE_URL). It survives
##   broker restarts and sweeps dead or lost work itself (no beat needed); in
##   production run it under a supervisor that restarts it (README: systemd unit).
worker: install
	$(BIN)/celery -A musiccluster worker --loglevel=INFO

## bench: benchmark the import (and later phases) on a generated catalog
bench: install
	$(BIN)/python manage.py bench --songs $(or $(SONGS),100000)

## lint: ruff (lint rules and formatting, see pyproject.toml) and import-linter's contracts
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## lock: re-compile requirements.txt and requirements-dev.txt from the .in files
##   after editing them. Pins already in the locks are kept where they still fit;
##   to move on: make lock LOCK_ARGS="--upgrade-package django" (or --upgrade).
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: install-dev
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

clean:
	rm -rf var/static test-output .pytest_cache
