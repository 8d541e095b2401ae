"""Constant, polynomial and piecewise schedules."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks
from gradxform._base import Schedule
from gradxform.schedules import _common


def constant_schedule(value: chex.Numeric) -> Schedule:
    """The same value at every step.

    ``s(t) = value``

    Args:
      value: a finite number or JAX scalar.

    Returns:
      A schedule ``step -> value``, the value in float32 (float64 under x64).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.constant_schedule(0.1)(jnp.array([0, 10**6]))
      Array([0.1, 0.1], dtype=float32)
    """
    _checks.finite("value", value, allow_schedule=False)

    def schedule(count: chex.Numeric) -> jax.Array:
        return jnp.broadcast_to(_common.as_value(value), jnp.shape(count))

    return schedule


def polynomial_schedule(
    init_value: chex.Numeric,
    end_value: chex.Numeric,
    power: chex.Numeric,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    """Polynomial decay from ``init_value`` to ``end_value`` over ``transition_steps``.

    ``s(t) = E + (I - E) * (1 - min(max(t - B, 0), T) / T) ** power``

    with ``I = init_value``, ``E = end_value``, ``T = transition_steps`` and
    ``B = transition_begin``: constant ``I`` before ``B``, constant ``E`` from
    ``B + T`` on. As keras ``PolynomialDecay(I, T, E, power)`` (``B = 0``) and
    torch ``PolynomialLR(total_iters=T, power)`` (``E = 0``).

    Args:
      init_value: the value up to step ``transition_begin``.
      end_value: the value from step ``transition_begin + transition_steps`` on.
      power: the positive exponent of the polynomial (1 is linear).
      transition_steps: the length of the transition, an int >= 1.
      transition_begin: the steps to hold ``init_value`` first, an int >= 0.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)
      >>> s(jnp.arange(6))
      Array([1.    , 0.5625, 0.25  , 0.0625, 0.    , 0.    ], dtype=float32)

    Reference: Chen et al., 2018, "DeepLab: Semantic Image Segmentation with
    Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs"
    (the "poly" policy, ``power = 0.9``).
    """
    _checks.finite("init_value", init_value, allow_schedule=False)
    _checks.finite("end_value", end_value, allow_schedule=False)
    _checks.positive("power", power, allow_schedule=False)
    _checks.integer("transition_steps", transition_steps, low=1)
    _checks.integer("transition_begin", transition_begin, low=0)

    def schedule(count: chex.Numeric) -> jax.Array:
        return _common.ramp(
            _common.as_step(count),
            init_value,
            end_value,
            transition_steps,
            transition_begin,
            "linear",
            power,
        )

    return schedule


def linear_schedule(
    init_value: chex.Numeric,
    end_value: chex.Numeric,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    """Linear interpolation from ``init_value`` to ``end_value`` over ``transition_steps``.

    ``s(t) = I + (E - I) * min(max(t - B, 0), T) / T``

    :func:`polynomial_schedule` with ``power=1``. With ``B = 0`` it is torch
    ``LinearLR(start_factor=I / base, end_factor=E / base, total_iters=T)``.

    Args:
      init_value: the value up to step ``transition_begin``.
      end_value: the value from step ``transition_begin + transition_steps`` on.
      transition_steps: the length of the transition, an int >= 1.
      transition_begin: the steps to hold ``init_value`` first, an int >= 0.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.linear_schedule(0.0, 1.0, transition_steps=4)(jnp.arange(6))
      Array([0.  , 0.25, 0.5 , 0.75, 1.  , 1.  ], dtype=float32)
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def piecewise_constant_schedule(
    init_value: chex.Numeric,
    boundaries_and_scales: dict[int, float] | None = None,
) -> Schedule:
    """A step function: ``init_value`` times every scale whose boundary has been reached.

    ``s(t) = I * prod(scale_b for b in boundaries if t >= b)``

    With every scale equal to ``gamma`` this is torch ``MultiStepLR(milestones,
    gamma)``. keras ``PiecewiseConstantDecay`` changes value one step later
    (at ``t > b``); ``PiecewiseConstantDecay([b - 1 for b in ...], values)``
    matches this schedule.

    Args:
      init_value: the value before the first boundary.
      boundaries_and_scales: ``{step: scale}``: steps are ints >= 1, scales
        finite and >= 0. ``None`` or ``{}`` gives a constant schedule.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.1})
      >>> s(jnp.arange(6))
      Array([1.  , 1.  , 0.5 , 0.5 , 0.05, 0.05], dtype=float32)

    Reference: He et al., 2016, "Deep Residual Learning for Image Recognition"
    (the learning rate divided by 10 at fixed iterations).
    """
    _checks.finite("init_value", init_value, allow_schedule=False)
    bounds, scales = _checks.boundaries_and_scales("boundaries_and_scales", boundaries_and_scales)
    factors = list(_cumulative_products(scales))[1:]

    def schedule(count: chex.Numeric) -> jax.Array:
        init = _common.as_value(init_value)
        out = jnp.broadcast_to(init, jnp.shape(count))
        for b, factor in zip(bounds, factors, strict=True):
            out = jnp.where(_common.reached(count, b), init * factor, out)
        return out

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: chex.Numeric,
    boundaries_and_scales: dict[int, float] | None = None,
) -> Schedule:
    """Interpolation between the values of :func:`piecewise_constant_schedule` at its boundaries.

    ``s(b_k) = I * s_1 * ... * s_k`` at each boundary ``b_k`` (and ``s(0) = I``);
    between two boundaries the value moves from one to the next linearly or
    along half a cosine (``v + (w - v) * (1 - cos(pi * frac)) / 2``); after the
    last boundary it stays put.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: the value at step 0.
      boundaries_and_scales: ``{step: scale}``: steps are ints >= 1, scales
        finite and >= 0; each scale multiplies the value reached at its step.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.piecewise_interpolate_schedule("linear", 1.0, {4: 0.5, 8: 0.5})
      >>> s(jnp.array([0, 2, 4, 6, 8, 10]))
      Array([1.   , 0.75 , 0.5  , 0.375, 0.25 , 0.25 ], dtype=float32)
    """
    _checks.one_of("interpolate_type", interpolate_type, ("linear", "cosine"))
    _checks.finite("init_value", init_value, allow_schedule=False)
    bounds, scales = _checks.boundaries_and_scales("boundaries_and_scales", boundaries_and_scales)
    factors = list(_cumulative_products(scales))
    points = (0.0, *map(float, bounds))

    def schedule(count: chex.Numeric) -> jax.Array:
        init = _common.as_value(init_value)
        return _common.interpolate(
            _common.as_step(count), points, [init * f for f in factors], interpolate_type
        )

    return schedule


def _cumulative_products(scales: tuple[float, ...]) -> Any:
    """``1, s_1, s_1 * s_2, ...`` in Python floats (one rounding each when cast)."""
    product = 1.0
    yield product
    for s in scales:
        product *= s
        yield product
