"""Parity with keras.optimizers: the settings in docs/parity.md give the same iterates.

Each case runs both optimizers for 25 steps on the same problem -- a
per-coordinate quadratic plus a fixed noise sequence, so every gradient depends
on the iterate -- and compares the parameters after every step to rtol 1e-5
in float32. Keras runs on its JAX backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import (
    adadelta,
    adafactor,
    adamax,
    adamaxw,
    amsgrad,
    ftrl,
    lamb,
    lion,
    nadam,
    nadamw,
)
from tests._require import require_keras

keras = require_keras("jax", why="keras parity")

STEPS = 25
RTOL, ATOL = 1e-5, 1e-6
LR = 0.05


def problem(seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    init = {
        "w": (scale * rng.normal(size=(3, 4))).astype(np.float32),
        "b": (scale * rng.normal(size=(4,))).astype(np.float32),
    }
    curvature = {k: rng.uniform(0.2, 1.0, size=v.shape).astype(np.float32) for k, v in init.items()}
    noise = [
        {k: (0.5 * rng.normal(size=v.shape)).astype(np.float32) for k, v in init.items()}
        for _ in range(STEPS)
    ]

    def grad(params: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
        return {k: (curvature[k] * params[k] + noise[t][k]).astype(np.float32) for k in params}

    return init, grad


def run_gradxform(tx, init, grad):
    params = {k: jnp.asarray(v) for k, v in init.items()}
    state = tx.init(params)
    out = []
    for t in range(STEPS):
        g = grad({k: np.asarray(v) for k, v in params.items()}, t)
        u, state = tx.update({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        params = gx.apply_updates(params, u)
        out.append({k: np.asarray(v) for k, v in params.items()})
    return out


def run_keras(make: Callable[[], Any], init, grad):
    variables = {k: keras.Variable(v, name=k) for k, v in init.items()}
    opt = make()
    out = []
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        for t in range(STEPS):
            g = grad({k: np.asarray(v.value) for k, v in variables.items()}, t)
            opt.apply_gradients([(g[k], variables[k]) for k in variables])
            out.append({k: np.array(v.value) for k, v in variables.items()})
    return out


def assert_same_iterates(ours, theirs):
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for k in a:
            np.testing.assert_allclose(
                a[k], b[k], rtol=RTOL, atol=ATOL, err_msg=f"parameter {k!r} after step {t + 1}"
            )


K = keras.optimizers
# (id, gradxform transformation, keras optimizer factory); eps values are large where its
# placement is the point, so that any other placement would change the iterates.
CASES = [
    ("sgd", gx.sgd(LR), lambda: K.SGD(LR)),
    ("sgd-momentum", gx.sgd(LR, momentum=0.9), lambda: K.SGD(LR, momentum=0.9)),
    (
        "sgd-nesterov",
        gx.sgd(LR, momentum=0.9, nesterov=True),
        lambda: K.SGD(LR, momentum=0.9, nesterov=True),
    ),
    ("adagrad", gx.adagrad(LR), lambda: K.Adagrad(LR)),
    (
        "adagrad-eps",
        gx.adagrad(LR, initial_accumulator_value=0.0, eps=0.3),
        lambda: K.Adagrad(LR, initial_accumulator_value=0.0, epsilon=0.3),
    ),
    ("rmsprop", gx.rmsprop(0.01, decay=0.9, eps=1e-7), lambda: K.RMSprop(0.01)),
    ("rmsprop-eps", gx.rmsprop(0.01, decay=0.9, eps=0.3), lambda: K.RMSprop(0.01, epsilon=0.3)),
    (
        "rmsprop-centered-momentum",
        gx.rmsprop(0.01, decay=0.8, eps=1e-3, centered=True, momentum=0.5),
        lambda: K.RMSprop(0.01, rho=0.8, epsilon=1e-3, centered=True, momentum=0.5),
    ),
    # keras evaluates 1 - b2**t in float32 (b2 = 0.999 is off by 1e-5 relative there), so its
    # own Adam iterates drift from the exact ones by about 1e-5 * eta per step: a smaller eta
    # keeps that drift under the tolerance (gradxform stays within 2e-7 of float64).
    ("adam", gx.adam(0.01, eps=1e-7, eps_uncorrected=True), lambda: K.Adam(0.01)),
    ("adam-eps", gx.adam(LR, eps=0.3, eps_uncorrected=True), lambda: K.Adam(LR, epsilon=0.3)),
    (
        "amsgrad",
        amsgrad(LR, eps=0.3, eps_uncorrected=True, amsgrad_max="raw"),
        lambda: K.Adam(LR, epsilon=0.3, amsgrad=True),
    ),
    (
        "adamw",
        gx.adamw(0.01, eps=1e-7, weight_decay=0.1, eps_uncorrected=True),
        lambda: K.AdamW(0.01, weight_decay=0.1),
    ),
    ("adamax", adamax(LR, eps=0.3), lambda: K.Adamax(LR, epsilon=0.3)),
    ("adamaxw", adamaxw(LR, eps=1e-7, weight_decay=0.1), lambda: K.Adamax(LR, weight_decay=0.1)),
    (
        "nadam",
        nadam(LR, eps=1e-7, momentum_schedule="dozat", momentum_decay=1.0),
        lambda: K.Nadam(LR),
    ),
    (
        "nadam-eps",
        nadam(LR, eps=0.3, momentum_schedule="dozat", momentum_decay=1.0),
        lambda: K.Nadam(LR, epsilon=0.3),
    ),
    (
        "nadamw",
        nadamw(LR, eps=1e-7, weight_decay=0.1, momentum_schedule="dozat", momentum_decay=1.0),
        lambda: K.Nadam(LR, weight_decay=0.1),
    ),
    ("adadelta", adadelta(1.0, rho=0.95, eps=1e-7), lambda: K.Adadelta(1.0)),
    ("lion", lion(0.01, weight_decay=0.1), lambda: K.Lion(0.01, weight_decay=0.1)),
    ("lamb", lamb(0.01), lambda: K.Lamb(0.01)),
    ("adafactor", adafactor(0.01, min_dim_size_to_factor=1), lambda: K.Adafactor(0.01)),
    ("ftrl", ftrl(0.1), lambda: K.Ftrl(0.1)),
    (
        "ftrl-l1-l2",
        ftrl(0.1, l1=0.05, l2=0.01),
        lambda: K.Ftrl(0.1, l1_regularization_strength=0.05, l2_regularization_strength=0.01),
    ),
    (
        "ftrl-all",
        ftrl(
            0.5,
            learning_rate_power=-0.7,
            initial_accumulator_value=0.3,
            l1=0.02,
            l2=0.01,
            l2_shrinkage=0.05,
            beta=0.4,
        ),
        lambda: K.Ftrl(
            0.5,
            learning_rate_power=-0.7,
            initial_accumulator_value=0.3,
            l1_regularization_strength=0.02,
            l2_regularization_strength=0.01,
            l2_shrinkage_regularization_strength=0.05,
            beta=0.4,
        ),
    ),
]


@pytest.mark.parametrize(("tx", "make"), [pytest.param(tx, make, id=i) for i, tx, make in CASES])
def test_same_iterates_as_keras(tx, make):
    init, grad = problem()
    assert_same_iterates(run_gradxform(tx, init, grad), run_keras(make, init, grad))


def test_ftrl_l1_zeros_match_keras_exactly():
    """Coordinates keras' FTRL sets to zero are exactly zero here too."""
    init, grad = problem(scale=0.01)
    tx = ftrl(0.1, l1=2.0)
    ours = run_gradxform(tx, init, grad)
    theirs = run_keras(lambda: K.Ftrl(0.1, l1_regularization_strength=2.0), init, grad)
    for a, b in zip(ours, theirs, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k] == 0, b[k] == 0)
    assert any(np.any(a[k] == 0) for a in ours for k in a)


