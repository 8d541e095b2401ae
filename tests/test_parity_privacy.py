"""Parity with optax.contrib's differential privacy: ``differentially_private_aggregate`` and
``dpsgd`` take optax's arguments, keep optax's state fields, and draw optax's noise.

Each case runs both for 25 steps on per-example gradients of a least-squares problem
(``jax.vmap(jax.grad(loss))``, so every gradient depends on the iterate) and compares the
updates and the parameters after every step to rtol 1e-6 in float32, with noise (the same
key gives the same draws) and without.
"""

from __future__ import annotations

import warnings
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests._require import require
from tests.test_signatures import signature_mismatches

contrib = require("optax.contrib", why="optax.contrib's differential privacy parity")

STEPS = 25
RTOL, ATOL = 1e-6, 1e-7
BATCH = 8


def problem(seed: int = 0) -> tuple[Any, Any]:
    """Initial params and per-example gradients of a two-layer least-squares loss."""
    rng = np.random.default_rng(seed)
    params = {
        "w": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(3,)), jnp.float32),
        "s": jnp.asarray(rng.normal(), jnp.float32),
    }
    xs = [jnp.asarray(rng.normal(size=(BATCH, 5)) * 3.0, jnp.float32) for _ in range(STEPS)]
    ys = [jnp.asarray(rng.normal(size=(BATCH, 3)), jnp.float32) for _ in range(STEPS)]

    def loss(p: Any, x: Any, y: Any) -> Any:
        return jnp.sum((p["s"] * (x @ p["w"]) + p["b"] - y) ** 2)

    per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))

    def grads(p: Any, t: int) -> Any:
        return per_example(p, xs[t], ys[t])

    return params, grads


def trajectory(tx: Any, *, jit: bool = True) -> list[tuple[Any, Any]]:
    params, grads = problem()
    state = tx.init(params)
    update = jax.jit(tx.update) if jit else tx.update
    out = []
    for t in range(STEPS):
        u, state = update(grads(params, t), state, params)
        params = jax.tree.map(lambda p, d: p + d, params, u)
        out.append((u, params))
    return out


def assert_same(ours: list[Any], theirs: list[Any], rtol: float = RTOL) -> None:
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        chex.assert_trees_all_close(a, b, rtol=rtol, atol=ATOL, custom_message=f"step {t + 1}")


def differs(ours: list[Any], theirs: list[Any]) -> bool:
    try:
        assert_same(ours, theirs)
    except AssertionError:
        return True
    return False


