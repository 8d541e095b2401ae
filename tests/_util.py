"""Helpers shared by the test modules: a parameter tree, gradient sequences, runners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx


def make_params(dtype: Any = jnp.float32) -> dict[str, Any]:
    """A small tree with a matrix, a vector and a scalar leaf."""
    rng = np.random.default_rng(0)
    return {
        "dense": {
            "kernel": jnp.asarray(rng.normal(size=(3, 4)), dtype),
            "bias": jnp.asarray(rng.normal(size=(4,)), dtype),
        },
        "scale": jnp.asarray(rng.normal(), dtype),
    }


def grad_sequence(params: Any, steps: int = 12, seed: int = 1) -> list[Any]:
    """``steps`` random gradient trees shaped like ``params`` (fixed seed)."""
    rng = np.random.default_rng(seed)
    return [
        jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
        for _ in range(steps)
    ]


def run(
    tx: Any,
    params: Any,
    grads: list[Any],
    update: Callable[..., Any] | None = None,
    *,
    jit: bool = False,
) -> tuple[list[Any], Any, Any]:
    """Apply ``tx`` along a gradient sequence: (updates of every step, final params, state)."""
    update = update or (jax.jit(tx.update) if jit else tx.update)
    state = tx.init(params)
    out = []
    for g in grads:
        u, state = update(g, state, params)
        params = gx.apply_updates(params, u)
        out.append(u)
    return out, params, state


def scan_run(tx: Any, params: Any, grads: list[Any]) -> tuple[Any, Any]:
    """The same run as one ``lax.scan`` over the stacked gradients: (final params, state)."""
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *grads)

    def body(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        return (gx.apply_updates(p, u), s), None

    return jax.lax.scan(body, (params, tx.init(params)), stacked)[0]
