"""Parity of the learning-rate-free methods with the libraries that have them.

* optax.contrib's ``dog``, ``dowg``, ``cocob``, ``momo``, ``momo_adam`` and optax's
  ``polyak_sgd`` (same names, same arguments): 25 steps in lockstep on a quadratic
  ``f(x) = 1/2 sum c (x - x*)**2 + f0`` -- both take the gradient and the loss at
  gradxform's iterate, each keeps its own state -- and the updates of every step are
  compared (rtol 1e-5 in float32, and an absolute term of 1e-6 of the step's largest
  update for coordinates far smaller than the rest). The lockstep keeps a float32
  trajectory that amplifies rounding (a Polyak step size is a ratio of sums) from hiding
  or inventing a difference in the update rule.
* pytorch-optimizer's ``AliG`` (Berrada et al., the Polyak step with a cap, ``eps =
  1e-6``) against ``polyak_sgd(max_learning_rate, eps=1e-6)``: independent 25-step
  trajectories, iterates compared at rtol 1e-5.

The methods that read the loss (Polyak's step, MoMo, MoMo-Adam) are battery entries fed
``value=`` (tests/registry.py); their primitives' NumPy references are in the sweep.

pytorch-optimizer 4.1 has no DoG, DoWG, COCOB or MoMo; the authors' packages (``dog``,
``momo``, ``cocob``) are not test dependencies: those are checked against optax only.

Tolerances other than rtol 1e-5 (docs/parity.md):

* COCOB's update is a difference of weights, ``x_0 + bet - x_t``: optax rounds ``x_0 +
  bet`` to the weight's precision first, gradxform forms ``(x_0 - x_t) + bet`` exactly;
  they differ by up to half an ulp of the weights (absolute 2.5e-7 for weights below 4).
* MoMo with a lower bound near the loss (``lower_bound``, ``adapt_lower_bound``): the
  step size divides ``c (f_bar - lb - gamma) + <d, x>``, a sum of O(1) terms, by
  ``||d||**2``; as the loss nears the bound the sum cancels to O(1e-3) and one float32
  rounding of its terms (1e-7) is a 1e-4 change of the step. Those cases compare the
  first 25 steps at rtol 1e-3; the default settings (bound 0, far below the loss) at
  1e-5.
* MoMo-Adam at optax's default ``b2 = 0.999``: optax forms ``1 - b2**t`` from ``b2``
  rounded to float32 (1.3e-5 off at t = 1), gradxform exactly (docs/differences.md);
  at ``b2 = 0.875``, exact in float32, they agree to 1e-5, at 0.999 to 2e-5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests._require import require

optax = require("optax", why="optax and optax.contrib parity")
contrib = require("optax.contrib", why="optax.contrib parity")
# optax defines scale_by_dog and scale_by_dowg next to dog and dowg but does not export them.
optax_dog = require("optax.contrib._dog", why="optax's scale_by_dog and scale_by_dowg")

STEPS = 25
RTOL = 1e-5
# COCOB: half an ulp of a float32 weight below 4 (see the module docstring).
WEIGHT_ULP = 2.5e-7
MOMO_NEAR_BOUND_RTOL = 1e-3


def problem(offset: float = 0.25, seed: int = 0) -> tuple[Any, Callable[[Any], Any]]:
    """Initial params and the loss ``1/2 sum c (x - x*)**2 + offset`` (c in [0.5, 1])."""
    rng = np.random.default_rng(seed)
    params = {
        "w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
        "s": jnp.asarray(rng.normal(), jnp.float32),
    }
    curvature = jax.tree.map(lambda p: jnp.asarray(rng.uniform(0.5, 1.0, p.shape), p.dtype), params)
    target = jax.tree.map(lambda p: jnp.asarray(0.3 * rng.normal(size=p.shape), p.dtype), params)

    def loss(x):
        terms = jax.tree.map(
            lambda xi, c, t: 0.5 * jnp.sum(c * (xi - t) ** 2), x, curvature, target
        )
        return sum(jax.tree.leaves(terms)) + offset

    return params, loss


def lockstep(
    ours: Any, theirs: Any, *, offset: float = 0.25, value_noise: float = 0.0
) -> tuple[list[Any], list[Any]]:
    """Both transformations' updates along gradxform's trajectory (the loss passed as
    ``value``, plus a fixed normal noise of scale ``value_noise``: a mini-batch loss)."""
    params, loss = problem(offset)
    theirs = optax.with_extra_args_support(theirs)  # optax's primitives take no value=
    noise = value_noise * np.random.default_rng(1).normal(size=STEPS).astype(np.float32)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    got, want = [], []
    for t in range(STEPS):
        value, grads = jax.value_and_grad(loss)(params)
        value = value + noise[t]
        u, s_ours = ours.update(grads, s_ours, params, value=value)
        with jax.numpy_dtype_promotion("standard"):  # optax relies on implicit promotion
            v, s_theirs = theirs.update(grads, s_theirs, params, value=value)
        got.append([np.asarray(x, np.float64) for x in jax.tree.leaves(u)])
        want.append([np.asarray(x, np.float64) for x in jax.tree.leaves(v)])
        params = gx.apply_updates(params, u)
    return got, want


def assert_same(got: list[Any], want: list[Any], rtol: float = RTOL, atol: float = 0.0) -> None:
    for t, (xs, ys) in enumerate(zip(got, want, strict=True)):
        scale = max(float(np.max(np.abs(y))) for y in ys)
        for x, y in zip(xs, ys, strict=True):
            np.testing.assert_allclose(
                x, y, rtol=rtol, atol=max(atol, 1e-6 * scale), err_msg=f"step {t + 1}"
            )


def assert_differs(got: list[Any], want: list[Any], rtol: float = RTOL, atol: float = 0.0):
    with pytest.raises(AssertionError):
        assert_same(got, want, rtol, atol)


# ------------------------------------------------------------------------ DoG, DoWG

DOG_CASES = {
    "default": {},
    "distance": {"init_step": ("distance", 0.1)},
    "learning_rate": {"init_step": ("learning_rate", 0.01)},
    "heuristic": {"init_step": ("heuristic", 1e-3)},
    "decay-mask-scaled": {
        "learning_rate": 0.5,
        "init_step": ("distance", 0.1),
        "eps": 1.0,
        "weight_decay": 0.1,
        "mask": {"w": True, "b": False, "s": True},
    },
}


@pytest.mark.parametrize("kwargs", DOG_CASES.values(), ids=DOG_CASES.keys())
def test_dog_matches_optax(kwargs):
    assert_same(*lockstep(gx.dog(**kwargs), contrib.dog(**kwargs)))


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (("heuristic", 1e-2), ("distance", 1e-2)),
        (("learning_rate", 1e-2), ("distance", 1e-2)),
        (("distance", 1e-2), ("learning_rate", 1e-2)),
    ],
    ids=["heuristic-vs-distance", "learning_rate-vs-distance", "distance-vs-learning_rate"],
)
def test_dog_init_step_kinds_differ(ours, theirs):
    """Negative control: each ``init_step`` kind selects its own first step."""
    assert_differs(*lockstep(gx.dog(init_step=ours), contrib.dog(init_step=theirs)))


def test_scale_by_dog_matches_optax():
    init_step = ("distance", 0.1)
    assert_same(*lockstep(gx.scale_by_dog(init_step), optax_dog.scale_by_dog(init_step)))


DOWG_CASES = {
    "default": {},
    "init": {"init_estim_sq_dist": 0.01, "eps": 1e-3},
    "decay-scaled": {"learning_rate": 0.5, "weight_decay": 0.1},
}


@pytest.mark.parametrize("kwargs", DOWG_CASES.values(), ids=DOWG_CASES.keys())
def test_dowg_matches_optax(kwargs):
    assert_same(*lockstep(gx.dowg(**kwargs), contrib.dowg(**kwargs)))


def test_dowg_init_estim_sq_dist_differs_from_eps():
    """Negative control: an explicit ``r_0**2`` is not the default (``eps``)."""
    assert_differs(*lockstep(gx.dowg(init_estim_sq_dist=0.01), contrib.dowg()))


def test_scale_by_dowg_matches_optax():
    assert_same(*lockstep(gx.scale_by_dowg(0.01), optax_dog.scale_by_dowg(0.01)))


# ---------------------------------------------------------------------------- COCOB

COCOB_CASES = {
    "default": {},
    "alpha-decay-scaled": {"learning_rate": 0.5, "alpha": 10.0, "weight_decay": 0.01},
    "eps": {"eps": 0.5},
}


@pytest.mark.parametrize("kwargs", COCOB_CASES.values(), ids=COCOB_CASES.keys())
def test_cocob_matches_optax(kwargs):
    assert_same(*lockstep(gx.cocob(**kwargs), contrib.cocob(**kwargs)), atol=WEIGHT_ULP)


def test_cocob_alpha_matters():
    """Negative control: the bet limit ``alpha`` changes the steps."""
    assert_differs(*lockstep(gx.cocob(alpha=10.0), contrib.cocob(alpha=100.0)), atol=WEIGHT_ULP)


def test_scale_by_cocob_matches_optax():
    assert_same(*lockstep(gx.scale_by_cocob(), contrib.scale_by_cocob()), atol=WEIGHT_ULP)


# ----------------------------------------------------------------------------- MoMo

MOMO_CASES = {
    "default": ({}, RTOL),
    "beta-decay-scheduled": (
        {"learning_rate": lambda t: 0.5 * 0.95**t, "beta": 0.5, "weight_decay": 0.1},
        RTOL,
    ),
    "lower_bound": ({"lower_bound": 0.1, "weight_decay": 0.01}, MOMO_NEAR_BOUND_RTOL),
    "adapt_lower_bound": ({"adapt_lower_bound": True}, MOMO_NEAR_BOUND_RTOL),
}


@pytest.mark.parametrize("kwargs,rtol", MOMO_CASES.values(), ids=MOMO_CASES.keys())
def test_momo_matches_optax(kwargs, rtol):
    assert_same(*lockstep(gx.momo(**kwargs), contrib.momo(**kwargs)), rtol=rtol)


def test_momo_adapt_lower_bound_differs():
    """Negative control: the on-the-fly lower bound is not the fixed one."""
    ours, theirs = gx.momo(adapt_lower_bound=True), contrib.momo(adapt_lower_bound=False)
    assert_differs(*lockstep(ours, theirs), rtol=MOMO_NEAR_BOUND_RTOL)


MOMO_ADAM_CASES = {
    "b2-exact": ({"b2": 0.875}, RTOL),
    "default": ({}, 2e-5),
    "decay-scheduled": (
        {"learning_rate": lambda t: 0.1 * 0.95**t, "b1": 0.5, "b2": 0.875, "weight_decay": 0.1},
        RTOL,
    ),
    "lower_bound": (
        {"learning_rate": 0.1, "b2": 0.875, "lower_bound": 0.1, "weight_decay": 0.01},
        MOMO_NEAR_BOUND_RTOL,
    ),
    "adapt_lower_bound": (
        {"learning_rate": 0.1, "b2": 0.875, "adapt_lower_bound": True},
        MOMO_NEAR_BOUND_RTOL,
    ),
}


@pytest.mark.parametrize("kwargs,rtol", MOMO_ADAM_CASES.values(), ids=MOMO_ADAM_CASES.keys())
def test_momo_adam_matches_optax(kwargs, rtol):
    assert_same(*lockstep(gx.momo_adam(**kwargs), contrib.momo_adam(**kwargs)), rtol=rtol)


def test_momo_adam_adapt_lower_bound_differs():
    kwargs = {"learning_rate": 0.1, "b2": 0.875}
    ours = gx.momo_adam(**kwargs, adapt_lower_bound=True)
    theirs = contrib.momo_adam(**kwargs, adapt_lower_bound=False)
    assert_differs(*lockstep(ours, theirs), rtol=MOMO_NEAR_BOUND_RTOL)


# --------------------------------------------------------------------------- Polyak

POLYAK_CASES = {
    "default": {},
    "capped": {"max_learning_rate": 0.3},
    "scaled-eps": {"scaling": 0.5, "eps": 0.1},
    # f_min above the minimum (0.25), and a noisy loss: the gap is sometimes negative.
    "f_min": {"f_min": 0.3},
    "sps+": {"f_min": 0.3, "variant": "sps+"},
}


# The noisy loss of a mini-batch can fall below f_min, where "sps+" takes no step and
# "sps" an ascent step.
NOISE = 1.0


@pytest.mark.parametrize("kwargs", POLYAK_CASES.values(), ids=POLYAK_CASES.keys())
def test_polyak_sgd_matches_optax(kwargs):
    ours, theirs = gx.polyak_sgd(**kwargs), optax.polyak_sgd(**kwargs)
    assert_same(*lockstep(ours, theirs, value_noise=NOISE))


@pytest.mark.parametrize(
    "ours,theirs",
    [
        ({"f_min": 0.3, "variant": "sps+"}, {"f_min": 0.3, "variant": "sps"}),
        ({"f_min": 0.3}, {"f_min": 0.0}),
        ({"max_learning_rate": 0.3}, {"max_learning_rate": 1.0}),
    ],
    ids=["sps+-vs-sps", "f_min", "max_learning_rate"],
)
def test_polyak_flags_differ(ours, theirs):
    """Negative controls: each flag selects its own step."""
    assert_differs(*lockstep(gx.polyak_sgd(**ours), optax.polyak_sgd(**theirs), value_noise=NOISE))


def test_scale_by_polyak_matches_optax():
    kwargs = {"f_min": 0.1, "max_learning_rate": 0.5, "eps": 0.01}
    assert_same(*lockstep(gx.scale_by_polyak(**kwargs), optax.scale_by_polyak(**kwargs)))


# ------------------------------------------------------------ pytorch-optimizer AliG


def _alig_run(max_lr: float) -> list[list[np.ndarray]]:
    torch = require("torch", why="pytorch-optimizer parity")
    pytorch_optimizer = require("pytorch_optimizer", why="AliG parity (Polyak step)")
    params, loss = problem(offset=0.0)
    names = sorted(params)
    tensors = {k: torch.tensor(np.asarray(params[k]), requires_grad=True) for k in names}
    opt = pytorch_optimizer.AliG([tensors[k] for k in names], max_lr=max_lr)
    curvature_loss = _torch_loss(loss, names)
    out = []
    for _ in range(STEPS):
        opt.zero_grad()
        value = curvature_loss(tensors)
        value.backward()
        opt.step(lambda value=value: float(value))
        out.append([tensors[k].detach().numpy().astype(np.float64).copy() for k in names])
    return out


def _torch_loss(loss: Callable[[Any], Any], names: list[str]) -> Callable[[Any], Any]:
    """The same quadratic in torch: its curvature and target read off ``loss``'s Hessian
    diagonal and minimizer (both exact for a separable quadratic)."""
    torch = require("torch", why="pytorch-optimizer parity")
    params, _ = problem(offset=0.0)
    zeros = jax.tree.map(jnp.zeros_like, params)
    ones = jax.tree.map(jnp.ones_like, params)
    g0 = jax.grad(loss)(zeros)  # -c x*
    curvature = jax.tree.map(lambda a, b: a - b, jax.grad(loss)(ones), g0)  # c
    c = {k: torch.tensor(np.asarray(curvature[k])) for k in names}
    t = {k: torch.tensor(np.asarray(-g0[k] / curvature[k])) for k in names}

    def torch_loss(x):
        return sum(0.5 * torch.sum(c[k] * (x[k] - t[k]) ** 2) for k in names)

    return torch_loss


def _gradxform_run(tx: Any) -> list[list[np.ndarray]]:
    params, loss = problem(offset=0.0)
    state, out = tx.init(params), []
    for _ in range(STEPS):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grads, state, params, value=value)
        params = gx.apply_updates(params, updates)
        out.append([np.asarray(params[k], np.float64) for k in sorted(params)])
    return out


@pytest.mark.parametrize("max_lr", [0.5, 2.0])
def test_polyak_sgd_matches_pytorch_optimizer_alig(max_lr):
    ours = _gradxform_run(gx.polyak_sgd(max_learning_rate=max_lr, eps=1e-6))
    assert_same(ours, _alig_run(max_lr))


def test_polyak_sgd_max_learning_rate_is_aligs_max_lr():
    """Negative control: AliG's cap is ``max_learning_rate``, not an unused setting."""
    ours = _gradxform_run(gx.polyak_sgd(max_learning_rate=math.inf, eps=1e-6))
    assert_differs(ours, _alig_run(0.5))