# The other placement of each flag, which must not match keras: the tests above can tell.
CONTROLS = [
    (
        "adagrad-eps-outside-sqrt",
        gx.adagrad(LR, initial_accumulator_value=0.0, eps=0.3, eps_in_sqrt=False),
        lambda: K.Adagrad(LR, initial_accumulator_value=0.0, epsilon=0.3),
    ),
    (
        "rmsprop-eps-outside-sqrt",
        gx.rmsprop(0.01, decay=0.9, eps=0.3, eps_in_sqrt=False),
        lambda: K.RMSprop(0.01, epsilon=0.3),
    ),
    ("adam-eps-corrected", gx.adam(LR, eps=0.3), lambda: K.Adam(LR, epsilon=0.3)),
    ("adamax-eps-in-max", adamax(LR, eps=0.3, eps_in_max=True), lambda: K.Adamax(LR, epsilon=0.3)),
    (
        "amsgrad-max-of-corrected",
        amsgrad(LR, eps=0.3, eps_uncorrected=True, amsgrad_max="corrected"),
        lambda: K.Adam(LR, epsilon=0.3, amsgrad=True),
    ),
    (
        "nadam-torch-momentum-decay",
        nadam(LR, eps=1e-7, momentum_schedule="dozat"),
        lambda: K.Nadam(LR),
    ),
    ("ftrl-params-center", ftrl(0.1, proximal_center="params"), lambda: K.Ftrl(0.1)),
]


@pytest.mark.parametrize(("tx", "make"), [pytest.param(tx, make, id=i) for i, tx, make in CONTROLS])
def test_other_variant_differs_from_keras(tx, make):
    init, grad = problem()
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_same_iterates(run_gradxform(tx, init, grad), run_keras(make, init, grad))
