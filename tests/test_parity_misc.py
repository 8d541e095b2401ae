"""Parity of Rprop, SM3, the optimistic methods, noisy SGD, Fromage, MADGRAD and ACProp with
the libraries that have them: optax (and optax.contrib), torch.optim.Rprop and
pytorch-optimizer's SM3 and MADGRAD.

Each case runs both sides for 25 steps on a problem whose gradients depend on the
iterate (a per-coordinate quadratic plus a fixed noise sequence) and compares the
parameters after every step, in float32, to rtol 1e-5 (atol 1e-6) unless a case says
why not. A flag that selects a library's variant is checked against that library, and
its other setting must not match (the negative controls).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx
from tests._require import require

STEPS = 25
RTOL, ATOL = 1e-5, 1e-6
LR = 0.05


def problem(seed: int = 0, *, scalar: bool = False):
    rng = np.random.default_rng(seed)
    init = {
        "w": rng.normal(size=(3, 4)).astype(np.float32),
        "b": rng.normal(size=(4,)).astype(np.float32),
    }
    if scalar:
        init["s"] = np.asarray(rng.normal(), np.float32)
    curvature = {k: rng.uniform(0.2, 1.0, size=v.shape).astype(np.float32) for k, v in init.items()}
    noise = [
        {k: (0.5 * rng.normal(size=v.shape)).astype(np.float32) for k, v in init.items()}
        for _ in range(STEPS)
    ]

    def grad(params: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
        return {k: (curvature[k] * params[k] + noise[t][k]).astype(np.float32) for k in params}

    return init, grad


def run_jax(tx: Any, init: Any, grad: Any) -> list[dict[str, np.ndarray]]:
    """The iterates of a gradxform or optax transformation."""
    params = {k: jnp.asarray(v) for k, v in init.items()}
    state = tx.init(params)
    out = []
    for t in range(STEPS):
        g = grad({k: np.asarray(v) for k, v in params.items()}, t)
        u, state = tx.update({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        params = {k: params[k] + u[k] for k in params}
        out.append({k: np.asarray(v) for k, v in params.items()})
    return out


def run_optax(tx: Any, init: Any, grad: Any) -> list[dict[str, np.ndarray]]:
    with jax.numpy_dtype_promotion("standard"):  # optax relies on implicit promotion
        return run_jax(tx, init, grad)


def run_torch(make: Callable[[list[Any]], Any], init: Any, grad: Any) -> list[dict[str, Any]]:
    torch = require("torch", why="torch.optim and pytorch-optimizer parity")
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


def assert_same_iterates(ours, theirs, rtol: float = RTOL, atol: float = ATOL) -> None:
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for k in a:
            np.testing.assert_allclose(
                a[k], b[k], rtol=rtol, atol=atol, err_msg=f"parameter {k!r} after step {t + 1}"
            )


def optimistic_adam_optax(*args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():  # optax points to optimistic_adam_v2
        warnings.simplefilter("ignore", DeprecationWarning)
        return optax.optimistic_adam(*args, **kwargs)


def _contrib() -> Any:
    return optax.contrib


# ---------------------------------------------------------------------------- optax

OPTAX_CASES = [
    ("rprop", lambda: gx.rprop(LR), lambda: optax.rprop(LR)),
    (
        "rprop-bounds",
        lambda: gx.rprop(0.02, eta_minus=0.3, eta_plus=1.5, min_step_size=5e-3, max_step_size=0.1),
        lambda: optax.rprop(
            0.02, eta_minus=0.3, eta_plus=1.5, min_step_size=5e-3, max_step_size=0.1
        ),
    ),
    (
        "scale_by_rprop",
        lambda: gx.chain(gx.scale_by_rprop(LR, eta_plus=1.4), gx.scale(-1.0)),
        lambda: optax.chain(optax.scale_by_rprop(LR, eta_plus=1.4), optax.scale(-1.0)),
    ),
    ("sm3", lambda: gx.sm3(LR), lambda: optax.sm3(LR)),
    ("sm3-momentum", lambda: gx.sm3(LR, momentum=0.5), lambda: optax.sm3(LR, momentum=0.5)),
    (
        "scale_by_sm3-decay",
        lambda: gx.chain(gx.scale_by_sm3(b1=0.5, b2=0.9, eps=1e-4), gx.scale(-LR)),
        lambda: optax.chain(optax.scale_by_sm3(b1=0.5, b2=0.9, eps=1e-4), optax.scale(-LR)),
    ),
    (
        "optimistic_gradient_descent",
        lambda: gx.optimistic_gradient_descent(LR),
        lambda: optax.optimistic_gradient_descent(LR),
    ),
    (
        "optimistic_gradient_descent-alpha-beta",
        lambda: gx.optimistic_gradient_descent(LR, alpha=0.5, beta=2.0),
        lambda: optax.optimistic_gradient_descent(LR, alpha=0.5, beta=2.0),
    ),
    (
        "scale_by_optimistic_gradient",
        lambda: gx.chain(gx.scale_by_optimistic_gradient(0.3, 0.7), gx.scale(-LR)),
        lambda: optax.chain(optax.scale_by_optimistic_gradient(0.3, 0.7), optax.scale(-LR)),
    ),
    ("optimistic_adam", lambda: gx.optimistic_adam(LR), lambda: optimistic_adam_optax(LR)),
    (
        "optimistic_adam-optimism",
        lambda: gx.optimistic_adam(LR, 0.1, b1=0.8, b2=0.99, nesterov=False),
        lambda: optimistic_adam_optax(LR, 0.1, b1=0.8, b2=0.99, nesterov=False),
    ),
    ("optimistic_adam_v2", lambda: gx.optimistic_adam_v2(LR), lambda: optax.optimistic_adam_v2(LR)),
    (
        "optimistic_adam_v2-alpha-beta",
        lambda: gx.optimistic_adam_v2(LR, alpha=0.5, beta=0.2, eps=1e-3, nesterov=False),
        lambda: optax.optimistic_adam_v2(LR, alpha=0.5, beta=0.2, eps=1e-3, nesterov=False),
    ),
    (
        "noisy_sgd",
        lambda: gx.noisy_sgd(LR, eta=0.3, gamma=0.3, key=7),
        lambda: optax.noisy_sgd(LR, eta=0.3, gamma=0.3, key=7),
    ),
    (
        "noisy_sgd-typed-key",
        lambda: gx.noisy_sgd(LR, key=jax.random.key(11)),
        lambda: optax.noisy_sgd(LR, key=jax.random.key(11)),
    ),
    ("fromage", lambda: gx.fromage(LR), lambda: optax.fromage(LR)),
    (
        "fromage-schedule",
        lambda: gx.fromage(optax.exponential_decay(0.2, 5, 0.5), min_norm=1.5),
        lambda: optax.fromage(optax.exponential_decay(0.2, 5, 0.5), min_norm=1.5),
    ),
]


# Optimistic Adam: the iterates agree with optax's to rtol 1e-5 with atol 1e-5 (not 1e-6).
# Adam's direction differs by float32 rounding (gradxform's bias correction is
# -expm1(t log1p(-b)), optax's 1 - b**t), and the optimistic step weighs the change of that
# direction; after 25 steps the iterates differ by up to 7e-6. gradxform's stay within
# 1.5e-4 (relative, 1e-6 floor) of a float64 run, optax's within 1.8e-2.
OPTIMISTIC_ADAM_ATOL = 1e-5


@pytest.mark.parametrize(("ours", "theirs"), [pytest.param(a, b, id=i) for i, a, b in OPTAX_CASES])
def test_same_iterates_as_optax(request, ours, theirs):
    init, grad = problem()
    atol = OPTIMISTIC_ADAM_ATOL if "optimistic_adam" in request.node.callspec.id else ATOL
    assert_same_iterates(run_jax(ours(), init, grad), run_optax(theirs(), init, grad), atol=atol)


# MADGRAD: optax forms the update as x_{k+1} - x_k, the difference of two float32
# iterates, where gradxform forms (1 - momentum) ((x_0 - x_k) - s / (cbrt(nu) + eps)); the
# two agree to 3e-5 relative (gradxform is the closer to the float64 reference, see the
# battery), so the comparison with optax is at rtol 3e-5.
MADGRAD_RTOL = 3e-5
MADGRAD_CASES = [
    ("madgrad", lambda: gx.madgrad(LR), lambda: _contrib().madgrad(LR)),
    (
        "madgrad-decay",
        lambda: gx.madgrad(LR, momentum=0.5, weight_decay=0.1, eps=1e-3),
        lambda: _contrib().madgrad(LR, momentum=0.5, weight_decay=0.1, eps=1e-3),
    ),
    (
        "scale_by_madgrad-schedule",
        lambda: gx.scale_by_madgrad(optax.linear_schedule(0.1, 0.01, 20), momentum=0.0),
        lambda: _contrib().scale_by_madgrad(optax.linear_schedule(0.1, 0.01, 20), momentum=0.0),
    ),
]


@pytest.mark.parametrize(
    ("ours", "theirs"), [pytest.param(a, b, id=i) for i, a, b in MADGRAD_CASES]
)
def test_madgrad_same_iterates_as_optax_contrib(ours, theirs):
    init, grad = problem()
    assert_same_iterates(
        run_jax(ours(), init, grad), run_optax(theirs(), init, grad), rtol=MADGRAD_RTOL
    )


ACPROP_CASES = [
    ("acprop", lambda: gx.acprop(LR), lambda: _contrib().acprop(LR)),
    (
        "acprop-decay-mask",
        lambda: gx.acprop(LR, 0.5, 0.9, 1e-3, 1e-4, 0.1, {"w": True, "b": False}),
        lambda: _contrib().acprop(LR, 0.5, 0.9, 1e-3, 1e-4, 0.1, {"w": True, "b": False}),
    ),
    (
        "scale_by_acprop",
        lambda: gx.chain(gx.scale_by_acprop(b1=0.8, b2=0.99), gx.scale(-LR)),
        lambda: optax.chain(_contrib().scale_by_acprop(b1=0.8, b2=0.99), optax.scale(-LR)),
    ),
]


# ACProp: optax forms 1 - b2 in float64 but b2**t in float32 (see docs/differences.md), so
# its first bias-corrected belief s_1 / (1 - b2) is g_1**2 (1 + 1.3e-5) for b2 = 0.999, and
# the step it divides by ~6e-6 relative; gradxform forms both from the float32 b2. The
# iterates agree to rtol 1e-5 with atol 1e-5 (differences up to 7.5e-6 where a small first
# gradient makes the second step large).
ACPROP_ATOL = 1e-5


@pytest.mark.parametrize(("ours", "theirs"), [pytest.param(a, b, id=i) for i, a, b in ACPROP_CASES])
def test_acprop_same_iterates_as_optax_contrib(ours, theirs):
    init, grad = problem()
    assert_same_iterates(
        run_jax(ours(), init, grad), run_optax(theirs(), init, grad), atol=ACPROP_ATOL
    )


def test_sm3_takes_scalar_leaves_where_optax_fails():
    """optax's scale_by_sm3 indexes an empty list of accumulators for a scalar leaf;
    gradxform keeps one accumulator, as for a one-element vector."""
    init, grad = problem(scalar=True)
    with pytest.raises(IndexError):
        run_optax(optax.sm3(LR), init, grad)
    ours = run_jax(gx.sm3(LR), init, grad)

    def grad_as_vector(params: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
        g = grad({**params, "s": params["s"].reshape(())}, t)
        return {**g, "s": g["s"].reshape(1)}

    vector = run_jax(gx.sm3(LR), {**init, "s": init["s"].reshape(1)}, grad_as_vector)
    for a, b in zip(ours, vector, strict=True):
        np.testing.assert_array_equal(a["s"].reshape(1), b["s"])


def test_optimistic_adam_refuses_a_schedule_as_optax_does():
    schedule = optax.constant_schedule(0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        gx.optimistic_adam(schedule)
    with pytest.raises(ValueError):
        optimistic_adam_optax(schedule)


# ---------------------------------------------------------------------------- torch


def _torch_rprop(lr: float, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)) -> Callable[..., Any]:
    torch = require("torch", why="torch.optim.Rprop parity")
    return lambda p: torch.optim.Rprop(p, lr=lr, etas=etas, step_sizes=step_sizes)


RPROP_TORCH_CASES = [
    ("default", dict(learning_rate=LR), dict(lr=LR)),
    (
        "etas-step-sizes",
        dict(
            learning_rate=0.02, eta_minus=0.3, eta_plus=1.5, min_step_size=5e-3, max_step_size=0.1
        ),
        dict(lr=0.02, etas=(0.3, 1.5), step_sizes=(5e-3, 0.1)),
    ),
    # A learning rate above max_step_size: torch bounds the step size at the first step.
    (
        "lr-above-max",
        dict(learning_rate=0.2, max_step_size=0.1),
        dict(lr=0.2, step_sizes=(1e-6, 0.1)),
    ),
]


@pytest.mark.parametrize(
    ("ours", "theirs"), [pytest.param(a, b, id=i) for i, a, b in RPROP_TORCH_CASES]
)
def test_rprop_immediate_is_torch_rprop(ours, theirs):
    init, grad = problem()
    assert_same_iterates(
        run_jax(gx.rprop(**ours, immediate=True), init, grad),
        run_torch(_torch_rprop(**theirs), init, grad),
    )


@pytest.mark.parametrize(
    ("ours", "theirs"), [pytest.param(a, b, id=i) for i, a, b in RPROP_TORCH_CASES]
)
def test_rprop_default_is_not_torch_rprop(ours, theirs):
    """Negative control: optax's rule applies each step one update late."""
    init, grad = problem()
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_same_iterates(
            run_jax(gx.rprop(**ours), init, grad), run_torch(_torch_rprop(**theirs), init, grad)
        )


