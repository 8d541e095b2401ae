# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make test   -- create .venv, install gradxform[test], lint, type-check, run the tests
#   make demo   -- create .venv, install gradxform[demo], run the demo
#   make bench  -- benchmarks against optax and torch.optim (about 5 minutes)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: test demo bench bench-quick lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

lint: $(VENV)/.installed-test
	$(BIN)/ruff check gradxform tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy gradxform

test: lint typecheck
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

demo: $(VENV)/.installed-demo
	$(BIN)/python -m gradxform demo --out demo_out

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.run

bench-quick: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache

# make docs   -- install gradxform[docs], build the documentation into build/docs/html
#                (Sphinx; every warning is an error)
.PHONY: docs
$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.installed-docs
	$(BIN)/python -m sphinx -b html -E -W --keep-going -q docs build/docs/html -d build/docs/doctrees

# make compat -- optax's own test suite run with gradxform in optax's place: prints the
#                applicable tests, the pass rate and the failures by cause (about 10 minutes
#                on two cores). COMPAT_ARGS is passed on, e.g. --min-pass-rate 0.9, --baseline.
.PHONY: compat
COMPAT_ARGS ?=
compat: $(VENV)/.installed-test
	$(BIN)/python -m tests.optax_compat $(COMPAT_ARGS)
