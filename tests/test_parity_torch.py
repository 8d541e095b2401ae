"""Parity with torch.optim: the settings in docs/parity.md give the same iterates.

Each case runs both optimizers for 25 steps on the same problem -- a
per-coordinate quadratic plus a fixed noise sequence, so every gradient depends
on the iterate -- and compares the parameters after every step to rtol 1e-5
in float32.
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
    adamax,
    amsgrad,
    nadam,
    nadamw,
    nesterov_lookahead_point,
    radam,
    scale_by_radam,
    sgd_nesterov_lookahead,
)
from tests._require import require

torch = require("torch", why="torch.optim parity")

STEPS = 25
RTOL, ATOL = 1e-5, 1e-6
LR = 0.05


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    init = {
        "w": rng.normal(size=(3, 4)).astype(np.float32),
        "b": rng.normal(size=(4,)).astype(np.float32),
    }
    curvature = {k: rng.uniform(0.2, 1.0, size=v.shape).astype(np.float32) for k, v in init.items()}
    noise = [
        {k: (0.5 * rng.normal(size=v.shape)).astype(np.float32) for k, v in init.items()}
        for _ in range(STEPS)
    ]

    def grad(params: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
        return {k: (curvature[k] * params[k] + noise[t][k]).astype(np.float32) for k in params}

    return init, grad


def run_gradxform(tx, init, grad, *, lookahead: float | None = None):
    """Iterates of ``tx``; with ``lookahead=mu`` the gradient is taken at, and the
    iterate reported is, the look-ahead point ``theta + mu * v``."""
    params = {k: jnp.asarray(v) for k, v in init.items()}
    state = tx.init(params)
    out = []
    for t in range(STEPS):
        point = nesterov_lookahead_point(params, state, lookahead) if lookahead else params
        g = grad({k: np.asarray(v) for k, v in point.items()}, t)
        u, state = tx.update({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        params = gx.apply_updates(params, u)
        seen = nesterov_lookahead_point(params, state, lookahead) if lookahead else params
        out.append({k: np.asarray(v) for k, v in seen.items()})
    return out


def run_torch(make: Callable[[list[Any]], Any], init, grad):
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}
    opt = make(list(params.values()))
    out = []
    for t in range(STEPS):
        g = grad({k: p.detach().numpy().copy() for k, p in params.items()}, t)
        for k, p in params.items():
            p.grad = torch.tensor(g[k])
        opt.step()
        out.append({k: p.detach().numpy().copy() for k, p in params.items()})
    return out


def assert_same_iterates(ours, theirs):
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for k in a:
            np.testing.assert_allclose(
                a[k], b[k], rtol=RTOL, atol=ATOL, err_msg=f"parameter {k!r} after step {t + 1}"
            )


def coupled(weight_decay, tx):
    """Classic L2 regularisation: the decay enters the gradient before ``tx``."""
    return gx.chain(gx.add_decayed_weights(weight_decay), tx)


T = torch.optim
# (id, gradxform transformation, torch optimizer factory)
CASES = [
    ("sgd", gx.sgd(LR), lambda p: T.SGD(p, lr=LR)),
    ("sgd-momentum", gx.sgd(LR, momentum=0.9), lambda p: T.SGD(p, lr=LR, momentum=0.9)),
    (
        "sgd-nesterov",
        gx.sgd(LR, momentum=0.9, nesterov=True),
        lambda p: T.SGD(p, lr=LR, momentum=0.9, nesterov=True),
    ),
    (
        "sgd-l2",
        coupled(0.1, gx.sgd(LR, momentum=0.9)),
        lambda p: T.SGD(p, lr=LR, momentum=0.9, weight_decay=0.1),
    ),
    (
        "adagrad",
        gx.adagrad(LR, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False),
        lambda p: T.Adagrad(p, lr=LR),
    ),
    (
        "adagrad-initial",
        gx.adagrad(LR, initial_accumulator_value=0.1, eps=1e-10, eps_in_sqrt=False),
        lambda p: T.Adagrad(p, lr=LR, initial_accumulator_value=0.1),
    ),
    (
        "rmsprop",
        gx.rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False),
        lambda p: T.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8),
    ),
    (
        "rmsprop-centered-momentum",
        gx.rmsprop(0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, centered=True, momentum=0.5),
        lambda p: T.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6, centered=True, momentum=0.5),
    ),
    ("adam", gx.adam(LR), lambda p: T.Adam(p, lr=LR)),
    ("adam-l2", coupled(0.1, gx.adam(LR)), lambda p: T.Adam(p, lr=LR, weight_decay=0.1)),
    ("amsgrad", amsgrad(LR, amsgrad_max="raw"), lambda p: T.Adam(p, lr=LR, amsgrad=True)),
    ("adamw", gx.adamw(LR, weight_decay=0.1), lambda p: T.AdamW(p, lr=LR, weight_decay=0.1)),
    (
        "adamw-decay-not-scaled",
        gx.adamw(LR, weight_decay=0.01, scale_decay_by_lr=False),
        lambda p: T.AdamW(p, lr=LR, weight_decay=0.01 / LR),
    ),
    ("adamax", adamax(LR, eps_in_max=True), lambda p: T.Adamax(p, lr=LR)),
    (
        "adamax-l2",
        coupled(0.1, adamax(LR, eps_in_max=True)),
        lambda p: T.Adamax(p, lr=LR, weight_decay=0.1),
    ),
    ("nadam", nadam(LR, momentum_schedule="dozat"), lambda p: T.NAdam(p, lr=LR)),
    (
        "nadam-momentum-decay",
        nadam(LR, momentum_schedule="dozat", momentum_decay=0.1),
        lambda p: T.NAdam(p, lr=LR, momentum_decay=0.1),
    ),
    (
        "nadam-l2",
        coupled(0.1, nadam(LR, momentum_schedule="dozat")),
        lambda p: T.NAdam(p, lr=LR, weight_decay=0.1),
    ),
    (
        "nadamw",
        nadamw(LR, weight_decay=0.1, momentum_schedule="dozat"),
        lambda p: T.NAdam(p, lr=LR, weight_decay=0.1, decoupled_weight_decay=True),
    ),
    ("radam", radam(LR, eps_uncorrected=True), lambda p: T.RAdam(p, lr=LR)),
    (
        "radamw",
        gx.chain(
            scale_by_radam(eps_uncorrected=True),
            gx.add_decayed_weights(0.1),
            gx.scale_by_learning_rate(LR),
        ),
        lambda p: T.RAdam(p, lr=LR, weight_decay=0.1, decoupled_weight_decay=True),
    ),
    # eps large enough that placing it anywhere else changes the iterates (see the
    # negative controls below)
    (
        "adagrad-eps",
        gx.adagrad(LR, initial_accumulator_value=0.0, eps=0.3, eps_in_sqrt=False),
        lambda p: T.Adagrad(p, lr=LR, eps=0.3),
    ),
    (
        "rmsprop-eps",
        gx.rmsprop(0.01, decay=0.9, eps=0.3, eps_in_sqrt=False),
        lambda p: T.RMSprop(p, lr=0.01, alpha=0.9, eps=0.3),
    ),
    ("adam-eps", gx.adam(LR, eps=0.3), lambda p: T.Adam(p, lr=LR, eps=0.3)),
    (
        "amsgrad-eps",
        amsgrad(LR, eps=0.3, amsgrad_max="raw"),
        lambda p: T.Adam(p, lr=LR, eps=0.3, amsgrad=True),
    ),
    ("adamax-eps", adamax(LR, eps=0.3, eps_in_max=True), lambda p: T.Adamax(p, lr=LR, eps=0.3)),
    (
        "nadam-eps",
        nadam(LR, eps=0.3, momentum_schedule="dozat"),
        lambda p: T.NAdam(p, lr=LR, eps=0.3),
    ),
    ("radam-eps", radam(LR, eps=0.3, eps_uncorrected=True), lambda p: T.RAdam(p, lr=LR, eps=0.3)),
    ("adadelta", adadelta(1.0), lambda p: T.Adadelta(p, lr=1.0)),
    (
        "adadelta-l2",
        adadelta(0.5, rho=0.95, eps=1e-5, weight_decay=0.1),
        lambda p: T.Adadelta(p, lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.1),
    ),
]


@pytest.mark.parametrize(("tx", "make"), [pytest.param(tx, make, id=i) for i, tx, make in CASES])
def test_same_iterates_as_torch(tx, make):
    init, grad = problem()
    assert_same_iterates(run_gradxform(tx, init, grad), run_torch(make, init, grad))


def test_nesterov_lookahead_form_is_torch_nesterov_after_change_of_variable():
    """phi_t = theta_t + mu * v_t of the look-ahead form are torch's Nesterov iterates."""
    init, grad = problem()
    ours = run_gradxform(sgd_nesterov_lookahead(LR, momentum=0.9), init, grad, lookahead=0.9)
    theirs = run_torch(lambda p: T.SGD(p, lr=LR, momentum=0.9, nesterov=True), init, grad)
    assert_same_iterates(ours, theirs)