def test_rprop_immediate_is_not_optax_rprop():
    """Negative control: immediate=True is not optax's rule."""
    init, grad = problem()
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_same_iterates(
            run_jax(gx.rprop(LR, immediate=True), init, grad),
            run_optax(optax.rprop(LR), init, grad),
        )


def test_optax_rprop_is_torch_rprop_one_step_late():
    """The one difference, measured: optax's update at step t is torch's update at step
    t - 1 (nothing after a change of sign), given the same gradients."""
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=5).astype(np.float32) for _ in range(STEPS)]
    ours = gx.rprop(LR, immediate=True)
    late = gx.rprop(LR)
    s_now, s_late = ours.init(jnp.zeros(5)), late.init(jnp.zeros(5))
    previous = np.zeros(5, np.float32)
    for t, g in enumerate(grads):
        now, s_now = ours.update(jnp.asarray(g), s_now)
        delayed, s_late = late.update(jnp.asarray(g), s_late)
        changed = t > 0 and np.sign(g) * np.sign(grads[t - 1]) < 0
        expected = np.where(changed, 0.0, previous) if t > 0 else np.zeros(5)
        np.testing.assert_allclose(np.asarray(delayed), expected, rtol=1e-6, atol=0)
        previous = np.asarray(now)


# --------------------------------------------------------------- pytorch-optimizer


