"""Exponential, inverse-time and inverse-square-root decay."""

from __future__ import annotations

import math
from typing import Any

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks
from gradxform._base import Schedule
from gradxform.schedules import _common


def _progress(count: chex.Numeric, steps: int, begin: int, staircase: bool) -> jax.Array:
    """``max(t - begin, 0) / steps``, floored (exactly, for integer steps) when ``staircase``."""
    shifted = _common.shift(count, begin)
    if staircase:
        return _common.cycle_position(shifted, steps)[0]
    return _common.as_step(shifted) / float(steps)


def exponential_decay(
    init_value: chex.Numeric,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: chex.Numeric | None = None,
) -> Schedule:
    """Exponential decay (or growth) by ``decay_rate`` every ``transition_steps`` steps.

    ``s(t) = I * r ** (max(t - B, 0) / T)``  (the exponent floored when ``staircase``)

    bounded below by ``end_value`` when ``r < 1`` and above when ``r >= 1``
    (with ``r = 1`` the value is ``min(init_value, end_value)`` at every step,
    as in optax). As
    keras ``ExponentialDecay(I, T, r, staircase)``; torch ``ExponentialLR(r)``
    is ``T = 1`` and torch ``StepLR(T, r)`` is ``staircase=True``.

    Args:
      init_value: the value up to step ``transition_begin``.
      transition_steps: ``T``, the steps over which the value is multiplied by
        ``decay_rate`` once, an int >= 1.
      decay_rate: ``r``, a positive number; ``r > 1`` needs ``end_value``
        (exponential growth is otherwise unbounded).
      transition_begin: ``B``, the steps to hold ``init_value`` first, an int >= 0.
      staircase: decay in discrete jumps every ``transition_steps`` steps.
      end_value: the bound the value never passes, or ``None``. It must be
        at most ``init_value`` when decaying and at least when growing.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.exponential_decay(1.0, transition_steps=2, decay_rate=0.5, staircase=True)
      >>> s(jnp.arange(6))
      Array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25], dtype=float32)

    Reference: Senior et al., 2013, "An Empirical Study of Learning Rates in
    Deep Neural Networks for Speech Recognition" (exponential scheduling).
    """
    _checks.finite("init_value", init_value, allow_schedule=False)
    _checks.integer("transition_steps", transition_steps, low=1)
    _checks.number(
        "decay_rate",
        decay_rate,
        low=0.0,
        high=math.inf,
        low_open=True,
        high_open=True,
        allow_schedule=False,
    )
    _checks.integer("transition_begin", transition_begin, low=0)
    rate = _common.concrete(decay_rate)
    if rate is None:
        raise TypeError(f"decay_rate={decay_rate!r} must be a concrete number, not a tracer")
    if end_value is None and rate > 1:
        raise ValueError(f"decay_rate={decay_rate!r} > 1 grows without bound: give end_value")
    if end_value is not None:
        _checks.finite("end_value", end_value, allow_schedule=False)
        _check_order(init_value, end_value, decreasing=rate < 1, growing=rate > 1)

    def schedule(count: chex.Numeric) -> jax.Array:
        p = _progress(count, transition_steps, transition_begin, staircase)
        init = _common.as_value(init_value)
        r = _common.as_value(rate)
        if end_value is None:
            return init * r**p
        end = _common.as_value(end_value)
        if rate < 1:
            return jnp.maximum(init * r**p, end)
        # Growing (init > 0): once r**p overflows to inf, the minimum is still end_value.
        return jnp.minimum(init * r**p, end)

    return schedule


def _check_order(init_value: Any, end_value: Any, *, decreasing: bool, growing: bool) -> None:
    init, end = _common.concrete(init_value), _common.concrete(end_value)
    if init is None or end is None:
        return
    if decreasing and end > init:
        raise ValueError(
            f"end_value={end_value!r} must be <= init_value={init_value!r} when decaying"
        )
    if growing and (end < init or init <= 0):
        raise ValueError(
            f"end_value={end_value!r} must be >= init_value={init_value!r} > 0 when growing"
        )


