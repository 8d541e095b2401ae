# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make test   -- create .venv, install gradxform[test], lint, type-check, run the tests
#   make demo   -- create .venv, install gradxform[demo], run the demo
#   make test-extended -- deep parity sweeps and convergence studies (run by CI too)
#   make bench  -- benchmarks against optax and torch.optim (about 20 minutes)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
# the optional C++ kernel (setup.py): reinstalling rebuilds it when its source changes
KERNEL := setup.py gradxform/_csrc/adam.cc

.PHONY: test demo bench bench-quick lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-test: pyproject.toml $(KERNEL) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-demo: pyproject.toml $(KERNEL) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

lint: $(VENV)/.installed-test
	$(BIN)/ruff check gradxform tests benchmarks
	$(BIN)/ruff format --check gradxform tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy gradxform

test: lint typecheck
	$(BIN)/python -m pytest -n 2 -m "not extended" $(PYTEST_ARGS)

# make test-extended -- the deep parity sweeps and convergence studies (marker `extended`)
#                       that do not fit make test's 15 minutes; CI runs it after make test.
.PHONY: test-extended
test-extended: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 -m extended $(PYTEST_ARGS) || test $$? -eq 5  # 5: none selected

demo: $(VENV)/.installed-demo
	$(BIN)/python -m gradxform demo --out demo_out

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.preconditioned

bench-quick: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.run --quick
	$(BIN)/python -m benchmarks.preconditioned --quick

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache

# make docs   -- install gradxform[docs], build the documentation into build/docs/html
#                (Sphinx; every warning is an error)
.PHONY: docs
$(VENV)/.installed-docs: pyproject.toml $(KERNEL) | $(BIN)/python
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

