"""Gradient accumulation: ``MultiSteps`` (the inner step once every ``k`` mini-steps),
``apply_every``, and the skip functions ``skip_not_finite`` and ``skip_large_updates``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    TransformInitFn,
    TransformUpdateFn,
    transformation,
    with_extra_args_support,
)
from gradxform._wrappers.conditional import cond


class ShouldSkipUpdateFunction(Protocol):
    """``(updates, gradient_step, params) -> (skip, skip_state)``: whether :class:`MultiSteps`
    should drop this mini-batch (a scalar bool array), and what to record in
    ``MultiStepsState.skip_state`` (a tree of arrays of fixed structure)."""

    def __call__(
        self, updates: chex.ArrayTree, gradient_step: chex.Array, params: chex.ArrayTree | None
    ) -> tuple[chex.Array, chex.ArrayTree]: ...


def skip_not_finite(
    updates: chex.ArrayTree, gradient_step: chex.Array, params: chex.ArrayTree | None
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """Skip a mini-batch whose updates hold a NaN or an infinity.

    Returns ``(skip, {"should_skip": skip, "num_not_finite": n})`` with ``n``
    the number of non-finite entries (int32).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> skip, info = gx.skip_not_finite([jnp.array([1.0, jnp.inf])], jnp.int32(0), None)
      >>> skip, info["num_not_finite"]
      (Array(True, dtype=bool), Array(1, dtype=int32))
    """
    del gradient_step, params
    counts = [
        jnp.sum(~jnp.isfinite(u)).astype(jnp.int32)
        for u in jax.tree.leaves(updates)
        if _tree.is_inexact(u)
    ]
    n = sum(counts, jnp.int32(0))
    skip = n > 0
    return skip, {"should_skip": skip, "num_not_finite": n}


def skip_large_updates(
    updates: chex.ArrayTree,
    gradient_step: chex.Array,
    params: chex.ArrayTree | None,
    max_squared_norm: chex.Numeric,
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """Skip a mini-batch whose squared global norm is not below ``max_squared_norm`` (or NaN).

    Bind ``max_squared_norm`` with :func:`functools.partial` to use it as a
    ``should_skip_update_fn``. Returns ``(skip, {"should_skip": skip,
    "norm_squared": ||u||^2})``, the squared norm in at least float32.

    Example:
      >>> import functools, jax.numpy as jnp, gradxform as gx
      >>> fn = functools.partial(gx.skip_large_updates, max_squared_norm=100.0)
      >>> fn([jnp.array(11.0)], jnp.int32(0), None)[0]
      Array(True, dtype=bool)
    """
    del gradient_step, params
    squares = [jnp.sum(_tree.abs_sq(u)) for u in jax.tree.leaves(updates) if _tree.is_inexact(u)]
    norm_sq = sum(squares[1:], squares[0]) if squares else jnp.zeros([], jnp.float32)
    skip = ~(norm_sq < max_squared_norm)
    return skip, {"should_skip": skip, "norm_squared": norm_sq}


class MultiStepsState(NamedTuple):
    """Accumulation progress, the inner state, the gradient accumulator and the skip record.

    Attributes:
      mini_step: mini-steps accumulated since the last inner step (int32, in ``[0, k)``).
      gradient_step: inner steps taken so far (int32, saturating).
      inner_opt_state: the state of the wrapped transformation.
      acc_grads: this cycle's mean (or sum) of the gradients, one array per parameter.
      skip_state: what ``should_skip_update_fn`` returned last (``()`` without one).
    """

    mini_step: chex.Array
    gradient_step: chex.Array
    inner_opt_state: Any
    acc_grads: chex.ArrayTree
    skip_state: chex.ArrayTree = ()


def _no_skip(updates: Any, gradient_step: Any, params: Any) -> tuple[chex.Array, Any]:
    del updates, gradient_step, params
    return jnp.zeros([], jnp.bool_), ()


class MultiSteps:
    """Accumulate gradients over ``k`` mini-steps, then take one step of ``opt`` on their mean.

    With ``n`` the mini-step within the cycle (0 at the first) and ``k`` the
    cycle length::

        a <- a + (g - a) / (n + 1)     (use_grad_mean=True: a running mean)
        a <- a + g                     (use_grad_mean=False: a sum)
        n + 1 < k:  u = 0 exactly, inner state unchanged
        n + 1 = k:  u, s <- opt(a, s),  a <- 0,  gradient_step += 1

    so ``k`` mini-batches of size ``b`` give the step of one batch of size
    ``k * b``. This is optax's ``MultiSteps``: the same arguments, methods and
    :class:`MultiStepsState`. ``init`` and ``update`` are the transformation's
    functions; :meth:`gradient_transformation` returns them as one, and
    :meth:`has_updated` tells whether the last update took an inner step.

    The intermediate updates are exact zeros in the dtypes of the inner
    step's updates. The inner step runs under ``lax.cond`` (a plain branch
    outside ``jit``), so it is computed once per cycle; a ``k`` that shrinks
    below the mini-steps already taken ends the cycle at once. With
    ``should_skip_update_fn`` (:func:`skip_not_finite`,
    :func:`skip_large_updates`, or a :class:`ShouldSkipUpdateFunction` of
    your own) a mini-batch it rejects is not accumulated: the update is zero
    and only ``skip_state`` changes, as if the mini-step never happened.

    Args:
      opt: the transformation to apply to the accumulated gradient.
      every_k_schedule: ``k`` as an int >= 1, or a function of ``gradient_step``
        returning it (to grow the effective batch size during training).
      use_grad_mean: average the mini-batch gradients (True) or sum them.
      should_skip_update_fn: decides which mini-batches to drop, or None.
      accumulator_dtype: dtype of the accumulator (float32, as optax; ``None``:
        each parameter's dtype).

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import MultiSteps, scale
      >>> ms = MultiSteps(scale(-1.0), every_k_schedule=2)
      >>> state = ms.init(jnp.zeros(1))
      >>> u, state = ms.update(jnp.array([1.0]), state)
      >>> u, ms.has_updated(state)
      (Array([0.], dtype=float32), Array(False, dtype=bool))
      >>> u, state = ms.update(jnp.array([3.0]), state)    # -(1 + 3) / 2
      >>> u, ms.has_updated(state)
      (Array([-2.], dtype=float32), Array(True, dtype=bool))
    """

    def __init__(
        self,
        opt: Any,
        every_k_schedule: int | Callable[[chex.Array], chex.Numeric],
        use_grad_mean: bool = True,
        should_skip_update_fn: ShouldSkipUpdateFunction | None = None,
        accumulator_dtype: Any | None = jnp.float32,
    ) -> None:
        _checks.transformation("opt", opt)
        if not callable(every_k_schedule):
            _checks.integer("every_k_schedule", every_k_schedule, low=1)
        if not isinstance(use_grad_mean, bool):
            raise TypeError(f"use_grad_mean={use_grad_mean!r} must be a bool")
        if should_skip_update_fn is not None and not callable(should_skip_update_fn):
            raise TypeError(f"should_skip_update_fn={should_skip_update_fn!r} must be callable")
        self._opt = with_extra_args_support(opt)
        self._every_k_schedule = every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._should_skip = should_skip_update_fn or _no_skip
        self._accumulator_dtype = _checks.canonical_dtype(accumulator_dtype, "accumulator_dtype")
        self._tx = transformation(self._init, self._update, inner=(self._opt,))

    @property
    def inner_opt(self) -> GradientTransformationExtraArgs:
        """The wrapped transformation (accepting extra arguments)."""
        return self._opt

    @property
    def init(self) -> TransformInitFn:
        """``init(params) -> MultiStepsState``."""
        return self._tx.init

    @property
    def update(self) -> TransformUpdateFn:
        """``update(updates, state, params=None, **extra_args) -> (updates, state)``."""
        return self._tx.update

    def gradient_transformation(self) -> GradientTransformationExtraArgs:
        """``init`` and ``update`` as one transformation."""
        return self._tx

    def has_updated(self, state: MultiStepsState) -> chex.Array:
        """Whether the update that returned ``state`` took an inner step (a bool array)."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def _k(self, step: chex.Array) -> chex.Array:
        if callable(self._every_k_schedule):
            k = jnp.asarray(self._every_k_schedule(step)).astype(jnp.int32)
            return jnp.maximum(k, jnp.int32(1))
        return jnp.int32(self._every_k_schedule)

    def _init(self, params: Any) -> MultiStepsState:
        gradient_step = _tree.zero_count()
        _, skip_state = self._should_skip(_tree.zeros_like(params), gradient_step, params)
        return MultiStepsState(
            mini_step=_tree.zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self._opt.init(params),
            acc_grads=_tree.zeros_like(params, self._accumulator_dtype),
            skip_state=skip_state,
        )

    def _update(self, updates, state, params=None, **extra_args):
        _checks.check_same_layout(
            updates, state.acc_grads, what="updates", against="the params given to MultiSteps.init"
        )
        skip, skip_state = self._should_skip(updates, state.gradient_step, params)
        skip = jnp.asarray(skip)
        if skip.dtype != jnp.bool_ or skip.shape != ():
            raise ValueError(
                f"should_skip_update_fn must return a scalar bool array first, got dtype "
                f"{skip.dtype} and shape {skip.shape}"
            )
        n = state.mini_step.astype(jnp.float32)
        if self._use_grad_mean:
            acc = _tree.lincomb(n / (n + 1), state.acc_grads, 1 / (n + 1), updates)
        else:
            acc = _tree.lincomb(1.0, state.acc_grads, 1.0, updates)
        mean = jax.tree.map(
            lambda g, a: a.astype(g.dtype) if _tree.is_inexact(g) else g, updates, acc
        )

        def apply(mean, inner_state):
            return self._opt.update(mean, inner_state, params, **extra_args)

        out_shapes = jax.eval_shape(apply, mean, state.inner_opt_state)

        def hold(mean, inner_state):
            del mean
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shapes[0])
            kept = jax.tree.map(
                lambda x, s: jnp.asarray(x).astype(s.dtype), inner_state, out_shapes[1]
            )
            return zeros, kept

        last = state.mini_step + 1 >= self._k(state.gradient_step)
        new_updates, inner_state = cond(last & ~skip, apply, hold, mean, state.inner_opt_state)
        acc = _tree.map_inexact(lambda a: jnp.where(last, jnp.zeros_like(a), a), acc)
        new_state = MultiStepsState(
            mini_step=jnp.where(last, jnp.int32(0), _tree.safe_increment(state.mini_step)),
            gradient_step=jnp.where(
                last, _tree.safe_increment(state.gradient_step), state.gradient_step
            ),
            inner_opt_state=inner_state,
            acc_grads=acc,
            skip_state=skip_state,
        )
        new_state = jax.tree.map(
            lambda new, old: jnp.where(skip, old, new),
            new_state._replace(skip_state=()),
            state._replace(skip_state=()),
        )
        return new_updates, new_state._replace(skip_state=skip_state)


