"""Robustness to non-finite gradients: ``apply_if_finite`` and dynamic loss scaling.

Both wrappers compute the inner update on every step and then *select*,
leaf by leaf, between the new and the old inner state (``jnp.where``, no
``lax.cond``), so a skipped step leaves the inner state bit for bit as it was,
including its step counter, and the returned updates are exact zeros.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    transformation,
    with_extra_args_support,
)


def _select_updates(take_new: jax.Array, updates: chex.ArrayTree) -> chex.ArrayTree:
    """``updates`` where ``take_new`` else exact zeros (integer leaves pass through)."""
    return _tree.map_inexact(lambda u: jnp.where(take_new, u, jnp.zeros_like(u)), updates)


# ------------------------------------------------------------------ apply_if_finite


class ApplyIfFiniteState(NamedTuple):
    """Counters of non-finite steps and the inner state.

    Attributes:
      notfinite_count: consecutive non-finite steps up to now (int32; 0 after a finite one).
      last_finite: whether the last step was finite (bool).
      total_notfinite: all non-finite steps so far (int32, saturating).
      inner_state: the state of the wrapped transformation.
    """

    notfinite_count: chex.Array
    last_finite: chex.Array
    total_notfinite: chex.Array
    inner_state: Any


def apply_if_finite(inner: Any, max_consecutive_errors: int) -> GradientTransformation:
    """Skip the steps whose gradients (or inner updates) are not all finite.

    A step is *finite* when every floating-point entry of the gradients and
    of the updates ``inner`` computes from them is finite. On a non-finite
    step the updates are exact zeros and the inner state is returned bit for
    bit unchanged (its step count does not advance), so the parameters stay as
    they are; ``notfinite_count`` and ``total_notfinite`` go up by one. A
    finite step resets ``notfinite_count`` to 0.

    After ``max_consecutive_errors`` consecutive skipped steps, the next
    non-finite step is *applied* (inner state and updates as ``inner`` made
    them, which typically makes the parameters NaN): an optimizer that only
    ever sees broken gradients fails visibly instead of stalling forever. With
    ``max_consecutive_errors=0`` nothing is ever skipped (only counted).

    Args:
      inner: the transformation to protect (gradxform or optax).
      max_consecutive_errors: how many non-finite steps in a row to skip (int >= 0).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale
      >>> from gradxform import apply_if_finite
      >>> tx = apply_if_finite(scale(-1.0), max_consecutive_errors=3)
      >>> u, state = tx.update(jnp.array([1.0, jnp.inf]), tx.init(jnp.zeros(2)))
      >>> u, state.notfinite_count
      (Array([0., 0.], dtype=float32), Array(1, dtype=int32))
    """
    _checks.transformation("inner", inner)
    inner = with_extra_args_support(inner)
    _checks.integer("max_consecutive_errors", max_consecutive_errors, low=0)

    def init_fn(params):
        return ApplyIfFiniteState(
            notfinite_count=_tree.zero_count(),
            last_finite=jnp.ones([], jnp.bool_),
            total_notfinite=_tree.zero_count(),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
        finite = _tree.all_finite(updates) & _tree.all_finite(new_updates)
        notfinite_count = jnp.where(
            finite, jnp.int32(0), _tree.safe_increment(state.notfinite_count)
        )
        apply = finite | (notfinite_count > max_consecutive_errors)
        total = jnp.where(
            finite, state.total_notfinite, _tree.safe_increment(state.total_notfinite)
        )
        return _select_updates(apply, new_updates), ApplyIfFiniteState(
            notfinite_count=notfinite_count,
            last_finite=finite,
            total_notfinite=total,
            inner_state=_tree.select_tree(apply, new_inner, state.inner_state),
        )

    return transformation(init_fn, update_fn, inner=(inner,))


# ------------------------------------------------------------- dynamic loss scaling


class DynamicLossScaleState(NamedTuple):
    """The current loss scale, its counters, and the inner state.

    Attributes:
      loss_scale: the factor to multiply the loss by at the next step (float32).
      good_steps: finite steps since the scale last changed (int32).
      total_skipped: steps skipped because of overflow (int32, saturating).
      inner_state: the state of the wrapped transformation.
    """

    loss_scale: chex.Array
    good_steps: chex.Array
    total_skipped: chex.Array
    inner_state: Any


def dynamic_loss_scaling(
    inner: Any,
    *,
    initial_scale: float = 2.0**15,
    growth_interval: int = 2000,
    growth_factor: float = 2.0,
    backoff_factor: float = 0.5,
    min_scale: float = 1.0,
) -> GradientTransformation:
    """Dynamic loss scaling for float16 training (Micikevicius et al., 2018,
    "Mixed Precision Training").

    The caller multiplies the loss by ``state.loss_scale`` before taking
    gradients, so that small float16 gradients do not underflow, and passes
    those *scaled* gradients to ``update``. Then::

        g <- g / S                         (in at least float32, cast back)
        finite step:  u = inner(g);  after growth_interval finite steps in a row
                      S <- min(S * growth_factor, float32 max)
        overflow:     u = 0, inner state unchanged,  S <- max(S * backoff_factor, min_scale)

    A step overflows when any gradient (or inner update) entry is NaN or
    infinite; it is skipped exactly as by :func:`apply_if_finite`, always (there
    is no limit on consecutive skips: the scale shrinks until the gradients
    fit, down to ``min_scale``). Keep the parameters in float32 and compute the
    loss in float16, so the unscaled gradients are float32; float16 gradients
    are unscaled in float32 and cast back, and may then underflow.

    Make this wrapper the outermost transformation so that the training loop
    finds the scale at ``state.loss_scale``.

    Args:
      inner: the transformation for the unscaled gradients.
      initial_scale: starting scale, positive and finite.
      growth_interval: number of consecutive finite steps before the scale grows (int >= 1).
      growth_factor: multiplier (>= 1) applied when growing.
      backoff_factor: multiplier in ``(0, 1]`` applied on overflow.
      min_scale: positive lower bound on the scale, at most ``initial_scale``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale
      >>> from gradxform import dynamic_loss_scaling
      >>> tx = dynamic_loss_scaling(scale(-1.0), initial_scale=8.0)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([4.0]), state)         # gradient of 8 * loss
      >>> u, state.loss_scale
      (Array([-0.5], dtype=float32), Array(8., dtype=float32))
      >>> u, state = tx.update(jnp.array([jnp.inf]), state)     # overflow: skip, halve
      >>> u, state.loss_scale
      (Array([0.], dtype=float32), Array(4., dtype=float32))
    """
    _checks.transformation("inner", inner)
    inner = with_extra_args_support(inner)
    _checks.positive("initial_scale", initial_scale, allow_schedule=False)
    _checks.finite("initial_scale", initial_scale, allow_schedule=False)
    _checks.integer("growth_interval", growth_interval, low=1)
    _checks.number(
        "growth_factor",
        growth_factor,
        low=1.0,
        high=float(np.finfo(np.float32).max),
        allow_schedule=False,
    )
    _checks.number(
        "backoff_factor", backoff_factor, low=0.0, high=1.0, low_open=True, allow_schedule=False
    )
    _checks.positive("min_scale", min_scale, allow_schedule=False)
    if min_scale > initial_scale:
        raise ValueError(f"min_scale={min_scale!r} must be <= initial_scale={initial_scale!r}")
    f32_max = jnp.float32(np.finfo(np.float32).max)

    def init_fn(params):
        return DynamicLossScaleState(
            loss_scale=jnp.asarray(initial_scale, jnp.float32),
            good_steps=_tree.zero_count(),
            total_skipped=_tree.zero_count(),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        s = state.loss_scale

        def unscale(g):
            g32 = _tree.to_compute(g)
            return (g32 / s.astype(g32.dtype)).astype(g.dtype)

        unscaled = _tree.map_inexact(unscale, updates)
        new_updates, new_inner = inner.update(unscaled, state.inner_state, params, **extra_args)
        finite = _tree.all_finite(updates) & _tree.all_finite(new_updates)
        good = jnp.where(finite, _tree.safe_increment(state.good_steps), jnp.int32(0))
        grow = finite & (good >= growth_interval)
        grown = jnp.minimum(s * jnp.float32(growth_factor), f32_max)
        shrunk = jnp.maximum(s * jnp.float32(backoff_factor), jnp.float32(min_scale))
        new_scale = jnp.where(finite, jnp.where(grow, grown, s), shrunk)
        return _select_updates(finite, new_updates), DynamicLossScaleState(
            loss_scale=new_scale,
            good_steps=jnp.where(grow, jnp.int32(0), good),
            total_skipped=jnp.where(
                finite, state.total_skipped, _tree.safe_increment(state.total_skipped)
            ),
            inner_state=_tree.select_tree(finite, new_inner, state.inner_state),
        )

    return transformation(init_fn, update_fn, inner=(inner,))
