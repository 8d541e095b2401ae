"""Momentum: the heavy-ball and Nesterov traces."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
)


class TraceState(NamedTuple):
    """The momentum buffer ``v``."""

    trace: chex.ArrayTree


def scale_by_momentum(
    decay: chex.Numeric = 0.9,
    *,
    nesterov: bool = False,
    ema: bool = False,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """Momentum: heavy ball (Polyak, 1964) or Nesterov (Sutskever et al., 2013).

    Heavy-ball form (``ema=False``, as torch and optax)::

        v_t = decay * v_{t-1} + g_t          u_t = v_t
        nesterov: u_t = g_t + decay * v_t

    EMA form (``ema=True``, as many tutorials write it)::

        v_t = decay * v_{t-1} + (1 - decay) * g_t    u_t = v_t
        nesterov: u_t = decay * v_t + (1 - decay) * g_t

    The Nesterov forms are the reformulation (Bengio et al., 2013) in which
    the parameters are stored at the look-ahead point, so no gradient has to be
    taken at ``theta + decay * v``.

    Args:
      decay: momentum coefficient in ``[0, 1)`` (or a schedule).
      nesterov: use Nesterov's accelerated gradient.
      ema: average instead of summing (the updates are then ``1 - decay`` times smaller).
      accumulator_dtype: dtype of ``v``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_momentum(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u
      Array([1.5], dtype=float32)
    """
    _checks.decay_rate("decay", decay, allow_schedule=False)
    accumulator_dtype = _tree.canonical_dtype(accumulator_dtype, "accumulator_dtype")
    weight = None if ema else 1.0

    def init_fn(params):
        return TraceState(trace=_tree.zeros_like(params, accumulator_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _tree.check_updates(updates, state.trace, "scale_by_momentum")
        trace = _tree.ema(state.trace, updates, decay, weight=weight)
        if nesterov:
            out = _tree.map_inexact(lambda g, t: _nesterov_out(g, t, decay, weight), updates, trace)
        else:
            out = _tree.map_inexact(lambda g, t: _tree.cast_like(t, g), updates, trace)
        return out, TraceState(trace=trace)

    return GradientTransformation(init_fn, update_fn)


def _nesterov_out(g, v, decay, weight):
    g32 = _tree.to_compute(g)
    d = jnp.asarray(decay).astype(g32.dtype)
    w = (1 - d) if weight is None else jnp.asarray(weight).astype(g32.dtype)
    return _tree.cast_like(d * v.astype(g32.dtype) + w * g32, g)
