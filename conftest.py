"""Test configuration: strict dtype and rank promotion so silent upcasts and broadcasts fail;
the tests that run in `make test-extended` only (marker ``extended``)."""

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


# Checks of the Shampoo and SOAP registry entries and sweep subjects that run in
# `make test-extended` only: each compiles its eigendecompositions afresh (a new tree per
# hypothesis example, a new configuration per sweep value), which `make test`'s time
# budget does not hold. `make test` keeps, for both entries, the battery (reference,
# jit, recompilation, float32 and bfloat16 dtypes, scan/cond, convergence, key paths),
# the optimizers' sweep over every hyperparameter and one parity case per library.
EXTENDED_ONLY = (
    "tests/test_properties.py::*[shampoo]",
    "tests/test_properties.py::*[soap]",
    "tests/test_hyperparams_sweep.py::test_hyperparameter_matches_reference[scale_by_shampoo-",
    "tests/test_hyperparams_sweep.py::test_hyperparameter_matches_reference[scale_by_soap-",
    "tests/test_battery.py::test_dtypes_preserved[shampoo-float16]",
    "tests/test_battery.py::test_dtypes_preserved[shampoo-float64]",
    "tests/test_battery.py::test_dtypes_preserved[soap-float16]",
    "tests/test_battery.py::test_dtypes_preserved[soap-float64]",
    "tests/test_battery.py::test_zero_gradients_low_precision[shampoo-float16]",
    "tests/test_battery.py::test_zero_gradients_low_precision[soap-float16]",
    "tests/test_engine.py::test_packed_matches_per_leaf[shampoo]",
    "tests/test_engine.py::test_packed_matches_per_leaf[soap]",
    "tests/test_parity_shampoo_soap.py::test_shampoo_nesterov_flag_is_the_one_compared",
    # The learning-rate study (4 optimizers x 5 seeds x a grid of constant rates, about two
    # minutes on one core): its rule is asserted there; make test keeps the range test's own
    # tests (tests/test_lr_finder.py) and the other notebooks.
    "notebooks/04_lr_range_test_digits.ipynb",
)


def _extended_only(nodeid: str) -> bool:
    for pattern in EXTENDED_ONLY:
        if "::*[" in pattern:
            path, suffix = pattern.split("::*", 1)
            if nodeid.startswith(path + "::") and nodeid.endswith(suffix):
                return True
        elif nodeid.startswith(pattern):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    for item in items:
        if _extended_only(item.nodeid):
            item.add_marker(pytest.mark.extended)
