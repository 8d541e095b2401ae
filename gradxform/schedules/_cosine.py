"""Cosine decay and cosine decay with warm restarts (SGDR)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks
from gradxform._base import Schedule
from gradxform.schedules import _common
from gradxform.schedules._join import join_schedules
from gradxform.schedules._warmup import warmup_cosine_decay_schedule


def cosine_decay_schedule(
    init_value: chex.Numeric,
    decay_steps: int,
    alpha: chex.Numeric = 0.0,
    exponent: chex.Numeric = 1.0,
) -> Schedule:
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
    _checks.finite("init_value", init_value, allow_schedule=False)
    _checks.integer("decay_steps", decay_steps, low=1)
    _checks.number("alpha", alpha, low=0.0, high=1.0, allow_schedule=False)
    _checks.number(
        "exponent",
        exponent,
        low=0.0,
        high=math.inf,
        low_open=True,
        high_open=True,
        allow_schedule=False,
    )

    def schedule(count: chex.Numeric) -> jax.Array:
        init = _common.as_value(init_value)
        return _common.ramp(
            _common.as_step(count),
            init,
            init * _common.as_value(alpha),
            decay_steps,
            0.0,
            "cosine",
            exponent,
        )

    return schedule


def sgdr_schedule(
    cosine_kwargs: Iterable[dict[str, Any]] | None = None,
    *,
    init_value: chex.Numeric | None = None,
    first_decay_steps: int | None = None,
    t_mul: float = 2.0,
    m_mul: chex.Numeric = 1.0,
    alpha: chex.Numeric = 0.0,
) -> Schedule:
    """SGD with warm restarts: cosine cycles one after the other.

    As in optax, each entry of ``cosine_kwargs`` holds the keyword arguments of
    one :func:`~gradxform.warmup_cosine_decay_schedule` (``init_value``,
    ``peak_value``, ``warmup_steps``, ``decay_steps``, optionally ``end_value``
    and ``exponent``); the cycles run back to back, cycle ``k`` for its
    ``decay_steps`` steps, each seeing its steps counted from its own start.

    Keyword-only alternative (no ``cosine_kwargs``): geometric restarts given
    by ``init_value`` and ``first_decay_steps``, where cycle ``i`` lasts
    ``T_i = T * t_mul**i`` steps and its height above the floor is scaled by
    ``m_mul**i``:

    ``s(t) = I * (alpha + (1 - alpha) * m_mul**i * (1 + cos(pi * (t - S_i) / T_i)) / 2)``

    with ``S_i`` the step cycle ``i`` starts at (``T * (t_mul**i - 1) / (t_mul - 1)``,
    or ``i * T`` when ``t_mul = 1``). This is keras ``CosineDecayRestarts(I, T,
    t_mul, m_mul, alpha)``; with ``m_mul = 1`` and an integer ``t_mul``, torch
    ``CosineAnnealingWarmRestarts(T_0=T, T_mult=t_mul, eta_min=alpha * I)``.

    Args:
      cosine_kwargs: one dict of :func:`~gradxform.warmup_cosine_decay_schedule`
        keyword arguments per cycle.
      init_value: ``I``, the value at step 0 (geometric form only).
      first_decay_steps: ``T``, the length of the first cycle, an int >= 1
        (geometric form only).
      t_mul: the growth of each cycle's length, a number >= 1 (geometric form only).
      m_mul: the factor applied to the height above the floor at each restart,
        in ``[0, 1]`` (geometric form only).
      alpha: the floor as a fraction of ``init_value``, in ``[0, 1]`` (geometric form only).

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=3)
      >>> s = gx.sgdr_schedule([cycle, cycle])
      >>> [round(float(v), 4) for v in s(jnp.arange(7))]
      [0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0]
      >>> s = gx.sgdr_schedule(init_value=1.0, first_decay_steps=2, t_mul=2.0, m_mul=0.5)
      >>> [round(float(v), 4) for v in s(jnp.arange(7))]  # restarts at steps 2 and 6
      [1.0, 0.5, 0.5, 0.4268, 0.25, 0.0732, 0.25]

    Reference: Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent
    with Warm Restarts".
    """
    if cosine_kwargs is not None:
        if isinstance(cosine_kwargs, int | float | np.number | jax.Array):
            raise TypeError(
                f"sgdr_schedule(cosine_kwargs={cosine_kwargs!r}) takes a sequence of "
                f"warmup_cosine_decay_schedule keyword dicts, as in optax; for restarts "
                f"growing by t_mul give init_value= and first_decay_steps= by keyword"
            )
        extra = {"init_value": init_value, "first_decay_steps": first_decay_steps}
        given = [k for k, v in extra.items() if v is not None]
        given += [
            k
            for k, v, d in (("t_mul", t_mul, 2.0), ("m_mul", m_mul, 1.0), ("alpha", alpha, 0.0))
            if not _is_default(v, d)
        ]
        if given:
            raise TypeError(
                f"sgdr_schedule takes either cosine_kwargs or the keywords "
                f"init_value, first_decay_steps, t_mul, m_mul, alpha; got both "
                f"(cosine_kwargs and {', '.join(given)})"
            )
        return _cycles(cosine_kwargs)
    if init_value is None or first_decay_steps is None:
        raise TypeError(
            "sgdr_schedule needs cosine_kwargs (as in optax), or init_value= and "
            "first_decay_steps= for restarts growing by t_mul"
        )
    return _geometric_restarts(init_value, first_decay_steps, t_mul, m_mul, alpha)


def _is_default(value: Any, default: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == default


def _cycles(cosine_kwargs: Iterable[dict[str, Any]]) -> Schedule:
    """optax's SGDR: one warmup-cosine schedule per dict, joined at the cumulative decay_steps."""
    schedules, boundaries, step = [], [], 0
    for i, kwargs in enumerate(cosine_kwargs):
        if not isinstance(kwargs, dict) or "decay_steps" not in kwargs:
            raise TypeError(
                f"cosine_kwargs[{i}]={kwargs!r} must be a dict of "
                f"warmup_cosine_decay_schedule arguments with decay_steps"
            )
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    if not schedules:
        raise ValueError("cosine_kwargs=[] must hold at least one cycle")
    return join_schedules(schedules, boundaries[:-1])


