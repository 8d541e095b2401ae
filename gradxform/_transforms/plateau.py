"""Reduce the learning rate when a monitored value stops improving."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformationExtraArgs, transformation


class ReduceLROnPlateauState(NamedTuple):
    """The current scale and the bookkeeping that decides when to lower it.

    Attributes:
      scale: the factor the updates are multiplied by (starts at 1), in the
        params' lowest floating-point dtype.
      best_value: the best monitored value seen so far (``+inf``, or ``-inf`` with
        ``mode="max"``, at first), in the params' highest floating-point dtype.
      plateau_count: decisions in a row without improvement (int32).
      cooldown_count: decisions left before counting resumes after a reduction (int32).
      count: values accumulated towards the next decision (int32).
      avg_value: the mean of those values, in the dtype of ``best_value``.
    """

    scale: chex.Array
    best_value: chex.Array
    plateau_count: chex.Array
    cooldown_count: chex.Array
    count: chex.Array
    avg_value: chex.Array


def _float_dtypes(params: Any) -> tuple[np.dtype, np.dtype]:
    """The lowest and highest floating-point dtypes of the params (the default float if none)."""
    dtypes = sorted(
        {
            np.dtype(jnp.finfo(_tree.dtype_of(x)).dtype)
            for x in jax.tree.leaves(params)
            if _tree.is_inexact(x)
        },  # finfo: the real dtype of a complex one
        key=lambda d: d.itemsize,
    )
    if not dtypes:
        return _tree.float_dtype(), _tree.float_dtype()
    return dtypes[0], dtypes[-1]


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
    *,
    mode: str = "min",
) -> GradientTransformationExtraArgs:
    """Multiply the updates by a scale that drops by ``factor`` when the monitored value plateaus.

    Every ``accumulation_size`` updates, the mean ``v`` of the values passed as
    ``update(..., value=loss)`` is compared with the best so far (a
    *decision*)::

        improvement:  v < (1 - rtol) * best - atol        (mode="min", the default)
                      v > (1 + rtol) * best + atol        (mode="max", an accuracy, say)

    After ``patience`` decisions in a row without an improvement,
    ``scale <- max(scale * factor, min_scale)``, and the next ``cooldown``
    decisions are not counted. The updates are multiplied by the scale after
    this update's decision. These are optax's rules and state
    (``optax.contrib.reduce_on_plateau``); ``mode`` is gradxform's addition.

    In torch's terms, ``reduce_on_plateau(factor, patience + 1, rtol=t,
    atol=0)`` takes ``ReduceLROnPlateau(factor=factor, patience=patience,
    threshold=t, threshold_mode="rel")``'s decisions, and ``rtol=0, atol=t``
    those of ``threshold_mode="abs"`` (torch counts ``patience`` decisions
    without improvement *before* the one that reduces; ``min_lr`` is
    ``min_scale`` times the learning rate; torch's ``eps`` is not modelled).
    Place it after the optimizer in a :func:`~gradxform.chain`; the chain
    passes ``value`` on. Everything runs under ``jit``.

    Args:
      factor: the reduction, in ``(0, 1)``.
      patience: decisions without improvement before reducing, an int >= 1.
      rtol: relative margin an improvement must beat, in ``[0, 1]``.
      atol: absolute margin an improvement must beat, >= 0 (not both zero).
      cooldown: decisions to skip after a reduction, an int >= 0.
      accumulation_size: values averaged into each decision, an int >= 1.
      min_scale: the scale never goes below this, in ``[0, 1]``.
      mode: ``"min"`` (lower is better, a loss) or ``"max"`` (higher is
        better); keyword only.

    Returns:
      A transformation whose ``update`` needs ``value=``; its state is a
      :class:`ReduceLROnPlateauState`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.reduce_on_plateau(factor=0.5, patience=2)
      >>> state = tx.init(jnp.zeros(1))
      >>> for loss in [3.0, 2.0, 2.0, 2.0]:
      ...     updates, state = tx.update(jnp.ones(1), state, value=loss)
      >>> updates, state.scale
      (Array([0.5], dtype=float32), Array(0.5, dtype=float32))

    Reference: Senior et al., 2013, "An Empirical Study of Learning Rates in
    Deep Neural Networks for Speech Recognition" (performance scheduling).
    """
    _checks.number(
        "factor", factor, low=0.0, high=1.0, low_open=True, high_open=True, allow_schedule=False
    )
    _checks.integer("patience", patience, low=1)
    _checks.number("rtol", rtol, low=0.0, high=1.0, allow_schedule=False)
    _checks.number("atol", atol, low=0.0, allow_schedule=False)
    traced = isinstance(rtol, jax.core.Tracer) or isinstance(atol, jax.core.Tracer)
    if not traced and rtol == 0 and atol == 0:
        raise ValueError(f"rtol={rtol!r} and atol={atol!r}: at least one must be positive")
    _checks.integer("cooldown", cooldown, low=0)
    _checks.integer("accumulation_size", accumulation_size, low=1)
    _checks.number("min_scale", min_scale, low=0.0, high=1.0, allow_schedule=False)
    _checks.one_of("mode", mode, ("min", "max"))
    sign = 1.0 if mode == "min" else -1.0

    def init_fn(params):
        lowest, highest = _float_dtypes(params)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], lowest),
            best_value=jnp.asarray(sign * math.inf, highest),
            plateau_count=_tree.zero_count(),
            cooldown_count=_tree.zero_count(),
            count=_tree.zero_count(),
            avg_value=jnp.zeros([], highest),
        )

    def decide(state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        value, best = state.avg_value, state.best_value
        # min: v < (1 - rtol) best - atol;  max: v > (1 + rtol) best + atol. An infinite
        # best (no decision yet) is beaten by any finite value, whatever rtol.
        target = jnp.where(jnp.isinf(best), best, (1 - sign * rtol) * best - sign * atol)
        improved = sign * value < sign * target
        best = jnp.where(improved, value, best)
        bad = jnp.where(improved, jnp.int32(0), _tree.safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        reduce = ~cooling & (bad >= patience)
        scale = jnp.where(reduce, state.scale * jnp.asarray(factor, state.scale.dtype), state.scale)
        scale = jnp.maximum(scale, jnp.asarray(min_scale, scale.dtype))
        return ReduceLROnPlateauState(
            scale=jnp.where(cooling, state.scale, scale),
            best_value=best,
            plateau_count=jnp.where(cooling | reduce, jnp.int32(0), bad),
            cooldown_count=jnp.where(
                cooling, state.cooldown_count - 1, jnp.where(reduce, jnp.int32(cooldown), 0)
            ).astype(jnp.int32),
            count=_tree.zero_count(),
            avg_value=jnp.zeros_like(state.avg_value),
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                "reduce_on_plateau needs the monitored value: call "
                "update(updates, state, params, value=loss)"
            )
        if jnp.shape(value) != ():
            raise ValueError(f"value must be a scalar, got shape {jnp.shape(value)}")
        value = jnp.asarray(value).astype(state.avg_value.dtype)
        count = _tree.safe_increment(state.count)
        mean = state.avg_value + (value - state.avg_value) / count.astype(value.dtype)
        accumulated = state._replace(count=count, avg_value=mean)
        decided = decide(accumulated)
        ready = count >= accumulation_size
        state = ReduceLROnPlateauState(
            *(jnp.where(ready, d, a) for d, a in zip(decided, accumulated, strict=True))
        )
        return _tree.scale_tree(updates, state.scale), state

    return transformation(init_fn, update_fn)
