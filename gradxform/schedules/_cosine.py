"""Cosine decay and cosine decay with warm restarts (SGDR)."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks
from gradxform._base import Schedule
from gradxform.schedules import _common


def cosine_decay_schedule(init_value: chex.Numeric, decay_steps: int, alpha: chex.Numeric = 0.0,
                          exponent: chex.Numeric = 1.0) -> Schedule:
    """Half a cosine from ``init_value`` down to ``alpha * init_value`` over ``decay_steps``.

    ``s(t) = I * (alpha + (1 - alpha) * ((1 + cos(pi * min(t, T) / T)) / 2) ** exponent)``

    As keras ``CosineDecay(I, T, alpha)`` and, for ``t <= T``, torch
    ``CosineAnnealingLR(T_max=T, eta_min=alpha * I)`` (which climbs back up
    after ``T``; this schedule holds ``alpha * I``).

    Args:
      init_value: ``I``, the value at step 0.
      decay_steps: ``T``, an int >= 1.
      alpha: the final value as a fraction of ``init_value``, in ``[0, 1]``.
      exponent: a positive power applied to the cosine factor (1 is the usual curve).

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.cosine_decay_schedule(1.0, decay_steps=4, alpha=0.2)
      >>> [round(float(v), 4) for v in s(jnp.arange(6))]
      [1.0, 0.8828, 0.6, 0.3172, 0.2, 0.2]

    Reference: Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent
    with Warm Restarts".
    """
    _common.check_value("init_value", init_value)
    _common.check_steps("decay_steps", decay_steps)
    _checks.number("alpha", alpha, low=0.0, high=1.0, allow_schedule=False)
    _checks.number("exponent", exponent, low=0.0, high=math.inf, low_open=True,
                   high_open=True, allow_schedule=False)

    def schedule(count: chex.Numeric) -> jax.Array:
        init = _common.as_value(init_value)
        return _common.ramp(_common.as_step(count), init, init * _common.as_value(alpha),
                            decay_steps, 0.0, "cosine", exponent)

    return schedule


def sgdr_schedule(init_value: chex.Numeric, first_decay_steps: int, t_mul: float = 2.0,
                  m_mul: chex.Numeric = 1.0, alpha: chex.Numeric = 0.0) -> Schedule:
    """Cosine decay with warm restarts: cycle ``i`` is ``t_mul**i`` times longer than the first.

    ``s(t) = I * (alpha + (1 - alpha) * m_mul**i * (1 + cos(pi * (t - S_i) / T_i)) / 2)``

    where ``T_i = T * t_mul**i`` is the length of cycle ``i``, ``S_i`` the
    step it starts at (``T * (t_mul**i - 1) / (t_mul - 1)``, or ``i * T`` when
    ``t_mul = 1``) and ``i`` the cycle holding ``t``. The value jumps back up
    at each ``S_i``; the floor ``alpha * I`` is the same in every cycle. As
    keras ``CosineDecayRestarts(I, T, t_mul, m_mul, alpha)``; with
    ``m_mul = 1`` and an integer ``t_mul`` as torch
    ``CosineAnnealingWarmRestarts(T_0=T, T_mult=t_mul, eta_min=alpha * I)``.

    Args:
      init_value: ``I``, the value at step 0.
      first_decay_steps: ``T``, the length of the first cycle, an int >= 1.
      t_mul: the growth of each cycle's length, a number >= 1.
      m_mul: the factor applied to the height above the floor at each restart, in ``[0, 1]``.
      alpha: the floor as a fraction of ``init_value``, in ``[0, 1]``.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.sgdr_schedule(1.0, first_decay_steps=2, t_mul=2.0, m_mul=0.5)
      >>> [round(float(v), 4) for v in s(jnp.arange(7))]  # restarts at steps 2 and 6
      [1.0, 0.5, 0.5, 0.4268, 0.25, 0.0732, 0.25]

    Reference: Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent
    with Warm Restarts".
    """
    _common.check_value("init_value", init_value)
    _common.check_steps("first_decay_steps", first_decay_steps)
    _checks.number("t_mul", t_mul, low=1.0, high=math.inf, high_open=True,
                   allow_schedule=False)
    _checks.number("m_mul", m_mul, low=0.0, high=1.0, allow_schedule=False)
    _checks.number("alpha", alpha, low=0.0, high=1.0, allow_schedule=False)
    growth = _common.concrete(t_mul)
    if growth is None:
        raise TypeError(f"t_mul={t_mul!r} must be a concrete number, not a tracer")

    def schedule(count: chex.Numeric) -> jax.Array:
        if growth == 1:
            cycle, position = _common.cycle_position(count, first_decay_steps)
            length: jax.Array | int = first_decay_steps
        else:
            cycle, position, length = _geometric_cycle(_common.as_step(count),
                                                       first_decay_steps, growth)
        keep = _common.keep_fraction("cosine", jnp.clip(position / length, 0.0, 1.0))
        init = _common.as_value(init_value)
        floor = init * _common.as_value(alpha)
        return _common.blend(init, floor, keep * _common.as_value(m_mul) ** cycle)

    return schedule


def _geometric_cycle(t: jax.Array, first: int, growth: float,
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(cycle index, steps into it, its length) for cycles of length ``first * growth**i``."""
    g = _common.as_value(growth)

    def start(i: jax.Array) -> jax.Array:
        # g**i is exact whenever the power is representable (1.5**5, 2**30), so
        # restarts that fall on integer steps are found exactly.
        return first * ((g**i - 1.0) / (g - 1.0))

    cycle = jnp.floor(jnp.log1p(t / first * (g - 1.0)) / jnp.log(g))
    # The logarithm can land a hair on the wrong side of a restart: settle it
    # with the same start() that the position is measured from.
    cycle = jnp.where(t < start(cycle), cycle - 1, cycle)
    cycle = jnp.where(t >= start(cycle + 1), cycle + 1, cycle)
    return cycle, t - start(cycle), first * g**cycle
