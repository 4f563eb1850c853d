# The two commands of the README, and what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: serve test lint venv

$(BIN)/rasbot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/rasbot

## Install, then serve the bundled example releases on the embedded SQLite database.
serve: venv
	RASBOT_RELEASES_FILE=$${RASBOT_RELEASES_FILE:-examples/releases.json} \
	  $(BIN)/rasbot serve --host $(HOST) --port $(PORT)

## Install, check style and types, run every test on SQLite, then on MariaDB and
## PostgreSQL servers started for the run (each skipped when not installed).
test: venv lint
	$(BIN)/pytest
	scripts/testdb mariadb $(BIN)/pytest -q
	scripts/testdb postgres $(BIN)/pytest -q

lint: venv
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
