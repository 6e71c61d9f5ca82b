# The two commands a newcomer types are `make demo` and `make test` (see README.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup demo serve test check unit integration bench-ingest clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python -m saferoom demo --data-dir data/demo $(DEMO_ARGS)

serve: setup
	$(BIN)/python -m saferoom serve --data-dir data/demo

check: setup
	$(BIN)/ruff check .
	$(BIN)/mypy saferoom policies audit sandbox models
	$(BIN)/lint-imports

test: check
	$(BIN)/pytest $(PYTEST_ARGS)

unit: setup
	$(BIN)/pytest tests --ignore=tests/integration -q

bench-ingest: setup
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache

.PHONY: bench-queries
bench-queries: setup
	$(BIN)/python bench/queries.py

.PHONY: bench-models
bench-models: setup
	$(BIN)/python bench/models.py
