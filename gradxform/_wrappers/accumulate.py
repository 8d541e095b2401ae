"""Gradient accumulation: apply the inner transformation once every ``k`` mini-steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    transformation,
    with_extra_args_support,
)


class MultiStepsState(NamedTuple):
    """Accumulation progress, the inner state and the gradient accumulator.

    Attributes:
      mini_step: mini-steps accumulated since the last inner step (int32, in ``[0, k)``).
      gradient_step: inner steps taken so far (int32, saturating).
      inner_state: the state of the wrapped transformation.
      acc_grads: the running mean of this cycle's gradients, one array per parameter.
    """

    mini_step: chex.Array
    gradient_step: chex.Array
    inner_state: Any
    acc_grads: chex.ArrayTree


def MultiSteps(
    inner: Any,
    every_k_schedule: int | Callable[[chex.Array], chex.Numeric],
    *,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """Accumulate gradients over ``k`` mini-steps, then take one step of ``inner`` on their mean.

    With ``n`` the mini-step within the cycle (0 at the first) and ``k`` the
    cycle length::

        a <- a + (g - a) / (n + 1)            (running mean, by gradxform.ema)
        n + 1 < k:  u = 0 exactly, inner state unchanged
        n + 1 = k:  u, s <- inner(a, s),  a <- 0,  gradient_step += 1

    so ``k`` mini-batches of size ``b`` give the step of one batch of size
    ``k * b``. The intermediate updates are exact zeros in the gradients' dtype
    (float32, bfloat16, ...). The state holds one accumulator per parameter, in
    ``accumulator_dtype`` (default: each parameter's dtype; pass
    ``jnp.float32`` to accumulate bfloat16 gradients without rounding). The
    inner step runs under ``lax.cond`` (a plain branch outside ``jit``); the
    skip branch's outputs are built from the abstract shapes and dtypes of the
    inner step's own outputs, so the two branches cannot disagree. A NaN or
    infinite mini-batch gradient poisons the cycle's mean and therefore the
    inner step; ``apply_if_finite(MultiSteps(...), n)`` drops such a mini-batch
    before it is accumulated (the cycle then waits for one more).

    Args:
      inner: the transformation to apply to the mean gradient.
      every_k_schedule: ``k`` as an int >= 1, or a function of ``gradient_step``
        returning it (to grow the effective batch size during training).
      accumulator_dtype: dtype of the accumulator.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import scale
      >>> from gradxform import MultiSteps
      >>> tx = MultiSteps(scale(-1.0), every_k_schedule=2)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> u
      Array([0.], dtype=float32)
      >>> u, state = tx.update(jnp.array([3.0]), state)    # -(1 + 3) / 2
      >>> u
      Array([-2.], dtype=float32)
    """
    _checks.transformation("inner", inner)
    inner = with_extra_args_support(inner)
    if not callable(every_k_schedule):
        _checks.integer("every_k_schedule", every_k_schedule, low=1)
    accumulator_dtype = _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")

    def k_at(step):
        if callable(every_k_schedule):
            return jnp.maximum(jnp.asarray(every_k_schedule(step)).astype(jnp.int32), jnp.int32(1))
        return jnp.int32(every_k_schedule)

    def init_fn(params):
        return MultiStepsState(
            mini_step=_tree.zero_count(),
            gradient_step=_tree.zero_count(),
            inner_state=inner.init(params),
            acc_grads=_tree.zeros_like(params, accumulator_dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        _checks.check_same_layout(
            updates, state.acc_grads, what="updates", against="the params given to MultiSteps.init"
        )
        n = state.mini_step.astype(jnp.float32)
        acc = _tree.lincomb(n / (n + 1), state.acc_grads, 1 / (n + 1), updates)
        mean = jax.tree.map(
            lambda g, a: a.astype(g.dtype) if _tree.is_inexact(g) else g, updates, acc
        )

        def apply(mean, inner_state):
            return inner.update(mean, inner_state, params, **extra_args)

        out_shapes = jax.eval_shape(apply, mean, state.inner_state)

        def skip(mean, inner_state):
            del mean
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shapes[0])
            kept = jax.tree.map(
                lambda x, s: jnp.asarray(x).astype(s.dtype), inner_state, out_shapes[1]
            )
            return zeros, kept

        last = state.mini_step + 1 >= k_at(state.gradient_step)
        if isinstance(last, jax.core.Tracer):
            new_updates, inner_state = jax.lax.cond(last, apply, skip, mean, state.inner_state)
        else:  # outside jit: run only the branch that is taken, without compiling a cond
            new_updates, inner_state = (apply if bool(last) else skip)(mean, state.inner_state)
        new_updates = _tree.map_inexact(lambda g, u: u, updates, new_updates)
        acc = _tree.map_inexact(lambda a: jnp.where(last, jnp.zeros_like(a), a), acc)
        return new_updates, MultiStepsState(
            mini_step=jnp.where(last, jnp.int32(0), _tree.safe_increment(state.mini_step)),
            gradient_step=jnp.where(
                last, _tree.safe_increment(state.gradient_step), state.gradient_step
            ),
            inner_state=inner_state,
            acc_grads=acc,
        )

    return transformation(init_fn, update_fn, inner=(inner,))
