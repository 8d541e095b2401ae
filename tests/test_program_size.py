"""The default path's compiled program grows with the leaves no faster than optax's.

Compile time on trees of many leaves follows the number of operations per leaf, so the
scalars of a step (coefficients, bias corrections, the learning rate) must be formed
once per step, not once per leaf. Counting the lowered operations is exact and cheap;
the times themselves are measured by ``make bench``.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import optax
import pytest

import gradxform as gx

CASES = {
    "adam": (lambda: gx.adam(1e-3), lambda: optax.adam(1e-3)),
    "adamw": (lambda: gx.adamw(1e-3), lambda: optax.adamw(1e-3)),
    "sgd-momentum": (lambda: gx.sgd(1e-2, momentum=0.9), lambda: optax.sgd(1e-2, momentum=0.9)),
    "nesterov": (
        lambda: gx.sgd(1e-2, momentum=0.9, nesterov=True),
        lambda: optax.sgd(1e-2, momentum=0.9, nesterov=True),
    ),
}


def operations(tx, leaves: int) -> int:
    params = [jnp.zeros((7,), jnp.float32) for _ in range(leaves)]

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return jax.tree.map(jnp.add, p, u), s

    with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int32 counts
        text = jax.jit(step).lower(params, tx.init(params), params).as_text()
    return len(re.findall(r"= stablehlo\.", text))


def per_leaf(make) -> float:
    return (operations(make(), 8) - operations(make(), 4)) / 4


@pytest.mark.parametrize("name", list(CASES))
def test_operations_per_leaf_no_more_than_optax(name):
    ours, theirs = CASES[name]
    mine, optax_ops = per_leaf(ours), per_leaf(theirs)
    assert mine == int(mine) and mine > 0, mine
    assert mine <= optax_ops, f"{name}: {mine} operations per leaf, optax {optax_ops}"