def _pytorch_optimizer() -> Any:
    require("torch", why="pytorch-optimizer parity")
    return require("pytorch_optimizer", why="SM3 and MADGRAD parity")


@pytest.mark.parametrize("momentum", [0.9, 0.0, 0.5])
def test_sm3_is_pytorch_optimizer_sm3(momentum):
    po = _pytorch_optimizer()
    init, grad = problem()
    ours = run_jax(gx.sm3(LR, momentum=momentum), init, grad)
    theirs = run_torch(
        lambda p: po.SM3(p, lr=LR, momentum=momentum, beta=0.0, eps=1e-8, foreach=False),
        init,
        grad,
    )
    assert_same_iterates(ours, theirs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(momentum=0.9, weight_decay=0.0, eps=1e-6),
        dict(momentum=0.5, weight_decay=0.1, eps=1e-6),
        dict(momentum=0.0, weight_decay=0.0, eps=1e-3),
    ],
    ids=["default", "momentum-decay", "no-momentum"],
)
def test_madgrad_is_pytorch_optimizer_madgrad(kwargs):
    po = _pytorch_optimizer()
    init, grad = problem()
    ours = run_jax(gx.madgrad(LR, **kwargs), init, grad)
    theirs = run_torch(lambda p: po.MADGRAD(p, lr=LR, foreach=False, **kwargs), init, grad)
    assert_same_iterates(ours, theirs)