# make mutate -- mutation testing (cosmic-ray) of the tree math, the moment transforms and
#                the schedules: MUTATE_JOBS workers, each in its own copy of the working tree
#                under MUTATE_DIR (mutants are written there, never here), run each module's
#                mutants against the fast tests that cover it (MUTATE_TESTS_<file name>,
#                else MUTATE_TESTS), stopping at the first failure; then the kill rate and the
#                surviving mutants (diffs in MUTATE_DIR/*.survivors.txt) of each module.
#                A subset: make mutate MUTATE_MODULES=gradxform/_tree.py (15 to 30 minutes).
.PHONY: mutate
MUTATE_MODULES ?= gradxform/_tree.py gradxform/_transforms/adam.py gradxform/_transforms/rms.py \
                  gradxform/_transforms/momentum.py \
                  $(filter-out %/__init__.py,$(wildcard gradxform/schedules/*.py))
MUTATE_DIR ?= build/mutate
MUTATE_JOBS ?= 2
MUTATE_PORT ?= 9876
MUTATE_TIMEOUT ?= 300
MUTATE_TESTS ?= tests/test_hyperparams_sweep.py::test_schedule_hyperparameter_matches_reference \
  tests/test_schedules.py \
  tests/test_signatures.py::test_a_schedule_for_a_schedule_factory_number_is_refused_by_name
MUTATE_TESTS__tree.py ?= tests/test_battery.py::test_matches_numpy_reference \
  tests/test_battery.py::test_shape_mismatch_names_key_path \
  tests/test_battery.py::test_structure_mismatch_names_key_path tests/test_bad_inputs.py \
  tests/test_numerics.py::test_step_counter_saturates_at_int32_max \
  tests/test_numerics.py::test_float64_second_moment_squares_a_float32_gradient_in_float64 \
  tests/test_state_dtypes.py::test_dtype_argument_sets_its_leaves_and_only_them \
  tests/test_hyperparams_sweep.py::test_hyperparameter_matches_reference \
  tests/test_base.py tests/test_complex.py \
  -k "matches_numpy_reference or names_key_path or bad_inputs or saturates or dtype_argument \
      or clip or trust or float64 or test_base or test_complex"
MUTATE_TESTS_adam.py ?= tests/test_battery.py::test_matches_numpy_reference \
  tests/test_hyperparams_sweep.py::test_hyperparameter_matches_reference \
  tests/test_bad_inputs.py tests/test_signatures.py tests/test_complex.py \
  tests/test_numerics.py::test_amsgrad_low_precision_state_holds_the_maximum_not_the_update \
  -k "matches_numpy_reference or scale_by_a or belief or yogi or lamb or adam or amsgrad \
      or dozat or test_complex"
MUTATE_TESTS_rms.py ?= tests/test_battery.py::test_matches_numpy_reference \
  tests/test_hyperparams_sweep.py::test_hyperparameter_matches_reference \
  tests/test_signatures.py tests/test_complex.py \
  tests/test_numerics.py::test_centered_variance_rounded_below_zero_is_taken_as_zero \
  -k "matches_numpy_reference or rms or adagrad or adadelta or stddev or test_signatures \
      or test_complex or centered_variance"
MUTATE_TESTS__join.py ?= $(MUTATE_TESTS) tests/test_bad_inputs.py::test_bad_input_raises_clear_error \
  -k "join or Join or schedule"
MUTATE_TESTS__cyclical.py ?= tests/test_schedules.py tests/test_schedules_optax.py \
  tests/test_hyperparams_sweep.py::test_schedule_hyperparameter_matches_reference \
  tests/test_signatures.py::test_a_schedule_for_a_schedule_factory_number_is_refused_by_name \
  -k "cycl"
MUTATE_TESTS_momentum.py ?= tests/test_battery.py::test_matches_numpy_reference \
  tests/test_hyperparams_sweep.py::test_hyperparameter_matches_reference \
  tests/test_bad_inputs.py::test_bad_input_raises_clear_error tests/test_complex.py \
  -k "matches_numpy_reference or momentum or trace or ema- or sgd or lars or signum \
      or decay or test_complex"
# Skipped: replacing float arithmetic by operators it has no use for (|, &, ^, <<, >>, //, %,
# **) fails at once as a type error; replacing a comparison by `is` tests object identity;
# `|` as arithmetic is mostly the `X | None` of annotations, never evaluated.
MUTATE_SKIP ?= "core/ReplaceBinaryOperator_.*_(BitOr|BitAnd|BitXor|LShift|RShift|FloorDiv|Mod|Pow)$$", \
               "core/ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Is|IsNot)$$", \
               "core/ReplaceBinaryOperator_BitOr_(Add|Sub|Mul|Div)$$"
MUTATE_PYTEST = $(abspath $(BIN))/python -m pytest -x -q -p no:cacheprovider -o addopts=
# Compiled programs that a mutant leaves unchanged are read from a cache shared by the
# workers (a mutated program has another cache key), about halving the time per mutant.
mutate: export JAX_COMPILATION_CACHE_DIR = $(abspath $(MUTATE_DIR))/jax-cache
mutate: export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS = 0
mutate: export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES = 0

$(VENV)/.installed-mutate: pyproject.toml $(KERNEL) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[mutate]'
	touch $@

mutate: $(VENV)/.installed-mutate
	@set -e; rm -rf $(MUTATE_DIR); mkdir -p $(MUTATE_DIR); pids=; \
	trap 'test -z "$$pids" || kill $$pids 2>/dev/null' EXIT; \
	for w in $$(seq $(MUTATE_JOBS)); do \
	  mkdir -p $(MUTATE_DIR)/worker$$w; \
	  git ls-files -z --cached --others --exclude-standard \
	    | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(MUTATE_DIR)/worker$$w; \
	  (cd $(MUTATE_DIR)/worker$$w && exec $(abspath $(BIN))/cosmic-ray http-worker \
	    --port $$(($(MUTATE_PORT) + w))) > $(MUTATE_DIR)/worker$$w.log 2>&1 & pids="$$pids $$!"; \
	  urls="$$urls$${urls:+, }\"http://127.0.0.1:$$(($(MUTATE_PORT) + w))\""; \
	done; sleep 5; \
	$(foreach m,$(MUTATE_MODULES),\
	  name=$(subst /,.,$(m)); \
	  printf '[cosmic-ray]\nmodule-path = "%s"\ntimeout = %s\nexcluded-modules = []\ntest-command = '"'"'%s'"'"'\n\n[cosmic-ray.distributor]\nname = "http"\n\n[cosmic-ray.distributor.http]\nworker-urls = [%s]\n\n[cosmic-ray.filters.operators-filter]\nexclude-operators = [%s]\n' \
	    "$(m)" "$(MUTATE_TIMEOUT)" '$(MUTATE_PYTEST) $(or $(MUTATE_TESTS_$(notdir $(m))),$(MUTATE_TESTS))' \
	    "$$urls" '$(MUTATE_SKIP)' > $(MUTATE_DIR)/$$name.toml; \
	  echo "mutating $(m)"; \
	  (cd $(MUTATE_DIR)/worker1 && $(MUTATE_PYTEST) $(or $(MUTATE_TESTS_$(notdir $(m))),$(MUTATE_TESTS)) \
	    > ../$$name.baseline.log 2>&1) \
	    || { echo "the tests fail without mutations: see $(MUTATE_DIR)/$$name.baseline.log"; exit 1; }; \
	  (cd $(MUTATE_DIR)/worker1 && $(abspath $(BIN))/cosmic-ray init ../$$name.toml ../$$name.sqlite \
	    && $(abspath $(BIN))/cr-filter-operators ../$$name.sqlite ../$$name.toml \
	    && $(abspath $(BIN))/cosmic-ray exec ../$$name.toml ../$$name.sqlite); \
	  $(abspath $(BIN))/cr-report --surviving-only --show-diff $(MUTATE_DIR)/$$name.sqlite \
	    > $(MUTATE_DIR)/$$name.survivors.txt;) \
	for db in $(MUTATE_DIR)/*.sqlite; do \
	  printf '== %s: ' "$$(basename $$db .sqlite)"; \
	  $(abspath $(BIN))/cosmic-ray dump $$db | $(abspath $(BIN))/python -c 'import json, sys; \
	    r = [(json.loads(line)[1] or {}).get("test_outcome") for line in sys.stdin]; \
	    k, s = r.count("killed"), r.count("survived"); \
	    print(k, "killed,", s, "survived, %d skipped: kill rate %.1f%%" % (len(r) - k - s, 100.0 * k / max(k + s, 1)))'; \
	  $(abspath $(BIN))/cr-report --surviving-only $$db | grep '^gradxform' || true; \
	done
