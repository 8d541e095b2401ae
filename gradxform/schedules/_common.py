"""Step handling, annealing shapes and argument checks shared by every schedule.

A schedule receives its step as a Python int, a NumPy or JAX integer, a float,
or a traced array of any shape (``jax.vmap`` over steps and direct calls on an
array of steps both work). :func:`as_step` turns any of these into a float
array in ``[0, 2**62]`` (negative steps count as 0); Python ints of any size
are clipped before conversion, so no step overflows. Schedules compute and return values in
:func:`gradxform._tree.float_dtype`: float32, or float64 when x64 is enabled.

Every decay, warmup and interpolation is one call of :func:`ramp`, which
blends two values with the *remaining fraction* of an annealing shape
(:func:`keep_fraction`). The blend ``start * keep + end * (1 - keep)`` gives
``start`` exactly when ``keep == 1`` and ``end`` exactly when ``keep == 0``,
so every schedule starts at its initial value to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _tree

MAX_STEP = 2**62
"""Larger steps are treated as this one (every schedule is constant or periodic by then)."""

SHAPES = ("linear", "cosine", "1-sqrt")
"""The annealing shapes understood by :func:`keep_fraction`."""


def as_value(x: Any) -> jax.Array:
    """A value argument (Python number or JAX scalar, possibly traced) as a schedule float."""
    return jnp.asarray(x, _tree.float_dtype())


def as_float(x: Any) -> Any:
    """A Python (or NumPy) int as a Python float, anything else unchanged.

    JAX turns a Python int operand into an int32 constant and overflows
    beyond ``2**31 - 1``; a float operand has no such limit, so step counts
    (``decay_steps``, boundaries) pass through this before any arithmetic.
    """
    return float(x) if _is_python_int(x) else x


def _is_python_int(count: Any) -> bool:
    return isinstance(count, int | np.integer) and not isinstance(count, bool)


def as_step(count: chex.Numeric) -> jax.Array:
    """The step as a float array in ``[0, MAX_STEP]``, whatever its type and size."""
    if _is_python_int(count):
        return jnp.asarray(min(max(int(count), 0), MAX_STEP), _tree.float_dtype())
    return jnp.clip(jnp.asarray(count).astype(_tree.float_dtype()), 0.0, float(MAX_STEP))


def shift(count: chex.Numeric, offset: int) -> chex.Numeric:
    """``max(count - offset, 0)``, keeping the kind of ``count`` (int, integer array, float).

    Integer steps stay integers, so a schedule that sees a shifted step (a
    later piece of :func:`~gradxform.join_schedules`, a staircase) still
    divides exactly.
    """
    if _is_python_int(count):
        return max(int(count) - offset, 0)
    count = jnp.asarray(count)
    if jnp.issubdtype(count.dtype, jnp.integer):
        if offset > _tree.INT32_MAX:  # beyond every int32 step
            return jnp.zeros_like(count)
        return jnp.maximum(count, offset) - offset
    return jnp.maximum(as_step(count) - float(offset), 0.0)


def reached(count: chex.Numeric, boundary: int) -> jax.Array:
    """``count >= boundary``, exact for integer steps of any size (a float32 step rounds
    boundaries beyond ``2**24`` to their neighbours), elementwise for arrays."""
    if _is_python_int(count):
        return jnp.asarray(int(count) >= boundary)
    steps = jnp.asarray(count)
    if jnp.issubdtype(steps.dtype, jnp.integer):
        if boundary > jnp.iinfo(steps.dtype).max:  # beyond every step of this dtype
            return jnp.zeros(steps.shape, bool)
        return steps >= boundary
    return as_step(steps) >= float(boundary)


def cycle_position(count: chex.Numeric, period: int) -> tuple[jax.Array, jax.Array]:
    """``(floor(t / period), t mod period)`` as float arrays, exact for integer steps."""
    if _is_python_int(count):
        whole, rest = divmod(min(max(int(count), 0), MAX_STEP), period)
        return as_step(whole), as_step(rest)
    steps = jnp.asarray(count)
    if jnp.issubdtype(steps.dtype, jnp.signedinteger) and period <= _tree.INT32_MAX:
        steps = jnp.maximum(steps, 0)
        return as_step(steps // period), as_step(steps % period)
    t = as_step(steps)
    quotient = jnp.floor(t / float(period))
    return quotient, jnp.clip(t - quotient * float(period), 0.0, float(period))


def keep_fraction(shape: str, frac: jax.Array) -> jax.Array:
    """The fraction of the start value left at progress ``frac`` in ``[0, 1]`` (1 -> 0).

    ``linear``: ``1 - frac``; ``cosine``: ``(1 + cos(pi * frac)) / 2``;
    ``1-sqrt``: ``1 - sqrt(frac)``.
    """
    if shape == "linear":
        return 1.0 - frac
    if shape == "cosine":
        return 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    if shape == "1-sqrt":
        return 1.0 - jnp.sqrt(frac)
    raise ValueError(f"shape={shape!r} must be one of {', '.join(map(repr, SHAPES))}")


def blend(start: Any, end: Any, keep: jax.Array) -> jax.Array:
    """``start * keep + end * (1 - keep)``: exactly ``start`` at ``keep = 1``, ``end`` at 0."""
    return as_value(start) * keep + as_value(end) * (1.0 - keep)


def ramp(
    t: jax.Array,
    start: Any,
    end: Any,
    steps: float,
    begin: float = 0.0,
    shape: str = "linear",
    exponent: Any = 1.0,
) -> jax.Array:
    """Anneal from ``start`` to ``end`` over ``[begin, begin + steps]``, constant outside.

    ``value = blend(start, end, keep(clip((t - begin) / steps, 0, 1)) ** exponent)``.
    """
    frac = jnp.clip((t - as_float(begin)) / as_float(steps), 0.0, 1.0)
    keep = keep_fraction(shape, frac)
    if not (isinstance(exponent, int | float) and exponent == 1):
        keep = keep ** as_value(exponent)
    return blend(start, end, keep)


def interpolate(
    t: jax.Array, bounds: Sequence[float], values: Sequence[Any], shape: str
) -> jax.Array:
    """The curve through ``(bounds[i], values[i])``, annealed with ``shape`` between points.

    ``bounds`` must increase strictly; before the first point the value is
    ``values[0]`` and after the last it is ``values[-1]``.
    """
    out = jnp.broadcast_to(as_value(values[0]), t.shape)
    for i in range(len(bounds) - 1):
        piece = ramp(t, values[i], values[i + 1], bounds[i + 1] - bounds[i], bounds[i], shape)
        out = jnp.where(t >= bounds[i], piece, out)
    return out


def concrete(value: Any) -> float | None:
    """The value of an already-checked number, or ``None`` when it is traced."""
    if isinstance(value, jax.core.Tracer):
        return None
    return float(np.asarray(value))
