"""Schedule-Free learning (Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, 2024, "The
Road Less Scheduled"): the ``schedule_free`` wrapper over any base optimizer, its SGD and AdamW
forms, and ``schedule_free_eval_params``, the averaged weights to evaluate."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    Params,
    ScalarOrSchedule,
    transformation,
    with_extra_args_support,
)


class ScheduleFreeState(NamedTuple):
    """The state of :func:`schedule_free` (optax's fields).

    ``b1`` is the interpolation weight; ``weight_sum`` the sum of the averaging
    weights so far; ``step_count`` the number of updates plus one (int32, as optax);
    ``max_lr`` the largest learning rate so far; ``base_optimizer_state`` the base
    optimizer's state; ``z`` the base optimizer's iterate (set to the params at the
    first update, so that ``init`` needs only shapes and dtypes).
    """

    b1: chex.Array
    weight_sum: chex.Array
    step_count: chex.Array
    max_lr: chex.Array
    base_optimizer_state: Any
    z: chex.ArrayTree


def _scalar_dtype(params: Params) -> np.dtype:
    """The lowest-precision real dtype among the floating-point params (float32 if none)."""
    dtypes = [
        _tree.real_dtype(_tree.dtype_of(p)) for p in jax.tree.leaves(params) if _tree.is_inexact(p)
    ]
    if not dtypes:
        return np.dtype(np.float32)
    return min(dtypes, key=lambda d: (jnp.finfo(d).bits, jnp.finfo(d).nmant))


def check_common(b1: Any, weight_lr_power: Any, r: Any, state_dtype: Any) -> Any:
    _checks.number("b1", b1, low=0.0, high=1.0, low_open=True, high_open=True, allow_schedule=False)
    _checks.non_negative("weight_lr_power", weight_lr_power, allow_schedule=False)
    _checks.non_negative("r", r, allow_schedule=False)
    return _checks.canonical_dtype(state_dtype, "state_dtype")


def schedule_free(
    base_optimizer: Any,
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    weight_lr_power: chex.Numeric = 2.0,
    state_dtype: Any | None = None,
    *,
    r: chex.Numeric = 0.0,
) -> GradientTransformationExtraArgs:
    """Make any base optimizer Schedule-Free (Defazio et al., 2024), as optax's.

    With ``d_t`` the base optimizer's update for the gradient taken at ``y_t`` (for
    SGD, ``d_t = -gamma_t * grad f(y_t)``)::

        y_t     = (1 - b1) * z_t + b1 * x_t              (the params you hold)
        z_{t+1} = z_t + d_t
        x_{t+1} = (1 - c_{t+1}) * x_t + c_{t+1} * z_{t+1}
        c_{t+1} = w_t / (w_1 + ... + w_t),   w_t = t**r * max(gamma_1, ..., gamma_t)**p

    with ``x_1 = y_1 = z_1`` the initial params, ``gamma_t = learning_rate(t)``
    (``t = 1`` at the first update, as optax) and ``p = weight_lr_power``. ``x`` is
    the average of the ``z`` iterates weighted by ``w`` (uniform for a constant
    learning rate), ``y`` interpolates between the average and the last iterate.
    The update returned is ``y_{t+1} - y_t``, computed directly as
    ``c_{t+1} (z_t - y_t) + (1 - b1 (1 - c_{t+1})) d_t`` in at least float32 (optax
    forms ``y_{t+1}`` and subtracts; the two agree to rounding). ``x`` is not stored:
    it is recovered from ``y`` and ``z`` by :func:`schedule_free_eval_params`.
    The base optimizer should have no momentum of its own (``b1`` plays that role):
    ``adam(b1=0.0)``, ``sgd()``, ``rmsprop()``. It receives ``params=y``, so weight
    decay in it is computed at ``y``.

    The params you hold are ``y``: take the gradients there, and evaluate (validation
    loss, checkpoints for inference) at ``x = schedule_free_eval_params(state, params)``::

        state = tx.init(params)
        for batch in batches:
            grads = jax.grad(loss)(params, batch)          # at y
            updates, state = tx.update(grads, state, params)
            params = gx.apply_updates(params, updates)     # the next y
        eval_params = gx.schedule_free_eval_params(state, params)  # x

    With bfloat16 or float16 params the scalars of the state are kept in that dtype, as
    optax keeps them: ``weight_sum`` then stops growing after a few hundred (bfloat16)
    or thousand (float16) steps and ``x`` becomes a moving average. Keep float32 params
    (master weights) for long runs.

    Args:
      base_optimizer: the base optimizer, whose updates ``d_t`` move ``z``.
      learning_rate: ``gamma``: the learning rate of the base optimizer (a non-negative
        float or a schedule, evaluated at ``t = 1, 2, ...``), used here for the
        averaging weights only. It should warm up and then stay constant.
      b1: ``b1`` in ``(0, 1)``: the weight of the average ``x`` in ``y``.
      weight_lr_power: ``p >= 0``: the power of the learning rate in the weights.
      state_dtype: dtype of ``z``; default: each parameter's dtype.
      r: ``r >= 0``: polynomial weighting ``t**r`` of the average (the authors'
        package's ``r``; 0, the default, is optax's).

    Returns:
      A transformation whose state is a :class:`ScheduleFreeState`.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda p: jnp.sum(p**2)
      >>> tx = gx.schedule_free(gx.sgd(0.25), learning_rate=0.25)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(f)(params), state, params)
      ...     params = gx.apply_updates(params, updates)
      >>> params.round(4)                                          # y
      Array([ 0.2525, -0.505 ], dtype=float32)
      >>> gx.schedule_free_eval_params(state, params).round(4)     # x
      Array([ 0.2729, -0.5458], dtype=float32)

    Reference: Defazio et al., 2024, "The Road Less Scheduled" (NeurIPS).
    """
    _checks.transformation("base_optimizer", base_optimizer)
    _checks.non_negative("learning_rate", learning_rate)
    dtype = check_common(b1, weight_lr_power, r, state_dtype)
    base = with_extra_args_support(base_optimizer)

    def init_fn(params):
        scalar = _scalar_dtype(params)
        return ScheduleFreeState(
            b1=jnp.asarray(b1, scalar),
            weight_sum=jnp.zeros([], scalar),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], scalar),
            base_optimizer_state=base.init(params),
            z=_tree.zeros_like(params, dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _checks.state_type(state, ScheduleFreeState, "schedule_free")
        _checks.check_params(updates, params, "schedule_free")
        _checks.check_same_layout(
            params, state.z, what="params", against="the z of the schedule_free state"
        )
        real = _tree.compute_dtype(state.max_lr.dtype)
        lr = jnp.asarray(_tree.value_at(learning_rate, state.step_count)).astype(real)
        max_lr = jnp.maximum(state.max_lr.astype(real), lr)
        weight = _power(max_lr, weight_lr_power)
        if not _checks.is_literal_zero(r):
            weight = _power(state.step_count.astype(real), r) * weight
        total = state.weight_sum.astype(real) + weight
        # c = 0 while every weight is 0 (a learning rate of 0 so far); NaN propagates
        ratio = jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf)
        c = jnp.where(jnp.isnan(weight) | jnp.isnan(total), jnp.nan, ratio)

        base_updates, base_state = base.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        first = state.step_count <= 1  # z is set to y_1 at the first update

        def step(d, y, z, g):
            if not _tree.is_inexact(y):
                return g, z
            dt = _tree.promote(_tree.compute_dtype(y.dtype), _tree.compute_dtype(z.dtype), d.dtype)
            y32 = y.astype(dt)
            z32 = jnp.where(first, y32, z.astype(dt))
            d32 = d.astype(dt)
            ck = c.astype(_tree.real_dtype(dt)).astype(dt)  # complex params: a real scalar
            beta = jnp.asarray(b1).astype(_tree.real_dtype(dt)).astype(dt)
            out = ck * (z32 - y32) + (1 - beta * (1 - ck)) * d32
            return _tree.cast_like(out, g), _tree.cast_to(z32 + d32, z.dtype)

        out, z = _tree.map_unzip(step, base_updates, params, state.z, updates)
        scalar = state.max_lr.dtype
        return out, ScheduleFreeState(
            b1=state.b1,
            weight_sum=total.astype(scalar),
            step_count=_tree.safe_increment(state.step_count),
            max_lr=max_lr.astype(scalar),
            base_optimizer_state=base_state,
            z=z,
        )

    return transformation(init_fn, update_fn, inner=(base,))


def _power(x: chex.Array, exponent: Any) -> chex.Array:
    """``x**exponent``; an integral Python exponent as repeated products, the same in and
    out of ``jit``."""
    if isinstance(exponent, int | float) and float(exponent).is_integer():
        return jax.lax.integer_pow(x, int(exponent))
    return x ** jnp.asarray(exponent, x.dtype)


def _find_state(state: Any) -> Any:
    """The one :class:`ScheduleFreeState` in ``state`` (itself, or inside a chain or wrapper)."""
    found: list[Any] = []

    def visit(s: Any) -> None:
        if getattr(s, "_fields", None) == ScheduleFreeState._fields:
            found.append(s)
        elif isinstance(s, tuple | list):
            for x in s:
                visit(x)
        elif isinstance(s, dict):
            for x in s.values():
                visit(x)

    visit(state)
    if len(found) != 1:
        what = "no ScheduleFreeState" if not found else f"{len(found)} ScheduleFreeStates"
        raise ValueError(
            f"schedule_free_eval_params needs the state of a schedule_free optimizer; the "
            f"state given holds {what} ({type(state).__name__})"
        )
    return found[0]


def schedule_free_eval_params(state: Any, params: Params) -> Params:
    """The averaged weights ``x`` to evaluate a :func:`schedule_free` optimizer at.

    ``x = (y - (1 - b1) z) / b1`` from the params ``y`` you hold (those the
    optimizer's updates produce, where the gradients are taken) and the iterate
    ``z`` of the state; before the first update, ``x = y``. Computed in at least
    float32 and returned in each parameter's dtype; integer leaves pass through.
    ``state`` is the optimizer's whole state: a :class:`ScheduleFreeState`, or a
    state that holds exactly one (a ``chain`` or a wrapper around ``schedule_free``).
    Evaluating at ``y`` instead of ``x`` gives a worse model: ``y`` is the point
    where the gradients are taken, not the average.

    The params you hold are ``y``: take the gradients there, and evaluate (validation
    loss, checkpoints for inference) at ``x = schedule_free_eval_params(state, params)``::

        state = tx.init(params)
        for batch in batches:
            grads = jax.grad(loss)(params, batch)          # at y
            updates, state = tx.update(grads, state, params)
            params = gx.apply_updates(params, updates)     # the next y
        eval_params = gx.schedule_free_eval_params(state, params)  # x

    Args:
      state: the state of the optimizer (it holds one :class:`ScheduleFreeState`).
      params: the params ``y`` that were updated with that state.

    Returns:
      The params ``x``, with the structure and dtypes of ``params``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.schedule_free_sgd(learning_rate=1.0, b1=0.5)
      >>> params = jnp.array([1.0])
      >>> state = tx.init(params)
      >>> for _ in range(2):              # gradient 1: z = 1, 0, -1; x = 1, 0, -0.5
      ...     updates, state = tx.update(jnp.array([1.0]), state, params)
      ...     params = gx.apply_updates(params, updates)
      >>> params, gx.schedule_free_eval_params(state, params)   # y = (z + x) / 2, x
      (Array([-0.75], dtype=float32), Array([-0.5], dtype=float32))
    """
    sf = _find_state(state)
    _checks.check_same_layout(
        params, sf.z, what="params", against="the z of the schedule_free state"
    )
    before_first = sf.step_count <= 1

    def evaluate(y, z):
        if not _tree.is_inexact(y):
            return y
        dt = _tree.promote(_tree.compute_dtype(y.dtype), _tree.compute_dtype(z.dtype))
        beta = jnp.asarray(sf.b1).astype(_tree.real_dtype(dt)).astype(dt)
        y32 = y.astype(dt)
        x = (y32 - (1 - beta) * z.astype(dt)) / beta
        return _tree.cast_like(jnp.where(before_first, y32, x), y)

    return jax.tree.map(evaluate, params, sf.z)
