"""Averaging of weights: Polyak/EMA averaging (``ema_params``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    transformation,
)


def _new_params(params: chex.ArrayTree, updates: chex.ArrayTree) -> chex.ArrayTree:
    """``params + updates`` in at least float32 (integer leaves: the params)."""

    def add(p, u):
        dtype = _tree.promote(_tree.compute_dtype(p.dtype), u.dtype)
        return p.astype(dtype) + u.astype(dtype)

    return _tree.map_inexact(add, params, updates)


# ------------------------------------------------------------------------ ema_params


class EmaParamsState(NamedTuple):
    """Number of updates averaged and the moving average of the parameters."""

    count: chex.Array
    ema: chex.ArrayTree


def ema_params(
    decay: chex.Numeric = 0.99, *, warmup: bool = False, ema_dtype: Any | None = None
) -> GradientTransformation:
    """Exponential moving average (Polyak averaging) of the parameters; updates pass through.

    With ``theta_t = theta_{t-1} + u_t`` the parameters after the ``t``-th
    update (``t = 1, 2, ...``)::

        ema_1 = theta_1
        ema_t = d_t * ema_{t-1} + (1 - d_t) * theta_t
        d_t = decay                                   (default, as keras ``use_ema``)
        d_t = min(decay, t / (t + 9))                 (warmup=True)

    The first update copies the parameters, as keras' ``use_ema=True`` does
    (``ema_momentum=decay``); ``warmup`` ramps the decay up from 0.1 at the
    second update, as ``tf.train.ExponentialMovingAverage(num_updates=...)``,
    so that early averages forget the initial weights faster. The average is
    read from ``state.ema`` (evaluate with it, keep training with the params).
    Place this transformation *last* in a chain, after the learning rate, so
    that ``params + updates`` is the new parameters. Until the first update
    ``state.ema`` is zeros (``init`` sees shapes only). Integer leaves hold the
    current parameter. A non-finite update makes the average non-finite: wrap
    the whole chain in :func:`gradxform.apply_if_finite`.

    Args:
      decay: averaging decay in ``[0, 1)`` (keras' ``ema_momentum``).
      warmup: ramp the decay up over the first steps.
      ema_dtype: dtype of the average; default: each parameter's dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import ema_params
      >>> tx = ema_params(0.5)
      >>> p = jnp.array([0.0])
      >>> state = tx.init(p)
      >>> for _ in range(2):
      ...     u, state = tx.update(jnp.array([2.0]), state, p)
      ...     p = p + u
      >>> p, state.ema                      # ema: 2, then 0.5 * 2 + 0.5 * 4
      (Array([4.], dtype=float32), Array([3.], dtype=float32))
    """
    _checks.decay_rate("decay", decay, allow_schedule=False)
    ema_dtype = _checks.canonical_dtype(ema_dtype, "ema_dtype")

    def init_fn(params):
        return EmaParamsState(count=_tree.zero_count(), ema=_tree.zeros_like(params, ema_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, "ema_params")
        t = state.count.astype(jnp.float32)
        d = jnp.asarray(decay, jnp.float32)
        if warmup:
            d = jnp.minimum(d, (1 + t) / (10 + t))
        d = jnp.where(state.count == 0, jnp.float32(0), d)
        new = _tree.update_moment(state.ema, _new_params(params, updates), d)
        new = jax.tree.map(lambda e, p: e if _tree.is_inexact(p) else p, new, params)
        return updates, EmaParamsState(count=_tree.safe_increment(state.count), ema=new)

    return transformation(init_fn, update_fn)
