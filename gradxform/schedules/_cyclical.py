"""Cyclical learning rates and the 1cycle policy (with its momentum cycle)."""

from __future__ import annotations

import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks
from gradxform._base import Schedule
from gradxform.schedules import _common
from gradxform.schedules._basic import piecewise_interpolate_schedule

_ANNEAL_SHAPES = {"cos": "cosine", "linear": "linear"}


def cyclical_schedule(
    base_value: chex.Numeric,
    max_value: chex.Numeric,
    step_size: int,
    mode: str = "triangular",
    gamma: chex.Numeric = 1.0,
    *,
    step_size_down: int | None = None,
) -> Schedule:
    """Cyclical values (Smith, 2017): up from ``base_value`` to ``max_value`` and back, repeatedly.

    ``s(t) = B + (M - B) * x(t) * h(t)``, where ``x`` rises linearly from 0 to
    1 over ``step_size`` steps and falls back over ``step_size_down`` (default
    ``step_size``), and the amplitude ``h`` is ``1`` (``"triangular"``),
    ``2**-k`` in cycle ``k = 0, 1, ...`` (``"triangular2"``) or ``gamma**t``
    (``"exp_range"``).

    Agrees step for step with torch ``CyclicLR(base_lr=B, max_lr=M,
    step_size_up=step_size, step_size_down, mode, gamma)``. Its momentum cycle
    (``cycle_momentum=True``) is this schedule with the two values swapped:
    ``cyclical_schedule(max_momentum, base_momentum, ...)``.

    Args:
      base_value: ``B``, the value at the start of each cycle.
      max_value: ``M``, the value at the turn of each cycle (may be below ``B``).
      step_size: steps from ``B`` to ``M``, an int >= 1.
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
      gamma: the per-step decay of the amplitude in ``"exp_range"``, in ``(0, 1]``.
      step_size_down: steps from ``M`` back to ``B``, an int >= 1 (default ``step_size``).

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.cyclical_schedule(0.0, 1.0, step_size=2, mode="triangular2")
      >>> s(jnp.arange(9))
      Array([0.  , 0.5 , 1.  , 0.5 , 0.  , 0.25, 0.5 , 0.25, 0.  ], dtype=float32)

    Reference: Smith, 2017, "Cyclical Learning Rates for Training Neural Networks".
    """
    _checks.finite("base_value", base_value, allow_schedule=False)
    _checks.finite("max_value", max_value, allow_schedule=False)
    _checks.integer("step_size", step_size, low=1)
    _checks.one_of("mode", mode, ("triangular", "triangular2", "exp_range"))
    _checks.number("gamma", gamma, low=0.0, high=1.0, low_open=True, allow_schedule=False)
    _checks.integer(
        "step_size_down", step_size if step_size_down is None else step_size_down, low=1
    )
    period = step_size + (step_size if step_size_down is None else step_size_down)
    up, down = float(step_size), float(period - step_size)
    # gamma**t as exp(t log gamma) with log gamma from the float64 gamma: a float32 gamma
    # near 1 (0.9999) keeps only three digits of 1 - gamma, so gamma**t would be 3e-5 off.
    log_gamma = (
        float(np.log(gamma))
        if isinstance(gamma, int | float | np.floating | np.integer)
        else jnp.log(_common.as_value(gamma))
    )

    def schedule(count: chex.Numeric) -> jax.Array:
        cycle, position = _common.cycle_position(count, period)
        rise = jnp.where(position <= up, position / up, (up + down - position) / down)
        if mode == "triangular2":
            rise = rise * jnp.exp2(-cycle)
        elif mode == "exp_range":
            rise = rise * jnp.exp(_common.as_step(count) * log_gamma)
        return _common.blend(base_value, max_value, 1.0 - rise)

    return schedule


def _one_cycle_bounds(
    total_steps: int,
    pct_start: float,
    three_phase: bool,
) -> tuple[float, ...]:
    """The phase boundaries of torch's OneCycleLR: ``0, pct * N - 1, [2 * pct * N - 2,] N - 1``."""
    _checks.integer("total_steps", total_steps, low=1)
    _checks.number(
        "pct_start",
        pct_start,
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
        allow_schedule=False,
    )
    pct = float(pct_start)
    middle = (
        (pct * total_steps - 1, 2 * pct * total_steps - 2)
        if three_phase
        else (pct * total_steps - 1,)
    )
    bounds = (0.0, *middle, float(total_steps - 1))
    if any(a >= b for a, b in itertools.pairwise(bounds)):
        raise ValueError(
            f"pct_start={pct_start!r} with total_steps={total_steps!r} leaves an empty phase "
            f"(phase boundaries {bounds}); each phase needs more than one step"
        )
    return bounds


