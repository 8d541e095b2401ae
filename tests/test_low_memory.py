"""bfloat16 moments for the Adam family: half the state, float32 arithmetic, same accuracy.

Stated tolerance: training the digits MLP with bfloat16 ``mu`` and ``nu`` ends
within 2 percentage points of test accuracy, and within 10 % of the final
training loss, of the same run with float32 moments.
"""

from __future__ import annotations

import functools
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx

ACCURACY_TOLERANCE = 0.02
LOSS_TOLERANCE = 0.10

# The Adam-family primitives, each with both moment knobs.
PRIMITIVES = {
    "adam": gx.scale_by_adam,
    "adam-nesterov": functools.partial(gx.scale_by_adam, nesterov=True),
    "amsgrad": gx.scale_by_amsgrad,
    "adamax": gx.scale_by_adamax,
    "radam": gx.scale_by_radam,
    "adabelief": gx.scale_by_belief,
    "yogi": gx.scale_by_yogi,
}

NAMED = {
    "adam": gx.adam,
    "adamw": gx.adamw,
    "adamax": gx.adamax,
    "adamaxw": gx.adamaxw,
    "nadam": gx.nadam,
    "nadamw": gx.nadamw,
    "amsgrad": gx.amsgrad,
    "radam": gx.radam,
    "adabelief": gx.adabelief,
    "yogi": gx.yogi,
    "lamb": gx.lamb,
}


def low_memory(name: str, learning_rate: float, dtype) -> gx.GradientTransformation:
    return gx.chain(
        PRIMITIVES[name](mu_dtype=dtype, nu_dtype=dtype), gx.scale_by_learning_rate(learning_rate)
    )


@pytest.mark.parametrize("name", list(NAMED))
def test_named_optimizer_has_mu_dtype(name):
    assert "mu_dtype" in inspect.signature(NAMED[name]).parameters


@pytest.mark.parametrize("name", list(NAMED))
def test_named_optimizer_has_nu_dtype(name):
    assert "nu_dtype" in inspect.signature(NAMED[name]).parameters


@pytest.mark.parametrize("name", list(PRIMITIVES))
def test_bfloat16_moments_halve_the_state_and_track_float32(name):
    params = {"w": jnp.linspace(-1.0, 1.0, 64).reshape(8, 8), "b": jnp.zeros(8)}
    rng = np.random.default_rng(0)
    grads = [
        jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        for _ in range(5)
    ]
    runs = {}
    for dtype in (None, jnp.bfloat16):
        tx = low_memory(name, 0.01, dtype)
        state = tx.init(params)
        step = jax.jit(tx.update)
        for g in grads:
            updates, state = step(g, state, params)
            chex.assert_trees_all_equal_dtypes(updates, g)
            chex.assert_tree_all_finite(updates)
        runs[dtype] = (updates, state)
    f32_bytes = sum(x.nbytes for x in jax.tree.leaves(runs[None][1]) if x.ndim)
    bf16_bytes = sum(x.nbytes for x in jax.tree.leaves(runs[jnp.bfloat16][1]) if x.ndim)
    assert bf16_bytes * 2 == f32_bytes
    for leaf in jax.tree.leaves(runs[jnp.bfloat16][1]):
        assert leaf.dtype in (jnp.bfloat16, jnp.int32)
    # bfloat16 keeps 8 bits of mantissa: each stored moment is within 2**-8 of float32.
    chex.assert_trees_all_close(runs[jnp.bfloat16][0], runs[None][0], rtol=3e-2, atol=1e-4)


@pytest.mark.parametrize("name", ["adam", "adamw", "adabelief"])
def test_digits_bfloat16_moments_within_tolerance_of_float32(name):
    from gradxform import playground

    data = playground.load_digits()
    make = NAMED[name]
    full = playground.train_digits(make(3e-3), data, epochs=8)
    half = playground.train_digits(
        make(3e-3, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16), data, epochs=8
    )
    assert full.test_accuracy > 0.9
    assert abs(half.test_accuracy - full.test_accuracy) <= ACCURACY_TOLERANCE, (full, half)
    assert abs(half.final_loss - full.final_loss) <= LOSS_TOLERANCE * full.final_loss + 1e-3
