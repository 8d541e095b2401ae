"""Fromage's shrinkage of the weights (the primitive behind :func:`gradxform.fromage`)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    transformation,
)
from gradxform._transforms.weight_decay import WeightDecaySchedule


def fromage_shrink(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """Add ``(1 / sqrt(1 + eta_t**2) - 1) * theta`` to the updates (Fromage's shrinkage).

    The state is that of ``add_decayed_weights`` with the same (scheduled or constant)
    rate, as optax builds Fromage from it; the rate here is negative, which
    :func:`gradxform.add_decayed_weights` refuses.
    """
    scheduled = callable(learning_rate)

    def init_fn(params):
        del params
        return WeightDecaySchedule(count=_tree.zero_count()) if scheduled else EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "fromage")
        eta: Any = learning_rate(state.count) if scheduled else learning_rate  # type: ignore[operator]

        def step(u, p):
            dtype = _tree.promote(_tree.compute_dtype(u.dtype), p.dtype)
            e = jnp.asarray(eta).astype(dtype)
            shrink = 1 / jnp.sqrt(1 + e * e) - 1
            return (u.astype(dtype) + shrink * p.astype(dtype)).astype(u.dtype)

        out = _tree.map_inexact(step, updates, params)
        if scheduled:
            state = WeightDecaySchedule(count=_tree.safe_increment(state.count))
        return out, state

    return transformation(init_fn, update_fn)
