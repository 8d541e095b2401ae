"""Optimistic gradients: the current gradient extrapolated by its change since the last step."""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation


class ScaleByOptimisticGradientState(NamedTuple):
    """Whether no update has been made yet, and the previous gradient (optax's state)."""

    is_initial_step: chex.Array
    previous_gradient: chex.ArrayTree


def scale_by_optimistic_gradient(
    alpha: chex.Numeric = 1.0,
    beta: chex.Numeric = 1.0,
) -> GradientTransformation:
    """The generalized optimistic gradient (Mokhtari, Ozdaglar & Pattathil, 2020, "A Unified
    Analysis of Extra-gradient and Optimistic Gradient Methods for Saddle Point Problems").

    ::

        u_t = (alpha + beta) * g_t - beta * g_{t-1}        (g_0 = g_1: u_1 = alpha * g_1)

    ``alpha = beta = 1`` is optimistic gradient descent, ``2 g_t - g_{t-1}`` (Popov,
    1980; Daskalakis et al., 2018). As ``optax.scale_by_optimistic_gradient``; complex
    gradients are combined as they are.

    Args:
      alpha: non-negative weight of the current gradient.
      beta: non-negative weight of the change ``g_t - g_{t-1}``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_optimistic_gradient
      >>> tx = scale_by_optimistic_gradient()
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> u, state = tx.update(jnp.array([3.0]), state)
      >>> u  # 2 * 3 - 1
      Array([5.], dtype=float32)
    """
    _checks.non_negative("alpha", alpha, allow_schedule=False)
    _checks.non_negative("beta", beta, allow_schedule=False)

    def init_fn(params):
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.ones([], jnp.bool_), previous_gradient=_tree.zeros_like(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(
            updates, state.previous_gradient, "scale_by_optimistic_gradient", allow_complex=True
        )

        def leaf(g, prev):
            g32, p32 = _tree.to_compute(g), _tree.to_compute(prev)
            dtype = _tree.promote(g32.dtype, p32.dtype)
            g32, p32 = g32.astype(dtype), p32.astype(dtype)
            p32 = jnp.where(state.is_initial_step, g32, p32)
            a, b = jnp.asarray(alpha).astype(dtype), jnp.asarray(beta).astype(dtype)
            return _tree.cast_like((a + b) * g32 - b * p32, g)

        out = _tree.map_inexact(leaf, updates, state.previous_gradient)
        previous = _tree.map_inexact(_tree.cast_like, updates, state.previous_gradient)
        return out, ScaleByOptimisticGradientState(
            is_initial_step=jnp.zeros([], jnp.bool_), previous_gradient=previous
        )

    return transformation(init_fn, update_fn)
