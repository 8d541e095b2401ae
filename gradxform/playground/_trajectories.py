"""Optimizer trajectories on test functions, each one jitted ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks
from gradxform._base import GradientTransformation, apply_updates


class Trajectory(NamedTuple):
    """Iterates and objective values: ``path[0]`` is the start, ``path[t]`` the t-th iterate.

    Attributes:
      path: shape ``(steps + 1, 2)`` (or ``(n, steps + 1, 2)`` for ``n`` starts).
      losses: shape ``(steps + 1,)`` (or ``(n, steps + 1)``).
    """

    path: jax.Array
    losses: jax.Array


def trajectory(
    fn: Callable[[jax.Array], jax.Array], tx: GradientTransformation, x0: Any, steps: int
) -> Trajectory:
    """Run ``tx`` on ``fn`` from ``x0`` for ``steps`` steps in one jitted ``lax.scan``.

    ``x0`` of shape ``(2,)`` gives one path; ``(n, 2)`` runs ``n`` starts at
    once (vmapped).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> from gradxform.playground import quadratic_valley
      >>> t = trajectory(quadratic_valley, gx.sgd(0.5), jnp.array([2.0, 0.0]), steps=2)
      >>> t.path[:, 0]  # x halves each step: x <- x - 0.5 * x
      Array([2. , 1. , 0.5], dtype=float32)
    """
    _checks.integer("steps", steps, low=1)
    x0 = jnp.asarray(x0, jnp.float32)
    if x0.ndim not in (1, 2):
        raise ValueError(f"x0 must have shape (d,) or (n, d), got {x0.shape}")

    def single(start):
        def body(carry, _):
            x, state = carry
            loss, grad = jax.value_and_grad(fn)(x)
            updates, state = tx.update(grad, state, x)
            return (apply_updates(x, updates), state), (x, loss)

        (last, _), (xs, losses) = jax.lax.scan(body, (start, tx.init(start)), None, length=steps)
        return Trajectory(
            jnp.concatenate([xs, last[None]]), jnp.concatenate([losses, fn(last)[None]])
        )

    run = jax.jit(jax.vmap(single) if x0.ndim == 2 else single)
    return run(x0)


def trajectories(
    fn: Callable[[jax.Array], jax.Array],
    optimizers: Mapping[str, GradientTransformation],
    x0: Any,
    steps: int,
) -> dict[str, Trajectory]:
    """:func:`trajectory` for each named optimizer."""
    if not optimizers:
        raise ValueError("optimizers must name at least one optimizer")
    return {name: trajectory(fn, tx, x0, steps) for name, tx in optimizers.items()}


def steps_to_tolerance(traj: Trajectory, minimum_value: float, tol: float) -> int | None:
    """First step whose loss is within ``tol`` of ``minimum_value`` and stays there, or None."""
    gap = np.asarray(traj.losses, np.float64) - minimum_value
    ok = np.abs(gap) <= tol
    if not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    return 0 if bad.size == 0 else int(bad[-1]) + 1