class ApplyEvery(NamedTuple):
    """The state of :func:`apply_every`: the step count (int32) and the sum of the gradients."""

    count: chex.Array
    grad_acc: chex.ArrayTree


def apply_every(k: int = 1) -> GradientTransformationExtraArgs:
    """Sum the updates over ``k`` steps and emit the sum every ``k``-th step (zeros otherwise).

    ::

        c = count mod k;   a <- g + (a if c != 0 else 0);   u = a if c = k - 1 else 0

    In a chain, the transformations before it still update their state at
    every step, so ``k`` half batches are not one full batch: use
    :class:`MultiSteps` for that. The sum is computed in at least float32.

    Args:
      k: the period, an int >= 1.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import apply_every
      >>> tx = apply_every(2)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.array([1.0]), state)
      >>> u, state = tx.update(jnp.array([3.0]), state)
      >>> u
      Array([4.], dtype=float32)
    """
    _checks.integer("k", k, low=1)

    def init_fn(params):
        return ApplyEvery(count=_tree.zero_count(), grad_acc=_tree.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        c = state.count % k
        grad_acc = _tree.lincomb(jnp.where(c != 0, 1.0, 0.0), state.grad_acc, 1.0, updates)
        emit = c == k - 1
        out = jax.tree.map(
            lambda g, a: (
                jnp.where(emit, a, jnp.zeros_like(a)).astype(g.dtype) if _tree.is_inexact(g) else g
            ),
            updates,
            grad_acc,
        )
        count = (_tree.safe_increment(state.count) % k).astype(jnp.int32)
        return out, ApplyEvery(count=count, grad_acc=grad_acc)

    return transformation(init_fn, update_fn)