def test_madgrad_decoupled_decay_of_pytorch_optimizer_is_not_madgrad():
    """Negative control: pytorch-optimizer's weight_decouple=True is another method."""
    po = _pytorch_optimizer()
    init, grad = problem()
    ours = run_jax(gx.madgrad(LR, weight_decay=0.1), init, grad)
    theirs = run_torch(
        lambda p: po.MADGRAD(p, lr=LR, weight_decay=0.1, weight_decouple=True, foreach=False),
        init,
        grad,
    )
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_same_iterates(ours, theirs)


# --------------------------------------------------------------------- noisy SGD


def test_noisy_sgd_same_seed_same_noise_as_optax_for_every_form_of_the_key():
    init, grad = problem()
    theirs = run_optax(optax.noisy_sgd(LR, key=5), init, grad)
    for tx in (
        gx.noisy_sgd(LR, key=5),
        gx.noisy_sgd(LR, key=jax.random.key(5)),
        gx.noisy_sgd(LR, seed=5),
    ):
        assert_same_iterates(run_jax(tx, init, grad), theirs)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_same_iterates(run_jax(gx.noisy_sgd(LR, key=6), init, grad), theirs)


@pytest.mark.parametrize(("eta", "gamma"), [(0.01, 0.55), (0.5, 1.0), (2.0, 0.0)])
def test_noisy_sgd_noise_variance_follows_the_schedule(eta, gamma):
    """On zero gradients, ``-u_t / lr`` is the noise: its sample variance at each step t is
    eta / t**gamma (Neelakantan et al. 2015) within the 5-sigma band of a chi-square
    estimate from n = 40,000 draws, and its mean is 0."""
    n, lr, steps = 40_000, 0.5, 8
    zeros = {"a": jnp.zeros(30_000), "b": jnp.zeros((100, 100))}
    tx = gx.noisy_sgd(lr, eta=eta, gamma=gamma, key=0)
    state = tx.init(zeros)
    update = jax.jit(tx.update)
    for t in range(1, steps + 1):
        u, state = update(zeros, state)
        z = -np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(u)]) / lr
        want = eta / t**gamma
        got = float(np.mean(z * z))
        band = 5 * want * math.sqrt(2 / n)
        assert abs(got - want) < band, f"step {t}: variance {got:.5g}, expected {want:.5g}"
        assert abs(float(np.mean(z))) < 5 * math.sqrt(want / n)