def inverse_time_decay(
    init_value: chex.Numeric,
    decay_steps: int,
    decay_rate: chex.Numeric = 1.0,
    power: chex.Numeric = 1.0,
    *,
    staircase: bool = False,
) -> Schedule:
    """Inverse-time ("power") decay: ``init_value / (1 + decay_rate * t / decay_steps) ** power``.

    ``s(t) = I / (1 + r * t / T) ** c``  (``t / T`` floored when ``staircase``)

    ``power=1`` is keras ``InverseTimeDecay(I, T, r, staircase)``;
    ``decay_rate=1`` is power scheduling ``eta0 / (1 + t / s) ** c``.

    Args:
      init_value: ``I``, the value at step 0.
      decay_steps: ``T``, an int >= 1.
      decay_rate: ``r``, a finite number >= 0.
      power: ``c``, a finite number > 0.
      staircase: floor ``t / T`` so the value changes every ``decay_steps`` steps.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.inverse_time_decay(1.0, decay_steps=1, power=2)(jnp.arange(4))
      Array([1.        , 0.25      , 0.11111111, 0.0625    ], dtype=float32)

    Reference: Senior et al., 2013, "An Empirical Study of Learning Rates in
    Deep Neural Networks for Speech Recognition" (power scheduling).
    """
    _checks.finite("init_value", init_value, allow_schedule=False)
    _checks.integer("decay_steps", decay_steps, low=1)
    _checks.non_negative("decay_rate", decay_rate, allow_schedule=False)
    _checks.positive("power", power, allow_schedule=False)

    def schedule(count: chex.Numeric) -> jax.Array:
        p = _progress(count, decay_steps, 0, staircase)
        base = 1.0 + _common.as_value(decay_rate) * p
        return _common.as_value(init_value) / base ** _common.as_value(power)

    return schedule


def inverse_sqrt_schedule(
    init_value: chex.Numeric, peak_value: chex.Numeric, warmup_steps: int
) -> Schedule:
    """Linear warmup, then decay as ``1 / sqrt(t)`` (the Transformer's "Noam" schedule).

    ``s(t) = I + (P - I) * t / W`` for ``t < W``, ``P * sqrt(W / t)`` from ``t = W`` on.

    With ``I = 0`` and ``P = d_model**-0.5 * W**-0.5`` this is Vaswani et al.'s
    ``d_model**-0.5 * min(t**-0.5, t * W**-1.5)`` evaluated at ``t``. The paper
    numbers its first step 1 while the first update here uses ``t = 0`` (a
    value of ``I``); for the paper's numbering use ``lambda t: s(t + 1)``.

    Args:
      init_value: ``I``, the value at step 0.
      peak_value: ``P``, the value at the end of the warmup.
      warmup_steps: ``W``, an int >= 1.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.inverse_sqrt_schedule(0.0, 1.0, warmup_steps=4)
      >>> s(jnp.array([0, 2, 4, 16, 64]))
      Array([0.  , 0.5 , 1.  , 0.5 , 0.25], dtype=float32)

    Reference: Vaswani et al., 2017, "Attention Is All You Need", section 5.3.
    """
    _checks.finite("init_value", init_value, allow_schedule=False)
    _checks.finite("peak_value", peak_value, allow_schedule=False)
    _checks.integer("warmup_steps", warmup_steps, low=1)

    def schedule(count: chex.Numeric) -> jax.Array:
        t = _common.as_step(count)
        w = float(warmup_steps)
        warmup = _common.ramp(t, init_value, peak_value, w)
        decay = _common.as_value(peak_value) * jnp.sqrt(w / jnp.maximum(t, w))
        return jnp.where(t < w, warmup, decay)

    return schedule
