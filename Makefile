# SCRM: `make run` serves the back office with demo data and a worker; `make test` runs
# everything CI runs. Both set up the virtualenv and the database themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

# Start the embedded PostgreSQL unless DATABASE_URL names a server; stop it again on exit
# only if this command started it (a `make run` in another terminal keeps its database).
define WITH_DATABASE
started=0; \
if [ -z "$${DATABASE_URL:-}" ]; then \
  $(PY) -m scrm.core.embedded_db start; rc=$$?; \
  if [ $$rc -eq 3 ]; then started=1; elif [ $$rc -ne 0 ]; then exit $$rc; fi; \
fi; \
trap 'if [ $$started -eq 1 ]; then $(PY) -m scrm.core.embedded_db stop; fi' EXIT;
endef

.PHONY: install run test lint bench stop clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "SCRM needs Python 3.11 (set PYTHON=/path/to/python3.11)")'
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	@$(WITH_DATABASE) \
	export DEBUG=$${DEBUG:-1}; \
	$(PY) manage.py migrate --noinput && \
	$(PY) manage.py seed_demo --if-empty && \
	$(PY) manage.py serve

# mypy's Django plugin loads the settings, which start the embedded database: lint runs
# inside WITH_DATABASE so the database is stopped again afterwards.
LINT = $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy .

lint: install
	@$(WITH_DATABASE) \
	$(LINT)

test: install
	@bash .ci/install-system-deps
	@$(WITH_DATABASE) \
	$(LINT) && \
	$(VENV)/bin/pytest

bench: install
	@$(WITH_DATABASE) \
	export DEBUG=$${DEBUG:-1}; \
	$(PY) manage.py migrate --noinput >/dev/null && \
	for name in $$($(PY) manage.py bench --list | cut -f1); do \
	  $(PY) manage.py bench $$name || exit 1; \
	done

stop: install
	$(PY) -m scrm.core.embedded_db stop

clean: stop
	rm -rf .data
