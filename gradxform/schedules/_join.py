"""Schedules one after the other."""

from __future__ import annotations

from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import Schedule
from gradxform.schedules import _common


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, and so on.

    ``s(t) = schedules[k](t - boundaries[k - 1])`` for ``boundaries[k - 1] <= t < boundaries[k]``

    Each later schedule sees the step counted from its own boundary, so it
    starts at its own step 0. Integer steps stay integers when shifted.

    Args:
      schedules: one or more schedules.
      boundaries: ``len(schedules) - 1`` ints >= 1, strictly increasing.

    Returns:
      A schedule ``step -> value``; the pieces' values are promoted to one dtype.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> warmup = gx.linear_schedule(0.0, 1.0, transition_steps=2)
      >>> decay = gx.exponential_decay(1.0, transition_steps=1, decay_rate=0.5)
      >>> gx.join_schedules([warmup, decay], [2])(jnp.arange(5))
      Array([0.  , 0.5 , 1.  , 0.5 , 0.25], dtype=float32)
    """
    schedules = tuple(schedules)
    if not schedules:
        raise ValueError("schedules=() must hold at least one schedule")
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"schedules[{i}]={s!r} must be callable (a schedule)")
    bounds = _checks.boundaries("boundaries", boundaries)
    if len(bounds) != len(schedules) - 1:
        raise ValueError(
            f"boundaries={bounds!r} must hold len(schedules) - 1 = "
            f"{len(schedules) - 1} steps, got {len(bounds)}"
        )

    def schedule(count: chex.Numeric) -> jax.Array:
        values = [jnp.asarray(schedules[0](count))]
        values += [
            jnp.asarray(s(_common.shift(count, b)))
            for s, b in zip(schedules[1:], bounds, strict=True)
        ]
        dtype = _tree.promote(*(v.dtype for v in values))
        out = values[0].astype(dtype)
        for b, v in zip(bounds, values[1:], strict=True):
            out = jnp.where(_common.reached(count, b), v.astype(dtype), out)
        return out

    return schedule
