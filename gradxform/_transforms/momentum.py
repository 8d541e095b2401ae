"""Momentum: the heavy-ball and Nesterov traces, and the debiased moving average ``ema``.

Complex parameters keep complex traces (as optax): the state must then be
complex, so a real ``accumulator_dtype`` refuses complex updates by key path.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    transformation,
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
      decay: momentum coefficient, a number in ``[0, 1]`` (``1``: a running sum of the
        updates); in ``[0, 1)`` with ``ema=True``.
      nesterov: use Nesterov's accelerated gradient.
      ema: average instead of summing (the updates are then ``1 - decay`` times smaller).
      accumulator_dtype: dtype of ``v`` (complex for complex parameters); default:
        each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_momentum(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u
      Array([1.5], dtype=float32)
    """
    if ema:
        _checks.decay_rate("decay", decay, allow_schedule=False)
    else:  # the summing form: decay = 1 is a running sum of the updates
        _checks.number("decay", decay, low=0.0, high=1.0, allow_schedule=False)
    accumulator_dtype = _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")

    def init_fn(params):
        return TraceState(trace=_tree.zeros_like(params, accumulator_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _check_trace_updates(updates, state.trace, "scale_by_momentum", accumulator_dtype)
        weight = 1 - jnp.asarray(decay) if ema else 1.0
        trace = _tree.lincomb(decay, state.trace, weight, updates)
        if nesterov:
            out = _tree.lincomb(weight, updates, decay, trace)  # in each gradient's dtype
        else:
            out = _tree.map_inexact(lambda g, t: _tree.cast_like(t, g), updates, trace)
        return out, TraceState(trace=trace)

    return transformation(init_fn, update_fn)


def trace(
    decay: chex.Numeric,
    nesterov: bool = False,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """optax's name for heavy-ball momentum: :func:`scale_by_momentum` in its summing form.

    ::

        v_t = decay * v_{t-1} + g_t,   u_t = v_t   (nesterov: u_t = g_t + decay * v_t)

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.trace(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> tx.update(jnp.ones(1), state)[0]
      Array([1.5], dtype=float32)
    """
    return scale_by_momentum(decay, nesterov=nesterov, accumulator_dtype=accumulator_dtype)


class EmaState(NamedTuple):
    """Step count and the moving average of the updates."""

    count: chex.Array
    ema: chex.ArrayTree


def ema(
    decay: chex.Numeric, debias: bool = True, accumulator_dtype: Any | None = None
) -> GradientTransformation:
    """Replace the updates by their exponential moving average (optionally debiased).

    ::

        e_t = decay * e_{t-1} + (1 - decay) * g_t,    u_t = e_t / (1 - decay**t)   (debias)

    Args:
      decay: averaging decay in ``[0, 1)``.
      debias: divide by ``1 - decay**t`` (Kingma & Ba, 2015), so early averages
        are not biased toward the zero start.
      accumulator_dtype: dtype of ``e``; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.ema(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([2.0]), state)
      >>> u  # (0.5 * 2) / (1 - 0.5)
      Array([2.], dtype=float32)
    """
    _checks.decay_rate("decay", decay, allow_schedule=False)
    accumulator_dtype = _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")

    def init_fn(params):
        return EmaState(count=_tree.zero_count(), ema=_tree.zeros_like(params, accumulator_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _check_trace_updates(updates, state.ema, "ema", accumulator_dtype)
        count = _tree.safe_increment(state.count)
        new = _tree.update_moment(state.ema, updates, decay)
        out = _tree.bias_correction(new, decay, count) if debias else new
        out = _tree.map_inexact(_tree.cast_like, out, updates)
        return out, EmaState(count=count, ema=new)

    return transformation(init_fn, update_fn)


def _check_trace_updates(
    updates: chex.ArrayTree, trace: chex.ArrayTree, who: str, accumulator_dtype: Any
) -> None:
    """Check ``updates`` against a trace that must hold them (complex ones included)."""
    against = (
        None
        if accumulator_dtype is None
        else f"the trace of {who} (accumulator_dtype={accumulator_dtype.name})"
    )
    _checks.check_updates(updates, trace, who, allow_complex=True, against=against)