def test_parity_cases_are_jittable():
    """The parity configurations are ordinary transformations: one jitted step each."""
    init, grad = problem()
    params = {k: jnp.asarray(v) for k, v in init.items()}
    g = {k: jnp.asarray(v) for k, v in grad(init, 0).items()}
    for _, tx, _ in CASES:
        u, _ = jax.jit(tx.update)(g, tx.init(params), params)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))


# The other placement of each flag, which must not match torch: the tests above can tell.
CONTROLS = [
    (
        "adagrad-eps-in-sqrt",
        gx.adagrad(LR, initial_accumulator_value=0.0, eps=0.3),
        lambda p: T.Adagrad(p, lr=LR, eps=0.3),
    ),
    (
        "rmsprop-eps-in-sqrt",
        gx.rmsprop(0.01, decay=0.9, eps=0.3),
        lambda p: T.RMSprop(p, lr=0.01, alpha=0.9, eps=0.3),
    ),
    ("adamax-eps-outside-max", adamax(LR, eps=0.3), lambda p: T.Adamax(p, lr=LR, eps=0.3)),
    (
        "amsgrad-max-of-corrected",
        amsgrad(LR, amsgrad_max="corrected"),
        lambda p: T.Adam(p, lr=LR, amsgrad=True),
    ),
    ("nadam-constant-momentum", nadam(LR), lambda p: T.NAdam(p, lr=LR)),
    ("radam-eps-corrected", radam(LR, eps=0.3), lambda p: T.RAdam(p, lr=LR, eps=0.3)),
    (
        "adamw-decay-scaled",
        gx.adamw(LR, weight_decay=0.01),
        lambda p: T.AdamW(p, lr=LR, weight_decay=0.01 / LR),
    ),
    (
        "adam-decoupled-vs-l2",
        gx.adamw(LR, weight_decay=0.1),
        lambda p: T.Adam(p, lr=LR, weight_decay=0.1),
    ),
]


@pytest.mark.parametrize(("tx", "make"), [pytest.param(tx, make, id=i) for i, tx, make in CONTROLS])
def test_other_variant_differs_from_torch(tx, make):
    init, grad = problem()
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_same_iterates(run_gradxform(tx, init, grad), run_torch(make, init, grad))