def one_cycle_schedule(
    total_steps: int,
    max_value: chex.Numeric,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: chex.Numeric = 25.0,
    final_div_factor: chex.Numeric = 1e4,
    *,
    three_phase: bool = False,
) -> Schedule:
    """The 1cycle policy (Smith & Topin): warm up to ``max_value``, then anneal far below the start.

    With ``I = max_value / div_factor`` and ``F = I / final_div_factor`` the
    value moves through ``I -> max_value -> F`` (``three_phase``:
    ``I -> max_value -> I -> F``), annealing by ``anneal_strategy`` between
    phase ends at steps ``pct_start * N - 1``, (``2 * pct_start * N - 2``,)
    ``N - 1`` (``N = total_steps``); from ``N - 1`` on it stays at ``F``.

    Agrees with torch ``OneCycleLR(max_lr, total_steps, pct_start,
    anneal_strategy, div_factor=..., final_div_factor=..., three_phase=...)``
    for every step torch accepts before its last: torch raises past
    ``total_steps`` and extrapolates at ``total_steps`` itself. The momentum
    half of the policy is :func:`one_cycle_momentum_schedule`.

    Args:
      total_steps: ``N``, the length of the cycle, an int >= 2.
      max_value: the peak value.
      pct_start: the fraction of the cycle spent warming up, in ``(0, 1)``.
      anneal_strategy: ``"cos"`` or ``"linear"``.
      div_factor: ``max_value / div_factor`` is the value at step 0 (positive).
      final_div_factor: the final value is the start value over this (positive).
      three_phase: come back to the start value before annealing to the final one.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.one_cycle_schedule(11, 1.0, pct_start=0.5, anneal_strategy="linear",
      ...                           div_factor=10.0, final_div_factor=10.0)
      >>> [round(float(v), 4) for v in s(jnp.array([0, 2, 4.5, 10]))]
      [0.1, 0.5, 1.0, 0.01]

    Reference: Smith & Topin, 2019, "Super-Convergence: Very Fast Training of
    Neural Networks Using Large Learning Rates".
    """
    bounds = _one_cycle_bounds(total_steps, pct_start, three_phase)
    _checks.one_of("anneal_strategy", anneal_strategy, tuple(_ANNEAL_SHAPES))
    _checks.finite("max_value", max_value, allow_schedule=False)
    _checks.number(
        "div_factor",
        div_factor,
        low=0.0,
        high=math.inf,
        low_open=True,
        high_open=True,
        allow_schedule=False,
    )
    _checks.number(
        "final_div_factor",
        final_div_factor,
        low=0.0,
        high=math.inf,
        low_open=True,
        high_open=True,
        allow_schedule=False,
    )

    def schedule(count: chex.Numeric) -> jax.Array:
        peak = _common.as_value(max_value)
        start = peak / _common.as_value(div_factor)
        final = start / _common.as_value(final_div_factor)
        values = (start, peak, start, final) if three_phase else (start, peak, final)
        return _common.interpolate(
            _common.as_step(count), bounds, values, _ANNEAL_SHAPES[anneal_strategy]
        )

    return schedule