# ------------------------------------------------------- optax.contrib's names and fields

CONTRIB_NAMES = ["dog", "dowg", "cocob", "scale_by_cocob", "momo", "momo_adam"]
CONTRIB_STATES = ["DoGState", "DoWGState", "COCOBState", "MomoState", "MomoAdamState"]


@pytest.mark.parametrize("name", CONTRIB_NAMES)
def test_contrib_factories_take_optax_arguments(name):
    """test_signatures.py compares optax's top-level names; these are optax.contrib's."""
    from tests.test_signatures import signature_mismatches

    assert not signature_mismatches(getattr(gx, name), getattr(contrib, name))


@pytest.mark.parametrize("name", ["scale_by_dog", "scale_by_dowg"])
def test_distance_primitives_take_optax_arguments(name):
    from tests.test_signatures import signature_mismatches

    assert not signature_mismatches(getattr(gx, name), getattr(optax_dog, name))


@pytest.mark.parametrize("name", CONTRIB_STATES)
def test_contrib_states_have_optax_fields(name):
    assert getattr(gx, name)._fields == getattr(contrib, name)._fields


# ------------------------------------------------------------------ a missing loss

LOSS_READERS = {
    "polyak_sgd": lambda: gx.polyak_sgd(max_learning_rate=0.5),
    "scale_by_polyak": lambda: gx.scale_by_polyak(f_min=0.1),
    "momo": lambda: gx.momo(weight_decay=0.01, adapt_lower_bound=True),
    "momo_adam": lambda: gx.momo_adam(learning_rate=0.1, weight_decay=0.01),
}


@pytest.mark.parametrize("make", LOSS_READERS.values(), ids=LOSS_READERS.keys())
def test_loss_readers_need_the_loss(make):
    tx = make()
    params, loss = problem()
    with pytest.raises(TypeError, match="value=loss"):  # a missing argument, as in optax
        tx.update(jax.grad(loss)(params), tx.init(params), params)


def test_scale_by_polyak_reports_the_missing_loss_first():
    """As optax's: without ``value=`` the call fails with a TypeError, whatever else is
    wrong with it (here updates of another structure than the params)."""
    tx = gx.scale_by_polyak()
    params = jnp.array([1.0, -1.0])
    with pytest.raises(TypeError, match="value=loss"):
        tx.update({"other": jnp.ones(3)}, tx.init(params), params)