def _geometric_restarts(
    init_value: chex.Numeric,
    first_decay_steps: int,
    t_mul: float,
    m_mul: chex.Numeric,
    alpha: chex.Numeric,
) -> Schedule:
    _checks.finite("init_value", init_value, allow_schedule=False)
    _checks.integer("first_decay_steps", first_decay_steps, low=1)
    _checks.number("t_mul", t_mul, low=1.0, high=math.inf, high_open=True, allow_schedule=False)
    _checks.number("m_mul", m_mul, low=0.0, high=1.0, allow_schedule=False)
    _checks.number("alpha", alpha, low=0.0, high=1.0, allow_schedule=False)
    growth = _common.concrete(t_mul)
    if growth is None:
        raise TypeError(f"t_mul={t_mul!r} must be a concrete number, not a tracer")

    def schedule(count: chex.Numeric) -> jax.Array:
        if growth == 1:
            cycle, position = _common.cycle_position(count, first_decay_steps)
            length: jax.Array | float = float(first_decay_steps)
        else:
            cycle, position, length = _geometric_cycle(
                _common.as_step(count), first_decay_steps, growth
            )
        keep = _common.keep_fraction("cosine", jnp.clip(position / length, 0.0, 1.0))
        init = _common.as_value(init_value)
        floor = init * _common.as_value(alpha)
        return _common.blend(init, floor, keep * _common.as_value(m_mul) ** cycle)

    return schedule


def _geometric_cycle(
    t: jax.Array,
    first_steps: int,
    growth: float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(cycle index, steps into it, its length) for cycles of length ``first * growth**i``."""
    g = _common.as_value(growth)
    first = float(first_steps)

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
