"""The one-compile hyperparameter sweep: agreement with separate runs, one compilation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx

RATES = [1e-3, 3e-3, 1e-2, 3e-2, 0.1]


def problem():
    """Least squares on fixed batches: loss depends on the data, so steps differ."""
    rng = np.random.default_rng(0)
    w_true = rng.normal(size=(5, 2)).astype(np.float32)
    x = rng.normal(size=(4, 16, 5)).astype(np.float32)
    y = x @ w_true + 0.1 * rng.normal(size=(4, 16, 2)).astype(np.float32)
    params = {"w": jnp.zeros((5, 2)), "b": jnp.zeros(2)}
    return params, {"x": jnp.asarray(x), "y": jnp.asarray(y)}


def loss_fn(params, batch):
    pred = batch["x"] @ params["w"] + params["b"][None, :]
    return jnp.mean((pred - batch["y"]) ** 2)


def separate_run(factory, params, batches, steps, **kwargs):
    """One ordinary training run, the reference for one row of the sweep."""
    tx = factory(**kwargs)
    n = jax.tree.leaves(batches)[0].shape[0]

    def body(carry, t):
        p, s = carry
        batch = jax.tree.map(lambda b: b[t % n], batches)
        loss, g = jax.value_and_grad(loss_fn)(p, batch)
        u, s = tx.update(g, s, p)
        return (gx.apply_updates(p, u), s), loss

    (p, _), losses = jax.jit(lambda c: jax.lax.scan(body, c, jnp.arange(steps)))(
        (params, tx.init(params))
    )
    return p, np.asarray(losses)


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_sweep_agrees_with_separate_runs(chunk_size):
    params, batches = problem()
    r = gx.lr_sweep(loss_fn, params, batches, gx.adam, RATES, num_steps=30, chunk_size=chunk_size)
    assert r.losses.shape == (len(RATES), 30)
    for k, lr in enumerate(RATES):
        _, want = separate_run(gx.adam, params, batches, 30, learning_rate=lr)
        np.testing.assert_allclose(r.losses[k], want, rtol=1e-5, err_msg=f"learning_rate={lr}")
        np.testing.assert_allclose(r.final_losses[k], want[-3:].mean(), rtol=1e-5)
    assert r.best == RATES[int(np.argmin(r.final_losses))]
    assert not r.diverged.any()


def test_sweep_compiles_once_for_all_values_and_chunks():
    params, batches = problem()
    traces = []

    def counted(p, b):
        traces.append(1)  # runs once per trace, not per step
        return loss_fn(p, b)

    gx.lr_sweep(counted, params, batches, gx.sgd, RATES, num_steps=5, chunk_size=2)
    assert len(traces) == 1  # three chunks (2 + 2 + 1 padded), one compilation


def test_sweep_over_another_hyperparameter_with_fixed_arguments():
    params, batches = problem()
    b1s = [0.0, 0.5, 0.95]
    r = gx.lr_sweep(
        loss_fn, params, batches, gx.adam, b1s, num_steps=12, hyperparam="b1", learning_rate=0.05
    )
    for k, b1 in enumerate(b1s):
        _, want = separate_run(gx.adam, params, batches, 12, learning_rate=0.05, b1=b1)
        np.testing.assert_allclose(r.losses[k], want, rtol=1e-5, err_msg=f"b1={b1}")
    assert not np.allclose(r.losses[0], r.losses[2])  # the value reaches the optimizer


def test_eval_fn_scores_the_final_parameters_and_picks_the_best():
    params, batches = problem()
    valid = jax.tree.map(lambda b: b[0], batches)
    r = gx.lr_sweep(
        loss_fn,
        params,
        batches,
        gx.sgd,
        RATES,
        num_steps=20,
        eval_fn=lambda p: loss_fn(p, valid),
    )
    assert r.scores is not None
    for k, lr in enumerate(RATES):
        final, _ = separate_run(gx.sgd, params, batches, 20, learning_rate=lr)
        np.testing.assert_allclose(r.scores[k], loss_fn(final, valid), rtol=1e-5)
    assert r.best == RATES[int(np.argmin(r.scores))]


def test_diverged_runs_are_marked_and_never_best():
    loss = lambda p, b: 0.5 * 4.0 * jnp.sum((p - b) ** 2)  # curvature 4: stable below 0.5
    r = gx.lr_sweep(loss, jnp.ones(3), jnp.zeros((1, 3)), gx.sgd, [0.1, 0.25, 5.0], num_steps=40)
    assert r.diverged.tolist() == [False, False, True]
    assert np.isnan(r.losses[2, -1]) and np.isfinite(r.losses[2, 0])
    assert r.final_losses[2] == np.inf
    assert r.best == 0.25


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(values=[]), ValueError, "values="),
        (dict(values=[0.1, float("nan")]), ValueError, "values="),
        (dict(values=[[0.1, 0.2]]), ValueError, "values="),
        (dict(num_steps=0), ValueError, "num_steps=0"),
        (dict(chunk_size=0), ValueError, "chunk_size=0"),
        (dict(hyperparam="momentum_dtype"), ValueError, "hyperparam='momentum_dtype'"),
        (dict(hyperparam="beta"), ValueError, "hyperparam='beta'"),
        (dict(eval_fn=3), TypeError, "eval_fn=3"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    params, batches = problem()
    args = {"values": RATES, "num_steps": 3, **kwargs}
    if "hyperparam" in kwargs:
        args["learning_rate"] = 0.1
    with pytest.raises(error, match=match):
        gx.lr_sweep(loss_fn, params, batches, gx.sgd, **args)
