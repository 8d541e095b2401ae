"""Scaling by constants, learning rates and schedules."""

from __future__ import annotations

from typing import NamedTuple

import chex

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    ScalarOrSchedule,
    Schedule,
    from_function,
    transformation,
)


class ScaleByScheduleState(NamedTuple):
    """The number of updates made so far (int32, saturating)."""

    count: chex.Array


def scale(step_size: chex.Numeric) -> GradientTransformation:
    """Multiply every update by a constant: ``u <- step_size * u``.

    Args:
      step_size: a finite number.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.scale(-2.0).update(jnp.ones(2), gx.EmptyState())[0]
      Array([-2., -2.], dtype=float32)
    """
    _checks.finite("step_size", step_size, allow_schedule=False)
    return from_function(lambda updates, params: _tree.scale_tree(updates, step_size))


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiply the updates by ``step_size_fn(t)``, with ``t = 0`` at the first update.

    Args:
      step_size_fn: a schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_schedule(lambda t: 1.0 / (t.astype(jnp.float32) + 1))
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u
      Array([0.5], dtype=float32)
    """
    if not callable(step_size_fn):
        raise TypeError(f"step_size_fn={step_size_fn!r} must be callable (a schedule)")

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=_tree.zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        updates = _tree.scale_tree(updates, step_size_fn(state.count))
        return updates, ScaleByScheduleState(count=_tree.safe_increment(state.count))

    return transformation(init_fn, update_fn)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> GradientTransformation:
    """Multiply the updates by the learning rate ``eta`` (``-eta`` by default).

    ``u <- -eta_t * u``: with ``flip_sign=True`` the result is a descent step
    to be added to the parameters with :func:`apply_updates`.

    Args:
      learning_rate: a non-negative float, JAX scalar, or schedule ``step -> eta``.
      flip_sign: whether to negate (descent) or not (ascent).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_learning_rate(0.1)
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
      Array([-0.1, -0.1], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        schedule = learning_rate
        return scale_by_schedule(lambda count: sign * schedule(count))
    return scale(sign * learning_rate)
