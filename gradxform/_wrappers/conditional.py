"""Transformations applied at some steps only: ``conditionally_transform`` and
``conditionally_mask``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    transformation,
    with_extra_args_support,
)


def cond(pred: Any, yes: Callable[..., Any], no: Callable[..., Any], *args: Any) -> Any:
    """``lax.cond`` under ``jit``; outside it, only the branch that is taken runs."""
    if isinstance(pred, jax.core.Tracer):
        return jax.lax.cond(pred, yes, no, *args)
    return (yes if bool(pred) else no)(*args)


class ConditionFn(Protocol):
    """``(step, **extra_args) -> bool``: whether to apply the inner transformation."""

    def __call__(self, step: chex.Array, **extra_args: Any) -> chex.Array: ...


class ConditionallyTransformState(NamedTuple):
    """The inner state and the number of updates so far (int32)."""

    inner_state: Any
    step: chex.Array


class ConditionallyMaskState(NamedTuple):
    """The number of updates so far (int32) and the inner state."""

    step: chex.Array
    inner_state: Any


def _conditional(
    inner: Any, should_transform_fn: Any, forward_extra_args: bool, on_skip: str
) -> tuple[Any, Callable[..., Any]]:
    """``update`` of ``inner`` where ``should_transform_fn(step)``; else the updates kept
    (``on_skip="keep"``) or zero (``"zero"``), the inner state unchanged either way."""
    _checks.transformation("inner", inner)
    if not callable(should_transform_fn):
        raise TypeError(f"should_transform_fn={should_transform_fn!r} must be callable")
    if not isinstance(forward_extra_args, bool):
        raise TypeError(f"forward_extra_args={forward_extra_args!r} must be a bool")
    inner = with_extra_args_support(inner)

    def run(updates, inner_state, step, params, extra_args):
        def apply(updates, inner_state):
            return inner.update(updates, inner_state, params, **extra_args)

        out_shapes = jax.eval_shape(apply, updates, inner_state)

        def hold(updates, inner_state):
            if on_skip == "zero":
                kept = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shapes[0])
            else:
                kept = jax.tree.map(
                    lambda u, s: jnp.asarray(u).astype(s.dtype), updates, out_shapes[0]
                )
            return kept, jax.tree.map(
                lambda x, s: jnp.asarray(x).astype(s.dtype), inner_state, out_shapes[1]
            )

        kwargs = extra_args if forward_extra_args else {}
        pred = jnp.asarray(should_transform_fn(step, **kwargs))
        if pred.shape != () or pred.dtype != jnp.bool_:
            raise ValueError(
                f"should_transform_fn must return a scalar bool, got dtype {pred.dtype} and "
                f"shape {pred.shape}"
            )
        return cond(pred, apply, hold, updates, inner_state)

    return inner, run


def conditionally_transform(
    inner: Any, should_transform_fn: ConditionFn, forward_extra_args: bool = False
) -> GradientTransformationExtraArgs:
    """Apply ``inner`` only at the steps where ``should_transform_fn(step)`` is true.

    ``step`` counts the previous calls of ``update`` (int32, 0 at the first).
    At the other steps the updates pass through unchanged and the inner state
    is kept as it is. ``forward_extra_args=True`` also passes the extra
    arguments of ``update`` to ``should_transform_fn``. The inner update runs
    under ``lax.cond`` (only the branch taken runs outside ``jit``). Use
    :func:`conditionally_mask` to zero the updates instead.

    Args:
      inner: the transformation to apply.
      should_transform_fn: ``(step, **extra_args) -> scalar bool``.
      forward_extra_args: pass the extra arguments to ``should_transform_fn``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import conditionally_transform, scale
      >>> tx = conditionally_transform(scale(2.0), lambda step: step < 1)
      >>> state = tx.init(jnp.zeros(1))
      >>> u1, state = tx.update(jnp.ones(1), state)
      >>> u2, state = tx.update(jnp.ones(1), state)
      >>> u1, u2
      (Array([2.], dtype=float32), Array([1.], dtype=float32))
    """
    inner, run = _conditional(inner, should_transform_fn, forward_extra_args, "keep")

    def init_fn(params):
        return ConditionallyTransformState(inner_state=inner.init(params), step=_tree.zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        updates, inner_state = run(updates, state.inner_state, state.step, params, extra_args)
        return updates, ConditionallyTransformState(
            inner_state=inner_state, step=_tree.safe_increment(state.step)
        )

    return transformation(init_fn, update_fn, inner=(inner,))


def conditionally_mask(
    inner: Any, should_transform_fn: ConditionFn, forward_extra_args: bool = False
) -> GradientTransformationExtraArgs:
    """Apply ``inner`` where ``should_transform_fn(step)`` is true; zero the updates elsewhere.

    As :func:`conditionally_transform`, except that at the skipped steps the
    updates are exact zeros (in the dtypes of the inner updates); the inner
    state is kept as it is.

    Args:
      inner: the transformation to apply.
      should_transform_fn: ``(step, **extra_args) -> scalar bool``.
      forward_extra_args: pass the extra arguments to ``should_transform_fn``.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import conditionally_mask, scale
      >>> tx = conditionally_mask(scale(2.0), lambda step: step % 2 == 1)
      >>> state = tx.init(jnp.zeros(1))
      >>> u1, state = tx.update(jnp.ones(1), state)
      >>> u2, state = tx.update(jnp.ones(1), state)
      >>> u1, u2
      (Array([0.], dtype=float32), Array([2.], dtype=float32))
    """
    inner, run = _conditional(inner, should_transform_fn, forward_extra_args, "zero")

    def init_fn(params):
        return ConditionallyMaskState(step=_tree.zero_count(), inner_state=inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        updates, inner_state = run(updates, state.inner_state, state.step, params, extra_args)
        return updates, ConditionallyMaskState(
            step=_tree.safe_increment(state.step), inner_state=inner_state
        )

    return transformation(init_fn, update_fn, inner=(inner,))
