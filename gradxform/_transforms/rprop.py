"""Rprop: a step size per coordinate, adapted by the sign of successive gradients."""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation


class ScaleByRpropState(NamedTuple):
    """Each coordinate's step size and the signed step kept for the next update (optax's)."""

    step_sizes: chex.ArrayTree
    prev_updates: chex.ArrayTree


def check_rprop_args(
    learning_rate: chex.Numeric,
    eta_minus: chex.Numeric,
    eta_plus: chex.Numeric,
    min_step_size: chex.Numeric,
    max_step_size: chex.Numeric,
    immediate: bool,
) -> None:
    """The arguments :func:`scale_by_rprop` and :func:`gradxform.rprop` share."""
    _checks.positive("learning_rate", learning_rate, allow_schedule=False)
    _checks.number("eta_minus", eta_minus, low=0.0, high=1.0, allow_schedule=False)
    _checks.number("eta_plus", eta_plus, low=1.0, allow_schedule=False)
    _checks.non_negative("min_step_size", min_step_size, allow_schedule=False)
    _checks.positive("max_step_size", max_step_size, allow_schedule=False)
    _checks.boolean("immediate", immediate)
    numbers = (int, float)
    if (
        isinstance(min_step_size, numbers)
        and isinstance(max_step_size, numbers)
        and min_step_size > max_step_size
    ):
        raise ValueError(
            f"min_step_size={min_step_size!r} must not exceed max_step_size={max_step_size!r}"
        )


def scale_by_rprop(
    learning_rate: chex.Numeric,
    eta_minus: chex.Numeric = 0.5,
    eta_plus: chex.Numeric = 1.2,
    min_step_size: chex.Numeric = 1e-6,
    max_step_size: chex.Numeric = 50.0,
    *,
    immediate: bool = False,
) -> GradientTransformation:
    """Rprop's signed, per-coordinate step (Riedmiller & Braun, 1993; Igel & Hüsken's
    iRprop-, 2000).

    Each coordinate keeps a step size ``d`` (``d_0 = learning_rate``). With
    ``s_t = g_t * p_{t-1}``, where ``p_{t-1}`` is the signed step kept by the previous update::

        d_t = clip(d_{t-1} * eta_plus,  min_step_size, max_step_size)   if s_t > 0
        d_t = clip(d_{t-1} * eta_minus, min_step_size, max_step_size)   if s_t < 0
        d_t = d_{t-1}                                                   if s_t = 0
        p_t = 0 if s_t < 0 else d_t * sign(g_t)

    After a change of sign the gradient is forgotten (``p_t = 0``), so the next
    step neither grows nor shrinks the step size (iRprop-). The returned direction
    is to be negated (:func:`gradxform.rprop` does it):

    * ``immediate=False`` (optax's ``scale_by_rprop``): ``u_t = 0`` if ``s_t < 0``,
      else ``p_{t-1}``: the step computed at the previous update is applied one update
      later (the first update is 0).
    * ``immediate=True`` (``torch.optim.Rprop``): ``u_t = p_t``, this update's step.
      The step size is clipped even when ``s_t = 0``, as torch clips it, which only
      matters when ``learning_rate`` lies outside ``[min_step_size, max_step_size]``.

    Args:
      learning_rate: the positive initial step size ``d_0``.
      eta_minus: the factor in ``[0, 1]`` that shrinks a step size after a change of sign.
      eta_plus: the factor ``>= 1`` that grows it while the sign holds.
      min_step_size: the non-negative smallest step size.
      max_step_size: the positive largest step size.
      immediate: apply this update's step now, as torch does (see above).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale_by_rprop
      >>> tx = scale_by_rprop(0.1, immediate=True)
      >>> state = tx.init(jnp.zeros(2))
      >>> u, state = tx.update(jnp.array([3.0, -1.0]), state)
      >>> u, state = tx.update(jnp.array([2.0, 5.0]), state)
      >>> u  # the first sign held (0.1 * 1.2); the second changed: no step
      Array([0.12, 0.  ], dtype=float32)
    """
    check_rprop_args(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, immediate)

    def init_fn(params):
        return ScaleByRpropState(
            step_sizes=_tree.full_like(params, learning_rate), prev_updates=_tree.zeros_like(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(updates, state.step_sizes, "scale_by_rprop")

        def leaf(g, d, p):
            g32, d32, p32 = _tree.to_compute(g), _tree.to_compute(d), _tree.to_compute(p)
            dtype = _tree.promote(g32.dtype, d32.dtype, p32.dtype)
            g32, d32, p32 = g32.astype(dtype), d32.astype(dtype), p32.astype(dtype)
            s = g32 * p32
            factor = jnp.where(s > 0, jnp.asarray(eta_plus, dtype), jnp.asarray(eta_minus, dtype))
            low, high = jnp.asarray(min_step_size, dtype), jnp.asarray(max_step_size, dtype)
            if immediate:
                factor = jnp.where(s == 0, jnp.ones([], dtype), factor)
                d_new = jnp.clip(d32 * factor, low, high)
            else:
                d_new = jnp.where(s == 0, d32, jnp.clip(d32 * factor, low, high))
            p_new = jnp.where(s < 0, jnp.zeros([], dtype), d_new * jnp.sign(g32))
            out = p_new if immediate else jnp.where(s < 0, jnp.zeros([], dtype), p32)
            return (
                _tree.cast_like(out, g),
                _tree.cast_like(d_new, d),
                _tree.cast_like(p_new, p),
            )

        out, step_sizes, prev = _tree.map_unzip(
            lambda g, d, p: leaf(g, d, p) if _tree.is_inexact(g) else (g, d, p),
            updates,
            state.step_sizes,
            state.prev_updates,
        )
        return out, ScaleByRpropState(step_sizes=step_sizes, prev_updates=prev)

    return transformation(init_fn, update_fn)
