"""Linear warmup followed by a constant, a cosine, an exponential or a stable-then-decay phase."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks
from gradxform._base import Schedule
from gradxform.schedules import _common
from gradxform.schedules._basic import constant_schedule, linear_schedule
from gradxform.schedules._decay import exponential_decay
from gradxform.schedules._join import join_schedules


def _with_warmup(
    init_value: chex.Numeric, peak_value: chex.Numeric, warmup_steps: int, after: Schedule
) -> Schedule:
    """Linearly from ``init_value`` to ``peak_value`` in ``warmup_steps``, then ``after``."""
    _checks.finite("init_value", init_value, allow_schedule=False)
    _checks.finite("peak_value", peak_value, allow_schedule=False)
    _checks.integer("warmup_steps", warmup_steps, low=0)
    if warmup_steps == 0:
        return after
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps), after], [warmup_steps]
    )


def warmup_constant_schedule(
    init_value: chex.Numeric, peak_value: chex.Numeric, warmup_steps: int
) -> Schedule:
    """Linear warmup from ``init_value`` to ``peak_value``, then constant.

    ``s(t) = I + (P - I) * min(t, W) / W``

    As torch ``LinearLR(start_factor=I / P, end_factor=1, total_iters=W)``
    with base learning rate ``P``.

    Args:
      init_value: ``I``, the value at step 0.
      peak_value: ``P``, the value from step ``warmup_steps`` on.
      warmup_steps: ``W``, an int >= 0 (0: ``P`` from the start).

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.warmup_constant_schedule(0.0, 1.0, warmup_steps=2)(jnp.arange(4))
      Array([0. , 0.5, 1. , 1. ], dtype=float32)

    Reference: Goyal et al., 2017, "Accurate, Large Minibatch SGD: Training
    ImageNet in 1 Hour" (gradual warmup).
    """
    _checks.finite("peak_value", peak_value, allow_schedule=False)
    return _with_warmup(init_value, peak_value, warmup_steps, constant_schedule(peak_value))


def warmup_cosine_decay_schedule(
    init_value: chex.Numeric,
    peak_value: chex.Numeric,
    warmup_steps: int,
    decay_steps: int,
    end_value: chex.Numeric = 0.0,
    exponent: chex.Numeric = 1.0,
) -> Schedule:
    """Linear warmup to ``peak_value``, then cosine decay to ``end_value`` by ``decay_steps``.

    ``s(t) = I + (P - I) * t / W`` for ``t < W``, then
    ``E + (P - E) * ((1 + cos(pi * min(t - W, D - W) / (D - W))) / 2) ** exponent``

    ``decay_steps`` counts the warmup, as in optax. With ``P = 0`` the decay
    phase is 0 whatever ``E`` (optax's definition, ``E`` being taken as the
    fraction ``E / P`` of the peak). keras
    ``CosineDecay(I, D - W, alpha=E / P, warmup_target=P, warmup_steps=W)``
    is the same schedule.

    Args:
      init_value: ``I``, the value at step 0.
      peak_value: ``P``, the value at the end of the warmup.
      warmup_steps: ``W``, an int >= 0.
      decay_steps: ``D``, the step at which ``end_value`` is reached, an int > ``W``.
      end_value: ``E``, the value from step ``decay_steps`` on.
      exponent: a positive power applied to the cosine factor.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=4)
      >>> [round(float(v), 4) for v in s(jnp.arange(6))]
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]

    Reference: Loshchilov & Hutter, 2017, "SGDR"; Goyal et al., 2017 (warmup).
    """
    _checks.finite("peak_value", peak_value, allow_schedule=False)
    _checks.finite("end_value", end_value, allow_schedule=False)
    _checks.integer("warmup_steps", warmup_steps, low=0)
    _checks.integer("decay_steps", decay_steps, low=1)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps={decay_steps!r} must be > warmup_steps={warmup_steps!r} "
            f"(decay_steps counts the warmup)"
        )
    _checks.number(
        "exponent",
        exponent,
        low=0.0,
        high=math.inf,
        low_open=True,
        high_open=True,
        allow_schedule=False,
    )

    def decay(count: chex.Numeric) -> jax.Array:
        peak = _common.as_value(peak_value)
        # As in optax, the decay is the cosine factor times peak_value (end_value enters
        # as the fraction end_value / peak_value), so a zero peak decays to 0, not end_value.
        end = jnp.where(peak == 0, peak, _common.as_value(end_value))
        return _common.ramp(
            _common.as_step(count), peak, end, decay_steps - warmup_steps, 0.0, "cosine", exponent
        )

    return _with_warmup(init_value, peak_value, warmup_steps, decay)


def warmup_exponential_decay_schedule(
    init_value: chex.Numeric,
    peak_value: chex.Numeric,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: chex.Numeric | None = None,
) -> Schedule:
    """Linear warmup to ``peak_value``, then :func:`exponential_decay` from it.

    ``s(t) = I + (P - I) * t / W`` for ``t < W``, then
    ``P * r ** (max(t - W - B, 0) / T)`` (bounded by ``end_value``)

    Args:
      init_value: ``I``, the value at step 0.
      peak_value: ``P``, the value at the end of the warmup.
      warmup_steps: ``W``, an int >= 0.
      transition_steps: ``T``, an int >= 1 (see :func:`exponential_decay`).
      decay_rate: ``r``, a positive number (``r > 1`` needs ``end_value``).
      transition_begin: ``B``, steps to hold ``peak_value`` after the warmup, an int >= 0.
      staircase: decay in discrete jumps.
      end_value: the bound the value never passes, or ``None``.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.warmup_exponential_decay_schedule(0.0, 1.0, 2, 1, decay_rate=0.5)
      >>> s(jnp.arange(5))
      Array([0.  , 0.5 , 1.  , 0.5 , 0.25], dtype=float32)

    Reference: Goyal et al., 2017, "Accurate, Large Minibatch SGD" (warmup).
    """
    _checks.finite(
        "peak_value", peak_value, allow_schedule=False
    )  # before exponential_decay calls it init_value
    after = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )
    return _with_warmup(init_value, peak_value, warmup_steps, after)


def warmup_stable_decay_schedule(
    init_value: chex.Numeric,
    peak_value: chex.Numeric,
    warmup_steps: int,
    total_steps: int,
    decay_fraction: float = 0.2,
    end_value: chex.Numeric = 0.0,
    *,
    decay_shape: str = "linear",
) -> Schedule:
    """Warmup-stable-decay (WSD): warm up, hold ``peak_value`` for long, then decay briefly.

    With ``D = round(decay_fraction * N)`` decay steps and the decay starting at ``N - D``:
    ``s(t) = I + (P - I) * t / W`` for ``t < W``; ``P`` for ``W <= t < N - D``;
    ``E + (P - E) * keep((t - N + D) / D)`` for ``N - D <= t <= N``; ``E`` after ``N``

    with ``keep(f)`` ``1 - f`` (``"linear"``), ``(1 + cos(pi * f)) / 2``
    (``"cosine"``) or ``1 - sqrt(f)`` (``"1-sqrt"``, the best shape in Hägele
    et al.). Unlike cosine decay, the value does not depend on ``N`` before
    the decay starts, so a run can be extended (or branched into decays of
    several lengths) from a checkpoint taken in the stable phase.

    Args:
      init_value: ``I``, the value at step 0.
      peak_value: ``P``, the value of the stable phase.
      warmup_steps: ``W``, an int >= 0.
      total_steps: ``N``, the step at which ``end_value`` is reached, an int >= 1.
      decay_fraction: the share of ``total_steps`` spent decaying, in ``(0, 1]``.
      end_value: ``E``, the value from step ``total_steps`` on.
      decay_shape: ``"linear"``, ``"cosine"`` or ``"1-sqrt"``.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.warmup_stable_decay_schedule(0.0, 1.0, 2, 8, decay_fraction=0.5,
      ...                                     decay_shape="1-sqrt")
      >>> [round(float(v), 4) for v in s(jnp.arange(9))]
      [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.2929, 0.134, 0.0]

    Reference: Hu et al., 2024, "MiniCPM: Unveiling the Potential of Small
    Language Models with Scalable Training Strategies"; Hägele et al., 2024,
    "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations".
    """
    _checks.finite("peak_value", peak_value, allow_schedule=False)
    _checks.finite("end_value", end_value, allow_schedule=False)
    _checks.integer("warmup_steps", warmup_steps, low=0)
    _checks.integer("total_steps", total_steps, low=1)
    _checks.number(
        "decay_fraction", decay_fraction, low=0.0, high=1.0, low_open=True, allow_schedule=False
    )
    _checks.one_of("decay_shape", decay_shape, _common.SHAPES)
    decay_steps = max(1, round(float(decay_fraction) * total_steps))
    if warmup_steps + decay_steps > total_steps:
        raise ValueError(
            f"warmup_steps={warmup_steps!r} plus the {decay_steps} decay steps "
            f"(decay_fraction={decay_fraction!r} of total_steps={total_steps!r}) exceed "
            f"total_steps"
        )
    stable_steps = total_steps - decay_steps - warmup_steps

    def stable_then_decay(count: chex.Numeric) -> jax.Array:
        return _common.ramp(
            _common.as_step(count), peak_value, end_value, decay_steps, stable_steps, decay_shape
        )

    return _with_warmup(init_value, peak_value, warmup_steps, stable_then_decay)