def one_cycle_momentum_schedule(
    total_steps: int,
    base_momentum: chex.Numeric = 0.85,
    max_momentum: chex.Numeric = 0.95,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    *,
    three_phase: bool = False,
) -> Schedule:
    """The momentum half of 1cycle: it moves opposite to :func:`one_cycle_schedule`.

    The value moves through ``max_momentum -> base_momentum -> max_momentum``
    (``three_phase``: ``max -> base -> max -> max``) over the same phases as
    :func:`one_cycle_schedule` with the same ``total_steps`` and
    ``pct_start``, so the momentum is lowest when the learning rate peaks.
    Use it for ``momentum`` (SGD) or ``b1`` (Adam) through
    :func:`~gradxform.inject_hyperparams`. Agrees with the momentum (or
    ``beta1``) that torch ``OneCycleLR(cycle_momentum=True)`` sets.

    Args:
      total_steps: the length of the cycle, an int >= 2.
      base_momentum: the lowest momentum, at the learning-rate peak, in ``[0, 1)``.
      max_momentum: the momentum at the start and end, in ``[0, 1)``.
      pct_start: the fraction of the cycle before the peak, in ``(0, 1)``.
      anneal_strategy: ``"cos"`` or ``"linear"``.
      three_phase: as in :func:`one_cycle_schedule`.

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.one_cycle_momentum_schedule(11, 0.8, 0.9, pct_start=0.5,
      ...                                    anneal_strategy="linear")
      >>> [round(float(v), 4) for v in s(jnp.array([0, 2, 4.5, 10]))]
      [0.9, 0.8556, 0.8, 0.9]

    Reference: Smith, 2018, "A disciplined approach to neural network
    hyper-parameters: Part 1", section 4.
    """
    bounds = _one_cycle_bounds(total_steps, pct_start, three_phase)
    _checks.one_of("anneal_strategy", anneal_strategy, tuple(_ANNEAL_SHAPES))
    _checks.decay_rate("base_momentum", base_momentum, allow_schedule=False)
    _checks.decay_rate("max_momentum", max_momentum, allow_schedule=False)
    values = (
        (max_momentum, base_momentum, max_momentum, max_momentum)
        if three_phase
        else (max_momentum, base_momentum, max_momentum)
    )

    def schedule(count: chex.Numeric) -> jax.Array:
        return _common.interpolate(
            _common.as_step(count), bounds, values, _ANNEAL_SHAPES[anneal_strategy]
        )

    return schedule


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: chex.Numeric,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """optax's linear 1cycle: three linear phases up to ``peak_value``, back, and far below.

    With ``T = transition_steps`` and ``I = peak_value / div_factor`` the value
    moves linearly ``I -> peak_value`` until step ``int(pct_start * T)``,
    ``peak_value -> I`` until ``int(pct_final * T)`` and
    ``I -> I / final_div_factor`` until ``T``, then stays put: it is
    :func:`~gradxform.piecewise_interpolate_schedule` with the scales
    ``{int(pct_start * T): div_factor, int(pct_final * T): 1 / div_factor,
    T: 1 / final_div_factor}``. (:func:`one_cycle_schedule` is the torch form.)

    Args:
      transition_steps: ``T``, an int >= 1.
      peak_value: the value at step ``int(pct_start * T)``.
      pct_start: the fraction of ``T`` spent rising, in ``[0, 1]``.
      pct_final: the fraction of ``T`` at which the fall back to ``I`` ends,
        in ``[pct_start, 1]``.
      div_factor: ``peak_value / div_factor`` is the start value (positive).
      final_div_factor: the last phase divides the start value by this (positive).

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.schedules.linear_onecycle_schedule(10, 1.0, pct_start=0.2, pct_final=0.6,
      ...                                           div_factor=10.0, final_div_factor=10.0)
      >>> [round(float(v), 4) for v in s(jnp.array([0, 1, 2, 4, 6, 8, 10, 12]))]
      [0.1, 0.55, 1.0, 0.55, 0.1, 0.055, 0.01, 0.01]

    Reference: Smith & Topin, 2019, "Super-Convergence: Very Fast Training of
    Neural Networks Using Large Learning Rates".
    """
    _checks.integer("transition_steps", transition_steps, low=1)
    _checks.number("pct_start", pct_start, low=0.0, high=1.0, allow_schedule=False)
    _checks.number("pct_final", pct_final, low=float(pct_start), high=1.0, allow_schedule=False)
    _check_div_factors(div_factor, final_div_factor)
    t = transition_steps
    return _onecycle(
        "linear",
        peak_value,
        div_factor,
        {
            int(pct_start * t): div_factor,
            int(pct_final * t): 1.0 / div_factor,
            t: 1.0 / final_div_factor,
        },
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: chex.Numeric,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """optax's cosine 1cycle: half a cosine up to ``peak_value``, half a cosine far below.

    With ``T = transition_steps`` and ``I = peak_value / div_factor`` the value
    moves along half a cosine ``I -> peak_value`` until step
    ``int(pct_start * T)``, then ``peak_value -> I / final_div_factor`` until
    ``T``, and stays put: :func:`~gradxform.piecewise_interpolate_schedule`
    (``"cosine"``) with the scales ``{int(pct_start * T): div_factor,
    T: 1 / (div_factor * final_div_factor)}``. (:func:`one_cycle_schedule` is
    the torch form, which starts its phases one step earlier.)

    Args:
      transition_steps: ``T``, an int >= 1.
      peak_value: the value at step ``int(pct_start * T)``.
      pct_start: the fraction of ``T`` spent rising, in ``[0, 1]``.
      div_factor: ``peak_value / div_factor`` is the start value (positive).
      final_div_factor: the final value is the start value over this (positive).

    Returns:
      A schedule ``step -> value``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> s = gx.schedules.cosine_onecycle_schedule(10, 1.0, pct_start=0.2, div_factor=10.0,
      ...                                           final_div_factor=10.0)
      >>> [round(float(v), 4) for v in s(jnp.array([0, 1, 2, 6, 10, 12]))]
      [0.1, 0.55, 1.0, 0.505, 0.01, 0.01]

    Reference: Smith & Topin, 2019, "Super-Convergence: Very Fast Training of
    Neural Networks Using Large Learning Rates".
    """
    _checks.integer("transition_steps", transition_steps, low=1)
    _checks.number("pct_start", pct_start, low=0.0, high=1.0, allow_schedule=False)
    _check_div_factors(div_factor, final_div_factor)
    t = transition_steps
    return _onecycle(
        "cosine",
        peak_value,
        div_factor,
        {
            int(pct_start * t): div_factor,
            t: 1.0 / (div_factor * final_div_factor),
        },
    )


def _check_div_factors(div_factor: float, final_div_factor: float) -> None:
    for name, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
        _checks.positive(name, value, allow_schedule=False)


def _onecycle(
    kind: str, peak_value: chex.Numeric, div_factor: float, scales: dict[int, float]
) -> Schedule:
    """``piecewise_interpolate_schedule(kind, peak / div, scales)``, a boundary at 0 folded in.

    A boundary at step 0 starts an empty interval: its scale applies from the
    start, so it multiplies the initial value instead.
    """
    _checks.finite("peak_value", peak_value, allow_schedule=False)
    init = peak_value / div_factor
    if 0 in scales:
        init = init * scales.pop(0)
    return piecewise_interpolate_schedule(kind, init, scales)