def optax_dpsgd(*args: Any, **kwargs: Any) -> Any:
    """optax.contrib.dpsgd (it passes its seed on under a deprecated name: that warning is
    optax's own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return contrib.dpsgd(*args, **kwargs)


# ----------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["differentially_private_aggregate", "dpsgd"])
def test_signature_is_optax_contribs(name: str):
    assert signature_mismatches(getattr(gx, name), getattr(contrib, name)) == []


def test_state_has_optax_contribs_fields():
    assert (
        gx.DifferentiallyPrivateAggregateState._fields
        == contrib.DifferentiallyPrivateAggregateState._fields
    )


# ----------------------------------------------------------------------- aggregate

AGGREGATE = [
    (1.0, 0.0, 0),
    (0.5, 0.0, 3),
    (2.0, 1.1, 42),
    (0.3, 4.0, 7),
]


@pytest.mark.parametrize("l2_norm_clip,noise_multiplier,key", AGGREGATE)
@pytest.mark.parametrize("typed", [False, True], ids=["int-key", "typed-key"])
def test_aggregate_matches_optax(
    l2_norm_clip: float, noise_multiplier: float, key: int, typed: bool
):
    k = jax.random.key(key) if typed else key
    ours = trajectory(gx.differentially_private_aggregate(l2_norm_clip, noise_multiplier, k))
    theirs = trajectory(contrib.differentially_private_aggregate(l2_norm_clip, noise_multiplier, k))
    assert_same(ours, theirs)


def test_aggregate_seed_keyword_matches_optax():
    ours = trajectory(gx.differentially_private_aggregate(1.0, 1.0, seed=5))
    with pytest.warns(DeprecationWarning):
        tx = contrib.differentially_private_aggregate(1.0, 1.0, seed=5)
    assert_same(ours, trajectory(tx))


def test_aggregate_eager_matches_optax_eager():
    ours = trajectory(gx.differentially_private_aggregate(1.0, 2.0, 9), jit=False)
    theirs = trajectory(contrib.differentially_private_aggregate(1.0, 2.0, 9), jit=False)
    assert_same(ours, theirs)


def test_aggregate_negative_controls():
    """Another key, another multiplier or another bound does not match."""
    ours = trajectory(gx.differentially_private_aggregate(1.0, 1.0, 1))
    assert not differs(ours, trajectory(contrib.differentially_private_aggregate(1.0, 1.0, 1)))
    assert differs(ours, trajectory(contrib.differentially_private_aggregate(1.0, 1.0, 2)))
    assert differs(ours, trajectory(contrib.differentially_private_aggregate(1.0, 1.05, 1)))
    ours = trajectory(gx.differentially_private_aggregate(1.0, 0.0, 1))
    assert differs(ours, trajectory(contrib.differentially_private_aggregate(1.05, 0.0, 1)))


# ----------------------------------------------------------------------------- dpsgd

DPSGD = [
    dict(learning_rate=0.01, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0),
    dict(learning_rate=0.01, l2_norm_clip=1.0, noise_multiplier=1.1, seed=0),
    dict(learning_rate=0.005, l2_norm_clip=2.0, noise_multiplier=0.7, seed=3, momentum=0.9),
    dict(
        learning_rate=0.005,
        l2_norm_clip=0.5,
        noise_multiplier=1.5,
        seed=8,
        momentum=0.8,
        nesterov=True,
    ),
]


@pytest.mark.parametrize("kwargs", DPSGD, ids=str)
def test_dpsgd_matches_optax(kwargs: dict[str, Any]):
    assert_same(trajectory(gx.dpsgd(**kwargs)), trajectory(optax_dpsgd(**kwargs)))


def test_dpsgd_positional_arguments_match_optax():
    args = (0.01, 1.5, 0.9, 4, 0.9, True)
    assert_same(trajectory(gx.dpsgd(*args)), trajectory(optax_dpsgd(*args)))


@pytest.mark.parametrize("nesterov", [False, True])
def test_dpsgd_nesterov_flag_selects_optax_variant(nesterov: bool):
    """nesterov selects optax's Nesterov trace; the other setting must not match."""
    kw = dict(learning_rate=0.01, l2_norm_clip=1.0, noise_multiplier=0.5, seed=1, momentum=0.9)
    ours = trajectory(gx.dpsgd(**kw, nesterov=nesterov))
    assert not differs(ours, trajectory(optax_dpsgd(**kw, nesterov=nesterov)))
    assert differs(ours, trajectory(optax_dpsgd(**kw, nesterov=not nesterov)))


def test_dpsgd_momentum_negative_control():
    kw = dict(learning_rate=0.01, l2_norm_clip=1.0, noise_multiplier=0.5, seed=1)
    ours = trajectory(gx.dpsgd(**kw, momentum=0.9))
    assert differs(ours, trajectory(optax_dpsgd(**kw)))
    assert differs(ours, trajectory(optax_dpsgd(**kw, momentum=0.8)))


@pytest.mark.parametrize("noise_multiplier", [0.0, 1.0])
def test_aggregate_complex_gradients_match_optax(noise_multiplier: float):
    """A complex leaf counts |g|**2 in the example's norm and gets optax's complex noise."""
    rng = np.random.default_rng(3)
    params = {"a": jnp.zeros(3, jnp.complex64), "b": jnp.zeros(2)}
    ours_tx = gx.differentially_private_aggregate(1.0, noise_multiplier, 0)
    theirs_tx = contrib.differentially_private_aggregate(1.0, noise_multiplier, 0)
    ours_state, theirs_state = ours_tx.init(params), theirs_tx.init(params)
    for t in range(5):
        a = rng.normal(size=(BATCH, 3)) + 1j * rng.normal(size=(BATCH, 3))
        grads = {"a": jnp.asarray(a, jnp.complex64), "b": jnp.asarray(rng.normal(size=(BATCH, 2)))}
        ours, ours_state = ours_tx.update(grads, ours_state, params)
        with jax.numpy_dtype_promotion("standard"):  # optax promotes complex and real
            theirs, theirs_state = theirs_tx.update(grads, theirs_state, params)
        chex.assert_trees_all_close(ours, theirs, rtol=RTOL, atol=ATOL, custom_message=f"{t}")
