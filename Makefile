# The two commands the README promises: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint typecheck pytest schema clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; run: make PYTHON=python3 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $(STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP) $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/batchctl validate jobs.d
	$(BIN)/batchctl demo init
	$(BIN)/batchctl reconcile jobs.d --until-done
	$(BIN)/batchctl status jobs.d

lint: $(TEST_STAMP)
	$(BIN)/ruff check runner tests bench
	$(BIN)/ruff format --check runner tests bench
	$(BIN)/lint-imports

typecheck: $(TEST_STAMP)
	$(BIN)/mypy --strict runner

pytest: $(TEST_STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

schema: $(STAMP)
	$(BIN)/batchctl schema

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
