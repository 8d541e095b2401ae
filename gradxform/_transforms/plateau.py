"""Reduce the learning rate when a monitored value stops improving."""

from __future__ import annotations

import math
from typing import NamedTuple

import chex
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation


class ReduceLROnPlateauState(NamedTuple):
    """The current scale and the bookkeeping that decides when to lower it.

    Attributes:
      scale: the factor the updates are multiplied by (starts at 1).
      best_value: the best monitored value seen so far (``+inf`` or ``-inf`` at first).
      plateau_count: decisions in a row without improvement (int32).
      cooldown_count: decisions left before counting resumes after a reduction (int32).
      count: values accumulated towards the next decision (int32).
      avg_value: the mean of those values.
    """

    scale: chex.Array
    best_value: chex.Array
    plateau_count: chex.Array
    cooldown_count: chex.Array
    count: chex.Array
    avg_value: chex.Array


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    mode: str = "min",
    cooldown: int = 0,
    min_scale: float = 0.0,
    accumulation_size: int = 1,
) -> GradientTransformation:
    """Multiply the updates by a scale that drops by ``factor`` when the monitored value plateaus.

    Every ``accumulation_size`` updates, the mean ``v`` of the values passed as
    ``update(..., value=loss)`` is compared with the best so far: ``v`` is an
    improvement when ``v < best * (1 - threshold)`` (``mode="min"``,
    ``threshold_mode="rel"``), ``v < best - threshold`` (``"abs"``), or the
    mirror images for ``mode="max"``. After more than ``patience`` decisions in
    a row without one, ``scale <- max(scale * factor, min_scale)``, and the
    next ``cooldown`` decisions are not counted. The updates are multiplied
    by the scale after this update's decision.

    With ``accumulation_size=1`` the scale follows torch
    ``ReduceLROnPlateau(mode, factor, patience, threshold, threshold_mode,
    cooldown, min_lr=min_scale * lr)`` decision for decision, called with the
    same values (torch's ``eps``, a minimal change of the learning rate, is
    not modelled). Place it after the optimizer in a :func:`~gradxform.chain`;
    the chain passes ``value`` on. Everything runs under ``jit``.

    Args:
      factor: the reduction, in ``(0, 1)``.
      patience: decisions without improvement tolerated before reducing, an int >= 0.
      threshold: the margin an improvement must beat, >= 0 (< 1 when relative).
      threshold_mode: ``"rel"`` (a fraction of the best) or ``"abs"``.
      mode: ``"min"`` (lower is better, a loss) or ``"max"`` (an accuracy).
      cooldown: decisions to skip after a reduction, an int >= 0.
      min_scale: the scale never goes below this, in ``[0, 1]``.
      accumulation_size: values averaged into each decision, an int >= 1.

    Returns:
      A transformation whose ``update`` needs ``value=``; its state is a
      :class:`ReduceLROnPlateauState`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.reduce_on_plateau(factor=0.5, patience=1)
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
    _checks.integer("patience", patience, low=0)
    _checks.one_of("threshold_mode", threshold_mode, ("rel", "abs"))
    _checks.one_of("mode", mode, ("min", "max"))
    _checks.number(
        "threshold",
        threshold,
        low=0.0,
        high=1.0 if threshold_mode == "rel" else math.inf,
        high_open=True,
        allow_schedule=False,
    )
    _checks.integer("cooldown", cooldown, low=0)
    _checks.number("min_scale", min_scale, low=0.0, high=1.0, allow_schedule=False)
    _checks.integer("accumulation_size", accumulation_size, low=1)

    def improves(value, best):
        if threshold_mode == "rel":
            target = best * (1.0 - threshold if mode == "min" else 1.0 + threshold)
        else:
            target = best - threshold if mode == "min" else best + threshold
        return value < target if mode == "min" else value > target

    def init_fn(params):
        del params
        dtype = _tree.float_dtype()
        return ReduceLROnPlateauState(
            scale=jnp.ones([], dtype),
            best_value=jnp.asarray(math.inf if mode == "min" else -math.inf, dtype),
            plateau_count=_tree.zero_count(),
            cooldown_count=_tree.zero_count(),
            count=_tree.zero_count(),
            avg_value=jnp.zeros([], dtype),
        )

    def decide(state: ReduceLROnPlateauState, value: chex.Array) -> ReduceLROnPlateauState:
        improved = improves(value, state.best_value)
        best = jnp.where(improved, value, state.best_value)
        bad = jnp.where(improved, jnp.int32(0), _tree.safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        cooldown_left = jnp.where(cooling, state.cooldown_count - 1, state.cooldown_count)
        bad = jnp.where(cooling, jnp.int32(0), bad)
        reduce = bad > patience
        scale = jnp.where(reduce, jnp.maximum(state.scale * factor, min_scale), state.scale)
        return ReduceLROnPlateauState(
            scale=scale,
            best_value=best,
            plateau_count=jnp.where(reduce, jnp.int32(0), bad),
            cooldown_count=jnp.where(reduce, jnp.int32(cooldown), cooldown_left),
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
        decided = decide(accumulated, mean)
        ready = count >= accumulation_size
        state = ReduceLROnPlateauState(
            *(jnp.where(ready, d, a) for d, a in zip(decided, accumulated, strict=True))
        )
        return _tree.scale_tree(updates, state.scale), state

    return transformation(init_fn, update_fn)
