"""The classic two-dimensional test functions, with their known minima."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class TestFunction(NamedTuple):
    """A 2-D objective ``fn(xy) -> scalar`` with what is known about it.

    Attributes:
      name: short name used by the command line.
      fn: the objective; takes an array of shape ``(2,)``.
      minima: the global minimisers (a tuple of ``(x, y)``).
      minimum_value: the value at the global minimisers.
      x0: a customary starting point.
      bounds: ``((x_lo, x_hi), (y_lo, y_hi))`` for pictures.
      description: one line.
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    minima: tuple[tuple[float, float], ...]
    minimum_value: float
    x0: tuple[float, float]
    bounds: tuple[tuple[float, float], tuple[float, float]]
    description: str


def quadratic_valley(xy: jax.Array, condition: float = 25.0) -> jax.Array:
    """``f = (x**2 + condition * y**2) / 2``: a narrow valley, minimum 0 at the origin."""
    return 0.5 * (xy[0] ** 2 + condition * xy[1] ** 2)


def rosenbrock(xy: jax.Array) -> jax.Array:
    """``f = (1 - x)**2 + 100 (y - x**2)**2`` (Rosenbrock, 1960): minimum 0 at (1, 1)."""
    return (1.0 - xy[0]) ** 2 + 100.0 * (xy[1] - xy[0] ** 2) ** 2


def beale(xy: jax.Array) -> jax.Array:
    """``f = (1.5 - x + xy)**2 + (2.25 - x + xy**2)**2 + (2.625 - x + xy**3)**2``: 0 at (3, 0.5)."""
    x, y = xy[0], xy[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def himmelblau(xy: jax.Array) -> jax.Array:
    """``f = (x**2 + y - 11)**2 + (x + y**2 - 7)**2`` (Himmelblau, 1972): four minima of 0."""
    x, y = xy[0], xy[1]
    return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2


def local_minimum_bowl(xy: jax.Array) -> jax.Array:
    """``f = (x**2 + y**2) / 10 - exp(-((x - 4)**2 + (y - 1)**2) / 0.5)``.

    A wide bowl with its global minimum at the origin and a shallow Gaussian
    dip that makes a local minimum near (3.79, 0.95): plain gradient descent
    started at (6, 1.5) stops there; momentum carries through to the origin.
    """
    x, y = xy[0], xy[1]
    return 0.1 * (x**2 + y**2) - jnp.exp(-((x - 4.0) ** 2 + (y - 1.0) ** 2) / 0.5)


def saddle(xy: jax.Array) -> jax.Array:
    """``f = x**2 - y**2 + y**4 / 4``: a saddle at the origin, minima -1 at (0, +-sqrt(2))."""
    x, y = xy[0], xy[1]
    return x**2 - y**2 + 0.25 * y**4


FUNCTIONS: dict[str, TestFunction] = {
    f.name: f
    for f in [
        TestFunction(
            "valley",
            quadratic_valley,
            ((0.0, 0.0),),
            0.0,
            (-4.0, 1.5),
            ((-5.0, 5.0), (-2.0, 2.0)),
            "ill-conditioned quadratic (condition 25)",
        ),
        TestFunction(
            "rosenbrock",
            rosenbrock,
            ((1.0, 1.0),),
            0.0,
            (-1.2, 1.0),
            ((-2.0, 2.0), (-1.0, 3.0)),
            "curved narrow valley",
        ),
        TestFunction(
            "beale",
            beale,
            ((3.0, 0.5),),
            0.0,
            (1.0, 1.5),
            ((-1.0, 4.5), (-1.5, 2.0)),
            "flat plateaus and steep ridges",
        ),
        TestFunction(
            "himmelblau",
            himmelblau,
            ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
            0.0,
            (0.0, -4.0),
            ((-5.0, 5.0), (-5.0, 5.0)),
            "four equal minima",
        ),
        TestFunction(
            "local_minimum",
            local_minimum_bowl,
            ((0.0, 0.0),),
            0.0,
            (6.0, 1.5),
            ((-2.0, 7.0), (-2.0, 3.0)),
            "shallow local minimum near (4, 1)",
        ),
        TestFunction(
            "saddle",
            saddle,
            ((0.0, 1.4142135623730951), (0.0, -1.4142135623730951)),
            -1.0,
            (-2.0, 1e-3),
            ((-2.5, 2.5), (-2.5, 2.5)),
            "saddle point at the origin",
        ),
    ]
}


def get_function(name: str) -> TestFunction:
    """The test function called ``name``; the error lists the valid names."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown test function {name!r}; choose one of: {', '.join(FUNCTIONS)}"
        ) from None
