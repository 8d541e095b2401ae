"""Scaling by constants, learning rates and schedules."""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    Schedule,
    from_function,
    identity,
    transformation,
)


class ScaleByScheduleState(NamedTuple):
    """The number of updates made so far (int32, saturating)."""

    count: chex.Array


ScaleState = EmptyState
"""The state of :func:`scale` (optax's name for it): an :class:`EmptyState`."""


def scale(step_size: chex.Numeric) -> GradientTransformation:
    """Multiply every update by a constant: ``u <- step_size * u``.

    Floating-point leaves are multiplied in at least float32 and keep their
    dtype. Integer and boolean leaves are multiplied too, with JAX's type
    promotion, as optax's ``scale`` does: ``scale(0.5)`` turns an int32 update
    into a float32 one (``scale(2)`` keeps it int32).

    Args:
      step_size: a finite number.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.scale(-2.0).update(jnp.ones(2), gx.EmptyState())[0]
      Array([-2., -2.], dtype=float32)
      >>> gx.scale(0.5).update(jnp.array([3, 4]), gx.EmptyState())[0]
      Array([1.5, 2. ], dtype=float32)
    """
    _checks.finite("step_size", step_size, allow_schedule=False)

    def f(updates, params):
        del params

        def one(u):
            if _tree.is_inexact(u):
                dtype = _tree.compute_dtype(u.dtype)
                return (u.astype(dtype) * jnp.asarray(step_size).astype(dtype)).astype(u.dtype)
            with jax.numpy_dtype_promotion("standard"):
                out = step_size * jnp.asarray(u)
            return out.astype(out.dtype)  # a strongly typed result, as the update of a leaf

        return jax.tree.map(one, updates)

    return from_function(f)


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
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> GradientTransformation:
    """Multiply the updates by the learning rate ``eta`` (``-eta`` by default).

    ``u <- -eta_t * u``: with ``flip_sign=True`` the result is a descent step
    to be added to the parameters with :func:`apply_updates`. ``None`` means no
    scaling at all (the identity, whatever ``flip_sign``), as in optax.
    Integer and boolean leaves pass through unchanged. When the params are
    given, updates that do not fit them (a missing leaf, another shape, an
    integer update for a floating-point parameter, a complex one for a real
    parameter) are refused with the key path of the leaf.

    Args:
      learning_rate: a non-negative float, JAX scalar, or schedule ``step -> eta``;
        or ``None``.
      flip_sign: whether to negate (descent) or not (ascent).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_learning_rate(0.1)
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
      Array([-0.1, -0.1], dtype=float32)
    """
    if learning_rate is None:
        return identity()
    _checks.non_negative("learning_rate", learning_rate)
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        schedule = learning_rate
        inner = scale_by_schedule(lambda count: sign * schedule(count))
    else:
        factor = sign * learning_rate
        inner = from_function(lambda updates, params: _tree.scale_tree(updates, factor))

    def update_fn(updates, state, params=None, **extra_args):
        # The last step of every optimizer: the place where a gradient that does not fit
        # its parameter (an integer gradient for a float parameter, a complex one for a
        # real parameter) is refused by key path, stateless optimizers included.
        if params is not None:
            _checks.check_same_layout(updates, params, what="updates", against="params")
        return inner.update(updates, state, params, **extra_args)

    return transformation(inner.init, update_fn)


def normalize_by_update_norm(
    scale_factor: chex.Numeric = 1.0, eps: chex.Numeric = 1e-6
) -> GradientTransformation:
    """Divide the updates by their global norm: a step of length ``scale_factor``.

    ::

        n = sqrt(sum_i ||u_i||**2)             (over every floating leaf)
        u_i <- scale_factor * u_i / (n + eps)

    as optax's ``normalize_by_update_norm``. The norm and the division are
    computed in at least float32; each leaf keeps its dtype, and integer leaves
    pass through.

    Args:
      scale_factor: a finite non-zero length of the step (negative: descent).
      eps: a non-negative term added to the norm (keeps a zero update finite).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.normalize_by_update_norm(scale_factor=-1.0, eps=0.0)
      >>> tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, gx.EmptyState())[0]
      {'a': Array([-0.6], dtype=float32), 'b': Array([-0.8], dtype=float32)}
    """
    _checks.finite("scale_factor", scale_factor, allow_schedule=False)
    if _checks.is_literal_zero(scale_factor):
        raise ValueError(f"scale_factor={scale_factor!r} must not be zero (optax divides by it)")
    _checks.non_negative("eps", eps, allow_schedule=False)

    def f(updates, params):
        del params
        norm = _tree.global_norm(updates)

        def one(u):
            dtype = _tree.promote(_tree.compute_dtype(u.dtype), norm.dtype)
            real = jnp.finfo(dtype).dtype
            denom = (norm.astype(real) + jnp.asarray(eps).astype(real)) / jnp.asarray(
                scale_factor
            ).astype(real)
            return (u.astype(dtype) / denom.astype(dtype)).astype(u.dtype)

        return _tree.map_inexact(one, updates)

    return from_function(f)
