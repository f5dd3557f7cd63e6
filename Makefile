# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test worker install install-dev bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## run: install, migrate, load the demo catalog when the database is empty, serve http://127.0.0.1:8000
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## test: install and run the whole suite (browser tests need /usr/bin/chromium)
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## worker: a Celery worker (needs CELERY_BROKER_URL and DATABASE_URL)
worker: install
	$(BIN)/celery -A musiccluster worker --loglevel=INFO

## bench: benchmark the import (and later phases) on a generated catalog
bench: install
	$(BIN)/python manage.py bench --songs $(or $(SONGS),100000)

clean:
	rm -rf var/static test-output .pytest_cache
