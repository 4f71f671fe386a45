# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Embedded defaults: SQLite under ./var, in-process jobs, keys generated on first run (./var/keys.env).
# Migrate, seed the demo team if empty, serve.
run: install
	$(BIN)/tributary secrets init
	$(BIN)/tributary db upgrade
	$(BIN)/tributary demo seed --if-empty
	$(BIN)/tributary serve

lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .

# -n auto: one pytest worker per core (pytest-xdist); every test has its own database, temp dir and
# queue name, so workers never share state.
test: lint
	$(BIN)/pytest -n auto

bench: install
	$(BIN)/python -m benchmarks.ledger
	$(BIN)/python -m benchmarks.verify
	$(BIN)/python -m benchmarks.matching
	$(BIN)/python -m benchmarks.enrich
	$(BIN)/python -m benchmarks.slack_ack
	$(BIN)/python -m benchmarks.api
	$(BIN)/python -m benchmarks.contacts
	$(BIN)/python -m benchmarks.crm_sync
	$(BIN)/python -m benchmarks.sheets

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
